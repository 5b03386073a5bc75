"""CAMD: SuiteSparse's constrained approximate minimum degree, called directly in libcamd.

Like plain AMD (``permbench.orderings.amd``) no maintained Python binding exposes it, so this calls
``camd_l_order`` from the system's libcamd with ctypes. CHOLMOD's nesdis uses CAMD the same way to
order a nested-dissection tree: every vertex gets its tree node's position as its constraint set,
so sets are eliminated in that order while minimum degree still sees the whole graph (vertices
next to a separator are eliminated late, and separators are ordered on their Schur complement).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np
import scipy.sparse as sp

_CAMD_CONTROL, _CAMD_INFO = 5, 20
_CAMD_DENSE, _CAMD_AGGRESSIVE = 0, 1
_STATUS = {-1: "out of memory", -2: "invalid matrix", -3: "integer overflow"}


@functools.lru_cache(maxsize=1)
def _libcamd():
    name = ctypes.util.find_library("camd") or "libcamd.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as err:
        raise OSError(f"SuiteSparse CAMD library not found ({name}): install libsuitesparse-dev") from err
    fn = lib.camd_l_order
    i64p = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
    f64p = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
    fn.argtypes = [ctypes.c_int64, i64p, i64p, i64p, f64p, f64p, i64p]
    fn.restype = ctypes.c_int64
    return lib


def camd_available() -> tuple[bool, str]:
    try:
        _libcamd()
    except OSError as err:
        return False, str(err)
    return True, ""


def camd_order(graph: sp.csr_matrix, constraint: np.ndarray, dense: float = 10.0,
               aggressive: bool = True) -> np.ndarray:
    """CAMD permutation (new -> old) of a symmetric pattern given as CSR (diagonal ignored).

    ``constraint[i]`` in 0..n-1 is the set of vertex i: all of set 0 is ordered first, then set 1,
    and so on; inside a set, by approximate minimum degree.
    """
    n = graph.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    constraint = np.ascontiguousarray(constraint, dtype=np.int64)
    if constraint.shape != (n,) or (n and (constraint.min() < 0 or constraint.max() >= n)):
        raise ValueError(f"camd_order: constraint must have shape ({n},) with values in 0..{n - 1}")
    indptr = np.ascontiguousarray(graph.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(graph.indices, dtype=np.int64)
    perm = np.empty(n, dtype=np.int64)
    control = np.zeros(_CAMD_CONTROL, dtype=np.float64)
    control[_CAMD_DENSE] = dense
    control[_CAMD_AGGRESSIVE] = 1.0 if aggressive else 0.0
    info = np.zeros(_CAMD_INFO, dtype=np.float64)
    status = _libcamd().camd_l_order(n, indptr, indices, perm, control, info, constraint)
    if status < 0:
        raise RuntimeError(f"camd_l_order failed: {_STATUS.get(int(status), status)}")
    return perm
