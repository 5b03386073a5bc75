"""The ``cholmod`` back-end: SuiteSparse CHOLMOD through scikit-sparse 0.4.16, given a permutation.

scikit-sparse 0.4 cannot hand CHOLMOD a user permutation, so the matrix is permuted here and
analysed with ``ordering_method="natural"``. CHOLMOD does not postorder a natural ordering, so
the permutation is first composed with its elimination-tree postorder (same fill; supernodes
become contiguous; without it a METIS-ordered 1M grid factorizes about 2x slower; docs/architecture.md, "Back-ends").
Only the lower triangle of the permuted matrix is built: scikit-sparse passes symmetric input to
CHOLMOD with ``stype = -1`` (lower triangle used).
"""

from __future__ import annotations

import functools
import importlib.metadata

import numba
import numpy as np
import scipy.sparse as sp

from ...core.libversions import cholmod_version, suitesparse_library_version
from ...core.provenance import blas_in_use
from . import NotSPD, NumericBackend, Stopwatch, register
from . import symbolic
from .symbolic import postordered_perm


@numba.njit(cache=True)
def permuted_lower_csc(indptr, indices, perm):
    """Lower triangle of ``A[perm][:, perm]`` as CSC (sorted rows), and where each value comes from.

    ``indptr/indices``: CSR of the symmetric matrix A (both triangles). Returns (col_ptr,
    row_idx, source): the entries of column j are rows i >= j, ascending, and ``source[q]`` is
    the position in A's data array of entry q, so a matrix with new values on the same pattern is
    permuted by one gather, ``data[source]``. The same arrays are the upper triangle as CSR.
    """
    n = perm.shape[0]
    inv = np.empty(n, dtype=indices.dtype)
    for k in range(n):
        inv[perm[k]] = k
    col_ptr = np.zeros(n + 1, dtype=indptr.dtype)
    for k in range(n):  # column k of the lower triangle = neighbours of k numbered >= k
        old = perm[k]
        count = 0
        for p in range(indptr[old], indptr[old + 1]):
            if inv[indices[p]] >= k:
                count += 1
        col_ptr[k + 1] = col_ptr[k] + count
    row_idx = np.empty(col_ptr[n], dtype=indices.dtype)
    source = np.empty(col_ptr[n], dtype=np.int64)
    fill = col_ptr[:n].copy()
    # Visiting rows k in increasing order appends each column's rows already sorted.
    for k in range(n):
        old = perm[k]
        for p in range(indptr[old], indptr[old + 1]):
            i = inv[indices[p]]
            if i <= k:  # entry (k, i) of the permuted matrix lies in column i of the lower triangle
                q = fill[i]
                row_idx[q] = k
                source[q] = p
                fill[i] = q + 1
    return col_ptr, row_idx, source


@functools.lru_cache(maxsize=None)
def warm_up(indptr_dtype=np.dtype(np.int32), indices_dtype=np.dtype(np.int32)) -> None:
    """Compile (or load from numba's cache) every kernel ``analyze`` times, before its timer starts."""
    symbolic.warm_up(indptr_dtype, indices_dtype)
    permuted_lower_csc(np.array([0, 1, 2], dtype=indptr_dtype), np.array([1, 0], dtype=indices_dtype),
                       np.array([1, 0], dtype=np.int64))


def system_blas_threads() -> list[dict]:
    """Thread counts of the BLAS libraries loaded from the system, the ones CHOLMOD calls.

    NumPy and SciPy wheels bundle their own OpenBLAS (under site-packages), which CHOLMOD never
    uses; they are left out.
    """
    from threadpoolctl import threadpool_info

    return [{"library": pool.get("filepath"), "api": pool.get("internal_api"), "threads": pool.get("num_threads")}
            for pool in threadpool_info()
            if pool.get("user_api") == "blas" and "site-packages" not in str(pool.get("filepath"))]


@register
class Cholmod(NumericBackend):
    name = "cholmod"
    version = "1"
    description = "SuiteSparse CHOLMOD via scikit-sparse (pre-permuted, postordered, natural analysis)"
    requires = ("sksparse",)
    params = {"k": 1, "mode": "supernodal"}
    choices = {"mode": ("supernodal", "simplicial")}
    # The native ordering is CHOLMOD's default strategy (AMD, and METIS too when AMD's fill is
    # high; the best is kept), chosen inside cholmod_analyze: its time is part of t_analyze_s.
    supports_native = True

    def __init__(self, target=None, **params):
        super().__init__(target, **params)
        self._factor = None
        self._perm = None  # the user permutation composed with its etree postorder (new -> old)
        self._pattern = None  # (col_ptr, row_idx, source) of the permuted lower triangle
        self._A_indptr = self._A_indices = None  # A's pattern at analysis: refactorizations must keep it

    @property
    def factored_perm(self) -> np.ndarray | None:
        """The permutation CHOLMOD factorizes (new -> old): the user's, composed with its postorder."""
        return self._perm

    @classmethod
    def check(cls):
        # Importing here also binds CHOLMOD to the system BLAS before any ordering library loads.
        try:
            import sksparse.cholmod  # noqa: F401
        except (ImportError, OSError) as err:
            return False, f"scikit-sparse's CHOLMOD does not load: {err}"
        return True, ""

    def library_versions(self):
        return {"scikit-sparse": importlib.metadata.version("scikit-sparse"), "cholmod": cholmod_version()}

    def _lower(self, data: np.ndarray) -> sp.csc_matrix:
        col_ptr, row_idx, source = self._pattern
        n = col_ptr.shape[0] - 1
        M = sp.csc_matrix((data[source], row_idx, col_ptr), shape=(n, n))
        M.has_sorted_indices = True  # built sorted; spares scikit-sparse an O(nnz) check
        return M

    def analyze(self, A, perm, ordering) -> float:
        from sksparse import cholmod

        A = sp.csr_matrix(A)
        warm_up(A.indptr.dtype, A.indices.dtype)
        # t_analyze_s covers the postorder, building the permuted lower triangle and CHOLMOD's
        # analysis: what cholmod_analyze_p would do itself with a given permutation.
        native = perm is None
        with Stopwatch() as watch:
            self._perm = np.arange(A.shape[0], dtype=np.int64) if native else postordered_perm(A, perm)
            col_ptr, row_idx, source = permuted_lower_csc(A.indptr, A.indices, self._perm)
            # CHOLMOD's int or long interface: both index arrays need the same type.
            use_long = bool(col_ptr[-1] > np.iinfo(np.int32).max)
            itype = np.int64 if use_long else np.int32
            self._pattern = (col_ptr.astype(itype, copy=False), row_idx.astype(itype, copy=False), source)
            self._factor = cholmod.analyze(self._lower(A.data), mode=self.p["mode"],
                                           ordering_method="default" if native else "natural", use_long=use_long)
        self._A_indptr, self._A_indices = A.indptr, A.indices
        return watch.wall

    def factorize(self, A) -> float:
        from sksparse import cholmod

        A = sp.csr_matrix(A)
        if not (np.array_equal(A.indptr, self._A_indptr) and np.array_equal(A.indices, self._A_indices)):
            raise ValueError("cholmod: factorize() needs a matrix with the pattern given to analyze()")
        # t_factor_s includes permuting the values (one gather): CHOLMOD permutes inside its own
        # factorization when it holds the permutation.
        try:
            with Stopwatch() as watch:
                self._factor.cholesky_inplace(self._lower(A.data))
        except cholmod.CholmodNotPositiveDefiniteError as err:
            raise NotSPD(f"CHOLMOD: matrix is not positive definite (factorization failed at column "
                         f"{getattr(err, 'column', '?')} of the permuted matrix, 0-based)") from err
        return watch.wall

    def solve(self, b):
        with Stopwatch() as watch:
            x_perm = self._factor.solve_A(b[self._perm])
            x = np.empty_like(x_perm)
            x[self._perm] = x_perm
        return x, watch.wall

    def factor_stats(self) -> dict:
        # CHOLMOD's stored entries of L (for a supernodal factor, the zeros of relaxed amalgamation
        # included). scikit-sparse 0.4.16 exposes them only through L(), a copy: done after timing.
        L = self._factor.L()
        return {"backend_nnz_L": int(L.indptr[-1]), "extras": {"blas_threads": system_blas_threads()}}

    def native_ordering(self) -> dict:
        return {"perm": np.asarray(self._factor.P(), dtype=np.int64), "t_order_s": float("nan")}

    def release(self) -> None:
        self._factor = None
        self._pattern = None
        self._A_indptr = self._A_indices = None

    def provenance(self) -> dict:
        return {
            "cholmod": cholmod_version(),
            "suitesparse": suitesparse_library_version("suitesparseconfig"),
            "scikit-sparse": importlib.metadata.version("scikit-sparse"),
            # CHOLMOD's supernodal factorization runs in the BLAS it was linked with, on the
            # BLAS's default thread count: record which library was really loaded, and its threads.
            "blas": blas_in_use(),
        }
