"""Induced subgraphs of many vertex groups at once: the block-diagonal part of a graph.

Extracting each tree node's subgraph with scipy fancy indexing costs ~1 ms per call on a 1M-vertex
graph; one compiled pass builds all of them together, each block a contiguous slice.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp


@numba.njit(cache=True)
def _block_diagonal(indptr, indices, label, order, pos):
    """CSR, in the positions of ``order``, of the edges whose two ends share a label >= 0."""
    n = order.shape[0]
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(n):
        v = order[k]
        lv = label[v]
        c = 0
        if lv >= 0:
            for p in range(indptr[v], indptr[v + 1]):
                if label[indices[p]] == lv:
                    c += 1
        new_indptr[k + 1] = new_indptr[k] + c
    new_indices = np.empty(new_indptr[n], dtype=np.int32)
    for k in range(n):
        v = order[k]
        lv = label[v]
        if lv < 0:
            continue
        q = new_indptr[k]
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if label[u] == lv:
                new_indices[q] = pos[u]
                q += 1
    return new_indptr, new_indices


def block_graph(graph: sp.csr_matrix, label: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray]:
    """Group vertices by ``label`` (stable) and keep only edges inside a group.

    Returns ``order`` (vertex at each position), the block-diagonal graph over positions (each
    group contiguous, its indices sorted) and the sorted labels (negative labels sort first and
    keep no edges).
    """
    n = graph.shape[0]
    order = np.argsort(label, kind="stable")
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    indptr, indices = _block_diagonal(graph.indptr, graph.indices, label, order, pos)
    B = sp.csr_matrix((np.ones(indices.shape[0], dtype=np.int8), indices, indptr), shape=(n, n))
    B.sort_indices()
    return order, B, label[order]


def block_slice(B: sp.csr_matrix, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR arrays (indptr, indices) of the diagonal block ``start:stop`` of a block-diagonal graph."""
    p0, p1 = B.indptr[start], B.indptr[stop]
    return B.indptr[start:stop + 1] - p0, B.indices[p0:p1] - start


def group_bounds(sorted_label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop positions of the runs of equal non-negative labels."""
    change = np.flatnonzero(np.diff(sorted_label)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [sorted_label.shape[0]]])
    keep = sorted_label[starts] >= 0
    return starts[keep], stops[keep]


def block_matrix(B: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    indptr, indices = block_slice(B, start, stop)
    k = stop - start
    return sp.csr_matrix((np.ones(indices.shape[0], dtype=np.int8), indices, indptr), shape=(k, k))
