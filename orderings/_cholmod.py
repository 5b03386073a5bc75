"""Shared by the ``cholmod-*`` orderings: CHOLMOD's own orderings through scikit-sparse."""

import numpy as np
import scipy.sparse as sp

from ..core.case import Ordering
from ..core.libversions import cholmod_version
from . import OrderingBase


class CholmodOrdering(OrderingBase):
    """Order with ``cholmod_analyze`` and read back its permutation.

    scikit-sparse exposes no ordering-only call, so ``t_order`` of these entries also contains
    CHOLMOD's simplicial symbolic analysis (etree and column counts: a small share next to the
    ordering itself). The method is always named explicitly: scikit-sparse 0.4 and 0.5 differ in
    their defaults.
    """

    requires = ("sksparse",)
    method = ""

    def library_versions(self):
        import importlib.metadata

        return {"scikit-sparse": importlib.metadata.version("scikit-sparse"), "cholmod": cholmod_version()}

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        from sksparse import cholmod

        n = graph.shape[0]
        # Symbolic analysis only looks at the pattern; a unit diagonal makes it a valid input.
        A = (sp.csc_matrix(graph, dtype=np.float64) + sp.identity(n, format="csc")).tocsc()
        factor = cholmod.analyze(A, mode="simplicial", ordering_method=self.method)
        return Ordering(np.asarray(factor.P(), dtype=np.int64))
