"""The ``permbench`` command line: run, compare, report, and list the registries."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..harness.specs import SpecError
from . import suites

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Benchmark fill-reducing orderings of sparse SPD matrices before Cholesky.")
orderings_app = typer.Typer(help="The ordering registry.")
backends_app = typer.Typer(help="The solver back-ends.")
datasets_app = typer.Typer(help="The dataset registry.")
app.add_typer(orderings_app, name="orderings")
app.add_typer(backends_app, name="backends")
app.add_typer(datasets_app, name="datasets")

# Names such as "mesh:ogre: ..." hold emoji codes (:ogre:). Off a terminal (logs, CI) rich would
# wrap the wide tables at 80 columns: give them room instead.
console = Console(emoji=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, emoji=False)

_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """'8GiB' / '8G' / '500MB' / '123' -> bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r}: expected a size such as 8GiB, 500MiB or a byte count")
    value, unit = float(match.group(1)), (match.group(2) or "B").upper()[:1]
    scale = {"B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[unit]
    return int(value * scale)


def _registry_table(registry, title: str) -> Table:
    table = Table(title=title)
    for col in ("name", "available", "parameters (defaults)", "description / reason"):
        table.add_column(col)
    for cls in registry.classes():
        ok, reason = cls.available()
        params = ", ".join(f"{k}={v}" for k, v in cls.params.items())
        table.add_row(cls.name, "[green]yes[/]" if ok else "[red]no[/]", params,
                      cls.description if ok else reason)
    return table


@orderings_app.command("list")
def orderings_list():
    """Every ordering with its availability and, when unavailable, the reason."""
    from .. import orderings

    console.print(_registry_table(orderings.registry, "orderings"))


@backends_app.command("list")
def backends_list():
    """Every back-end with its availability and, when unavailable, the reason."""
    from . import backends

    console.print(_registry_table(backends.registry, "back-ends"))


@datasets_app.command("list")
def datasets_list(
    source: Optional[str] = typer.Option(None, "--source", help="generator | file (the plug-ins), suitesparse (the collection's index) or mesh (the mesh catalogue)."),
    filter_: Optional[str] = typer.Option(None, "--filter", help="With --source suitesparse|mesh, e.g. \"spd and 1e4 <= n <= 1e6 and kind ~ 'structural|2D/3D'\"."),
    refresh: bool = typer.Option(False, "--refresh", help="With --source suitesparse: download the current index first."),
):
    """The dataset plug-ins and named sets; or the SuiteSparse index / mesh catalogue, filtered."""
    import types

    from .. import datasets
    from ..datasets import sets
    from ..harness.case import InputError

    if source in (None, "generator", "file"):
        if filter_:
            err_console.print("[red]error:[/] --filter needs --source suitesparse or --source mesh")
            raise typer.Exit(2)
        classes = [c for c in datasets.registry.classes() if source is None or c.source == source]
        console.print(_registry_table(types.SimpleNamespace(classes=lambda: classes), "datasets"))
        if source is None:
            table = Table(title="named sets (usable with run -d)")
            for col in ("name", "members"):
                table.add_column(col)
            for named in sets.SETS.values():
                table.add_row(named.name, escape(named.description + (f" — {named.filter}" if named.filter else "")))
            console.print(table)
        return
    if source not in ("suitesparse", "mesh"):
        err_console.print(f"[red]error:[/] --source must be generator, file, suitesparse or mesh (got {source!r})")
        raise typer.Exit(2)
    try:
        rows = sets.suitesparse_rows(refresh=refresh) if source == "suitesparse" else sets.mesh_rows()
        rows = sets.select(rows, filter_)
    except (SpecError, InputError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2 if isinstance(err, SpecError) else 1)
    cols = ("name", "n", "nnz", "spd", "kind") if source == "suitesparse" else ("name", "vertices", "faces", "repo", "licence")
    table = Table(title=f"{source}: {len(rows)} match" + (f" {filter_!r}" if filter_ else ""))
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(escape(f"{row[c]:,}" if isinstance(row[c], int) and not isinstance(row[c], bool) else str(row[c]))
                        for c in cols))
    console.print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    names: list[str] = typer.Argument(..., help="ss:<Group>/<Name>, mesh:<name>, a named set, or ss-index."),
    force: bool = typer.Option(False, "--force", help="Download again even when cached: an upstream change shows as a checksum mismatch and the cached copy stays (the index is replaced)."),
):
    """Download, verify and cache datasets (with a progress bar), so runs can go --offline."""
    from ..datasets import sets
    from ..harness.case import InputError

    try:
        for got in sets.fetch_names(names, force=force, progress=True):
            console.print(escape(f"{got.name}  sha256 {got.sha256}  {got.path}  ({got.served_from})"), highlight=False,
                          soft_wrap=True)
    except (SpecError, InputError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2 if isinstance(err, SpecError) else 1)


@datasets_app.command("verify")
def datasets_verify(names: list[str] = typer.Argument(None, help="Only these datasets (default: every cached and mirror file).")):
    """Re-hash cached files (sha256 recorded on first fetch) and mirror files (their manifest); exit 1 on a mismatch."""
    from ..datasets import sets
    from ..harness.case import InputError

    try:
        rows = sets.verify(list(names or []))
    except (SpecError, InputError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    for what, state, detail in rows:
        colour = "green" if state == "ok" else "red"
        console.print(f"[{colour}]{state:<10}[/] " + escape(what if state == "ok" else f"{what}: {detail}"),
                      highlight=False, soft_wrap=True)
    console.print(f"{sum(s == 'ok' for _, s, _ in rows)} of {len(rows)} files verified")
    if any(state != "ok" for _, state, _ in rows):
        raise typer.Exit(1)


@datasets_app.command("info")
def datasets_info(name: str = typer.Argument(..., help="ss:<Group>/<Name>, mesh:<name> or a named set.")):
    """Where a fetched dataset comes from (URL, catalogue or index entry, mirror) and its cache state."""
    from ..datasets import sets
    from ..harness.case import InputError

    try:
        facts = sets.info(name)
    except (SpecError, InputError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2 if isinstance(err, SpecError) else 1)
    console.print_json(json.dumps(facts, default=str))


def _data_options(data_dir: Optional[Path], offline: bool) -> None:
    """--data-dir / --offline become environment variables, so the run's child processes see them."""
    import os

    if data_dir is not None:
        if not (data_dir / "manifest.json").is_file():
            raise typer.BadParameter(f"{data_dir}: no manifest.json; expected a folder laid out like ../shared/data",
                                     param_hint="--data-dir")
        os.environ["PERMBENCH_DATA_DIR"] = str(data_dir.resolve())
    if offline:
        os.environ["PERMBENCH_OFFLINE"] = "1"


def default_out(datasets, orderings, backends, repeat) -> Path:
    """A run's result file is named after what it runs, so the same command resumes the same run."""
    key = json.dumps([sorted(datasets), sorted(orderings), sorted(backends), repeat])
    return Path("results") / "runs" / f"run-{hashlib.sha256(key.encode()).hexdigest()[:10]}.parquet"


class _RichObserver:
    """Progress bar for a run: cells done out of cells to run, with counts per status."""

    def __init__(self, progress: Progress, title: str):
        self.progress, self.title = progress, title
        self.task = None
        self.counts: dict[str, int] = {}

    def planned(self, cells_to_run, cells_done):
        self.task = self.progress.add_task(self.title, total=cells_to_run,
                                           status=f"({cells_done} cells already done)" if cells_done else "")

    def dataset_loading(self, name):
        self.progress.update(self.task, description=escape(f"loading {name}"))

    def unit_started(self, unit):
        self.progress.update(self.task, description=escape(unit.label))

    def cell_finished(self, unit, rows):
        statuses = {row["status"] for row in rows}
        status = next((s for s in _STATUS_ORDER if s in statuses), sorted(statuses)[0])
        self.counts[status] = self.counts.get(status, 0) + 1
        self.progress.update(self.task, advance=1,
                             status=" ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))


#: The status a cell is counted under when its repeats differ: the worst one.
_STATUS_ORDER = ("error", "oom", "timeout", "not_spd", "unavailable", "skipped", "ok")


def execute_run(config, title: str = "run"):
    from . import provenance, results, runner

    groups = runner.plan(config)
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=err_console, transient=False) as progress:
        parts = runner.execute(config, progress=_RichObserver(progress, title), groups=groups)
    prov = provenance.collect()
    prov["run"] = {"datasets": config.datasets, "orderings": config.orderings, "backends": config.backends,
                   "repeat": config.repeat, "mem_limit_bytes": config.mem_limit_bytes,
                   "flop_limit": config.flop_limit, "seed": config.seed, "executor": config.executor,
                   "scheduler": config.scheduler, "jobs": config.jobs, "threads": config.threads,
                   "timeout_s": config.timeout_s, "plugins": config.plugins, "warmup": config.warmup,
                   "isolation": "one spawned child process per (dataset, ordering) unit"}
    prov["children"] = _children_provenance(results.read_fragments(parts, [c.cell_id for c in runner.cells_of(groups)]))
    frame = results.merge(parts, config.out, prov, cell_ids=[c.cell_id for c in runner.cells_of(groups)])
    return frame, time.perf_counter() - started


def _children_provenance(frame) -> dict:
    """Each back-end's provenance as its child reported it (the solver libraries, the BLAS they
    loaded), and the distinct thread settings the children ran with."""
    out: dict = {"backends": {}}
    if "backend_provenance" in frame:
        ok = frame.dropna(subset=["backend_provenance"])
        for name, text in ok.groupby("backend")["backend_provenance"].first().items():
            out["backends"][name] = json.loads(text)
    if "thread_info" in frame:
        out["thread_settings"] = [json.loads(t) for t in sorted(frame["thread_info"].dropna().unique())]
    return out


def dry_run_lines(config) -> list[str]:
    """Every cell of the run and what a run would do with it (nothing is executed): one line each,
    ``STATE  dataset · ordering · backend  cell-id``, after a header with the counts."""
    from . import runner

    groups = runner.plan(config)
    cells = runner.cells_of(groups)
    states = runner.cell_states(cells, runner.parts_dir_for(config.out), config)
    to_run = sum(s.action == "run" for s in states.values())
    lines = [f"{len(cells)} cells, {to_run} to run, {len(cells) - to_run} done · results: {config.out}"]
    width = max((len(s.describe()) for s in states.values()), default=0)
    for cell in cells:
        lines.append(f"{states[cell.cell_id].describe():<{width}}  {cell.dataset} · {cell.ordering} · "
                     f"{cell.backend}  {cell.cell_id}")
    return lines


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if kind == "s":
        return f"{value:.3g}"
    if kind == "int":
        return f"{int(value):,}"
    return f"{value:.3g}"


def summary_table(frame, title="summary") -> Table:
    table = Table(title=title)
    cols = [("dataset", None), ("ordering", None), ("backend", None), ("status", None),
            ("t_order_s", "s"), ("nnz_L", "int"), ("flops", "g"), ("t_analyze_s", "s"),
            ("t_factor_s", "s"), ("t_solve_s", "s"), ("t_total_s", "s"), ("residual", "g")]
    headers = ["dataset", "ordering", "back-end", "status", "order [s]", "nnz(L)", "flops", "analyze [s]",
               "factor [s]", "solve [s]", "total [s]", "residual"]
    for (name, kind), header in zip(cols, headers):
        table.add_column(header, overflow="fold", no_wrap=kind is not None, justify="right" if kind else "left")
    keys = ["dataset", "ordering", "backend"]
    for key, cell in frame.groupby(keys, sort=True):
        ok = cell[cell["status"] == "ok"]
        values = list(key)
        values.append(",".join(sorted(set(cell["status"]))))
        src = ok if len(ok) else cell
        for name, kind in cols[4:]:
            series = src[name].dropna() if name in src else []
            values.append(_fmt(float(series.median()) if len(series) else None, kind))
        table.add_row(*(escape(str(v)) for v in values))  # names hold [brackets]: not rich markup
    reasons = frame[frame["status"] != "ok"][["dataset", "ordering", "backend", "status", "reason"]]
    return table, reasons.drop_duplicates(subset=["dataset", "ordering", "backend", "status"])


def _print_summary(frame, out: Path, seconds: float):
    table, reasons = summary_table(frame)
    console.print(table)
    for row in reasons.itertuples():
        console.print(f"[yellow]{row.status}[/] " + escape(f"{row.dataset} · {row.ordering} · {row.backend}: {row.reason}"),
                      highlight=False)
    console.print(f"results: {out}  ({len(frame)} rows, {seconds:.1f} s)")


@app.command()
def run(
    dataset: list[str] = typer.Option(None, "-d", "--dataset", help="Dataset name, e.g. grid\\[n=100000]; repeatable."),
    ordering: list[str] = typer.Option(None, "-o", "--ordering", help="Ordering, e.g. patch\\[patch_size=256]; repeatable."),
    backend: list[str] = typer.Option(None, "-b", "--backend", help="Back-end, e.g. cholmod\\[k=10]; repeatable."),
    config: Optional[Path] = typer.Option(None, "-c", "--config", help="A suite file (TOML) whose keys mirror these options."),
    repeat: Optional[int] = typer.Option(None, "--repeat", min=1, help="Repeats per cell (default 1)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Result file (parquet); default results/runs/run-<hash>.parquet."),
    mem_limit: Optional[str] = typer.Option(None, "--mem-limit", help="Memory budget of one child process: factorizations predicted above it are skipped, a child above it is killed (status oom). Default 40% of RAM."),
    flop_limit: Optional[float] = typer.Option(None, "--flop-limit", help="Skip numeric factorizations predicted above this many flops (default 4e11: about 10 s of CHOLMOD on 2 cores)."),
    seed: int = typer.Option(0, "--seed", help="Seed passed to randomized orderings."),
    force: list[str] = typer.Option(None, "--force", metavar="PATTERN", help="Re-run cells matching this glob over their dataset, ordering or back-end name (or dataset/ordering/backend), even when done; '*' for all. Repeatable."),
    no_retry: bool = typer.Option(False, "--no-retry", help="Keep cells that ended in error/timeout/oom instead of re-running them."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0, help="Wall-clock limit in seconds of each step of a child (loading, one ordering, one back-end); 0 = none; default 1800. Past it: status timeout."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Children at once for units without a numeric back-end (their t_order_s is then measured next to others: recorded as concurrent_jobs). Units that time a numeric back-end always run alone."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads per child (BLAS, OpenMP, numba). Default: all CPUs for a unit running alone, CPUs / jobs otherwise."),
    executor: Optional[str] = typer.Option(None, "--executor", help="local (a pool of child processes) or dask (dask.distributed)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="With --executor dask: address of an existing scheduler (tcp://HOST:PORT); default a LocalCluster of --jobs workers."),
    plugins: list[str] = typer.Option(None, "--plugins", help="Extra plug-in module (import name or .py file) imported by the run and each child; repeatable. Also the environment variable PERMBENCH_PLUGINS (comma-separated)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the expanded cell list and what a run would do with each; run nothing."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Serve datasets from this local mirror (laid out like ../shared/data, with manifest.json) instead of the network (PERMBENCH_DATA_DIR)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network: a dataset neither in the mirror nor cached fails at once with 'not cached: NAME' (PERMBENCH_OFFLINE=1)."),
):
    """Run datasets × orderings × back-ends; with no arguments, the default suite.

    Each (dataset, ordering) runs in its own child process; each finished cell is saved at once.

    Re-running the same command resumes: done cells are skipped, failed ones retried.

    Exit code: 0 if no cell ended in error, 1 otherwise, 2 for bad arguments or unwritable results.
    """
    from .runner import ResultsWriteError, RunConfig, default_mem_limit_bytes
    from .runner import parts_dir_for as runner_parts

    cfg = None
    try:
        suite = suites.load(config) if config else (suites.DEFAULT if not (dataset or ordering or backend) else {})
        # Command-line options win over the suite file's keys, which win over the defaults.
        executor = executor or suite.get("executor", "local")
        jobs = jobs or int(suite.get("jobs", 1))
        threads = threads or suite.get("threads")
        timeout = float(suite.get("timeout", 1800.0)) if timeout is None else timeout
        if executor not in ("local", "dask"):
            err_console.print(f"[red]error:[/] executor must be local or dask (got {executor!r})")
            raise typer.Exit(2)
        if scheduler and executor != "dask":
            err_console.print("[red]error:[/] --scheduler needs --executor dask")
            raise typer.Exit(2)
        _data_options(data_dir, offline)
        from ..datasets.sets import expand as expand_sets

        datasets = expand_sets(list(dataset or suite.get("datasets") or suites.DEFAULT["datasets"]))
        from .runner import load_plugins, resolve_plugins

        load_plugins(resolve_plugins(plugins))  # so that available_orderings() below sees plug-in orderings
        orderings = list(ordering or suite.get("orderings") or suites.available_orderings())
        backends = list(backend or suite.get("backends") or ["symbolic"])
        repeat = repeat or int(suite.get("repeat", 1))
        out = out or (Path(suite["out"]) if suite.get("out") else default_out(datasets, orderings, backends, repeat))
        mem = parse_bytes(mem_limit or suite["mem_limit"]) if (mem_limit or suite.get("mem_limit")) \
            else default_mem_limit_bytes()
        cfg = RunConfig(datasets=datasets, orderings=orderings, backends=backends, repeat=repeat, out=out,
                        mem_limit_bytes=mem, flop_limit=flop_limit or float(suite.get("flop_limit", 4e11)),
                        seed=seed, force=list(force or []), retry=not no_retry, timeout_s=timeout or None,
                        jobs=jobs, threads=threads, executor=executor, scheduler=scheduler,
                        plugins=list(plugins or []))
        if dry_run:
            for line in dry_run_lines(cfg):
                console.print(line, soft_wrap=True, highlight=False, markup=False)
            return
        frame, seconds = execute_run(cfg)
    except KeyboardInterrupt:
        where = runner_parts(cfg.out) if cfg is not None else "the run's .parts folder"
        err_console.print(escape(f"interrupted: finished cells are kept in {where}; re-run the same command to resume"))
        raise typer.Exit(130)
    except (SpecError, suites.SuiteError, ResultsWriteError, FileNotFoundError, ImportError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    _print_summary(frame, out, seconds)
    if (frame["status"] == "error").any():
        raise typer.Exit(1)


@app.command()
def compare(
    orderings: str = typer.Option("patch,homa,metis,scotch,amd", "--orderings", help="Comma-separated orderings."),
    dataset: list[str] = typer.Option(None, "-d", "--dataset", help="Datasets (default: the patch-ordering study)."),
    repeat: int = typer.Option(5, "--repeat", min=1, help="Repeats; t_order is their median."),
    out: Path = typer.Option(Path("results/compare.parquet"), "--out"),
    baseline: str = typer.Option("metis", "--baseline", help="Ordering the ratios are relative to."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Serve datasets from this local mirror (PERMBENCH_DATA_DIR)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (PERMBENCH_OFFLINE=1)."),
):
    """t_order (median), nnz_L and flops per ordering, with ratios to a baseline, from one run.

    Default datasets: a 1M-vertex grid, a 655k-vertex icosphere, a 512k-vertex tetrahedral grid
    and every mesh of ../shared/data when it is there.
    """
    from ..datasets.sets import expand as expand_sets
    from .runner import ResultsWriteError, RunConfig
    from . import compare as comparison

    names = [o.strip() for o in orderings.split(",") if o.strip()]
    try:
        _data_options(data_dir, offline)
        datasets = expand_sets(list(dataset or suites.compare_datasets()))
        cfg = RunConfig(datasets=datasets, orderings=names, backends=["symbolic"], repeat=repeat, out=out)
        frame, seconds = execute_run(cfg, title="compare")
    except (SpecError, ResultsWriteError, FileNotFoundError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    table = comparison.ratio_table(frame, baseline)
    console.print(comparison.rich_table(table, baseline))
    csv = out.with_suffix(".csv")
    table.to_csv(csv, index=False)
    console.print(f"results: {out}, table: {csv}  ({seconds:.1f} s)")
    failed = frame[frame["status"] != "ok"]
    for row in failed.drop_duplicates(subset=["dataset", "ordering"]).itertuples():
        console.print(f"[yellow]{row.status}[/] " + escape(f"{row.dataset} · {row.ordering}: {row.reason}"),
                      highlight=False)


@app.command()
def report(
    results_file: Path = typer.Argument(..., help="A result file written by `permbench run`."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Where figures go (default: next to the results)."),
    baseline: str = typer.Option("metis", "--baseline", help="Ordering the fill ratios are relative to."),
):
    """Figures (PNG and PDF) from a result file: ordering time, relative fill, time breakdown, scaling."""
    from . import report as reporting

    out_dir = out_dir or results_file.with_suffix("").with_name(results_file.stem + "-figures")
    try:
        written = reporting.write_report(results_file, out_dir, baseline=baseline)
    except (FileNotFoundError, ValueError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    for path in written:
        console.print(str(path))


@app.command()
def figures(
    config: Path = typer.Option(Path("configs/paper.toml"), "-c", "--config",
                                help="Suite file whose 'figures' table names the result files, the figure set and the output folder."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Write the figures here instead of the suite's figures.out_dir."),
):
    """Rebuild the named figure set (a)-(f) from stored result files only; never runs a benchmark.

    Writes NAME.png, NAME.pdf and NAME.json (sha256 of the result files used) per figure; a figure
    whose data is absent is skipped with the reason. Same result files, byte-identical figures.
    """
    import dataclasses

    from . import figures as figure_set

    try:
        cfg = figure_set.load_config(config)
        if out_dir is not None:
            cfg = dataclasses.replace(cfg, out_dir=out_dir)
        outcomes = figure_set.build_figures(cfg)
    except (suites.SuiteError, figure_set.FigureConfigError, FileNotFoundError, ValueError) as err:
        err_console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2)
    for outcome in outcomes:
        if outcome.skipped:
            console.print(f"[yellow]skipped[/] {outcome.name}: {outcome.skipped}", highlight=False)
        for path in outcome.files:
            console.print(str(path), highlight=False)


def _interrupt_on_sigterm() -> None:
    """A batch system stops a job with SIGTERM: treat it as Ctrl-C (children killed, cells kept)."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main():
    _interrupt_on_sigterm()
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted: finished cells are kept in the run's .parts folder; re-run to resume")
        sys.exit(130)
