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

import numba
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
    """The METIS functions of one copy of libmetis: typed for calls from Python, and ``raw_*``
    (every argument a pointer) for the compiled loops below, which take a function as argument.
    ``address_of(name)``: where the function is in that copy."""

    def __init__(self, address_of):
        for name, (restype, argtypes) in _SIGNATURES.items():
            address = address_of(name)
            if not address:
                raise RuntimeError(f"{name} not found in a copy of libmetis")
            # CFUNCTYPE (not PYFUNCTYPE): the call releases the GIL.
            setattr(self, name, ctypes.CFUNCTYPE(restype, *argtypes)(address))
            setattr(self, "raw_" + name, ctypes.CFUNCTYPE(restype, *[ctypes.c_void_p] * len(argtypes))(address))


@functools.lru_cache(maxsize=1)
def _own_instance() -> _Instance:
    """The process's own libmetis (the first instance handed out)."""
    lib = _libmetis()
    return _Instance(lambda name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)


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
    return _Instance(lambda name: libc.dlsym(handle, name.encode())) if handle else None


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
                lib = _own_instance()
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
    options = options_rows([{"seed": seed, "ufactor": ufactor, "objtype": objtype}])[0]
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
    options = options_rows([{"seed": seed}])[0]
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


def options_rows(option_sets: list[dict]) -> np.ndarray:
    """METIS option arrays, one row per dict of :func:`bisect`'s keywords (seed, ufactor, objtype)."""
    rows = np.zeros((len(option_sets), _NOPTIONS), dtype=np.int32)
    for row, opts in zip(rows, option_sets):
        _libmetis().METIS_SetDefaultOptions(row)
        row[_OPTION_SEED] = opts.get("seed", 0)
        for key, index in (("ufactor", _OPTION_UFACTOR), ("objtype", _OPTION_OBJTYPE)):
            if opts.get(key) is not None:
                row[index] = opts[key]
    return rows


@numba.njit(cache=True, nogil=True)
def _bisect_blocks(fn, indptr, adjncy, vwgt, adjwgt, jobs, options, out):
    """METIS two-way partitions, one per row (start, stop, option row) of ``jobs``: the block
    start..stop of a block-diagonal CSR (``adjncy`` in global ids) with the options of that row;
    block j's sides go to out[option row, start:stop]. ``fn``: a METIS_PartGraph* function (every
    argument a pointer). Returns METIS's status per job. No GIL is held, so runs of jobs on
    different threads (each with its own ``fn`` instance) run at once."""
    status = np.zeros(jobs.shape[0], dtype=np.int32)
    big, big_e = 1, 1
    for j in range(jobs.shape[0]):
        big = max(big, jobs[j, 1] - jobs[j, 0])
        big_e = max(big_e, indptr[jobs[j, 1]] - indptr[jobs[j, 0]])
    # Scratch buffers live across the loop and are read after it, so they outlive every call.
    xadj = np.empty(big + 1, dtype=np.int32)
    adj = np.empty(big_e, dtype=np.int32)
    vw = np.empty(big, dtype=np.int32)
    ew = np.empty(big_e, dtype=np.int32)
    part = np.empty(big, dtype=np.int32)
    scalars = np.empty(4, dtype=np.int32)  # nvtxs, ncon, nparts, objval
    opts = np.empty(options.shape[1], dtype=np.int32)
    for j in range(jobs.shape[0]):
        s, e, row = jobs[j, 0], jobs[j, 1], jobs[j, 2]
        p0, p1 = indptr[s], indptr[e]
        for i in range(e - s + 1):
            xadj[i] = indptr[s + i] - p0
        for p in range(p1 - p0):
            adj[p] = adjncy[p0 + p] - s
            ew[p] = adjwgt[p0 + p]
        for i in range(e - s):
            vw[i] = vwgt[s + i]
        opts[:] = options[row]
        scalars[0], scalars[1], scalars[2] = e - s, 1, 2
        status[j] = fn(scalars[0:].ctypes.data, scalars[1:].ctypes.data, xadj.ctypes.data, adj.ctypes.data,
                       vw.ctypes.data, 0, ew.ctypes.data, scalars[2:].ctypes.data, 0, 0, opts.ctypes.data,
                       scalars[3:].ctypes.data, part.ctypes.data)
        for i in range(e - s):
            out[row, s + i] = part[i]
    status[0] += 0 * (xadj[0] + adj[0] + vw[0] + ew[0] + part[0] + scalars[0] + opts[0])
    return status


def bisect_blocks(indptr, adjncy, vwgt, adjwgt, jobs: np.ndarray, options: np.ndarray, out: np.ndarray, *,
                  recursive: bool = True) -> None:
    """:func:`bisect` on many blocks of one block-diagonal CSR in one compiled loop (see
    :func:`_bisect_blocks`) on one instance of libmetis; raises if METIS fails on any."""
    with metis_library() as lib:
        fn = lib.raw_METIS_PartGraphRecursive if recursive else lib.raw_METIS_PartGraphKway
        status = _bisect_blocks(fn, indptr, adjncy, vwgt, adjwgt, jobs, options, out)
    bad = np.flatnonzero(status != _OK)
    if bad.shape[0]:
        s, e, _ = jobs[bad[0]]
        raise RuntimeError(f"{'METIS_PartGraphRecursive' if recursive else 'METIS_PartGraphKway'} failed "
                           f"(status {status[bad[0]]}) on a block of {e - s} vertices")
