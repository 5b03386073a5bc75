"""The smallest vertex separator of a band graph, by maximum flow (unit vertex capacities).

A band graph (see :mod:`.band`) holds the vertices near a node's separator and two super-vertices
standing for everything beyond the band on side 0 and on side 1. Every set of band vertices whose
removal disconnects the two super-vertices is a separator of the whole node, and by Menger's
theorem the smallest such set has as many vertices as there are vertex-disjoint paths between them:
a maximum flow with capacity 1 on every band vertex finds it exactly, where METIS's multilevel
heuristic searches the same band for a small one.

Vertex capacities become arc capacities in the usual split graph: vertex v is an arc in(v) ->
out(v) (capacity 1; unbounded for the super-vertices), and each edge {u, v} is a pair of unbounded
arcs out(u) -> in(v), out(v) -> in(u). Node 2v is in(v), 2v + 1 is out(v).
"""

from __future__ import annotations

import numba
import numpy as np

_UNBOUNDED = np.int32(1 << 30)
#: Push-relabel recomputes exact distances after this many relabels per node (0.2-0.5 measured
#: best on band graphs of grids and meshes; 2.0 was 1.3-2x slower).
GLOBAL_RELABEL = 0.3


@numba.njit(cache=True, nogil=True)
def _split_graph(xadj, adjncy, source, sink):
    """Arcs of the split graph grouped by tail node: head, residual capacity, reverse arc.

    out(v)'s arcs: the reverse of in(v) -> out(v) (capacity 0), then one arc to in(u) per
    neighbour u, in ``adjncy``'s order; in(v)'s arcs: its own arc to out(v), then the reverses
    (capacity 0) of the arcs out(u) -> in(v), in the order they are made (u ascending)."""
    n = xadj.shape[0] - 1
    start = np.empty(2 * n + 1, dtype=np.int64)
    start[0] = 0
    for v in range(n):
        deg = xadj[v + 1] - xadj[v]
        start[2 * v + 1] = start[2 * v] + deg + 1
        start[2 * v + 2] = start[2 * v + 1] + deg + 1
    m = start[2 * n]
    head = np.empty(m, dtype=np.int64)
    cap = np.zeros(m, dtype=np.int32)
    rev = np.empty(m, dtype=np.int64)
    filled = np.ones(n, dtype=np.int64)  # in(u)'s next free slot (slot 0: its own arc)
    for v in range(n):
        a_in, a_out = start[2 * v], start[2 * v + 1]
        head[a_in], head[a_out] = 2 * v + 1, 2 * v
        cap[a_in] = _UNBOUNDED if (v == source or v == sink) else 1
        rev[a_in], rev[a_out] = a_out, a_in
        for j in range(xadj[v + 1] - xadj[v]):
            u = adjncy[xadj[v] + j]
            fwd = a_out + 1 + j
            back = start[2 * u] + filled[u]
            filled[u] += 1
            head[fwd], cap[fwd] = 2 * u, _UNBOUNDED
            head[back], cap[back] = 2 * v + 1, 0
            rev[fwd], rev[back] = back, fwd
    return start, head, cap, rev


@numba.njit(cache=True, nogil=True)
def _distances(start, head, cap, rev, root, d, queue, backwards, goal):
    """Breadth-first distances from ``root`` over arcs with residual capacity, or with
    ``backwards`` the distances to it (from x to head[a] when the reverse arc rev[a], which leads
    into x, has capacity); unreached nodes get the number of nodes. With ``goal`` >= 0 the search
    stops after the goal's level: nodes further out lie on no shortest path to it."""
    nodes = d.shape[0]
    d[:] = nodes
    d[root] = 0
    queue[0] = root
    qh, qt = 0, 1
    while qh < qt:
        x = queue[qh]
        qh += 1
        if goal >= 0 and d[x] >= d[goal]:
            break
        for a in range(start[x], start[x + 1]):
            y = head[a]
            if d[y] == nodes and (cap[rev[a]] if backwards else cap[a]) > 0:
                d[y] = d[x] + 1
                queue[qt] = y
                qt += 1


@numba.njit(cache=True, nogil=True)
def _blocking_flow(start, head, cap, rev, s, t, level, current, path):
    """Augment along shortest paths until none is left (one Dinic phase). Every path carries one
    unit: it passes through at least one band vertex. Returns the units pushed."""
    current[:] = start[:-1]
    pushed = 0
    depth = 0
    x = s
    while True:
        if x == t:
            for i in range(depth):
                a = path[i]
                cap[a] -= 1
                cap[rev[a]] += 1
            pushed += 1
            depth = 0
            x = s
            continue
        advanced = False
        while current[x] < start[x + 1]:
            a = current[x]
            y = head[a]
            if cap[a] > 0 and level[y] == level[x] + 1:
                path[depth] = a
                depth += 1
                x = y
                advanced = True
                break
            current[x] += 1
        if not advanced:
            if x == s:
                return pushed
            level[x] = -1  # dead end: no path to t through x in this phase
            depth -= 1
            x = head[rev[path[depth]]]
            current[x] += 1


@numba.njit(cache=True, nogil=True)
def _preflow(start, head, cap, rev, s, t):
    """Push-relabel (FIFO, global relabelling) from the flow in ``cap`` up to a maximum preflow;
    returns the flow added. Afterwards the nodes with a residual path to t are the sink side of a
    minimum cut."""
    nodes = start.shape[0] - 1
    d = np.empty(nodes, dtype=np.int64)
    queue = np.empty(nodes, dtype=np.int64)
    excess = np.zeros(nodes, dtype=np.int64)
    current = start[:-1].copy()
    active = np.empty(nodes + 1, dtype=np.int64)  # circular FIFO
    queued = np.zeros(nodes, dtype=np.bool_)
    _distances(start, head, cap, rev, t, d, queue, True, -1)
    d[s] = nodes
    qh, qt = 0, 0
    # Saturate the source's arcs. Each leads to a band vertex's in-node, whose only way on has
    # capacity 1, so they act as arcs of capacity 1 (same flows); one may carry a unit already.
    for a in range(start[s], start[s + 1]):
        if cap[a] > 0:
            y = head[a]
            cap[a] = 0
            if cap[rev[a]] > 0:
                continue
            cap[rev[a]] = 1
            excess[y] += 1
            if y != t and not queued[y] and d[y] < nodes:
                queued[y] = True
                active[qt] = y
                qt = (qt + 1) % (nodes + 1)
    relabels = 0
    while qh != qt:
        x = active[qh]
        qh = (qh + 1) % (nodes + 1)
        queued[x] = False
        while excess[x] > 0 and d[x] < nodes:
            a = current[x]
            if a == start[x + 1]:
                low = nodes
                for b in range(start[x], start[x + 1]):
                    if cap[b] > 0 and d[head[b]] + 1 < low:
                        low = d[head[b]] + 1
                d[x] = low
                current[x] = start[x]
                relabels += 1
                continue
            y = head[a]
            if cap[a] > 0 and d[x] == d[y] + 1:
                delta = min(excess[x], cap[a])
                cap[a] -= delta
                cap[rev[a]] += delta
                excess[x] -= delta
                excess[y] += delta
                if y != t and y != s and not queued[y]:
                    queued[y] = True
                    active[qt] = y
                    qt = (qt + 1) % (nodes + 1)
            else:
                current[x] = a + 1
        if relabels > GLOBAL_RELABEL * nodes:
            # Exact distances again, so pushes head straight for t; nodes that can no longer
            # reach it drop out with their excess (the cut only needs a maximum preflow).
            relabels = 0
            _distances(start, head, cap, rev, t, d, queue, True, -1)
            d[s] = nodes
            current[:] = start[:-1]
            qh, qt = 0, 0
            queued[:] = False
            for y in range(nodes):
                if excess[y] > 0 and y != s and y != t and d[y] < nodes:
                    queued[y] = True
                    active[qt] = y
                    qt = (qt + 1) % (nodes + 1)
    return excess[t]


@numba.njit(cache=True, nogil=True)
def min_separator(xadj, adjncy, source, sink):
    """Smallest set of vertices (other than ``source`` and ``sink``, which must not be adjacent)
    that separates the two: part[v] = 0 on source's side, 1 on sink's, 2 in the separator (the
    smallest separator nearest the sink). Returns (part, separator size).

    One Dinic phase routes most of the flow along shortest paths (in a band, straight across it);
    push-relabel finishes, where further Dinic phases would each search the whole band for the
    few long paths left."""
    n = xadj.shape[0] - 1
    start, head, cap, rev = _split_graph(xadj, adjncy, source, sink)
    s, t = 2 * source + 1, 2 * sink
    nodes = 2 * n
    level = np.empty(nodes, dtype=np.int64)
    queue = np.empty(nodes, dtype=np.int64)
    size = 0
    _distances(start, head, cap, rev, s, level, queue, False, t)
    if level[t] < nodes:
        size += _blocking_flow(start, head, cap, rev, s, t, level, np.empty(nodes, dtype=np.int64),
                               np.empty(nodes, dtype=np.int64))
    size += _preflow(start, head, cap, rev, s, t)
    _distances(start, head, cap, rev, t, level, queue, True, -1)  # who still reaches t: its side
    part = np.empty(n, dtype=np.int8)
    for v in range(n):
        # Cut vertices: in-node on the source's side of the cut, out-node on the sink's.
        part[v] = 1 if level[2 * v] < nodes else (2 if level[2 * v + 1] < nodes else 0)
    return part, size
