"""Step 2 of the patch ordering, one tree level at a time: bisect every node's quotient subgraph
with METIS, then shrink the cut to a minimum vertex cover (Hopcroft-Karp + König).

All nodes of a level are handled in bulk: their quotient subgraphs are slices of one CSR matrix,
their bipartite cut graphs are disjoint pieces of one matrix, so one matching and one König
search cover the whole level.
"""

from __future__ import annotations

import numpy as np

from .matching import bipartite_vertex_cover
from .metis_sep import bisect_blocks, options_rows
from .pool import SERIAL

#: METIS's objective codes (METIS_OBJTYPE_CUT / _VOL).
OBJTYPES = {"cut": 0, "vol": 1}


def _half_split(weights: np.ndarray) -> np.ndarray:
    """Fallback when METIS puts everything on one side: cut the (BFS-numbered) patch sequence
    where the cumulative weight passes half."""
    csum = np.cumsum(weights)
    side = (csum - weights / 2.0 > csum[-1] / 2.0).astype(np.int8)
    if side.all() or not side.any():
        side[: max(1, len(side) // 2)] = 0
        side[max(1, len(side) // 2):] = 1
    return side


def bisect_patches(node_of_patch: np.ndarray, patch_weight: np.ndarray, q_a: np.ndarray, q_b: np.ndarray,
                   q_weight: np.ndarray, first_node: int, n_nodes: int, trial_options: list,
                   recursive: bool = False, pool=SERIAL) -> tuple[np.ndarray, dict]:
    """Bisect the quotient subgraph of every node in ``first_node .. first_node + n_nodes - 1``,
    once per entry of ``trial_options`` (keyword options of :func:`.metis_sep.bisect`, e.g.
    different seeds).

    ``q_a``/``q_b``/``q_weight``: the quotient edges alive at this level, both ends in the same node
    (``q_weight`` = fine edges behind each, or ones for unit weights). Patches of weight 0 are
    ignored. The METIS calls run in compiled loops, one per run of ``pool.ranges`` on ``pool`` (each
    call depends only on its own node, so the result is the same for any number of threads). Returns the side
    (0/1) of every patch in every trial (trials × patches) and counts for the statistics.
    """
    n_patches = node_of_patch.shape[0]
    n_trials = len(trial_options)
    sides = np.zeros((n_trials, n_patches), dtype=np.int8)
    live = np.flatnonzero(patch_weight > 0)
    order = live[np.argsort(node_of_patch[live], kind="stable")]
    pos = np.full(n_patches, -1, dtype=np.int64)
    pos[order] = np.arange(order.shape[0])
    node_bounds = np.searchsorted(node_of_patch[order], np.arange(first_node, first_node + n_nodes + 1))
    rows = np.concatenate([pos[q_a], pos[q_b]])
    cols = np.concatenate([pos[q_b], pos[q_a]])
    wts = np.concatenate([q_weight, q_weight]).astype(np.int64)
    by_row = np.argsort(rows, kind="stable")
    adjncy = cols[by_row]
    eweights = np.maximum(wts[by_row], 1)
    indptr = np.zeros(order.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=order.shape[0]), out=indptr[1:])
    vweights = patch_weight[order].astype(np.int64)
    local_sides = np.zeros((n_trials, order.shape[0]), dtype=np.int8)
    stats = {"metis_calls": 0, "one_sided": 0, "single_patch_nodes": 0}
    calls = []  # (node start, node stop, trial) of every METIS call
    for k in range(n_nodes):
        s, e = int(node_bounds[k]), int(node_bounds[k + 1])
        if e - s == 0:
            continue
        if e - s == 1:
            stats["single_patch_nodes"] += 1
            continue
        if indptr[e] == indptr[s]:
            # No quotient edges (the patches are mutually disconnected): split by weight, once.
            local_sides[:, s:e] = _half_split(vweights[s:e])
            continue
        calls.extend((s, e, t) for t in range(n_trials))

    jobs = np.array(calls, dtype=np.int64).reshape(-1, 3)
    options = options_rows(trial_options)

    def run(bounds):
        a, b = bounds
        bisect_blocks(indptr, adjncy, vweights, eweights, jobs[a:b], options, local_sides, recursive=recursive)

    for _ in pool(run, pool.ranges(jobs.shape[0])):
        pass
    for s, e, t in calls:
        stats["metis_calls"] += 1
        part = local_sides[t, s:e]
        if part.min() == part.max():
            stats["one_sided"] += 1
            local_sides[t, s:e] = _half_split(vweights[s:e])
    sides[:, order] = local_sides
    return sides, stats


def min_vertex_cover(cut_u: np.ndarray, cut_v: np.ndarray, side_u: np.ndarray) -> np.ndarray:
    """The vertex separator of a level: a minimum vertex cover of the cut edges.

    ``cut_u[i]``–``cut_v[i]`` are cut edges, ``side_u[i]`` the side of ``cut_u[i]`` (``cut_v[i]`` is
    on the other side); side-0 vertices are the left part. Nodes' cut graphs are disjoint, so one
    call covers the whole level.
    """
    left = np.where(side_u == 0, cut_u, cut_v)
    right = np.where(side_u == 0, cut_v, cut_u)
    return bipartite_vertex_cover(left, right)
