"""The solver's own ordering: computed inside the back-end's analysis, not by permbench.

``-o native -b cudss`` measures cuDSS's default reordering, ``-b "cudss[reorder=amd]"`` its AMD,
``-b cholmod`` CHOLMOD's default strategy; back-ends without their own ordering skip the cell.
The back-end reports its reordering time and the permutation it used, so the same fill metrics
are recorded as for every other ordering.
"""

from . import OrderingBase, register


@register
class Native(OrderingBase):
    name = "native"
    native = True
    description = "the back-end's own ordering (cuDSS reordering, CHOLMOD default, PARDISO iparm[1])"

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        raise TypeError("the native ordering is computed by the back-end, not by permbench")
