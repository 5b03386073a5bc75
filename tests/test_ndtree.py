"""The one ND-tree module (permbench/core/ndtree.py): levels, layouts and the moves between them.

Trees read off elimination trees and cuDSS's use of them are tested in tests/test_cudss.py (the
CPU part runs everywhere); the patch ordering's trees in tests/test_patch.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from permbench.core.ndtree import LAYOUTS, NDTree, node_count, node_rank, relayout, tree_from_etree


def test_levels_count_dissection_levels():
    assert [node_count(levels) for levels in range(4)] == [1, 3, 7, 15]
    # One dissection level: the left leaf, the right leaf, then the root separator.
    assert node_rank(1, "postorder").tolist() == [2, 0, 1]
    assert node_rank(1, "reverse_bfs").tolist() == [2, 1, 0]
    # Two levels in postorder: 3 4 1 5 6 2 0 (node ids in layout order).
    assert np.argsort(node_rank(2, "postorder")).tolist() == [3, 4, 1, 5, 6, 2, 0]
    with pytest.raises(ValueError, match="layout 'bfs'"):
        node_rank(1, "bfs")  # the patch parameter's short name is not a tree layout


@pytest.mark.parametrize("levels", [0, 1, 2, 4])
@pytest.mark.parametrize("source", LAYOUTS)
def test_relayout_moves_whole_blocks_and_comes_back(levels, source, rng):
    node_of = rng.integers(0, node_count(levels), size=300)
    tree = NDTree.of_nodes(node_of, levels, source)
    assert tree.levels == levels and tree.sizes.sum() == 300
    # A permutation laid out in `source`: vertices grouped by node, in node order.
    perm = np.argsort(node_rank(levels, source)[node_of], kind="stable")
    target = next(layout for layout in LAYOUTS if layout != source) if levels else source
    moved, moved_tree = relayout(perm, tree, target)
    assert moved_tree.layout == target and sorted(moved_tree.sizes) == sorted(tree.sizes)
    # Every position still holds a vertex of the node the moved tree says is there.
    assert np.array_equal(node_of[moved], moved_tree.node_at_positions())
    back, back_tree = relayout(moved, moved_tree, source)
    assert np.array_equal(back, perm) and np.array_equal(back_tree.sizes, tree.sizes)


def test_a_path_etree_is_all_separator_and_zero_levels_one_node():
    n = 6
    parent = np.append(np.arange(1, n), -1)  # a path: every vertex the parent of the one before
    perm, tree = tree_from_etree(np.arange(n), parent, levels=2)
    assert tree.sizes.tolist() == [0, 0, 0, 0, 0, 0, 6] and perm.tolist() == list(range(n))
    perm, tree = tree_from_etree(np.arange(n)[::-1], parent, levels=0)
    assert tree.sizes.tolist() == [6] and tree.layout == "reverse_bfs"
    with pytest.raises(ValueError, match="levels=-1"):
        tree_from_etree(np.arange(n), parent, levels=-1)


def test_counting_order_is_a_stable_sort():
    from permbench.core.ndtree import counting_order

    rng = np.random.default_rng(3)
    key = rng.integers(0, 37, size=5000)
    order, start = counting_order(key, 40)
    np.testing.assert_array_equal(order, np.argsort(key, kind="stable"))
    np.testing.assert_array_equal(start, np.searchsorted(key[order], np.arange(41)))
