"""Result rows and result files: the column order, the final statuses, atomic parquet writes.

How fragments become a result file (verification, accumulation, the lock) is ``store.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.specs import parse_spec, read_formatted_value
from .rows import params_text

PROVENANCE_KEY = b"permbench.provenance"

#: Column order of a result file; anything else a back-end reports follows these. ``t_<phase>_cpu_s``
#: is the process CPU time (all threads) of a timed phase; ``cpu_util`` the row's CPU time over its
#: wall time (about 1 for one busy thread, up to ``threads``). ``code_hash`` hashes the source files
#: that shape the cell (``code_files``, see ``codehash.py``); ``git_commit``/``git_dirty`` name the
#: checkout each row came from. The others describe the child process that produced the row: ``threads`` (its thread pools' size),
#: ``concurrent_jobs`` (children allowed to run beside it), ``peak_rss_bytes`` (its peak resident
#: memory so far: dataset and earlier cells of its unit included), ``t_warmup_s`` (the untimed
#: warm-up call), ``thread_info`` and ``backend_provenance`` (JSON: thread settings and pools, the
#: BLAS it loaded; what the back-end reports about its libraries). ``ordering_params`` and
#: ``backend_params`` are the plug-ins' parameters that their canonical names state (JSON,
#: ``rows.params_text``): what figures and tables read instead of decoding names with plug-in code.
COLUMNS = [
    "cell_id", "dataset", "ordering", "backend", "repeat", "status", "reason",
    "n", "nnz_A", "nnz_tril_A", "n_vertices", "derived",
    "nnz_L", "flops", "fill_ratio", "etree_height", "critical_flops", "parallelism", "supernodes",
    "t_graph_s", "t_order_s", "t_tree_s", "t_analyze_s", "t_factor_s", "t_solve_s",
    "t_total_s", "k", "t_refactor_median_s", "t_total_k_s", "residual", "backend_nnz_L", "t_symbolic_s",
    "t_graph_cpu_s", "t_order_cpu_s", "t_tree_cpu_s", "t_analyze_cpu_s", "t_factor_cpu_s", "t_solve_cpu_s",
    "cpu_util", "thread_budget", "deterministic",
    "ordering_version", "backend_version", "ordering_params", "backend_params",
    "ordering_extras", "backend_extras", "dataset_meta",
    "threads", "concurrent_jobs", "peak_rss_bytes", "t_warmup_s", "thread_info", "backend_provenance",
    "code_hash", "code_files", "git_commit", "git_dirty",
]

#: The phases a total adds up, in order (see ``child.finish_row`` and README "Metrics").
PHASES = ("graph", "order", "tree", "analyze", "factor", "solve")

#: Statuses that are final: a re-run skips these cells. Others (error, timeout, oom) are retried.
FINAL_STATUSES = {"ok", "skipped", "unavailable", "not_spd"}


def rows_to_frame(rows) -> pd.DataFrame:
    """Rows (dicts, or a DataFrame) with every column of COLUMNS, in that order, then the others."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    extra = sorted(c for c in frame.columns if c not in COLUMNS)
    return frame[COLUMNS + extra]


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; a result file is not
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_results(path) -> tuple[pd.DataFrame, dict]:
    """A result file as a DataFrame, and its provenance."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such result file")
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    provenance = json.loads(meta[PROVENANCE_KEY]) if PROVENANCE_KEY in meta else {}
    return table.to_pandas(), provenance


def upgrade_totals(path, note: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recompute ``t_total_s``/``t_total_k_s`` of a stored result file under the current
    definition (``metrics.totals``: the graph build counted for user orderings), in place, for
    files written before it; ``note`` (how and why) goes into the provenance. Returns (before,
    after). Only ok rows of numeric back-ends change; every other value stays as measured."""
    from .metrics import totals

    path = Path(path)
    frame, provenance = read_results(path)
    before = frame.copy()
    numeric = (frame["status"] == "ok") & frame["t_total_s"].notna()
    for i in frame.index[numeric]:
        row = frame.loc[i].to_dict()
        new = totals(row, native=row["ordering"] == "native")
        frame.at[i, "t_total_s"] = new["t_total_s"]
        frame.at[i, "t_total_k_s"] = new["t_total_k_s"]
    provenance.setdefault("upgrades", []).append(note)
    write_results(frame, path, provenance)
    return before, frame


def params_of_name(name: str) -> dict:
    """The parameters a stored canonical plug-in name states, typed as the plug-in held them, with
    no plug-in imported: the core grammar (``core/specs.py``) keeps values as text, and a canonical
    name writes them with ``specs.format_value``, read back by ``specs.read_formatted_value``."""
    return {key: read_formatted_value(text) for key, text in parse_spec(name).params.items()}


def upgrade_params(path, note: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fill ``ordering_params``/``backend_params`` of a result file written before rows stored
    them, in place, from the rows' own canonical names (``params_of_name``); ``note`` goes into the
    provenance like ``upgrade_totals``'. Rows that have them keep theirs. Returns (before, after)."""
    path = Path(path)
    frame, provenance = read_results(path)
    before = frame.copy()
    for column, names in (("ordering_params", "ordering"), ("backend_params", "backend")):
        stored = frame[column] if column in frame.columns else pd.Series(None, index=frame.index, dtype=object)
        filled = [text if isinstance(text, str) else params_text(params_of_name(name))
                  for text, name in zip(stored, frame[names])]
        frame[column] = pd.Series(filled, index=frame.index, dtype=object)
    provenance.setdefault("upgrades", []).append(note)
    write_results(frame, path, provenance)
    return before, frame


def write_results(rows, path, provenance: dict) -> pd.DataFrame:
    """Write rows as a result file (provenance in its metadata), atomically; for tools and tests
    that assemble a file themselves. A run writes through ``store.ResultStore`` instead."""
    frame = rows_to_frame(rows)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    atomic_write_table(table.replace_schema_metadata(meta), Path(path))
    return frame
