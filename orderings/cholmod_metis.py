"""CHOLMOD's own 'metis' ordering (via scikit-sparse), distinct from the `metis` registry entry."""

from . import register
from ._cholmod import CholmodOrdering


@register
class CholmodMetis(CholmodOrdering):
    name = "cholmod-metis"
    method = "metis"
    description = "CHOLMOD's metis ordering (cholmod_analyze, ordering_method='metis')"
