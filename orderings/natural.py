"""The natural (input) ordering: the baseline every fill-reducing ordering must beat."""

import numpy as np

from ..core.case import Ordering
from . import OrderingBase, register


@register
class Natural(OrderingBase):
    name = "natural"
    description = "identity permutation (the matrix as given)"

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        return Ordering(np.arange(graph.shape[0], dtype=np.int64))
