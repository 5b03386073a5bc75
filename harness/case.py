"""The plain values that flow through a run: a matrix case, its graph, an ordering.

Conventions (DESIGN §3): ``perm[k]`` is the original index of the unknown eliminated k-th
(new -> old), so the permuted matrix is ``A[perm][:, perm]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


class InputError(ValueError):
    """Bad input data: the message names the source and what was expected."""


class InvalidPermutation(ValueError):
    """An ordering returned something that is not a bijection of 0..n-1."""


@dataclass
class MatrixCase:
    """A symmetric sparse matrix (CSR, both triangles stored) and what is known about it."""

    name: str
    A: sp.csr_matrix
    coords: np.ndarray | None = None  # (n_vertices, d) when the matrix comes from a mesh
    faces: np.ndarray | None = None  # (n_faces, 3) triangles or (n_cells, 4) tetrahedra
    meta: dict = field(default_factory=dict)
    #: The symmetric, diagonal-free graph of A, once the harness has built it (timed: t_graph_s).
    graph: sp.csr_matrix | None = None

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def dofs_per_vertex(self) -> int:
        if self.coords is None or len(self.coords) == 0:
            return 1
        return max(1, self.n // len(self.coords))


@dataclass
class Ordering:
    """What an ordering computes: the permutation, optionally an ND tree, and its own statistics.

    ``etree``: node sizes of a nested-dissection tree in reverse breadth-first order (all leaves
    first, the root separator last), the layout cuDSS's ``USER_ND_PARTITION_TREE`` expects; the
    permutation must list the nodes' vertices in that same order.
    """

    perm: np.ndarray
    etree: np.ndarray | None = None
    extras: dict = field(default_factory=dict)


def prepare_matrix(A, source: str) -> tuple[sp.csr_matrix, dict]:
    """Check and normalize a matrix read from ``source``: square, symmetric pattern, no explicit zeros.

    Returns the cleaned CSR matrix (sorted indices, float64) and what was done to it, for the
    result row: an asymmetric pattern is symmetrized (flag ``symmetrized``); explicit zeros are
    dropped (count ``explicit_zeros_dropped``); empty rows are counted (the matrix is then
    singular, which the numeric back-ends report as ``not_spd``).
    """
    if not sp.issparse(A):
        raise InputError(f"{source}: expected a sparse matrix, got {type(A).__name__}")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"{source}: matrix is {A.shape[0]}x{A.shape[1]}; a square matrix is required")
    if A.shape[0] == 0:
        raise InputError(f"{source}: matrix is empty (0x0)")
    A = sp.csr_matrix(A, dtype=np.float64, copy=True)
    A.sum_duplicates()
    notes: dict = {}
    if not np.all(np.isfinite(A.data)):
        raise InputError(f"{source}: matrix has {int((~np.isfinite(A.data)).sum())} NaN/Inf values")
    zeros = int((A.data == 0).sum())
    if zeros:
        A.eliminate_zeros()
    notes["explicit_zeros_dropped"] = zeros
    pattern = A.copy()
    pattern.data[:] = 1.0
    asym = pattern - pattern.T
    asym.eliminate_zeros()
    symmetrized = asym.nnz > 0
    if symmetrized:
        # Keep the values of the given entries; mirror missing ones from the other triangle.
        missing_t = (pattern.T - pattern.multiply(pattern.T)).tocsr()
        missing_t.eliminate_zeros()
        A = (A + A.T.multiply(missing_t)).tocsr()
    else:
        values_asym = abs(A - A.T)
        values_asym.eliminate_zeros()
        notes["value_asymmetry"] = float(values_asym.max()) if values_asym.nnz else 0.0
    notes["symmetrized"] = bool(symmetrized)
    notes["empty_rows"] = int((np.diff(A.indptr) == 0).sum())
    A.sort_indices()
    return A, notes


def symmetric_graph(A: sp.spmatrix) -> sp.csr_matrix:
    """The adjacency graph of A: pattern of A + Aᵀ without the diagonal, CSR, int32, sorted.

    Built once per matrix and handed to every ordering, so graph preparation costs the same for all.
    """
    P = sp.csr_matrix(A, copy=True)
    P.data = np.ones_like(P.data, dtype=np.int8)
    G = (P + P.T).tocsr()
    G.setdiag(0)
    G.eliminate_zeros()
    G.sort_indices()
    G.data = np.ones(G.nnz, dtype=np.int8)
    G.indices = G.indices.astype(np.int32, copy=False)
    G.indptr = G.indptr.astype(np.int64 if G.nnz >= 2**31 else np.int32, copy=False)
    return G


def validate_perm(perm, n: int, who: str = "ordering") -> np.ndarray:
    """Return perm as int64 if it is a bijection of 0..n-1, else raise InvalidPermutation."""
    p = np.asarray(perm)
    if p.ndim != 1 or p.shape[0] != n:
        raise InvalidPermutation(f"{who}: permutation has shape {p.shape}, expected ({n},)")
    if not np.issubdtype(p.dtype, np.integer):
        raise InvalidPermutation(f"{who}: permutation has dtype {p.dtype}, expected integers")
    p = p.astype(np.int64, copy=False)
    if n and (p.min() < 0 or p.max() >= n):
        raise InvalidPermutation(f"{who}: permutation values outside 0..{n - 1}")
    counts = np.bincount(p, minlength=n)
    if np.any(counts != 1):
        dup = int(np.flatnonzero(counts > 1)[0])
        raise InvalidPermutation(f"{who}: permutation is not a bijection (index {dup} appears {counts[dup]} times)")
    return p


def inverse_perm(perm: np.ndarray) -> np.ndarray:
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.shape[0], dtype=perm.dtype)
    return inv
