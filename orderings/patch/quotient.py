"""Step 1 of the patch ordering: the quotient graph of patches.

Only fine edges that join two different patches can ever be cut by a patch-level bisection (about
6 % of a mesh's edges with 512-vertex patches), so they are extracted once here and every level of
the decomposition scans only them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

from .pool import SERIAL


@numba.njit(cache=True, nogil=True)
def _count_inter_patch(indptr, indices, patch_of, lo, hi, counts, c):
    """counts[c] = the fine edges u > v between two patches whose smaller end v is in lo..hi-1."""
    count = 0
    for v in range(lo, hi):
        pv = patch_of[v]
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if u > v and patch_of[u] != pv:
                count += 1
    counts[c] = count


@numba.njit(cache=True, nogil=True)
def _fill_inter_patch(indptr, indices, patch_of, lo, hi, eu, ev, k):
    """Write those edges (in vertex, then adjacency order) from position k on."""
    for v in range(lo, hi):
        pv = patch_of[v]
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if u > v and patch_of[u] != pv:
                eu[k] = v
                ev[k] = u
                k += 1


@numba.njit(cache=True, nogil=True, parallel=True)
def _count_inter_patch_chunks(indptr, indices, patch_of, counts):
    """:func:`_count_inter_patch` on counts.shape[0] equal pieces of the vertices."""
    chunks, n = counts.shape[0], indptr.shape[0] - 1
    for c in numba.prange(chunks):
        _count_inter_patch(indptr, indices, patch_of, c * n // chunks, (c + 1) * n // chunks, counts, c)


@numba.njit(cache=True, nogil=True, parallel=True)
def _fill_inter_patch_chunks(indptr, indices, patch_of, at, eu, ev):
    """:func:`_fill_inter_patch` on the same pieces, piece c from position at[c]."""
    chunks, n = at.shape[0], indptr.shape[0] - 1
    for c in numba.prange(chunks):
        _fill_inter_patch(indptr, indices, patch_of, c * n // chunks, (c + 1) * n // chunks, eu, ev, at[c])


def _inter_patch_edges(indptr, indices, patch_of, pool=SERIAL):
    """Every fine edge between two patches once (smaller end first, ascending), counted and
    written over pieces of the vertices on numba's threads (:meth:`.pool.Pool.compiled`)."""
    n = indptr.shape[0] - 1
    pieces = pool.pieces(n)
    counts = np.zeros(pieces, dtype=np.int64)
    pool.run_pass(pieces, lambda: _count_inter_patch(indptr, indices, patch_of, 0, n, counts, 0),
                  lambda: _count_inter_patch_chunks(indptr, indices, patch_of, counts))
    at = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    eu = np.empty(int(at[-1]), dtype=np.int32)
    ev = np.empty(int(at[-1]), dtype=np.int32)
    pool.run_pass(pieces, lambda: _fill_inter_patch(indptr, indices, patch_of, 0, n, eu, ev, 0),
                  lambda: _fill_inter_patch_chunks(indptr, indices, patch_of, at[:-1], eu, ev))
    return eu, ev


@numba.njit(cache=True, nogil=True)
def quotient_edges(eu, ev, patch_of, n_patches):
    """Distinct patch pairs of the fine edges ``eu``–``ev`` (which join different patches):
    pairs (q_a < q_b), the pair of every fine edge, and the fine edges behind every pair.
    A counting sort by the smaller patch and a marker per partner patch: no sort of the edges."""
    m = eu.shape[0]
    pa = np.empty(m, dtype=np.int64)
    pb = np.empty(m, dtype=np.int64)
    start = np.zeros(n_patches + 1, dtype=np.int64)
    for i in range(m):
        x, y = patch_of[eu[i]], patch_of[ev[i]]
        pa[i], pb[i] = min(x, y), max(x, y)
        start[pa[i] + 1] += 1
    for p in range(n_patches):
        start[p + 1] += start[p]
    fill = start[:-1].copy()
    order = np.empty(m, dtype=np.int64)
    for i in range(m):
        order[fill[pa[i]]] = i
        fill[pa[i]] += 1
    mark = np.full(n_patches, -1, dtype=np.int64)
    qid = np.empty(n_patches, dtype=np.int64)
    q_a = np.empty(m, dtype=np.int32)
    q_b = np.empty(m, dtype=np.int32)
    q_weight = np.zeros(m, dtype=np.int64)
    edge_q = np.empty(m, dtype=np.int32)
    n_q = 0
    for p in range(n_patches):
        for j in range(start[p], start[p + 1]):
            i = order[j]
            b = pb[i]
            if mark[b] != p:
                mark[b] = p
                qid[b] = n_q
                q_a[n_q] = p
                q_b[n_q] = b
                n_q += 1
            edge_q[i] = qid[b]
            q_weight[qid[b]] += 1
    return q_a[:n_q], q_b[:n_q], edge_q, q_weight[:n_q]


@dataclass
class QuotientGraph:
    """Patches as nodes; an edge between two patches when any fine edge joins them.

    ``edge_u``/``edge_v``: the fine inter-patch edges (each once);
    ``edge_q``: the quotient edge each one supports; ``q_a``/``q_b``: quotient edge endpoints
    (q_a < q_b); ``q_weight``: number of fine edges behind each quotient edge;
    ``patch_size``: vertices per patch.
    """

    n_patches: int
    patch_size: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_q: np.ndarray
    q_a: np.ndarray
    q_b: np.ndarray
    q_weight: np.ndarray


def quotient_graph(graph: sp.csr_matrix, patch_of: np.ndarray, n_patches: int, pool=SERIAL) -> QuotientGraph:
    eu, ev = _inter_patch_edges(graph.indptr, graph.indices, patch_of, pool)
    q_a, q_b, edge_q, q_weight = quotient_edges(eu, ev, patch_of, n_patches)
    return QuotientGraph(
        n_patches=n_patches,
        patch_size=np.bincount(patch_of, minlength=n_patches).astype(np.int64),
        edge_u=eu,
        edge_v=ev,
        edge_q=edge_q,
        q_a=q_a,
        q_b=q_b,
        q_weight=q_weight,
    )
