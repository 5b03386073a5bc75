"""``permbench results ...``: tools on stored result files (no measuring): combine, relabel."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(no_args_is_help=True, help="Tools on stored result files: combine several, relabel datasets.")
console = Console(emoji=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, emoji=False, highlight=False, soft_wrap=True)

RELABEL_NOTE = ("dataset renamed from a machine path to the catalogue mesh with the same sha256 and the same "
                "parameters; every other value (cell_id, dataset_meta.source, measurements) is as measured")


@app.command("combine")
def combine(
    inputs: list[Path] = typer.Argument(..., help="Result files, oldest first: a cell in a later file replaces "
                                                  "that cell's rows from the earlier ones."),
    out: Path = typer.Option(..., "--out", help="The combined result file (may be one of the inputs)."),
    note: str = typer.Option("", "--note", help="Why and how these files were combined (stored in the provenance)."),
    wait: bool = typer.Option(False, "--wait", help="Wait for a run that holds --out instead of exiting 2."),
):
    """One result file from the files of several runs (e.g. the steps of the GPU study, each from its
    own device call): cells are matched by canonical names and thread budget, as a run's own merge
    does; the provenance keeps every input's runs (with its file name) and lists the inputs."""
    from .store import StoreError, combine_files

    try:
        frame = combine_files(inputs, out, note, wait=wait)
    except StoreError as err:
        err_console.print("[red]error:[/] " + escape(str(err)))
        raise typer.Exit(2)
    counts = frame["status"].value_counts().to_dict()
    console.print(escape(f"{out}: {len(frame)} rows from {len(inputs)} files; statuses {counts}"))


@app.command("relabel")
def relabel(
    files: list[Path] = typer.Argument(..., help="Result files to relabel in place."),
    note: str = typer.Option(RELABEL_NOTE, "--note", help="Stored with the mapping in the provenance."),
):
    """Rename rows whose dataset is a machine path (`file:/tmp/...`, a hidden folder) to the catalogue's
    portable `mesh:NAME[...]` when the file's recorded sha256 is that mesh's; nothing else changes, and
    the provenance records the mapping."""
    from .portable import relabel_file

    for path in files:
        if not path.is_file():
            err_console.print("[red]error:[/] " + escape(f"{path}: no such result file"))
            raise typer.Exit(2)
        mapping = relabel_file(path, note)
        for old, new in mapping.items():
            console.print(escape(f"{path}: {old} -> {new}"))
        if not mapping:
            console.print(escape(f"{path}: nothing to relabel"))
