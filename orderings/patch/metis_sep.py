"""METIS's multilevel vertex separator (``METIS_ComputeVertexSeparator``) and two-way partition
(``METIS_PartGraphRecursive`` / ``METIS_PartGraphKway``), called in the system's libmetis with ctypes.

pymetis (which bundles its own METIS for ``part_graph``/``nested_dissection``) does not expose vertex
separators, and it holds the GIL while METIS runs, so calls from a thread pool would run one at a
time. ctypes releases the GIL around every foreign call, so the patch ordering calls the system
METIS (Debian's 5.1.0, built with 32-bit ``idx_t``; its version is recorded with the results) from
its threads, each concurrent call on its own instance of the library (see :func:`metis_library`).
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import threading
from contextlib import contextmanager

import numpy as np

from ...core.native_io import load_system_library

_NOPTIONS = 40
_OPTION_OBJTYPE = 1
_OPTION_SEED = 8
_OPTION_UFACTOR = 16
_OK = 1

_I32P = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
_I32 = ctypes.POINTER(ctypes.c_int32)
#: ctypes signatures (restype, argtypes) of the functions called here.
_SIGNATURES = {
    "METIS_SetDefaultOptions": (ctypes.c_int, [_I32P]),
    "METIS_ComputeVertexSeparator": (ctypes.c_int, [_I32, _I32P, _I32P, ctypes.c_void_p, _I32P, _I32, _I32P]),
    # nvtxs, ncon, xadj, adjncy, vwgt, vsize, adjwgt, nparts, tpwgts, ubvec, options, objval, part
    "METIS_PartGraphRecursive": (ctypes.c_int, [_I32, _I32, _I32P, _I32P, _I32P, ctypes.c_void_p, _I32P, _I32,
                                                ctypes.c_void_p, ctypes.c_void_p, _I32P, _I32, _I32P]),
}
_SIGNATURES["METIS_PartGraphKway"] = _SIGNATURES["METIS_PartGraphRecursive"]
_LM_ID_NEWLM, _RTLD_NOW = -1, 2


@functools.lru_cache(maxsize=1)
def _libmetis():
    lib = load_system_library("metis", "libmetis.so.5", "libmetis-dev")
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    return lib


class _Instance:
    """The METIS functions of one more copy of libmetis, loaded in a new link-map namespace."""

    def __init__(self, handle: int, dlsym):
        for name, (restype, argtypes) in _SIGNATURES.items():
            address = dlsym(handle, name.encode())
            if not address:
                raise RuntimeError(f"{name} not found in a namespaced copy of libmetis")
            # CFUNCTYPE (not PYFUNCTYPE): the call releases the GIL.
            setattr(self, name, ctypes.CFUNCTYPE(restype, *argtypes)(address))


def _mapped_path(name: str) -> str:
    """The file behind a loaded library (ctypes may have loaded it by soname)."""
    if os.path.isabs(name):
        return name
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if os.path.basename(path).startswith(name):
                return path
    raise RuntimeError(f"cannot find the file of {name} among the process's mapped libraries")


def _new_instance():
    """libmetis loaded again with dlmopen(LM_ID_NEWLM): a new namespace brings its own libc, hence
    its own rand() state. glibc has room for few such namespaces (10 more here before the static
    TLS block runs out); None once they are used up."""
    libc = ctypes.CDLL(None)
    libc.dlmopen.restype, libc.dlmopen.argtypes = ctypes.c_void_p, [ctypes.c_long, ctypes.c_char_p, ctypes.c_int]
    libc.dlsym.restype, libc.dlsym.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
    handle = libc.dlmopen(_LM_ID_NEWLM, _mapped_path(_libmetis()._name).encode(), _RTLD_NOW)
    return _Instance(handle, libc.dlsym) if handle else None


_idle: queue.SimpleQueue = queue.SimpleQueue()
_pool = {"made": 0, "exhausted": False}
_pool_lock = threading.Lock()


@contextmanager
def metis_library():
    """An instance of libmetis that no other running call uses, returned to the pool afterwards.

    METIS seeds libc's rand() at the start of every call and draws from it throughout; rand()'s
    state is process-wide, so two METIS calls at once in one namespace interleave their draws and
    their results change from run to run (seen here: the same two separators computed on two
    threads differed from the serial ones, even with two copies of the library file). Each
    concurrent call therefore gets its own instance (the process's own libmetis first, then
    copies in new namespaces); when no more can be made, a call waits for a free one. Every call
    re-seeds, so the result does not depend on which instance runs it.
    """
    try:
        lib = _idle.get_nowait()
    except queue.Empty:
        lib = None
        with _pool_lock:
            if _pool["made"] == 0:
                lib = _libmetis()
            elif not _pool["exhausted"]:
                lib = _new_instance()
                _pool["exhausted"] = lib is None
            _pool["made"] += lib is not None
        if lib is None:
            lib = _idle.get()
    try:
        yield lib
    finally:
        _idle.put(lib)


def bisect(xadj: np.ndarray, adjncy: np.ndarray, vwgt: np.ndarray, adjwgt: np.ndarray, *, seed: int = 0,
           recursive: bool = True, ufactor: int | None = None, objtype: int | None = None) -> np.ndarray:
    """METIS two-way partition (side 0/1 per vertex) of a weighted graph (CSR without diagonal).

    ``recursive``: METIS_PartGraphRecursive (else METIS_PartGraphKway); ``ufactor``/``objtype``:
    METIS's options of those names (None: METIS's default).
    """
    n = xadj.shape[0] - 1
    options = np.zeros(_NOPTIONS, dtype=np.int32)
    _libmetis().METIS_SetDefaultOptions(options)
    options[_OPTION_SEED] = seed
    if ufactor is not None:
        options[_OPTION_UFACTOR] = ufactor
    if objtype is not None:
        options[_OPTION_OBJTYPE] = objtype
    part = np.zeros(n, dtype=np.int32)
    objval = ctypes.c_int32(0)
    with metis_library() as lib:
        fn = lib.METIS_PartGraphRecursive if recursive else lib.METIS_PartGraphKway
        status = fn(ctypes.byref(ctypes.c_int32(n)), ctypes.byref(ctypes.c_int32(1)),
                    np.ascontiguousarray(xadj, dtype=np.int32), np.ascontiguousarray(adjncy, dtype=np.int32),
                    np.ascontiguousarray(vwgt, dtype=np.int32), None, np.ascontiguousarray(adjwgt, dtype=np.int32),
                    ctypes.byref(ctypes.c_int32(2)), None, None, options, ctypes.byref(objval), part)
    if status != _OK:
        raise RuntimeError(f"{'METIS_PartGraphRecursive' if recursive else 'METIS_PartGraphKway'} failed "
                           f"(status {status})")
    return part


def vertex_separator(xadj: np.ndarray, adjncy: np.ndarray, seed: int = 0,
                     vwgt: np.ndarray | None = None) -> np.ndarray:
    """METIS vertex separator of a graph (CSR without diagonal, optional vertex weights):
    0 / 1 = side, 2 = separator."""
    n = xadj.shape[0] - 1
    options = np.zeros(_NOPTIONS, dtype=np.int32)
    _libmetis().METIS_SetDefaultOptions(options)
    options[_OPTION_SEED] = seed
    part = np.zeros(n, dtype=np.int32)
    sepsize = ctypes.c_int32(0)
    weights = None if vwgt is None else np.ascontiguousarray(vwgt, dtype=np.int32)  # kept alive
    with metis_library() as lib:
        status = lib.METIS_ComputeVertexSeparator(
            ctypes.byref(ctypes.c_int32(n)), np.ascontiguousarray(xadj, dtype=np.int32),
            np.ascontiguousarray(adjncy, dtype=np.int32),
            None if weights is None else weights.ctypes.data,
            options, ctypes.byref(sepsize), part)
    if status != _OK:
        raise RuntimeError(f"METIS_ComputeVertexSeparator failed (status {status})")
    return part
