"""Built-in generators and the matrix builders (cotan, graph)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp

from permbench.datasets import create, load, registry
from permbench.datasets.builders import (
    MeshEdges,
    build_matrix,
    cotan_laplacian,
    cotan_system,
    degenerate_elements,
    element_geometry,
    graph_system,
    graph_system_from_pattern,
)
from permbench.datasets.delaunay import disk_points
from permbench.datasets.grid import grid_faces
from permbench.datasets.icosphere import icosphere_level
from permbench.datasets.tetgrid import kuhn_tetrahedra
from permbench.core.specs import SpecError

# spec -> exact vertex count its documented rounding gives
GENERATORS = {
    "grid[n=400]": 400,  # k = 20
    "grid[n=410,jitter=0.1,seed=2]": 400,
    "icosphere[n=170]": 162,  # level 2
    "torus[n=200]": 200,  # 2k² with k = 10
    "delaunay[n=300,seed=1]": 300,
    "tetgrid[n=216]": 216,  # k = 6
}


def assert_spd(A: sp.csr_matrix):
    dense = A.toarray()
    assert np.array_equal(dense, dense.T), "matrix is not exactly symmetric"
    np.linalg.cholesky(dense)  # raises LinAlgError unless positive definite


def pattern(A: sp.csr_matrix) -> set[tuple[int, int]]:
    coo = A.tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist()))


@pytest.mark.parametrize("spec", GENERATORS)
@pytest.mark.parametrize("matrix", ["cotan", "graph"])
def test_generator_loads_spd_matrix_of_documented_size(spec, matrix):
    spec = spec.replace("]", f",matrix={matrix}]")
    case = load(spec)
    n_expected = GENERATORS[spec.replace(f",matrix={matrix}", "")]
    assert case.n == n_expected == case.meta["n_vertices"] == len(case.coords)
    assert case.meta["matrix"] == matrix
    assert case.meta["empty_rows"] == 0 and not case.meta["symmetrized"]
    assert case.faces.shape[1] == (4 if spec.startswith("tetgrid") else 3)
    assert case.faces.min() == 0 and case.faces.max() == case.n - 1
    assert_spd(case.A)


@pytest.mark.skipif(importlib.util.find_spec("sksparse") is None, reason="scikit-sparse not installed")
def test_generators_at_moderate_size_factor_with_cholmod():
    from sksparse.cholmod import cholesky

    for spec in ("grid[n=20000,jitter=0.15]", "icosphere[n=10000]", "torus[n=20000]", "delaunay[n=20000,seed=9]",
                 "tetgrid[n=8000]", "delaunay[n=20000,mass=lumped]"):
        case = load(spec)
        factor = cholesky(case.A.tocsc(), ordering_method="amd", mode="simplicial")
        assert factor.D().min() > 0, spec  # LDLᵀ pivots: positive iff SPD


@pytest.mark.parametrize("spec", GENERATORS)
def test_generator_is_deterministic(spec):
    first, second = load(spec), load(spec)
    assert np.array_equal(first.coords, second.coords)
    assert np.array_equal(first.faces, second.faces)
    assert (first.A != second.A).nnz == 0


@pytest.mark.parametrize("name", ["delaunay[n=300,seed={}]", "grid[n=400,jitter=0.1,seed={}]"])
def test_different_seeds_give_different_meshes(name):
    a, b = load(name.format(1)), load(name.format(2))
    assert not np.array_equal(a.coords, b.coords)


@pytest.mark.parametrize("spec", GENERATORS)
def test_cotan_and_graph_share_the_mesh_edge_pattern(spec):
    cotan = load(spec)
    graph = load(spec.replace("]", ",matrix=graph]"))
    assert pattern(cotan.A) == pattern(graph.A)
    edges = MeshEdges(cotan.n, cotan.faces)
    assert cotan.A.nnz == cotan.n + 2 * edges.count


def test_mesh_edges_are_unique_sorted_and_assemble_like_scipy():
    case = load("delaunay[n=500,seed=7]")
    F = case.faces
    edges = MeshEdges(case.n, F)
    pairs = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [0, 2]]]), axis=1)
    unique = np.unique(pairs, axis=0)
    np.testing.assert_array_equal(np.stack([edges.rows(), edges.cols], axis=1), unique)
    # Every (element, pair) slot maps to its own edge.
    slot_pairs = np.sort(F[:, [[1, 2], [2, 0], [0, 1]]].reshape(-1, 2), axis=1)
    np.testing.assert_array_equal(unique[edges.edge_of_slot], slot_pairs)
    values = np.arange(1.0, edges.count + 1)
    A = edges.symmetric(values, np.full(case.n, 100.0))
    U = sp.csr_matrix((values, (edges.rows(), edges.cols)), shape=A.shape)
    assert abs(A - (U + U.T + 100.0 * sp.identity(case.n))).max() == 0
    for r in range(case.n):  # canonical CSR: strictly increasing columns in each row
        assert np.all(np.diff(A.indices[A.indptr[r] : A.indptr[r + 1]]) > 0)


def test_lumped_mass_drops_the_zero_weight_diagonals_of_the_grid():
    """Documented reason the default mass is consistent: cot 90° = 0 on the grid's diagonals."""
    lumped = load("grid[n=400,mass=lumped]")
    k = 20
    axis_edges = 2 * k * (k - 1)
    assert lumped.A.nnz == k * k + 2 * axis_edges
    assert_spd(lumped.A)
    k = 5  # Kuhn tetgrid: face and body diagonals vanish too, leaving the 7-point stencil
    assert load("tetgrid[n=125,mass=lumped]").A.nnz == k**3 + 2 * 3 * k * k * (k - 1)


def test_total_mass_is_area_or_volume():
    """1ᵀA1 = 1ᵀM1 + t·1ᵀL1 = |Ω|, since L1 = 0: the unit square and the unit cube."""
    for spec in ("grid[n=400]", "grid[n=400,mass=lumped]", "tetgrid[n=125]", "tetgrid[n=125,mass=lumped]"):
        assert load(spec).A.sum() == pytest.approx(1.0, rel=1e-12)


def test_cotan_of_one_right_triangle_matches_hand_values():
    V = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    F = np.array([[0, 1, 2]])
    L = cotan_laplacian(V, F).toarray()
    # Angles: 90° at vertex 0 (cot 0), 45° at vertices 1 and 2 (cot 1). L_ij = −cot(opposite)/2.
    expected = np.array([[1.0, -0.5, -0.5], [-0.5, 0.5, 0.0], [-0.5, 0.0, 0.5]])
    np.testing.assert_allclose(L, expected, atol=1e-15)
    A, info = cotan_system(V, F)
    t = info["t"]
    assert t == pytest.approx(((2 + np.sqrt(2)) / 3) ** 2)
    mass = np.array([[2.0, 1.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]) * 0.5 / 12  # area/12·(1+δ)
    np.testing.assert_allclose(A.toarray(), mass + t * expected, atol=1e-15)


def test_stiffness_of_the_reference_tetrahedron_matches_hand_values():
    V = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    F = np.array([[0, 1, 2, 3]])
    # ∇λ1..3 = unit vectors, ∇λ0 = (−1, −1, −1), volume 1/6: K = G Gᵀ / 6.
    G = np.array([[-1.0, -1, -1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(cotan_laplacian(V, F).toarray(), G @ G.T / 6, atol=1e-15)


def test_regular_grid_cotan_is_the_five_point_stencil():
    k = 5
    x = np.linspace(0.0, 1.0, k)
    X, Y = np.meshgrid(x, x, indexing="ij")
    V = np.stack([X.ravel(), Y.ravel()], axis=1)
    L = cotan_laplacian(V, grid_faces(k, k)).toarray()
    centre = 2 * k + 2
    row = L[centre].reshape(k, k)
    expected = np.zeros((k, k))
    expected[2, 2] = 4.0
    expected[1, 2] = expected[3, 2] = expected[2, 1] = expected[2, 3] = -1.0
    np.testing.assert_allclose(row, expected, atol=1e-14)  # diagonal neighbours: weight 0


@pytest.mark.parametrize("spec", ["delaunay[n=200,seed=4]", "tetgrid[n=64]", "icosphere[n=42]"])
def test_laplacian_rows_sum_to_zero_and_it_is_psd(spec):
    case = load(spec)
    L = cotan_laplacian(case.coords, case.faces)
    np.testing.assert_allclose(np.asarray(L.sum(axis=1)).ravel(), 0.0, atol=1e-12 * abs(L).max())
    assert np.linalg.eigvalsh(L.toarray()).min() > -1e-10 * abs(L).max()


@pytest.mark.skipif(importlib.util.find_spec("igl") is None, reason="libigl not installed")
@pytest.mark.parametrize("spec", ["delaunay[n=150,seed=3]", "icosphere[n=42]", "torus[n=50]", "tetgrid[n=64]"])
@pytest.mark.parametrize("mass", ["consistent", "lumped"])
def test_cotan_system_matches_libigl(spec, mass):
    import igl

    case = load(spec)
    V = np.ascontiguousarray(np.c_[case.coords, np.zeros((case.n, 3 - case.coords.shape[1]))])
    F = np.ascontiguousarray(case.faces, dtype=np.int64)
    kind = igl.MASSMATRIX_TYPE_FULL if mass == "consistent" else igl.MASSMATRIX_TYPE_BARYCENTRIC
    A, info = cotan_system(case.coords, case.faces, mass)
    expected = igl.massmatrix(V, F, kind) - info["t"] * igl.cotmatrix(V, F)  # igl's L is negative semidefinite
    # Slivers on the Delaunay hull make cotangents ill-conditioned: the two formulas (dot/cross
    # here, edge lengths in igl) then agree to ~1e-11 relative, not to the last digit.
    assert abs(A - expected).max() <= 1e-9 * abs(expected).max()


def test_degenerate_triangles_give_no_nan_and_are_flagged():
    V = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0]])
    F = np.array([[0, 1, 2], [0, 1, 3], [1, 1, 3]])  # collinear, fine, repeated corner
    np.testing.assert_array_equal(degenerate_elements(V, F), [True, False, True])
    K, area, bad = element_geometry(V, F)
    assert np.isfinite(K).all() and area[0] == area[2] == 0.0 and area[1] == pytest.approx(0.5)
    for kind in ("cotan", "graph"):
        A, _ = build_matrix(V, F, kind)
        assert np.isfinite(A.data).all()


def test_build_matrix_rejects_out_of_range_elements():
    with pytest.raises(ValueError, match="element indices"):
        build_matrix(np.zeros((3, 3)), np.array([[0, 1, 3]]))


def test_graph_system_is_laplacian_plus_identity():
    A, info = graph_system(4, np.array([[0, 1, 2], [0, 2, 3]]))
    assert info == {"matrix": "graph"}
    expected = np.array([[4, -1, -1, -1], [-1, 3, -1, 0], [-1, -1, 4, -1], [-1, 0, -1, 3]], dtype=float)
    np.testing.assert_array_equal(A.toarray(), expected)


def test_graph_system_from_pattern_symmetrizes_and_ignores_the_diagonal():
    P = sp.csr_matrix(np.array([[5.0, 1, 0], [0, 0, 0], [0, 1, 7]]))
    np.testing.assert_array_equal(
        graph_system_from_pattern(P).toarray(), [[2, -1, 0], [-1, 3, -1], [0, -1, 2]]
    )


def test_upsample_multiplies_faces_by_four_per_step():
    base = load("icosphere[n=42]")
    for steps in (1, 2):
        case = load(f"icosphere[n=42,upsample={steps}]")
        assert len(case.faces) == len(base.faces) * 4**steps == case.meta["n_faces"]
        assert case.meta["derived"] is True and case.meta["upsample"] == steps
        assert_spd(case.A)
    assert base.meta["derived"] is False


def test_icosphere_level_rounds_to_nearest_vertex_count():
    assert icosphere_level(655362) == 8
    assert icosphere_level(10**6) == 8
    assert icosphere_level(12) == 0
    assert icosphere_level(10_000) == 5
    case = load("icosphere[n=642]")
    np.testing.assert_allclose(np.linalg.norm(case.coords, axis=1), 1.0)
    assert case.meta["icosphere_level"] == 3


def test_torus_vertices_lie_on_the_torus():
    case = load("torus[n=200]")
    x, y, z = case.coords.T
    ring = np.hypot(x, y) - 1.0
    np.testing.assert_allclose(ring**2 + z**2, 0.35**2)
    assert (case.meta["torus_u"], case.meta["torus_v"]) == (20, 10)
    # Closed surface: every edge in exactly two triangles (Euler characteristic 0).
    edges = MeshEdges(case.n, case.faces)
    assert case.n - edges.count + len(case.faces) == 0


def test_tetgrid_is_positively_oriented_and_fills_the_cube():
    k = 4
    T = kuhn_tetrahedra(k)
    assert T.shape == (6 * (k - 1) ** 3, 4)
    case = load("tetgrid[n=64]")
    P = case.coords[case.faces]
    signed = np.einsum("ij,ij->i", P[:, 1] - P[:, 0], np.cross(P[:, 2] - P[:, 0], P[:, 3] - P[:, 0])) / 6
    assert (signed > 0).all()
    assert signed.sum() == pytest.approx(1.0)


def test_delaunay_points_are_in_the_disk_and_all_used():
    P = disk_points(1000, seed=5)
    assert (np.hypot(P[:, 0], P[:, 1]) <= 1.0).all()
    case = load("delaunay[n=1000,seed=5]")
    assert case.n == 1000
    np.testing.assert_array_equal(np.sort(case.coords, axis=0), np.sort(P, axis=0))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("grid[n=1]", "n=1 is out of range"),
        ("delaunay[n=-5]", "n=-5 is out of range"),
        ("grid[n=100,jitter=0.5]", "jitter=0.5"),
        ("tetgrid[n=64,upsample=1]", "triangle meshes only"),
        ("grid[n=100,upsample=9]", "upsample=9"),
        ("grid[n=100,matrix=graph,mass=lumped]", "matrix=cotan only"),
        ("grid[n=100,matrix=dense]", "not one of"),
        ("grid[n=lots]", "grid: n='lots' is not an integer"),
        ("torus[n=100,seed=1]", "unknown parameter"),
    ],
)
def test_bad_parameters_are_rejected_with_a_clear_message(spec, message):
    with pytest.raises(SpecError, match=message):
        create(spec)


def test_unknown_dataset_names_the_valid_ones():
    with pytest.raises(SpecError) as err:
        load("gird[n=100]")
    for name in ("grid", "icosphere", "torus", "delaunay", "tetgrid", "file"):
        assert name in str(err.value)
    assert set(registry.names()) >= {"grid", "icosphere", "torus", "delaunay", "tetgrid", "file"}


def test_case_name_is_the_canonical_spec_and_meta_records_the_regularization():
    case = load("grid[seed=0,n=400]")
    assert case.name == "grid[n=400]"  # defaults are not named
    assert case.meta["t"] == pytest.approx(case.meta["mean_edge_length"] ** 2)
    assert case.meta["mass"] == "consistent" and case.meta["grid_side"] == 20
