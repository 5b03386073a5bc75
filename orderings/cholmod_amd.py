"""CHOLMOD's own 'amd' ordering (via scikit-sparse), distinct from the `amd` registry entry."""

from . import register
from ._cholmod import CholmodOrdering


@register
class CholmodAmd(CholmodOrdering):
    name = "cholmod-amd"
    method = "amd"
    description = "CHOLMOD's amd ordering (cholmod_analyze, ordering_method='amd')"
