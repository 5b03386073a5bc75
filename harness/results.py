"""Result rows and result files.

Each finished cell (all its repeats) is written at once as its own parquet fragment,
``<out>.parts/<cell_id>.parquet``, atomically (a temporary file renamed into place), so nothing
measured is lost when a later cell or the whole process dies, and a re-run cell replaces its
fragment instead of adding a second one; ``merge`` builds the run's parquet file from the
fragments of the run's cells, with the provenance in the file's metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PROVENANCE_KEY = b"permbench.provenance"

#: Column order of a result file; anything else a back-end reports follows these. The last ones
#: describe the child process that produced the row: ``threads`` (its thread pools' size),
#: ``concurrent_jobs`` (children allowed to run beside it), ``peak_rss_bytes`` (its peak resident
#: memory so far: dataset and earlier cells of its unit included), ``t_warmup_s`` (the untimed
#: warm-up call), ``thread_info`` and ``backend_provenance`` (JSON: thread settings and pools, the
#: BLAS it loaded; what the back-end reports about its libraries).
COLUMNS = [
    "cell_id", "dataset", "ordering", "backend", "repeat", "status", "reason",
    "n", "nnz_A", "nnz_tril_A", "n_vertices", "derived",
    "nnz_L", "flops", "fill_ratio", "etree_height", "critical_flops", "parallelism", "supernodes",
    "t_graph_s", "t_order_s", "t_symbolic_s", "t_analyze_s", "t_factor_s", "t_solve_s",
    "t_total_s", "k", "t_refactor_median_s", "t_total_k_s", "residual", "backend_nnz_L",
    "ordering_version", "backend_version", "ordering_extras", "backend_extras", "dataset_meta",
    "threads", "concurrent_jobs", "peak_rss_bytes", "t_warmup_s", "thread_info", "backend_provenance",
]

#: Statuses that are final: a re-run skips these cells. Others (error, timeout, oom) are retried.
FINAL_STATUSES = {"ok", "skipped", "unavailable", "not_spd"}


def rows_to_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    extra = sorted(c for c in frame.columns if c not in COLUMNS)
    return frame[COLUMNS + extra]


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_fragment(rows: list[dict], path: Path) -> None:
    """Write one cell's rows; the fragment appears complete or not at all."""
    table = pa.Table.from_pandas(rows_to_frame(rows), preserve_index=False)
    _atomic_write_table(table, path)


def read_fragments(parts_dir: Path, cell_ids=None) -> pd.DataFrame:
    """The rows of every fragment in ``parts_dir`` (only those of ``cell_ids`` when given: a folder
    can also hold fragments of cells whose code version has since changed)."""
    files = sorted(Path(parts_dir).glob("*.parquet"))
    if cell_ids is not None:
        wanted = set(cell_ids)
        files = [f for f in files if f.stem in wanted]
    if not files:
        return rows_to_frame([])
    frames = [pq.read_table(f).to_pandas() for f in files]
    return rows_to_frame(pd.concat(frames, ignore_index=True).to_dict("records"))


def merge(parts_dir: Path, out: Path, provenance: dict, cell_ids=None) -> pd.DataFrame:
    """Build the run's result file from its fragments, provenance in the parquet metadata."""
    frame = read_fragments(parts_dir, cell_ids)
    frame = frame.sort_values(["dataset", "ordering", "backend", "repeat"], kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    _atomic_write_table(table.replace_schema_metadata(meta), Path(out))
    return frame


def read_results(path) -> tuple[pd.DataFrame, dict]:
    """A result file as a DataFrame, and its provenance."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such result file")
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    provenance = json.loads(meta[PROVENANCE_KEY]) if PROVENANCE_KEY in meta else {}
    return table.to_pandas(), provenance
