"""Plug-ins for the runner and isolation tests: small datasets and orderings that misbehave on purpose.

Cells run in spawned children, which do not see classes registered in the test process's memory,
so the plug-ins live in this importable module and runs name it (``RunConfig(plugins=[MODULE])``
or ``permbench run --plugins plugins_for_tests``): the parent and every child import it, and
importing registers them. In the test process, the ``test_plugins`` fixture (test_isolation.py,
test_runner.py) registers them for one test and removes them afterwards.

Set PERMBENCH_TEST_PIDDIR to a folder to have ``test-sleep`` record the pids of its child and of a
grandchild it starts, so a test can check that the whole process group was killed.
"""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import scipy.sparse as sp

from permbench import datasets, orderings
from permbench.harness import backends
from permbench.core.case import Ordering
from permbench.core.ndtree import NDTree

MODULE = "plugins_for_tests"


def grid_laplacian(k: int, shift: float = 1.0) -> sp.csr_matrix:
    """5-point Laplacian of a k×k grid plus shift·I: SPD for shift > 0."""
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    return (sp.kronsum(T, T) + shift * sp.identity(k * k)).tocsr()


@datasets.register
class TinyGrid(datasets.DatasetBase):
    name = "test-tinygrid"
    params = {"k": 12, "shift": 1.0}

    def load(self):
        k = self.p["k"]
        xy = np.stack(np.meshgrid(np.arange(k), np.arange(k), indexing="ij"), -1).reshape(-1, 2) / k
        return datasets.matrix_case(self.spec.canonical(), grid_laplacian(k, self.p["shift"]), "test",
                                    coords=xy, meta={"n_vertices": k * k})


@datasets.register
class BrokenDataset(datasets.DatasetBase):
    name = "test-broken"

    def load(self):
        raise OSError("disk on fire")


@orderings.register
class Exploding(orderings.OrderingBase):
    name = "test-exploding"

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        raise RuntimeError("kaboom")


@orderings.register
class NotABijection(orderings.OrderingBase):
    name = "test-duplicate"

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        perm = np.arange(graph.shape[0])
        perm[0] = 1
        return Ordering(perm)


@orderings.register
class TreeTooSmall(orderings.OrderingBase):
    """A valid permutation with an ND tree that leaves one vertex out."""

    name = "test-bad-tree"

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        n = graph.shape[0]
        return Ordering(np.arange(n), nd_tree=NDTree(np.array([n - 1]), "postorder"))


@orderings.register
class Missing(orderings.OrderingBase):
    name = "test-missing"
    requires = ("no_such_module_anywhere",)


@orderings.register
class Stamp(orderings.OrderingBase):
    """Reversed order; its stats say which process computed it and when (to tell re-runs apart)."""

    name = "test-stamp"
    params = {"seconds": 0.0}
    warmup = False

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        time.sleep(self.p["seconds"])
        return Ordering(np.arange(graph.shape[0])[::-1].copy(),
                        stats={"seed": seed, "pid": os.getpid(), "time_ns": time.time_ns()})


@orderings.register
class Threads(orderings.OrderingBase):
    """Natural order; its stats report the thread budget the harness handed it."""

    name = "test-threads"
    warmup = False

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        return Ordering(np.arange(graph.shape[0]), stats={"threads_given": threads})


@orderings.register
class Crash(orderings.OrderingBase):
    """Kills its own process: ``abort`` (SIGABRT, as a failed assertion in C does) or ``segv``."""

    name = "test-crash"
    params = {"how": "abort"}
    choices = {"how": ("abort", "segv")}
    warmup = False

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        if self.p["how"] == "segv":
            import ctypes

            ctypes.string_at(0)  # reads address 0: SIGSEGV
        os.abort()


@orderings.register
class Sleep(orderings.OrderingBase):
    """Hangs: sleeps, with a grandchild process sleeping too (a timeout must kill both)."""

    name = "test-sleep"
    params = {"seconds": 60.0}
    warmup = False

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        grandchild = subprocess.Popen(["sleep", str(self.p["seconds"])])
        piddir = os.environ.get("PERMBENCH_TEST_PIDDIR")
        if piddir:
            with open(os.path.join(piddir, f"{os.getpid()}.pids"), "w") as f:
                f.write(f"{os.getpid()} {grandchild.pid}\n")
        time.sleep(self.p["seconds"])
        return Ordering(np.arange(graph.shape[0]))


@orderings.register
class Hog(orderings.OrderingBase):
    """Allocates and touches memory in 64 MiB steps up to ``mib`` (the cap must stop it first)."""

    name = "test-hog"
    params = {"mib": 4096}
    warmup = False

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        blocks = []
        for _ in range(self.p["mib"] // 64):
            blocks.append(np.ones(64 * 2**20 // 8))
            time.sleep(0.01)
        return Ordering(np.arange(graph.shape[0]))


@backends.register
class AbortingBackend(backends.Backend):
    """A back-end that crashes its process (a segfaulting solver library)."""

    name = "test-abort-backend"
    numeric = False

    def run(self, case, perm, ordering, symbolic):
        os.abort()


@backends.register
class DenseCholesky(backends.NumericBackend):
    """A numeric back-end for small matrices: numpy's dense Cholesky of the permuted matrix."""

    name = "test-dense"

    def analyze(self, A, perm, ordering):
        t0 = time.perf_counter()
        self._perm = perm
        self._inv = np.argsort(perm)
        return time.perf_counter() - t0

    def factorize(self, A):
        t0 = time.perf_counter()
        try:
            self._L = np.linalg.cholesky(A[self._perm][:, self._perm].toarray())
        except np.linalg.LinAlgError as err:
            raise backends.NotSPD(f"dense Cholesky: {err}") from None
        return time.perf_counter() - t0

    def solve(self, b):
        import scipy.linalg as la

        t0 = time.perf_counter()
        y = la.solve_triangular(self._L, b[self._perm], lower=True)
        x = la.solve_triangular(self._L.T, y, lower=False)
        return x[self._inv], time.perf_counter() - t0

    def factor_stats(self):
        return {"backend_nnz_L": int(np.count_nonzero(self._L))}


@backends.register
class DenseWithTree(DenseCholesky):
    """test-dense that first derives something from the ordering (as cuDSS derives its ND tree),
    taking ``tree_seconds``: the harness must charge it in t_tree_s and in the total."""

    name = "test-dense-tree"
    params = {"k": 1, "tree_seconds": 0.2}

    def analyze(self, A, perm, ordering):
        with backends.Stopwatch() as tree:
            time.sleep(self.p["tree_seconds"])
        return {"t_tree_s": tree.wall, "t_tree_cpu_s": tree.cpu, "t_analyze_s": super().analyze(A, perm, ordering)}


DATASETS = [TinyGrid, BrokenDataset]
ORDERINGS = [Exploding, NotABijection, TreeTooSmall, Missing, Stamp, Crash, Sleep, Hog, Threads]
BACKENDS = [AbortingBackend, DenseCholesky, DenseWithTree]


def emit_then_abort(payload, emit, step):
    """An isolation target: streams ``payload`` messages, announces a step, then dies (SIGABRT)."""
    for i in range(payload):
        emit(i)
    step({"name": "about to abort"})
    os.abort()


def emit_and_finish(payload, emit, step):
    """An isolation target that ends normally, reporting its thread settings."""
    from threadpoolctl import threadpool_info

    emit({"env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")},
          "pools": [p["num_threads"] for p in threadpool_info()], "payload": payload})
