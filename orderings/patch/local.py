"""Step 3 of the patch ordering: order the vertices inside every tree node (leaf or separator).

Each function takes the graph and the tree node of every vertex and returns a *sequence*: every
vertex once, each node's vertices in their local elimination order (nodes may interleave;
assembly groups them with one stable sort).

* ``amd``: AMD on each node's induced subgraph, as one AMD call on the block-diagonal union of all
  blocks (AMD never links disconnected blocks, so each block's order equals a per-block call).
* ``amd-threshold``: the reference's rule, AMD only on blocks larger than a threshold, the input
  order (ascending index) below it.
* ``camd``: one constrained minimum degree (CAMD) call on the whole graph, each node a constraint
  set in layout order (what CHOLMOD's nesdis does).
* ``metis``: METIS nested dissection on each block.
* ``identity``: ascending original index inside each block.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..amd import amd_order
from .blocks import block_graph, block_matrix, block_slice, group_bounds
from .camd import camd_order

LOCAL_METHODS = ("amd", "amd-threshold", "camd", "metis", "identity")


def _amd_runs(B: sp.csr_matrix, starts: np.ndarray, stops: np.ndarray, run_size: int) -> np.ndarray:
    """AMD on runs of consecutive whole blocks of about ``run_size`` vertices.

    AMD never links disconnected blocks, so any grouping gives each block the order a per-block
    call would; but one call on the union of all blocks of a 1M-vertex grid took 2-3x longer
    than the blocks one by one (its minimum-degree search jumps between blocks all over memory),
    while per-block calls pay Python overhead on thousands of tiny blocks. Runs get both right.
    """
    pieces = []
    s = 0
    n_blocks = starts.shape[0]
    while s < n_blocks:
        e = s + 1
        while e < n_blocks and stops[e - 1] - starts[s] < run_size:
            e += 1
        lo, hi = int(starts[s]), int(stops[e - 1])
        pieces.append(lo + amd_order(block_matrix(B, lo, hi)))
        s = e
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)


def local_amd(graph, node_of, run_size: int = 16384) -> np.ndarray:
    order, B, sorted_label = block_graph(graph, node_of)
    starts, stops = group_bounds(sorted_label)
    return order[_amd_runs(B, starts, stops, run_size)]


def local_amd_threshold(graph, node_of, threshold: int, run_size: int = 16384) -> np.ndarray:
    sizes = np.bincount(node_of)
    big = sizes[node_of] > threshold
    order, B, sorted_label = block_graph(graph, np.where(big, node_of, -1).astype(np.int32))
    starts, stops = group_bounds(sorted_label)
    small = np.flatnonzero(~big)  # ascending index: the identity inside each small block
    return np.concatenate([order[_amd_runs(B, starts, stops, run_size)], small])


def local_identity(node_of) -> np.ndarray:
    return np.arange(node_of.shape[0], dtype=np.int64)


def local_metis(graph, node_of) -> np.ndarray:
    import pymetis

    order, B, sorted_label = block_graph(graph, node_of)
    starts, stops = group_bounds(sorted_label)
    pieces = []
    for s, e in zip(starts, stops):
        indptr, indices = block_slice(B, s, e)
        if indices.shape[0] == 0:
            pieces.append(np.arange(s, e))
            continue
        perm, _ = pymetis.nested_dissection(pymetis.CSRAdjacency(indptr.astype(np.int64), indices.astype(np.int64)))
        pieces.append(s + np.asarray(perm, dtype=np.int64))
    return order[np.concatenate(pieces)]


def local_camd(graph, node_of, rank) -> np.ndarray:
    """Constraint set = layout rank of the vertex's node: CAMD returns the sets in increasing
    order, so its permutation is already in layout order."""
    constraint = rank[node_of]
    # Compress set numbers to 0..k-1 (CAMD needs them < n; empty nodes leave gaps).
    used = np.unique(constraint)
    return camd_order(graph, np.searchsorted(used, constraint))
