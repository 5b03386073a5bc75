"""The ``pardiso`` back-end: Intel MKL PARDISO (real SPD, ``mtype = 2``) through ctypes on ``libmkl_rt``.

MKL comes from PyPI (the ``mkl`` wheel, ``pip install 'permbench[mkl]'``), which installs
``libmkl_rt.so.3`` into ``<venv>/lib``; without it the back-end is unavailable, with the reason.

Why ctypes and not pypardiso: pypardiso's ``PyPardisoSolver`` runs phases 11/22/33 inside its
own ``factorize``/``solve`` (it re-factorizes whenever the matrix's hash changes), hands PARDISO a
zero ``perm`` array, and always converts input to its own CSR layout: the phases cannot be timed
separately nor a user permutation given without reaching into its private attributes. The
PARDISO interface itself is one C function; calling it directly keeps every ``iparm`` visible.

What is passed (MKL's LP64 interface, 32-bit integers; larger matrices are refused by name):

* the upper triangle of A as zero-based CSR with sorted columns (``iparm[34] = 1``);
* a user permutation with ``iparm[4] = 1``. PARDISO takes it new -> old, like every ordering here.
  Measured on a 200x200 5-point grid with a METIS permutation: ``iparm[17]`` = 1.02 M for ``perm``
  and 16.9 M for its inverse, against 0.946 M / 16.8 M exact nnz(L) (``symbolic_factor``);
  ``tests/test_pardiso.py`` checks it;
* the ``native`` ordering: PARDISO orders the matrix itself, ``iparm[1]`` from the back-end's
  ``reorder`` param (``metis`` = 2, MKL's default; ``amd`` = 0, minimum degree; ``nd-parallel``
  = 3, its OpenMP nested dissection), and returns its permutation (``iparm[4] = 2``, also new ->
  old). Its reordering time is the one PARDISO prints in its phase-11 summary (``msglvl = 1``,
  read from file descriptor 1): ``t_order_s``; the rest of phase 11 is ``t_analyze_s``.

Phases 11 (analysis), 22 (numerical factorization, again for every refactorization with new
values on the same pattern) and 33 (solve) are timed separately with ``perf_counter``, around the
PARDISO call only: extracting the upper triangle (an input format a PARDISO user already has) is
outside the timers. Phase -1 frees the factor.

``backend_nnz_L`` is ``iparm[17]``, PARDISO's "number of non-zeros in L+U" (its phase-11 summary
prints the three counts). For mtype 2 its "U" is always 1 entry and its L is stored as dense
supernode panels, so it counts the upper part of each supernode's diagonal block and the zeros of
supernode amalgamation: a dense 100x100 matrix reports 8401 (panels of 80 columns: 100*80 + 20*20
+ 1; exact nnz(L) is 5050), an identity of size 50 reports 51. It is therefore larger than the
exact nnz(L) stored next to it (8% on the METIS-ordered grid above).

Two process-wide hazards, both measured:

* The first call into ``libmkl_rt`` loads MKL's layer libraries with ``RTLD_GLOBAL``; a library
  loaded after that binds ``dgemm_``/``dpotrf_``/``GOMP_parallel`` to MKL and libiomp5 (LD_DEBUG
  showed libcholmod bound to ``libmkl_intel_lp64.so.3`` instead of the system OpenBLAS). So
  :func:`mkl` imports CHOLMOD (when installed) before MKL's first call.
* homapy (the ``homa`` ordering) bundles an older MKL and its own Intel OpenMP
  (``homapy.libs/libiomp5.so``). Two copies of libiomp5 in one process abort it ("OMP: Error #15")
  as soon as the second initializes. :func:`mkl` therefore loads this MKL's libiomp5 at once (the
  back-ends are checked before the ordering loads), so that homapy's extension reuses it by
  soname; but ``orderings/homa.py``'s ``_openmp()`` still opens homapy's copy by path, so a
  ``homa`` ordering and ``pardiso`` in one child crash it, until that function loads
  ``libiomp5.so`` by soname (measured: then homa -> pardiso -> cholmod runs, residuals 1e-16).
  The GNU threading layer avoids the duplicate but silently ran PARDISO on one thread (its
  ``libmkl_gnu_thread`` needs libgomp's symbols global; MKL fell back to ``libmkl_sequential``).

The threading layer is pinned to Intel OpenMP (libiomp5 from the ``intel-openmp`` wheel) and the
thread count is set explicitly (``threads``; 0 takes ``MKL_NUM_THREADS``/``OMP_NUM_THREADS``, which
the harness sets per cell) and recorded with the count PARDISO reports using.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib.metadata
import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...core.native_io import c_stdout_captured
from . import NotSPD, NumericBackend, Stopwatch, register

INSTALL_HINT = "pip install 'permbench[mkl]'"
#: ``reorder=`` -> ``iparm[1]`` (the native ordering only).
REORDER = {"metis": 2, "amd": 0, "nd-parallel": 3}
MTYPE_REAL_SPD = 2
MKL_INTERFACE_LP64 = 0
MKL_THREADING_INTEL = 0
INT32_MAX = np.iinfo(np.int32).max
#: PARDISO's error codes (MKL reference, "pardiso"), for messages.
ERRORS = {
    -1: "input inconsistent", -2: "not enough memory", -3: "reordering problem",
    -4: "zero pivot, numerical factorization or iterative refinement problem", -5: "unclassified (internal) error",
    -6: "reordering failed", -7: "diagonal matrix is singular", -8: "32-bit integer overflow problem",
    -9: "not enough memory for OOC", -10: "error opening OOC files", -11: "read/write error with OOC files",
    -12: "pardiso_64 called from 32-bit library", -13: "interrupted by the mkl_progress function",
}
#: Phase-11 summary lines (msglvl = 1) -> extras keys, seconds.
PHASE11_TIMES = {
    "t_pardiso_fulladj_s": "symmetric matrix portrait (fulladj)",
    "t_pardiso_reorder_s": "reordering of the initial matrix (reorder)",
    "t_pardiso_symbfct_s": "symbolic factorization (symbfct)",
    "t_pardiso_parlist_s": "data preparations for factorization (parlist)",
    "t_pardiso_malloc_s": "allocation of internal data structures (malloc)",
    "t_pardiso_phase1_total_s": "Total time spent",
}


class PardisoError(RuntimeError):
    """PARDISO returned a non-zero error code."""


# --------------------------------------------------------------------------------------------------
# Loading MKL
# --------------------------------------------------------------------------------------------------


def find_mkl_rt() -> str | None:
    """Path of ``libmkl_rt`` from the ``mkl`` wheel (it installs into ``<prefix>/lib``), else the system's."""
    try:
        files = importlib.metadata.distribution("mkl").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if re.fullmatch(r"libmkl_rt\.so(\.\d+)*", Path(str(f)).name):
            path = Path(f.locate()).resolve()
            if path.exists():
                return str(path)
    return ctypes.util.find_library("mkl_rt")


@functools.lru_cache(maxsize=1)
def mkl() -> ctypes.CDLL:
    """``libmkl_rt``, loaded privately and initialized (LP64, Intel OpenMP); OSError if absent."""
    path = find_mkl_rt()
    if path is None:
        raise OSError(f"MKL not installed ({INSTALL_HINT})")
    # MKL's first call puts its BLAS into the global namespace: CHOLMOD must bind to its own first.
    if importlib.util.find_spec("sksparse") is not None:
        with contextlib.suppress(ImportError, OSError):
            import sksparse.cholmod  # noqa: F401
    lib = ctypes.CDLL(path, mode=os.RTLD_LOCAL)
    lib.pardiso.restype = None
    lib.pardiso.argtypes = [ctypes.c_void_p] * 16
    lib.MKL_Get_Max_Threads.restype = ctypes.c_int
    lib.MKL_Set_Interface_Layer(MKL_INTERFACE_LP64)
    lib.MKL_Set_Threading_Layer(MKL_THREADING_INTEL)
    lib.MKL_Get_Max_Threads()  # loads the threading layer and libiomp5 now, not at the first PARDISO call
    lib._permbench_path = path
    return lib


def mkl_version() -> str:
    buf = ctypes.create_string_buffer(256)
    mkl().MKL_Get_Version_String(buf, len(buf))
    return buf.value.decode(errors="replace").strip()


def requested_threads(threads: int) -> int:
    """The thread count to set: ``threads`` if > 0, else the harness's per-cell environment, else MKL's."""
    if threads > 0:
        return threads
    for var in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        with contextlib.suppress(KeyError, ValueError):
            return max(1, int(os.environ[var]))
    return int(mkl().MKL_Get_Max_Threads())


# --------------------------------------------------------------------------------------------------
# Input and PARDISO's log
# --------------------------------------------------------------------------------------------------


def upper_csr(A: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper triangle of a symmetric CSR matrix, as PARDISO's int32 (ia, ja) and ``source``.

    ``source`` are the positions of the upper entries in ``A.data``, so new values on the same
    pattern become PARDISO's ``a`` by one gather. Needs sorted columns and every diagonal entry
    stored (PARDISO requires the diagonal for symmetric types; an SPD matrix has it positive).
    """
    n = A.shape[0]
    if n > INT32_MAX or A.nnz > INT32_MAX:
        raise ValueError(f"pardiso: n={n}, nnz={A.nnz} exceed MKL's LP64 interface (32-bit indices)")
    if not A.has_sorted_indices:
        A = A.sorted_indices()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(A.indptr))
    source = np.flatnonzero(A.indices >= rows)
    counts = np.bincount(rows[source], minlength=n)
    ia = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=ia[1:])
    ja = A.indices[source].astype(np.int32)
    first = np.full(n, -1, dtype=np.int64)
    nonempty = counts > 0
    first[nonempty] = ja[ia[:-1][nonempty]]  # sorted columns: the diagonal comes first in its row
    missing = np.flatnonzero(first != np.arange(n))
    if missing.size:
        raise NotSPD(f"pardiso: row {int(missing[0])} (0-based) has no diagonal entry "
                     "(a zero diagonal: not positive definite)")
    return ia, ja, source


def parse_phase11_log(text: str) -> dict:
    """PARDISO's phase-11 summary: its own stage times (s), thread count and L/U counts."""
    out = {}
    for key, label in PHASE11_TIMES.items():
        match = re.search(re.escape(label) + r"\s*:\s*([0-9.eE+-]+) s", text)
        if match:
            out[key] = float(match.group(1))
    for key, pattern in (("pardiso_threads", r"running on (\d+) OpenMP"),
                         ("pardiso_supernodes", r"number of supernodes:\s+(\d+)"),
                         ("pardiso_nnz_L", r"number of non-zeros in L:\s+(\d+)"),
                         ("pardiso_nnz_U", r"number of non-zeros in U:\s+(\d+)")):
        match = re.search(pattern, text)
        if match:
            out[key] = int(match.group(1))
    return out


# --------------------------------------------------------------------------------------------------
# The registry entry
# --------------------------------------------------------------------------------------------------


def _ptr(array: np.ndarray | None) -> ctypes.c_void_p | None:
    return None if array is None else array.ctypes.data_as(ctypes.c_void_p)


@register
class Pardiso(NumericBackend):
    name = "pardiso"
    version = "1"
    description = "Intel MKL PARDISO via ctypes (mtype 2, upper CSR, user perm iparm[4]=1)"
    params = {
        "k": 1,
        # PARDISO's own ordering for the `native` ordering (iparm[1]); a user permutation ignores it.
        "reorder": "metis",
        # MKL threads; 0: MKL_NUM_THREADS / OMP_NUM_THREADS (set per cell by the harness).
        "threads": 0,
    }
    choices = {"reorder": tuple(REORDER)}
    supports_native = True

    def __init__(self, target=None, **params):
        super().__init__(target, **params)
        self._pt = None
        self._iparm = None
        self._n = 0
        self._perm = None
        self._pattern = None  # (ia, ja, source)
        self._A_indptr = self._A_indices = None
        self._a = None
        self._extras = {}

    @classmethod
    def available(cls):
        return cls.check()  # names the extra to install, not a Python module

    @classmethod
    def check(cls):
        # Initializing here loads this MKL before any ordering's library (homapy bundles another MKL).
        try:
            mkl()
        except (OSError, AttributeError) as err:
            return False, str(err) if "not installed" in str(err) else f"MKL does not load: {err}"
        return True, ""

    def library_versions(self):
        return {"mkl": mkl_version()}  # MKL_Get_Version_String of the libmkl_rt loaded

    def _call(self, phase: int, msglvl: int = 0, b: np.ndarray | None = None, x: np.ndarray | None = None) -> float:
        """One PARDISO call; returns its wall time. Raises NotSPD / MemoryError / PardisoError."""
        error = ctypes.c_int(0)
        one = ctypes.c_int(1)
        args = [_ptr(self._pt), ctypes.byref(one), ctypes.byref(one), ctypes.byref(ctypes.c_int(MTYPE_REAL_SPD)),
                ctypes.byref(ctypes.c_int(phase)), ctypes.byref(ctypes.c_int(self._n)), _ptr(self._a),
                _ptr(self._pattern[0]), _ptr(self._pattern[1]), _ptr(self._perm), ctypes.byref(one),
                _ptr(self._iparm), ctypes.byref(ctypes.c_int(msglvl)), _ptr(b), _ptr(x), ctypes.byref(error)]
        with Stopwatch() as watch:
            mkl().pardiso(*args)
        t = watch.wall
        code = error.value
        if code == 0:
            return t
        what = f"PARDISO phase {phase}: error {code} ({ERRORS.get(code, 'unknown')})"
        if code in (-4, -7) and phase == 22:
            # iparm[29]: the equation (1-based) where the zero or negative pivot appeared.
            raise NotSPD(f"{what}: not positive definite, pivot at equation {int(self._iparm[29])} "
                         "of the permuted matrix (1-based)")
        if code == -2:
            raise MemoryError(what)
        raise PardisoError(what)

    def analyze(self, A, perm, ordering) -> float:
        native = perm is None
        if not native and self.p["reorder"] != self.params["reorder"]:
            raise ValueError(f"pardiso: reorder={self.p['reorder']} chooses PARDISO's own ordering and applies "
                             "only to the 'native' ordering; a user permutation goes in as iparm[4]=1")
        A = sp.csr_matrix(A)
        lib = mkl()
        threads = requested_threads(int(self.p["threads"]))
        lib.MKL_Set_Num_Threads(threads)
        self._n = A.shape[0]
        self._pattern = upper_csr(A)
        self._a = np.ascontiguousarray(A.data[self._pattern[2]], dtype=np.float64)
        self._A_indptr, self._A_indices = A.indptr, A.indices
        self._pt = np.zeros(64, dtype=np.int64)  # PARDISO's handle: 64 pointers, zeroed before phase 11
        iparm = np.zeros(64, dtype=np.int32)
        iparm[0] = 1  # every iparm below is given (others 0: MKL's documented defaults)
        iparm[1] = REORDER[self.p["reorder"]]
        iparm[4] = 2 if native else 1  # 2: return PARDISO's permutation in perm; 1: use ours
        iparm[17] = -1  # report nnz of the factor
        iparm[18] = -1  # report the factorization's Mflop count
        iparm[34] = 1  # zero-based ia/ja
        self._iparm = iparm
        self._perm = np.zeros(self._n, dtype=np.int32) if native else np.ascontiguousarray(perm, dtype=np.int32)
        with c_stdout_captured() as log:
            t_phase11 = self._call(11, msglvl=1)
        stats = parse_phase11_log(log[0])
        self._extras = {"native": native, "iparm1_reorder": int(iparm[1]), "mkl_threads_set": threads,
                        "mkl_max_threads": int(lib.MKL_Get_Max_Threads()), "t_phase11_s": t_phase11, **stats}
        self._t_order = float("nan")
        if native:
            # PARDISO's reordering is the ordering step (its own timer); the rest of phase 11 the analysis.
            self._t_order = stats.get("t_pardiso_reorder_s", float("nan"))
            if self._t_order == self._t_order:
                return max(0.0, t_phase11 - self._t_order)
        return t_phase11

    def factorize(self, A) -> float:
        A = sp.csr_matrix(A)
        if not (np.array_equal(A.indptr, self._A_indptr) and np.array_equal(A.indices, self._A_indices)):
            raise ValueError("pardiso: factorize() needs a matrix with the pattern given to analyze()")
        np.take(A.data, self._pattern[2], out=self._a)
        return self._call(22)

    def solve(self, b):
        b = np.ascontiguousarray(b, dtype=np.float64)
        x = np.zeros_like(b)
        t = self._call(33, b=b, x=x)
        return x, t

    def factor_stats(self) -> dict:
        iparm = self._iparm
        extras = dict(self._extras, iparm17_factor_nnz=int(iparm[17]), iparm18_mflops=int(iparm[18]),
                      iparm6_refinement_steps=int(iparm[6]), iparm14_peak_analysis_kb=int(iparm[14]),
                      iparm15_permanent_kb=int(iparm[15]), iparm16_factor_kb=int(iparm[16]))
        return {"backend_nnz_L": int(iparm[17]), "extras": extras}

    def native_ordering(self) -> dict:
        return {"perm": self._perm.astype(np.int64), "t_order_s": self._t_order}

    def release(self) -> None:
        if self._pt is not None and self._pattern is not None:
            with contextlib.suppress(Exception):
                self._call(-1)
        self._pt = self._iparm = self._perm = self._pattern = self._a = None
        self._A_indptr = self._A_indices = None

    def provenance(self) -> dict:
        lib = mkl()
        return {"mkl": mkl_version(), "mkl_wheel": importlib.metadata.version("mkl") if find_mkl_rt() else None,
                "libmkl_rt": lib._permbench_path, "threading_layer": "intel (libiomp5)", "interface": "lp64",
                "mkl_max_threads": int(lib.MKL_Get_Max_Threads())}
