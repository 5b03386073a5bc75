"""The ``permbench`` command line: run, compare, report, and list the registries."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..core.specs import SpecError
from . import results_cli, studies, suites

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Benchmark fill-reducing orderings of sparse SPD matrices before Cholesky.")
orderings_app = typer.Typer(help="The ordering registry.")
backends_app = typer.Typer(help="The solver back-ends.")
datasets_app = typer.Typer(help="The dataset registry.")
def _version(value: bool) -> None:
    if value:
        from permbench import __version__

        console.print(f"permbench {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    """Benchmark fill-reducing orderings of sparse SPD matrices before Cholesky."""


app.add_typer(orderings_app, name="orderings")
app.add_typer(backends_app, name="backends")
app.add_typer(datasets_app, name="datasets")
app.add_typer(studies.app, name="study")  # harness/studies.py
app.add_typer(results_cli.app, name="results")  # harness/results_cli.py

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


def _registry_table(registry, title: str, deterministic: bool = False) -> Table:
    """The registry as a table; for orderings also whether more than one thread can change the
    permutation (``deterministic``)."""
    table = Table(title=title)
    cols = ("name", "available") + (("deterministic",) if deterministic else ()) + \
        ("parameters (defaults)", "description / reason")
    for col in cols:
        table.add_column(col)
    for cls in registry.classes():
        ok, reason = cls.available()
        params = ", ".join(f"{k}={v}" for k, v in cls.params.items())
        det = ("yes" if getattr(cls, "deterministic", True) else "[yellow]no (threads > 1)[/]",) if deterministic else ()
        table.add_row(escape(cls.name), "[green]yes[/]" if ok else "[red]no[/]", *det, escape(params),
                      escape(cls.description if ok else reason))
    return table


@orderings_app.command("list")
def orderings_list():
    """Every ordering with its availability and, when unavailable, the reason."""
    from .. import orderings

    console.print(_registry_table(orderings.registry, "orderings", deterministic=True))


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
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Serve datasets from this local mirror (laid out like ../shared/data, with manifest.json) (PERMBENCH_DATA_DIR)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (PERMBENCH_OFFLINE=1)."),
):
    """The dataset plug-ins and named sets; or the SuiteSparse index / mesh catalogue, filtered."""
    import types

    from .. import datasets
    from ..datasets import sets
    from ..core.case import InputError

    _data_options(data_dir, offline)

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
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Serve datasets from this local mirror (laid out like ../shared/data, with manifest.json) (PERMBENCH_DATA_DIR)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (PERMBENCH_OFFLINE=1)."),
):
    """Download, verify and cache datasets (with a progress bar), so runs can go --offline."""
    from ..datasets import sets
    from ..core.case import InputError

    _data_options(data_dir, offline)

    try:
        for got in sets.fetch_names(names, force=force, progress=True):
            console.print(escape(f"{got.name}  sha256 {got.sha256}  {got.path}  ({got.served_from})"), highlight=False,
                          soft_wrap=True)
    except (SpecError, InputError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2 if isinstance(err, SpecError) else 1)


@datasets_app.command("verify")
def datasets_verify(
    names: list[str] = typer.Argument(None, help="Only these datasets (default: every cached and mirror file)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Serve datasets from this local mirror (laid out like ../shared/data, with manifest.json) (PERMBENCH_DATA_DIR)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (PERMBENCH_OFFLINE=1)."),
):
    """Re-hash cached files (sha256 recorded on first fetch) and mirror files (their manifest); exit 1 on a mismatch."""
    from ..datasets import sets
    from ..core.case import InputError

    _data_options(data_dir, offline)

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
def datasets_info(
    name: str = typer.Argument(..., help="ss:<Group>/<Name>, mesh:<name> or a named set."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Serve datasets from this local mirror (laid out like ../shared/data, with manifest.json) (PERMBENCH_DATA_DIR)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (PERMBENCH_OFFLINE=1)."),
):
    """Where a fetched dataset comes from (URL, catalogue or index entry, mirror) and its cache state."""
    from ..datasets import sets
    from ..core.case import InputError

    _data_options(data_dir, offline)

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
        from .runner import STATUS_ORDER

        status = next((s for s in STATUS_ORDER if s in statuses), sorted(statuses)[0])
        self.counts[status] = self.counts.get(status, 0) + 1
        self.progress.update(self.task, advance=1,
                             status=" ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))


def execute_run(config, title: str = "run", wait: bool = False):
    """Run with a progress bar; returns the runner's RunOutcome."""
    from . import runner

    def warn(text):
        err_console.print("[yellow]warning:[/] " + escape(text), highlight=False)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=err_console, transient=False) as progress:
        return runner.run(config, progress=_RichObserver(progress, title), wait=wait, warn=warn)


def dry_run_lines(config) -> list[str]:
    """Every cell of the run and what a run would do with it (nothing is executed): one line each,
    ``STATE  dataset · ordering · backend  cell-id``, after a header with the counts. States:
    ``done``, ``stale`` (stored under an older code or library version: it would run again) and
    ``to run``."""
    from . import runner
    from .store import ResultStore

    groups = runner.plan(config)
    cells = runner.cells_of(groups)
    store = ResultStore(config.out, readonly=True,
                        warn=lambda text: err_console.print("[yellow]warning:[/] " + escape(text), highlight=False))
    states = runner.cell_states(cells, store, config)
    counts = {w: sum(s.why == w for s in states.values()) for w in ("stale",)}
    to_run = sum(s.action == "run" for s in states.values())
    lines = [f"{len(cells)} cells: {len(cells) - to_run} done, {counts['stale']} stale, "
             f"{to_run - counts['stale']} to run · results: {config.out}"]
    width = max((len(s.describe()) for s in states.values()), default=0)
    for cell in cells:
        lines.append(f"{states[cell.cell_id].describe():<{width}}  {cell.dataset} · {cell.ordering} · "
                     f"{cell.backend}  {cell.cell_id}")
    return lines


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if kind == "int":
        return f"{int(value):,}"
    return f"{value:.3g}"


def _spread(series, kind: str) -> str:
    """'median' for one value, 'median [min–max]' for repeats."""
    if not len(series):
        return "–"
    med = _fmt(float(series.median()), kind)
    if len(series) == 1 or series.min() == series.max():
        return med
    return f"{med} [{_fmt(float(series.min()), kind)}–{_fmt(float(series.max()), kind)}]"


#: The summary's columns: (row column, header with unit, format). Times are medians over the
#: repeats with their range; the total is the README's definition (graph build included).
SUMMARY_COLUMNS = [("t_graph_s", "graph [s]", "s"), ("t_order_s", "order [s]", "s"), ("nnz_L", "nnz(L)", "int"),
                   ("flops", "flops", "g"), ("t_tree_s", "tree [s]", "s"), ("t_analyze_s", "analyze [s]", "s"),
                   ("t_factor_s", "factor [s]", "s"), ("t_solve_s", "solve [s]", "s"), ("t_total_s", "total [s]", "s"),
                   ("cpu_util", "CPU/wall", "g"), ("residual", "residual", "g")]


def summary_table(frame, title="summary"):
    repeats = int(frame.groupby(["dataset", "ordering", "backend"])["repeat"].nunique().max()) if len(frame) else 0
    if repeats > 1:
        title += f" — median [min–max] over {repeats} repeats"
    table = Table(title=title)
    for header in ("dataset", "ordering", "back-end", "status"):
        table.add_column(header, overflow="fold")
    for _, header, _ in SUMMARY_COLUMNS:
        table.add_column(header, overflow="fold", justify="right")
    for key, cell in frame.groupby(["dataset", "ordering", "backend"], sort=True):
        ok = cell[cell["status"] == "ok"]
        src = ok if len(ok) else cell
        values = list(key) + [",".join(sorted(set(cell["status"])))]
        for name, _, kind in SUMMARY_COLUMNS:
            values.append(_spread(src[name].dropna().astype(float), kind) if name in src else "–")
        table.add_row(*(escape(str(v)) for v in values))  # names hold [brackets]: not rich markup
    reasons = frame[frame["status"] != "ok"][["dataset", "ordering", "backend", "status", "reason"]]
    return table, reasons.drop_duplicates(subset=["dataset", "ordering", "backend", "status"])


def finish_run(outcome, table: bool = True):
    """The run's table and reasons, where its results are, what is left beside them, and as the
    last line the cells by status; exits 1 when a cell failed (error, timeout, oom)."""
    from .store import ResultStore

    if table:
        summary, reasons = summary_table(outcome.cells)
        console.print(summary)
        for row in reasons.itertuples():
            console.print(f"[yellow]{row.status}[/] " + escape(f"{row.dataset} · {row.ordering} · {row.backend}: {row.reason}"),
                          highlight=False)
    console.print(escape(f"results: {outcome.out}  ({len(outcome.cells)} rows of this run, {len(outcome.frame)} in the "
                         f"file, {outcome.seconds:.1f} s)"), highlight=False)
    left = ResultStore(outcome.out).leftovers()
    if left:
        console.print(escape(f"kept: {left}; re-run to resume, or `permbench clean {outcome.out}`"), highlight=False)
    counts = outcome.status_counts()
    console.print("cells: " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), highlight=False)
    if outcome.failed:
        raise typer.Exit(1)


def _warn_machine_paths(datasets: list[str]) -> None:
    from .portable import machine_path_warnings

    for warning in machine_path_warnings(datasets):
        err_console.print("[yellow]warning:[/] " + escape(warning), highlight=False, soft_wrap=True)


@app.command()
def run(
    dataset: list[str] = typer.Option(None, "-d", "--dataset", help="Dataset name, e.g. grid\\[n=100000]; repeatable."),
    ordering: list[str] = typer.Option(None, "-o", "--ordering", help="Ordering, e.g. patch\\[patch_size=256]; repeatable."),
    backend: list[str] = typer.Option(None, "-b", "--backend", help="Back-end, e.g. cholmod\\[k=10]; repeatable."),
    config: Optional[Path] = typer.Option(None, "-c", "--config", help="A suite file (TOML) whose keys mirror these options."),
    repeat: Optional[int] = typer.Option(None, "--repeat", min=1, help="Repeats per cell (default 1)."),
    rounds: Optional[int] = typer.Option(None, "--rounds", min=1, help="Run the repeats in this many rounds (as asv's rounds): each round runs its share of the repeats of every cell of a dataset, in a fresh child, before the next round starts, so a slow spell of the machine hits every contender alike (default 1: all repeats of a cell in one child)."),
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
    wait: bool = typer.Option(False, "--wait", help="If another run is writing the same --out, wait for it instead of failing."),
):
    """Run datasets × orderings × back-ends; with no arguments, the default suite.

    Each (dataset, ordering) runs in its own child process; each finished cell is saved at once.
    The result file accumulates: cells of earlier runs into the same --out stay, a cell is
    replaced only when it runs again. Re-running the same command resumes: done cells are
    skipped, failed ones retried, cells whose code changed (stale) re-run.

    Exit code: 0 when every cell ended ok, skipped, unavailable or not_spd; 1 when any ended in
    error, timeout or oom; 2 for bad arguments or a result file that is locked, refused or unwritable.
    """
    import contextlib

    from .writer_lock import StoreError, writer_lock

    cfg = None
    held = contextlib.ExitStack()
    try:
        if out is not None and not dry_run:
            # Before the numeric stack loads: a second writer on the same file is told at once.
            held.enter_context(writer_lock(out, wait))
        from .runner import RunConfig, default_mem_limit_bytes

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
        # A suite's data_dir (its real inputs' mirror, e.g. ../shared/data) serves mesh:/ss: names
        # where it exists; elsewhere they come from the cache or the network, as without it.
        if data_dir is None and suite.get("data_dir") and (Path(suite["data_dir"]) / "manifest.json").is_file():
            data_dir = Path(suite["data_dir"])
        _data_options(data_dir, offline)
        from ..datasets.sets import expand as expand_sets

        datasets = expand_sets(list(dataset or suite.get("datasets") or suites.DEFAULT["datasets"]))
        from .runner import load_plugins, resolve_plugins

        load_plugins(resolve_plugins(plugins))  # so that available_orderings() below sees plug-in orderings
        orderings = list(ordering or suite.get("orderings") or suites.available_orderings())
        backends = list(backend or suite.get("backends") or ["symbolic"])
        repeat = repeat or int(suite.get("repeat", 1))
        rounds = rounds or int(suite.get("rounds", 1))
        out = out or (Path(suite["out"]) if suite.get("out") else default_out(datasets, orderings, backends, repeat))
        mem = parse_bytes(mem_limit or suite["mem_limit"]) if (mem_limit or suite.get("mem_limit")) \
            else default_mem_limit_bytes()
        cfg = RunConfig(datasets=datasets, orderings=orderings, backends=backends, repeat=repeat, out=out,
                        mem_limit_bytes=mem, flop_limit=flop_limit or float(suite.get("flop_limit", 4e11)),
                        seed=seed, force=list(force or []), retry=not no_retry, timeout_s=timeout or None,
                        jobs=jobs, threads=threads, executor=executor, scheduler=scheduler,
                        plugins=list(plugins or []), rounds=rounds)
        _warn_machine_paths(datasets)
        if dry_run:
            for line in dry_run_lines(cfg):
                console.print(line, soft_wrap=True, highlight=False, markup=False)
            return
        with held:
            outcome = execute_run(cfg, wait=wait)
    except KeyboardInterrupt:
        where = f"{cfg.out}.parts" if cfg is not None else "the run's .parts folder"
        err_console.print(escape(f"interrupted: finished cells are kept in {where}; re-run the same command to "
                                 f"resume, or `permbench clean {cfg.out if cfg else '<out>'}` to merge them and "
                                 f"remove the rest"))
        raise typer.Exit(130)
    except (SpecError, suites.SuiteError, StoreError, FileNotFoundError, ImportError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    finally:
        held.close()
    finish_run(outcome)


@app.command()
def compare(
    orderings: str = typer.Option("patch,homa,metis,scotch,amd", "--orderings", help="Comma-separated orderings."),
    dataset: list[str] = typer.Option(None, "-d", "--dataset", help="Datasets (default: the patch-ordering study)."),
    repeat: int = typer.Option(5, "--repeat", min=1, help="Repeats; t_order is their median."),
    out: Path = typer.Option(Path("results/compare.parquet"), "--out"),
    baseline: str = typer.Option("metis", "--baseline", help="Ordering the ratios are relative to."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Serve datasets from this local mirror (PERMBENCH_DATA_DIR)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (PERMBENCH_OFFLINE=1)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and every cell; run nothing."),
):
    """t_order (median), nnz_L and flops per ordering, with ratios to a baseline, from one run.

    Default datasets: a 1M-vertex grid, a 655k-vertex icosphere, a 512k-vertex tetrahedral grid
    and every mesh of ../shared/data when it is there. The plan is printed before anything runs.
    """
    from ..datasets.sets import expand as expand_sets
    from .runner import ResultsWriteError, RunConfig
    from .store import StoreError
    from . import compare as comparison

    names = [o.strip() for o in orderings.split(",") if o.strip()]
    try:
        # The default study's real meshes are catalogue names served from the shared mirror.
        shared = suites.shared_data_dir() if not dataset and data_dir is None else None
        _data_options(data_dir or shared, offline)
        datasets = expand_sets(list(dataset or suites.compare_datasets()))
        cfg = RunConfig(datasets=datasets, orderings=names, backends=["symbolic"], repeat=repeat, out=out)
        _warn_machine_paths(datasets)
        lines = dry_run_lines(cfg)
        console.print(escape(f"plan: {len(datasets)} datasets × {len(names)} orderings × symbolic, {repeat} repeats "
                             f"each{' (the default study: large meshes; -d names your own)' if not dataset else ''}; "
                             + lines[0]), highlight=False, soft_wrap=True)
        console.print(escape("datasets: " + ", ".join(datasets)), highlight=False, soft_wrap=True)
        if dry_run:
            for line in lines[1:]:
                console.print(line, soft_wrap=True, highlight=False, markup=False)
            return
        outcome = execute_run(cfg, title="compare")
    except (SpecError, ResultsWriteError, StoreError, FileNotFoundError, ImportError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    frame = outcome.cells
    table = comparison.ratio_table(frame, baseline)
    console.print(comparison.rich_table(table, baseline))
    csv = out.with_suffix(".csv")
    table.to_csv(csv, index=False)
    console.print(f"table: {csv}")
    failed = frame[frame["status"] != "ok"]
    for row in failed.drop_duplicates(subset=["dataset", "ordering"]).itertuples():
        console.print(f"[yellow]{row.status}[/] " + escape(f"{row.dataset} · {row.ordering}: {row.reason}"),
                      highlight=False)
    finish_run(outcome, table=False)


@app.command()
def clean(
    out: Path = typer.Argument(..., help="A result file whose run was interrupted (its <out>.parts folder)."),
    discard: bool = typer.Option(False, "--discard", help="Delete finished but unmerged cells too, instead of merging them."),
):
    """Tidy what an interrupted run left beside a result file: merge its finished cells into the
    file (or --discard them), remove the dataset cache and rejected fragments. Exit 2 if a run is
    writing the file."""
    import shutil

    from ..core import provenance
    from .store import ResultStore, StoreError

    try:
        with ResultStore(out) as store:
            left = store.leftovers()
            if not left:
                console.print(escape(f"nothing to clean beside {out}"), highlight=False)
                return
            if discard:
                shutil.rmtree(store.parts)
            else:
                shutil.rmtree(store.parts / "rejected", ignore_errors=True)
                if store.fragments():
                    prov = provenance.collect()
                    prov["run"] = {"merged_by": "permbench clean"}
                    store.merge(prov)
                store.tidy()
            console.print(escape(f"cleaned: {left}" + (" (discarded)" if discard else " (finished cells merged)")),
                          highlight=False)
    except StoreError as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)


def _deprecated_out(out: Optional[Path], old: Optional[Path], old_name: str) -> Optional[Path]:
    """``--out`` is the output option of every command; an older spelling still works, with a warning."""
    if old is not None:
        if out is not None and out != old:
            raise typer.BadParameter(f"give --out only ({old_name} is its old spelling)", param_hint=old_name)
        err_console.print(f"[yellow]warning:[/] {old_name} is deprecated; use --out")
        return old
    return out


@app.command()
def report(
    results_files: list[Path] = typer.Argument(..., help="One or more result files written by `permbench run`."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the figures and report.html (default: <first result>-figures next to it)."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", hidden=True, help="Deprecated spelling of --out."),
    baseline: str = typer.Option("metis", "--baseline", help="Ordering the fill ratios are relative to."),
):
    """Figures (PNG and PDF) and one self-contained report.html from result files: ordering time,
    relative fill, time breakdown, scaling, performance profiles; the table, every non-ok reason and
    the provenance. Runs nothing."""
    from . import report as reporting

    first = results_files[0]
    out = _deprecated_out(out, out_dir, "--out-dir") or first.with_suffix("").with_name(first.stem + "-figures")
    try:
        written = reporting.write_report(results_files, out, baseline=baseline)
    except (FileNotFoundError, ValueError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    for path in written:
        console.print(str(path), highlight=False)


@app.command()
def figures(
    config: Path = typer.Option(Path("configs/paper.toml"), "-c", "--config",
                                help="Suite file whose 'figures' table names the result files, the figure set and the output folder."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the figures to this folder instead of the suite's figures.out_dir."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", hidden=True, help="Deprecated spelling of --out."),
    list_: bool = typer.Option(False, "--list", help="Print every registered figure and the sets drawn from them, then exit."),
):
    """Rebuild the named figure set (a)-(f) from stored result files only; never runs a benchmark.

    Writes NAME.png, NAME.pdf and NAME.json (sha256 of the result files used) per figure; a figure
    whose data is absent is skipped with the reason. Same result files, byte-identical figures.
    """
    import dataclasses

    from . import figures as figure_set

    if list_:
        console.print("\n".join(figure_set.registry_lines()), highlight=False, markup=False)
        return
    out = _deprecated_out(out, out_dir, "--out-dir")
    try:
        cfg = figure_set.load_config(config)
        if out is not None:
            cfg = dataclasses.replace(cfg, out_dir=out)
        outcomes = figure_set.build_figures(cfg)
    except (suites.SuiteError, figure_set.FigureConfigError, FileNotFoundError, ValueError) as err:
        err_console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2)
    for outcome in outcomes:
        if outcome.skipped:
            console.print(f"[yellow]skipped[/] {outcome.name}: {outcome.skipped}", highlight=False)
        for path in outcome.files:
            console.print(str(path), highlight=False)


@app.command("diff")
def diff_command(
    base: Path = typer.Argument(..., help="The reference result file (e.g. main's)."),
    new: Path = typer.Argument(..., help="The result file to judge against it."),
    threshold: float = typer.Option(1.1, "--threshold", min=1.0, help="A timing regressed when new/base of the medians exceeds this and the repeats say it is significant."),
    alpha: float = typer.Option(0.05, "--alpha", min=0.0, max=1.0, help="Significance level of the Mann–Whitney test over the repeats."),
    format_: str = typer.Option("table", "--format", help="table (rich), md, csv or json."),
    only_changed: bool = typer.Option(False, "--only-changed", help="Leave out metrics whose verdict is 'same'."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the md/csv/json output to this file instead of stdout."),
):
    """Compare two stored result files (runs nothing): per cell and timing, the ratio of medians with
    both ranges and a Mann–Whitney test over the repeats; counts compared exactly; cells in one file only.

    Exit code: 1 when a metric regressed beyond --threshold significantly (or an ok cell now fails),
    0 otherwise, 2 for bad arguments or unreadable files.
    """
    from . import diff as differ

    if format_ not in ("table", "md", "csv", "json"):
        err_console.print(f"[red]error:[/] --format must be table, md, csv or json (got {format_!r})")
        raise typer.Exit(2)
    try:
        outcome = differ.diff_files(base, new, threshold=threshold, alpha=alpha)
    except (FileNotFoundError, ValueError, OSError) as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    if format_ == "table":
        console.print(differ.rich_table(outcome, only_changed))
        for title, table in (("status changed", outcome.status_changes), ("only in base", outcome.only_in_base),
                             ("only in new", outcome.only_in_new)):
            for row in table.to_dict("records"):
                detail = {k: v for k, v in row.items() if k not in ("dataset", "ordering", "backend")}
                console.print(f"[yellow]{title}[/] " + escape(f"{row['dataset']} · {row['ordering']} · "
                                                              f"{row['backend']}: {detail}"), highlight=False)
        console.print(escape(differ.summary_line(outcome)), highlight=False)
    else:
        render = {"md": differ.render_markdown, "csv": differ.render_csv, "json": differ.render_json}[format_]
        text = render(outcome, only_changed)
        if out is not None:
            out.write_text(text)
            err_console.print(escape(f"{out}: {differ.summary_line(outcome)}"), highlight=False)
        else:
            sys.stdout.write(text)
    raise typer.Exit(outcome.exit_code())


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
