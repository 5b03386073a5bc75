"""AMD: SuiteSparse's approximate minimum degree ordering, called directly in libamd.

No maintained Python binding exposes plain AMD (scikit-sparse only reaches it through CHOLMOD's
analysis, which adds a postorder and its own graph preparation: that is ``cholmod-amd``), so this
calls ``amd_l_order`` from the system's libamd with ctypes. The patch ordering uses the same call
for its local blocks.
"""

from __future__ import annotations

import ctypes
import functools
import numpy as np
import scipy.sparse as sp

from ..core.case import Ordering
from ..core.native_io import library_status, load_system_library
from ..core.libversions import suitesparse_library_version
from . import OrderingBase, register

_AMD_CONTROL, _AMD_INFO = 5, 20
_AMD_DENSE, _AMD_AGGRESSIVE = 0, 1
_STATUS = {-1: "out of memory", -2: "invalid matrix", -3: "integer overflow"}


@functools.lru_cache(maxsize=1)
def _libamd():
    lib = load_system_library("amd", "libamd.so.2", "libsuitesparse-dev")
    fn = lib.amd_l_order
    i64p = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
    f64p = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
    fn.argtypes = [ctypes.c_int64, i64p, i64p, i64p, f64p, f64p]
    fn.restype = ctypes.c_int64
    return lib


def minimum_degree_order(order_fn, graph: sp.csr_matrix, dense: float, aggressive: bool, *extra) -> np.ndarray:
    """Call SuiteSparse's ``amd_l_order`` or ``camd_l_order`` (same arguments; CAMD adds its
    constraint array as ``extra``) on a symmetric CSR pattern; returns the perm (new -> old)."""
    n = graph.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    indptr = np.ascontiguousarray(graph.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(graph.indices, dtype=np.int64)
    perm = np.empty(n, dtype=np.int64)
    control = np.zeros(_AMD_CONTROL, dtype=np.float64)  # CAMD's Control/Info have the same layout
    control[_AMD_DENSE] = dense
    control[_AMD_AGGRESSIVE] = 1.0 if aggressive else 0.0
    info = np.zeros(_AMD_INFO, dtype=np.float64)
    status = order_fn(n, indptr, indices, perm, control, info, *extra)
    if status < 0:
        raise RuntimeError(f"{order_fn.__name__} failed: {_STATUS.get(int(status), status)}")
    return perm


def amd_order(graph: sp.csr_matrix, dense: float = 10.0, aggressive: bool = True) -> np.ndarray:
    """AMD permutation (new -> old) of a symmetric pattern given as CSR (diagonal ignored)."""
    return minimum_degree_order(_libamd().amd_l_order, graph, dense, aggressive)


@register
class AMD(OrderingBase):
    name = "amd"
    version = "1"
    description = "SuiteSparse AMD (approximate minimum degree), via libamd"
    params = {"dense": 10.0, "aggressive": True}

    @classmethod
    def check(cls):
        return library_status(_libamd)

    def library_versions(self):
        _libamd()
        return {"amd": suitesparse_library_version("amd")}

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        return Ordering(amd_order(graph, self.p["dense"], self.p["aggressive"]))
