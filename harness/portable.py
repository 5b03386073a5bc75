"""Dataset names that mean the same on another machine.

A ``file:`` dataset is named by its path, and that name is what result rows store. A path under a
hidden or temporary folder (``.gpu-wheels/data/…``, ``/tmp/…``) names a copy that exists on one
machine only: :func:`machine_path_warnings` says so before a run. Rows already stored under such a
name can be relabelled to the catalogue's ``mesh:NAME[…]`` (:func:`relabel_file`) when the file's
sha256, recorded in the row's ``dataset_meta``, is the catalogue's sha256 of that mesh: same bytes,
same mesh parameters, so the measurements stay valid; the relabelling is noted in the provenance.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .results import PROVENANCE_KEY, atomic_write_table
from ..core.specs import SpecError, parse_spec

TEMPORARY_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")


def machine_path_reason(path: str) -> str | None:
    """Why ``path`` is not a portable name, or None."""
    parts = Path(path).parts
    hidden = [p for p in parts if p.startswith(".") and p not in (".", "..")]
    if hidden:
        return f"it sits under the hidden folder {hidden[0]!r}"
    resolved = str(Path(path).expanduser().resolve())
    roots = set(TEMPORARY_ROOTS) | {str(Path(tempfile.gettempdir()).resolve())}
    for root in sorted(roots):
        if resolved == root or resolved.startswith(root.rstrip("/") + "/"):
            return f"it sits under the temporary folder {root}"
    return None


def machine_path_warnings(datasets: list[str]) -> list[str]:
    """One warning per ``file:`` dataset whose path is under a hidden or temporary folder."""
    warnings = []
    for name in datasets:
        if not name.startswith("file:"):
            continue
        target = name[len("file:"):].partition("[")[0]
        reason = machine_path_reason(target)
        if reason:
            warnings.append(f"{name}: {reason}; result rows will carry this machine's path. Use a path "
                            "beside the project or, for a catalogue mesh, mesh:NAME (with --data-dir).")
    return warnings


def catalogue_name(dataset: str, file_sha256: str | None) -> str | None:
    """``mesh:NAME[params]`` for a ``file:`` dataset whose file is the catalogue mesh NAME (same
    sha256), else None."""
    from ..datasets.meshcorpus import catalog

    try:
        spec = parse_spec(dataset)
    except SpecError:
        return None
    if spec.name != "file" or not file_sha256:
        return None
    matches = [name for name, entry in catalog().items() if entry.sha256 and entry.sha256 == file_sha256]
    if not matches:
        # A catalogue mesh whose mirror copy is a conversion (bunny: OFF to OBJ) has no upstream
        # sha256; mesh:NAME then serves the mirror's file, listed with its sha256 in the manifest.
        matches = [name for name in mirror_meshes_with(file_sha256) if name in catalog()]
    if len(matches) != 1:
        return None
    return type(spec)("mesh", dict(spec.params), matches[0]).canonical()


def mirror_meshes_with(file_sha256: str) -> list[str]:
    """Names of the shared mirror's meshes (manifest.json) whose file has this sha256."""
    from .suites import shared_data_dir

    mirror = shared_data_dir()
    if mirror is None:
        return []
    manifest = json.loads((mirror / "manifest.json").read_text())
    return [Path(e["file"]).stem for e in manifest.get("meshes", []) if e.get("sha256") == file_sha256]


def relabel_file(path, note: str) -> dict[str, str]:
    """Rename, in the result file ``path``, every ``file:`` dataset whose file is a catalogue mesh
    (same sha256) to its ``mesh:`` name: any path, relative ones included, names a file only on
    the machine that has it. Every other value (cell ids, the
    ``source`` in dataset_meta, measurements) stays as it was; the provenance gains a ``relabelled``
    entry with the mapping and ``note``. Returns the mapping (empty: nothing changed)."""
    path = Path(path)
    table = pq.read_table(path)
    frame = table.to_pandas()
    mapping: dict[str, str] = {}
    for dataset, meta in frame[["dataset", "dataset_meta"]].drop_duplicates("dataset").itertuples(index=False):
        if not str(dataset).startswith("file:"):
            continue
        sha = json.loads(meta).get("file_sha256") if isinstance(meta, str) and meta else None
        new = catalogue_name(dataset, sha)
        if new:
            mapping[dataset] = new
    if not mapping:
        return {}
    column = table.schema.get_field_index("dataset")
    renamed = pa.array([mapping.get(d, d) for d in table.column("dataset").to_pylist()],
                       type=table.schema.field(column).type)
    table = table.set_column(column, table.schema.field(column), renamed)
    meta = dict(table.schema.metadata or {})
    provenance = json.loads(meta[PROVENANCE_KEY]) if PROVENANCE_KEY in meta else {}
    provenance.setdefault("relabelled", []).append({"datasets": mapping, "note": note})
    meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    atomic_write_table(table.replace_schema_metadata(meta), path)
    return mapping
