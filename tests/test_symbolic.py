"""The symbolic back-end: every metric against brute force, nnz(L) exactly against CHOLMOD."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from permbench import orderings
from permbench.harness import backends
from permbench.harness.backends.symbolic import (
    SymbolicFactor,
    is_postordered,
    postordered_perm,
    symbolic_factor,
)
from permbench.core.case import MatrixCase, Ordering, symmetric_graph


def shared_data() -> Path:
    env = os.environ.get("PERMBENCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def needs_shared(*parts: str) -> Path:
    path = shared_data().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


# --------------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------------


def brute_force(graph: sp.spmatrix, perm: np.ndarray) -> dict:
    """Every metric of docs/architecture.md ("Metric definitions") from the explicit structure of L, by the elimination game on sets.

    Eliminating vertex j makes its remaining (higher-numbered) neighbours a clique; column j of L is
    j plus those neighbours. Nothing here uses an elimination tree algorithm.
    """
    n = graph.shape[0]
    P = sp.csr_matrix(graph)[perm][:, perm].tocsr()
    adjacency = [set(P.indices[P.indptr[i]:P.indptr[i + 1]].tolist()) - {i} for i in range(n)]
    structure = []
    for j in range(n):
        later = {i for i in adjacency[j] if i > j}
        structure.append({j} | later)
        for a in later:
            adjacency[a] |= later - {a}
    counts = np.array([len(s) for s in structure])
    parent = np.array([min(s - {j}) if len(s) > 1 else -1 for j, s in enumerate(structure)])
    children = [[] for _ in range(n)]
    for j, p in enumerate(parent):
        if p >= 0:
            children[p].append(j)

    def paths(j):  # all root-to-leaf paths below j, as lists of nodes
        if not children[j]:
            return [[j]]
        return [[j] + rest for c in children[j] for rest in paths(c)]

    all_paths = [path for root in np.flatnonzero(parent == -1) for path in paths(root)]
    # j joins its parent's fundamental supernode iff it is the only child and struct(L_j) = {j} ∪ struct(L_p).
    merged = sum(
        1 for j, p in enumerate(parent)
        if p >= 0 and len(children[p]) == 1 and structure[j] - {j} == structure[p]
    )
    nnz_lower = (graph.nnz - graph.diagonal().astype(bool).sum()) // 2 + n
    flops = int((counts**2).sum())
    critical = max(int(sum(counts[v] ** 2 for v in path)) for path in all_paths)
    return {
        "colcount": counts,
        "parent": parent,
        "nnz_L": int(counts.sum()),
        "flops": flops,
        "fill_ratio": counts.sum() / nnz_lower,
        "etree_height": max(len(path) for path in all_paths),
        "critical_flops": critical,
        "parallelism": flops / critical,
        "supernodes": n - merged,
        "n_etree_roots": int((parent == -1).sum()),
    }


def dense_cholesky_nnz(graph: sp.spmatrix, perm: np.ndarray, seed: int = 0) -> int:
    """nnz(L) of a dense Cholesky of a random SPD matrix with this pattern (structural zeros stay 0.0)."""
    n = graph.shape[0]
    rng = np.random.default_rng(seed)
    G = sp.triu(sp.csr_matrix(graph), 1).tocoo()
    A = np.zeros((n, n))
    A[G.row, G.col] = rng.uniform(0.1, 1.0, G.nnz)
    A = A + A.T
    A += np.diag(np.abs(A).sum(axis=1) + 1.0)  # diagonally dominant: SPD
    L = np.linalg.cholesky(A[np.ix_(perm, perm)])
    return int(np.count_nonzero(L))


def random_graph(n: int, density: float, seed: int) -> sp.csr_matrix:
    R = sp.random(n, n, density=density, random_state=seed)
    return symmetric_graph(R + R.T + sp.identity(n))


def grid_graph(rows: int, cols: int) -> sp.csr_matrix:
    """Triangulated grid (7-point stencil) adjacency."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :]), (idx[:-1, :-1], idx[1:, 1:])]
    r = np.concatenate([a.ravel() for a, _ in pairs])
    c = np.concatenate([b.ravel() for _, b in pairs])
    W = sp.coo_matrix((np.ones(r.size), (r, c)), shape=(rows * cols,) * 2)
    return symmetric_graph(W + W.T)


def laplacian_plus_identity(graph: sp.spmatrix) -> sp.csr_matrix:
    W = sp.csr_matrix(graph, dtype=np.float64)
    W.data[:] = 1.0
    return (sp.diags(np.asarray(W.sum(axis=1)).ravel() + 1.0) - W).tocsr()


def disconnected_graph() -> sp.csr_matrix:
    # a path 0-1-2, a triangle 3-4-5, an isolated vertex 6, and a star centred at 9
    edges = [(0, 1), (1, 2), (3, 4), (4, 5), (3, 5), (9, 7), (9, 8), (9, 10), (9, 11)]
    r, c = zip(*edges)
    W = sp.coo_matrix((np.ones(len(edges)), (r, c)), shape=(12, 12))
    return symmetric_graph(W + W.T)


def assert_matches_brute_force(f: SymbolicFactor, graph, perm):
    ref = brute_force(graph, perm)
    np.testing.assert_array_equal(f.colcount, ref["colcount"])
    np.testing.assert_array_equal(f.parent, ref["parent"])
    metrics = f.metrics()
    for key in ("nnz_L", "flops", "etree_height", "critical_flops", "supernodes", "n_etree_roots"):
        assert metrics[key] == ref[key], key
    assert metrics["fill_ratio"] == pytest.approx(ref["fill_ratio"], rel=1e-15)
    assert metrics["parallelism"] == pytest.approx(ref["parallelism"], rel=1e-15)


# --------------------------------------------------------------------------------------------------
# Brute-force checks
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 45))
    graph = random_graph(n, float(rng.uniform(0.02, 0.3)), seed)
    perm = rng.permutation(n)
    assert_matches_brute_force(symbolic_factor(graph, perm), graph, perm)


@pytest.mark.parametrize("ordering", ["natural", "rcm", "amd", "metis"])
def test_small_grid_with_orderings_matches_brute_force(ordering):
    graph = grid_graph(6, 7)
    perm = orderings.create(ordering).compute(graph).perm
    assert_matches_brute_force(symbolic_factor(graph, perm), graph, perm)


def test_disconnected_graph():
    graph = disconnected_graph()
    for perm in (np.arange(12), np.random.default_rng(3).permutation(12)):
        f = symbolic_factor(graph, perm)
        assert_matches_brute_force(f, graph, perm)
        assert f.n_etree_roots == 4  # one tree per connected component


def test_one_by_one():
    graph = symmetric_graph(sp.csr_matrix(np.array([[4.0]])))
    f = symbolic_factor(graph, np.array([0]))
    assert f.metrics() == {"nnz_L": 1, "flops": 1, "fill_ratio": 1.0, "etree_height": 1, "critical_flops": 1,
                           "parallelism": 1.0, "supernodes": 1, "n_etree_roots": 1}


def test_diagonal_only():
    n = 9
    graph = symmetric_graph(sp.identity(n, format="csr"))
    f = symbolic_factor(graph, np.random.default_rng(0).permutation(n))
    assert f.metrics() == {"nnz_L": n, "flops": n, "fill_ratio": 1.0, "etree_height": 1, "critical_flops": 1,
                           "parallelism": float(n), "supernodes": n, "n_etree_roots": n}


def test_dense_graph_is_one_supernode_and_a_chain():
    n = 8
    graph = symmetric_graph(sp.csr_matrix(np.ones((n, n))))
    f = symbolic_factor(graph, np.arange(n)[::-1].copy())
    assert f.nnz_L == n * (n + 1) // 2
    assert f.flops == sum(c * c for c in range(1, n + 1))
    assert f.supernodes == 1
    assert f.etree_height == n
    assert f.critical_flops == f.flops and f.parallelism == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_nnz_matches_dense_cholesky(seed):
    rng = np.random.default_rng(100 + seed)
    graph = random_graph(60, 0.06, seed)
    perm = rng.permutation(60)
    assert symbolic_factor(graph, perm).nnz_L == dense_cholesky_nnz(graph, perm, seed)


def test_matrix_with_diagonal_gives_same_result_as_its_graph():
    graph = grid_graph(5, 5)
    A = laplacian_plus_identity(graph)
    perm = np.random.default_rng(1).permutation(25)
    assert symbolic_factor(A, perm).metrics() == symbolic_factor(graph, perm).metrics()


def test_int64_indices_give_the_same_result():
    graph = grid_graph(7, 9)
    wide = sp.csr_matrix(graph)
    wide.indptr = wide.indptr.astype(np.int64)
    wide.indices = wide.indices.astype(np.int64)
    perm = np.random.default_rng(4).permutation(63)
    assert symbolic_factor(wide, perm).metrics() == symbolic_factor(graph, perm).metrics()


# --------------------------------------------------------------------------------------------------
# Postorder
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ordering", ["natural", "rcm", "amd", "metis"])
def test_postordered_perm_keeps_fill_and_makes_subtrees_contiguous(ordering):
    graph = grid_graph(20, 17)
    perm = orderings.create(ordering).compute(graph).perm
    f = symbolic_factor(graph, perm)
    composed = f.postordered_perm()
    np.testing.assert_array_equal(composed, postordered_perm(graph, perm))
    g = symbolic_factor(graph, composed)
    assert is_postordered(g.parent)
    np.testing.assert_array_equal(g.post, np.arange(graph.shape[0]))
    assert g.metrics() == f.metrics()


def test_is_postordered_detects_a_split_subtree():
    # 0 -> 2, 1 -> 3, 2 -> 3: node 2's subtree {0, 2} is not contiguous (1 sits between).
    assert not is_postordered(np.array([2, 3, 3, -1]))
    assert is_postordered(np.array([1, 3, 3, -1]))


# --------------------------------------------------------------------------------------------------
# Bad input, and the back-end plug-in
# --------------------------------------------------------------------------------------------------


def test_one_triangle_graph_is_refused():
    graph = grid_graph(4, 4)
    with pytest.raises(ValueError, match="not symmetric"):
        symbolic_factor(sp.triu(graph).tocsr(), np.arange(16))
    with pytest.raises(ValueError, match="not symmetric"):
        symbolic_factor(sp.tril(graph).tocsr(), np.arange(16))


def test_wrong_permutation_length_is_refused():
    with pytest.raises(ValueError, match=r"expected \(16,\)"):
        symbolic_factor(grid_graph(4, 4), np.arange(15))


def test_symbolic_backend_reports_the_factor_metrics():
    backend = backends.create("symbolic")
    assert backend.numeric is False
    graph = grid_graph(8, 8)
    A = laplacian_plus_identity(graph)
    perm = orderings.create("amd").compute(graph).perm
    f = symbolic_factor(graph, perm)
    case = MatrixCase("grid", A)
    assert backend.run(case, perm, Ordering(perm), f) == f.metrics()
    assert backend.run(case, perm, Ordering(perm), None) == f.metrics()  # computes it when not given


# --------------------------------------------------------------------------------------------------
# Exact agreement with CHOLMOD (simplicial factor of the pre-permuted matrix, natural ordering)
# --------------------------------------------------------------------------------------------------

ALL_ORDERINGS = ["natural", "rcm", "amd", "metis", "cholmod-amd", "cholmod-metis", "cholmod-nesdis"]


def cholmod_simplicial_nnz(A: sp.spmatrix, perm: np.ndarray) -> int:
    cholmod = pytest.importorskip("sksparse.cholmod")
    A_perm = sp.csc_matrix(A)[perm][:, perm].tocsc()
    factor = cholmod.analyze(A_perm, mode="simplicial", ordering_method="natural")
    factor.cholesky_inplace(A_perm)
    return int(factor.L().nnz)


def check_against_cholmod(A: sp.spmatrix, names=ALL_ORDERINGS):
    graph = symmetric_graph(A)
    for name in names:
        perm = orderings.create(name).compute(graph).perm
        assert symbolic_factor(graph, perm).nnz_L == cholmod_simplicial_nnz(A, perm), name


@pytest.mark.cholmod
def test_grid_nnz_matches_cholmod():
    check_against_cholmod(laplacian_plus_identity(grid_graph(30, 40)))


@pytest.mark.cholmod
def test_disconnected_nnz_matches_cholmod():
    check_against_cholmod(laplacian_plus_identity(disconnected_graph()))


@pytest.mark.cholmod
@pytest.mark.parametrize("name", ["bcsstk14", "nos3", "1138_bus", "bcsstk13"])
def test_suitesparse_nnz_matches_cholmod(name):
    A = scipy.io.mmread(needs_shared("suitesparse", f"{name}.mtx.gz")).tocsr()
    check_against_cholmod(A)


def mesh_laplacian(path: Path) -> sp.csr_matrix:
    """Graph Laplacian + I of a triangle mesh's edges."""
    trimesh = pytest.importorskip("trimesh")
    mesh = trimesh.load(path, process=False)
    faces = np.asarray(mesh.faces)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = len(mesh.vertices)
    W = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return laplacian_plus_identity(symmetric_graph(W + W.T))


@pytest.mark.cholmod
def test_mesh_nnz_matches_cholmod():
    check_against_cholmod(mesh_laplacian(needs_shared("meshes", "homer.obj")))
    # natural and rcm leave ~1e6-3e6 entries in L on this mesh: the fill-reducing ones suffice
    check_against_cholmod(mesh_laplacian(needs_shared("meshes", "decimated-max.obj")),
                          ["amd", "metis", "cholmod-metis", "cholmod-nesdis"])
