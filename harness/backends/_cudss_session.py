"""The cuDSS library and one factorization session on the device, for the ``cudss`` back-end
(harness/backends/cudss.py, the plug-in). Not a plug-in itself: files named ``_*`` are skipped by
the plug-in scan (permbench/core/plugins.py).

Phases are timed with a device synchronization before and after each ``cudssExecute`` and
``perf_counter`` in between (cuDSS's reordering and symbolic phases run partly on the host, which
CUDA events on the stream would not see). Uploads and downloads are outside the phase times and
counted apart (``Session.times``). Library handles are created once per process and per ``mt`` and
warmed up (small 2D solves with cuDSS's default and AMD orderings, a 50^3 3D solve whose large fronts
load the remaining kernels, the tree kernel's numba load) before anything is timed, and the GPU is
kept busy for 0.2 s before each analysis so timed phases run at working clocks.

Which cuDSS runs: nvmath-python 1.0 finds the library through cuda-pathfinder, which takes a
``libcudss`` already loaded in the process first (then ``libcudss.so.1`` before ``.so.0``, from
pathfinder 1.8.4 on). ``$CUDSS_LIBRARY`` (a path to ``libcudss.so.N``) is loaded here before nvmath
looks, so two versions installed side by side are selected by that variable; the row's
``backend_provenance`` names the version (``cudssGetProperty``) and the file that was mapped.
cuDSS 1.0 needs NVRTC (``libnvrtc.so.13``: it compiles some kernels at run time, cached on disk
under ``$CUDSS_JIT_CACHE_DIR``); cuda-pathfinder loads it first where it can find it.

ND trees go in as ``USER_ND_PARTITION_TREE`` in the ``reverse_bfs`` layout, with ``ND_NLEVELS`` =
the tree's levels + 1: cuDSS counts node levels, the code counts dissection levels
(permbench/core/ndtree.py); this is the one place that converts.

Everything that needs cupy, nvmath or a GPU is imported inside functions: this module imports on
any machine, and ``availability()`` says why cuDSS cannot run there.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import re
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...core.case import symmetric_graph
from ...core.ndtree import NDTree, tree_from_etree
from ...core.provenance import loaded_libraries
from . import NotSPD, Stopwatch

#: ``reorder=`` values -> nvmath's ``ReorderingAlg`` members (cuDSS's own orderings, native only).
REORDER_ALGS = {
    "default": "DEFAULT",
    "amd": "AMD",
    "nd": "NESTED_DISSECTION",
    "colamd": "COLAMD",
    "btf_colamd": "BTF_COLAMD",
    "none": "NONE",
}
#: cuDSS's OpenMP threading layer; its soname ends in the major version of the cuDSS it belongs to.
MT_LAYER_STEM = "libcudss_mtlayer_gomp.so"


# --------------------------------------------------------------------------------------------------
# The ND tree for an ordering that has none (tree=derive)
# --------------------------------------------------------------------------------------------------

#: Dissection levels of a derived tree: 9, i.e. cuDSS 0.8's default ND_NLEVELS of 10 node levels.
DERIVED_TREE_LEVELS = 9


def derive_nd_tree(graph: sp.csr_matrix, perm: np.ndarray, levels: int = DERIVED_TREE_LEVELS,
                   parent: np.ndarray | None = None) -> tuple[np.ndarray, NDTree]:
    """An ND tree for any permutation, read off its elimination tree, in cuDSS's layout.

    Returns (perm', tree): perm' is perm reordered node by node (a topological reordering of the
    elimination tree, so nnz(L) is exactly that of ``perm``; core/ndtree.py ``tree_from_etree``).
    ``parent`` is the etree in the permuted numbering when the caller has it.
    """
    from .symbolic import _graph_arrays, permuted_etree

    if parent is None:  # the elimination tree alone: no pattern, column counts or statistics
        parent = permuted_etree(*_graph_arrays(graph, perm))
    return tree_from_etree(perm, parent, levels, "reverse_bfs")


# --------------------------------------------------------------------------------------------------
# Availability and the library handle
# --------------------------------------------------------------------------------------------------


def loaded_cudss_library() -> str | None:
    """Real path of the libcudss.so.N mapped into this process (None before it is loaded)."""
    found = [p for name, p in loaded_libraries("libcudss").items() if name.startswith("libcudss.so")]
    return found[0] if found else None


def soname_major(path: str) -> int | None:
    """N of a file named lib....so.N[.x.y] (libcudss_mtlayer_gomp.so.1 -> 1)."""
    match = re.search(r"\.so\.(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else None


def find_threading_layer(major: int, next_to: str | None = None) -> str:
    """Path of the OpenMP threading layer that belongs to cuDSS ``major``: $CUDSS_THREADING_LIB,
    else beside the loaded libcudss (``next_to``), else in the nvidia wheels' folders or on
    LD_LIBRARY_PATH. Raises RuntimeError naming what is missing or mismatched: a layer of another
    cuDSS major does not work with this one."""
    layer = f"{MT_LAYER_STEM}.{major}"
    env = os.environ.get("CUDSS_THREADING_LIB")
    if env:
        if not os.path.isfile(env):
            raise RuntimeError(f"$CUDSS_THREADING_LIB={env} does not exist")
        if soname_major(env) != major:
            raise RuntimeError(f"$CUDSS_THREADING_LIB={env} belongs to cuDSS {soname_major(env)}.x, "
                               f"but cuDSS {major}.x is loaded (its layer is {layer})")
        return env
    folders = [Path(next_to).parent] if next_to else []
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        folders += [Path(root) / sub / "lib" for sub in ("cu13", "cu12", "cudss")]
    folders += [Path(d) for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    found = next((folder / layer for folder in folders if (folder / layer).is_file()), None)
    if found is None:
        raise RuntimeError(f"cuDSS multithreading layer {layer} not found next to {next_to or 'libcudss'}: set "
                           "CUDSS_THREADING_LIB to its path or install nvidia-cudss-cu13 (mt=false runs without it)")
    return str(found)


#: What libcudss needs loaded first (cuDSS 1.0 adds NVRTC), by cuda-pathfinder's names.
CUDSS_DEPENDENCIES = ("cublasLt", "cublas", "nvrtc")


@functools.cache
def preload_cudss() -> str | None:
    """Load ``$CUDSS_LIBRARY`` before nvmath-python looks for cuDSS, so that exactly this file is
    used; its dependencies first, found by cuda-pathfinder as nvmath would find them. Returns the
    path, None when the variable is unset; raises OSError naming what does not load."""
    path = os.environ.get("CUDSS_LIBRARY")
    if not path:
        return None
    if not os.path.isfile(path):
        raise OSError(f"$CUDSS_LIBRARY={path} does not exist")
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib
    except ImportError:
        load_nvidia_dynamic_lib = None
    for dependency in CUDSS_DEPENDENCIES if load_nvidia_dynamic_lib else ():
        try:
            load_nvidia_dynamic_lib(dependency)
        except Exception:  # noqa: BLE001 - not found there: the dynamic loader may still find it below
            pass
    ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
    return path


@functools.cache
def availability() -> tuple[bool, str]:
    """(True, '') where cuDSS can run here, else (False, what is missing)."""
    if importlib.util.find_spec("nvmath") is None:
        return False, "nvmath-python not installed (pip install nvmath-python nvidia-cudss-cu13 cupy-cuda13x)"
    if importlib.util.find_spec("cupy") is None:
        return False, "no CUDA GPU: cupy is not installed (pip install cupy-cuda13x)"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver, no device: cupy raises its own CUDARuntimeError
        return False, f"no CUDA GPU: {type(err).__name__}: {err}"
    if count < 1:
        return False, "no CUDA GPU: the CUDA runtime reports 0 devices"
    try:
        preload_cudss()
        from nvmath.bindings import cudss

        version = (cudss.get_property(0), cudss.get_property(1))
    except Exception as err:  # the wheel nvidia-cudss-cu13 missing or not loadable (cuDSS 1.0 without NVRTC)
        return False, f"cuDSS library not loadable through nvmath-python: {type(err).__name__}: {err}"
    if version < (0, 8):
        return False, f"cuDSS {version[0]}.{version[1]} found; 0.8 or later is required (ND partition trees)"
    return True, ""


def cudss_version() -> str:
    from nvmath.bindings import cudss

    return ".".join(str(cudss.get_property(i)) for i in range(3))


def gpu_name() -> str:
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _cfg_set(config: int, param, value, cudss) -> None:
    arr = np.array([value], dtype=cudss.get_config_param_dtype(param))
    cudss.config_set(config, param, arr.ctypes.data, arr.itemsize)


def _cfg_get(config: int, param, cudss):
    arr = np.zeros(1, dtype=cudss.get_config_param_dtype(param))
    written = np.zeros(1, dtype=np.uint64)
    cudss.config_get(config, param, arr.ctypes.data, arr.itemsize, written.ctypes.data)
    return arr[0].item()


def _data_scalar(handle: int, data: int, param, cudss):
    arr = np.zeros(1, dtype=cudss.get_data_param_dtype(param))
    written = np.zeros(1, dtype=np.uint64)
    cudss.data_get(handle, data, param, arr.ctypes.data, arr.itemsize, written.ctypes.data)
    return arr[0].item()


def _data_array(handle: int, data: int, param, count: int | None, dtype, cudss) -> np.ndarray:
    """Read an array parameter; count=None asks cuDSS for its size first (a zero-size get)."""
    written = np.zeros(1, dtype=np.uint64)
    if count is None:
        cudss.data_get(handle, data, param, 0, 0, written.ctypes.data)
        count = int(written[0]) // np.dtype(dtype).itemsize
    out = np.zeros(count, dtype=dtype)
    cudss.data_get(handle, data, param, out.ctypes.data, out.nbytes, written.ctypes.data)
    return out[: int(written[0]) // out.itemsize]


@functools.cache
def cudss_handle(mt: bool) -> tuple[int, str | None]:
    """One cuDSS handle per process and threading mode, warmed up before any timing.

    Context creation, module loading, the threading layer's thread pool and first-call
    allocations all happen here, on a small SPD system, so no measured phase pays for them.
    """
    import cupy  # noqa: F401  (creates the CUDA context cuDSS will use)
    from nvmath.bindings import cudss

    cupy.cuda.Device().use()
    handle = cudss.create()
    layer = None
    if mt:
        try:
            layer = find_threading_layer(cudss.get_property(0), loaded_cudss_library())
        except RuntimeError:
            cudss.destroy(handle)
            raise
        cudss.set_threading_layer(handle, layer)
    for A, alg in ((_laplacian(24, 2), "default"), (_laplacian(24, 2), "amd"), (_laplacian(50, 3), "default")):
        with Session(handle, A, reorder=alg) as s:
            s.analyze(None, None)
            s.factorize(A)
            s.factorize(A)
            s.solve(np.ones(A.shape[0]))
    # numba compiles (first run on a machine, 4 s) or loads (later processes) the tree kernel here.
    small = _laplacian(24, 2)
    derive_nd_tree(symmetric_graph(small), np.arange(small.shape[0]), levels=2)
    return handle, layer


def _laplacian(k: int, dim: int) -> sp.csr_matrix:
    """k^dim grid Laplacian + I (SPD), for the warm-up.

    The 3D one has dense fronts of thousands of columns: measured on the H200, the first large
    factorization in a process paid 0.03-0.06 s more, and the first solve 0.015 s more, than every
    later one (lazily loaded kernels for large fronts or first large allocations; not told apart)
    while the warm-up had only the 2D matrix; with the 3D one, the first cell ran as fast as the
    others (1M grid: factor 0.0284 s, solve 0.0027 s).
    """
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    L = T
    for _ in range(dim - 1):
        L = sp.kronsum(L, T)
    return (L + sp.identity(k**dim)).tocsr()


# --------------------------------------------------------------------------------------------------
# One factorization session on the device
# --------------------------------------------------------------------------------------------------


def _sync() -> None:
    import cupy

    cupy.cuda.Device().synchronize()


def _ramp_gpu_clocks(seconds: float = 0.2) -> None:
    """Keep the GPU busy for a moment so the timed phases run at working clocks.

    An idle H200 sits at 345 MHz; measured here, the first factorization of a 1M grid after only
    the small warm-up took 0.091 s against 0.028 s in every later cell. Untimed.
    """
    import cupy

    a = cupy.ones((2048, 2048), dtype=cupy.float32)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            a @ a
        _sync()


class Session:
    """One matrix on the device with its cuDSS config/data objects; phases return seconds."""

    def __init__(self, handle: int, A: sp.csr_matrix, *, reorder: str = "default"):
        import cupy
        from nvmath.bindings import cudss

        if A.nnz >= 2**31:
            raise ValueError(f"cudss back-end: nnz(A)={A.nnz:,} needs 64-bit indices (not wired here)")
        self.cudss, self.handle, self.n = cudss, handle, A.shape[0]
        self.times: dict[str, float] = {"t_h2d_s": 0.0, "t_d2h_s": 0.0}
        self.config = cudss.config_create()
        self.data = cudss.data_create(handle)
        self._matrices: list[int] = []
        t0 = time.perf_counter()
        self.indptr = cupy.asarray(A.indptr.astype(np.int32))
        self.indices = cupy.asarray(A.indices.astype(np.int32))
        self.values = cupy.asarray(A.data.astype(np.float64))
        self.x = cupy.zeros(self.n, dtype=np.float64)
        self.b = cupy.zeros(self.n, dtype=np.float64)
        _sync()
        self.times["t_h2d_s"] += time.perf_counter() - t0
        R32, R64 = cudss.DataType.R_32I, cudss.DataType.R_64F
        self.A = cudss.matrix_create_csr(self.n, self.n, A.nnz, self.indptr.data.ptr, 0, self.indices.data.ptr,
                                         self.values.data.ptr, R32, R32, R64, cudss.MatrixType.SPD,
                                         cudss.MatrixViewType.FULL, cudss.IndexBase.ZERO)
        self._matrices.append(self.A)
        self.X = cudss.matrix_create_dn(self.n, 1, self.n, self.x.data.ptr, R64, cudss.Layout.COL_MAJOR)
        self._matrices.append(self.X)
        self.B = cudss.matrix_create_dn(self.n, 1, self.n, self.b.data.ptr, R64, cudss.Layout.COL_MAJOR)
        self._matrices.append(self.B)
        _cfg_set(self.config, cudss.ConfigParam.REORDERING_ALG,
                 int(getattr(cudss.ReorderingAlg, REORDER_ALGS[reorder])), cudss)
        self.factorized = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _execute(self, phase) -> float:
        _sync()
        with Stopwatch() as watch:
            self.cudss.execute(self.handle, phase, self.config, self.data, self.A, self.X, self.B)
            _sync()
        return watch.wall

    def analyze(self, perm: np.ndarray | None, tree: NDTree | None) -> tuple[float, float]:
        """REORDERING then SYMBOLIC_FACTORIZATION; returns both times.

        With ``perm`` cuDSS skips its own ordering algorithm (USER_PERM, new -> old); ``tree`` adds
        the ND partition tree (USER_ND_PARTITION_TREE: node sizes in the ``reverse_bfs`` layout, and
        ND_NLEVELS, cuDSS's count of node levels, = tree.levels + 1).
        """
        cudss = self.cudss
        if tree is not None and tree.layout != "reverse_bfs":
            raise ValueError(f"cudss: the ND tree must be in the reverse_bfs layout, got {tree.layout} "
                             "(core/ndtree.py relayout)")
        self.nd_nlevels = None if tree is None else tree.levels + 1  # cuDSS counts node levels
        if perm is not None:
            p32 = np.ascontiguousarray(perm, dtype=np.int32)
            cudss.data_set(self.handle, self.data, cudss.DataParam.USER_PERM, p32.ctypes.data, p32.nbytes)
            self._keep = [p32]  # cuDSS may read the host array during the reordering phase
            if tree is not None:
                t32 = np.ascontiguousarray(tree.sizes, dtype=np.int32)
                _cfg_set(self.config, cudss.ConfigParam.ND_NLEVELS, self.nd_nlevels, cudss)
                cudss.data_set(self.handle, self.data, cudss.DataParam.USER_ND_PARTITION_TREE,
                               t32.ctypes.data, t32.nbytes)
                self._keep.append(t32)
        _ramp_gpu_clocks()
        t_reorder = self._execute(cudss.Phase.REORDERING)
        t_symbolic = self._execute(cudss.Phase.SYMBOLIC_FACTORIZATION)
        return t_reorder, t_symbolic

    def factorize(self, A: sp.csr_matrix) -> float:
        """FACTORIZATION the first time, REFACTORIZATION (same pattern, new values) afterwards."""
        if A.nnz != self.values.shape[0]:
            raise ValueError(f"cudss: refactorization needs the same pattern (nnz {A.nnz:,} vs {self.values.shape[0]:,})")
        t0 = time.perf_counter()
        self.values.set(np.ascontiguousarray(A.data, dtype=np.float64))
        _sync()
        self.times["t_h2d_s"] += time.perf_counter() - t0
        phase = self.cudss.Phase.REFACTORIZATION if self.factorized else self.cudss.Phase.FACTORIZATION
        seconds = self._execute(phase)
        self.factorized = True
        info = _data_scalar(self.handle, self.data, self.cudss.DataParam.INFO, self.cudss)
        if info != 0:
            raise NotSPD(f"cuDSS factorization reported info={info} (a non-positive pivot: not SPD)")
        return seconds

    def solve(self, b: np.ndarray) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        self.b.set(np.ascontiguousarray(b, dtype=np.float64))
        _sync()
        self.times["t_h2d_s"] += time.perf_counter() - t0
        seconds = self._execute(self.cudss.Phase.SOLVE)
        t0 = time.perf_counter()
        x = self.x.get()
        self.times["t_d2h_s"] += time.perf_counter() - t0
        return x, seconds

    def lu_nnz(self) -> int:
        return int(_data_scalar(self.handle, self.data, self.cudss.DataParam.LU_NNZ, self.cudss))

    def reorder_perm(self) -> np.ndarray:
        """The permutation cuDSS used (PERM_REORDER_ROW), as int64."""
        return _data_array(self.handle, self.data, self.cudss.DataParam.PERM_REORDER_ROW, self.n, np.int32,
                           self.cudss).astype(np.int64)

    def partition_tree(self) -> np.ndarray:
        """cuDSS's ND partition tree as it reports it (node sizes, reverse-BFS); empty if its
        ordering made none. Raw: counted in the row, not validated (``NDTree`` would)."""
        try:
            return _data_array(self.handle, self.data, self.cudss.DataParam.ND_PARTITION_TREE, None, np.int32,
                               self.cudss).astype(np.int64)
        except Exception:  # e.g. reorder=amd builds no ND tree; cuDSS then refuses the query
            return np.zeros(0, dtype=np.int64)

    def config_value(self, name: str):
        return _cfg_get(self.config, getattr(self.cudss.ConfigParam, name), self.cudss)

    def close(self) -> None:
        cudss = self.cudss
        for m in self._matrices:
            cudss.matrix_destroy(m)
        self._matrices = []
        if self.data is not None:
            cudss.data_destroy(self.handle, self.data)
            self.data = None
        if self.config is not None:
            cudss.config_destroy(self.config)
            self.config = None
        self.indptr = self.indices = self.values = self.x = self.b = None
