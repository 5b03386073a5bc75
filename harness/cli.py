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

console = Console()
err_console = Console(stderr=True)

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
def datasets_list():
    """The dataset plug-ins (generators, file readers, fetchers)."""
    from .. import datasets

    console.print(_registry_table(datasets.registry, "datasets"))


def default_out(datasets, orderings, backends, repeat) -> Path:
    """A run's result file is named after what it runs, so the same command resumes the same run."""
    key = json.dumps([sorted(datasets), sorted(orderings), sorted(backends), repeat])
    return Path("results") / "runs" / f"run-{hashlib.sha256(key.encode()).hexdigest()[:10]}.parquet"


def _progress_callback(progress: Progress, task, counts: dict):
    def callback(group, rows):
        if rows is None:
            progress.update(task, description=f"{group.dataset.spec} · {group.ordering.spec}")
            return
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        progress.update(task, advance=1, status=" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return callback


def execute_run(config, title: str = "run"):
    from . import provenance, results, runner

    groups = runner.plan(config)
    counts: dict[str, int] = {}
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=err_console, transient=False) as progress:
        task = progress.add_task(title, total=len(groups), status="")
        parts = runner.execute(config, progress=_progress_callback(progress, task, counts))
    prov = provenance.collect()
    prov["run"] = {"datasets": config.datasets, "orderings": config.orderings, "backends": config.backends,
                   "repeat": config.repeat, "mem_limit_bytes": config.mem_limit_bytes,
                   "flop_limit": config.flop_limit, "seed": config.seed}
    frame = results.merge(parts, config.out, prov)
    return frame, time.perf_counter() - started


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
    for name, _ in cols:
        table.add_column(name, overflow="fold")
    keys = ["dataset", "ordering", "backend"]
    for key, cell in frame.groupby(keys, sort=True):
        ok = cell[cell["status"] == "ok"]
        values = list(key)
        values.append(",".join(sorted(set(cell["status"]))))
        src = ok if len(ok) else cell
        for name, kind in cols[4:]:
            series = src[name].dropna() if name in src else []
            values.append(_fmt(float(series.median()) if len(series) else None, kind))
        table.add_row(*map(str, values))
    reasons = frame[frame["status"] != "ok"][["dataset", "ordering", "backend", "status", "reason"]]
    return table, reasons.drop_duplicates(subset=["dataset", "ordering", "backend", "status"])


def _print_summary(frame, out: Path, seconds: float):
    table, reasons = summary_table(frame)
    console.print(table)
    for row in reasons.itertuples():
        console.print(f"[yellow]{row.status}[/] {row.dataset} · {row.ordering} · {row.backend}: {row.reason}",
                      highlight=False)
    console.print(f"results: {out}  ({len(frame)} rows, {seconds:.1f} s)")


@app.command()
def run(
    dataset: list[str] = typer.Option(None, "-d", "--dataset", help="Dataset name, e.g. grid[n=100000]; repeatable."),
    ordering: list[str] = typer.Option(None, "-o", "--ordering", help="Ordering, e.g. patch[patch_size=256]; repeatable."),
    backend: list[str] = typer.Option(None, "-b", "--backend", help="Back-end, e.g. cholmod[k=10]; repeatable."),
    config: Optional[Path] = typer.Option(None, "-c", "--config", help="A suite file (TOML) whose keys mirror these options."),
    repeat: Optional[int] = typer.Option(None, "--repeat", min=1, help="Repeats per cell (default 1)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Result file (parquet); default results/runs/run-<hash>.parquet."),
    mem_limit: Optional[str] = typer.Option(None, "--mem-limit", help="Skip numeric factorizations predicted above this size (default 40% of RAM)."),
    flop_limit: Optional[float] = typer.Option(None, "--flop-limit", help="Skip numeric factorizations predicted above this many flops (default 1e11)."),
    seed: int = typer.Option(0, "--seed", help="Seed passed to randomized orderings."),
    force: bool = typer.Option(False, "--force", help="Re-run cells already done in this result file."),
):
    """Run datasets × orderings × back-ends; with no arguments, the default suite."""
    from .runner import RunConfig, default_mem_limit_bytes

    try:
        suite = suites.load(config) if config else (suites.DEFAULT if not (dataset or ordering or backend) else {})
        datasets = list(dataset or suite.get("datasets") or suites.DEFAULT["datasets"])
        orderings = list(ordering or suite.get("orderings") or suites.available_orderings())
        backends = list(backend or suite.get("backends") or ["symbolic"])
        repeat = repeat or int(suite.get("repeat", 1))
        out = out or (Path(suite["out"]) if suite.get("out") else default_out(datasets, orderings, backends, repeat))
        mem = parse_bytes(mem_limit or suite["mem_limit"]) if (mem_limit or suite.get("mem_limit")) \
            else default_mem_limit_bytes()
        cfg = RunConfig(datasets=datasets, orderings=orderings, backends=backends, repeat=repeat, out=out,
                        mem_limit_bytes=mem, flop_limit=flop_limit or float(suite.get("flop_limit", 1e11)),
                        seed=seed, force=force)
        frame, seconds = execute_run(cfg)
    except (SpecError, suites.SuiteError) as err:
        err_console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2)
    _print_summary(frame, out, seconds)
    if (frame["status"] == "error").any():
        raise typer.Exit(1)


@app.command()
def compare(
    orderings: str = typer.Option("patch,homa,metis,amd", "--orderings", help="Comma-separated orderings."),
    dataset: list[str] = typer.Option(None, "-d", "--dataset", help="Datasets (default: the patch-ordering study)."),
    repeat: int = typer.Option(5, "--repeat", min=1, help="Repeats; t_order is their median."),
    out: Path = typer.Option(Path("results/compare.parquet"), "--out"),
    baseline: str = typer.Option("metis", "--baseline", help="Ordering the ratios are relative to."),
):
    """t_order (median), nnz_L and flops per ordering, with ratios to a baseline, from one run."""
    from .runner import RunConfig
    from . import compare as comparison

    names = [o.strip() for o in orderings.split(",") if o.strip()]
    datasets = list(dataset or suites.compare_datasets())
    try:
        cfg = RunConfig(datasets=datasets, orderings=names, backends=["symbolic"], repeat=repeat, out=out)
        frame, seconds = execute_run(cfg, title="compare")
    except SpecError as err:
        err_console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2)
    table = comparison.ratio_table(frame, baseline)
    console.print(comparison.rich_table(table, baseline))
    csv = out.with_suffix(".csv")
    table.to_csv(csv, index=False)
    console.print(f"results: {out}, table: {csv}  ({seconds:.1f} s)")
    failed = frame[frame["status"] != "ok"]
    for row in failed.drop_duplicates(subset=["dataset", "ordering"]).itertuples():
        console.print(f"[yellow]{row.status}[/] {row.dataset} · {row.ordering}: {row.reason}", highlight=False)


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
        err_console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2)
    for path in written:
        console.print(str(path))


def main():
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted: finished cells are kept in the run's .parts folder; re-run to resume")
        sys.exit(130)
