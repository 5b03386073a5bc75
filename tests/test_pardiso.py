"""The pardiso back-end: availability, the permutation convention, residuals, refactorization, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from permbench import orderings
from permbench.harness import backends
from permbench.harness.backends import NotSPD, pardiso, refactor_values
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.core.case import MatrixCase, Ordering, inverse_perm, prepare_matrix, symmetric_graph

from conftest import grid_laplacian

needs_mkl = pytest.mark.skipif(not pardiso.Pardiso.available()[0], reason="MKL not installed (permbench[mkl])")


def run(A, perm, spec="pardiso"):
    backend = backends.create(spec)
    return backend.run(MatrixCase("test", A), perm, None if perm is None else Ordering(perm), None)


def order(A, name):
    return np.asarray(orderings.create(name).compute(symmetric_graph(A)).perm)


def exact_nnz_L(A, perm) -> int:
    return int(symbolic_factor(symmetric_graph(A), perm).nnz_L)


def test_unavailable_without_mkl_names_the_extra(monkeypatch):
    monkeypatch.setattr(pardiso, "find_mkl_rt", lambda: None)
    monkeypatch.setattr(pardiso, "mkl", pardiso.mkl.__wrapped__)  # bypass the cached library
    assert pardiso.Pardiso.available() == (False, "MKL not installed (pip install 'permbench[mkl]')")


def test_upper_csr_keeps_upper_entries_and_rejects_a_missing_diagonal():
    A = sp.csr_matrix(np.array([[4.0, 1, 0], [1, 5, 2], [0, 2, 6]]))
    ia, ja, source = pardiso.upper_csr(A)
    U = sp.csr_matrix((A.data[source], ja, ia), shape=A.shape)
    assert (U != sp.triu(A)).nnz == 0
    B = sp.csr_matrix(np.array([[4.0, 1, 0], [1, 0, 2], [0, 2, 6]]))
    B.eliminate_zeros()
    with pytest.raises(NotSPD, match="row 1"):
        pardiso.upper_csr(B)


def test_parse_phase11_log():
    text = ("Time spent in reordering of the initial matrix (reorder)         : 0.011913 s\n"
            "Total time spent                                                 : 0.018981 s\n"
            "Parallel Direct Factorization is running on 2 OpenMP\n"
            "             number of non-zeros in L:                227190\n")
    assert pardiso.parse_phase11_log(text) == {"t_pardiso_reorder_s": 0.011913, "t_pardiso_phase1_total_s": 0.018981,
                                               "pardiso_threads": 2, "pardiso_nnz_L": 227190}


@needs_mkl
def test_user_perm_is_new_to_old():
    """PARDISO's factor nnz follows our perm (new -> old), not its inverse."""
    A = grid_laplacian(60)
    perm = order(A, "metis")
    inv = inverse_perm(perm)
    nnz_perm = run(A, perm)["backend_nnz_L"]
    nnz_inv = run(A, inv)["backend_nnz_L"]
    exact_perm, exact_inv = exact_nnz_L(A, perm), exact_nnz_L(A, inv)
    assert exact_perm < exact_inv / 2  # the test can tell the two apart
    # iparm[17] counts L in dense supernode panels, plus 1 for "U": a little above the exact count.
    assert exact_perm <= nnz_perm <= 1.25 * exact_perm
    assert exact_inv <= nnz_inv <= 1.25 * exact_inv


@needs_mkl
def test_factor_nnz_is_L_plus_one():
    """iparm[17] is PARDISO's "non-zeros in L+U"; for mtype 2 its U is one entry."""
    n = 50
    out = run(sp.identity(n, format="csr") * 2.0, np.arange(n))
    assert out["backend_nnz_L"] == n + 1
    assert out["extras"]["pardiso_nnz_L"] == n and out["extras"]["pardiso_nnz_U"] == 1


@needs_mkl
@pytest.mark.parametrize("ordering", ["natural", "amd", "metis"])
def test_residual_and_refactorization(ordering):
    A = grid_laplacian(40)
    perm = order(A, ordering)
    out = run(A, perm, "pardiso[k=3]")
    assert out["residual"] <= 1e-10
    assert out["k"] == 3 and np.isfinite(out["t_refactor_median_s"]) and out["t_factor_sum_s"] >= out["t_factor_s"]
    assert out["backend_nnz_L"] >= exact_nnz_L(A, perm)
    assert not out["extras"]["native"] and "perm" not in out


@needs_mkl
def test_refactorization_uses_the_new_values():
    A = grid_laplacian(30)
    backend = backends.create("pardiso")
    backend.analyze(A, order(A, "amd"), None)
    try:
        backend.factorize(A)
        B = refactor_values(A, 500)  # diagonal x 1.5
        backend.factorize(B)
        b = np.ones(A.shape[0])
        x, t_solve = backend.solve(b)
        assert np.linalg.norm(B @ x - b) <= 1e-10 * np.linalg.norm(b)
        assert np.linalg.norm(A @ x - b) > 1e-3 * np.linalg.norm(b)
        assert t_solve > 0
        with pytest.raises(ValueError, match="pattern"):
            backend.factorize(sp.identity(A.shape[0], format="csr"))
    finally:
        backend.release()


@needs_mkl
@pytest.mark.parametrize("reorder", ["metis", "amd", "nd-parallel"])
def test_native_orderings(reorder):
    A = grid_laplacian(40)
    out = run(A, None, f"pardiso[reorder={reorder}]")
    perm = out["perm"]
    assert np.array_equal(np.sort(perm), np.arange(A.shape[0]))
    assert out["residual"] <= 1e-10
    assert out["extras"]["iparm1_reorder"] == pardiso.REORDER[reorder]
    assert out["t_order_s"] > 0 and out["t_analyze_s"] > 0
    # the returned permutation is new -> old too: the factor it reports matches its exact fill
    exact = exact_nnz_L(A, perm)
    assert exact <= out["backend_nnz_L"] <= 1.25 * exact


@needs_mkl
def test_reorder_applies_to_native_only():
    A = grid_laplacian(10)
    with pytest.raises(ValueError, match="native"):
        run(A, np.arange(A.shape[0]), "pardiso[reorder=amd]")


@needs_mkl
def test_threads_are_set_and_recorded():
    A = grid_laplacian(20)
    out = run(A, order(A, "amd"), "pardiso[threads=1]")
    assert out["extras"]["mkl_threads_set"] == 1
    assert out["extras"]["mkl_max_threads"] == 1 and out["extras"]["pardiso_threads"] == 1


@needs_mkl
def test_not_spd_is_reported():
    A = grid_laplacian(10).tolil()
    A[5, 5] = -10.0
    with pytest.raises(NotSPD, match="not positive definite"):
        run(A.tocsr(), np.arange(100))


@needs_mkl
def test_suitesparse_matrix(shared_data_dir):
    path = shared_data_dir / "suitesparse" / "bcsstk14.mtx.gz"
    if not path.exists():
        pytest.skip(f"{path} missing")
    A = prepare_matrix(scipy.io.mmread(path).tocsr(), "bcsstk14")[0]
    out = run(A, order(A, "amd"))
    assert out["residual"] <= 1e-8


@needs_mkl
def test_provenance_names_mkl():
    prov = backends.create("pardiso").provenance()
    assert "Math Kernel Library" in prov["mkl"] and prov["interface"] == "lp64"


HOMA_THEN_PARDISO = textwrap.dedent("""
    import json, numpy as np, scipy.sparse as sp
    from permbench import orderings
    from permbench.harness import backends
    from permbench.core.case import MatrixCase, symmetric_graph
    k = 60
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    A = (sp.kronsum(T, T) + sp.identity(k * k)).tocsr()
    pardiso, cholmod = backends.create("pardiso"), backends.create("cholmod")
    pardiso.available(); cholmod.available()  # the child's order: back-ends before the ordering
    result = orderings.create("homa").compute(symmetric_graph(A), threads=1)
    rows = [b.run(MatrixCase("g", A), result.perm, result, None)["residual"] for b in (pardiso, cholmod)]
    print(json.dumps(rows))
""")


@needs_mkl
def test_homa_then_pardiso_in_one_process():
    """homa's OpenMP runtime is MKL's (loaded by soname): a second copy would abort the process."""
    if not orderings.registry.get("homa").available()[0] or not backends.registry.get("cholmod").available()[0]:
        pytest.skip("needs homapy and scikit-sparse")
    proc = subprocess.run([sys.executable, "-c", HOMA_THEN_PARDISO], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(r <= 1e-10 for r in json.loads(proc.stdout.strip().splitlines()[-1]))


@needs_mkl
def test_cholmod_keeps_its_blas_after_mkl_loads(tmp_path):
    """MKL's first call makes its BLAS global; mkl() binds CHOLMOD to the system BLAS before that."""
    if not backends.registry.get("cholmod").available()[0]:
        pytest.skip("needs scikit-sparse")
    script = "from permbench.harness.backends import pardiso; pardiso.mkl(); import sksparse.cholmod"
    env = {"LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(tmp_path / "ld")}
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, **env}, timeout=120)
    log = "".join(p.read_text(errors="replace") for p in tmp_path.glob("ld*"))
    dgemm = [line for line in log.splitlines() if "libcholmod" in line.split(" to ")[0] and "`dgemm_'" in line]
    assert dgemm and not any("libmkl" in line for line in dgemm), dgemm
