"""``homa``: the C++ reference implementation of the patch ordering (homapy 0.1.0), run as a peer.

homapy is the reference code of Zarebavani et al., "Fast Sparse Matrix Permutation for Mesh-Based
Direct Solvers" (SIGGRAPH 2026); docs/architecture.md ("The patch ordering") summarizes the
algorithm. Registering it here measures the reference and our ``patch`` ordering side by side,
in one run, through the same harness.

It is optional (``pip install 'permbench[reference]'``). Its extension module links against the
CUDA 12 runtime (cudart, cuBLAS, cuSPARSE, cuSOLVER, nvJitLink) even though the ordering itself
runs on the CPU; the ``nvidia-*-cu12`` wheels ship those libraries but put them where the dynamic
loader does not look, so :func:`import_homapy` loads them first, in dependency order, and nobody
has to set ``LD_LIBRARY_PATH``. It also keeps homapy from putting its bundled MKL into the global
symbol namespace, which broke CHOLMOD in the same process (DEVELOPERS.md has the details).

What was measured about the reference (homapy 0.1.0, on this project's 2-core CPU machine):

* ``perm`` is new -> old, like every ordering here: on a 200x200 triangulated grid nnz(L) is
  2.08 M for ``perm`` and 16.8 M for its inverse.
* It reads only the off-diagonal pattern (with or without the diagonal, upper triangle or both:
  the same permutation). A graph without off-diagonal entries is rejected ("GreedyPatcher:
  invalid graph"), so :meth:`Homa.supports` refuses it instead of faking an identity.
* With ``compute_etree`` the permutation lists the nodes of the ND tree in reverse breadth-first
  order (leaves first, root separator last) and the tree comes back as node sizes in that order,
  2^(L+1) - 1 of them: ``Ordering.nd_tree`` in the ``reverse_bfs`` layout (permbench/core/ndtree.py).
  Without it the same blocks come in postorder and no tree is returned; nnz(L) is the same either way.
* With more than one OpenMP thread and large enough graphs (90k vertices: yes, 10k: no) the
  default greedy patcher runs its parallel variant, which claims vertices racily: the permutation
  changes from run to run (nnz(L) on a 300x300 grid ranged over 9.6-11.4 M in 10 runs with 2
  threads; identical with 1 thread). ``parallel_patcher`` in the stats says which one ran.
* ``patch_method="lloyd"`` always runs on the GPU in this build (``use_gpu=False`` does not
  change it) and aborts the whole process without one: :meth:`Homa.supports` refuses it there.
* Its bundled MKL (libmkl_rt, which its extension always loads) puts MKL's BLAS/LAPACK and Intel
  OpenMP's ``GOMP_*`` symbols into the process's global namespace the first time anything calls it
  (threadpoolctl's survey of the loaded libraries does). A library loaded after that binds its BLAS
  calls there: CHOLMOD imported afterwards factorized a 40k-vertex grid 16x slower, on MKL, while
  threadpoolctl reported OpenBLAS. Libraries loaded before keep their own BLAS (Python loads
  extensions with RTLD_NOW), so numeric back-ends must be imported before this ordering runs.
* It logs at info level to stdout (spdlog, no switch to silence it); :func:`~permbench.core.native_io.c_stdout_captured`
  diverts that log for the duration of the call and the statistics it prints (patch count, levels,
  separator size, its own stage times) become the ordering's stats.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import types

import numpy as np
import scipy.sparse as sp

from ..core.case import MatrixCase, Ordering
from ..core.ndtree import NDTree
from ..core.libversions import homapy_metis_version
from ..core.native_io import c_stdout_captured
from . import OrderingBase, register

INSTALL_HINT = "pip install 'permbench[reference]'"
#: (nvidia-* wheel folder, library) in dependency order: each one's needs are already loaded.
CUDA_RUNTIME_LIBS = (
    ("cuda_runtime", "libcudart.so.12"),
    ("nvjitlink", "libnvJitLink.so.12"),
    ("cublas", "libcublasLt.so.12"),
    ("cublas", "libcublas.so.12"),
    ("cusparse", "libcusparse.so.12"),
    ("cusolver", "libcusolver.so.11"),
)
#: homapy takes int32 CSR arrays.
MAX_NNZ = 2**31 - 1
NO_EDGES = "homapy rejects a graph without off-diagonal entries (GreedyPatcher: invalid graph)"


# --------------------------------------------------------------------------------------------------
# Making homapy import
# --------------------------------------------------------------------------------------------------


def _nvidia_roots() -> list[str]:
    """Folders of the ``nvidia`` namespace package, where the nvidia-*-cu12 wheels install."""
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    return list(spec.submodule_search_locations or []) if spec else []


def _find_lib(package: str, soname: str) -> str:
    """Path of ``soname`` from the nvidia-``package`` wheel, or the bare name for the system loader."""
    for root in _nvidia_roots():
        path = os.path.join(root, package, "lib", soname)
        if os.path.exists(path):
            return path
    return soname  # a system-wide CUDA 12 toolkit on the loader's path serves as well


def preload_cuda_runtime() -> list[str]:
    """Load the CUDA 12 libraries homapy's extension needs; return those not found.

    A library already loaded satisfies a later NEEDED entry with its soname whatever its scope, so
    RTLD_LOCAL is enough, and it keeps their symbols out of the process's global namespace.
    """
    missing = []
    for package, soname in CUDA_RUNTIME_LIBS:
        try:
            ctypes.CDLL(_find_lib(package, soname), mode=os.RTLD_LOCAL)
        except OSError:
            missing.append(soname)
    return missing


def _keep_mkl_private() -> None:
    """Skip homapy's ``_dll.setup()``, which loads its bundled MKL with RTLD_GLOBAL.

    That setup serves homapy's PARDISO solver front end, which permbench does not use; with MKL in
    the global namespace, every library loaded later binds its BLAS calls to MKL instead of the
    system BLAS, and a CHOLMOD factorization in the same process aborted the process ("Intel oneMKL
    FATAL ERROR: Cannot load libmkl_gnu_thread.so.2"). The extension module reaches MKL and libiomp5
    through its own RPATH ($ORIGIN/../homapy.libs), privately, which is all the ordering needs.
    ``from . import _dll`` in homapy/__init__.py takes a module already in sys.modules.
    """
    if "homapy" not in sys.modules and "homapy._dll" not in sys.modules:
        private = types.ModuleType("homapy._dll", "permbench: homapy's RTLD_GLOBAL preload, skipped")
        private.setup = lambda: None
        sys.modules["homapy._dll"] = private


def import_homapy():
    """Import homapy after preloading its CUDA runtime; raise ImportError saying what is missing."""
    if importlib.util.find_spec("homapy") is None:
        raise ImportError(f"homapy not installed ({INSTALL_HINT})")
    missing = preload_cuda_runtime()
    _keep_mkl_private()
    try:
        homapy = importlib.import_module("homapy")
    except ImportError as err:
        if missing:
            raise ImportError(
                f"homapy installed but its CUDA 12 runtime libraries are missing: {', '.join(missing)} "
                f"({INSTALL_HINT} installs them from the nvidia-*-cu12 wheels; import error: {err})"
            ) from err
        raise ImportError(f"homapy installed but does not import: {err}") from err
    _pin_mkl_threading_layer(homapy.__file__)
    return homapy


@functools.lru_cache(maxsize=1)
def _homapy_once():
    """import_homapy() for compute(): its library loads cost 0.4 ms a call, inside the timed ordering."""
    return import_homapy()


def _bundled(homapy_file: str, pattern: str) -> list[str]:
    """Libraries matching ``pattern`` in the wheel's homapy.libs folder (auditwheel's place)."""
    return sorted(glob.glob(os.path.join(os.path.dirname(homapy_file), os.pardir, "homapy.libs", pattern)))


@functools.lru_cache(maxsize=None)
def _pin_mkl_threading_layer(homapy_file: str) -> None:
    """Make homapy's MKL use the Intel OpenMP layer it ships, before anything calls MKL.

    MKL picks its threading layer at its first call; with GNU OpenMP in the process (SuiteSparse's
    CHOLMOD loads libgomp) it picks the GNU layer, which homapy does not ship, and aborts the
    process ("Cannot load libmkl_gnu_thread.so.2"). threadpoolctl's survey of the loaded libraries
    is such a first call, and the harness makes it in every cell.
    """
    for path in _bundled(homapy_file, "libmkl_rt.so*"):
        ctypes.CDLL(path).MKL_Set_Threading_Layer(0)  # MKL_THREADING_INTEL


def cuda_device_count() -> int:
    """Number of CUDA devices the runtime sees; 0 without a driver (cudaGetDeviceCount fails)."""
    try:
        cudart = ctypes.CDLL(_find_lib("cuda_runtime", "libcudart.so.12"))
    except OSError:
        return 0
    count = ctypes.c_int(0)
    return count.value if cudart.cudaGetDeviceCount(ctypes.byref(count)) == 0 else 0


# --------------------------------------------------------------------------------------------------
# Threads and the reference's log
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _openmp(homapy_file: str):
    """The OpenMP runtime homapy ships and runs on (Intel's libiomp5 in homapy.libs), or None."""
    # By soname first: it reuses a libiomp5 already in the process (MKL's, when the pardiso
    # back-end loaded it). Opening homapy's copy by path next to it loads a second OpenMP runtime,
    # and Intel's aborts the process ("OMP: Error #15").
    try:
        return ctypes.CDLL("libiomp5.so")
    except OSError:
        libs = _bundled(homapy_file, "libiomp5*.so*")
        return ctypes.CDLL(libs[0]) if libs else None


@contextlib.contextmanager
def _openmp_threads(omp, threads: int):
    """Run with ``threads`` OpenMP threads (0: leave the runtime's setting); yield the count in use.

    A direct omp_set_num_threads instead of threadpoolctl: that one scans every loaded library on
    each call (milliseconds), which would land inside the timed ordering.
    """
    if omp is None:
        yield None
        return
    before = omp.omp_get_max_threads()
    if threads > 0:
        omp.omp_set_num_threads(threads)
    try:
        yield omp.omp_get_max_threads()
    finally:
        omp.omp_set_num_threads(before)


#: stats key -> (pattern in the reference's log, conversion). Times are printed in ms.
_LOG_STATS = {
    "n_patches": (r"(?:patches=|-> )(\d+)(?: patches| time=)", int),
    "parallel_patcher": (r"use_parallel= (true|false)", lambda s: s == "true"),
    "levels": (r"final number of levels is: (\d+)", int),
    "separator_vertices": (r"separator_vertices=(\d+)", int),
    "quotient_edges": (r"q_edges=(\d+)", int),
    "t_patch_s": (r"compute_ordering total=[\d.]+ ms patcher=([\d.]+) ms", lambda s: float(s) / 1e3),
    "t_quotient_s": (r"total=[\d.]+ ms quotient=([\d.]+) ms", lambda s: float(s) / 1e3),
    "t_decompose_s": (r"quotient=[\d.]+ ms decompose=([\d.]+) ms", lambda s: float(s) / 1e3),
    "t_local_s": (r"decompose=[\d.]+ ms local=([\d.]+) ms", lambda s: float(s) / 1e3),
    "t_assemble_s": (r"local=[\d.]+ ms assemble=([\d.]+) ms", lambda s: float(s) / 1e3),
    "t_etree_s": (r"etree_reorder=([\d.]+) ms", lambda s: float(s) / 1e3),
    "t_reference_total_s": (r"compute_ordering total=([\d.]+) ms", lambda s: float(s) / 1e3),
}


def parse_log(text: str) -> dict:
    """The statistics the reference logs about one ordering; keys it did not print are left out."""
    stats = {}
    for key, (pattern, convert) in _LOG_STATS.items():
        match = re.search(pattern, text)
        if match:
            stats[key] = convert(match.group(1))
    return stats


# --------------------------------------------------------------------------------------------------
# The registry entry
# --------------------------------------------------------------------------------------------------


def _off_diagonal_nnz(A: sp.spmatrix) -> int:
    return int(A.nnz - np.count_nonzero(A.diagonal()))


@register
class Homa(OrderingBase):
    name = "homa"
    version = "1"
    description = "the C++ reference of the patch ordering (homapy 0.1.0, Zarebavani et al. 2026)"
    requires = ("homapy",)
    provides_nd_tree = True
    # Its greedy patcher claims vertices racily with more than one thread on large graphs.
    deterministic = False
    # The reference's options (homapy.Options) with its defaults, except compute_etree (see below).
    params = {
        # Largest patch, in vertices (step 0 of the patch algorithm: orderings/patch/patcher.py).
        "patch_size": 512,
        # Nested-dissection depth cap: L = min(nd_levels, floor(log2 #patches)).
        "nd_levels": 9,
        # quotient: separators from bisecting the patch graph, shrunk to a vertex cover (as
        # orderings/patch/separators.py does);
        # direct: METIS's vertex separator on the real subgraph at every node; auto: direct near
        # the top for some sizes (the two direct_separator_* thresholds; -1: its built-in rule).
        "separator_method": "quotient",
        # Per-block ordering. amd: identity for blocks up to 256 vertices (measured: 256 kept as
        # they come, 289 reordered), AMD above; metis: METIS NodeND; none: identity.
        "local_method": "amd",
        # greedy: BFS growth from increasing ids (racy parallel variant with >1 thread on large
        # graphs); metis: METIS k-way parts; lloyd: Lloyd clustering, GPU only in this build.
        "patch_method": "greedy",
        "direct_separator_max_level": -1,
        "direct_separator_min_nodes": -1,
        "lloyd_iters": 2,
        "lloyd_seed_method": "random",
        "lloyd_seed": 42,
        # The reference's default is False; True returns the ND tree that cuDSS needs to run at
        # full speed with a user permutation (harness/backends/cudss.py), with the same fill.
        "compute_etree": True,
    }
    choices = {
        "separator_method": ("quotient", "direct", "auto"),
        "local_method": ("amd", "metis", "none"),
        "patch_method": ("greedy", "metis", "lloyd"),
        "lloyd_seed_method": ("random", "morton", "fps"),
    }

    importer = staticmethod(import_homapy)  # its ImportError names what to install

    def supports(self, case: MatrixCase) -> tuple[bool, str]:
        if _off_diagonal_nnz(case.A) == 0:
            return False, NO_EDGES
        return self._supports_size_and_patcher(case.A.nnz)

    def _supports_size_and_patcher(self, nnz: int) -> tuple[bool, str]:
        if nnz > MAX_NNZ:
            return False, f"homapy takes int32 CSR arrays; the graph has {nnz} entries (> 2^31 - 1)"
        if self.p["patch_method"] == "lloyd" and cuda_device_count() == 0:
            return False, "homapy's lloyd patcher runs on a CUDA GPU only (it aborts the process without one)"
        return True, ""

    def library_versions(self):
        return {"homapy": importlib.metadata.version("homapy"), "metis": homapy_metis_version()}

    def options(self, homapy):
        """The reference's Options object for these parameters."""
        return homapy.Options(**self.p)

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        homapy = _homapy_once()
        # The harness's graph has no diagonal, so nnz == 0 is the cheap test; supports() does the full one.
        ok, reason = (False, NO_EDGES) if graph.nnz == 0 else self._supports_size_and_patcher(graph.nnz)
        if not ok:
            raise ValueError(f"homa: {reason}")
        options = self.options(homapy)
        with _openmp_threads(_openmp(homapy.__file__), threads) as threads, c_stdout_captured() as log:
            perm, etree = homapy.compute_ordering(graph, options)
        stats = {"threads": threads, **parse_log(log[0])}
        if not self.p["compute_etree"]:
            return Ordering(np.asarray(perm, dtype=np.int64), None, stats)
        tree = NDTree(np.asarray(etree, dtype=np.int64), "reverse_bfs")
        stats.setdefault("levels", tree.levels)
        return Ordering(np.asarray(perm, dtype=np.int64), tree, stats)
