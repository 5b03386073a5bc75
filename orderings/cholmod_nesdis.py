"""CHOLMOD's own 'nesdis' ordering (via scikit-sparse), distinct from the `nesdis` registry entry."""

from . import register
from ._cholmod import CholmodOrdering


@register
class CholmodNesdis(CholmodOrdering):
    name = "cholmod-nesdis"
    method = "nesdis"
    description = "CHOLMOD's nesdis ordering (cholmod_analyze, ordering_method='nesdis')"
