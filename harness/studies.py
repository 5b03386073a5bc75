"""``permbench study ...``: studies that read stored result files or run through ``runner.run``.

* ``patch-table RESULT`` — the Markdown tables of a patch-ordering study (``configs/patch-*.toml``);
* ``isolation`` — what per-unit process isolation costs, from a small run's own clock and rows;
* ``cudss-explore`` — on a GPU host: every way of handing one matrix to cuDSS, one line each.

Speed that should be tracked over commits lives in the asv suite (``benchmarks/``) instead.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(no_args_is_help=True, help="Studies from stored result files or small runs (patch tables, "
                                             "isolation cost, cuDSS exploration).")
console = Console(emoji=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, emoji=False, highlight=False, soft_wrap=True)


def _fail(text: str, code: int = 2):
    err_console.print("[red]error:[/] " + escape(text))
    raise typer.Exit(code)


# --------------------------------------------------------------------------------------------------
# patch-table
# --------------------------------------------------------------------------------------------------

#: The patch ordering's phases, as its ``ordering_extras`` name them (orderings/patch/__init__.py).
PATCH_PHASES = ("t_patch_s", "t_quotient_s", "t_decompose_s", "t_local_s", "t_assemble_s")


def _targets_missed(n: int, r_homa: float, r_amd: float, r_metis: float, r_nnz: float) -> list[str]:
    """The patch ordering's targets (issue 13): from 30k vertices faster than homa and under 0.2x
    METIS's time, under 2x METIS's below; under 1.5x AMD's from 250k; nnz(L) under 1.15x METIS's.
    A target whose ratio the run cannot give (its peer did not run) is listed as "<target> n/a"."""
    checks = [("homa", r_homa, 1.0), ("metis 0.2x", r_metis, 0.2)] if n >= 30_000 else [("metis 2x", r_metis, 2.0)]
    checks += [("amd 1.5x", r_amd, 1.5)] if n >= 250_000 else []
    checks.append(("nnz 1.15x", r_nnz, 1.15))
    return [name if ratio > bound else f"{name} n/a" for name, ratio, bound in checks
            if not ratio <= bound]  # a NaN ratio is neither above nor within its bound


def patch_table(frame, label: str, patch: str = "patch") -> str:
    """Markdown of a patch-ordering study's rows (symbolic back-end): per input, each ordering's
    median ``t_order_s`` with its range over the repeats, ``patch``'s time ratios against homa, AMD
    and METIS and its nnz(L)/flops ratios against METIS, with the targets it misses; the geometric
    means of every ordering's fill and flops against METIS; ``patch``'s median phase breakdown.
    Every number comes from the one frame (one run): medians over the repeats."""
    import numpy as np

    from .plotting import row_extras

    lines: list[str] = []
    ok = frame[(frame.status == "ok") & (frame.backend == "symbolic")]
    if ok.empty:
        raise ValueError(f"{label}: no ok rows of the symbolic back-end")
    if ok.threads.nunique() > 1:
        return scaling_table(frame, label)
    stats = ok.groupby(["dataset", "ordering"]).agg(
        n=("n", "first"), t=("t_order_s", "median"), t_min=("t_order_s", "min"), t_max=("t_order_s", "max"),
        nnz=("nnz_L", "median"), flops=("flops", "median"), runs=("t_order_s", "size"), threads=("threads", "first"))
    failed = frame[frame.status != "ok"]
    datasets = sorted(ok.dataset.unique(), key=lambda d: -int(stats.loc[d].n.iloc[0]))
    orderings = list(dict.fromkeys(ok.ordering))
    lines.append(f"Result file `{label}`; threads per cell: {sorted(ok.threads.unique().tolist())}; "
                 f"repeats per cell: {sorted(stats.runs.unique().tolist())}.\n")

    lines.append("## Ordering time (median s, [min-max]) and patch's ratios\n")
    head = ["input", "n"] + orderings + [f"{patch}/homa", "/amd", "/metis", "nnz/metis", "flops/metis",
                                        "targets missed"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    ratios = {o: {"nnz": [], "flops": []} for o in orderings}
    for d in datasets:
        s = stats.loc[d]
        n = int(s.n.iloc[0])
        cells = [d, f"{n:,}"]
        for o in orderings:
            cells.append(f"{s.t[o]:.3f} [{s.t_min[o]:.3f}-{s.t_max[o]:.3f}]" if o in s.index else "-")

        def get(o, col):
            return float(s.loc[o, col]) if o in s.index else float("nan")

        tp = get(patch, "t")
        r_homa, r_amd, r_metis = tp / get("homa", "t"), tp / get("amd", "t"), tp / get("metis", "t")
        r_nnz, r_flops = get(patch, "nnz") / get("metis", "nnz"), get(patch, "flops") / get("metis", "flops")
        cells += [f"{r_homa:.2f}", f"{r_amd:.2f}", f"{r_metis:.2f}", f"{r_nnz:.3f}", f"{r_flops:.3f}",
                  ", ".join(_targets_missed(n, r_homa, r_amd, r_metis, r_nnz)) or "none"]
        lines.append("| " + " | ".join(cells) + " |")
        for o in orderings:
            if o in s.index and "metis" in s.index:
                ratios[o]["nnz"].append(get(o, "nnz") / get("metis", "nnz"))
                ratios[o]["flops"].append(get(o, "flops") / get("metis", "flops"))

    def geometric_mean(values):
        return float(np.exp(np.mean(np.log(values))))

    lines.append("\n## Fill and flops against METIS over all inputs (geometric mean [max])\n")
    lines.append("| ordering | inputs | nnz(L)/METIS | flops/METIS | median time/METIS |")
    lines.append("|---|---:|---:|---:|---:|")
    for o in orderings:
        r = ratios[o]
        if not r["nnz"]:
            continue
        t_ratio = [float(stats.loc[(d, o), "t"] / stats.loc[(d, "metis"), "t"]) for d in datasets
                   if (d, o) in stats.index and (d, "metis") in stats.index]
        lines.append(f"| {o} | {len(r['nnz'])} | {geometric_mean(r['nnz']):.3f} [{max(r['nnz']):.3f}] | "
                     f"{geometric_mean(r['flops']):.3f} [{max(r['flops']):.3f}] | {np.median(t_ratio):.3f} |")

    lines.append(f"\n## {patch}: phase breakdown (median s over the repeats)\n")
    lines.append("| input | " + " | ".join(p[2:-2] for p in PATCH_PHASES) + " | levels | threads_used |")
    lines.append("|---|" + "---:|" * (len(PATCH_PHASES) + 2))
    patch_rows = ok[ok.ordering == patch]
    for d in datasets:
        rows = patch_rows[patch_rows.dataset == d]
        if rows.empty:
            continue
        extras = row_extras(rows, "ordering_extras")
        phases = [np.median([e.get(p, np.nan) for e in extras]) for p in PATCH_PHASES]
        lines.append(f"| {d} | " + " | ".join(f"{v:.3f}" for v in phases)
                     + f" | {extras[0].get('levels')} | {extras[0].get('threads_used', '-')} |")

    if not failed.empty:
        lines.append("\n## Cells not ok\n")
        for _, r in failed.iterrows():
            lines.append(f"- {r.dataset} / {r.ordering} / {r.backend}: {r.status} ({r.reason})")
    return "\n".join(lines) + "\n"


def scaling_table(frame, label: str) -> str:
    """Markdown of a thread-scaling study (one ordering at several thread budgets, symbolic
    back-end): per input and ordering, the median ``t_order_s`` [min-max] at each thread count, the
    speed-up of the median over one thread, and for the patch ordering the median decomposition
    and local-step times. Rows of different thread budgets are never pooled."""
    from .plotting import row_extras

    ok = frame[(frame.status == "ok") & (frame.backend == "symbolic")].copy()
    extras = row_extras(ok, "ordering_extras")
    for phase in ("t_decompose_s", "t_local_s"):  # the patch ordering's phases; NaN for others
        ok[phase] = [e.get(phase, float("nan")) for e in extras]
    threads = sorted(int(t) for t in ok.threads.unique())
    stats = ok.groupby(["dataset", "ordering", "threads"]).agg(
        n=("n", "first"), t=("t_order_s", "median"), t_min=("t_order_s", "min"), t_max=("t_order_s", "max"),
        runs=("t_order_s", "size"), decompose=("t_decompose_s", "median"), local=("t_local_s", "median"))
    lines = [f"Result file `{label}`; thread budgets: {threads}; repeats per cell: "
             f"{sorted(stats.runs.unique().tolist())}. Every cell at one thread budget; no pooling across them.\n",
             "## Ordering time by thread budget (median s [min-max]; speed-up of the median over the fewest threads)\n"]
    head = ["input", "n", "ordering"] + [f"{t} threads" for t in threads] + [f"{threads[-1]} vs {threads[0]}"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    phases = []
    for (d, o), s in stats.groupby(level=[0, 1]):
        s = s.droplevel([0, 1])
        cells = [d, f"{int(s.n.iloc[0]):,}", o]
        cells += [f"{s.t[t]:.3f} [{s.t_min[t]:.3f}-{s.t_max[t]:.3f}]" if t in s.index else "-" for t in threads]
        cells.append(f"{s.t[threads[0]] / s.t[threads[-1]]:.2f}x" if threads[0] in s.index and threads[-1] in s.index
                     else "-")
        lines.append("| " + " | ".join(cells) + " |")
        if s.decompose.notna().any():
            phases.append([d, o] + [f"{s.decompose[t]:.3f} / {s.local[t]:.3f}" if t in s.index else "-"
                                    for t in threads])
    if phases:
        lines.append("\n## Patch: decomposition / local step (median s) by thread budget\n")
        head = ["input", "ordering"] + [f"{t} threads" for t in threads]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(p) + " |" for p in phases]
    return "\n".join(lines) + "\n"


@app.command("patch-table")
def patch_table_command(
    result: Path = typer.Argument(..., help="A result file of a patch-ordering study (configs/patch-*.toml), or "
                                            "its <out>.parts folder while the run is still going."),
    patch: str = typer.Option("patch", "--patch", help="The patch variant the ratios and the phase table are about."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the Markdown to this file instead of stdout."),
):
    """Markdown tables of a patch-ordering study: median ordering time (and range) per input and ordering,
    patch's ratios against homa, AMD and METIS with the targets it misses, fill and flops against
    METIS (geometric means), and patch's phase breakdown. Runs nothing."""
    from .results import read_results
    from .store import read_fragments

    try:
        frame = read_fragments(result) if result.is_dir() else read_results(result)[0]
        text = patch_table(frame, str(result), patch)
    except (FileNotFoundError, ValueError, OSError) as err:
        _fail(str(err))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        console.print(escape(str(out)))


# --------------------------------------------------------------------------------------------------
# isolation
# --------------------------------------------------------------------------------------------------

ISOLATION_DATASETS = ["grid[n=1000]", "icosphere[n=642]", "torus[n=1000]", "delaunay[n=1000]"]
ISOLATION_ORDERINGS = ["natural", "rcm", "amd", "metis", "cholmod-amd"]
#: The timed work a row accounts for (the warm-up call is counted once per unit, below).
_WORK_COLUMNS = ("t_order_s", "t_tree_s", "t_symbolic_s", "t_analyze_s", "t_factor_s", "t_solve_s")


class _UnitClock:
    """runner.Observer that notes when each unit starts and finishes and when each dataset loads."""

    def __init__(self):
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.loading: dict[str, float] = {}

    def planned(self, cells_to_run, cells_done):
        pass

    def dataset_loading(self, name):
        self.loading[name] = time.perf_counter()

    def unit_started(self, unit):
        self.started.setdefault(unit.label, time.perf_counter())

    def cell_finished(self, unit, rows):
        self.finished[unit.label] = time.perf_counter()


def isolation_overhead(datasets: list[str], orderings: list[str], out: Path, jobs: int = 1) -> dict:
    """Run datasets × orderings × ``symbolic`` (one cell per unit, each unit in its own spawned child,
    each dataset loaded once in a child of its own) through ``runner.run`` into ``out``, and return
    per unit its wall time in the parent (start to its cell written) and the work its rows account
    for (warm-up call + ordering + symbolic analysis + any numeric phase); the difference is what
    isolation costs: spawning, imports, reading the cached dataset, shipping rows, the fragment."""
    from . import runner

    config = runner.RunConfig(datasets=datasets, orderings=orderings, backends=["symbolic"], out=out, jobs=jobs,
                              force=["*"])
    clock = _UnitClock()
    t0 = time.perf_counter()
    outcome = runner.run(config, progress=clock, warn=lambda text: err_console.print(escape(text)))
    total = time.perf_counter() - t0
    cells = outcome.cells
    bad = cells[cells["status"] != "ok"]
    if len(bad):
        first = bad.iloc[0]
        raise RuntimeError(f"{len(bad)} cell(s) not ok, e.g. {first['dataset']} · {first['ordering']}: "
                           f"{first['status']} ({first['reason']})")
    units = []
    for (dataset, ordering), rows in cells.groupby(["dataset", "ordering"], sort=False):
        label = f"{dataset} · {ordering}"
        work = float(rows[list(_WORK_COLUMNS)].astype(float).sum().sum()) + float(rows["t_warmup_s"].astype(float).max())
        units.append({"unit": label, "wall_s": clock.finished[label] - clock.started[label], "work_s": work})
    loaders = [min(t for lbl, t in clock.started.items() if lbl.startswith(name + " · ")) - t_load
               for name, t_load in clock.loading.items()
               if any(lbl.startswith(name + " · ") for lbl in clock.started)]
    return {"units": units, "loaders_s": loaders, "total_s": total, "jobs": jobs}


def isolation_lines(result: dict) -> list[str]:
    overhead = sorted(u["wall_s"] - u["work_s"] for u in result["units"])
    loaders = result["loaders_s"]
    return [
        f"{len(result['units'])} units (one cell each), jobs={result['jobs']}",
        f"isolated run, total wall: {result['total_s']:.2f} s (includes {len(loaders)} dataset loaders, "
        + (f"median {statistics.median(loaders):.2f} s each)" if loaders else "none timed)"),
        f"work the rows account for per unit (warm-up + ordering + analysis): median "
        f"{statistics.median(u['work_s'] for u in result['units']) * 1e3:.1f} ms",
        f"isolation overhead per unit (wall - work): median {statistics.median(overhead):.2f} s, "
        f"min {overhead[0]:.2f} s, max {overhead[-1]:.2f} s",
    ]


@app.command("isolation")
def isolation_command(
    dataset: list[str] = typer.Option(None, "-d", "--dataset", help=f"Datasets (default: {', '.join(ISOLATION_DATASETS)})."),
    ordering: list[str] = typer.Option(None, "-o", "--ordering", help=f"Orderings (default: {', '.join(ISOLATION_ORDERINGS)})."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Quality-only units at once (as `permbench run --jobs`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Keep the run's result file here (default: a temporary "
                                                          "file, removed); its cells are re-run (--force '*')."),
):
    """What per-unit process isolation costs: a run of trivial cells (small meshes × cheap orderings ×
    the symbolic back-end, one cell per unit) through `permbench run`'s entry point, then per unit
    its wall time minus the work its rows account for: median, min and max over the units."""
    from .store import StoreError

    datasets, orderings = list(dataset or ISOLATION_DATASETS), list(ordering or ISOLATION_ORDERINGS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = isolation_overhead(datasets, orderings, out or Path(tmp) / "isolation.parquet", jobs)
    except (RuntimeError, StoreError, ValueError) as err:
        _fail(str(err), 1 if isinstance(err, RuntimeError) else 2)
    for line in isolation_lines(result):
        console.print(escape(line))


# --------------------------------------------------------------------------------------------------
# cudss-explore (GPU host)
# --------------------------------------------------------------------------------------------------


def cudss_explore(dataset: str, k: int, out: Optional[Path]) -> list[dict]:
    """One matrix handed to cuDSS every way (its own orderings with and without the multithreading
    layer; user permutations with and without an ND tree; its own permutation and tree read back),
    one JSON line per case; checks the USER_PERM convention (new -> old) with the inverse AMD order.
    It reaches into the back-end's session (``cudss_handle``, ``Session`` in harness/backends/_cudss_session.py) to read cuDSS's own tree back."""
    from .. import datasets
    from ..core.case import Ordering, inverse_perm, symmetric_graph
    from ..orderings.amd import amd_order
    from ..orderings.metis import Metis
    from ..core.ndtree import NDTree
    from .backends._cudss_session import Session, cudss_handle, derive_nd_tree
    from .backends.cudss import CuDSS
    from .backends.symbolic import symbolic_factor

    t0 = time.perf_counter()
    case = datasets.load(dataset)
    graph = symmetric_graph(case.A)
    console.print(f"{dataset}: n={case.n:,} nnz={case.A.nnz:,} (load {time.perf_counter() - t0:.1f} s)")
    rows = []

    def record(label, result, t_order=None, nnz_L=None):
        ex = result.get("extras", {})
        row = {"case": label, "t_order_s": result.get("t_order_s", t_order),
               "t_cudss_reorder_s": ex.get("t_cudss_reorder_s"), "t_cudss_symbolic_s": ex.get("t_cudss_symbolic_s"),
               "t_tree_s": result.get("t_tree_s"), "t_analyze_s": result["t_analyze_s"], "t_factor_s": result["t_factor_s"],
               "t_refactor_median_s": result.get("t_refactor_median_s"), "t_solve_s": result["t_solve_s"],
               "backend_nnz_L": result["backend_nnz_L"], "nnz_L": nnz_L, "residual": result["residual"],
               "tree": ex.get("tree_source"), "nd_nlevels": ex.get("nd_nlevels"),
               "cudss_tree_nodes": ex.get("cudss_tree_nodes")}
        rows.append(row)
        console.print(escape(json.dumps(row, default=float)))

    own_perm = None
    for reorder, mt in (("default", True), ("default", False), ("amd", True), ("nd", True)):
        result = CuDSS(reorder=reorder, mt=mt, k=k).run(case, None, None, None)
        perm = result.pop("perm")
        nnz = symbolic_factor(graph, perm).nnz_L
        record(f"native reorder={reorder} mt={mt}", result, nnz_L=nnz)
        if reorder == "default" and mt:
            own_perm = perm
            console.print(f"  read-back perm: nnz_L={nnz:,}; its inverse: "
                          f"{symbolic_factor(graph, inverse_perm(perm)).nnz_L:,}")
    handle, _ = cudss_handle(True)
    with Session(handle, case.A) as session:
        session.analyze(None, None)
        own_tree = session.partition_tree()
    console.print(f"  cuDSS tree: {own_tree.shape[0]} nodes, sum {own_tree.sum():,}, last {own_tree[-3:].tolist()}")
    sym = symbolic_factor(graph, own_perm)
    for tree in ("off", "auto"):
        ordering = Ordering(own_perm, nd_tree=NDTree(own_tree, "reverse_bfs"))
        record(f"user perm = cuDSS's own, tree={tree} (cuDSS's own)",
               CuDSS(tree=tree, k=k).run(case, own_perm, ordering, sym), nnz_L=sym.nnz_L)
    record("user perm = cuDSS's own, tree=derive (from etree)",
           CuDSS(tree="derive", k=k).run(case, own_perm, Ordering(own_perm), sym), nnz_L=sym.nnz_L)
    for name, order in (("metis", lambda: Metis().compute(graph).perm), ("amd", lambda: amd_order(graph))):
        t0 = time.perf_counter()
        perm = order()
        t_order = time.perf_counter() - t0
        sym = symbolic_factor(graph, perm)
        t0 = time.perf_counter()
        derive_nd_tree(graph, perm, parent=sym.parent)
        console.print(f"  {name}: order {t_order:.2f} s, derive tree {time.perf_counter() - t0:.3f} s, "
                      f"nnz_L {sym.nnz_L:,}")
        for tree in ("off", "derive"):
            record(f"user perm = {name}, tree={tree}",
                   CuDSS(tree=tree, k=k).run(case, perm, Ordering(perm), sym), t_order, sym.nnz_L)
        if name == "amd":
            inv = inverse_perm(perm)
            result = CuDSS(tree="off").run(case, inv, Ordering(inv), None)
            console.print(f"  USER_PERM with the inverse AMD perm: LU_NNZ {result['backend_nnz_L']:,} "
                          f"(nnz_L of perm {sym.nnz_L:,}, of inverse {symbolic_factor(graph, inv).nnz_L:,})")
    if out is not None:
        out.write_text(json.dumps({"dataset": dataset, "n": case.n, "rows": rows}, indent=1, default=float))
    return rows


def explore_table(rows: list[dict]) -> list[str]:
    def f(v):
        return "      -" if v is None or v != v else f"{v:7.3f}"

    lines = [f"{'case':58s} {'order':>7s} {'reord':>7s} {'symb':>7s} {'factor':>7s} {'refac':>7s} {'solve':>7s} "
             f"{'LU_NNZ':>12s} {'nnz_L':>12s} {'resid':>8s}"]
    for r in rows:
        lines.append(f"{r['case'][:58]:58s} {f(r['t_order_s'])} {f(r['t_cudss_reorder_s'])} "
                     f"{f(r['t_cudss_symbolic_s'])} {f(r['t_factor_s'])} {f(r['t_refactor_median_s'])} "
                     f"{f(r['t_solve_s'])} {r['backend_nnz_L']:12,d} {r['nnz_L'] or 0:12,d} {r['residual']:8.1e}")
    return lines


@app.command("cudss-explore")
def cudss_explore_command(
    dataset: str = typer.Option("grid[matrix=graph,n=1000000]", "-d", "--dataset", help="The matrix."),
    k: int = typer.Option(3, "--k", min=1, help="Factorizations per case (more than 1 times REFACTORIZATION)."),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON file for the rows."),
):
    """On a GPU host: every way of handing one matrix to cuDSS (its own orderings with and without its
    multithreading layer, user permutations with and without an ND tree, its own permutation and tree
    read back), one line per case, then a table. Exit 2 where the cudss back-end is unavailable."""
    from ..core.specs import SpecError
    from .backends.cudss import CuDSS

    ok, reason = CuDSS.available()
    if not ok:
        _fail(f"the cudss back-end is unavailable here: {reason}")
    try:
        rows = cudss_explore(dataset, k, out)
    except SpecError as err:
        _fail(str(err))
    console.print()
    for line in explore_table(rows):
        console.print(escape(line))


@app.command("gpu-figures")
def gpu_figures_command(
    result: Path = typer.Argument(..., help="A result file of the cuDSS study (e.g. results/gpu/cudss-0.8/cudss-h200.parquet)."),
    out_dir: Path = typer.Option(Path("results/gpu"), "--out-dir", help="Folder for the figures and the table."),
    min_n: int = typer.Option(500_000, "--min-n", help="Datasets in the phase figure: n at least this."),
    table_min_n: int = typer.Option(0, "--table-min-n", help="Datasets in the table: n at least this."),
):
    """The cuDSS study's figures from stored rows only (the ``gpu_set`` of the figure registry,
    harness/figures.py): phases per configuration, end-to-end speedup over cuDSS's defaults versus n,
    and the table of phases and ratios (Markdown), each with its sidecar."""
    from . import figures as registry

    if not result.is_file():
        _fail(f"{result}: no such result file")
    outcomes = registry.write_set(registry.gpu_set(min_n=min_n, table_min_n=table_min_n),
                                  {"results": [result]}, out_dir)
    for outcome in outcomes:
        if outcome.skipped:
            console.print(f"skipped {outcome.name}: {outcome.skipped}", highlight=False, markup=False)
        for path in outcome.files:
            console.print(str(path), highlight=False, markup=False)
