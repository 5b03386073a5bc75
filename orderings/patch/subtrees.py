"""Step 2 of the patch ordering on many threads: the tree's top levels together, then every
subtree below them as a problem of its own.

The top ``s`` levels are built level by level on the whole graph (:func:`.decompose.decompose`:
the METIS calls and FM passes of a level's nodes run in parallel, the bookkeeping between levels
is whole-graph array work). Once a node is separated, its two children never interact again, so
below level s every node of level s is an independent graph: the induced subgraph of its
vertices, with the patches they keep and the inter-patch edges between them. Each such subtree is
then decomposed to the bottom by one task, bookkeeping included, and the tasks run on the thread
pool. s is the first level whose nodes hold fewer than :data:`SUBTREE_MIN` vertices on average
(3 on a 250k grid, 4 at 1M: 8 and 16 tasks).

The split level depends only on n and the tree depth, never on the thread count, and each task
reads only its own subtree, so the tree is the same for any number of threads. A subtree's
patches are its vertices' final patches after the top levels (a vertex that refinement moved
across a separator is already in a patch of its own), renumbered in their old order.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numba
import numpy as np

from ...core.ndtree import counting_order

from .blocks import block_diagonal_csr, node_depth
from .decompose import decompose
from .quotient import QuotientGraph, quotient_edges
from .pool import Pool, SERIAL

#: The split level s is the first level whose nodes average fewer vertices than this.
SUBTREE_MIN = 1 << 16


class Graph(NamedTuple):
    """The CSR fields :func:`.decompose.decompose` reads (a subtree's graph is no scipy matrix:
    its construction holds the GIL)."""

    shape: tuple
    indptr: np.ndarray
    indices: np.ndarray


def split_level(n: int, levels: int) -> int:
    """s = min(levels, ceil(log2(n / SUBTREE_MIN))): 0 below SUBTREE_MIN vertices (no subtree
    tasks: the whole tree level by level)."""
    if n < SUBTREE_MIN:
        return 0
    return int(min(levels, np.ceil(np.log2(n / SUBTREE_MIN))))


@numba.njit(cache=True, nogil=True)
def _group(node_of, first, count, edge_u):
    """Vertices of the nodes first .. first + count - 1 grouped by node (ascending inside each),
    with bounds and every such vertex's rank in its node; the edges ``edge_u`` (by their first
    end, which lies in one of those nodes) grouped likewise."""
    n = node_of.shape[0]
    key = np.empty(n, dtype=np.int64)
    for v in range(n):
        k = node_of[v] - first
        key[v] = k if 0 <= k < count else count  # every other vertex in one last group, dropped
    order, bounds = counting_order(key, count + 1)
    order, bounds = order[:bounds[count]], bounds[:count + 1]
    rank = np.full(n, -1, dtype=np.int32)
    for k in range(count):
        for i in range(bounds[k], bounds[k + 1]):
            rank[order[i]] = i - bounds[k]
    edge_key = np.empty(edge_u.shape[0], dtype=np.int64)
    for i in range(edge_u.shape[0]):
        edge_key[i] = node_of[edge_u[i]] - first
    edge_order, edge_bounds = counting_order(edge_key, count)
    return order, bounds, rank, edge_order, edge_bounds


@numba.njit(cache=True, nogil=True)
def _extract(indptr, indices, node_of, members, rank, patch_of, n_patches, edge_u, edge_v):
    """The subgraph of one tree node (its ``members``, ascending; ``rank`` maps a vertex to
    its position there): CSR over ranks, its patches renumbered 0..k-1 in
    the order of the old ids, k, and its inter-patch edges (``edge_u``/``edge_v``) in ranks."""
    m = members.shape[0]
    # The node's induced subgraph: its one block of the graph's block-diagonal part by node.
    xadj, adjncy = block_diagonal_csr(indptr, indices, node_of, members, rank)
    used = np.zeros(n_patches + 1, dtype=np.int32)
    for r in range(m):
        used[patch_of[members[r]] + 1] = 1
    for k in range(n_patches):  # new id = number of used patches before it
        used[k + 1] += used[k]
    sub_patch = np.empty(m, dtype=np.int32)
    for r in range(m):
        sub_patch[r] = used[patch_of[members[r]]]
    eu = np.empty(edge_u.shape[0], dtype=np.int32)
    ev = np.empty(edge_u.shape[0], dtype=np.int32)
    for i in range(edge_u.shape[0]):
        eu[i] = rank[edge_u[i]]
        ev[i] = rank[edge_v[i]]
    return xadj, adjncy, sub_patch, used[n_patches], eu, ev


@numba.njit(cache=True, nogil=True)
def _place(node_of, members, local_node, root, depth):
    """node_of[members] = the global id of each local node of a tree rooted at ``root`` (level
    ``depth``): local node u on local level e, i-th there, is the i-th of the root's descendants on
    level depth + e."""
    offset = root - ((1 << depth) - 1)
    for i in range(members.shape[0]):
        u = local_node[i]
        e = node_depth(u)
        node_of[members[i]] = ((1 << (depth + e)) - 1) + (offset << e) + (u - ((1 << e) - 1))


def _merge_stats(total: dict, stats: dict, depth: int) -> None:
    for key, value in stats.items():
        if isinstance(value, list):  # per level of the subtree, from its root's level on
            per_level = total[key]
            for i, x in enumerate(value):
                per_level[depth + i] += x
        else:
            total[key] = total.get(key, 0) + value


def decompose_tree(graph, patch_of: np.ndarray, quotient: QuotientGraph, levels: int, pool: Pool = SERIAL,
                   subtree_tasks: bool = False, **options):
    """The tree node of every vertex: the top levels on the whole graph, then one task per
    subtree (see the module docstring) on ``pool`` (:class:`.pool.Pool`; the default runs
    everything in this thread). ``quotient``: the whole graph's quotient graph (of
    ``patch_of``); ``options`` go to :func:`.decompose.decompose`. ``subtree_tasks=False``: the
    whole tree level by level (no split).

    Returns (node_of, stats): the stats of all parts merged (per-level lists by global level),
    plus ``split_level``, ``subtree_tasks`` and the times ``t_top_s`` (the top levels: a few
    parallel METIS and FM calls, the rest serial) and ``t_subtrees_s`` (the tasks, on the pool).
    """
    n = graph.shape[0]
    clock = time.perf_counter
    t0 = clock()
    s = split_level(n, levels) if subtree_tasks else 0
    top = decompose(graph, patch_of, quotient, levels if s == 0 else s, leaf_edges=s > 0, pool=pool, **options)
    stats = dict(top.stats)
    stats.update(split_level=s, subtree_tasks=0, t_top_s=clock() - t0, t_subtrees_s=0.0)
    if s == 0 or s == levels:
        return top.node_of, stats
    t1 = clock()
    for key in ("separator_sizes_per_level", "cover_sizes_per_level"):
        stats[key] = stats[key] + [0] * (levels - s)
    node_of = top.node_of
    first, count = (1 << s) - 1, 1 << s
    order, bounds, rank, edge_order, edge_bounds = _group(node_of, first, count, top.edge_u)
    edge_u, edge_v = top.edge_u[edge_order], top.edge_v[edge_order]
    n_patches = int(top.patch_of.max()) + 1
    below = np.zeros(n, dtype=np.int32)  # subtree tasks write their nodes here (disjoint vertices)

    def subtree(k):
        members = order[bounds[k]:bounds[k + 1]]
        e0, e1 = edge_bounds[k], edge_bounds[k + 1]
        xadj, adjncy, sub_patch, k_patches, eu, ev = _extract(
            graph.indptr, graph.indices, node_of, members, rank, top.patch_of, n_patches,
            edge_u[e0:e1], edge_v[e0:e1])
        k_patches = int(k_patches)
        q_a, q_b, edge_q, q_weight = quotient_edges(eu, ev, sub_patch, k_patches)
        Q = QuotientGraph(k_patches, np.bincount(sub_patch, minlength=k_patches).astype(np.int64), eu, ev, edge_q,
                          q_a, q_b, q_weight)
        sub = Graph((members.shape[0],) * 2, xadj, adjncy)
        dec = decompose(sub, sub_patch, Q, levels - s, first_level=s, pool=SERIAL, **options)
        _place(below, members, dec.node_of, first + k, s)
        return dec.stats

    tasks = [k for k in range(count) if bounds[k + 1] > bounds[k]]
    for sub_stats in pool(subtree, tasks):
        _merge_stats(stats, sub_stats, s)
    stats["subtree_tasks"] = len(tasks)
    in_subtree = node_of >= first
    node_of = np.where(in_subtree, below, node_of).astype(np.int32)
    stats["t_subtrees_s"] = clock() - t1
    return node_of, stats
