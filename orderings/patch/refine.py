"""Fine-level refinement of vertex separators: Fiduccia–Mattheyses node moves (as METIS's
FM_2WayNodeRefine2Sided), for all nodes of one tree level in one compiled call.

A patch-boundary separator follows patch shapes, so it is jagged and longer than needed. FM moves
a separator vertex v to side s, which pulls v's neighbours on the other side into the separator;
the gain is 1 - (number of those neighbours). Moves are taken greedily by gain (negative gains
allowed, so the search can climb out of local minima), each vertex moves at most once per pass,
and the pass is rolled back to the smallest separator seen that keeps both sides within the
balance bound. Only vertices near the separator are touched, so a pass costs little.

A vertex's place ("where") is 0 / 1 (side), 2 (separator of this level) or -1 (out of play: an
earlier level's separator). It is read lazily — the side of the vertex's patch unless ``state``
overrides it — so no array of n entries is rebuilt per level. Active neighbours of an active
vertex always lie in the same tree node (earlier separators separate them), so no node test is
needed while walking adjacency lists.
"""

from __future__ import annotations

import heapq

import numba
import numpy as np

from .pool import SERIAL


@numba.njit(cache=True, inline="always")
def _where(v, state, sep_node, patch_of, side):
    s = state[v]
    if s != 0:
        return s - 1
    if sep_node[v] >= 0:
        return -1
    return side[patch_of[v]]


@numba.njit(cache=True, nogil=True)
def _gain(indptr, indices, state, sep_node, patch_of, side, v, to):
    """Gain of moving separator vertex v to side `to`: 1 - its neighbours on the other side."""
    other = 1 - to
    g = 1
    for p in range(indptr[v], indptr[v + 1]):
        if _where(indices[p], state, sep_node, patch_of, side) == other:
            g -= 1
    return g


def refine_level(indptr, indices, state, sep_node, patch_of, side, sep, node_start, weights,
                 ubfactor, max_passes, max_bad_moves, pool=SERIAL, lock=None, stamp_base=0):
    """Refine the separators of all nodes of one level.

    ``state`` (int8, zeros on entry): where-overrides + 1; this level's separator ``sep`` must be
    marked 3 by the caller. ``sep`` is grouped by node: node k owns ``sep[node_start[k]:
    node_start[k+1]]``; ``weights[k]`` = (side 0, side 1, separator) vertex counts of node k,
    updated in place. Returns every vertex whose state was set (the caller reads and resets them).

    The nodes are refined in runs (``pool.ranges``) on ``pool``: a node's moves read and write only its own
    vertices (active neighbours of an active vertex lie in the same node) and its own row of
    ``weights``, and the move stamps of different nodes never collide, so the nodes can run at
    once and the result does not depend on the number of threads.

    ``lock`` (int64, one per vertex, -1 or a stamp) may be kept from level to level (saves a fill
    of n entries per level) if ``stamp_base`` grows past every stamp used before: this level
    stamps from stamp_base + 1 to stamp_base + (number of nodes) * max_passes.
    """
    if lock is None:
        lock = np.full(state.shape[0], -1, dtype=np.int64)
    nodes = np.array([k for k in range(node_start.shape[0] - 1) if node_start[k + 1] > node_start[k]], dtype=np.int64)

    def run(bounds):
        a, b = bounds
        return _refine_nodes(indptr, indices, state, sep_node, patch_of, side, sep, node_start, nodes[a:b], weights,
                             lock, stamp_base, ubfactor, max_passes, max_bad_moves)

    pieces = [sep] + list(pool(run, pool.ranges(nodes.shape[0])))
    return np.concatenate(pieces).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _refine_nodes(indptr, indices, state, sep_node, patch_of, side, sep, node_start, nodes, weights, lock,
                  stamp_base, ubfactor, max_passes, max_bad_moves):
    """:func:`_refine_node` on each of ``nodes`` in turn; the vertices they pulled, in node order."""
    parts = []
    total = 0
    for k in nodes:
        got = _refine_node(indptr, indices, state, sep_node, patch_of, side, sep[node_start[k]:node_start[k + 1]],
                           weights[k], lock, np.int64(stamp_base + 1 + k * max_passes), ubfactor, max_passes, max_bad_moves)
        parts.append(got)
        total += got.shape[0]
    out = np.empty(total, dtype=np.int64)
    at = 0
    for got in parts:
        out[at:at + got.shape[0]] = got
        at += got.shape[0]
    return out


@numba.njit(cache=True, nogil=True)
def _refine_node(indptr, indices, state, sep_node, patch_of, side, sep, weights, lock, first_stamp,
                 ubfactor, max_passes, max_bad_moves):
    """FM passes on one node's separator ``sep``; ``weights`` is the node's (side 0, side 1,
    separator) counts, updated in place; stamps from ``first_stamp`` on mark this node's moves in
    ``lock``. Returns the vertices pulled into the separator (whose state this call set)."""
    touched = [np.int64(0)]
    touched.clear()
    stamp = first_stamp - 1
    total = weights[0] + weights[1] + weights[2]
    max_side = int(ubfactor * total / 2.0) + 1
    members = [np.int64(x) for x in sep]
    for _ in range(max_passes):
        stamp += 1
        heaps = [[(np.int64(0), np.int64(0))], [(np.int64(0), np.int64(0))]]
        heaps[0].clear()
        heaps[1].clear()
        for v in members:
            if state[v] == 3:
                for to in range(2):
                    g = _gain(indptr, indices, state, sep_node, patch_of, side, v, to)
                    heapq.heappush(heaps[to], (np.int64(-g), v))
        best_sep = weights[2]
        best_diff = abs(weights[0] - weights[1])
        best_moves = 0
        moves = [np.int64(0)]
        move_to = [np.int64(0)]
        pulled = [np.int64(0)]
        pulled_end = [np.int64(0)]
        moves.clear()
        move_to.clear()
        pulled.clear()
        limit = min(2 * sep.shape[0], max_bad_moves)
        while True:
            cand = np.full(2, -1, dtype=np.int64)
            gain = np.zeros(2, dtype=np.int64)
            for to in range(2):
                h = heaps[to]
                while len(h) > 0:
                    neg, v = h[0]
                    # Lazy heap: skip entries of vertices that left the separator, moved this
                    # pass, or whose gain changed since the push (a fresh entry exists).
                    if (state[v] != 3 or lock[v] == stamp
                            or -neg != _gain(indptr, indices, state, sep_node, patch_of, side, v, to)):
                        heapq.heappop(h)
                        continue
                    cand[to] = v
                    gain[to] = -neg
                    break
            if cand[0] < 0 and cand[1] < 0:
                break
            if cand[0] >= 0 and cand[1] >= 0:
                if gain[0] != gain[1]:
                    to = 0 if gain[0] > gain[1] else 1
                else:
                    to = 0 if weights[0] < weights[1] else 1
            else:
                to = 0 if cand[0] >= 0 else 1
            if weights[to] + 1 > max_side:
                to = 1 - to
                if cand[to] < 0 or weights[to] + 1 > max_side:
                    break
            v = cand[to]
            other = 1 - to
            lock[v] = stamp
            state[v] = to + 1
            weights[to] += 1
            weights[2] -= 1
            first_pulled = len(pulled)
            for p in range(indptr[v], indptr[v + 1]):
                u = np.int64(indices[p])
                if _where(u, state, sep_node, patch_of, side) == other:
                    if state[u] == 0:
                        touched.append(u)
                    state[u] = 3
                    weights[other] -= 1
                    weights[2] += 1
                    pulled.append(u)
                    members.append(u)
            # Gains changed around v and around every pulled vertex: push fresh entries.
            for q in range(first_pulled - 1, len(pulled)):
                x = v if q < first_pulled else pulled[q]
                for p in range(indptr[x], indptr[x + 1]):
                    u = np.int64(indices[p])
                    if state[u] == 3 and lock[u] != stamp:
                        for t in range(2):
                            g = _gain(indptr, indices, state, sep_node, patch_of, side, u, t)
                            heapq.heappush(heaps[t], (np.int64(-g), u))
            moves.append(v)
            move_to.append(np.int64(to))
            pulled_end.append(np.int64(len(pulled)))
            diff = abs(weights[0] - weights[1])
            if weights[2] < best_sep or (weights[2] == best_sep and diff < best_diff):
                best_sep = weights[2]
                best_diff = diff
                best_moves = len(moves)
            elif len(moves) - best_moves > limit:
                break
        # Roll back the moves after the best point, newest first.
        for m in range(len(moves) - 1, best_moves - 1, -1):
            to = move_to[m]
            other = 1 - to
            for q in range(pulled_end[m], pulled_end[m + 1]):
                state[pulled[q]] = other + 1
                weights[other] += 1
                weights[2] -= 1
            state[moves[m]] = 3
            weights[to] -= 1
            weights[2] += 1
        if best_moves == 0:
            break
        current = [np.int64(0)]
        current.clear()
        for v in members:
            if state[v] == 3 and lock[v] != -2:
                lock[v] = -2  # de-duplicate
                current.append(v)
        for v in current:
            lock[v] = -1
        members = current
    out = np.empty(len(touched), dtype=np.int64)
    for i in range(len(touched)):
        out[i] = touched[i]
    return out
