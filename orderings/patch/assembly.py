"""Step 4 of the patch ordering: lay the tree nodes out and build the elimination tree.

Two layouts of the complete binary tree (node t has children 2t+1, 2t+2):

* ``postorder``: left subtree, right subtree, then the node's own separator;
* ``bfs``: reverse breadth-first order, node ids descending (all leaves first, the root separator
  last) — the layout cuDSS's ``USER_ND_PARTITION_TREE`` expects, as in the reference.

Both are topological orders of the tree (every separator after its subtrees), so fill is the same.
"""

from __future__ import annotations

import numpy as np

LAYOUTS = ("postorder", "bfs")


def node_rank(levels: int, layout: str) -> np.ndarray:
    """rank[t] = position of tree node t in the layout (nodes 0 .. 2^(levels+1) - 2)."""
    n_nodes = (1 << (levels + 1)) - 1
    if layout == "bfs":
        return np.arange(n_nodes - 1, -1, -1, dtype=np.int64)
    if layout != "postorder":
        raise ValueError(f"layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    rank = np.empty(n_nodes, dtype=np.int64)
    # Iterative postorder of the implicit complete tree: push (node, children_done).
    stack = [(0, False)]
    k = 0
    while stack:
        t, done = stack.pop()
        if done or 2 * t + 1 >= n_nodes:
            rank[t] = k
            k += 1
        else:
            stack.append((t, True))
            stack.append((2 * t + 2, False))
            stack.append((2 * t + 1, False))
    return rank


def etree_sizes(node_of: np.ndarray, levels: int, layout: str) -> np.ndarray:
    """Node sizes in layout order (length 2^(levels+1) - 1, empty nodes as 0); they sum to n."""
    rank = node_rank(levels, layout)
    sizes = np.bincount(node_of, minlength=rank.shape[0])
    etree = np.empty(rank.shape[0], dtype=np.int64)
    etree[rank] = sizes
    return etree


def group_by_node(sequence: np.ndarray, node_of: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Reorder ``sequence`` (a permutation listing each node's vertices in their local order) so
    that nodes follow the layout; one stable sort keeps every node's local order."""
    key = rank[node_of[sequence]]
    # Small integer keys let numpy's stable sort use radix sort.
    key = key.astype(np.int16 if rank.shape[0] < 2**15 else np.int32)
    return sequence[np.argsort(key, kind="stable")]
