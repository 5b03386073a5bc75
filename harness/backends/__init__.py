"""Solver back-ends: one file each, registered with ``@register``.

Every back-end turns (matrix, validated permutation) into metrics. Numeric back-ends keep the
phases separate, as SuiteSparse does: ``analyze`` (symbolic, given the permutation), ``factorize``
(numeric; may be called again with new values on the same pattern), ``solve``; each returns the
time it measured with the right clock. :meth:`NumericBackend.run` drives them the same way for all.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...core.case import MatrixCase, Ordering
from ...core.plugins import Plugin, Registry

#: Every module of this folder not named ``_*`` is imported on first lookup (core/plugins.py).
registry = Registry("back-end", __name__)
register = registry.register


class Stopwatch:
    """Times one region: ``wall`` (perf_counter) and ``cpu`` (process_time, i.e. all the process's
    threads). Back-ends time their phases with it; every region's CPU time also goes into the
    class ledger, so that ``NumericBackend.run`` charges a phase exactly the CPU time of the
    regions whose wall time the phase reports."""

    ledger = 0.0
    regions = 0

    def __enter__(self):
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._t
        self.cpu = time.process_time() - self._c
        Stopwatch.ledger += self.cpu
        Stopwatch.regions += 1


def _with_cpu(call, *args):
    """(call's result, CPU seconds of its Stopwatch regions — or of the whole call if it has none)."""
    Stopwatch.ledger, Stopwatch.regions = 0.0, 0
    c0 = time.process_time()
    result = call(*args)
    return result, (Stopwatch.ledger if Stopwatch.regions else time.process_time() - c0)


class NotSPD(Exception):
    """The numeric factorization found the matrix not positive definite."""


class Backend(Plugin):
    numeric: ClassVar[bool] = True
    #: Whether the back-end can order the matrix itself (the ``native`` ordering): then ``run`` is
    #: called with ``perm=None`` and returns its reordering time as ``t_order_s`` (NaN when the API
    #: does not separate it from the analysis) and the permutation it used as ``perm``.
    supports_native: ClassVar[bool] = False

    def run(self, case: MatrixCase, perm: np.ndarray, ordering: Ordering, symbolic) -> dict:
        raise NotImplementedError

    def prepare(self) -> None:
        """Load and initialize native libraries, untimed, before any ordering of the unit runs: a
        library an ordering loads can take process-wide resources a solver needs later (the patch
        ordering's private METIS namespaces use up the static TLS that cuDSS's OpenMP threading
        layer needs to load). Failures are left to ``run`` to report."""

    def provenance(self) -> dict:
        """What this back-end loaded (BLAS, library versions, device) — stored with results."""
        return {}


def refactor_values(A: sp.csr_matrix, i: int) -> sp.csr_matrix:
    """The i-th new matrix of a repeated factorization: same pattern, diagonal scaled by 1 + i/1000.

    Increasing a positive diagonal keeps an SPD matrix SPD, and changes every factor entry.
    """
    if i == 0:
        return A
    B = A.copy()
    B.setdiag(A.diagonal() * (1.0 + i / 1000.0))
    return B


class NumericBackend(Backend):
    """A back-end with separate analyze / factorize / solve phases; ``k`` factorizations per run."""

    params = {"k": 1}

    #: The harness's symmetric, diagonal-free graph of A (paid for in t_graph_s), set by ``run``
    #: for back-ends that derive something from the ordering (cuDSS's ND tree).
    graph: sp.csr_matrix | None = None

    def analyze(self, A: sp.csr_matrix, perm: np.ndarray, ordering: Ordering) -> float | dict:
        """The analysis' time; or a dict ``{"t_analyze_s", "t_tree_s", "t_tree_cpu_s"}`` when the
        back-end first derives something from the ordering (timed apart, counted in the total)."""
        raise NotImplementedError

    def factorize(self, A: sp.csr_matrix) -> float:
        raise NotImplementedError

    def solve(self, b: np.ndarray) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def factor_stats(self) -> dict:
        """Statistics the solver reports about its factor (e.g. its own nnz count)."""
        return {}

    def release(self) -> None:
        """Free the factor (called after every run, also after a failure)."""

    def native_ordering(self) -> dict:
        """After ``analyze(A, None, None)``: the back-end's own permutation (``perm``, new -> old)
        and its reordering time (``t_order_s``, NaN when it is inside the analysis)."""
        raise NotImplementedError(f"{self.name} has no native ordering")

    def run(self, case: MatrixCase, perm: np.ndarray, ordering: Ordering, symbolic) -> dict:
        """Drive the phases; each phase's wall and CPU time (``t_<phase>_cpu_s``, all threads of
        the process) come from the back-end's Stopwatch regions."""
        A = case.A
        k = max(1, int(self.p.get("k", 1)))
        rng = np.random.default_rng(0)
        b = rng.standard_normal(A.shape[0])
        self.graph = getattr(case, "graph", None)
        try:
            analysis, cpu_analyze = _with_cpu(self.analyze, A, perm, ordering)
            phases = dict(analysis) if isinstance(analysis, dict) else {"t_analyze_s": analysis}
            phases["t_analyze_cpu_s"] = cpu_analyze - phases.get("t_tree_cpu_s", 0.0)
            factor_times, solve_times = [], []
            residual = float("nan")
            for i in range(k):
                Ai = refactor_values(A, i)
                t_factor, cpu = _with_cpu(self.factorize, Ai)
                factor_times.append(t_factor)
                if i == 0:
                    phases["t_factor_cpu_s"] = cpu
                (x, t_solve), cpu = _with_cpu(self.solve, b)
                if i == 0:
                    phases["t_solve_cpu_s"] = cpu
                solve_times.append(t_solve)
                if i == 0:
                    residual = float(np.linalg.norm(A @ x - b) / np.linalg.norm(b))
            out = {
                **phases,
                "t_factor_s": factor_times[0],
                "t_solve_s": solve_times[0],
                "t_refactor_median_s": float(np.median(factor_times[1:])) if k > 1 else float("nan"),
                "t_factor_sum_s": float(np.sum(factor_times)),
                "t_solve_sum_s": float(np.sum(solve_times)),
                "k": k,
                "residual": residual,
            }
            out.update(self.factor_stats())
            if perm is None:
                out.update(self.native_ordering())
            return out
        finally:
            self.graph = None
            self.release()

def create(spec) -> Backend:
    return registry.create(spec)
