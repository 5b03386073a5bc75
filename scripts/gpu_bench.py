"""The GPU study of the cudss back-end (harness/backends/cudss.py): what runs on the H200 host, and the figures.

Subcommands (``python scripts/gpu_bench.py -h``):

* ``explore``  — on the GPU host: one matrix, every way of handing it to cuDSS (its own orderings
  with and without the multithreading layer, user permutations with and without an ND tree, its
  own permutation and tree read back), one line per case; checks the USER_PERM convention.
* ``finalize`` — on the GPU host, after ``permbench run``: adds what the harness's provenance does
  not know (GPU, driver, CUDA and cuDSS versions, threading layer, the git state of the checkout
  the tree was copied from, the exact commands) to the result file's provenance.
* ``figures``  — anywhere: the study's figure set from the result file (``gpu_set`` in
  harness/figures.py): stacked per-phase bars per configuration, end-to-end speedup over cuDSS's
  defaults versus n, and the table of phases and ratios (Markdown), each with its sidecar.

``scripts/gpu_bench.sh`` installs the bundle and runs these on the host.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


# --------------------------------------------------------------------------------------------------
# explore (GPU host)
# --------------------------------------------------------------------------------------------------


def explore(args) -> None:
    from permbench import datasets
    from permbench.harness.backends.cudss import CuDSS, _handle, _Solve, derive_nd_tree
    from permbench.harness.backends.symbolic import symbolic_factor
    from permbench.core.case import Ordering, inverse_perm, symmetric_graph
    from permbench.orderings.amd import amd_order
    from permbench.orderings.metis import Metis

    t0 = time.perf_counter()
    case = datasets.load(args.dataset)
    graph = symmetric_graph(case.A)
    print(f"{args.dataset}: n={case.n:,} nnz={case.A.nnz:,} (load {time.perf_counter() - t0:.1f} s)", flush=True)
    rows = []

    def record(label, out, t_order=None, nnz_L=None):
        ex = out.get("extras", {})
        t_order = out.get("t_order_s", t_order)
        row = {"case": label, "t_order_s": t_order, "t_cudss_reorder_s": ex.get("t_cudss_reorder_s"),
               "t_cudss_symbolic_s": ex.get("t_cudss_symbolic_s"), "t_tree_s": ex.get("t_tree_s"),
               "t_analyze_s": out["t_analyze_s"], "t_factor_s": out["t_factor_s"],
               "t_refactor_median_s": out.get("t_refactor_median_s"), "t_solve_s": out["t_solve_s"],
               "backend_nnz_L": out["backend_nnz_L"], "nnz_L": nnz_L, "residual": out["residual"],
               "tree": ex.get("tree_source"), "nd_levels": ex.get("nd_levels"),
               "cudss_tree_nodes": ex.get("cudss_tree_nodes")}
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)

    for reorder, mt in (("default", True), ("default", False), ("amd", True), ("nd", True)):
        out = CuDSS(reorder=reorder, mt=mt, k=args.k).run(case, None, None, None)
        perm = out.pop("perm")
        nnz = symbolic_factor(graph, perm).nnz_L
        record(f"native reorder={reorder} mt={mt}", out, nnz_L=nnz)
        if reorder == "default" and mt:
            own_perm = perm
            print(f"  read-back perm: nnz_L={nnz:,}; its inverse: {symbolic_factor(graph, inverse_perm(perm)).nnz_L:,}")
    handle, _ = _handle(True)
    with _Solve(handle, case.A) as s:
        s.analyze(None, None)
        own_tree = s.partition_tree()
    print(f"  cuDSS tree: {own_tree.shape[0]} nodes, sum {own_tree.sum():,}, last {own_tree[-3:].tolist()}")
    sym = symbolic_factor(graph, own_perm)
    for tree in ("off", "auto"):
        ordering = Ordering(own_perm, etree=own_tree, extras={"etree_layout": "bfs"})
        record(f"user perm = cuDSS's own, tree={tree} (cuDSS's own)",
               CuDSS(tree=tree, k=args.k).run(case, own_perm, ordering, sym), nnz_L=sym.nnz_L)
    record("user perm = cuDSS's own, tree=derive (from etree)",
           CuDSS(tree="derive", k=args.k).run(case, own_perm, Ordering(own_perm), sym), nnz_L=sym.nnz_L)
    for name, fn in (("metis", lambda: Metis().compute(graph).perm), ("amd", lambda: amd_order(graph))):
        t0 = time.perf_counter()
        perm = fn()
        t_order = time.perf_counter() - t0
        sym = symbolic_factor(graph, perm)
        t0 = time.perf_counter()
        derive_nd_tree(graph, perm, parent=sym.parent)
        print(f"  {name}: order {t_order:.2f} s, derive tree {time.perf_counter() - t0:.3f} s, nnz_L {sym.nnz_L:,}")
        for tree in ("off", "derive"):
            record(f"user perm = {name}, tree={tree}",
                   CuDSS(tree=tree, k=args.k).run(case, perm, Ordering(perm), sym), t_order, sym.nnz_L)
        if name == "amd":
            inv = inverse_perm(perm)
            out = CuDSS(tree="off").run(case, inv, Ordering(inv), None)
            print(f"  USER_PERM with the inverse AMD perm: LU_NNZ {out['backend_nnz_L']:,} "
                  f"(nnz_L of perm {sym.nnz_L:,}, of inverse {symbolic_factor(graph, inv).nnz_L:,})")
    if args.out:
        Path(args.out).write_text(json.dumps({"dataset": args.dataset, "n": case.n, "rows": rows}, indent=1,
                                             default=float))
    print(f"\n{'case':58s} {'order':>7s} {'reord':>7s} {'symb':>7s} {'factor':>7s} {'refac':>7s} {'solve':>7s} "
          f"{'LU_NNZ':>12s} {'nnz_L':>12s} {'resid':>8s}")
    for r in rows:
        f = lambda v: "      -" if v is None or v != v else f"{v:7.3f}"  # noqa: E731
        print(f"{r['case'][:58]:58s} {f(r['t_order_s'])} {f(r['t_cudss_reorder_s'])} {f(r['t_cudss_symbolic_s'])} "
              f"{f(r['t_factor_s'])} {f(r['t_refactor_median_s'])} {f(r['t_solve_s'])} {r['backend_nnz_L']:12,d} "
              f"{r['nnz_L'] or 0:12,d} {r['residual']:8.1e}")


# --------------------------------------------------------------------------------------------------
# finalize (GPU host)
# --------------------------------------------------------------------------------------------------


def finalize(args) -> None:
    """Add the GPU host's facts to the result file's provenance (parquet metadata), in place."""
    import pyarrow.parquet as pq

    from permbench.harness.backends.cudss import CuDSS
    from permbench.harness.results import PROVENANCE_KEY

    table = pq.read_table(args.result)
    meta = dict(table.schema.metadata or {})
    prov = json.loads(meta.get(PROVENANCE_KEY, b"{}"))
    prov["gpu_host"] = CuDSS().provenance()
    if args.git:
        # The device machine gets a copy of the working tree without .git: the state is read here.
        prov["git"] = dict(json.loads(Path(args.git).read_text()), note="read where the tree was copied from")
    if args.commands:
        prov["commands"] = Path(args.commands).read_text()
    meta[PROVENANCE_KEY] = json.dumps(prov, sort_keys=True, default=str).encode()
    pq.write_table(table.replace_schema_metadata(meta), args.result)
    print(json.dumps(prov["gpu_host"], indent=1, default=str))


def combine(args) -> None:
    """One result file from the files of several study steps (each ``permbench run`` writes only its
    own cells): a cell in a later file replaces its rows from earlier files; the last file's
    provenance (the one ``finalize`` completed) with every step's run configuration under ``runs``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from permbench.harness.results import PROVENANCE_KEY, read_results

    frames, runs, prov = [], [], {}
    for path in args.inputs:
        frame, prov = read_results(path)
        # A cell measured again in a later file replaces all its earlier rows (every repeat).
        frames = [f[~f["cell_id"].isin(set(frame["cell_id"]))] for f in frames] + [frame]
        # Steps that ran before ``finalize`` carry no git state (the tree there has no .git).
        git = prov.get("git")
        if (git or {}).get("commit") is None and args.git_missing:
            git = dict(json.loads(Path(args.git_missing).read_text()), note="given to combine (--git-missing)")
        runs.append({"file": Path(path).name, "run": prov.get("run"), "git": git})
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values(["dataset", "ordering", "backend", "repeat"], kind="stable").reset_index(drop=True)
    prov = dict(prov)
    prov.pop("run", None)
    prov["runs"] = runs
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(prov, sort_keys=True, default=str).encode()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), args.out)
    print(f"{args.out}: {len(frame)} rows from {len(args.inputs)} files; statuses "
          f"{frame['status'].value_counts().to_dict()}")


# --------------------------------------------------------------------------------------------------
# figures and table (anywhere)
# --------------------------------------------------------------------------------------------------


def figures(args) -> None:
    """The study's set (``figures.gpu_set``) from the one figure registry (harness/figures.py)."""
    from permbench.harness import figures as registry

    outcomes = registry.write_set(registry.gpu_set(min_n=args.min_n, table_min_n=args.table_min_n),
                                  {"results": [Path(args.result)]}, Path(args.out_dir))
    for outcome in outcomes:
        print(f"skipped {outcome.name}: {outcome.skipped}" if outcome.skipped else "\n".join(map(str, outcome.files)))


# --------------------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("explore", help="every way of handing one matrix to cuDSS (GPU host)")
    p.add_argument("--dataset", default="grid[matrix=graph,n=1000000]")
    p.add_argument("--k", type=int, default=3, help="factorizations per case (>1 times REFACTORIZATION)")
    p.add_argument("--out", help="JSON file for the rows")
    p.set_defaults(fn=explore)
    p = sub.add_parser("finalize", help="add the GPU host's provenance to a result file (GPU host)")
    p.add_argument("result")
    p.add_argument("--git", help="JSON with the git state of the checkout the tree came from")
    p.add_argument("--commands", help="a file with the exact commands (stored whole)")
    p.set_defaults(fn=finalize)
    p = sub.add_parser("combine", help="one result file from the study steps' files")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--git-missing", help="git state (JSON file) of inputs whose provenance has none: the "
                   "steps run before `finalize` on the same machine (that session's .gpu-wheels/meta/git.json)")
    p.set_defaults(fn=combine)
    p = sub.add_parser("figures", help="phase bars, speedup versus n and the ratio table")
    p.add_argument("result")
    p.add_argument("--out-dir", default="results/gpu")
    p.add_argument("--min-n", type=int, default=500_000, help="datasets in the phase figure: n at least this")
    p.add_argument("--table-min-n", type=int, default=0)
    p.set_defaults(fn=figures)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
