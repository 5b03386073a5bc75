"""The ``cudss`` back-end: NVIDIA cuDSS (0.8 or 1.0) through nvmath-python's low-level binding, on cupy arrays.

Two ways to order (docs/architecture.md, "Back-ends"):

* the ``native`` ordering: cuDSS's own reordering (``reorder=default|amd|nd|...``); its host-side
  reordering is timed as ``t_order_s`` and the permutation it used is read back, so fill is measured
  the same way as for every other ordering;
* any other ordering: our permutation goes in as ``USER_PERM`` (new -> old), with an ND partition
  tree (``USER_ND_PARTITION_TREE`` + ``ND_NLEVELS``) when there is one. Measured on the H200, a
  user permutation without the tree makes cuDSS's symbolic phase ~18x and its factorization ~15x
  slower even for cuDSS's own permutation, so ``tree`` says which tree goes in: ``auto`` the
  ordering's own (``Ordering.etree``; ``patch`` has one), ``derive`` the ordering's own or else one
  derived from the permutation's elimination tree (any ordering), ``off`` none — so results show
  what the tree is worth.

``mt`` plugs in cuDSS's multithreading layer (``libcudss_mtlayer_gomp.so.<major>``, the major of the
cuDSS loaded: .so.0 beside cuDSS 0.8's ``libcudss.so.0``, .so.1 beside 1.0's ``libcudss.so.1``): its
reordering ran 4.5x faster with it on 16 host cores (cuDSS 0.8), so both baselines are reported. ``k`` factorizations: the
first ``FACTORIZATION``, then ``REFACTORIZATION`` with new values on the same pattern.

Phases are timed with a device synchronization before and after each ``cudssExecute`` and
``perf_counter`` in between (cuDSS's reordering and symbolic phases run partly on the host, which
CUDA events on the stream would not see). Uploads and downloads are outside the phase times and
reported in ``backend_extras``. Library handles are created once per process and per ``mt`` and
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

Everything that needs cupy, nvmath or a GPU is imported inside functions: this module imports on
any machine, and ``check()`` says why the back-end is unavailable there.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import importlib.util
import os
import re
import time
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp

from ...core.provenance import loaded_libraries
from . import NotSPD, NumericBackend, Stopwatch, register

#: ``reorder=`` values -> nvmath's ``ReorderingAlg`` members (cuDSS's own orderings, native only).
REORDER_ALGS = {
    "default": "DEFAULT",
    "amd": "AMD",
    "nd": "NESTED_DISSECTION",
    "colamd": "COLAMD",
    "btf_colamd": "BTF_COLAMD",
    "none": "NONE",
}
TREE_MODES = ("auto", "derive", "off")
#: cuDSS's reorderings that order columns for LU: their reported row permutation is no symmetric ordering.
COLUMN_ORDERINGS = ("colamd", "btf_colamd")
#: cuDSS 0.8's default ND_NLEVELS; a derived tree gets as many levels.
DEFAULT_ND_LEVELS = 10
#: cuDSS's OpenMP threading layer; its soname ends in the major version of the cuDSS it belongs to.
MT_LAYER_STEM = "libcudss_mtlayer_gomp.so"


# --------------------------------------------------------------------------------------------------
# ND partition trees (pure NumPy/numba; no GPU needed)
# --------------------------------------------------------------------------------------------------


def tree_levels(sizes: np.ndarray) -> int:
    """Number of levels m of an ND partition tree given as 2^m - 1 node sizes; raises otherwise."""
    length = int(np.asarray(sizes).shape[0])
    m = (length + 1).bit_length() - 1
    if length < 1 or (1 << m) - 1 != length:
        raise ValueError(f"ND partition tree has {length} nodes; expected 2^m - 1 (1, 3, 7, ..., 1023)")
    return m


def bfs_rank(levels: int) -> np.ndarray:
    """Position of complete-binary-tree node t (children 2t+1, 2t+2) in cuDSS's layout.

    cuDSS lists the nodes in reverse breadth-first order: all leaves first, the root separator
    last (read back from cuDSS 0.8's own ``ND_PARTITION_TREE``).
    """
    n_nodes = (1 << levels) - 1
    return np.arange(n_nodes - 1, -1, -1, dtype=np.int64)


def postorder_rank(levels: int) -> np.ndarray:
    """Position of node t in the postorder layout (left subtree, right subtree, separator)."""
    n_nodes = (1 << levels) - 1
    rank = np.empty(n_nodes, dtype=np.int64)
    stack, k = [(0, False)], 0
    while stack:
        t, done = stack.pop()
        if done or 2 * t + 1 >= n_nodes:
            rank[t] = k
            k += 1
        else:
            stack += [(t, True), (2 * t + 2, False), (2 * t + 1, False)]
    return rank


def check_tree(perm: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Validate node sizes against the permutation: non-negative integers summing to n."""
    sizes = np.asarray(sizes)
    tree_levels(sizes)
    if not np.issubdtype(sizes.dtype, np.integer) or (sizes < 0).any():
        raise ValueError("ND partition tree: node sizes must be non-negative integers")
    if int(sizes.sum()) != perm.shape[0]:
        raise ValueError(f"ND partition tree: node sizes sum to {int(sizes.sum())}, expected n={perm.shape[0]}")
    return sizes.astype(np.int64)


def to_cudss_layout(perm: np.ndarray, sizes: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Re-lay a tree given in ``layout`` ('bfs' or 'postorder') into cuDSS's reverse-BFS layout.

    ``perm`` lists the nodes' vertices block after block in the layout's node order; the blocks
    are moved as wholes, so every node keeps its local order and fill is unchanged.
    """
    sizes = check_tree(perm, sizes)
    if layout == "bfs":
        return perm, sizes
    if layout != "postorder":
        raise ValueError(f"ND partition tree layout {layout!r}: expected 'bfs' or 'postorder'")
    levels = tree_levels(sizes)
    src, dst = postorder_rank(levels), bfs_rank(levels)
    # node t occupies block src[t] now and must move to block dst[t].
    node_at_src = np.empty_like(src)
    node_at_src[src] = np.arange(src.shape[0])
    block_of_pos = np.repeat(np.arange(sizes.shape[0]), sizes)  # position -> block in src layout
    new_block = dst[node_at_src[block_of_pos]]
    order = np.argsort(new_block, kind="stable")
    new_sizes = np.empty_like(sizes)
    new_sizes[dst] = sizes[src]
    return perm[order], new_sizes


@numba.njit(cache=True)
def _tree_nodes_from_etree(parent, levels):
    """Tree node (complete binary tree, node t has children 2t+1, 2t+2) of every etree vertex.

    Top-down over tree nodes: a node whose root set is a single etree vertex takes it as
    separator and descends to its children (the chain above a branching is what nested
    dissection eliminates last); a root set of several subtrees is split in two by greedy
    size balancing; at the leaf level each root takes its whole subtree. Two disjoint etree
    subtrees share no edge of A, so the result is a valid ND partition.
    """
    n = parent.shape[0]
    size = np.ones(n, dtype=np.int64)
    nchild = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):  # parent[j] > j: children are final before their parent
        p = parent[j]
        if p != -1:
            size[p] += size[j]
            nchild[p + 1] += 1
    child_ptr = np.cumsum(nchild)
    child = np.empty(max(child_ptr[n], 1), dtype=np.int64)
    fill = child_ptr[:n].copy()
    for j in range(n):
        p = parent[j]
        if p != -1:
            child[fill[p]] = j
            fill[p] += 1
    node_of = np.full(n, -1, dtype=np.int64)
    n_nodes = (1 << levels) - 1
    first_leaf = (1 << (levels - 1)) - 1
    # Root sets of one level's nodes, as segments of a buffer (the sets of a level are disjoint).
    cur = np.empty(max(n, 1), dtype=np.int64)
    cur_start = np.zeros(n_nodes + 1, dtype=np.int64)
    cur_len = np.zeros(n_nodes + 1, dtype=np.int64)
    k = 0
    for j in range(n):
        if parent[j] == -1:
            cur[k] = j
            k += 1
    cur_len[0] = k
    nxt = np.empty(max(n, 1), dtype=np.int64)
    scratch = np.empty(max(n, 1), dtype=np.int64)
    for level in range(levels):
        lo, hi = (1 << level) - 1, (1 << (level + 1)) - 1
        used = 0
        for t in range(lo, hi):
            m = cur_len[t]
            roots = scratch[:0]
            if m > 0:
                roots = scratch[:m]
                roots[:] = cur[cur_start[t]:cur_start[t] + m]
            if t >= first_leaf:
                for r in roots:
                    node_of[r] = t
                continue
            while roots.shape[0] == 1:  # a chain: separator of this node
                r = roots[0]
                node_of[r] = t
                c0, c1 = child_ptr[r], child_ptr[r + 1]
                roots = scratch[:c1 - c0]
                roots[:] = child[c0:c1]
            # Split the remaining subtrees in two, largest first onto the lighter side.
            order = np.argsort(-size[roots])
            side = np.zeros(roots.shape[0], dtype=np.int8)
            w_left, w_right = 0, 0
            for i in order:
                if w_left <= w_right:
                    w_left += size[roots[i]]
                else:
                    side[i] = 1
                    w_right += size[roots[i]]
            for s in range(2):
                c = 2 * t + 1 + s
                cur_start[c] = used
                for i in range(roots.shape[0]):
                    if side[i] == s:
                        nxt[used] = roots[i]
                        used += 1
                cur_len[c] = used - cur_start[c]
        cur, nxt = nxt, cur
    # Everything below an assigned vertex belongs to the same node (parents come later).
    for j in range(n - 1, -1, -1):
        if node_of[j] == -1:
            node_of[j] = node_of[parent[j]]
    return node_of


def derive_nd_tree(graph: sp.csr_matrix, perm: np.ndarray, levels: int = DEFAULT_ND_LEVELS,
                   parent: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An ND partition tree for any permutation, read off its elimination tree, in cuDSS's layout.

    Returns (perm', sizes): perm' is perm reordered node by node (a topological reordering of the
    elimination tree, so nnz(L) is exactly that of ``perm``), sizes has 2^levels - 1 entries in
    reverse-BFS order summing to n. ``parent`` is the etree in the permuted numbering when the
    caller has it (the harness's symbolic analysis does).
    """
    from .symbolic import symbolic_factor

    perm = np.ascontiguousarray(perm, dtype=np.int64)
    if levels < 1:
        raise ValueError(f"derive_nd_tree: levels={levels}, expected >= 1")
    if parent is None:
        parent = symbolic_factor(graph, perm).parent
    node_of = _tree_nodes_from_etree(np.ascontiguousarray(parent, dtype=np.int64), levels)
    rank = bfs_rank(levels)
    order = np.argsort(rank[node_of], kind="stable")  # stable: each node keeps the etree order
    sizes = np.zeros(rank.shape[0], dtype=np.int64)
    sizes[rank] = np.bincount(node_of, minlength=rank.shape[0])
    return perm[order], sizes


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
def _availability() -> tuple[bool, str]:
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
def _handle(mt: bool) -> tuple[int, str | None]:
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
        with _Solve(handle, A, reorder=alg) as s:
            s.analyze(None, None)
            s.factorize(A)
            s.factorize(A)
            s.solve(np.ones(A.shape[0]))
    # numba compiles (first run on a machine, 4 s) or loads (later processes) the tree kernel here.
    small = _laplacian(24, 2)
    derive_nd_tree(_pattern(small), np.arange(small.shape[0]), levels=3)
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


class _Solve:
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

    def analyze(self, perm: np.ndarray | None, tree: np.ndarray | None) -> tuple[float, float]:
        """REORDERING then SYMBOLIC_FACTORIZATION; returns both times.

        With ``perm`` cuDSS skips its own ordering algorithm (USER_PERM, new -> old); ``tree`` adds
        the ND partition tree (USER_ND_PARTITION_TREE, node sizes in reverse-BFS order).
        """
        cudss = self.cudss
        if perm is not None:
            p32 = np.ascontiguousarray(perm, dtype=np.int32)
            cudss.data_set(self.handle, self.data, cudss.DataParam.USER_PERM, p32.ctypes.data, p32.nbytes)
            self._keep = [p32]  # cuDSS may read the host array during the reordering phase
            if tree is not None:
                t32 = np.ascontiguousarray(tree, dtype=np.int32)
                _cfg_set(self.config, cudss.ConfigParam.ND_NLEVELS, tree_levels(t32), cudss)
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
        """cuDSS's ND partition tree (node sizes, reverse-BFS); empty if its ordering made none."""
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


# --------------------------------------------------------------------------------------------------
# The back-end
# --------------------------------------------------------------------------------------------------


@register
class CuDSS(NumericBackend):
    name = "cudss"
    version = "1"
    description = "NVIDIA cuDSS 0.8/1.0 (nvmath-python, cupy): own reordering or USER_PERM + ND partition tree"
    params = {"k": 1, "reorder": "default", "mt": True, "tree": "auto"}
    choices = {"reorder": tuple(REORDER_ALGS), "tree": TREE_MODES}
    supports_native = True

    def __init__(self, target: str | None = None, **params):
        # The spec grammar reads `off` as the boolean false: `tree=off` means the choice "off".
        if params.get("tree") is False:
            params["tree"] = "off"
        super().__init__(target, **params)

    @classmethod
    def check(cls) -> tuple[bool, str]:
        return _availability()

    def library_versions(self) -> dict:
        import cupy
        import nvmath

        return {"cudss": cudss_version(), "nvmath-python": nvmath.__version__, "cupy": cupy.__version__,
                "gpu": gpu_name()}

    def provenance(self) -> dict:
        """What ran: the cuDSS version it reports and the files mapped (library, threading layer,
        NVRTC), for telling a cuDSS 0.8 row from a 1.0 row."""
        import cupy

        libraries = loaded_libraries("libcudss", "libnvrtc")
        try:
            pathfinder = importlib.metadata.version("cuda-pathfinder")
        except importlib.metadata.PackageNotFoundError:
            pathfinder = None
        return {**self.library_versions(), "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
                "cuda_driver": cupy.cuda.runtime.driverGetVersion(), "libcudss": loaded_cudss_library(),
                "mt_layer": next((p for n, p in libraries.items() if n.startswith(MT_LAYER_STEM)), None),
                "libnvrtc": next((p for n, p in libraries.items() if n.startswith("libnvrtc")), None),
                "cuda_pathfinder": pathfinder, "cudss_library_env": os.environ.get("CUDSS_LIBRARY"),
                "cudss_jit_cache_dir": os.environ.get("CUDSS_JIT_CACHE_DIR"),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "host_cpus": os.cpu_count()}

    # The harness drives these through NumericBackend.run.

    def prepare(self) -> None:
        _handle(bool(self.p["mt"]))  # context, threading layer, warm-up: before the ordering runs

    def analyze(self, A: sp.csr_matrix, perm: np.ndarray | None, ordering) -> dict:
        native = perm is None
        if not native and self.p["reorder"] != "default":
            raise ValueError(f"cudss: reorder={self.p['reorder']} chooses cuDSS's own ordering and applies only "
                             "to the 'native' ordering; a user permutation always goes in as USER_PERM")
        handle, layer = _handle(bool(self.p["mt"]))
        self._extras = {"mt_layer": layer, "host_threads": os.environ.get("OMP_NUM_THREADS") or os.cpu_count(),
                        "native": native}
        self._session = _Solve(handle, A, reorder=self.p["reorder"])
        tree, t_tree, cpu_tree = None, 0.0, 0.0
        if not native:
            # What cuDSS needs derived from the ordering (its ND tree, in cuDSS's layout) is timed
            # here, from the ordering's output alone, and counted as t_tree_s in the total.
            with Stopwatch() as watch:
                perm, tree, source = self._tree(A, perm, ordering)
            t_tree, cpu_tree = watch.wall, watch.cpu
            self._extras.update(tree_source=source, nd_levels=tree_levels(tree) if tree is not None else None)
        t_reorder, t_symbolic = self._session.analyze(perm, tree)
        self._extras.update(t_cudss_reorder_s=t_reorder, t_cudss_symbolic_s=t_symbolic)
        if native:
            # cuDSS's reordering is the ordering step; its symbolic factorization the analysis.
            self._t_order = t_reorder
            return {"t_analyze_s": t_symbolic}
        return {"t_tree_s": t_tree, "t_tree_cpu_s": cpu_tree, "t_analyze_s": t_reorder + t_symbolic}

    def _tree(self, A, perm, ordering) -> tuple[np.ndarray, np.ndarray | None, str]:
        """The (perm, tree) pair handed to cuDSS, and where the tree came from."""
        mode = self.p["tree"]
        own = getattr(ordering, "etree", None) if ordering is not None else None
        if mode == "off":
            return perm, None, "none"
        if own is not None:
            layout = (getattr(ordering, "extras", None) or {}).get("etree_layout", "bfs")
            perm, tree = to_cudss_layout(perm, np.asarray(own), layout)
            return perm, tree, "ordering"
        if mode == "derive":
            # The elimination tree is computed here, not taken from the harness's symbolic
            # analysis (untimed work would otherwise be hidden in the total); the graph is the
            # harness's, already paid for in t_graph_s.
            graph = self.graph if self.graph is not None else _pattern(A)
            perm, tree = derive_nd_tree(graph, perm, DEFAULT_ND_LEVELS)
            return perm, tree, "etree"
        return perm, None, "none"

    def factorize(self, A: sp.csr_matrix) -> float:
        return self._session.factorize(A)

    def solve(self, b: np.ndarray) -> tuple[np.ndarray, float]:
        return self._session.solve(b)

    def factor_stats(self) -> dict:
        s = self._session
        out = {"backend_nnz_L": s.lu_nnz()}
        extras = dict(self._extras, **s.times, cudss_version=cudss_version(), gpu=gpu_name(),
                      nd_nlevels_config=s.config_value("ND_NLEVELS"))
        if self._extras["native"] and self.p["reorder"] in COLUMN_ORDERINGS:
            extras["fill_metrics"] = "none: cuDSS's row permutation for a column ordering does not describe its factor"
        if self._extras["native"]:
            tree = s.partition_tree()
            extras["cudss_tree_nodes"] = int(tree.shape[0])
            extras["cudss_tree_nonzero_nodes"] = int((tree > 0).sum())
        out["extras"] = extras
        return out

    def native_ordering(self) -> dict:
        """cuDSS's REORDERING phase time and the permutation it used (PERM_REORDER_ROW, new -> old:
        its nnz(L) matches LU_NNZ, its inverse's is 40x larger on a 1M grid).

        Not for the column orderings (``colamd``, ``btf_colamd``): there the row permutation cuDSS
        reports does not describe the factor it builds (1M grid: the symmetric nnz(L) of that
        permutation is 3.35e9 against an LU_NNZ of 2.5e8), so no symmetric fill metrics are
        derived from it; the row then has cuDSS's own count (backend_nnz_L) only."""
        if self.p["reorder"] in COLUMN_ORDERINGS:
            return {"t_order_s": self._t_order}
        return {"t_order_s": self._t_order, "perm": self._session.reorder_perm()}

    def release(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()
            self._session = None
            import cupy

            cupy.get_default_memory_pool().free_all_blocks()


def _pattern(A: sp.csr_matrix) -> sp.csr_matrix:
    from ...core.case import symmetric_graph

    return symmetric_graph(A)
