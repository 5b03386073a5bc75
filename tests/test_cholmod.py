"""The cholmod back-end: residuals, repeated factorization, not-SPD reporting, the postorder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

pytest.importorskip("sksparse.cholmod")
pytestmark = pytest.mark.cholmod

from permbench import orderings  # noqa: E402
from permbench.harness import backends  # noqa: E402
from permbench.harness.backends import NotSPD, refactor_values  # noqa: E402
from permbench.harness.backends.cholmod import permuted_lower_csc  # noqa: E402
from permbench.harness.backends.symbolic import is_postordered, symbolic_factor  # noqa: E402
from permbench.core.case import MatrixCase, Ordering, prepare_matrix, symmetric_graph  # noqa: E402


def shared_data() -> Path:
    env = os.environ.get("PERMBENCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def grid_laplacian(rows: int, cols: int) -> sp.csr_matrix:
    """Graph Laplacian + I of a triangulated grid (7-point stencil): SPD."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :]), (idx[:-1, :-1], idx[1:, 1:])]
    r = np.concatenate([a.ravel() for a, _ in pairs])
    c = np.concatenate([b.ravel() for _, b in pairs])
    W = sp.coo_matrix((np.ones(r.size), (r, c)), shape=(rows * cols,) * 2).tocsr()
    W = W + W.T
    A = (sp.diags(np.asarray(W.sum(axis=1)).ravel() + 1.0) - W).tocsr()
    return prepare_matrix(A, "grid")[0]


def run(A, ordering="amd", spec="cholmod"):
    graph = symmetric_graph(A)
    perm = orderings.create(ordering).compute(graph).perm
    backend = backends.create(spec)
    return backend, perm, backend.run(MatrixCase("test", A), perm, Ordering(perm), symbolic_factor(graph, perm))


@pytest.mark.parametrize("mode", ["supernodal", "simplicial"])
@pytest.mark.parametrize("ordering", ["natural", "amd", "metis", "cholmod-nesdis"])
def test_residual_on_grid(mode, ordering):
    A = grid_laplacian(25, 30)
    _, perm, out = run(A, ordering, f"cholmod[mode={mode}]")
    assert out["residual"] <= 1e-10
    assert out["k"] == 1 and out["t_analyze_s"] > 0 and out["t_factor_s"] > 0 and out["t_solve_s"] > 0


@pytest.mark.parametrize("name", ["bcsstk14", "nos3"])
def test_residual_on_suitesparse(name):
    path = shared_data() / "suitesparse" / f"{name}.mtx.gz"
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    A = prepare_matrix(scipy.io.mmread(path), name)[0]
    for mode in ("supernodal", "simplicial"):
        _, _, out = run(A, "metis", f"cholmod[mode={mode}]")
        assert out["residual"] <= 1e-10, mode


def test_three_factorizations_report_their_times():
    _, _, out = run(grid_laplacian(20, 20), "amd", "cholmod[k=3]")
    assert out["k"] == 3
    assert np.isfinite(out["t_refactor_median_s"]) and out["t_refactor_median_s"] > 0
    assert out["t_factor_sum_s"] > out["t_factor_s"] and out["t_solve_sum_s"] > out["t_solve_s"]
    assert out["residual"] <= 1e-10


def test_refactorization_uses_the_new_values():
    A = grid_laplacian(15, 15)
    graph = symmetric_graph(A)
    perm = orderings.create("metis").compute(graph).perm
    backend = backends.create("cholmod")
    backend.analyze(A, perm, Ordering(perm))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    for i in (0, 500, 2):  # refactor_values(A, 500) scales the diagonal by 1.5: a different solution
        Ai = refactor_values(A, i)
        backend.factorize(Ai)
        x, _ = backend.solve(b)
        assert np.linalg.norm(Ai @ x - b) / np.linalg.norm(b) <= 1e-10, i
    backend.release()


def test_factorize_refuses_another_pattern():
    A = grid_laplacian(6, 6)
    perm = np.arange(36)
    backend = backends.create("cholmod")
    backend.analyze(A, perm, Ordering(perm))
    B = (A + sp.csr_matrix(([0.5, 0.5], ([0, 35], [35, 0])), shape=A.shape)).tocsr()
    with pytest.raises(ValueError, match="pattern"):
        backend.factorize(B)


@pytest.mark.parametrize("mode", ["supernodal", "simplicial"])
def test_indefinite_matrix_raises_not_spd(mode):
    n = 40
    T = sp.diags([np.full(n - 1, -1.0), np.full(n, 2.0), np.full(n - 1, -1.0)], [-1, 0, 1])
    A = prepare_matrix(T - 1.0 * sp.identity(n), "indefinite")[0]  # eigenvalues 2-2cos(θ)-1 < 0 for small θ
    with pytest.raises(NotSPD, match="not positive definite"):
        run(A, "amd", f"cholmod[mode={mode}]")


@pytest.mark.parametrize("ordering", ["natural", "rcm", "amd", "metis"])
def test_postorder_composition(ordering):
    A = grid_laplacian(30, 20)
    graph = symmetric_graph(A)
    backend, perm, out = run(A, ordering, "cholmod[mode=simplicial]")
    backend.analyze(A, perm, Ordering(perm))  # run() released it; keep the composed perm this time
    composed = backend.factored_perm
    before, after = symbolic_factor(graph, perm), symbolic_factor(graph, composed)
    assert is_postordered(after.parent)  # every subtree is a contiguous range of columns
    assert after.nnz_L == before.nnz_L
    # a simplicial factor stores exactly the symbolic pattern
    assert out["backend_nnz_L"] == before.nnz_L
    backend.release()


def test_supernodal_factor_stores_at_least_the_exact_pattern():
    A = grid_laplacian(40, 40)
    graph = symmetric_graph(A)
    _, perm, out = run(A, "metis", "cholmod")
    assert out["backend_nnz_L"] >= symbolic_factor(graph, perm).nnz_L


def test_permuted_lower_triangle_and_value_map():
    A = grid_laplacian(9, 11)
    A.data = np.random.default_rng(1).uniform(1, 2, A.nnz)
    A = ((A + A.T) / 2).tocsr()
    A.sort_indices()
    perm = np.random.default_rng(2).permutation(A.shape[0])
    col_ptr, row_idx, source = permuted_lower_csc(A.indptr, A.indices, perm)
    got = sp.csc_matrix((A.data[source], row_idx, col_ptr), shape=A.shape)
    expected = sp.tril(A[perm][:, perm]).tocsc()
    expected.sort_indices()
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)  # also: rows come out sorted
    np.testing.assert_array_equal(got.data, expected.data)


def test_int64_indices_factorize_the_same():
    A = grid_laplacian(12, 12)
    wide = A.copy()
    wide.indptr = wide.indptr.astype(np.int64)
    wide.indices = wide.indices.astype(np.int64)
    _, _, narrow_out = run(A, "amd", "cholmod[mode=simplicial]")
    _, _, wide_out = run(wide, "amd", "cholmod[mode=simplicial]")
    assert wide_out["backend_nnz_L"] == narrow_out["backend_nnz_L"]
    assert wide_out["residual"] <= 1e-10


def test_provenance_names_cholmod_and_the_loaded_blas():
    backend, _, out = run(grid_laplacian(10, 10))
    threads = out["extras"]["blas_threads"]
    assert threads and all(t["threads"] >= 1 and "site-packages" not in t["library"] for t in threads)
    prov = backend.provenance()
    assert prov["cholmod"].count(".") == 2  # e.g. 3.0.14, read from the loaded library file
    assert any("blas" in path for path in prov["blas"]["loaded"])
    assert set(backend.library_versions()) == {"scikit-sparse", "cholmod"}


def test_native_ordering_is_cholmods_default_and_reports_its_perm():
    from permbench.harness.backends import create
    from permbench.core.case import MatrixCase, validate_perm
    from permbench.harness.backends.symbolic import symbolic_factor
    from permbench.core.case import symmetric_graph
    from conftest import grid_laplacian

    A = grid_laplacian(30)
    backend = create("cholmod")
    out = backend.run(MatrixCase("grid", A), None, None, None)
    perm = validate_perm(out["perm"], A.shape[0])
    assert out["residual"] < 1e-10
    assert out["t_order_s"] != out["t_order_s"]  # NaN: the ordering is inside t_analyze_s
    natural = symbolic_factor(symmetric_graph(A), np.arange(A.shape[0])).nnz_L
    assert symbolic_factor(symmetric_graph(A), perm).nnz_L < natural
