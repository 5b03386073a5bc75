"""The result store: one parquet file that is the union of every finished cell ever written to it.

A run never loses, mixes or duplicates work:

* **one writer** — ``<out>.lock`` (filelock: an OS lock that dies with its process, so a killed
  run leaves no stale lock) is held for the whole run; ``<out>.writer.json`` names the holder (PID,
  host, start time, command) for the message a second writer gets;
* **verified fragments** — each finished cell is written at once as ``<out>.parts/<cell_id>.parquet``
  (atomically) carrying its cell id and a checksum of its rows in the file's metadata; a fragment
  that does not match its name or its checksum, or cannot be read, is moved to
  ``<out>.parts/rejected/`` with a warning that names it, and its cell runs again;
* **accumulation** — the result file is rebuilt from the rows already in it plus every verified
  fragment; a cell (dataset, ordering, back-end by canonical name) is replaced only when it was
  re-run; a file that is not a permbench result is refused, never overwritten; the merged frame
  is checked for a cell held twice before anything is written (atomic replace, so readers never
  see a half-written file). Merged fragments are then removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .results import PROVENANCE_KEY, atomic_write_table, rows_to_frame, write_results
from .writer_lock import ResultsWriteError, StoreError, StoreLocked, writer_lock  # noqa: F401 (re-exported)

FRAGMENT_KEY = b"permbench.fragment"

#: What identifies a cell across code versions (its id also hashes the code) and a row in it: the
#: canonical names and the thread budget asked for (``--threads N``, or ``auto``), so a run at 4
#: threads and one at 16 into the same file keep both cells.
CELL_KEY = ["dataset", "ordering", "backend", "thread_budget"]
ROW_KEY = CELL_KEY + ["repeat"]


def with_budget(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows written before ``thread_budget`` existed ran with the default budget: ``auto``."""
    if "thread_budget" not in frame:
        frame = frame.assign(thread_budget="auto")
    return frame.assign(thread_budget=frame["thread_budget"].fillna("auto").astype(str))
REQUIRED_COLUMNS = {"cell_id", "dataset", "ordering", "backend", "repeat", "status"}


def parts_dir_for(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".parts")


def table_checksum(table: pa.Table) -> str:
    """sha256 of a table's columns and values (schema metadata excluded), as Arrow IPC bytes."""
    sink = pa.BufferOutputStream()
    plain = table.replace_schema_metadata(None)
    with pa.ipc.new_stream(sink, plain.schema) as writer:
        writer.write_table(plain)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def write_fragment(rows: list[dict], path: Path, cell_id: str) -> None:
    """Write one cell's rows with its id and checksum; the fragment appears complete or not at all."""
    table = pa.Table.from_pandas(rows_to_frame(rows), preserve_index=False).replace_schema_metadata(None)
    # The checksum is of the table as parquet gives it back (a round trip may change a type, e.g.
    # an all-null column), so that reading the fragment reproduces it exactly.
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    table = pq.read_table(pa.BufferReader(buffer.getvalue())).replace_schema_metadata(None)
    header = {"cell_id": cell_id, "sha256": table_checksum(table), "rows": table.num_rows}
    atomic_write_table(table.replace_schema_metadata({FRAGMENT_KEY: json.dumps(header).encode()}), Path(path))


def read_fragments(parts: Path) -> pd.DataFrame:
    """The rows of every fragment in a parts folder that passes its checks (for inspection)."""
    frames = [check_fragment(p)[0] for p in sorted(Path(parts).glob("*.parquet"))]
    frames = [f for f in frames if f is not None]
    return pd.concat(frames, ignore_index=True) if frames else rows_to_frame([])


def check_fragment(path: Path) -> tuple[pd.DataFrame | None, str]:
    """(rows, "") for a fragment that is what its name says, else (None, why not)."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as err:
        return None, f"unreadable ({type(err).__name__}: {err})"
    meta = table.schema.metadata or {}
    if FRAGMENT_KEY not in meta:
        return None, "no permbench fragment header (cell id and checksum) in its metadata"
    try:
        header = json.loads(meta[FRAGMENT_KEY])
    except ValueError:
        return None, "its fragment header is not valid JSON"
    if header.get("cell_id") != path.stem:
        return None, f"it holds cell {header.get('cell_id')}, not the cell {path.stem} its name says"
    if table_checksum(table) != header.get("sha256"):
        return None, "its rows do not match the checksum written with them (edited or damaged)"
    frame = with_budget(table.to_pandas())
    ids = set(frame["cell_id"]) if "cell_id" in frame else set()
    if ids != {path.stem}:
        return None, f"its rows belong to cell(s) {', '.join(sorted(map(str, ids))) or 'none'}, not {path.stem}"
    return frame, ""


def read_result_file(path: Path) -> tuple[pd.DataFrame, dict]:
    """A permbench result file's rows and provenance; StoreError for anything else."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise StoreError(f"{path} exists but is not a readable parquet file ({type(err).__name__}: {err}); "
                         f"refusing to overwrite it — choose another --out") from None
    meta = table.schema.metadata or {}
    if PROVENANCE_KEY not in meta:
        raise StoreError(f"{path} is not a permbench result file (no permbench provenance in its metadata); "
                         f"refusing to overwrite it — choose another --out")
    missing = REQUIRED_COLUMNS - set(table.column_names)
    if missing:
        raise StoreError(f"{path} is not a permbench result file (missing columns: {', '.join(sorted(missing))}); "
                         f"refusing to overwrite it — choose another --out")
    return with_budget(table.to_pandas()), json.loads(meta[PROVENANCE_KEY])


def check_unique(frame: pd.DataFrame, where: Path) -> None:
    """Fail loudly if the frame holds a (cell, repeat) twice."""
    dup = frame[frame.duplicated(subset=ROW_KEY, keep=False)]
    if len(dup):
        first = dup.iloc[0]
        raise StoreError(f"{where}: would hold cell {first['dataset']} · {first['ordering']} · {first['backend']} "
                         f"repeat {first['repeat']} {int((dup[ROW_KEY] == first[ROW_KEY]).all(axis=1).sum())} times "
                         f"(cell ids {', '.join(sorted(set(map(str, dup['cell_id']))))}); nothing was written")


def replace_cells(rows: pd.DataFrame, newer: list[pd.DataFrame]) -> pd.DataFrame:
    """``rows`` with every cell (``CELL_KEY``) that a frame of ``newer`` holds replaced by that
    frame's rows, all repeats at once; later frames win over earlier ones. Sorted by ``ROW_KEY``."""
    seen: set[tuple] = set()
    kept = []
    for frame in reversed([rows] + list(newer)):
        keys = list(frame[CELL_KEY].itertuples(index=False, name=None)) if len(frame) else []
        if keys:
            kept.insert(0, frame[[key not in seen for key in keys]])
            seen.update(keys)
    frame = rows_to_frame(pd.concat(kept, ignore_index=True)) if kept else rows_to_frame([])
    return frame.sort_values(ROW_KEY, kind="stable").reset_index(drop=True)


def runs_of(provenance: dict) -> list[dict]:
    """The runs a result file's provenance records (a file written before ``runs`` existed: itself)."""
    return list(provenance.get("runs") or ([provenance] if provenance else []))


def combine_files(inputs: list[Path], out: Path, note: str = "", wait: bool = False) -> pd.DataFrame:
    """One result file from several (the steps of a study, measured by separate runs, machines or
    device calls): a cell held by a later file replaces that cell's rows from the earlier ones, as a
    re-run does in ``ResultStore.merge``. The provenance is the last file's, with the runs of every
    input (each named by its ``file``) under ``runs`` and the inputs under ``combined``. ``out`` may
    be one of the inputs; an existing ``out`` that is not is refused (name it as an input to extend it)."""
    inputs, out = [Path(p) for p in inputs], Path(out)
    if not inputs:
        raise StoreError("combine needs at least one result file")
    if out.exists() and out.resolve() not in {p.resolve() for p in inputs}:
        raise StoreError(f"{out} exists and is not one of the inputs; name it as an input to extend it, "
                         f"or choose another --out")
    with writer_lock(out, wait):
        read = []
        for path in inputs:
            if not path.is_file():
                raise StoreError(f"{path}: no such result file")
            read.append(read_result_file(path))
        frame = replace_cells(read[0][0], [rows for rows, _ in read[1:]])
        check_unique(frame, out)
        provenance = {k: v for k, v in read[-1][1].items() if k not in ("runs", "run", "combined")}
        provenance["runs"] = [dict(run, file=path.name) for path, (_, prov) in zip(inputs, read)
                              for run in runs_of(prov)]
        provenance["combined"] = {"from": [str(p) for p in inputs], "note": note}
        write_results(frame, out, provenance)
    return frame


@dataclass
class CellRecord:
    """What the store holds for one cell id: its statuses and repeats."""

    statuses: tuple[str, ...]
    repeats: tuple[int, ...]
    source: str  # "fragment" | "file"


@dataclass
class ResultStore:
    """The result file ``out``, its fragments and its lock. Use as a context manager (the lock)."""

    out: Path
    wait: bool = False
    warn: callable = print
    #: Look only (``run --dry-run``): bad fragments are reported, not moved.
    readonly: bool = False
    rejected: list[tuple[Path, str]] = field(default_factory=list)

    def __post_init__(self):
        self.out = Path(self.out)
        self.parts = parts_dir_for(self.out)
        self._rows: pd.DataFrame | None = None
        self._provenance: dict = {}
        self._fragments: dict[str, pd.DataFrame] | None = None

    # -- the lock (writer_lock.py) ------------------------------------------------------------------
    def __enter__(self):
        self._held = writer_lock(self.out, self.wait)
        self._held.__enter__()
        return self

    def __exit__(self, *exc):
        self._held.__exit__(*exc)

    # -- what is there -----------------------------------------------------------------------------
    def rows(self) -> pd.DataFrame:
        """The rows already in the result file (empty when there is none)."""
        if self._rows is None:
            if self.out.exists():
                self._rows, self._provenance = read_result_file(self.out)
            else:
                self._rows, self._provenance = rows_to_frame([]), {}
        return self._rows

    def fragments(self) -> dict[str, pd.DataFrame]:
        """Verified fragments by cell id; bad ones are moved to ``rejected/`` with a warning. Each
        file is read once: later calls verify only fragments written since (write_new_fragment)."""
        if self._fragments is None:
            self._fragments = {}
        for path in sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []:
            if path.stem in self._fragments:
                continue
            frame, why = check_fragment(path)
            if frame is None:
                self.reject(path, why)
            else:
                self._fragments[path.stem] = frame
        return self._fragments

    def reject(self, path: Path, why: str) -> None:
        if self.readonly:
            self.rejected.append((path, why))
            self.warn(f"bad fragment {path}: {why}; a run would move it to rejected/ and run its cell again")
            return
        target = self.parts / "rejected" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        self.rejected.append((target, why))
        self.warn(f"rejected fragment {path}: {why}; moved to {target}, its cell runs again")

    def records(self) -> dict[str, CellRecord]:
        """Every cell id the store knows (file rows, overridden by fragments)."""
        out: dict[str, CellRecord] = {}
        rows = self.rows()
        for cid, cell in rows.groupby("cell_id", sort=False):
            out[str(cid)] = CellRecord(tuple(sorted(set(cell["status"]))), tuple(sorted(cell["repeat"])), "file")
        for cid, cell in self.fragments().items():
            out[cid] = CellRecord(tuple(sorted(set(cell["status"]))), tuple(sorted(cell["repeat"])), "fragment")
        return out

    def known_names(self) -> dict[tuple, set[str]]:
        """(dataset, ordering, backend) -> the cell ids stored under those names (file and fragments)."""
        out: dict[tuple, set[str]] = {}
        frames = [self.rows()] + list(self.fragments().values())
        for frame in frames:
            for key, cell in frame.groupby(CELL_KEY, sort=False):
                out.setdefault(tuple(key), set()).update(map(str, cell["cell_id"]))
        return out

    def write_new_fragment(self, rows: list[dict], cell_id: str) -> Path:
        path = self.parts / f"{cell_id}.parquet"
        write_fragment(rows, path, cell_id)
        if self._fragments is not None:
            self._fragments.pop(cell_id, None)  # verified again from the file when next asked for
        return path

    # -- merging -----------------------------------------------------------------------------------
    def merge(self, run_provenance: dict, current: set[str] = frozenset()) -> pd.DataFrame:
        """Rebuild the result file: its rows, each cell replaced by its newest verified fragment.

        Where fragments of two code versions of one cell are present, the one of this run's plan
        (``current``) wins, else the newer file. Merged fragments are deleted afterwards.
        """
        fragments = self.fragments()
        chosen: dict[tuple, str] = {}
        for cid, frame in fragments.items():
            key = tuple(frame.iloc[0][CELL_KEY])
            old = chosen.get(key)
            if old is None or self._newer(cid, old, current):
                chosen[key] = cid
        frame = replace_cells(self.rows(), [fragments[cid] for cid in chosen.values()])
        check_unique(frame, self.out)
        provenance = dict(run_provenance)
        provenance["runs"] = runs_of(self._provenance) + [{k: v for k, v in run_provenance.items() if k != "runs"}]
        write_results(frame, self.out, provenance)
        self._rows, self._provenance = frame, provenance
        for cid in fragments:
            (self.parts / f"{cid}.parquet").unlink(missing_ok=True)
        self._fragments = {}
        self.tidy()
        return frame

    def _newer(self, cid: str, than: str, current: set[str]) -> bool:
        if (cid in current) != (than in current):
            return cid in current
        mtime = lambda c: (self.parts / f"{c}.parquet").stat().st_mtime_ns  # noqa: E731
        return mtime(cid) > mtime(than)

    def tidy(self) -> None:
        """Remove the dataset cache a killed run left, and the parts folder once it is empty."""
        shutil.rmtree(self.parts / ".cache", ignore_errors=True)
        if self.parts.is_dir() and not any(self.parts.iterdir()):
            self.parts.rmdir()

    def leftovers(self) -> str | None:
        """What unfinished work is kept beside the result file, for the end-of-run message."""
        if not self.parts.is_dir():
            return None
        fragments = len(list(self.parts.glob("*.parquet")))
        rejected = len(list((self.parts / "rejected").glob("*"))) if (self.parts / "rejected").is_dir() else 0
        cache = (self.parts / ".cache").is_dir()
        bits = [f"{fragments} finished cell(s) not yet merged"] if fragments else []
        bits += [f"{rejected} rejected fragment(s) in rejected/"] if rejected else []
        bits += ["a dataset cache (.cache)"] if cache else []
        return f"{self.parts} holds {', '.join(bits)}" if bits else None
