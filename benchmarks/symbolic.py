"""asv: permbench's symbolic analysis against CHOLMOD's own, per commit.

On a 250k-vertex triangulated grid ordered by METIS and by AMD (orderings computed once, in
``setup_cache``), it times

* ``SymbolicAnalysis.time_symbolic_factor`` — ``symbolic_factor(graph, perm)``: the symmetric permutation of the
  graph, elimination tree, postorder, column counts and tree statistics (everything the
  ``symbolic`` back-end reports and the budgets use);
* ``CholmodAnalyze.time_cholmod_analyze`` — ``cholmod.analyze(A_perm, mode="supernodal", ordering_method="natural")``
  on the matrix permuted beforehand (untimed): CHOLMOD's own symbolic analysis of the same order;
* ``SymbolicAnalysis.time_postordered_perm`` — the permutation composed with its etree postorder (etree and postorder only).

The first two side by side say how the harness's analysis compares with CHOLMOD's; each has its own
history. Numba's kernels are compiled (or loaded from its cache) in ``setup``, untimed. Without
scikit-sparse the CHOLMOD benchmark skips (``NotImplementedError`` in ``setup``: asv's way).
"""

from __future__ import annotations

from permbench import datasets, orderings
from permbench.core.case import symmetric_graph
from permbench.harness.backends.symbolic import postordered_perm, symbolic_factor, warm_up

CASE = "grid[n=250000]"
ORDERINGS = ["metis", "amd"]


def build_inputs(case_name: str = CASE, ordering_names=ORDERINGS) -> dict:
    """The matrix, its graph and, per ordering, the permutation and the matrix permuted by it."""
    A = datasets.load(case_name).A.tocsr()
    graph = symmetric_graph(A)
    perms, permuted = {}, {}
    for name in ordering_names:
        perm = orderings.create(name).compute(graph, seed=0).perm
        B = A[perm][:, perm].tocsc()
        B.sort_indices()
        perms[name], permuted[name] = perm, B
    return {"graph": graph, "perms": perms, "permuted": permuted}


class _Inputs:
    """Shares one ``setup_cache`` (asv keys it by this function's source line)."""

    params = (ORDERINGS,)
    param_names = ("ordering",)
    timeout = 300

    def setup_cache(self):
        return build_inputs()

    setup_cache.timeout = 600

    def setup(self, inputs, ordering):
        self.graph, self.perm = inputs["graph"], inputs["perms"][ordering]
        self.A_perm = inputs["permuted"][ordering]


class SymbolicAnalysis(_Inputs):
    """permbench's own analysis (``symbolic`` back-end) of the ordering."""

    def setup(self, inputs, ordering):
        super().setup(inputs, ordering)
        warm_up(self.graph.indptr.dtype, self.graph.indices.dtype)  # every kernel timed here: compile or load, untimed

    def time_symbolic_factor(self, inputs, ordering):
        self.symbolic = symbolic_factor(self.graph, self.perm)

    def time_postordered_perm(self, inputs, ordering):
        self.postordered = postordered_perm(self.graph, self.perm)


class CholmodAnalyze(_Inputs):
    """CHOLMOD's symbolic analysis of the same order (the matrix permuted beforehand, natural order)."""

    def setup(self, inputs, ordering):
        try:
            from sksparse import cholmod
        except ImportError as err:
            raise NotImplementedError(f"scikit-sparse not installed: {err}") from None
        super().setup(inputs, ordering)
        self.cholmod = cholmod
        self.time_cholmod_analyze(inputs, ordering)  # loads the library's first-call state, untimed

    def time_cholmod_analyze(self, inputs, ordering):
        self.analysis = self.cholmod.analyze(self.A_perm, mode="supernodal", ordering_method="natural")
