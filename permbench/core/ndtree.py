"""Nested-dissection (ND) trees: one convention, two layouts, the conversions between them.

The tree is a complete binary tree: node t has children 2t+1 and 2t+2, node 0 is the root
separator, and every node holds a set of vertices (a separator; at the bottom, a leaf's part).
It has ``levels`` levels of dissection and 2^(levels+1) - 1 nodes: ``levels = 0`` is one node
holding everything, 9 levels are 1023 nodes. This is the one meaning of ``levels`` in the code:
the patch ordering's ``nd_levels`` and its ``levels`` statistic, homa's ``nd_levels`` and logged
levels. cuDSS counts node levels instead (its ``ND_NLEVELS`` is ``levels + 1``); that conversion
is made where cuDSS is called (harness/backends/_cudss_session.py), nowhere else.

An ordering that returns a tree lists the nodes' vertices block after block in its permutation;
the layout is the order of those blocks and of :attr:`NDTree.sizes`:

* ``postorder``: left subtree, right subtree, then the node's own separator;
* ``reverse_bfs``: node ids descending, so all leaves first and the root separator last: the
  layout of cuDSS's ``USER_ND_PARTITION_TREE``.

Both are topological orders of the tree (every separator after its subtrees), so moving whole
blocks from one to the other keeps every node's local order and the fill (:func:`relayout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np

Layout = Literal["postorder", "reverse_bfs"]
LAYOUTS: tuple[str, ...] = ("postorder", "reverse_bfs")


def node_count(levels: int) -> int:
    """Nodes of a tree of ``levels`` dissection levels: 2^(levels+1) - 1."""
    return (1 << (levels + 1)) - 1


def levels_of(nodes: int) -> int:
    """Dissection levels of a tree of ``nodes`` nodes; raises ValueError unless nodes = 2^(levels+1) - 1."""
    levels = (nodes + 1).bit_length() - 2
    if nodes < 1 or node_count(levels) != nodes:
        raise ValueError(f"ND tree has {nodes} nodes; a complete binary tree has 2^(levels+1) - 1 "
                         "(1, 3, 7, ..., 1023)")
    return levels


def node_rank(levels: int, layout: str) -> np.ndarray:
    """rank[t]: position of node t in ``layout`` (nodes 0 .. 2^(levels+1) - 2)."""
    n_nodes = node_count(levels)
    if layout == "reverse_bfs":
        return np.arange(n_nodes - 1, -1, -1, dtype=np.int64)
    if layout != "postorder":
        raise ValueError(f"ND tree layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    rank = np.empty(n_nodes, dtype=np.int64)
    stack, k = [(0, False)], 0  # (node, children done): an iterative postorder of the implicit tree
    while stack:
        t, done = stack.pop()
        if done or 2 * t + 1 >= n_nodes:
            rank[t] = k
            k += 1
        else:
            stack += [(t, True), (2 * t + 2, False), (2 * t + 1, False)]
    return rank


@numba.njit(cache=True, nogil=True)
def counting_order(key: np.ndarray, n_keys: int):
    """The stable sort order of integer keys 0 <= key < n_keys, and where each key starts in it
    (n_keys + 1 bounds): a counting sort, linear in len(key) + n_keys."""
    start = np.zeros(n_keys + 1, dtype=np.int64)
    for k in key:
        start[k + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    fill = start[:-1].copy()
    order = np.empty(key.shape[0], dtype=np.int64)
    for i in range(key.shape[0]):
        order[fill[key[i]]] = i
        fill[key[i]] += 1
    return order, start


def group_by_node(sequence: np.ndarray, node_of: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Reorder ``sequence`` (vertices) so that their nodes follow ``rank`` (``node_rank``); one
    stable sort keeps the order of the vertices inside every node."""
    order, _ = counting_order(rank[node_of[sequence]], rank.shape[0])
    return sequence[order]


@dataclass(frozen=True, eq=False)
class NDTree:
    """The node sizes of an ND tree in ``layout`` order (2^(levels+1) - 1 of them, empty nodes as 0)."""

    sizes: np.ndarray
    layout: Layout

    def __post_init__(self):
        sizes = np.asarray(self.sizes)
        if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer) or (sizes < 0).any():
            raise ValueError(f"ND tree: sizes must be a 1-D array of non-negative integers, got "
                             f"shape {sizes.shape}, dtype {sizes.dtype}")
        levels_of(sizes.shape[0])
        if self.layout not in LAYOUTS:
            raise ValueError(f"ND tree layout {self.layout!r}: expected one of {', '.join(LAYOUTS)}")
        object.__setattr__(self, "sizes", sizes.astype(np.int64))

    @property
    def levels(self) -> int:
        return levels_of(self.sizes.shape[0])

    @classmethod
    def of_nodes(cls, node_of: np.ndarray, levels: int, layout: Layout) -> NDTree:
        """The tree whose node t holds the vertices v with node_of[v] == t."""
        sizes = np.empty(node_count(levels), dtype=np.int64)
        sizes[node_rank(levels, layout)] = np.bincount(node_of, minlength=sizes.shape[0])
        return cls(sizes, layout)

    def check(self, n: int) -> NDTree:
        """Raise ValueError unless the sizes cover the n vertices of the permutation exactly."""
        total = int(self.sizes.sum())
        if total != n:
            raise ValueError(f"ND tree: node sizes sum to {total}, expected n={n}")
        return self

    def node_at_positions(self) -> np.ndarray:
        """Node of each position of the permutation the tree comes with."""
        node_at_rank = np.argsort(node_rank(self.levels, self.layout))
        return np.repeat(node_at_rank, self.sizes)


def relayout(perm: np.ndarray, tree: NDTree, layout: Layout) -> tuple[np.ndarray, NDTree]:
    """(perm, tree) with the blocks moved into ``layout``: every node keeps its local order."""
    tree.check(perm.shape[0])
    if tree.layout == layout:
        return perm, tree
    node_of_position = tree.node_at_positions()
    rank = node_rank(tree.levels, layout)
    order, _ = counting_order(rank[node_of_position], rank.shape[0])
    sizes = np.empty_like(tree.sizes)
    sizes[rank] = tree.sizes[node_rank(tree.levels, tree.layout)]
    return perm[order], NDTree(sizes, layout)


def tree_from_etree(perm: np.ndarray, parent: np.ndarray, levels: int,
                    layout: Layout = "reverse_bfs") -> tuple[np.ndarray, NDTree]:
    """An ND tree for any permutation, read off its elimination tree ``parent`` (in the permuted
    numbering, parent[j] > j, -1 at roots): (perm', tree) with perm' a topological reordering of
    the elimination tree, so nnz(L) is exactly that of ``perm``."""
    if levels < 0:
        raise ValueError(f"ND tree: levels={levels}, expected >= 0")
    perm = np.ascontiguousarray(perm, dtype=np.int64)
    node_of = _tree_nodes_from_etree(np.ascontiguousarray(parent, dtype=np.int64), levels + 1)
    rank = node_rank(levels, layout)
    order, _ = counting_order(rank[node_of], rank.shape[0])  # stable: each node keeps the etree order
    return perm[order], NDTree.of_nodes(node_of, levels, layout)


@numba.njit(cache=True)
def _tree_nodes_from_etree(parent, node_levels):
    """Tree node (node t has children 2t+1, 2t+2; ``node_levels`` = levels + 1) of every etree vertex.

    Top-down over tree nodes: a node whose root set is a single etree vertex takes it as
    separator and descends to its children (the chain above a branching is what nested
    dissection eliminates last); a root set of several subtrees is split in two by greedy
    size balancing; at the leaf level each root takes its whole subtree. Two disjoint etree
    subtrees share no edge of A, so the result is a valid ND partition.
    """
    n = parent.shape[0]
    size = np.ones(n, dtype=np.int64)
    nchild = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):  # parent[j] > j: children are final before their parent
        p = parent[j]
        if p != -1:
            size[p] += size[j]
            nchild[p + 1] += 1
    child_ptr = np.cumsum(nchild)
    child = np.empty(max(child_ptr[n], 1), dtype=np.int64)
    fill = child_ptr[:n].copy()
    for j in range(n):
        p = parent[j]
        if p != -1:
            child[fill[p]] = j
            fill[p] += 1
    node_of = np.full(n, -1, dtype=np.int64)
    n_nodes = (1 << node_levels) - 1
    first_leaf = (1 << (node_levels - 1)) - 1
    # Root sets of one level's nodes, as segments of a buffer (the sets of a level are disjoint).
    cur = np.empty(max(n, 1), dtype=np.int64)
    cur_start = np.zeros(n_nodes + 1, dtype=np.int64)
    cur_len = np.zeros(n_nodes + 1, dtype=np.int64)
    k = 0
    for j in range(n):
        if parent[j] == -1:
            cur[k] = j
            k += 1
    cur_len[0] = k
    nxt = np.empty(max(n, 1), dtype=np.int64)
    scratch = np.empty(max(n, 1), dtype=np.int64)
    for level in range(node_levels):
        lo, hi = (1 << level) - 1, (1 << (level + 1)) - 1
        used = 0
        for t in range(lo, hi):
            m = cur_len[t]
            roots = scratch[:0]
            if m > 0:
                roots = scratch[:m]
                roots[:] = cur[cur_start[t]:cur_start[t] + m]
            if t >= first_leaf:
                for r in roots:
                    node_of[r] = t
                continue
            while roots.shape[0] == 1:  # a chain: separator of this node
                r = roots[0]
                node_of[r] = t
                c0, c1 = child_ptr[r], child_ptr[r + 1]
                roots = scratch[:c1 - c0]
                roots[:] = child[c0:c1]
            # Split the remaining subtrees in two, largest first onto the lighter side.
            order = np.argsort(-size[roots])
            side = np.zeros(roots.shape[0], dtype=np.int8)
            w_left, w_right = 0, 0
            for i in order:
                if w_left <= w_right:
                    w_left += size[roots[i]]
                else:
                    side[i] = 1
                    w_right += size[roots[i]]
            for s in range(2):
                c = 2 * t + 1 + s
                cur_start[c] = used
                for i in range(roots.shape[0]):
                    if side[i] == s:
                        nxt[used] = roots[i]
                        used += 1
                cur_len[c] = used - cur_start[c]
        cur, nxt = nxt, cur
    # Everything below an assigned vertex belongs to the same node (parents come later).
    for j in range(n - 1, -1, -1):
        if node_of[j] == -1:
            node_of[j] = node_of[parent[j]]
    return node_of
