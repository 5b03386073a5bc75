"""The GPU study of the cudss back-end (harness/backends/cudss.py): what runs on the H200 host, and the figures.

Subcommands (``python scripts/gpu_bench.py -h``):

* ``explore``  — on the GPU host: one matrix, every way of handing it to cuDSS (its own orderings
  with and without the multithreading layer, user permutations with and without an ND tree, its
  own permutation and tree read back), one line per case; checks the USER_PERM convention.
* ``finalize`` — on the GPU host, after ``permbench run``: adds what the harness's provenance does
  not know (GPU, driver, CUDA and cuDSS versions, threading layer, the git state of the checkout
  the tree was copied from, the exact commands) to the result file's provenance.
* ``figures``  — anywhere: stacked per-phase bars per configuration, end-to-end speedup over
  cuDSS's default versus n, and the table of phases and ratios (Markdown), from the result file.

``scripts/gpu_bench.sh`` installs the bundle and runs these on the host.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------------------------------
# explore (GPU host)
# --------------------------------------------------------------------------------------------------


def explore(args) -> None:
    from permbench import datasets
    from permbench.harness.backends._cudss_session import Session, cudss_handle, derive_nd_tree
    from permbench.harness.backends.cudss import CuDSS
    from permbench.harness.backends.symbolic import symbolic_factor
    from permbench.core.case import Ordering, inverse_perm, symmetric_graph
    from permbench.core.ndtree import NDTree
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
               "tree": ex.get("tree_source"), "nd_nlevels": ex.get("nd_nlevels"),
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
    handle, _ = cudss_handle(True)
    with Session(handle, case.A) as s:
        s.analyze(None, None)
        own_tree = s.partition_tree()
    print(f"  cuDSS tree: {own_tree.shape[0]} nodes, sum {own_tree.sum():,}, last {own_tree[-3:].tolist()}")
    sym = symbolic_factor(graph, own_perm)
    for tree in ("off", "auto"):
        ordering = Ordering(own_perm, nd_tree=NDTree(own_tree, "reverse_bfs"))
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

PHASES = [("t_order_s", "ordering / cuDSS reordering"), ("t_analyze_s", "analysis (tree + cuDSS reorder + symbolic)"),
          ("t_factor_s", "factorization"), ("t_solve_s", "solve")]
PHASE_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
BASELINE_MT, BASELINE_1T = "cuDSS default (MT layer)", "cuDSS default (no MT layer)"


def config_label(ordering: str, backend: str) -> str:
    """One name per way of running cuDSS, independent of k."""
    from permbench.harness.backends import registry

    p = registry.create(backend).p
    if ordering == "native":
        if p["reorder"] == "default":
            return BASELINE_MT if p["mt"] else BASELINE_1T
        return f"cuDSS {p['reorder'].upper()}" + ("" if p["mt"] else " (no MT layer)")
    tree = {"off": "no tree", "auto": "own tree", "derive": "tree from etree"}[p["tree"]]
    if p["tree"] == "auto" and ordering.split("[")[0] not in ("patch",):
        tree = "no tree"
    return f"{ordering} + {tree}"


def config_style(config: str) -> tuple[str, str, float]:
    """(colour, line style, width): an ordering keeps its report colour; no tree is dashed."""
    from permbench.harness.report import color_of

    fixed = {BASELINE_MT: ("#000000", "-", 1.6), BASELINE_1T: ("#7f7f7f", "-", 1.6),
             "cuDSS AMD": ("#17becf", "-", 1.0), "cuDSS ND": ("#bcbd22", "-", 1.0)}
    if config in fixed:
        return fixed[config]
    ordering = config.split(" + ")[0]
    if config.endswith("no tree"):
        return color_of(ordering), "--", 1.0
    return color_of(ordering), "-", 2.2 if ordering == "patch" else 1.4


def load_rows(result: str):
    """Medians per (dataset, configuration).

    The single-factorization columns come from every ok row (a k=10 run starts with exactly the
    calls of a k=1 run: analysis, FACTORIZATION, SOLVE); ``t_total_k10_s`` and
    ``t_refactor_median_s`` from the k=10 rows.
    """
    from permbench.harness.results import read_results

    frame, prov = read_results(result)
    ok = frame[frame["status"] == "ok"].copy()
    ok["config"] = [config_label(o, b) for o, b in zip(ok["ordering"], ok["backend"])]
    ok["k"] = ok["k"].astype(int)
    keys = ["dataset", "config"]
    cols = ["n", "t_order_s", "t_analyze_s", "t_factor_s", "t_solve_s", "t_total_s", "nnz_L", "backend_nnz_L",
            "residual"]
    med = ok.groupby(keys)[cols].median()
    med["runs"] = ok.groupby(keys).size()
    ten = ok[ok["k"] == 10].groupby(keys)[["t_total_k_s", "t_refactor_median_s"]].median()
    med = med.join(ten.rename(columns={"t_total_k_s": "t_total_k10_s"}), how="left").reset_index()
    return med, frame, prov


def figures(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from permbench.harness.report import STYLE, save

    med, frame, prov = load_rows(args.result)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    configs = sorted(med["config"].unique(), key=lambda c: (not c.startswith("cuDSS"), c))
    datasets = sorted(med["dataset"].unique(), key=lambda d: (med[med.dataset == d]["n"].iloc[0], d))
    with plt.rc_context(STYLE):
        # 1. Stacked per-phase bars per configuration, one panel per dataset (single factorization).
        big = [d for d in datasets if med[med.dataset == d]["n"].iloc[0] >= args.min_n]
        cols = min(3, len(big))
        rows = int(np.ceil(len(big) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.4 * rows), squeeze=False)
        for ax, d in zip(axes.flat, big):
            sub = med[med.dataset == d].set_index("config")
            sub = sub.reindex([c for c in configs if c in set(sub.index)])
            bottom = np.zeros(len(sub))
            for (col, label), color in zip(PHASES, PHASE_COLORS):
                vals = sub[col].fillna(0).to_numpy()
                ax.bar(np.arange(len(sub)), vals, bottom=bottom, color=color, label=label)
                bottom += vals
            ax.set_xticks(np.arange(len(sub)), sub.index, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel("time [s]")
            ax.set_title(f"{d}\nn={int(sub['n'].iloc[0]):,}", fontsize=8)
        for ax in list(axes.flat)[len(big):]:
            ax.axis("off")
        axes.flat[0].legend(loc="upper left", fontsize=7)
        fig.suptitle("cuDSS on the H200: time per phase, single factorization (k=1)")
        fig.tight_layout()
        save(fig, out, "cudss_phases")

        # 2. End-to-end speedup over cuDSS's default versus n: one line per configuration and
        #    dataset family (grids of several sizes, icospheres, ...), markers name the family.
        panels = [(1, BASELINE_MT, "t_total_s"), (1, BASELINE_1T, "t_total_s"), (10, BASELINE_MT, "t_total_k10_s")]
        fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
        family = {d: d.split("[")[0].split(":")[0] for d in datasets}
        markers = dict(zip(sorted(set(family.values())), "osD^v<>"))
        for ax, (k, base, col) in zip(axes, panels):
            for c in configs:
                color, style, width = config_style(c)
                for fam in sorted(set(family.values())):
                    pts = []
                    for d in (d for d in datasets if family[d] == fam):
                        sel = med[med.dataset == d].set_index("config")
                        if base in sel.index and c in sel.index and sel.loc[[base, c], col].notna().all():
                            pts.append((sel["n"].iloc[0], sel.loc[base, col] / sel.loc[c, col]))
                    if pts:
                        xs, ys = zip(*sorted(pts))
                        ax.plot(xs, ys, style, marker=markers[fam], color=color, linewidth=width, markersize=4)
                ax.plot([], [], style, color=color, linewidth=width, label=c)
            ax.axhline(1.0, color="black", linewidth=0.6)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("n (unknowns)")
            what = "t_total (one factorization)" if k == 1 else f"t_total with k={k} factorizations"
            ax.set_ylabel(f"{what}: {base} / configuration")
            ax.set_title(f"k={k}, speedup over {base}", fontsize=9)
        axes[0].legend(fontsize=6.5, loc="lower right")
        fig.text(0.01, 0.005, "markers: " + ", ".join(f"{m} {f}" for f, m in sorted(markers.items())), fontsize=8)
        fig.suptitle("End-to-end speedup over cuDSS's own reordering (above 1: faster than that default)")
        fig.tight_layout()
        save(fig, out, "cudss_speedup_vs_n")
    write_table(med, out / "cudss_table.md", min_n=args.table_min_n)
    print("\n".join(str(p) for p in sorted(out.iterdir())))


def write_table(med, path: Path, min_n: int = 0) -> None:
    """Per dataset and configuration: phases, totals for k=1 and k=10, fill, ratios to both defaults."""
    f = lambda v: "–" if v is None or v != v else f"{v:.3f}"  # noqa: E731
    lines = []
    for d in sorted(med["dataset"].unique(), key=lambda d: (med[med.dataset == d]["n"].iloc[0], d)):
        sub = med[med.dataset == d].set_index("config")
        n = int(sub["n"].iloc[0])
        if n < min_n:
            continue

        def ratio(value, base, col):
            if base not in sub.index or value != value or sub.loc[base, col] != sub.loc[base, col]:
                return "–"
            return f"{value / sub.loc[base, col]:.2f}"

        lines += [f"\n### {d} (n = {n:,})\n",
                  "| configuration | runs | order | analysis | factor | refactor | solve | total k=1 | ÷ default MT | "
                  "÷ default 1T | total k=10 | ÷ default MT (k=10) | cuDSS LU nnz | nnz(L) | residual |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for config, r in sub.sort_values("t_total_s").iterrows():
            lines.append(
                f"| {config} | {int(r.runs)} | {f(r.t_order_s)} | {f(r.t_analyze_s)} | {f(r.t_factor_s)} | "
                f"{f(r.t_refactor_median_s)} | {f(r.t_solve_s)} | {f(r.t_total_s)} | "
                f"{ratio(r.t_total_s, BASELINE_MT, 't_total_s')} | {ratio(r.t_total_s, BASELINE_1T, 't_total_s')} | "
                f"{f(r.t_total_k10_s)} | {ratio(r.t_total_k10_s, BASELINE_MT, 't_total_k10_s')} | "
                f"{int(r.backend_nnz_L):,} | {int(r.nnz_L):,} | {r.residual:.1e} |")
    path.write_text("cuDSS 0.8 on one H200 (16 host cores), from results/gpu/cudss-h200.parquet (scripts/gpu_bench.py "
                    "figures). Times in seconds, medians over `runs`; k=1 columns are the first factorization and "
                    "solve of each run, `refactor` the median of the nine REFACTORIZATIONs that follow. Ratios are "
                    "t_total(configuration) / t_total(cuDSS default, with or without its multithreading layer); "
                    "below 1 is faster.\n"
                    + "\n".join(lines) + "\n")


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
