"""permbench: measure fill-reducing orderings of sparse SPD matrices before Cholesky factorization.

The types every plug-in needs live in `permbench/core/`; the rest in the repository's `harness/`,
`orderings/` and `datasets/` folders, installed as `permbench.harness`, `permbench.orderings` and
`permbench.datasets`.
"""

__version__ = "0.1.0"
