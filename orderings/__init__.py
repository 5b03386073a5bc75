"""The registry of ordering strategies: one file per ordering, registered with ``@register``.

An ordering sees only the symmetric, diagonal-free CSR graph of the matrix (built once by the
harness) and, when the dataset has them, one coordinate row per vertex, plus the cell's thread
budget (``threads``). It returns an
:class:`~permbench.core.case.Ordering`; the harness times ``compute`` and validates the
permutation the same way for every entry.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..core.case import MatrixCase, Ordering
from ..core.plugins import Plugin, Registry

#: Every module of this folder not named ``_*`` is imported on first lookup (core/plugins.py).
registry = Registry("ordering", __name__)
register = registry.register


class OrderingBase(Plugin):
    """Base class of every ordering plug-in."""

    #: True when the ordering returns a nested-dissection tree (``Ordering.nd_tree``).
    provides_nd_tree = False
    #: True for the solver's own ordering, computed inside the back-end (see ``native``).
    native = False
    #: False when the permutation can change from call to call with more than one thread
    #: (shown in ``orderings list`` and in every row's ``deterministic`` column).
    deterministic = True
    #: Side of the k x k grid the harness orders once, untimed, before a cell's repeats (so that
    #: first-call costs stay out of t_order_s): large enough to take the code paths real inputs
    #: take (harness/child.py).
    warmup_grid = 48

    def warm_up(self, graph: sp.csr_matrix, *, coords: np.ndarray | None = None, threads: int = 1) -> Ordering:
        """The harness's untimed first call on the ``warmup_grid`` grid (harness/child.py). An
        ordering whose large inputs run code that this grid does not reach overrides it."""
        return self.compute(graph, coords=coords, seed=0, threads=threads)

    def supports(self, case: MatrixCase) -> tuple[bool, str]:
        """Whether this ordering applies to ``case``; the reason is recorded when it does not."""
        return True, ""

    def compute(self, graph: sp.csr_matrix, *, coords: np.ndarray | None = None, seed: int = 0,
                threads: int = 1) -> Ordering:
        """Order ``graph``. ``threads`` is the cell's thread budget (``--threads``), the same for
        every ordering and back-end of a run; an ordering that can use threads uses exactly these."""
        raise NotImplementedError


def create(spec) -> OrderingBase:
    return registry.create(spec)
