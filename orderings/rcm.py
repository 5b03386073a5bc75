"""Reverse Cuthill-McKee (scipy.sparse.csgraph): a bandwidth-reducing baseline."""

import numpy as np
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ..core.case import Ordering
from . import OrderingBase, register


@register
class RCM(OrderingBase):
    name = "rcm"
    description = "reverse Cuthill-McKee (scipy.sparse.csgraph)"

    def library_versions(self):
        import scipy

        return {"scipy": scipy.__version__}

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        return Ordering(reverse_cuthill_mckee(graph, symmetric_mode=True).astype(np.int64))
