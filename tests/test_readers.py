"""Mesh and Matrix Market readers, the ``file:`` dataset, bad inputs, and the shared real data."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from permbench.datasets import create, load
from permbench.datasets.readers import read_matrix, read_matrix_header, read_mesh
from permbench.core.case import InputError
from permbench.core.specs import SpecError


def shared_data() -> Path:
    return Path(os.environ.get("PERMBENCH_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def manifest() -> dict:
    path = shared_data() / "manifest.json"
    if not path.is_file():
        pytest.skip(f"shared data not present ({path})")
    return json.loads(path.read_text())


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


SQUARE_OBJ = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3\nf 1 3 4\n"
SQUARE_OFF = "OFF\n4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n"
PLY_HEADER = (
    "ply\nformat ascii 1.0\nelement vertex {nv}\nproperty float x\nproperty float y\nproperty float z\n"
    "element face {nf}\nproperty list uchar int vertex_indices\nend_header\n"
)
SQUARE_PLY = PLY_HEADER.format(nv=4, nf=2) + "0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n"
SPD_MTX = "%%MatrixMarket matrix coordinate real symmetric\n3 3 5\n1 1 4.0\n2 1 -1.0\n2 2 4.0\n3 2 -1.0\n3 3 4.0\n"
SPD_DENSE = np.array([[4.0, -1, 0], [-1, 4, -1], [0, -1, 4]])


# ---------------------------------------------------------------------------------- real data


def test_every_shared_matrix_loads_with_manifest_shape_and_nnz():
    entries = manifest()["suitesparse"]
    assert entries
    for entry in entries:
        case = load(f"file:{shared_data() / entry['file']}")
        assert case.A.shape == (entry["n"], entry["n"]), entry["file"]
        assert case.A.nnz == entry["nnz"], entry["file"]
        assert not case.meta["symmetrized"] and case.meta["empty_rows"] == 0
        assert case.meta["mm_symmetry"] == "symmetric"


def test_one_shared_mesh_loads_as_a_dataset():
    entry = min(manifest()["meshes"], key=lambda e: e["V"])
    case = load(f"file:{shared_data() / entry['file']}[matrix=graph]")
    assert case.n == entry["V"] and case.meta["n_faces"] == entry["F"]
    assert case.coords.shape == (entry["V"], 3)
    assert case.meta["file_sha256"] == entry["sha256"]


@pytest.mark.slow
def test_every_shared_mesh_reads_with_manifest_counts():
    for entry in manifest()["meshes"]:
        V, F, counts = read_mesh(shared_data() / entry["file"])
        assert len(V) == entry["V"], entry["file"]
        assert counts["unreferenced_vertices_removed"] == 0 and counts["polygon_fan_triangles_added"] == 0
        # The manifest's degenerate_tris counts repeated corners only; ogre.obj also has
        # 4 triangles with three collinear corners (exactly zero area), which are removed.
        removed = counts["degenerate_faces_removed"] + counts["duplicate_faces_removed"]
        assert len(F) + removed == entry["F"], entry["file"]
        assert removed <= 4, entry["file"]


# ------------------------------------------------------------------------------- mesh formats


@pytest.mark.parametrize("name, text", [("m.obj", SQUARE_OBJ), ("m.off", SQUARE_OFF), ("m.ply", SQUARE_PLY)])
def test_ascii_mesh_formats_read_the_same_square(tmp_path, name, text):
    V, F, counts = read_mesh(write(tmp_path / name, text))
    np.testing.assert_array_equal(V, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(F, [[0, 1, 2], [0, 2, 3]])
    assert set(counts.values()) == {0}


def test_binary_ply_reads(tmp_path):
    header = PLY_HEADER.format(nv=4, nf=2).replace("ascii", "binary_little_endian")
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype="<f4")
    faces = np.zeros(2, dtype=[("n", "u1"), ("v", "<i4", (3,))])
    faces["n"] = 3
    faces["v"] = [[0, 1, 2], [0, 2, 3]]
    path = tmp_path / "b.ply"
    path.write_bytes(header.encode() + vertices.tobytes() + faces.tobytes())
    V, F, _ = read_mesh(path)
    assert V.shape == (4, 3) and F.tolist() == [[0, 1, 2], [0, 2, 3]]


def test_stl_triangle_soup_is_merged_into_shared_vertices(tmp_path):
    facets = ""
    for tri in ([0, 0, 0], [1, 0, 0], [1, 1, 0]), ([0, 0, 0], [1, 1, 0], [0, 1, 0]):
        corners = "".join(f"   vertex {x} {y} {z}\n" for x, y, z in tri)
        facets += f" facet normal 0 0 1\n  outer loop\n{corners}  endloop\n endfacet\n"
    V, F, _ = read_mesh(write(tmp_path / "s.stl", f"solid s\n{facets}endsolid s\n"))
    assert len(V) == 4 and len(F) == 2


def test_polygons_are_fan_triangulated_and_counted(tmp_path):
    obj = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 0.5 0\nf 1 2 3 4\nf 2 5 3\n"
    V, F, counts = read_mesh(write(tmp_path / "q.obj", obj))
    assert len(F) == 3 and counts["polygon_fan_triangles_added"] == 1
    ply = PLY_HEADER.format(nv=5, nf=2) + "0 0 0\n1 0 0\n1 1 0\n0 1 0\n2 0.5 0\n4 0 1 2 3\n3 1 4 2\n"
    V, F, counts = read_mesh(write(tmp_path / "q.ply", ply))
    assert sorted(map(sorted, F.tolist())) == [[0, 1, 2], [0, 2, 3], [1, 2, 4]]
    assert counts["polygon_fan_triangles_added"] == 1


def test_polygonal_off_is_rejected_with_the_reason(tmp_path):
    off = "OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n"
    with pytest.raises(InputError, match=r"q\.off.*triangular"):
        read_mesh(write(tmp_path / "q.off", off))


def test_cleaning_removes_and_counts_degenerate_duplicate_and_unused(tmp_path):
    obj = (
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 5 5 5\nv 2 0 0\n"
        "f 1 2 3\nf 1 3 4\nf 3 1 2\n"  # the third repeats the first (rotated)
        "f 1 2 6\n"  # collinear: zero area
        "f 1 1 3\n"  # repeated corner
    )
    V, F, counts = read_mesh(write(tmp_path / "c.obj", obj))
    assert counts == {"degenerate_faces_removed": 2, "duplicate_faces_removed": 1,
                      "unreferenced_vertices_removed": 2, "polygon_fan_triangles_added": 0}
    np.testing.assert_array_equal(V, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(F, [[0, 1, 2], [0, 2, 3]])


def test_mesh_file_dataset_records_cleaning_and_upsample(tmp_path):
    path = write(tmp_path / "sq.obj", SQUARE_OBJ + "v 9 9 9\n")
    case = load(f"file:{path}[upsample=1]")
    assert case.meta["unreferenced_vertices_removed"] == 1
    assert case.meta["n_faces"] == 8 and case.meta["derived"] is True
    assert case.n == 9 and case.meta["source"] == str(path)
    np.linalg.cholesky(case.A.toarray())


# -------------------------------------------------------------------------------- bad meshes

BAD_MESHES = {
    "missing.obj": (None, "file not found"),
    "empty.obj": ("", "0 vertices and no faces"),
    "points.obj": ("v 0 0 0\nv 1 0 0\n", "2 vertices and no faces"),
    "nan.obj": (SQUARE_OBJ.replace("v 1 1 0", "v nan 1 0"), r"vertex 3 \(1-based\) has a non-finite"),
    "badnum.obj": (SQUARE_OBJ.replace("v 1 0 0", "v 1 x 0"), "not a readable OBJ file.*expected 'v x y z'"),
    "index.off": (SQUARE_OFF.replace("3 0 2 3", "3 0 2 7"), "face 2 refers to vertex 8 .*4 vertices"),
    "truncated.off": (SQUARE_OFF[:-8], "not a readable OFF file"),
    "counts.off": (SQUARE_OFF.replace("4 2 0", "5 2 0"), "not a readable OFF file"),
    "header.off": ("hello world\n", "not a readable OFF file"),
    "truncated.ply": (SQUARE_PLY[:-8], "not a readable PLY file"),
    "header.ply": (SQUARE_PLY.replace("ply\n", "plx\n", 1), "not a readable PLY file"),
    "nan.off": (SQUARE_OFF.replace("1 1 0", "inf 1 0"), r"vertex 3 \(1-based\) has a non-finite"),
    "flat.obj": ("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "all 1 faces are degenerate"),
}


@pytest.mark.parametrize("name", BAD_MESHES)
def test_bad_mesh_files_raise_input_error_naming_the_file(tmp_path, name):
    text, message = BAD_MESHES[name]
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_mesh(path)
    assert str(path) in str(err.value)
    with pytest.raises(InputError):
        load(f"file:{path}")


def test_unknown_file_type_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="unknown file type"):
        create(f"file:{tmp_path / 'x.vtk'}")
    with pytest.raises(InputError, match="unknown mesh format"):
        read_mesh(tmp_path / "x.vtk")


# ---------------------------------------------------------------------------------- matrices


def test_symmetric_storage_is_expanded(tmp_path):
    A = read_matrix(write(tmp_path / "a.mtx", SPD_MTX))
    assert isinstance(A, sp.csr_matrix) and A.dtype == np.float64
    np.testing.assert_array_equal(A.toarray(), SPD_DENSE)
    header = read_matrix_header(tmp_path / "a.mtx")
    assert (header.rows, header.entries, header.field, header.symmetry) == (3, 5, "real", "symmetric")


def test_gzip_and_tar_bundle(tmp_path):
    gz = tmp_path / "a.mtx.gz"
    gz.write_bytes(gzip.compress(SPD_MTX.encode()))
    np.testing.assert_array_equal(read_matrix(gz).toarray(), SPD_DENSE)
    # A SuiteSparse bundle: <name>/<name>.mtx next to a right-hand side.
    (tmp_path / "mat").mkdir()
    write(tmp_path / "mat" / "mat.mtx", SPD_MTX)
    write(tmp_path / "mat" / "mat_b.mtx", "%%MatrixMarket matrix array real general\n3 1\n1\n2\n3\n")
    bundle = tmp_path / "mat.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(tmp_path / "mat", arcname="mat")
    np.testing.assert_array_equal(read_matrix(bundle).toarray(), SPD_DENSE)
    assert load(f"file:{bundle}").n == 3


def test_pattern_file_gets_graph_laplacian_plus_identity(tmp_path):
    text = "%%MatrixMarket matrix coordinate pattern symmetric\n3 3 3\n1 1\n2 1\n3 2\n"
    case = load(f"file:{write(tmp_path / 'p.mtx', text)}")
    assert case.meta["values"] == "graph-laplacian+I" and case.meta["mm_field"] == "pattern"
    np.testing.assert_array_equal(case.A.toarray(), [[2, -1, 0], [-1, 3, -1], [0, -1, 2]])


def test_integer_and_dense_array_files_load(tmp_path):
    integer = "%%MatrixMarket matrix coordinate integer general\n2 2 2\n1 1 3\n2 2 4\n"
    np.testing.assert_array_equal(read_matrix(write(tmp_path / "i.mtx", integer)).toarray(), [[3.0, 0], [0, 4]])
    dense = "%%MatrixMarket matrix array real general\n2 2\n2\n0\n0\n5\n"
    A = read_matrix(write(tmp_path / "d.mtx", dense))
    assert A.nnz == 2 and A[1, 1] == 5.0


def test_asymmetric_pattern_is_refused_unless_symmetrize_says_how(tmp_path):
    text = "%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 2.0\n2 1 -1.0\n2 2 2.0\n"
    path = write(tmp_path / "g.mtx", text)
    with pytest.raises(InputError, match=r"not symmetric: entry \(\d, \d\)"):
        load(f"file:{path}")
    case = load(f"file:{path}[symmetrize=lower]")
    assert case.meta["symmetrized"] == "lower"
    np.testing.assert_array_equal(case.A.toarray(), [[2, -1], [-1, 2]])


def test_explicit_zeros_are_dropped_and_counted(tmp_path):
    text = SPD_MTX.replace("3 3 5", "3 3 6") + "3 1 0.0\n"
    case = load(f"file:{write(tmp_path / 'z.mtx', text)}")
    assert case.meta["explicit_zeros_dropped"] == 2  # both triangles once expanded
    assert case.A.nnz == 7


def test_empty_rows_and_non_spd_values_load_and_are_left_to_the_backend(tmp_path):
    text = "%%MatrixMarket matrix coordinate real symmetric\n3 3 2\n1 1 -4.0\n2 1 1.0\n"
    case = load(f"file:{write(tmp_path / 'e.mtx', text)}")
    assert case.meta["empty_rows"] == 1
    assert case.A[0, 0] == -4.0


BAD_MATRICES = {
    "missing.mtx": (None, "file not found"),
    "nonsquare.mtx": (SPD_MTX.replace("symmetric", "general").replace("3 3 5", "3 4 5"), "3x4; a square matrix"),
    "banner.mtx": (SPD_MTX.replace("%%MatrixMarket", "%%MatrixMarkt"), "not a valid Matrix Market file.*banner"),
    "empty.mtx": ("", "not a valid Matrix Market file"),
    "short.mtx": (SPD_MTX.replace("3 3 5", "3 3 6"), "not a valid Matrix Market file.*Truncated"),
    "long.mtx": (SPD_MTX.replace("3 3 5", "3 3 4"), r"Line 7.*too long"),
    "value.mtx": (SPD_MTX.replace("-1.0", "abc", 1), r"Line 4: Invalid"),
    "range.mtx": (SPD_MTX.replace("3 3 4.0", "4 3 4.0"), r"Line 7: Row index out of bounds"),
    "nan.mtx": (SPD_MTX.replace("2 2 4.0", "2 2 nan"), "NaN/Inf"),
    "complex.mtx": ("%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1.0 2.0\n", "complex matrix"),
}


@pytest.mark.parametrize("name", BAD_MATRICES)
def test_bad_matrix_files_raise_input_error_naming_the_file(tmp_path, name):
    text, message = BAD_MATRICES[name]
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load(f"file:{path}")
    assert str(path) in str(err.value)


def test_truncated_and_fake_gzip_raise_input_error(tmp_path):
    compressed = gzip.compress(SPD_MTX.encode())
    truncated = tmp_path / "t.mtx.gz"
    truncated.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(InputError, match=r"t\.mtx\.gz: truncated or corrupt gzip"):
        read_matrix(truncated)
    fake = write(tmp_path / "f.mtx.gz", SPD_MTX)
    with pytest.raises(InputError, match=r"f\.mtx\.gz: not a gzip file"):
        read_matrix_header(fake)


def test_bundle_without_the_main_matrix_is_rejected(tmp_path):
    (tmp_path / "x").mkdir()
    write(tmp_path / "x" / "a.mtx", SPD_MTX)
    write(tmp_path / "x" / "b.mtx", SPD_MTX)
    bundle = tmp_path / "x.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(tmp_path / "x", arcname="x")
    with pytest.raises(InputError, match=r"x\.tar\.gz: expected one matrix 'x\.mtx'"):
        read_matrix(bundle)


def test_mesh_parameters_on_a_matrix_file_are_rejected(tmp_path):
    path = write(tmp_path / "a.mtx", SPD_MTX)
    with pytest.raises(SpecError, match="apply to mesh files only"):
        create(f"file:{path}[matrix=graph]")
    with pytest.raises(SpecError, match="needs a target"):
        create("file")
