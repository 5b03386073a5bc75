"""The ``symbolic`` back-end: fill, flops and elimination-tree statistics without numerics.

Every metric of docs/architecture.md ("Metric definitions") follows from the elimination tree and the column counts of L, which
take near-linear time (CSparse's ``cs_etree``, ``cs_post`` and ``cs_counts``, Davis 2006 ch. 4),
so this back-end is the reference for fill and the memory guard before numeric back-ends.

Kernels are plain numba functions (``cache=True``) over CSR arrays. They take the *full*
symmetric pattern (both triangles, as ``symmetric_graph`` builds it) and the permutation: one pass
renumbers it, feeding the entries above the diagonal straight into the etree and storing only those
below it, which is all the column counts read. Diagonal entries are skipped, so the matrix itself
can stand in for its graph.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

from ...core.case import symmetric_graph
from . import Backend, register


# --------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _etree_climb(i, k, ancestor, parent):
    """Liu's etree step for entry (i, k), i < k: climb from i to its subtree root, linking it to k.

    Every node passed is pointed at k (path compression, as CSparse's cs_etree).
    """
    while i != -1 and i < k:
        inext = ancestor[i]
        ancestor[i] = k
        if inext == -1:
            parent[i] = k
        i = inext


@numba.njit(cache=True)
def _inverse(perm, dtype_like):
    inv = np.empty(perm.shape[0], dtype=dtype_like.dtype)
    for k in range(perm.shape[0]):
        inv[perm[k]] = k
    return inv


@numba.njit(cache=True)
def permuted_lower_and_etree(indptr, indices, perm):
    """One pass over the graph: the strictly lower pattern of ``A[perm][:, perm]`` and its etree.

    ``graph`` holds both triangles; row ``perm[k]`` of it, renumbered, is row/column k of the
    permuted matrix. Its entries i > k are kept (column k below the diagonal: what the column counts
    read); its entries i < k drive Liu's elimination-tree algorithm right away, so the upper
    triangle is never stored. Returns (lower_ptr, lower_idx, parent, n_upper) with node indices
    in the graph's integer type (int32 for graphs below 2^31 entries: half the memory traffic);
    ``n_upper`` (entries above the diagonal) lets the caller check the pattern is symmetric.
    """
    n = perm.shape[0]
    inv = _inverse(perm, indices)
    lower_ptr = np.empty(n + 1, dtype=np.int64)
    lower_idx = np.empty(indptr[n] // 2 + 1, dtype=indices.dtype)
    parent = np.full(n, -1, dtype=indices.dtype)
    ancestor = np.full(n, -1, dtype=indices.dtype)
    lower_ptr[0] = 0
    q = 0
    n_upper = 0
    for k in range(n):
        old = perm[k]
        for p in range(indptr[old], indptr[old + 1]):
            i = inv[indices[p]]
            if i > k:
                if q == lower_idx.shape[0]:  # more below than above: not symmetric, caller raises
                    return lower_ptr, lower_idx, parent, -1
                lower_idx[q] = i
                q += 1
            elif i < k:
                n_upper += 1
                _etree_climb(i, k, ancestor, parent)
        lower_ptr[k + 1] = q
    return lower_ptr, lower_idx, parent, n_upper


@numba.njit(cache=True)
def permuted_etree(indptr, indices, perm):
    """Elimination tree of ``A[perm][:, perm]`` only (no pattern is stored)."""
    n = perm.shape[0]
    inv = _inverse(perm, indices)
    parent = np.full(n, -1, dtype=indices.dtype)
    ancestor = np.full(n, -1, dtype=indices.dtype)
    for k in range(n):
        old = perm[k]
        for p in range(indptr[old], indptr[old + 1]):
            i = inv[indices[p]]
            if i < k:
                _etree_climb(i, k, ancestor, parent)
    return parent


@numba.njit(cache=True)
def postorder(parent):
    """Depth-first postorder of a forest (cs_post): post[k] is the node visited k-th.

    Children are visited in increasing order and roots in increasing order, as CSparse does.
    """
    n = parent.shape[0]
    head = np.full(n, -1, dtype=parent.dtype)
    nxt = np.empty(n, dtype=parent.dtype)
    # Build child lists backwards so each list ends up in increasing order.
    for j in range(n - 1, -1, -1):
        p = parent[j]
        if p != -1:
            nxt[j] = head[p]
            head[p] = j
    post = np.empty(n, dtype=parent.dtype)
    stack = np.empty(n, dtype=parent.dtype)
    k = 0
    for root in range(n):
        if parent[root] != -1:
            continue
        top = 0
        stack[0] = root
        while top >= 0:
            p = stack[top]
            child = head[p]
            if child == -1:
                top -= 1
                post[k] = p
                k += 1
            else:
                head[p] = nxt[child]
                top += 1
                stack[top] = child
    return post


@numba.njit(cache=True)
def column_counts(lower_ptr, lower_idx, parent, post):
    """Column counts of L, diagonal included (Gilbert-Ng-Peyton, as CSparse's cs_counts).

    ``lower_ptr/lower_idx``: for each column j, its row indices i > j. For each column j (in
    postorder) and each such i, the "leaf" test decides whether j is a leaf of the i-th row
    subtree; a leaf adds one to j's count, and the overlap with the previous leaf of that row
    subtree is removed at their least common ancestor (disjoint sets with path compression).
    Summing these deltas up the tree gives the counts in near-linear time, never touching L.
    """
    n = parent.shape[0]
    delta = np.zeros(n, dtype=np.int64)
    first = np.full(n, -1, dtype=parent.dtype)  # first[j]: postorder index of j's first descendant
    maxfirst = np.full(n, -1, dtype=parent.dtype)
    prevleaf = np.full(n, -1, dtype=parent.dtype)
    ancestor = np.arange(n).astype(parent.dtype)
    for k in range(n):
        j = post[k]
        delta[j] = 1 if first[j] == -1 else 0  # 1 if j is a leaf of the etree
        while j != -1 and first[j] == -1:
            first[j] = k
            j = parent[j]
    for k in range(n):
        j = post[k]
        if parent[j] != -1:
            delta[parent[j]] -= 1  # j is not a root
        first_j = first[j]
        for p in range(lower_ptr[j], lower_ptr[j + 1]):
            i = lower_idx[p]
            # cs_leaf(i, j): j is a leaf of the i-th row subtree unless a descendant was seen.
            if first_j <= maxfirst[i]:
                continue
            maxfirst[i] = first_j
            jprev = prevleaf[i]
            prevleaf[i] = j
            delta[j] += 1  # A(i, j) is in the skeleton matrix
            if jprev != -1:
                # Subsequent leaf: q = least common ancestor of jprev and j.
                q = jprev
                while q != ancestor[q]:
                    q = ancestor[q]
                s = jprev
                while s != q:
                    sparent = ancestor[s]
                    ancestor[s] = q
                    s = sparent
                delta[q] -= 1
        if parent[j] != -1:
            ancestor[j] = parent[j]
    # Sum each child's delta into its parent; parent[j] > j, so one increasing sweep does it.
    for j in range(n):
        if parent[j] != -1:
            delta[parent[j]] += delta[j]
    return delta


@numba.njit(cache=True)
def tree_statistics(parent, colcount):
    """(height, critical_flops, n_fundamental_supernodes, n_roots) of an elimination tree.

    Uses parent[j] > j (true of every etree), so a decreasing sweep sees parents before children.
    A column starts a new fundamental supernode unless it is the only child of its parent and its
    count is the parent's plus one (Liu, Ng & Peyton 1993; CHOLMOD's cholmod_super_symbolic).
    """
    n = parent.shape[0]
    depth = np.zeros(n, dtype=np.int64)
    path_flops = np.zeros(n, dtype=np.int64)
    n_children = np.zeros(n, dtype=np.int64)
    height = 0
    critical = 0
    roots = 0
    for j in range(n - 1, -1, -1):
        c2 = colcount[j] * colcount[j]
        p = parent[j]
        if p == -1:
            roots += 1
            depth[j] = 1
            path_flops[j] = c2
        else:
            n_children[p] += 1
            depth[j] = depth[p] + 1
            path_flops[j] = path_flops[p] + c2
        if depth[j] > height:
            height = depth[j]
        if path_flops[j] > critical:
            critical = path_flops[j]
    supernodes = n
    for j in range(n):
        p = parent[j]
        if p != -1 and n_children[p] == 1 and colcount[j] == colcount[p] + 1:
            supernodes -= 1
    return height, critical, supernodes, roots


# --------------------------------------------------------------------------------------------------
# The symbolic factor
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolicFactor:
    """Elimination tree and column counts of L for one permutation, and the metrics of docs/architecture.md.

    ``parent``, ``post`` and ``colcount`` are in the permuted numbering (column k of L is original
    unknown ``perm[k]``). ``flops`` and ``critical_flops`` are exact int64 sums of c_j².
    """

    perm: np.ndarray
    parent: np.ndarray
    post: np.ndarray
    colcount: np.ndarray
    nnz_A_lower: int  # nnz(tril(A)) with the diagonal counted as n entries
    nnz_L: int
    flops: int
    etree_height: int
    critical_flops: int
    supernodes: int
    n_etree_roots: int

    @property
    def n(self) -> int:
        return int(self.perm.shape[0])

    @property
    def fill_ratio(self) -> float:
        return self.nnz_L / self.nnz_A_lower

    @property
    def parallelism(self) -> float:
        return self.flops / self.critical_flops

    def postordered_perm(self) -> np.ndarray:
        """``perm`` composed with the etree postorder (new -> old): same fill, contiguous subtrees."""
        return self.perm[self.post]

    def metrics(self) -> dict:
        return {
            "nnz_L": self.nnz_L,
            "flops": self.flops,
            "fill_ratio": self.fill_ratio,
            "etree_height": self.etree_height,
            "critical_flops": self.critical_flops,
            "parallelism": self.parallelism,
            "supernodes": self.supernodes,
            "n_etree_roots": self.n_etree_roots,
        }


def _graph_arrays(graph: sp.spmatrix, perm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not sp.issparse(graph) or graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
        raise ValueError(f"symbolic analysis: expected a square sparse graph, got {getattr(graph, 'shape', type(graph))}")
    graph = graph.tocsr()
    perm = np.ascontiguousarray(perm, dtype=np.int64)
    if perm.shape != (graph.shape[0],):
        raise ValueError(f"symbolic analysis: permutation has shape {perm.shape}, expected ({graph.shape[0]},)")
    return graph.indptr, graph.indices, perm


def symbolic_factor(graph: sp.spmatrix, perm: np.ndarray) -> SymbolicFactor:
    """Symbolic Cholesky analysis of the symmetric pattern ``graph`` under ``perm`` (new -> old).

    ``graph`` must hold both triangles of a symmetric pattern (``symmetric_graph`` builds it);
    diagonal entries are ignored. ``perm`` must be a bijection (the harness validates it).
    """
    indptr, indices, perm = _graph_arrays(graph, perm)
    n = perm.shape[0]
    lower_ptr, lower_idx, parent, n_upper = permuted_lower_and_etree(indptr, indices, perm)
    if n_upper != lower_ptr[n]:  # a cheap necessary condition: catches one-triangle input
        counts = "more entries below than above" if n_upper < 0 else f"{n_upper} entries above, {lower_ptr[n]} below"
        raise ValueError(f"symbolic analysis: the graph pattern is not symmetric ({counts} the diagonal); "
                         "expected both triangles, as symmetric_graph(A) builds them")
    post = postorder(parent)
    colcount = column_counts(lower_ptr, lower_idx, parent, post)
    height, critical, supernodes, roots = tree_statistics(parent, colcount)
    return SymbolicFactor(
        perm=perm,
        parent=parent.astype(np.int64),
        post=post.astype(np.int64),
        colcount=colcount,
        nnz_A_lower=int(lower_ptr[n]) + n,
        nnz_L=int(colcount.sum()),
        flops=int(np.dot(colcount, colcount)),
        etree_height=int(height),
        critical_flops=int(critical),
        supernodes=int(supernodes),
        n_etree_roots=int(roots),
    )


def postordered_perm(graph: sp.spmatrix, perm: np.ndarray) -> np.ndarray:
    """``perm`` composed with its elimination-tree postorder (etree and postorder only).

    ``graph`` may be the matrix itself (both triangles; the diagonal is ignored).
    """
    indptr, indices, perm = _graph_arrays(graph, perm)
    return perm[postorder(permuted_etree(indptr, indices, perm))]


@functools.lru_cache(maxsize=None)
def warm_up(indptr_dtype=np.dtype(np.int32), indices_dtype=np.dtype(np.int32)) -> None:
    """Compile the kernels for these index types, or load them from numba's cache, untimed.

    The first call in a process costs ~0.5 s with a warm on-disk cache and several seconds
    without one: call this before timing ``symbolic_factor`` (graphs from ``symmetric_graph``
    have int32 indices and indptr below 2^31 entries).
    """
    indptr = np.array([0, 1, 2], dtype=indptr_dtype)
    indices = np.array([1, 0], dtype=indices_dtype)
    perm = np.array([1, 0], dtype=np.int64)
    lower_ptr, lower_idx, parent, _ = permuted_lower_and_etree(indptr, indices, perm)
    post = postorder(parent)
    tree_statistics(parent, column_counts(lower_ptr, lower_idx, parent, post))
    postorder(permuted_etree(indptr, indices, perm))


@numba.njit(cache=True)
def _subtree_first_and_size(parent):
    n = parent.shape[0]
    size = np.ones(n, dtype=np.int64)
    first = np.arange(n, dtype=np.int64)  # smallest index in the subtree of j
    for j in range(n):  # children before parents: parent[j] > j in an etree
        p = parent[j]
        if p != -1:
            size[p] += size[j]
            first[p] = min(first[p], first[j])
    return first, size


def is_postordered(parent: np.ndarray) -> bool:
    """True when every subtree of the etree occupies a contiguous range ending at its root."""
    parent = np.ascontiguousarray(parent, dtype=np.int64)
    first, size = _subtree_first_and_size(parent)
    return bool(np.all(first == np.arange(parent.shape[0]) - size + 1))


@register
class SymbolicBackend(Backend):
    name = "symbolic"
    version = "1"
    description = "elimination tree and column counts of L (numba): fill, flops, tree statistics"
    numeric = False

    def run(self, case, perm, ordering, symbolic) -> dict:
        if symbolic is None:  # the harness normally passes the factor it already timed
            symbolic = symbolic_factor(symmetric_graph(case.A), perm)
        return symbolic.metrics()


__all__ = [
    "SymbolicFactor",
    "symbolic_factor",
    "postordered_perm",
    "warm_up",
    "is_postordered",
    "permuted_lower_and_etree",
    "permuted_etree",
    "postorder",
    "column_counts",
    "tree_statistics",
]
