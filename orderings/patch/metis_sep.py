"""METIS's multilevel vertex separator (``METIS_ComputeVertexSeparator``), called in the system's
libmetis with ctypes.

pymetis (which bundles its own METIS for ``part_graph``/``nested_dissection``) does not expose vertex
separators, so the ``direct`` separator policy uses the system METIS (Debian's 5.1.0, built with
32-bit ``idx_t``); its version is recorded with the results.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from ...harness.native_io import load_system_library

_NOPTIONS = 40
_OPTION_SEED = 8
_OK = 1


@functools.lru_cache(maxsize=1)
def _libmetis():
    lib = load_system_library("metis", "libmetis.so.5", "libmetis-dev")
    i32p = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
    lib.METIS_SetDefaultOptions.argtypes = [i32p]
    lib.METIS_SetDefaultOptions.restype = ctypes.c_int
    fn = lib.METIS_ComputeVertexSeparator
    fn.argtypes = [ctypes.POINTER(ctypes.c_int32), i32p, i32p, ctypes.c_void_p, i32p,
                   ctypes.POINTER(ctypes.c_int32), i32p]
    fn.restype = ctypes.c_int
    return lib


def vertex_separator(xadj: np.ndarray, adjncy: np.ndarray, seed: int = 0,
                     vwgt: np.ndarray | None = None) -> np.ndarray:
    """METIS vertex separator of a graph (CSR without diagonal, optional vertex weights):
    0 / 1 = side, 2 = separator."""
    n = xadj.shape[0] - 1
    lib = _libmetis()
    options = np.zeros(_NOPTIONS, dtype=np.int32)
    lib.METIS_SetDefaultOptions(options)
    options[_OPTION_SEED] = seed
    part = np.zeros(n, dtype=np.int32)
    sepsize = ctypes.c_int32(0)
    weights = None if vwgt is None else np.ascontiguousarray(vwgt, dtype=np.int32)  # kept alive
    status = lib.METIS_ComputeVertexSeparator(
        ctypes.byref(ctypes.c_int32(n)), np.ascontiguousarray(xadj, dtype=np.int32),
        np.ascontiguousarray(adjncy, dtype=np.int32),
        None if weights is None else weights.ctypes.data,
        options, ctypes.byref(sepsize), part)
    if status != _OK:
        raise RuntimeError(f"METIS_ComputeVertexSeparator failed (status {status})")
    return part
