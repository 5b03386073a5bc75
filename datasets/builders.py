"""Matrices built from a mesh: the cotangent (P1 finite-element) system and the graph Laplacian + I.

Both are assembled on the same set of mesh edges, so their patterns are identical.

``cotan``: A = M + t·L, the implicit-smoothing / heat-flow system. L is the P1 stiffness matrix
(the cotangent Laplacian for triangles, its 3D analogue for tetrahedra) in the positive
semidefinite sign convention: off-diagonal −(cot α + cot β)/2 on a triangle mesh, rows summing
to 0. M is the mass matrix, t = (mean edge length)², which makes the two terms comparable for any
mesh scale. A is SPD whenever every vertex lies in a non-degenerate element.

Two mass matrices (``mass=``):

* ``consistent`` (default): the exact P1 mass, area/12 off the diagonal (volume/20 for tets).
  Every mesh edge carries a positive mass entry, so the pattern of A is exactly the mesh's
  edge graph, independent of rounding.
* ``lumped``: barycentric lumping, area/3 (volume/4) per vertex. The pattern of A is then the
  pattern of L, which drops edges whose cotangent weight vanishes: on the right-triangle ``grid``
  every diagonal edge has cot 90° + cot 90° = 0 (A becomes the 5-point stencil), on the Kuhn
  ``tetgrid`` the face and body diagonals vanish (7-point stencil), and on planar cyclic quads
  (the ``torus``) the weight is zero up to rounding noise. That is why it is not the default.

libigl (``igl.cotmatrix``/``igl.massmatrix``, wheel 2.6.3) computes the same matrices (with the
opposite sign for L) and the tests compare against it, but it is not used here: on a 10⁶-vertex
tetrahedral grid (5.8 M tetrahedra) it took 18.8 s for the stiffness and 9.0 s for the consistent
mass (1.3 s + 2.2 s on the 10⁶-vertex triangle grid; wall clock on a shared 2-core machine),
where loading the whole ``tetgrid[n=1000000]`` dataset here takes about 3.6 s of CPU time.
The per-element formulas, the edge numbering and the assembly are small numba loops.

Degenerate elements (zero area or volume relative to their edge lengths, see
:func:`degenerate_elements`) would put 0/0 into the cotangents. Mesh datasets drop them before
building (and count them); the builders also give them zero weight, so no NaN/Inf can appear.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

#: An element is degenerate when its measure is below this fraction of (longest edge)^dim.
DEGENERATE_REL_TOL = 1e-12

_TRI_PAIRS = np.array([[1, 2], [2, 0], [0, 1]])  # the edge opposite local vertex 0, 1, 2
_TET_PAIRS = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])


def element_kind(F: np.ndarray) -> str:
    """'tri' for an (m, 3) array of triangles, 'tet' for an (m, 4) array of tetrahedra."""
    F = np.asarray(F)
    if F.ndim != 2 or F.shape[1] not in (3, 4):
        raise ValueError(f"elements must be an (m, 3) or (m, 4) index array, got shape {F.shape}")
    return "tri" if F.shape[1] == 3 else "tet"


def _pairs(F: np.ndarray) -> np.ndarray:
    return _TRI_PAIRS if F.shape[1] == 3 else _TET_PAIRS


def _as_3d(V: np.ndarray) -> np.ndarray:
    """Planar coordinates get z = 0 so one cross-product formula serves 2D and 3D meshes."""
    V = np.asarray(V, dtype=np.float64)
    if V.ndim != 2 or V.shape[1] not in (2, 3):
        raise ValueError(f"vertex coordinates must be an (n, 2) or (n, 3) array, got shape {V.shape}")
    if V.shape[1] == 3:
        return np.ascontiguousarray(V)
    out = np.zeros((V.shape[0], 3))
    out[:, : V.shape[1]] = V
    return out


def _checked_elements(F: np.ndarray, n_vertices: int) -> np.ndarray:
    """F as contiguous int64, its indices checked: the compiled loops below do no bounds checks."""
    F = np.ascontiguousarray(F, dtype=np.int64)
    element_kind(F)
    if F.size and (F.min() < 0 or F.max() >= n_vertices):
        raise ValueError(f"element indices must lie in 0..{n_vertices - 1}, found {F.min()}..{F.max()}")
    return F


@numba.njit(cache=True)
def _triangle_geometry(V, F, rel_tol):  # pragma: no cover - compiled
    """Per triangle: K[:, c] = −cot(corner c)/2 for the edge opposite c, area, degenerate flag."""
    m = F.shape[0]
    K = np.zeros((m, 3))
    area = np.zeros(m)
    degenerate = np.zeros(m, np.bool_)
    p = np.empty((3, 3))
    for e in range(m):
        for c in range(3):
            for d in range(3):
                p[c, d] = V[F[e, c], d]
        longest_sq = 0.0
        for c in range(3):
            q = (c + 1) % 3
            s = 0.0
            for d in range(3):
                s += (p[q, d] - p[c, d]) ** 2
            longest_sq = max(longest_sq, s)
        u0, u1, u2 = p[1, 0] - p[0, 0], p[1, 1] - p[0, 1], p[1, 2] - p[0, 2]
        w0, w1, w2 = p[2, 0] - p[0, 0], p[2, 1] - p[0, 1], p[2, 2] - p[0, 2]
        double_area = np.sqrt((u1 * w2 - u2 * w1) ** 2 + (u2 * w0 - u0 * w2) ** 2 + (u0 * w1 - u1 * w0) ** 2)
        if not double_area > 2.0 * rel_tol * longest_sq:  # also catches NaN
            degenerate[e] = True
            continue
        area[e] = 0.5 * double_area
        for c in range(3):
            a, b = (c + 1) % 3, (c + 2) % 3
            dot = 0.0
            for d in range(3):
                dot += (p[a, d] - p[c, d]) * (p[b, d] - p[c, d])
            K[e, c] = -0.5 * dot / double_area  # cot = u·w / |u × w|
    return K, area, degenerate


@numba.njit(cache=True)
def _tetrahedron_geometry(V, F, pairs, rel_tol):  # pragma: no cover - compiled
    """Per tetrahedron: K[:, k] = |T|·∇λ_a·∇λ_b for local pair k = (a, b), volume, degenerate flag."""
    m = F.shape[0]
    K = np.zeros((m, 6))
    volume = np.zeros(m)
    degenerate = np.zeros(m, np.bool_)
    p = np.empty((4, 3))
    e = np.empty((4, 3))  # e[1..3] = p[1..3] − p[0]
    g = np.empty((4, 3))
    for t in range(m):
        for c in range(4):
            for d in range(3):
                p[c, d] = V[F[t, c], d]
        longest_sq = 0.0
        for k in range(6):
            s = 0.0
            for d in range(3):
                s += (p[pairs[k, 0], d] - p[pairs[k, 1], d]) ** 2
            longest_sq = max(longest_sq, s)
        for c in range(1, 4):
            for d in range(3):
                e[c, d] = p[c, d] - p[0, d]
        # g[i] = e[j] × e[k] for (i, j, k) cyclic in 1..3, then divided by det = e1·(e2 × e3).
        for i in range(1, 4):
            j, k = i % 3 + 1, (i + 1) % 3 + 1
            g[i, 0] = e[j, 1] * e[k, 2] - e[j, 2] * e[k, 1]
            g[i, 1] = e[j, 2] * e[k, 0] - e[j, 0] * e[k, 2]
            g[i, 2] = e[j, 0] * e[k, 1] - e[j, 1] * e[k, 0]
        det = e[1, 0] * g[1, 0] + e[1, 1] * g[1, 1] + e[1, 2] * g[1, 2]
        vol = abs(det) / 6.0
        if not vol > rel_tol * longest_sq ** 1.5:
            degenerate[t] = True
            continue
        volume[t] = vol
        for d in range(3):
            g[1, d] /= det
            g[2, d] /= det
            g[3, d] /= det
            g[0, d] = -(g[1, d] + g[2, d] + g[3, d])
        for k in range(6):
            a, b = pairs[k, 0], pairs[k, 1]
            K[t, k] = vol * (g[a, 0] * g[b, 0] + g[a, 1] * g[b, 1] + g[a, 2] * g[b, 2])
    return K, volume, degenerate


def element_geometry(V: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, measure, degenerate) per element: P1 stiffness entries for each local pair, area or volume.

    Triangles: K[:, c] = −cot(angle at corner c)/2 for the edge opposite c (pairs ``_TRI_PAIRS``).
    Tetrahedra: K[:, k] = |T|·∇λ_a·∇λ_b for local pair k (``_TET_PAIRS``). An element whose
    area (volume) is not above ``DEGENERATE_REL_TOL`` × (longest edge)² (³) is flagged and gets
    K = 0 and measure 0: no division by ~0, so no NaN/Inf ever reaches the matrix.
    """
    V3 = _as_3d(V)
    F = _checked_elements(F, len(V3))
    if F.shape[1] == 3:
        return _triangle_geometry(V3, F, DEGENERATE_REL_TOL)
    return _tetrahedron_geometry(V3, F, _TET_PAIRS, DEGENERATE_REL_TOL)


def degenerate_elements(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Boolean mask of elements with (relatively) zero area or volume, a repeated corner included."""
    return element_geometry(V, F)[2]


@numba.njit(cache=True)
def _number_edges(F, pairs, n):  # pragma: no cover - compiled
    """Unique edges of the elements: CSR of the upper triangle (i < j, sorted) and each slot's edge.

    A slot is (element e, local pair k), numbered e·n_pairs + k. A counting sort of the slots by
    their smaller vertex, then a marker array per row: O(slots + n), where np.unique on int64
    keys would sort 35 M keys for a 10⁶-vertex tetrahedral grid. Each row's few columns are then
    insertion-sorted so the matrices come out in canonical CSR order.
    """
    m, n_pairs = F.shape[0], pairs.shape[0]
    slots = m * n_pairs
    start = np.zeros(n + 1, np.int64)
    for e in range(m):
        for k in range(n_pairs):
            start[min(F[e, pairs[k, 0]], F[e, pairs[k, 1]]) + 1] += 1
    for r in range(n):
        start[r + 1] += start[r]
    fill = start[:-1].copy()
    order = np.empty(slots, np.int64)
    for e in range(m):
        for k in range(n_pairs):
            r = min(F[e, pairs[k, 0]], F[e, pairs[k, 1]])
            order[fill[r]] = e * n_pairs + k
            fill[r] += 1
    seen_in_row = np.full(n, -1, np.int64)
    edge_at = np.empty(n, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    cols = np.empty(slots, np.int64)
    edge_of_slot = np.empty(slots, np.int64)
    sorted_id = np.empty(slots, np.int64)
    n_edges = 0
    for r in range(n):
        first = n_edges
        for q in range(start[r], start[r + 1]):
            slot = order[q]
            e, k = slot // n_pairs, slot % n_pairs
            j = max(F[e, pairs[k, 0]], F[e, pairs[k, 1]])
            if seen_in_row[j] != r:
                seen_in_row[j] = r
                edge_at[j] = n_edges
                cols[n_edges] = j
                n_edges += 1
            edge_of_slot[slot] = edge_at[j]
        for a in range(first + 1, n_edges):  # insertion sort of the row, tracking where ids go
            col, b = cols[a], a
            while b > first and cols[b - 1] > col:
                cols[b] = cols[b - 1]
                b -= 1
            cols[b] = col
        for a in range(first, n_edges):
            sorted_id[edge_at[cols[a]]] = a
        indptr[r + 1] = n_edges
    for slot in range(slots):
        edge_of_slot[slot] = sorted_id[edge_of_slot[slot]]
    return indptr, cols[:n_edges].copy(), edge_of_slot


@numba.njit(cache=True)
def _symmetric_csr(indptr, cols, off_diagonal, diagonal):  # pragma: no cover - compiled
    """Full symmetric CSR from the sorted upper triangle: each row is lower part, diagonal, upper part."""
    n = indptr.shape[0] - 1
    count = np.ones(n + 1, np.int64)
    count[n] = 0
    for r in range(n):
        count[r] += indptr[r + 1] - indptr[r]
        for q in range(indptr[r], indptr[r + 1]):
            count[cols[q]] += 1
    out_indptr = np.zeros(n + 1, np.int64)
    for r in range(n):
        out_indptr[r + 1] = out_indptr[r] + count[r]
    fill = out_indptr[:-1].copy()
    out_indices = np.empty(out_indptr[n], np.int64)
    out_data = np.empty(out_indptr[n])
    for r in range(n):  # rows < r have already appended row r's lower part, in increasing order
        out_indices[fill[r]] = r
        out_data[fill[r]] = diagonal[r]
        fill[r] += 1
        for q in range(indptr[r], indptr[r + 1]):
            c = cols[q]
            out_indices[fill[r]] = c
            out_data[fill[r]] = off_diagonal[q]
            fill[r] += 1
            out_indices[fill[c]] = r
            out_data[fill[c]] = off_diagonal[q]
            fill[c] += 1
    return out_indptr, out_indices, out_data


@numba.njit(cache=True)
def _edge_lengths(V, indptr, cols):  # pragma: no cover - compiled
    out = np.empty(cols.shape[0])
    for r in range(indptr.shape[0] - 1):
        for q in range(indptr[r], indptr[r + 1]):
            s = 0.0
            for d in range(V.shape[1]):
                s += (V[r, d] - V[cols[q], d]) ** 2
            out[q] = np.sqrt(s)
    return out


@numba.njit(cache=True)
def _symmetric_row_sums(indptr, cols, off_diagonal):  # pragma: no cover - compiled
    """Row sums of the symmetric matrix whose upper triangle is given (diagonal excluded)."""
    out = np.zeros(indptr.shape[0] - 1)
    for r in range(indptr.shape[0] - 1):
        for q in range(indptr[r], indptr[r + 1]):
            out[r] += off_diagonal[q]
            out[cols[q]] += off_diagonal[q]
    return out


@numba.njit(cache=True)
def _sum_to_vertices(F, element_values, n):  # pragma: no cover - compiled
    """Per vertex, the sum of a per-element value over the elements that contain it."""
    out = np.zeros(n)
    for e in range(F.shape[0]):
        for c in range(F.shape[1]):
            out[F[e, c]] += element_values[e]
    return out


@numba.njit(cache=True)
def _sum_element_values(edge_of_slot, element_values, n_pairs, n_edges):  # pragma: no cover - compiled
    out = np.zeros(n_edges)
    for slot in range(edge_of_slot.shape[0]):
        out[edge_of_slot[slot]] += element_values[slot // n_pairs]
    return out


class MeshEdges:
    """The unique edges of a mesh, numbered row by row (upper triangle, i < j, sorted).

    ``edge_of_slot[e * n_pairs + k]`` is the edge of local pair k of element e, so per-element
    values (shape (m, n_pairs), element-major) add up per edge with one bincount.
    """

    def __init__(self, n_vertices: int, F: np.ndarray):
        F = _checked_elements(F, n_vertices)
        self.n = int(n_vertices)
        self.n_pairs = len(_pairs(F))
        self.indptr, self.cols, self.edge_of_slot = _number_edges(F, _pairs(F), self.n)

    @property
    def count(self) -> int:
        return len(self.cols)

    def sum_per_edge(self, slot_values: np.ndarray) -> np.ndarray:
        """Add up per-(element, local pair) values into one value per unique edge."""
        return np.bincount(self.edge_of_slot, weights=np.ravel(slot_values), minlength=self.count)

    def sum_element_values(self, element_values: np.ndarray) -> np.ndarray:
        """Per edge, the sum of a per-element value over the elements that contain the edge."""
        values = np.ascontiguousarray(element_values, dtype=np.float64)
        return _sum_element_values(self.edge_of_slot, values, self.n_pairs, self.count)

    def row_sums(self, off_diagonal: np.ndarray) -> np.ndarray:
        """Row sums of the symmetric matrix with these edge values and a zero diagonal."""
        return _symmetric_row_sums(self.indptr, self.cols, np.ascontiguousarray(off_diagonal, dtype=np.float64))

    def lengths(self, V: np.ndarray) -> np.ndarray:
        return _edge_lengths(np.ascontiguousarray(V, dtype=np.float64), self.indptr, self.cols)

    def rows(self) -> np.ndarray:
        """The row (smaller vertex) of every edge, in edge order."""
        return np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.indptr))

    def symmetric(self, off_diagonal: np.ndarray, diagonal: np.ndarray) -> sp.csr_matrix:
        """The symmetric CSR matrix with these values on every edge (both triangles) and diagonal."""
        off = np.ascontiguousarray(np.broadcast_to(off_diagonal, (self.count,)), dtype=np.float64)
        diag = np.ascontiguousarray(np.broadcast_to(diagonal, (self.n,)), dtype=np.float64)
        indptr, indices, data = _symmetric_csr(self.indptr, self.cols, off, diag)
        index = np.int32 if len(indices) < 2**31 and self.n < 2**31 else np.int64
        A = sp.csr_matrix((data, indices.astype(index), indptr.astype(index)), shape=(self.n, self.n))
        A.has_sorted_indices = True
        return A


def _stiffness(V, F, edges: MeshEdges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L per edge, L diagonal, element measures); the diagonal is minus the row sum, so rows sum to 0."""
    K, measure, _ = element_geometry(V, F)
    L_off = edges.sum_per_edge(K)
    return L_off, -edges.row_sums(L_off), measure


def cotan_system(V: np.ndarray, F: np.ndarray, mass: str = "consistent",
                 edges: MeshEdges | None = None) -> tuple[sp.csr_matrix, dict]:
    """A = M + t·L with t = (mean edge length)²; returns A and the parameters to record."""
    if mass not in ("consistent", "lumped"):
        raise ValueError(f"mass must be 'consistent' or 'lumped', got {mass!r}")
    n = len(V)
    F = _checked_elements(F, n)
    edges = edges or MeshEdges(n, F)
    L_off, L_diag, measure = _stiffness(V, F, edges)
    mean_edge = float(edges.lengths(V).mean())
    t = mean_edge**2
    k = F.shape[1]  # vertices per element
    if mass == "consistent":
        # P1 mass: |T|·(1 + δ_ab)/((k)(k+1)) — area/6 and area/12 for triangles, vol/10 and vol/20 for tets.
        M_off = edges.sum_element_values(measure / (k * (k + 1)))
        M_diag = _sum_to_vertices(F, 2.0 * measure / (k * (k + 1)), n)
    else:
        M_off = 0.0
        M_diag = _sum_to_vertices(F, measure / k, n)
    A = edges.symmetric(M_off + t * L_off, M_diag + t * L_diag)
    return A, {"matrix": "cotan", "mass": mass, "t": t, "mean_edge_length": mean_edge}


def cotan_laplacian(V: np.ndarray, F: np.ndarray) -> sp.csr_matrix:
    """L alone (positive semidefinite convention, rows sum to 0), mostly for tests and analysis."""
    edges = MeshEdges(len(V), F)
    L_off, L_diag, _ = _stiffness(V, F, edges)
    return edges.symmetric(L_off, L_diag)


def graph_system(n_vertices: int, F: np.ndarray, edges: MeshEdges | None = None) -> tuple[sp.csr_matrix, dict]:
    """Graph Laplacian of the mesh edges + I (unit weights): SPD, diagonal = degree + 1."""
    edges = edges or MeshEdges(n_vertices, F)
    minus_degree = edges.row_sums(-np.ones(edges.count))
    A = edges.symmetric(-np.ones(edges.count), 1.0 - minus_degree)
    return A, {"matrix": "graph"}


def graph_system_from_pattern(A: sp.spmatrix) -> sp.csr_matrix:
    """Graph Laplacian + I of the off-diagonal pattern of A (symmetrized): values for pattern-only files."""
    P = sp.coo_matrix(A)
    off = P.row != P.col
    rows = np.concatenate([P.row[off], P.col[off]])
    cols = np.concatenate([P.col[off], P.row[off]])
    G = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=A.shape)  # sums the mirrored duplicates
    G.data[:] = -1.0
    degree = np.diff(G.indptr)
    return (G + sp.diags(degree + 1.0, format="csr")).tocsr()


def build_matrix(V: np.ndarray, F: np.ndarray, kind: str = "cotan",
                 mass: str = "consistent") -> tuple[sp.csr_matrix, dict]:
    """The matrix a mesh dataset loads to: ``cotan`` (M + t·L) or ``graph`` (graph Laplacian + I)."""
    F = _checked_elements(F, len(V))
    if kind == "cotan":
        return cotan_system(V, F, mass)
    if kind == "graph":
        return graph_system(len(V), F)
    raise ValueError(f"matrix must be 'cotan' or 'graph', got {kind!r}")
