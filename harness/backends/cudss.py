"""The ``cudss`` back-end: NVIDIA cuDSS (0.8 or 1.0) through nvmath-python's low-level binding, on cupy arrays.

Two ways to order (docs/architecture.md, "Back-ends"):

* the ``native`` ordering: cuDSS's own reordering (``reorder=default|amd|nd|...``); its host-side
  reordering is timed as ``t_order_s`` and the permutation it used is read back, so fill is measured
  the same way as for every other ordering;
* any other ordering: our permutation goes in as ``USER_PERM`` (new -> old), with an ND partition
  tree (``USER_ND_PARTITION_TREE`` + ``ND_NLEVELS``) when there is one. Measured on the H200, a
  user permutation without the tree makes cuDSS's symbolic phase ~18x and its factorization ~15x
  slower even for cuDSS's own permutation, so ``tree`` says which tree goes in: ``auto`` the
  ordering's own (``Ordering.nd_tree``; ``patch`` and ``homa`` have one, in either layout:
  permbench/core/ndtree.py), ``derive`` the ordering's own or else one derived from the
  permutation's elimination tree (any ordering), ``off`` none — so results show what the tree is
  worth.

``mt`` plugs in cuDSS's multithreading layer (``libcudss_mtlayer_gomp.so.<major>``, the major of the
cuDSS loaded: .so.0 beside cuDSS 0.8's ``libcudss.so.0``, .so.1 beside 1.0's ``libcudss.so.1``): its
reordering ran 4.5x faster with it on 16 host cores (cuDSS 0.8), so both baselines are reported. ``k`` factorizations: the
first ``FACTORIZATION``, then ``REFACTORIZATION`` with new values on the same pattern.

The library, its warm-up, the timing of each phase and the device session are in
harness/backends/_cudss_session.py; this file is the plug-in: parameters, which tree goes in, what
the row reports. Everything that needs cupy, nvmath or a GPU is imported inside functions: this
module imports on any machine, and ``check()`` says why the back-end is unavailable there.
"""

from __future__ import annotations

import importlib.metadata
import os

import numpy as np
import scipy.sparse as sp

from ...core.case import symmetric_graph
from ...core.ndtree import relayout
from ...core.provenance import loaded_libraries
from . import NumericBackend, Stopwatch, register
from ._cudss_session import (DERIVED_TREE_LEVELS, MT_LAYER_STEM, REORDER_ALGS, Session, availability,
                             cudss_handle, cudss_version, derive_nd_tree, gpu_name, loaded_cudss_library)

TREE_MODES = ("auto", "derive", "off")
#: cuDSS's reorderings that order columns for LU: their reported row permutation is no symmetric ordering.
COLUMN_ORDERINGS = ("colamd", "btf_colamd")


@register
class CuDSS(NumericBackend):
    name = "cudss"
    version = "1"
    description = "NVIDIA cuDSS 0.8/1.0 (nvmath-python, cupy): own reordering or USER_PERM + ND partition tree"
    params = {"k": 1, "reorder": "default", "mt": True, "tree": "auto"}
    choices = {"reorder": tuple(REORDER_ALGS), "tree": TREE_MODES}
    supports_native = True

    @classmethod
    def check(cls) -> tuple[bool, str]:
        return availability()

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
        cudss_handle(bool(self.p["mt"]))  # context, threading layer, warm-up: before the ordering runs

    def analyze(self, A: sp.csr_matrix, perm: np.ndarray | None, ordering) -> dict:
        native = perm is None
        if not native and self.p["reorder"] != "default":
            raise ValueError(f"cudss: reorder={self.p['reorder']} chooses cuDSS's own ordering and applies only "
                             "to the 'native' ordering; a user permutation always goes in as USER_PERM")
        handle, layer = cudss_handle(bool(self.p["mt"]))
        self._extras = {"mt_layer": layer, "host_threads": os.environ.get("OMP_NUM_THREADS") or os.cpu_count(),
                        "native": native}
        self._session = Session(handle, A, reorder=self.p["reorder"])
        tree, t_tree, cpu_tree = None, 0.0, 0.0
        if not native:
            # What cuDSS needs derived from the ordering (its ND tree, in cuDSS's layout) is timed
            # here, from the ordering's output alone, and counted as t_tree_s in the total.
            with Stopwatch() as watch:
                perm, tree, source = self._tree(A, perm, ordering)
            t_tree, cpu_tree = watch.wall, watch.cpu
            self._extras["tree_source"] = source
        t_reorder, t_symbolic = self._session.analyze(perm, tree)
        self._extras.update(t_cudss_reorder_s=t_reorder, t_cudss_symbolic_s=t_symbolic)
        if not native:
            self._extras["nd_nlevels"] = self._session.nd_nlevels  # the ND_NLEVELS cuDSS was given
        if native:
            # cuDSS's reordering is the ordering step; its symbolic factorization the analysis.
            self._t_order = t_reorder
            return {"t_analyze_s": t_symbolic}
        return {"t_tree_s": t_tree, "t_tree_cpu_s": cpu_tree, "t_analyze_s": t_reorder + t_symbolic}

    def _tree(self, A, perm, ordering):
        """The (perm, tree) pair handed to cuDSS, the tree in cuDSS's layout, and where it came from."""
        mode = self.p["tree"]
        own = ordering.nd_tree if ordering is not None else None
        if mode == "off":
            return perm, None, "none"
        if own is not None:
            perm, tree = relayout(perm, own, "reverse_bfs")
            return perm, tree, "ordering"
        if mode == "derive":
            # The elimination tree is computed here, not taken from the harness's symbolic
            # analysis (untimed work would otherwise be hidden in the total); the graph is the
            # harness's, already paid for in t_graph_s.
            graph = self.graph if self.graph is not None else symmetric_graph(A)
            perm, tree = derive_nd_tree(graph, perm, DERIVED_TREE_LEVELS)
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
