"""METIS nested dissection (METIS_NodeND) through pymetis, which bundles its own METIS."""

import numpy as np

from ..core.case import Ordering
from ..core.libversions import pymetis_metis_version
from . import OrderingBase, register


@register
class Metis(OrderingBase):
    name = "metis"
    description = "METIS nested dissection (NodeND) via pymetis"
    requires = ("pymetis",)
    params = {"seed": -1}  # -1: METIS's default seed

    def library_versions(self):
        import pymetis

        return {"pymetis": pymetis.version, "metis": pymetis_metis_version()}

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        import pymetis

        options = pymetis.Options(seed=self.p["seed"]) if self.p["seed"] >= 0 else None
        adjacency = pymetis.CSRAdjacency(graph.indptr, graph.indices)
        perm, _iperm = pymetis.nested_dissection(adjacency, options=options)
        return Ordering(np.asarray(perm, dtype=np.int64))
