"""Step 4 of the patch ordering: lay the tree nodes out and return the ND tree.

The tree and its two layouts are permbench/core/ndtree.py's (one convention: ``levels`` counts
dissection levels, 2^(levels+1) - 1 nodes); here only the names of the ``layout`` parameter:
``postorder`` (left subtree, right subtree, separator) and ``bfs``, the reverse breadth-first
layout (all leaves first, the root separator last) that cuDSS's ``USER_ND_PARTITION_TREE``
expects. The parameter keeps the short name ``bfs`` so that stored cell names do not change.
"""

from __future__ import annotations

import numpy as np

from ...core import ndtree
from ...core.ndtree import NDTree, group_by_node

__all__ = ["LAYOUTS", "TREE_LAYOUT", "group_by_node", "nd_tree", "node_rank"]

#: The ``layout`` parameter's values -> the ND tree layouts.
TREE_LAYOUT = {"postorder": "postorder", "bfs": "reverse_bfs"}
LAYOUTS = tuple(TREE_LAYOUT)


def node_rank(levels: int, layout: str) -> np.ndarray:
    """rank[t] = position of tree node t in the layout named by the ``layout`` parameter."""
    if layout not in TREE_LAYOUT:
        raise ValueError(f"layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    return ndtree.node_rank(levels, TREE_LAYOUT[layout])


def nd_tree(node_of: np.ndarray, levels: int, layout: str) -> NDTree:
    """The tree's node sizes in the layout (empty nodes as 0; they sum to n)."""
    return NDTree.of_nodes(node_of, levels, TREE_LAYOUT[layout])
