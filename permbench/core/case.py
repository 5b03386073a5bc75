"""The plain values that flow through a run: a matrix case, its graph, an ordering.

Conventions (docs/architecture.md, "Data flow"): ``perm[k]`` is the original index of the unknown eliminated k-th
(new -> old), so the permuted matrix is ``A[perm][:, perm]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .ndtree import NDTree


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


#: An ordering's own statistics (patch counts, phase times, thread counts): JSON values.
StatValue = int | float | str | bool | list | None


@dataclass
class Ordering:
    """What an ordering computes: the permutation, optionally its ND tree, and its own statistics.

    ``perm``: new -> old (module docstring). ``nd_tree``: when the ordering is a nested dissection
    that knows its tree, the node sizes and their layout (core/ndtree.py: the convention for levels
    and layouts); ``perm`` then lists the nodes' vertices block after block in that layout.
    Back-ends that take a tree (cuDSS) read it here. ``stats``: the ordering's own numbers, stored
    in the row's ``ordering_extras`` column for people and reports; never read by a back-end.
    """

    perm: np.ndarray
    nd_tree: NDTree | None = None
    stats: dict[str, StatValue] = field(default_factory=dict)

    def __post_init__(self):
        if self.nd_tree is not None and not isinstance(self.nd_tree, NDTree):
            raise TypeError(f"Ordering.nd_tree must be a permbench.core.ndtree.NDTree (node sizes and their "
                            f"layout) or None, got {type(self.nd_tree).__name__}")


#: Relative tolerance of value symmetry: |a_ij − a_ji| ≤ SYMMETRY_RTOL · max|a|.
SYMMETRY_RTOL = 1e-12
#: How ``symmetrize=`` makes a matrix symmetric (a dataset parameter of matrix files).
SYMMETRIZE = ("none", "lower", "upper", "average")


def prepare_matrix(A, source: str, symmetrize: str = "none") -> tuple[sp.csr_matrix, dict]:
    """Check and normalize a matrix read from ``source``: square, symmetric, finite, no explicit zeros.

    A matrix whose values (or pattern: a one-sided ``general`` file) are not symmetric is an
    InputError naming its largest asymmetric entry, unless ``symmetrize`` says how to make it
    symmetric (``lower``/``upper``: mirror that triangle; ``average``: (A + Aᵀ)/2), which is then
    recorded. Explicit zeros are dropped (counted), empty rows counted, and non-positive diagonal
    entries recorded (``nonpositive_diagonal``), so that a later ``not_spd`` can name them.
    """
    if not sp.issparse(A):
        raise InputError(f"{source}: expected a sparse matrix, got {type(A).__name__}")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"{source}: matrix is {A.shape[0]}x{A.shape[1]}; a square matrix is required")
    if A.shape[0] == 0:
        raise InputError(f"{source}: matrix is empty (0x0)")
    if symmetrize not in SYMMETRIZE:
        raise InputError(f"{source}: symmetrize={symmetrize!r}; expected one of {', '.join(SYMMETRIZE)}")
    A = sp.csr_matrix(A, dtype=np.float64, copy=True)
    A.sum_duplicates()
    notes: dict = {}
    if not np.all(np.isfinite(A.data)):
        raise InputError(f"{source}: matrix has {int((~np.isfinite(A.data)).sum())} NaN/Inf values")
    if symmetrize == "none":
        worst = largest_asymmetry(A)
        if worst is not None:
            i, j, a_ij, a_ji, tol = worst
            raise InputError(
                f"{source}: matrix is not symmetric: entry ({i + 1}, {j + 1}) = {a_ij:.17g} but ({j + 1}, {i + 1}) = "
                f"{a_ji:.17g} (1-based; the largest of the asymmetric pairs, tolerance {tol:.3g}); a Cholesky "
                f"benchmark needs a symmetric matrix — pass symmetrize=lower|upper|average to make it one")
    else:
        notes["value_asymmetry"] = float(abs(A - A.T).max()) if A.nnz else 0.0
        lower, upper = sp.tril(A, -1), sp.triu(A, 1)
        diag = sp.diags(A.diagonal())
        A = {"lower": lower + lower.T, "upper": upper + upper.T, "average": (lower + upper.T + upper + lower.T) / 2}[
            symmetrize] + diag
        A = sp.csr_matrix(A)
    notes["symmetrized"] = False if symmetrize == "none" else symmetrize
    zeros = int((A.data == 0).sum())
    if zeros:
        A.eliminate_zeros()
    notes["explicit_zeros_dropped"] = zeros
    notes["empty_rows"] = int((np.diff(A.indptr) == 0).sum())
    diagonal = A.diagonal()
    bad = np.flatnonzero(diagonal <= 0)
    if len(bad):
        notes["nonpositive_diagonal"] = {"count": int(len(bad)), "first_row": int(bad[0]) + 1,
                                         "value": float(diagonal[bad[0]])}
    A.sort_indices()
    return A, notes


def largest_asymmetry(A: sp.csr_matrix):
    """(i, j, a_ij, a_ji, tolerance) of the largest |a_ij − a_ji| above the tolerance, or None."""
    scale = float(abs(A).max()) if A.nnz else 0.0
    tol = SYMMETRY_RTOL * scale
    D = (A - A.T).tocoo()
    over = np.abs(D.data) > tol
    if not over.any():
        return None
    k = int(np.argmax(np.where(over, np.abs(D.data), -1)))
    i, j = int(D.row[k]), int(D.col[k])
    return i, j, float(A[i, j]), float(A[j, i]), tol


def diagonal_reason(meta: dict) -> str:
    """What a not_spd reason adds when the matrix has a zero or negative diagonal entry."""
    bad = (meta or {}).get("nonpositive_diagonal")
    if not bad:
        return ""
    kind = "zero (or absent)" if bad["value"] == 0 else "negative"
    return (f"; the matrix has {bad['count']} diagonal entr{'y' if bad['count'] == 1 else 'ies'} <= 0, the first "
            f"({bad['first_row']}, {bad['first_row']}) = {bad['value']:g} ({kind}; 1-based): an SPD matrix has a "
            f"positive diagonal")


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
