"""CAMD: SuiteSparse's constrained approximate minimum degree, called directly in libcamd.

Like plain AMD (``permbench.orderings.amd``) no maintained Python binding exposes it, so this calls
``camd_l_order`` from the system's libcamd with ctypes. CHOLMOD's nesdis uses CAMD the same way to
order a nested-dissection tree: every vertex gets its tree node's position as its constraint set,
so sets are eliminated in that order while minimum degree still sees the whole graph (vertices
next to a separator are eliminated late, and separators are ordered on their Schur complement).
"""

from __future__ import annotations

import ctypes
import functools
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ...core.native_io import load_system_library
from ..amd import minimum_degree_order


@functools.lru_cache(maxsize=1)
def _libcamd():
    lib = load_system_library("camd", "libcamd.so.2", "libsuitesparse-dev")
    fn = lib.camd_l_order
    i64p = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
    f64p = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
    fn.argtypes = [ctypes.c_int64, i64p, i64p, i64p, f64p, f64p, i64p]
    fn.restype = ctypes.c_int64
    return lib


def camd_order(graph: sp.csr_matrix, constraint: np.ndarray, dense: float = 10.0,
               aggressive: bool = True) -> np.ndarray:
    """CAMD permutation (new -> old) of a symmetric pattern given as CSR (diagonal ignored).

    ``constraint[i]`` in 0..n-1 is the set of vertex i: all of set 0 is ordered first, then set 1,
    and so on; inside a set, by approximate minimum degree.
    """
    n = graph.shape[0]
    constraint = np.ascontiguousarray(constraint, dtype=np.int64)
    if constraint.shape != (n,) or (n and (constraint.min() < 0 or constraint.max() >= n)):
        raise ValueError(f"camd_order: constraint must have shape ({n},) with values in 0..{n - 1}")
    return minimum_degree_order(_libcamd().camd_l_order, graph, dense, aggressive, constraint)


class _Pattern(NamedTuple):
    """The three CSR fields the minimum-degree call reads (no scipy matrix: its format checks
    hold the GIL, and this is called from the parallel local step)."""

    shape: tuple
    indptr: np.ndarray
    indices: np.ndarray


def camd_order_csr(indptr: np.ndarray, indices: np.ndarray, constraint: np.ndarray, dense: float = 10.0,
                   aggressive: bool = True) -> np.ndarray:
    """:func:`camd_order` on raw CSR arrays (int64, symmetric pattern, constraints in 0..n-1)."""
    n = indptr.shape[0] - 1
    constraint = np.ascontiguousarray(constraint, dtype=np.int64)
    return minimum_degree_order(_libcamd().camd_l_order, _Pattern((n, n), indptr, indices), dense, aggressive,
                                constraint)
