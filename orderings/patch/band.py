"""Band refinement of vertex separators (as Scotch's band graphs).

A separator that follows patch boundaries can be off by up to a patch radius, more than local FM
moves can repair. Here every node's separator is re-computed on a *band graph*: the vertices
within ``width`` hops of the current separator, plus one super-vertex per side standing for
everything beyond the band (weighted by its vertex count, so balance still sees the whole node).
``method="flow"`` (the default) takes the smallest separator of the band between the two
super-vertices, exactly, by maximum flow (:mod:`.flow`); it is kept if it is smaller and leaves
neither side above UBFACTOR / 2 of the node (or above that side's old share), else METIS decides.
``method="metis"`` asks METIS's multilevel vertex separator, which may put the separator anywhere
inside the band; its result is kept only if the two super-vertices land on opposite sides and
the separator got smaller.

Vertex places are read lazily as in :mod:`.refine` (0 / 1 side, 2 separator, -1 out of play).
"""

from __future__ import annotations

import numba
import numpy as np

from .flow import min_separator
from .metis_sep import vertex_separator
from .refine import _where
from .pool import SERIAL

#: Band refinement methods (see the module docstring).
BAND_METHODS = ("flow", "metis")
#: A flow separator may leave a side up to this share of its node (FM's bound, see .decompose).
MAX_SIDE_SHARE = 0.6


@numba.njit(cache=True, nogil=True)
def _ball_radius(indptr, indices, starts, size):
    """Median over ``starts`` of the hops a breadth-first search needs to reach ``size`` vertices."""
    n = indptr.shape[0] - 1
    seen = np.full(n, -1, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.int64)
    radii = np.empty(starts.shape[0], dtype=np.int64)
    for i in range(starts.shape[0]):
        s = starts[i]
        seen[s] = i
        queue[0] = s
        dist[0] = 0
        head, tail = 0, 1
        r = 0
        while head < tail and tail < size:
            v = queue[head]
            r = dist[head]
            head += 1
            for p in range(indptr[v], indptr[v + 1]):
                u = indices[p]
                if seen[u] != i:
                    seen[u] = i
                    queue[tail] = u
                    dist[tail] = dist[head - 1] + 1
                    tail += 1
        radii[i] = dist[tail - 1] if tail > 1 else 0
    return np.median(radii)


def patch_radius(graph, patch_size: int, samples: int = 33) -> float:
    """Hops from a vertex to the edge of a ball of ``patch_size`` vertices (median of a few,
    deterministic, sample vertices): about 4 on a triangle mesh with 64-vertex patches, 2 on a
    tetrahedral one. Band widths scale with it, so they cover patch-sized errors in any dimension."""
    n = graph.shape[0]
    starts = (np.arange(samples, dtype=np.int64) * n) // samples
    return float(_ball_radius(graph.indptr, graph.indices, starts, int(patch_size)))


@numba.njit(cache=True, nogil=True)
def _band(indptr, indices, sep, node_start, state, sep_node, patch_of, side, width):
    """Band vertices of every node (breadth-first from its separator, at most ``width`` hops, over
    vertices in play), grouped by node; and each band vertex's position in that list."""
    n = state.shape[0]
    pos = np.full(n, -1, dtype=np.int64)
    band = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.int64)
    band_start = np.zeros(node_start.shape[0], dtype=np.int64)
    tail = 0
    for k in range(node_start.shape[0] - 1):
        head = tail
        for i in range(node_start[k], node_start[k + 1]):
            v = sep[i]
            pos[v] = tail
            band[tail] = v
            dist[tail] = 0
            tail += 1
        while head < tail:
            v = band[head]
            d = dist[head]
            head += 1
            if d == width:
                continue
            for p in range(indptr[v], indptr[v + 1]):
                u = indices[p]
                if pos[u] == -1 and _where(u, state, sep_node, patch_of, side) >= 0:
                    pos[u] = tail
                    band[tail] = u
                    dist[tail] = d + 1
                    tail += 1
        band_start[k + 1] = tail
    return band[:tail], band_start, pos


@numba.njit(cache=True, nogil=True)
def _band_graph(indptr, indices, band, band_start, pos, state, sep_node, patch_of, side, outside):
    """Block-diagonal CSR over all band graphs: node k's block holds its band vertices, then its two
    super-vertices (side 0, side 1); vertex weights; and the first position of every block."""
    n_nodes = band_start.shape[0] - 1
    n_pos = band.shape[0] + 2 * n_nodes
    block_start = np.zeros(n_nodes + 1, dtype=np.int64)
    for k in range(n_nodes):
        block_start[k + 1] = block_start[k] + (band_start[k + 1] - band_start[k]) + 2
    # Position of band vertex i is i + 2k for its node k (two super-vertices per earlier block).
    degree = np.zeros(n_pos, dtype=np.int64)
    links = np.zeros((band.shape[0], 2), dtype=np.bool_)  # band vertex touches outside side s
    vwgt = np.ones(n_pos, dtype=np.int32)
    for k in range(n_nodes):
        in_band = np.zeros(2, dtype=np.int64)
        for i in range(band_start[k], band_start[k + 1]):
            v = band[i]
            w = _where(v, state, sep_node, patch_of, side)
            if w < 2:
                in_band[w] += 1
            for p in range(indptr[v], indptr[v + 1]):
                u = indices[p]
                if pos[u] >= 0:
                    degree[i + 2 * k] += 1
                else:
                    wu = _where(u, state, sep_node, patch_of, side)
                    if wu == 0 or wu == 1:
                        links[i, wu] = True
            for s in range(2):
                if links[i, s]:
                    degree[i + 2 * k] += 1
                    degree[block_start[k + 1] - 2 + s] += 1
        for s in range(2):
            vwgt[block_start[k + 1] - 2 + s] = max(1, outside[k, s] - in_band[s])
    xadj = np.zeros(n_pos + 1, dtype=np.int64)
    for i in range(n_pos):
        xadj[i + 1] = xadj[i] + degree[i]
    adjncy = np.empty(xadj[n_pos], dtype=np.int32)
    fill = xadj[:-1].copy()
    for k in range(n_nodes):
        for i in range(band_start[k], band_start[k + 1]):
            v = band[i]
            a = i + 2 * k
            for p in range(indptr[v], indptr[v + 1]):
                u = indices[p]
                if pos[u] >= 0:
                    adjncy[fill[a]] = pos[u] + 2 * k
                    fill[a] += 1
            for s in range(2):
                if links[i, s]:
                    b = block_start[k + 1] - 2 + s
                    adjncy[fill[a]] = b
                    fill[a] += 1
                    adjncy[fill[b]] = a
                    fill[b] += 1
    # Local ids inside each block, as METIS expects.
    for k in range(n_nodes):
        for q in range(xadj[block_start[k]], xadj[block_start[k + 1]]):
            adjncy[q] -= block_start[k]
    return xadj, adjncy, vwgt, block_start


def band_refine(graph, sep, node_start, state, sep_node, patch_of, side, outside, width, seed=0, pool=SERIAL,
                method="flow"):
    """Recompute each node's separator on its band graph (``method``: flow | metis); keep
    improvements.

    ``sep``/``node_start``: the level's separator grouped by node (``state`` marks it 3);
    ``outside[k]``: node k's vertex count on side 0 / 1. Updates ``state`` for the band vertices of
    improved nodes and returns them, with the number of improved nodes and of nodes where a flow
    separator was refused and METIS decided. The calls (one per node, independent) go through
    ``pool``.
    """
    band, band_start, pos = _band(graph.indptr, graph.indices, sep, node_start, state, sep_node,
                                  patch_of, side, width)
    xadj, adjncy, vwgt, block_start = _band_graph(graph.indptr, graph.indices, band, band_start, pos, state,
                                                  sep_node, patch_of, side, outside)
    changed = []
    improved = 0
    nodes = [k for k in range(band_start.shape[0] - 1) if node_start[k + 1] > node_start[k]]

    def separate(k):
        s, e = block_start[k], block_start[k + 1]
        p0, p1 = xadj[s], xadj[e]
        x, adj, w = xadj[s:e + 1] - p0, adjncy[p0:p1], vwgt[s:e]
        hubs_linked = x[-2] > x[-3] and x[-1] > x[-2]
        if method == "flow" and hubs_linked:
            part, size = min_separator(x, adj, e - s - 2, e - s - 1)
            weights = np.bincount(part, weights=w, minlength=3)
            balanced = all(weights[j] <= max(MAX_SIDE_SHARE * weights.sum(), outside[k, j]) for j in range(2))
            # Not smaller than the old one: none smaller exists in the band, nothing to ask METIS.
            if balanced or size >= node_start[k + 1] - node_start[k]:
                return part, False
        return vertex_separator(x, adj, seed, w), method == "flow"

    refused = 0
    for k, (part, fallback) in zip(nodes, pool(separate, nodes)):
        refused += fallback
        s, e = block_start[k], block_start[k + 1]
        old = node_start[k + 1] - node_start[k]
        a, b = part[-2], part[-1]
        new = int((part[:-2] == 2).sum())
        # The super-vertices must end on opposite sides; one without edges (the band swallowed
        # that whole side) constrains nothing.
        a_free, b_free = xadj[e - 1] == xadj[e - 2], xadj[e] == xadj[e - 1]
        if a_free:
            a = 1 - b if b < 2 else 0
        if b_free:
            b = 1 - a
        if a == 2 or b == 2 or a == b or new >= old:
            continue
        where = part[:-2].astype(np.int8)
        if a == 1:  # METIS may name the sides the other way round
            where = np.where(where == 2, 2, 1 - where).astype(np.int8)
        verts = band[band_start[k]:band_start[k + 1]]
        state[verts] = where + 1
        changed.append(verts)
        improved += 1
    touched = np.concatenate(changed) if changed else np.zeros(0, dtype=np.int64)
    return touched, improved, refused
