"""``ss:<Group>/<Name>``: a matrix of the SuiteSparse Matrix Collection, fetched, verified and cached.

Where the matrix comes from (see :mod:`.fetch`): a local mirror's ``suitesparse/<name>.mtx.gz``
when the mirror's manifest lists ``Group/Name``; otherwise the collection's Matrix Market tarball
``<suitesparse>/MM/<Group>/<Name>.tar.gz`` in the cache, downloaded on first use (not offline).

Checks. The collection's index (``<suitesparse>/files/ssstats.csv``: a count line, a date line, then
one line per matrix ``Group,Name,nrows,ncols,nnz,isReal,isBinary,isND,posdef,pattern_symmetry,
numerical_symmetry,kind[,pattern_entries]``) is fetched and cached like any file; a name it does
not list, or a rectangular matrix, is rejected before anything is downloaded. A fresh tarball must
hold ``<Name>.mtx`` that parses, and its rows, columns and nonzeros (both triangles, explicit zeros
not counted, as in the index) must equal the index's (the mirror's manifest plays the index for
mirror files); only then is it kept. The parsed matrix is cached as
``<cache>/suitesparse/parsed/<tarball sha256>-v<N>.npz``, so later loads skip the Matrix Market parse
and the index, and a changed file can never be served from a stale parse.

Values. A ``real`` or ``integer`` matrix loads as stored. A ``pattern`` matrix has no values: it
gets graph Laplacian + I of its pattern (``meta['values'] = 'graph-laplacian+I'``), as ``file:``
does. Matrices the index marks as not positive definite still load (``meta['ss_posdef'] = False``);
the numeric back-ends then report ``not_spd``.
"""

from __future__ import annotations

import csv
import difflib
import importlib.metadata
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..core.case import SYMMETRIZE, InputError, MatrixCase
from ..core.specs import SpecError
from . import DatasetBase, fetch, matrix_case, register
from .builders import graph_system_from_pattern
from .readers import read_matrix, read_matrix_header

INDEX_NAME = "ss-index"  # what `permbench datasets fetch` calls the index
INDEX_RELPATH = "suitesparse/ssstats.csv"
#: Bump when what is stored in the parsed-matrix cache changes.
PARSED_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9_.+-]+/[A-Za-z0-9_.+-]+")


# ---------------------------------------------------------------------------------------- index


@dataclass(frozen=True)
class IndexEntry:
    """One line of ssstats.csv."""

    id: int
    group: str
    name: str
    rows: int
    cols: int
    nnz: int
    real: bool
    binary: bool
    nd: bool  # a 2D/3D problem
    posdef: bool
    pattern_symmetry: float
    numerical_symmetry: float
    kind: str

    @property
    def full_name(self) -> str:
        return f"{self.group}/{self.name}"

    @property
    def expected(self) -> tuple[int, int, int]:
        return self.rows, self.cols, self.nnz

    def fields(self) -> dict:
        """The columns a ``--filter`` expression can use."""
        return {"id": self.id, "name": self.full_name, "group": self.group, "n": self.rows, "rows": self.rows,
                "cols": self.cols, "nnz": self.nnz, "real": self.real, "binary": self.binary, "nd": self.nd,
                "posdef": self.posdef, "spd": self.posdef and self.real and self.rows == self.cols,
                "pattern_symmetry": self.pattern_symmetry, "numerical_symmetry": self.numerical_symmetry,
                "kind": self.kind}


def parse_index(path) -> dict[str, IndexEntry]:
    """``{"Group/Name": IndexEntry}`` from ssstats.csv; a malformed line is an error naming it."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot be read as the SuiteSparse index ({err})") from None
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise InputError(f"{path}: line 1: expected the number of matrices (the ssstats.csv format: a count "
                         f"line, a date line, then Group,Name,nrows,ncols,nnz,... per matrix)")
    declared = int(lines[0])
    entries: dict[str, IndexEntry] = {}
    for lineno, row in enumerate(csv.reader(lines[2:]), start=3):
        if not row:
            continue
        if len(row) < 12:
            raise InputError(f"{path}: line {lineno}: {len(row)} fields; expected at least 12 "
                             f"(Group,Name,nrows,ncols,nnz,isReal,isBinary,isND,posdef,pattern_symmetry,"
                             f"numerical_symmetry,kind)")
        try:
            entry = IndexEntry(
                id=lineno - 2, group=row[0].strip(), name=row[1].strip(), rows=int(row[2]), cols=int(row[3]),
                nnz=int(row[4]), real=bool(int(row[5])), binary=bool(int(row[6])), nd=bool(int(row[7])),
                posdef=bool(int(row[8])), pattern_symmetry=float(row[9]), numerical_symmetry=float(row[10]),
                kind=row[11].strip(),
            )
        except ValueError as err:
            raise InputError(f"{path}: line {lineno}: {err}; expected integer counts and 0/1 flags") from None
        entries[entry.full_name] = entry
    if len(entries) != declared:
        raise InputError(f"{path}: line 1 declares {declared} matrices but {len(entries)} are listed "
                         f"(a truncated or corrupt index)")
    return entries


def index(*, refresh: bool = False, progress=None) -> dict[str, IndexEntry]:
    """The collection's index, fetched once and cached; ``refresh`` downloads the current one."""
    path = fetch.fetch(fetch.source_url("suitesparse", "files", "ssstats.csv"), INDEX_RELPATH, name=INDEX_NAME,
                       check=lambda p, _: parse_index(p), force=refresh, mutable=True, progress=progress)
    return parse_index(path)


def index_entry(full_name: str) -> IndexEntry:
    """The index entry of ``Group/Name``; unknown names and rectangular matrices are errors."""
    entries = index()
    entry = entries.get(full_name)
    if entry is None:
        close = difflib.get_close_matches(full_name, list(entries), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"ss:{full_name}: not in the SuiteSparse index ({len(entries)} matrices){hint}")
    if entry.rows != entry.cols:
        raise InputError(f"ss:{full_name} is {entry.rows}x{entry.cols} (per the SuiteSparse index); "
                         f"a square matrix is required")
    return entry


# ------------------------------------------------------------------------------- matrix files


def tarball_relpath(full_name: str) -> str:
    return f"suitesparse/MM/{full_name}.tar.gz"


def tarball_url(full_name: str) -> str:
    group, name = full_name.split("/")
    return fetch.source_url("suitesparse", "MM", group, f"{name}.tar.gz")


def fetch_matrix(full_name: str, *, force: bool = False, progress=None) -> Path:
    """The verified tarball of ``Group/Name`` in the cache, downloading (and checking) it if needed."""
    label = f"ss:{full_name}"
    relpath = tarball_relpath(full_name)
    if not force and (hit := fetch.cached(relpath)) is not None:
        return hit
    if fetch.settings().offline:  # before the index, which would need the network too
        return fetch.fetch(tarball_url(full_name), relpath, name=label)  # raises not cached / corrupt
    entry = index_entry(full_name)

    def check(path: Path, digest: str) -> None:
        parse_and_cache(path, digest, entry.expected, _index_meta(entry), label)

    return fetch.fetch(tarball_url(full_name), relpath, name=label, force=force, progress=progress, check=check)


def _index_meta(entry: IndexEntry) -> dict:
    return {"ss_id": entry.id, "ss_kind": entry.kind, "ss_posdef": entry.posdef, "ss_nnz": entry.nnz}


def _mirror_meta(entry: dict) -> dict:
    return {"ss_id": entry.get("id"), "ss_kind": entry.get("kind"),
            "ss_posdef": entry.get("ss_positive_definite") == "yes", "ss_nnz": entry.get("nnz")}


def parsed_path(sha256: str) -> Path:
    return fetch.settings().cache_dir / "suitesparse" / "parsed" / f"{sha256}-v{PARSED_VERSION}.npz"


def parse_and_cache(path: Path, sha256: str, expected: tuple[int, int, int], info: dict,
                    label: str) -> tuple[sp.csr_matrix, dict]:
    """Parse a Matrix Market file, check its size and nonzeros against ``expected``, cache the result."""
    header = read_matrix_header(path)
    A = read_matrix(path)
    found = (A.shape[0], A.shape[1], int(np.count_nonzero(A.data)))
    if found != tuple(expected):
        raise InputError(f"{label}: {path.name} holds a {found[0]}x{found[1]} matrix with {found[2]:,} nonzeros; "
                         f"the index says {expected[0]}x{expected[1]} with {expected[2]:,}")
    stored = {"field": header.field, "symmetry": header.symmetry, "format": header.format, "info": info}
    _write_parsed(parsed_path(sha256), A, stored)
    return A, stored


def _write_parsed(target: Path, A: sp.csr_matrix, stored: dict) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, data=A.data, indices=A.indices, indptr=A.indptr, shape=np.asarray(A.shape, dtype=np.int64),
                 stored=np.asarray(json.dumps(stored)))
        os.replace(tmp, target)
    except OSError as err:  # only a cache: the matrix was parsed and is used anyway
        warnings.warn(f"{target}: could not cache the parsed matrix ({err})", stacklevel=2)


def _read_parsed(path: Path) -> tuple[sp.csr_matrix, dict]:
    with np.load(path, allow_pickle=False) as z:
        A = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(s) for s in z["shape"]))
        return A, json.loads(str(z["stored"]))


def load_matrix(full_name: str) -> tuple[sp.csr_matrix, dict, dict]:
    """(A as stored in the file, {field, symmetry, format, info}, meta) of ``Group/Name``."""
    label = f"ss:{full_name}"
    mirror = fetch.mirror()
    mirror_entry = mirror.matrix_entry(full_name) if mirror is not None else None
    if mirror_entry is not None:
        path, digest = mirror.verified_path(mirror_entry)
        served = f"mirror:{mirror.root}"
    else:
        path = fetch_matrix(full_name)
        digest = fetch.read_registry()[tarball_relpath(full_name)]["sha256"]
        served = "cache"
    parsed = parsed_path(digest)
    if parsed.exists():
        A, stored = _read_parsed(parsed)
    elif mirror_entry is not None:
        n = mirror_entry["n"]
        A, stored = parse_and_cache(path, digest, (n, n, mirror_entry["nnz"]), _mirror_meta(mirror_entry), label)
    else:
        entry = index_entry(full_name)
        A, stored = parse_and_cache(path, digest, entry.expected, _index_meta(entry), label)
    meta = {"ss_name": full_name, "served_from": served, "file": str(path), "file_sha256": digest,
            "mm_field": stored["field"], "mm_symmetry": stored["symmetry"], **stored["info"]}
    return A, stored, meta


# -------------------------------------------------------------------------------------- plug-in


@register
class SuiteSparse(DatasetBase):
    name = "ss"
    version = "1"
    description = "a SuiteSparse Matrix Collection matrix, ss:<Group>/<Name> (fetched, verified, cached)"
    source = "suitesparse"
    takes_target = True
    # How to make a non-symmetric matrix symmetric (default: refuse it, naming the entry).
    params = {"symmetrize": "none"}
    choices = {"symmetrize": SYMMETRIZE}

    def __init__(self, target: str | None = None, **params):
        super().__init__(target, **params)
        if not _NAME.fullmatch(self.target):
            raise SpecError(f"ss:{self.target}: expected ss:<Group>/<Name>, as in ss:HB/bcsstk14")

    def library_versions(self) -> dict:
        return {"scipy": importlib.metadata.version("scipy")}

    def load(self) -> MatrixCase:
        A, stored, meta = load_matrix(self.target)
        meta["values"] = "file"
        if stored["field"] == "pattern":
            A = graph_system_from_pattern(A)
            meta["values"] = "graph-laplacian+I"
        return matrix_case(self.spec.canonical(), A, f"ss:{self.target}", meta=meta, symmetrize=self.p["symmetrize"])
