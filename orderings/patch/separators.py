"""Step 2 of the patch ordering, one tree level at a time: bisect every node's quotient subgraph
with METIS, then shrink the cut to a minimum vertex cover (Hopcroft-Karp + König).

All nodes of a level are handled in bulk: their quotient subgraphs are slices of one CSR matrix,
their bipartite cut graphs are disjoint pieces of one matrix, so one matching and one König
search cover the whole level.
"""

from __future__ import annotations

import numba
import numpy as np

from .matching import bipartite_cover_parts
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


@numba.njit(cache=True, nogil=True)
def _level_graph(node_of_patch, patch_weight, q_a, q_b, edge_q, unit_edge_weights, first_node, n_nodes):
    """The quotient subgraphs of a level's nodes as one block-diagonal CSR: live patches (weight
    > 0) ordered by node, then by id (``order``; node k's block is node_bounds[k]..[k+1]); the
    quotient edges that still carry fine edges (``edge_q`` counts them), each row's entries in
    edge order, a -> b entries before b -> a ones; edge weights = fine edges behind the quotient
    edge (or ones), at least 1. Counting sorts: linear in patches and edges."""
    n_patches = node_of_patch.shape[0]
    alive = np.zeros(q_a.shape[0], dtype=np.int64)
    for q in edge_q:
        alive[q] += 1
    node_bounds = np.zeros(n_nodes + 1, dtype=np.int64)
    for p in range(n_patches):
        if patch_weight[p] > 0:
            node_bounds[node_of_patch[p] - first_node + 1] += 1
    for k in range(n_nodes):
        node_bounds[k + 1] += node_bounds[k]
    m = node_bounds[n_nodes]
    order = np.empty(m, dtype=np.int64)
    pos = np.full(n_patches, -1, dtype=np.int64)
    fill = node_bounds[:-1].copy()
    for p in range(n_patches):
        if patch_weight[p] > 0:
            k = node_of_patch[p] - first_node
            order[fill[k]] = p
            pos[p] = fill[k]
            fill[k] += 1
    indptr = np.zeros(m + 1, dtype=np.int64)
    for q in range(q_a.shape[0]):
        if alive[q] > 0:
            indptr[pos[q_a[q]] + 1] += 1
            indptr[pos[q_b[q]] + 1] += 1
    for i in range(m):
        indptr[i + 1] += indptr[i]
    adjncy = np.empty(indptr[m], dtype=np.int64)
    eweights = np.empty(indptr[m], dtype=np.int64)
    at = indptr[:-1].copy()
    for direction in range(2):
        for q in range(q_a.shape[0]):
            if alive[q] > 0:
                a, b = (pos[q_a[q]], pos[q_b[q]]) if direction == 0 else (pos[q_b[q]], pos[q_a[q]])
                adjncy[at[a]] = b
                eweights[at[a]] = 1 if unit_edge_weights else alive[q]
                at[a] += 1
    vweights = np.empty(m, dtype=np.int64)
    for i in range(m):
        vweights[i] = patch_weight[order[i]]
    return order, node_bounds, indptr, adjncy, eweights, vweights


@numba.njit(cache=True, nogil=True)
def _one_sided(sides, jobs):
    """Per job (start, stop, trial): METIS put the whole block on one side."""
    out = np.zeros(jobs.shape[0], dtype=np.bool_)
    for j in range(jobs.shape[0]):
        s, e, t = jobs[j, 0], jobs[j, 1], jobs[j, 2]
        out[j] = True
        for i in range(s + 1, e):
            if sides[t, i] != sides[t, s]:
                out[j] = False
                break
    return out


def bisect_patches(node_of_patch: np.ndarray, patch_weight: np.ndarray, q_a: np.ndarray, q_b: np.ndarray,
                   edge_q: np.ndarray, first_node: int, n_nodes: int, trial_options: list,
                   recursive: bool = False, unit_edge_weights: bool = False, pool=SERIAL) -> tuple[np.ndarray, dict]:
    """Bisect the quotient subgraph of every node in ``first_node .. first_node + n_nodes - 1``,
    once per entry of ``trial_options`` (keyword options of :func:`.metis_sep.bisect`, e.g.
    different seeds).

    ``q_a``/``q_b``: the quotient edges; ``edge_q``: the quotient edge of every inter-patch fine
    edge alive at this level (both ends in the same node): a quotient edge weighs the fine edges
    behind it (ones with ``unit_edge_weights``), and one without any is left out. Patches of
    weight 0 are ignored. The METIS calls run in compiled loops, one per run of ``pool.ranges``
    on ``pool`` (each call depends only on its own node, so the result is the same for any number
    of threads). Returns the side (0/1) of every patch in every trial (trials × patches) and
    counts for the statistics.
    """
    n_patches = node_of_patch.shape[0]
    n_trials = len(trial_options)
    sides = np.zeros((n_trials, n_patches), dtype=np.int8)
    order, node_bounds, indptr, adjncy, eweights, vweights = _level_graph(
        node_of_patch, patch_weight, q_a, q_b, edge_q, unit_edge_weights, first_node, n_nodes)
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

    list(pool(run, pool.ranges(jobs.shape[0])))
    stats["metis_calls"] += len(calls)
    for j in np.flatnonzero(_one_sided(local_sides, jobs)):
        s, e, t = jobs[j]
        stats["one_sided"] += 1
        local_sides[t, s:e] = _half_split(vweights[s:e])
    sides[:, order] = local_sides
    return sides, stats


@numba.njit(cache=True, nogil=True)
def _count_cut(edge_u, edge_v, patch_of, side, node_of_patch, first_node, lo, hi, count):
    """count[k] += the cut edges of node k among edges lo..hi-1."""
    for i in range(lo, hi):
        pu = patch_of[edge_u[i]]
        if side[pu] != side[patch_of[edge_v[i]]]:
            count[node_of_patch[pu] - first_node] += 1


@numba.njit(cache=True, nogil=True)
def _write_cut(edge_u, edge_v, patch_of, side, node_of_patch, first_node, lo, hi, at, left, right):
    """Write the cut edges among lo..hi-1, node k's from position at[k] on (side-0 end in left)."""
    for i in range(lo, hi):
        u, v = edge_u[i], edge_v[i]
        pu = patch_of[u]
        if side[pu] != side[patch_of[v]]:
            k = node_of_patch[pu] - first_node
            if side[pu] == 0:
                left[at[k]], right[at[k]] = u, v
            else:
                left[at[k]], right[at[k]] = v, u
            at[k] += 1


@numba.njit(cache=True, nogil=True, parallel=True)
def _count_cut_chunks(edge_u, edge_v, patch_of, side, node_of_patch, first_node, counts):
    """:func:`_count_cut` on counts.shape[0] equal pieces of the edges, piece c into counts[c]."""
    chunks, m = counts.shape[0], edge_u.shape[0]
    for c in numba.prange(chunks):
        _count_cut(edge_u, edge_v, patch_of, side, node_of_patch, first_node, c * m // chunks,
                   (c + 1) * m // chunks, counts[c])


@numba.njit(cache=True, nogil=True, parallel=True)
def _write_cut_chunks(edge_u, edge_v, patch_of, side, node_of_patch, first_node, at, left, right):
    """:func:`_write_cut` on the same pieces, piece c from the slots at[c]."""
    chunks, m = at.shape[0], edge_u.shape[0]
    for c in numba.prange(chunks):
        _write_cut(edge_u, edge_v, patch_of, side, node_of_patch, first_node, c * m // chunks,
                   (c + 1) * m // chunks, at[c], left, right)


def cut_by_node(edge_u, edge_v, patch_of, side, node_of_patch, first_node: int, n_nodes: int, pool=SERIAL):
    """The level's cut edges (their patches went to different sides) grouped by tree node, in edge
    order inside each node: (side-0 end, side-1 end, node k's edges at bounds[k]..bounds[k+1]).
    Every edge given has both ends in one node of the level. Pieces of the edges count their cut
    edges per node, then write them where the counts place them (node by node, pieces in order):
    numba's threads share the pieces (:meth:`.pool.Pool.compiled`), and the result is the same
    for any number of threads."""
    look = (edge_u, edge_v, patch_of, side, node_of_patch, first_node)
    pieces = pool.pieces(edge_u.shape[0])
    counts = np.zeros((pieces, n_nodes), dtype=np.int64)
    pool.run_pass(pieces, lambda: _count_cut(*look, 0, edge_u.shape[0], counts[0]),
                  lambda: _count_cut_chunks(*look, counts))
    bounds = np.concatenate([[0], np.cumsum(counts.sum(axis=0))]).astype(np.int64)
    at = bounds[:-1] + np.cumsum(counts, axis=0) - counts  # piece c's first slot in each node
    left = np.empty(bounds[-1], dtype=np.int64)
    right = np.empty(bounds[-1], dtype=np.int64)
    pool.run_pass(pieces, lambda: _write_cut(*look, 0, edge_u.shape[0], at[0], left, right),
                  lambda: _write_cut_chunks(*look, at, left, right))
    return left, right, bounds


def min_vertex_cover(left: np.ndarray, right: np.ndarray, bounds: np.ndarray, pool=SERIAL) -> np.ndarray:
    """The vertex separator of a level: a minimum vertex cover of the cut edges
    ``left[i]``–``right[i]`` (side-0 end, side-1 end), grouped by node as :func:`cut_by_node` gives them.

    Nodes' cut graphs are disjoint, so each run of nodes of ``pool.ranges`` is covered on its own,
    on ``pool``. Hopcroft–Karp and König's search act on every connected component alone, in the
    same order, so the cover is the one a single call on the whole level gives, and it is returned
    in that call's order (covered side-0 ids ascending, then side-1 ids): the same for any number
    of threads.
    """
    runs = pool.ranges(bounds.shape[0] - 1)
    parts = list(pool(lambda r: bipartite_cover_parts(left[bounds[r[0]]:bounds[r[1]]],
                                                      right[bounds[r[0]]:bounds[r[1]]]), runs))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.sort(np.concatenate([p[s] for p in parts])) for s in (0, 1)])
