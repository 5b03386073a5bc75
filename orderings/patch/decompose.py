"""Step 2 of the patch ordering: the nested-dissection tree, built level by level on patches.

The tree is complete and binary: node t has children 2t+1 and 2t+2, level l holds nodes
2^l - 1 .. 2^(l+1) - 2. A patch's remaining (non-separator) vertices always sit in one node, so the
state is per patch (``node_of_patch``, ``patch_weight``), plus the separator node of every vertex
already taken into a separator (``sep_node``). When separator refinement moves a vertex to the
side its patch did not go to, the vertex leaves for a new patch (one per old patch and level), so
that invariant survives; only the fine edges around moved vertices need re-labelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from .band import band_refine
from .blocks import block_graph, block_slice, group_bounds
from .metis_sep import vertex_separator
from .quotient import QuotientGraph, quotient_edges
from .refine import refine_level
from .separators import bisect_patches, cut_by_node, min_vertex_cover
from .pool import SERIAL


#: FM balance bound: a side may hold up to UBFACTOR / 2 of a node (METIS's nested dissection
#: default allows 1.2 as well).
UBFACTOR = 1.2
#: FM stops a pass after this many moves without a better separator.
MAX_BAD_MOVES = 50


@dataclass
class Decomposition:
    node_of: np.ndarray  # tree node of every vertex (int32)
    levels: int  # L: separators on levels 0..L-1, leaves on level L
    stats: dict = field(default_factory=dict)
    patch_of: np.ndarray | None = None  # final patches (a moved vertex leaves its patch for a new one)
    edge_u: np.ndarray | None = None  # the inter-patch edges inside one leaf (both ends there)
    edge_v: np.ndarray | None = None


def tree_levels(n_patches: int, nd_levels: int, n: int | None = None, leaf_size: int = 1) -> int:
    """L = min(nd_levels, floor(log2 #patches), floor(log2(n / leaf_size))): at most 2^L leaves,
    of about ``leaf_size`` vertices or more. A graph of fewer than 2 * leaf_size vertices gets no
    separator at all (L = 0: the local step alone, i.e. minimum degree on the whole graph)."""
    if n_patches < 2:
        return 0
    by_leaf = int(np.floor(np.log2(max(1.0, n / max(1, leaf_size))))) if n is not None else nd_levels
    return int(min(max(0, nd_levels), int(np.floor(np.log2(n_patches))), by_leaf))


@numba.njit(cache=True, nogil=True)
def _incident_edges(indptr, indices, verts, is_member, patch_of, sep_node):
    """Every edge with at least one end in ``verts`` (``is_member`` marks them), once each, that
    joins two patches and has no end in a separator."""
    count = 0
    for v in verts:
        count += indptr[v + 1] - indptr[v]
    a = np.empty(count, dtype=np.int32)
    b = np.empty(count, dtype=np.int32)
    k = 0
    for v in verts:
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            # An edge between two members is seen from both ends: keep it once.
            if (not is_member[u] or v < u) and patch_of[u] != patch_of[v] and sep_node[u] < 0 and sep_node[v] < 0:
                a[k] = v
                b[k] = u
                k += 1
    return a[:k], b[:k]


@numba.njit(cache=True, nogil=True)
def _mark_live(edge_u, edge_v, a, b, is_moved, sep_node, patch_of, node_of_patch, lo, hi, keep, counts, c):
    """keep[i] for i in lo..hi-1 over the old edges (``edge_*``) followed by the new ones (``a``,
    ``b``): the edge can still be cut (an old one has no moved end; both ends outside any
    separator and in one tree node: edges between different nodes never meet again); counts[c] =
    how many are kept."""
    m_old = edge_u.shape[0]
    count = 0
    for i in range(lo, hi):
        x, y = (edge_u[i], edge_v[i]) if i < m_old else (a[i - m_old], b[i - m_old])
        keep[i] = ((i >= m_old or not (is_moved[x] or is_moved[y])) and sep_node[x] < 0 and sep_node[y] < 0
                   and node_of_patch[patch_of[x]] == node_of_patch[patch_of[y]])
        count += keep[i]
    counts[c] = count


@numba.njit(cache=True, nogil=True)
def _write_live(edge_u, edge_v, edge_q, a, b, q, q_offset, keep, lo, hi, at, out_u, out_v, out_q):
    """Write the kept edges among lo..hi-1 from position ``at`` on (new edges' quotient edges
    shifted by ``q_offset``)."""
    m_old = edge_u.shape[0]
    for i in range(lo, hi):
        if keep[i]:
            if i < m_old:
                out_u[at], out_v[at], out_q[at] = edge_u[i], edge_v[i], edge_q[i]
            else:
                out_u[at], out_v[at], out_q[at] = a[i - m_old], b[i - m_old], q_offset + q[i - m_old]
            at += 1


@numba.njit(cache=True, nogil=True, parallel=True)
def _mark_live_chunks(edge_u, edge_v, a, b, is_moved, sep_node, patch_of, node_of_patch, keep, counts):
    """:func:`_mark_live` on counts.shape[0] equal pieces of the edges; counts[c] = piece c's kept."""
    chunks, m = counts.shape[0], keep.shape[0]
    for c in numba.prange(chunks):
        _mark_live(edge_u, edge_v, a, b, is_moved, sep_node, patch_of, node_of_patch, c * m // chunks,
                   (c + 1) * m // chunks, keep, counts, c)


@numba.njit(cache=True, nogil=True, parallel=True)
def _write_live_chunks(edge_u, edge_v, edge_q, a, b, q, q_offset, keep, at, out_u, out_v, out_q):
    """:func:`_write_live` on the same pieces, piece c from position at[c]."""
    chunks, m = at.shape[0], keep.shape[0]
    for c in numba.prange(chunks):
        _write_live(edge_u, edge_v, edge_q, a, b, q, q_offset, keep, c * m // chunks, (c + 1) * m // chunks, at[c],
                    out_u, out_v, out_q)


@numba.njit(cache=True, nogil=True)
def _node_weights_of(patch_weight, node_of_patch, patch_of, side, state, touched, first, n_nodes):
    """(side 0, side 1, separator) vertex counts per node of the level: the patches' weights on
    their sides, corrected for the ``touched`` vertices whose place ``state`` overrides."""
    weights = np.zeros((n_nodes, 3), dtype=np.int64)
    for p in range(patch_weight.shape[0]):
        if patch_weight[p] > 0:
            weights[node_of_patch[p] - first, side[p]] += patch_weight[p]
    for v in touched:
        k = node_of_patch[patch_of[v]] - first
        weights[k, side[patch_of[v]]] -= 1
        weights[k, state[v] - 1] += 1
    return weights


def unique_vertices(n: int, *arrays) -> np.ndarray:
    """Sorted distinct vertex ids of the arrays: a mark-and-scan, cheaper than np.unique on
    hundreds of thousands of ids."""
    mark = np.zeros(n, dtype=bool)
    for a in arrays:
        mark[a] = True
    return np.flatnonzero(mark)


class _State:
    """Mutable bookkeeping of the level loop (patches, separator nodes, inter-patch edges)."""

    def __init__(self, patch_of: np.ndarray, Q: QuotientGraph):
        n = patch_of.shape[0]
        self.n = n
        self.patch_of = patch_of.copy()
        self.node_of_patch = np.zeros(Q.n_patches, dtype=np.int64)
        self.patch_weight = Q.patch_size.copy()
        self.sep_node = np.full(n, -1, dtype=np.int32)
        self.lock, self.stamp_base = np.full(n, -1, dtype=np.int64), 0  # FM move stamps (see .refine)
        self.is_moved = np.zeros(n, dtype=np.bool_)  # this level's moved vertices, cleared by next_level
        self.edge_u, self.edge_v, self.edge_q = Q.edge_u, Q.edge_v, Q.edge_q
        self.q_a, self.q_b = Q.q_a, Q.q_b

    def next_level(self, moved, new_edges, pool=SERIAL):
        """Drop the edges that can no longer be cut, replace those touching ``moved`` vertices by
        ``new_edges`` (from :meth:`move_to_new_patches`, appended after the old ones); called once
        the level's nodes are set. Pieces of the edges mark and count, then write, in edge order,
        on numba's threads (:meth:`.pool.Pool.compiled`)."""
        a, b, q, q_offset = new_edges
        old = (self.edge_u, self.edge_v)
        look = (self.is_moved, self.sep_node, self.patch_of, self.node_of_patch)
        keep = np.empty(self.edge_u.shape[0] + a.shape[0], dtype=np.bool_)
        m, pieces = keep.shape[0], pool.pieces(keep.shape[0])
        counts = np.zeros(pieces, dtype=np.int64)
        pool.run_pass(pieces, lambda: _mark_live(*old, a, b, *look, 0, m, keep, counts, 0),
                      lambda: _mark_live_chunks(*old, a, b, *look, keep, counts))
        at = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        out = [np.empty(int(at[-1]), dtype=x.dtype) for x in (self.edge_u, self.edge_v, self.edge_q)]
        new = (a, b, q, q_offset, keep)
        pool.run_pass(pieces, lambda: _write_live(*old, self.edge_q, *new, 0, m, 0, *out),
                      lambda: _write_live_chunks(*old, self.edge_q, *new, at[:-1], *out))
        self.edge_u, self.edge_v, self.edge_q = out
        self.is_moved[moved] = False

    def take_separator(self, sep):
        self.sep_node[sep] = self.node_of_patch[self.patch_of[sep]]
        self.patch_weight -= np.bincount(self.patch_of[sep], minlength=self.patch_weight.shape[0])

    def move_to_new_patches(self, graph, moved, side):
        """Vertices ``moved`` went to the other side than their patch: give them new patches
        (one per old patch). Returns the extended side and the fine edges around them that now
        join two patches, with their (new) quotient edges, for :meth:`next_level`."""
        old = self.patch_of[moved]
        olds, inv, counts = np.unique(old, return_inverse=True, return_counts=True)
        first_new = self.patch_weight.shape[0]
        self.patch_of[moved] = first_new + inv
        self.patch_weight[olds] -= counts
        self.patch_weight = np.concatenate([self.patch_weight, counts])
        self.node_of_patch = np.concatenate([self.node_of_patch, self.node_of_patch[olds]])
        side = np.concatenate([side, 1 - side[olds]])
        # Edges touching a moved vertex: drop the old entries, add back those now between patches.
        self.is_moved[moved] = True
        a, b = _incident_edges(graph.indptr, graph.indices, moved, self.is_moved, self.patch_of, self.sep_node)
        # Every re-labelled edge touches a new patch, so its patch pair is a new quotient edge.
        q_a, q_b, edge_q, _ = quotient_edges(a, b, self.patch_of, self.patch_weight.shape[0])
        n_q = self.q_a.shape[0]
        self.q_a = np.concatenate([self.q_a, q_a])
        self.q_b = np.concatenate([self.q_b, q_b])
        return side, (a, b, edge_q, n_q)


def _group_by_node(st: _State, verts, first, n_nodes):
    node = st.node_of_patch[st.patch_of[verts]] - first
    order = np.argsort(node, kind="stable")
    return verts[order].astype(np.int64), np.searchsorted(node[order], np.arange(n_nodes + 1)).astype(np.int64)


def _node_weights(st: _State, side, first, n_nodes, state, touched):
    """(side 0, side 1, separator) vertex counts per node, with the places in ``state``."""
    return _node_weights_of(st.patch_weight, st.node_of_patch, st.patch_of, side, state, touched, first, n_nodes)


def _improve(graph, st: _State, side, sep, first, n_nodes, state, band_width, fm_passes, seed, pool=SERIAL,
             band_method="flow"):
    """Improve the level's separators on the fine graph: the smallest separator of a band around
    them (when ``band_width`` > 0; :mod:`.band`), then FM passes. Returns (new separator, vertices
    that changed side)."""
    state[sep] = 3
    touched = [sep]
    stats = {"band_improved_nodes": 0, "band_metis_fallbacks": 0}
    if band_width > 0:
        grouped, node_start = _group_by_node(st, sep, first, n_nodes)
        outside = _node_weights(st, side, first, n_nodes, state, sep)[:, :2]
        changed, stats["band_improved_nodes"], stats["band_metis_fallbacks"] = band_refine(
            graph, grouped, node_start, state, st.sep_node, st.patch_of, side, outside, band_width, seed, pool,
            band_method)
        touched.append(changed)
    if fm_passes > 0:
        every = unique_vertices(st.n, *touched)
        current = every[state[every] == 3]
        grouped, node_start = _group_by_node(st, current, first, n_nodes)
        weights = _node_weights(st, side, first, n_nodes, state, every)
        touched.append(refine_level(graph.indptr, graph.indices, state, st.sep_node, st.patch_of, side,
                                    grouped, node_start, weights, UBFACTOR, int(fm_passes), MAX_BAD_MOVES, pool,
                                    st.lock, st.stamp_base))
        st.stamp_base += n_nodes * int(fm_passes)
    every = unique_vertices(st.n, *touched)
    where = state[every].astype(np.int64) - 1
    state[every] = 0
    new_sep = every[where == 2]
    moved = every[(where != 2) & (where != side[st.patch_of[every]])]
    return new_sep, moved, stats


def _direct(graph, st: _State, first, seed, pool=SERIAL):
    """METIS's vertex separator on the real subgraph of every node of the level. Returns the
    side of every patch (the side most of its vertices went to), the separator, and the vertices
    that went to the other side than their patch."""
    active = st.sep_node < 0
    label = np.where(active, st.node_of_patch[st.patch_of] - first, -1).astype(np.int32)
    order, B, sorted_label = block_graph(graph, label)
    where = np.full(st.n, -1, dtype=np.int8)

    def separate(bounds):
        s, e = bounds
        indptr, indices = block_slice(B, s, e)
        if indices.shape[0] == 0:
            # No edges: nothing to separate; split the vertices evenly.
            return (np.arange(e - s) >= (e - s) // 2).astype(np.int8)
        return vertex_separator(indptr, indices, seed)

    blocks = list(zip(*group_bounds(sorted_label)))
    for (s, e), part in zip(blocks, pool(separate, blocks)):
        where[order[s:e]] = part
    sep = np.flatnonzero(where == 2)
    rest = np.flatnonzero(where == 0), np.flatnonzero(where == 1)
    n_p = st.patch_weight.shape[0]
    on_side = [np.bincount(st.patch_of[r], minlength=n_p) for r in rest]
    side = (on_side[1] > on_side[0]).astype(np.int8)
    moved = np.concatenate([r[side[st.patch_of[r]] != k] for k, r in enumerate(rest)])
    return side, sep, moved


def _best_trial(st: _State, sides: np.ndarray, first: int, n_nodes: int, pool=SERIAL):
    """Per node, keep the trial bisection whose cut has the smallest minimum vertex cover."""
    covers = [min_vertex_cover(*cut_by_node(st.edge_u, st.edge_v, st.patch_of, side, st.node_of_patch, first, n_nodes,
                                            pool), pool) for side in sides]
    if len(covers) == 1:
        return sides[0], covers[0]
    size = np.stack([np.bincount(st.node_of_patch[st.patch_of[c]] - first, minlength=n_nodes) for c in covers])
    best = np.argmin(size, axis=0)  # first trial on ties
    live = st.patch_weight > 0
    k_patch = np.where(live, st.node_of_patch - first, 0)
    side = np.where(live, sides[best[k_patch], np.arange(sides.shape[1])], 0).astype(np.int8)
    cover = np.concatenate([c[best[st.node_of_patch[st.patch_of[c]] - first] == t] for t, c in enumerate(covers)])
    return side, cover


def decompose(graph, patch_of: np.ndarray, Q: QuotientGraph, levels: int, metis_options: dict, *,
              direct_levels: int = 0, unit_edge_weights: bool = False, recursive: bool = False,
              trials: int = 1, band_width: int = 0, band_levels: int = 0, band_method: str = "flow",
              refine_passes: int = 0, seed: int = 0, first_level: int = 0, leaf_edges: bool = False, pool=SERIAL) -> Decomposition:
    """Build the tree top-down, one level per pass (step 2).

    Levels below ``direct_levels`` use METIS's vertex separator on each node's real subgraph;
    the others bisect the node's quotient subgraph with METIS (``metis_options`` with seeds
    seed, seed+1, ...; recursive bisection or k-way) ``trials`` times on the root level, half as
    many on each level below (top separators matter most), keep per node the bisection whose
    cut has the smallest minimum vertex cover, then improve it on the fine graph: the smallest
    separator (``band_method``: flow | metis, see :mod:`.band`) of a band of ``band_width`` hops
    around it on the first ``band_levels`` levels, and ``refine_passes`` (none after a flow separator)
    FM passes. The METIS calls of a level (one per node) go through ``pool``.

    ``first_level``: the depth of this graph's root in a larger tree (when the graph is one of its
    nodes, see :mod:`.subtrees`); the per-depth settings above (trials, band and direct levels)
    count from the larger tree's root. ``leaf_edges``: also return the inter-patch edges inside
    each leaf (the leaves' own quotient graphs, for :mod:`.subtrees`).
    """
    st = _State(patch_of, Q)
    state = np.zeros(patch_of.shape[0], dtype=np.int8)  # separator improvement scratch (see .refine)
    sep_sizes, cover_sizes = [], []
    counts = {"metis_calls": 0, "one_sided": 0, "single_patch_nodes": 0, "direct_levels": 0,
              "band_improved_nodes": 0, "band_metis_fallbacks": 0}
    moved_total = 0
    for level in range(levels):
        first, n_nodes = (1 << level) - 1, 1 << level
        depth = first_level + level
        if depth < direct_levels:
            side, sep, moved = _direct(graph, st, first, seed, pool)
            counts["direct_levels"] += 1
            cover_sizes.append(int(sep.shape[0]))
        else:
            trial_options = [dict(metis_options, seed=seed + t) for t in range(max(1, trials >> depth))]
            sides, bst = bisect_patches(st.node_of_patch, st.patch_weight, st.q_a, st.q_b, st.edge_q, first, n_nodes,
                                        trial_options, recursive, unit_edge_weights, pool)
            for key in bst:
                counts[key] += bst[key]
            side, sep = _best_trial(st, sides, first, n_nodes, pool)
            cover_sizes.append(int(sep.shape[0]))
            moved = sep[:0]
            width = band_width if depth < band_levels else 0
            # A flow separator is the smallest in its band: FM moves inside the band cannot
            # shrink it (measured: same fill without them, results/patch/README.md).
            passes = 0 if (width > 0 and band_method == "flow") else refine_passes
            if (passes > 0 or width > 0) and sep.shape[0] > 0:
                sep, moved, ist = _improve(graph, st, side, sep, first, n_nodes, state, width, passes, seed,
                                           pool, band_method)
                for key in ist:
                    counts[key] += ist[key]
        st.take_separator(sep)
        none = np.zeros(0, dtype=np.int32)
        new_edges = (none, none, none, 0)
        if moved.shape[0]:
            moved_total += int(moved.shape[0])
            side, new_edges = st.move_to_new_patches(graph, moved, side)
        sep_sizes.append(int(sep.shape[0]))
        st.node_of_patch = 2 * st.node_of_patch + 1 + side
        if level + 1 < levels or leaf_edges:
            st.next_level(moved, new_edges, pool)
    node_of = np.where(st.sep_node >= 0, st.sep_node, st.node_of_patch[st.patch_of]).astype(np.int32)
    # With ``leaf_edges``, the edges left join patches of one leaf: a leaf's own quotient graph.
    stats = dict(counts)
    stats["separator_sizes_per_level"] = sep_sizes
    stats["cover_sizes_per_level"] = cover_sizes
    stats["moved_vertices"] = moved_total
    return Decomposition(node_of=node_of, levels=levels, stats=stats, patch_of=st.patch_of, edge_u=st.edge_u,
                         edge_v=st.edge_v)
