"""Readers for mesh files (OBJ, OFF, PLY, STL) and Matrix Market files (.mtx, .mtx.gz, .tar.gz).

Shared by the ``file:`` dataset and the fetchers; they return plain arrays and raise
:class:`~permbench.core.case.InputError` naming the file and what was expected.

Meshes. OBJ goes through trimesh (``maintain_order=True``, ``process=False``): it keeps the ``v``
records as they are even when texture or normal indices differ per corner (meshio's OBJ reader
rejects such files, e.g. pizza.obj). OFF, PLY and STL go through meshio's format readers, which
check the element counts in the header (trimesh silently loads a truncated OFF or PLY) and merge
an STL triangle soup into shared vertices. Nothing that changes topology is done silently:

* polygons with more than three corners are fan-triangulated (by trimesh for OBJ, here for PLY);
  ``polygon_fan_triangles_added`` counts the triangles beyond one per face record. meshio's OFF
  reader accepts triangles only, so a polygonal OFF file is rejected with that reason;
* then faces with a repeated corner or zero area are removed (``degenerate_faces_removed``),
  faces with the same corner set as an earlier face are removed (``duplicate_faces_removed``),
  and vertices no face uses are removed (``unreferenced_vertices_removed``), renumbering the rest
  in their original order.

An OBJ file has no counts, so a truncated OBJ cannot be told from a short one unless the cut
leaves a malformed record.

Matrices go through ``scipy.io.mmread``: symmetric (and skew/hermitian) storage is expanded to
both triangles, integer values become float, a ``pattern`` file gets values 1.0 (its header, from
:func:`read_matrix_header`, says so; the ``file:`` dataset then builds graph Laplacian + I), a
dense ``array`` file becomes sparse. Complex matrices are rejected. Checking squareness,
symmetry, explicit zeros and empty rows is left to ``prepare_matrix`` (via ``matrix_case``), as
for every other matrix.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..core.case import InputError
from .builders import degenerate_elements

MESH_SUFFIXES = (".obj", ".off", ".ply", ".stl")
MATRIX_SUFFIXES = (".mtx", ".mtx.gz", ".tar.gz", ".tgz")

_EXPECTED = {
    ".obj": "'v x y z' vertex records and 'f i j k ...' face records",
    ".off": "an 'OFF' line, then 'n_vertices n_faces n_edges', then that many vertices and triangles",
    ".ply": "a PLY header ('element vertex N', 'element face M', 'end_header') and that much data",
    ".stl": "an ASCII ('solid ... facet ... endsolid') or binary STL triangle list",
}


def _suffix(path: Path, known: tuple[str, ...]) -> str | None:
    name = path.name.lower()
    return next((s for s in sorted(known, key=len, reverse=True) if name.endswith(s)), None)


def is_mesh_file(path) -> bool:
    return _suffix(Path(path), MESH_SUFFIXES) is not None


def is_matrix_file(path) -> bool:
    return _suffix(Path(path), MATRIX_SUFFIXES) is not None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")


# --------------------------------------------------------------------------------------- meshes


def read_mesh(path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a triangle mesh: V (n, 3) float64 (n, 2 if planar), F (m, 3) int64, cleaning counts."""
    path = Path(path)
    suffix = _suffix(path, MESH_SUFFIXES)
    if suffix is None:
        raise InputError(f"{path}: unknown mesh format (expected one of {', '.join(MESH_SUFFIXES)})")
    _check_file(path)
    try:
        if suffix == ".obj":
            V, F, fan_added = _read_obj(path)
        else:
            V, F, fan_added = _read_meshio(path, suffix)
    except InputError:
        raise
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror or err})") from err
    except Exception as err:  # the libraries raise anything from ValueError to IndexError
        bad = bad_face_line(path, suffix)
        if bad:
            raise InputError(f"{path}: {bad}") from err
        raise InputError(
            f"{path}: not a readable {suffix[1:].upper()} file ({type(err).__name__}: {err}); "
            f"expected {_EXPECTED[suffix]}"
        ) from err
    if len(F) and (F.min() < 0 or F.max() >= len(V)):
        bad = bad_face_line(path, suffix)
        if bad:
            raise InputError(f"{path}: {bad}")
    V, F, counts = clean_mesh(V, F, str(path))
    counts["polygon_fan_triangles_added"] = fan_added
    return V, F, counts


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    import trimesh

    text = path.read_bytes()
    face_records = len(re.findall(rb"^[ \t]*f[ \t]", text, flags=re.MULTILINE))
    if face_records == 0:
        vertices = len(re.findall(rb"^[ \t]*v[ \t]", text, flags=re.MULTILINE))
        raise InputError(f"{path}: {vertices} vertices and no faces; expected at least one 'f i j k' face record")
    mesh = trimesh.load(io.BytesIO(text), file_type="obj", process=False, force="mesh",
                        maintain_order=True, skip_materials=True)
    F = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    return np.asarray(mesh.vertices, dtype=np.float64), F, max(0, len(F) - face_records)


def _read_meshio(path: Path, suffix: str) -> tuple[np.ndarray, np.ndarray, int]:
    import meshio

    # The per-format readers raise; meshio.read() itself calls sys.exit on a ReadError.
    reader = {".off": meshio.off.read, ".ply": meshio.ply.read, ".stl": meshio.stl.read}[suffix]
    with np.errstate(over="ignore"):  # meshio's binary-STL size probe overflows uint32 on ASCII files
        mesh = reader(str(path))
    triangles, fan_added = [], 0
    for block in mesh.cells:
        cells = np.asarray(block.data, dtype=np.int64)
        if block.type in ("vertex", "line"):
            continue
        if cells.ndim != 2 or cells.shape[1] < 3:
            raise InputError(f"{path}: {block.type} cells are not surface faces (expected triangles or polygons)")
        triangles.append(fan_triangulate(cells))
        fan_added += len(cells) * (cells.shape[1] - 3)
    F = np.concatenate(triangles) if triangles else np.zeros((0, 3), dtype=np.int64)
    return np.asarray(mesh.points, dtype=np.float64), F, fan_added


def bad_face_line(path: Path, suffix: str) -> str | None:
    """For a text mesh file, the first face that refers to a vertex the file does not have:
    'line L: face F refers to vertex V (1-based), but the file has N vertices'; else None."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    if suffix == ".obj":
        n, face = 0, 0
        for number, line in enumerate(lines, 1):
            parts = line.split()
            if parts[:1] == ["v"]:
                n += 1
            elif parts[:1] == ["f"]:
                face += 1
                for token in parts[1:]:
                    try:
                        index = int(token.split("/")[0])
                    except ValueError:
                        return None  # malformed: the reader's own message says so
                    vertex = index if index > 0 else n + 1 + index  # negative: relative to the end
                    if not 1 <= vertex <= n:
                        return (f"line {number}: face {face} refers to vertex {index} (1-based), but the file has "
                                f"{n} vertices before it")
        return None
    if suffix == ".off":
        body = [(i, line.split("#")[0].split()) for i, line in enumerate(lines, 1)]
        body = [(i, parts) for i, parts in body if parts]
        if not body or not body[0][1][0].upper().endswith("OFF"):
            return None
        header = body[1] if len(body[0][1]) == 1 else (body[0][0], body[0][1][1:])
        start = body.index(header) + 1 if header in body else 1
        try:
            n, m = int(header[1][0]), int(header[1][1])
        except (ValueError, IndexError):
            return None
        for face, (number, parts) in enumerate(body[start + n:start + n + m], 1):
            if not all(p.lstrip("-").isdigit() for p in parts):
                return None
            for index in map(int, parts[1:1 + int(parts[0])]):
                if not 0 <= index < n:
                    return (f"line {number}: face {face} refers to vertex {index + 1} (1-based; {index} in the file's "
                            f"0-based numbering), but the file has {n} vertices")
    return None


def fan_triangulate(polygons: np.ndarray) -> np.ndarray:
    """(m, k) polygons -> (m·(k−2), 3) triangles (p0, p_i, p_i+1), each polygon's fan kept together."""
    k = polygons.shape[1]
    if k == 3:
        return polygons
    fans = [np.stack([polygons[:, 0], polygons[:, i], polygons[:, i + 1]], axis=1) for i in range(1, k - 1)]
    return np.stack(fans, axis=1).reshape(-1, 3)


def clean_mesh(V: np.ndarray, F: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Validate a triangle mesh and remove degenerate/duplicate faces and unused vertices (counted)."""
    V = np.asarray(V, dtype=np.float64)
    F = np.asarray(F, dtype=np.int64)
    if V.ndim != 2 or V.shape[1] not in (2, 3):
        raise InputError(f"{source}: vertex array has shape {V.shape}; expected (n, 3) coordinates")
    if len(V) == 0:
        raise InputError(f"{source}: empty mesh (no vertices); expected vertices and at least one triangle")
    if len(F) == 0:
        raise InputError(f"{source}: {len(V)} vertices and no faces; expected at least one triangle")
    if F.min() < 0 or F.max() >= len(V):
        bad = int(np.flatnonzero((F < 0).any(axis=1) | (F >= len(V)).any(axis=1))[0])
        raise InputError(
            f"{source}: face {bad + 1} refers to vertex {int(F[bad].max()) + 1} (1-based), "
            f"but the file has {len(V)} vertices"
        )
    finite = np.isfinite(V).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InputError(
            f"{source}: vertex {bad + 1} (1-based) has a non-finite coordinate {V[bad].tolist()}; "
            f"{int((~finite).sum())} such vertices in total"
        )
    degenerate = degenerate_elements(V, F)
    F = F[~degenerate]
    corner_sets = np.sort(F, axis=1)
    _, first = np.unique(corner_sets, axis=0, return_index=True)
    keep = np.zeros(len(F), dtype=bool)
    keep[first] = True
    duplicates = int((~keep).sum())
    F = F[keep]
    if len(F) == 0:
        raise InputError(f"{source}: all {int(degenerate.sum())} faces are degenerate (zero area or a repeated corner)")
    used = np.zeros(len(V), dtype=bool)
    used[F.ravel()] = True
    unreferenced = int((~used).sum())
    if unreferenced:
        new_id = np.cumsum(used) - 1
        V, F = V[used], new_id[F]
    counts = {
        "degenerate_faces_removed": int(degenerate.sum()),
        "duplicate_faces_removed": duplicates,
        "unreferenced_vertices_removed": unreferenced,
    }
    return V, F, counts


# ------------------------------------------------------------------------------------- matrices


@dataclass(frozen=True)
class MatrixHeader:
    """The Matrix Market banner and size line."""

    rows: int
    cols: int
    entries: int  # as stored (one triangle for symmetric storage)
    format: str  # "coordinate" | "array"
    field: str  # "real" | "integer" | "pattern" | "complex"
    symmetry: str  # "general" | "symmetric" | "skew-symmetric" | "hermitian"


@contextlib.contextmanager
def _matrix_source(path: Path):
    """What to hand scipy.io.mmread/mminfo: the path itself, or the bundle's matrix as BytesIO.

    Never an open file object: with one, scipy 1.17's fast_matrix_market aborts the whole process
    (C++ terminate on "OSError: [Errno 22]") when the file is malformed. Paths (.gz included,
    which scipy opens with gzip) and BytesIO raise a normal ValueError.
    """
    if _suffix(path, MATRIX_SUFFIXES) in (".tar.gz", ".tgz"):
        with tarfile.open(path, "r:gz") as bundle:
            member = _main_member(bundle, path)
            yield io.BytesIO(bundle.extractfile(member).read())
    else:
        yield str(path)


def _main_member(bundle: tarfile.TarFile, path: Path) -> tarfile.TarInfo:
    """The matrix of a SuiteSparse bundle: ``<name>/<name>.mtx`` (others are right-hand sides etc.)."""
    mtx = [m for m in bundle.getmembers() if m.isfile() and m.name.endswith(".mtx")]
    stem = path.name.lower().removesuffix(".tar.gz").removesuffix(".tgz")
    main = [m for m in mtx if Path(m.name).name.lower() == f"{stem}.mtx"]
    if len(main) == 1:
        return main[0]
    if len(mtx) == 1:
        return mtx[0]
    names = ", ".join(m.name for m in mtx) or "none"
    raise InputError(f"{path}: expected one matrix '{stem}.mtx' in the bundle, found .mtx members: {names}")


def _matrix_errors(path: Path):
    """Turn what gzip, tarfile and scipy raise into InputErrors that name the file."""

    @contextlib.contextmanager
    def wrapper():
        try:
            yield
        except InputError:
            raise
        except FileNotFoundError as err:
            raise InputError(f"{path}: file not found") from err
        except (EOFError, zlib.error) as err:
            raise InputError(f"{path}: truncated or corrupt gzip data ({err})") from err
        except gzip.BadGzipFile as err:
            raise InputError(f"{path}: not a gzip file ({err}); a .gz name needs gzip-compressed content") from err
        except tarfile.TarError as err:
            raise InputError(f"{path}: not a readable tar.gz bundle ({err})") from err
        except OSError as err:
            raise InputError(f"{path}: cannot be read ({err.strerror or err})") from err
        except (ValueError, TypeError, IndexError, OverflowError) as err:
            raise InputError(
                f"{path}: not a valid Matrix Market file ({err}); expected a '%%MatrixMarket matrix "
                f"coordinate real|integer|pattern general|symmetric' banner, a 'rows cols entries' "
                f"line and that many 'i j [value]' lines"
            ) from err

    return wrapper()


def read_matrix_header(path) -> MatrixHeader:
    """The banner and sizes of a Matrix Market file, without reading its entries."""
    import scipy.io

    path = Path(path)
    _require_matrix_suffix(path)
    _check_file(path)
    with _matrix_errors(path), _matrix_source(path) as source:
        rows, cols, entries, fmt, field, symmetry = scipy.io.mminfo(source)
    return MatrixHeader(int(rows), int(cols), int(entries), fmt, field, symmetry)


def read_matrix(path) -> sp.csr_matrix:
    """Read a Matrix Market matrix as float64 CSR with both triangles stored."""
    import scipy.io

    path = Path(path)
    _require_matrix_suffix(path)
    _check_file(path)
    with _matrix_errors(path), _matrix_source(path) as source:
        A = scipy.io.mmread(source)
    if np.iscomplexobj(A.data if sp.issparse(A) else A):
        raise InputError(f"{path}: complex matrix; expected a real (or integer or pattern) field")
    return sp.csr_matrix(A, dtype=np.float64)


def _require_matrix_suffix(path: Path) -> None:
    if _suffix(path, MATRIX_SUFFIXES) is None:
        raise InputError(f"{path}: unknown matrix format (expected one of {', '.join(MATRIX_SUFFIXES)})")
