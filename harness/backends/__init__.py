"""Solver back-ends: one file each, registered with ``@register``.

Every back-end turns (matrix, validated permutation) into metrics. Numeric back-ends keep the
phases separate, as SuiteSparse does: ``analyze`` (symbolic, given the permutation), ``factorize``
(numeric; may be called again with new values on the same pattern), ``solve``; each returns the
time it measured with the right clock. :meth:`NumericBackend.run` drives them the same way for all.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..case import MatrixCase, Ordering
from ..plugins import Plugin, Registry

MODULES = ["symbolic", "cholmod", "cudss", "pardiso"]

registry = Registry("back-end", __name__, MODULES)
register = registry.register


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

    def analyze(self, A: sp.csr_matrix, perm: np.ndarray, ordering: Ordering) -> float:
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
        A = case.A
        k = max(1, int(self.p.get("k", 1)))
        rng = np.random.default_rng(0)
        b = rng.standard_normal(A.shape[0])
        try:
            t_analyze = self.analyze(A, perm, ordering)
            factor_times, solve_times = [], []
            residual = float("nan")
            for i in range(k):
                Ai = refactor_values(A, i)
                factor_times.append(self.factorize(Ai))
                x, t_solve = self.solve(b)
                solve_times.append(t_solve)
                if i == 0:
                    residual = float(np.linalg.norm(A @ x - b) / np.linalg.norm(b))
            out = {
                "t_analyze_s": t_analyze,
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
            self.release()

def create(spec) -> Backend:
    return registry.create(spec)
