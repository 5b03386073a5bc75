"""Every result row that carries a status is built here, wherever the cell ended: in the unit's
child (``child.py``: measured, skipped, failed), in the parent that supervises it (``runner.py``:
the child died, the dataset failed to load, the outcome was known without running), or on the
client of a Dask cluster (``executors.py``: the worker was lost).

A row is the cell's identity (``base_row``: its keys from the plan, the repeat, the dataset's
fields), then whatever was measured, then its ``status`` and ``reason``. The statuses and what they
mean are README's ("Statuses and exit codes"); ``results.FINAL_STATUSES`` are the ones a re-run
keeps. Nothing here imports pandas: the child imports this module.
"""

from __future__ import annotations

import json
import traceback

#: Every status a row can end with.
STATUSES = ("ok", "skipped", "unavailable", "not_spd", "timeout", "oom", "error")


def params_text(params: dict) -> str:
    """A plug-in's parameters as a row stores them (``ordering_params``, ``backend_params``): the
    ones its canonical name states (those that differ from its defaults), with the types the plug-in
    gave them, as JSON with sorted keys and no spaces, so equal parameters give equal text."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def base_row(unit, backend: str, repeat: int) -> dict:
    """A row's identity: the cell's keys (cell id, names, versions, code hash), the repeat and the
    dataset's fields (``Unit.keys``, ``Unit.fields``)."""
    return dict(unit.keys[backend], repeat=repeat, **unit.fields)


def with_status(row: dict, status: str, reason: str, **extra) -> dict:
    """``row`` with its status and the reason (empty for ``ok``), plus ``extra`` columns."""
    if status not in STATUSES:
        raise ValueError(f"unknown row status {status!r}; expected one of {', '.join(STATUSES)}")
    return dict(row, status=status, reason=reason, **extra)


def error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def failure_status(err: BaseException) -> str:
    return "oom" if isinstance(err, MemoryError) else "error"


def failed(row: dict, err: BaseException, where: str, traceback_column: str) -> dict:
    """The row of a step that raised ``err`` (call it inside the ``except``): ``oom`` for a failed
    allocation, else ``error``; the reason names the step; the traceback goes into
    ``traceback_column`` (``ordering_extras`` or ``backend_extras``)."""
    return with_status(row, failure_status(err), f"{where}: {error_text(err)}",
                       **{traceback_column: json.dumps({"traceback": traceback.format_exc(limit=8)})})


def cell_rows(unit, backend: str, repeats, status: str, reason: str, **fields) -> list[dict]:
    """The rows of a cell that ended without its child reporting it (dataset not loaded, outcome
    known before running, Dask worker lost)."""
    return [with_status(dict(base_row(unit, backend, r), **fields), status, reason) for r in repeats]
