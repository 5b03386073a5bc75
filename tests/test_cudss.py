"""The cuDSS back-end: ND partition trees and availability on any machine; the solver on a GPU.

GPU tests carry ``pytest.mark.gpu`` and skip where the back-end reports itself unavailable (CI has
no GPU); everything about trees and layouts is plain NumPy and runs everywhere.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

from permbench.harness.backends import NotSPD
from permbench.harness.backends import _cudss_session as session
from permbench.harness.backends import cudss as cudss_mod
from permbench.harness.backends.cudss import CuDSS
from permbench.harness.backends._cudss_session import derive_nd_tree
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.core.case import MatrixCase, Ordering, inverse_perm, symmetric_graph
from permbench.core.ndtree import NDTree, levels_of, node_rank, relayout
from permbench.core.specs import SpecError
from permbench.orderings.amd import amd_order

from conftest import grid_laplacian


def tri_grid(k: int, shift: float = 1.0) -> sp.csr_matrix:
    """Graph Laplacian + shift·I of a k×k triangulated grid (7-point stencil): SPD."""
    ids = np.arange(k * k).reshape(k, k)
    pairs = [(ids[:, :-1], ids[:, 1:]), (ids[:-1, :], ids[1:, :]), (ids[:-1, :-1], ids[1:, 1:])]
    u = np.concatenate([a.ravel() for a, _ in pairs])
    v = np.concatenate([b.ravel() for _, b in pairs])
    W = sp.coo_matrix((np.ones(u.size), (u, v)), shape=(k * k, k * k))
    W = (W + W.T).tocsr()
    return (sp.diags(np.asarray(W.sum(axis=1)).ravel() + shift) - W).tocsr()


def depth(t: np.ndarray) -> np.ndarray:
    return np.floor(np.log2(t + 1)).astype(np.int64)


def is_nd_partition(graph: sp.csr_matrix, perm: np.ndarray, tree: NDTree) -> bool:
    """Every edge joins a node to itself or to one of its ancestors (no edge between siblings)."""
    node = np.empty(perm.shape[0], dtype=np.int64)
    node[perm] = tree.node_at_positions()
    coo = graph.tocoo()
    a, b = node[coo.row], node[coo.col]
    da, db = depth(a), depth(b)
    deep, shallow = np.where(da >= db, a, b), np.where(da >= db, b, a)
    for _ in range(int(np.abs(da - db).max(initial=0))):
        lift = depth(deep) > depth(shallow)
        deep = np.where(lift, (deep - 1) // 2, deep)
    return bool(np.all(deep == shallow))


# --------------------------------------------------------------------------------------------------
# Trees and layouts (no GPU)
# --------------------------------------------------------------------------------------------------


def test_levels_count_dissection_levels_of_complete_trees_only():
    assert levels_of(1) == 0 and levels_of(3) == 1 and levels_of(1023) == 9
    assert NDTree(np.zeros(1023, dtype=np.int64), "reverse_bfs").levels == 9
    for bad in (0, 2, 1022, 1024):
        with pytest.raises(ValueError, match=r"2\^\(levels\+1\) - 1"):
            levels_of(bad)
        with pytest.raises(ValueError, match=f"has {bad} nodes"):
            NDTree(np.zeros(bad, dtype=np.int64), "postorder")


def test_postorder_layout_moves_whole_blocks_to_reverse_bfs():
    # 3 nodes: postorder = left leaf (node 1), right leaf (node 2), root (node 0);
    # cuDSS order = node 2, node 1, node 0.
    perm = np.array([10, 11, 20, 21, 22, 0])
    new_perm, tree = relayout(perm, NDTree(np.array([2, 3, 1]), "postorder"), "reverse_bfs")
    assert new_perm.tolist() == [20, 21, 22, 10, 11, 0]
    assert tree.sizes.tolist() == [3, 2, 1] and tree.layout == "reverse_bfs" and tree.levels == 1
    back, post = relayout(new_perm, tree, "postorder")  # and back again
    assert back.tolist() == perm.tolist() and post.sizes.tolist() == [2, 3, 1]


def test_postorder_and_bfs_layouts_agree_on_a_random_tree(rng):
    levels = 3
    n_nodes = (1 << (levels + 1)) - 1
    node_of = rng.integers(0, n_nodes, size=500)
    vertices = rng.permutation(500)

    def laid_out(rank):
        order = np.argsort(rank[node_of[vertices]], kind="stable")
        sizes = np.zeros(n_nodes, dtype=np.int64)
        sizes[rank] = np.bincount(node_of, minlength=n_nodes)
        return vertices[order], sizes

    post_perm, post_sizes = laid_out(node_rank(levels, "postorder"))
    bfs_perm, bfs_sizes = laid_out(node_rank(levels, "reverse_bfs"))
    assert np.array_equal(NDTree.of_nodes(node_of, levels, "postorder").sizes, post_sizes)
    got_perm, got = relayout(post_perm, NDTree(post_sizes, "postorder"), "reverse_bfs")
    assert np.array_equal(got_perm, bfs_perm)
    assert np.array_equal(got.sizes, bfs_sizes)


def test_layout_rejects_trees_that_do_not_match_the_permutation():
    with pytest.raises(ValueError, match="sum to 5, expected n=6"):
        relayout(np.arange(6), NDTree(np.array([2, 2, 1]), "reverse_bfs"), "postorder")
    with pytest.raises(ValueError, match="layout 'inorder'"):
        NDTree(np.array([2, 2, 1]), "inorder")
    with pytest.raises(ValueError, match="non-negative integers"):
        NDTree(np.array([2, -1, 1]), "postorder")
    with pytest.raises(TypeError, match="Ordering.nd_tree must be"):
        Ordering(np.arange(5), np.array([2, 2, 1]))  # the former `etree` array: name its layout


@pytest.mark.parametrize("which", ["metis", "amd", "natural"])
def test_derived_tree_is_a_valid_nd_partition_with_unchanged_fill(which):
    A = tri_grid(40)
    graph = symmetric_graph(A)
    if which == "metis":
        from permbench.orderings.metis import Metis

        perm = Metis().compute(graph).perm
    elif which == "amd":
        perm = amd_order(graph)
    else:
        perm = np.arange(A.shape[0])
    before = symbolic_factor(graph, perm)
    new_perm, tree = derive_nd_tree(graph, perm, levels=5, parent=before.parent)
    sizes = tree.sizes
    assert tree.layout == "reverse_bfs" and sizes.shape == (63,) and sizes.sum() == A.shape[0]
    assert np.array_equal(np.sort(new_perm), np.arange(A.shape[0]))
    # A topological reordering of the elimination tree: exactly the same factor size.
    assert symbolic_factor(graph, new_perm).nnz_L == before.nnz_L
    assert is_nd_partition(graph, new_perm, tree)
    if which == "metis":  # nested dissection: a real tree, the root separator is one grid line or so
        assert (sizes > 0).sum() > 31 and 0 < sizes[-1] < 2 * 40
    if which == "natural":  # a band ordering's etree is a path: everything is the root's chain
        assert sizes[-1] == A.shape[0]


def test_derived_tree_without_a_given_etree_and_on_disconnected_graphs():
    block = tri_grid(10)
    A = sp.block_diag([block, block, sp.identity(3)]).tocsr()  # two grids and 3 isolated vertices
    graph = symmetric_graph(A)
    perm = amd_order(graph)
    new_perm, tree = derive_nd_tree(graph, perm, levels=2)
    assert tree.sizes.sum() == A.shape[0]
    assert tree.sizes[-1] == 0  # the forest has several roots: no top separator is needed
    assert is_nd_partition(graph, new_perm, tree)
    assert symbolic_factor(graph, new_perm).nnz_L == symbolic_factor(graph, perm).nnz_L
    empty = sp.csr_matrix((5, 5))
    p, t = derive_nd_tree(empty, np.arange(5), levels=1)
    assert sorted(p.tolist()) == list(range(5)) and t.sizes[-1] == 0 and t.sizes.sum() == 5


def patch_ordering(graph, layout: str) -> Ordering:
    try:
        from permbench.orderings.patch import patch_order
    except ImportError as err:
        pytest.skip(f"the patch ordering is not importable: {err}")
    return patch_order(graph, layout=layout)


@pytest.mark.parametrize("layout", ["postorder", "bfs"])
def test_patch_tree_in_either_layout_becomes_a_valid_cudss_tree(layout):
    graph = symmetric_graph(tri_grid(120))
    ordering = patch_ordering(graph, layout)
    assert ordering.nd_tree.layout == {"postorder": "postorder", "bfs": "reverse_bfs"}[layout]
    perm, tree = relayout(ordering.perm, ordering.nd_tree, "reverse_bfs")
    assert is_nd_partition(graph, perm, tree)
    assert symbolic_factor(graph, perm).nnz_L == symbolic_factor(graph, ordering.perm).nnz_L


# --------------------------------------------------------------------------------------------------
# Availability and parameters (no GPU)
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_availability():
    session.availability.cache_clear()
    yield
    session.availability.cache_clear()


def test_unavailable_without_nvmath(monkeypatch, fresh_availability):
    real = session.importlib.util.find_spec
    monkeypatch.setattr(session.importlib.util, "find_spec", lambda name: None if name == "nvmath" else real(name))
    ok, reason = CuDSS.available()
    assert not ok and reason.startswith("nvmath-python not installed")


def test_unavailable_without_a_gpu(monkeypatch, fresh_availability):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(session.importlib.util, "find_spec", lambda name: object())
    ok, reason = CuDSS.available()
    assert not ok
    assert reason.startswith("no CUDA GPU:") and "no CUDA-capable device" in reason


def test_threading_layer_is_the_one_of_the_loaded_major(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.delenv("CUDSS_THREADING_LIB", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "")
    real_find_spec = importlib.util.find_spec  # no installed nvidia wheels either (the GPU host has them)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nvidia" else real_find_spec(name, *a))
    v08, v10 = tmp_path / "cudss-0.8", tmp_path / "cudss-1.0"
    for folder, major in ((v08, 0), (v10, 1)):
        folder.mkdir()
        (folder / f"libcudss.so.{major}").write_bytes(b"")
        (folder / f"libcudss_mtlayer_gomp.so.{major}").write_bytes(b"")
    assert session.find_threading_layer(1, str(v10 / "libcudss.so.1")) == str(v10 / "libcudss_mtlayer_gomp.so.1")
    assert session.find_threading_layer(0, str(v08 / "libcudss.so.0")) == str(v08 / "libcudss_mtlayer_gomp.so.0")
    with pytest.raises(RuntimeError, match=r"libcudss_mtlayer_gomp.so.1 not found next to .*cudss-0.8"):
        session.find_threading_layer(1, str(v08 / "libcudss.so.0"))
    # An explicit layer of the other major is refused, not handed to cuDSS.
    monkeypatch.setenv("CUDSS_THREADING_LIB", str(v08 / "libcudss_mtlayer_gomp.so.0"))
    with pytest.raises(RuntimeError, match=r"belongs to cuDSS 0.x, but cuDSS 1.x is loaded"):
        session.find_threading_layer(1, str(v10 / "libcudss.so.1"))
    assert session.soname_major("/x/libcudss.so.1") == 1 and session.soname_major("libcudss.so") is None


def test_a_missing_cudss_library_file_makes_it_unavailable(monkeypatch, fresh_availability):
    monkeypatch.setenv("CUDSS_LIBRARY", "/nonexistent/libcudss.so.1")
    session.preload_cudss.cache_clear()
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(session.importlib.util, "find_spec", lambda name: object())
    try:
        ok, reason = CuDSS.available()
    finally:
        session.preload_cudss.cache_clear()
    assert not ok and "$CUDSS_LIBRARY=/nonexistent/libcudss.so.1 does not exist" in reason


def test_every_reordering_algorithm_for_spd_is_a_choice():
    assert {"default", "nd", "amd", "colamd", "btf_colamd"} <= set(CuDSS.choices["reorder"])


def test_parameters_and_canonical_spec():
    b = CuDSS(k=10, reorder="nd", mt=False, tree="off")
    assert b.spec.canonical() == "cudss[k=10,mt=false,reorder=nd,tree=off]"
    assert CuDSS().spec.canonical() == "cudss"
    with pytest.raises(SpecError, match="reorder='metis' is not one of"):
        CuDSS(reorder="metis")
    with pytest.raises(SpecError, match="tree='on' is not one of"):
        CuDSS(tree="on")


def test_spec_values_are_coerced_by_the_declared_parameters():
    from permbench.harness.backends import registry

    # `off` is the choice "off" for `tree` (a string parameter) and false for `mt` (a boolean).
    parsed = registry.create("cudss[tree=off,k=10]")
    assert parsed.p["tree"] == "off" and parsed.spec.canonical() == "cudss[k=10,tree=off]"
    for word, value in (("false", False), ("no", False), ("off", False), ("true", True), ("ON", True)):
        assert registry.create(f"cudss[mt={word}]").p["mt"] is value
    assert registry.create("cudss[mt=false]").spec.canonical() == "cudss[mt=false]"
    assert registry.create("cudss[k=1e1]").p["k"] == 10
    with pytest.raises(SpecError, match=r"cudss: tree='maybe' is not one of auto, derive, off"):
        registry.create("cudss[tree=maybe]")
    with pytest.raises(SpecError, match=r"cudss: mt='maybe' is not a boolean \(true/yes/on or false/no/off\)"):
        registry.create("cudss[mt=maybe]")
    with pytest.raises(SpecError, match=r"cudss: k='2.5' is not an integer"):
        registry.create("cudss[k=2.5]")


def test_the_session_module_is_no_plugin():
    from permbench.harness.backends import registry

    assert "cudss" in registry.modules() and "_cudss_session" not in registry.modules()


def test_reorder_choice_refuses_a_user_permutation():
    A = grid_laplacian(4)
    with pytest.raises(ValueError, match="applies only to the 'native' ordering"):
        CuDSS(reorder="amd").analyze(A, np.arange(16), Ordering(np.arange(16)))


# --------------------------------------------------------------------------------------------------
# On a GPU
# --------------------------------------------------------------------------------------------------

gpu = pytest.mark.skipif(not CuDSS.available()[0], reason=f"cudss unavailable: {CuDSS.available()[1]}")


def case_of(A) -> MatrixCase:
    return MatrixCase("test", A.tocsr())


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("reorder", ["default", "amd", "nd", "colamd", "btf_colamd"])
@pytest.mark.parametrize("mt", [True, False])
def test_native_orderings_solve_and_report_their_permutation(reorder, mt):
    A = tri_grid(60)
    out = CuDSS(reorder=reorder, mt=mt).run(case_of(A), None, None, None)
    assert out["residual"] <= 1e-10
    if reorder in cudss_mod.COLUMN_ORDERINGS:  # no symmetric permutation to measure (see native_ordering)
        assert "perm" not in out and out["backend_nnz_L"] > 0 and out["extras"]["fill_metrics"].startswith("none")
        return
    perm = out["perm"]
    assert np.array_equal(np.sort(perm), np.arange(A.shape[0]))
    nnz_L = symbolic_factor(symmetric_graph(A), perm).nnz_L
    # cuDSS's count of the factor it built is that of the permutation it hands back.
    assert nnz_L <= out["backend_nnz_L"] <= 1.5 * nnz_L
    assert out["t_order_s"] > 0 and out["t_analyze_s"] > 0
    if mt:
        from nvmath.bindings import cudss

        assert out["extras"]["mt_layer"].endswith(f"{session.MT_LAYER_STEM}.{cudss.get_property(0)}")
    else:
        assert out["extras"]["mt_layer"] is None


@pytest.mark.gpu
@gpu
def test_user_permutation_is_new_to_old():
    A = tri_grid(60)
    graph = symmetric_graph(A)
    perm = amd_order(graph)
    inv = inverse_perm(perm)
    nnz_perm = symbolic_factor(graph, perm).nnz_L
    nnz_inv = symbolic_factor(graph, inv).nnz_L
    assert nnz_inv > 2 * nnz_perm  # the test needs the two to differ clearly
    out = CuDSS(tree="off").run(case_of(A), perm, Ordering(perm), symbolic_factor(graph, perm))
    assert out["residual"] <= 1e-10
    assert nnz_perm <= out["backend_nnz_L"] < nnz_inv


@pytest.mark.gpu
@gpu
def test_cudss_own_tree_read_back_reproduces_its_factor():
    A = tri_grid(80)
    graph = symmetric_graph(A)
    native = CuDSS().run(case_of(A), None, None, None)
    perm = native["perm"]
    # Read the tree the same way the back-end does, from a fresh native analysis.
    handle, _ = session.cudss_handle(True)
    with session.Session(handle, A) as s:
        s.analyze(None, None)
        tree = NDTree(s.partition_tree(), "reverse_bfs")
        assert np.array_equal(s.reorder_perm(), perm)
    assert tree.sizes.sum() == A.shape[0] and tree.levels >= 1
    assert is_nd_partition(graph, perm, tree)
    ordering = Ordering(perm, nd_tree=tree)
    with_tree = CuDSS().run(case_of(A), perm, ordering, symbolic_factor(graph, perm))
    assert with_tree["residual"] <= 1e-10
    assert with_tree["extras"]["tree_source"] == "ordering"
    assert with_tree["backend_nnz_L"] == native["backend_nnz_L"]


@pytest.mark.gpu
@gpu
def test_derived_tree_for_metis_solves():
    from permbench.orderings.metis import Metis

    A = tri_grid(80)
    graph = symmetric_graph(A)
    perm = Metis().compute(graph).perm
    sym = symbolic_factor(graph, perm)
    out = CuDSS(tree="derive").run(case_of(A), perm, Ordering(perm), sym)
    assert out["residual"] <= 1e-10
    assert out["extras"]["tree_source"] == "etree" and out["extras"]["nd_nlevels"] == 10  # 9 levels + 1
    assert sym.nnz_L <= out["backend_nnz_L"] <= 1.5 * sym.nnz_L


@pytest.mark.gpu
@gpu
def test_refactorization_uses_the_new_values():
    A = tri_grid(50)
    B = A.copy()
    B.setdiag(A.diagonal() * 3.0)
    handle, _ = session.cudss_handle(True)
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    with session.Session(handle, A) as s:
        s.analyze(None, None)
        s.factorize(A)
        s.factorize(B)  # REFACTORIZATION
        x, _ = s.solve(b)
    assert np.linalg.norm(B @ x - b) / np.linalg.norm(b) <= 1e-10
    out = CuDSS(k=4).run(case_of(A), None, None, None)
    assert out["k"] == 4 and out["t_refactor_median_s"] > 0 and out["residual"] <= 1e-10


@pytest.mark.gpu
@gpu
def test_indefinite_matrix_is_reported_not_spd():
    A = tri_grid(20, shift=1.0)
    A = (A - 5.0 * sp.identity(A.shape[0])).tocsr()  # eigenvalues straddle zero
    with pytest.raises(NotSPD):
        CuDSS().run(case_of(A), None, None, None)


@pytest.mark.gpu
@gpu
def test_patch_tree_goes_to_cudss():
    A = tri_grid(120)
    graph = symmetric_graph(A)
    ordering = patch_ordering(graph, "postorder")
    sym = symbolic_factor(graph, ordering.perm)
    with_tree = CuDSS().run(case_of(A), ordering.perm, ordering, sym)
    assert with_tree["residual"] <= 1e-10
    assert with_tree["extras"]["tree_source"] == "ordering"
    assert with_tree["extras"]["nd_nlevels"] == ordering.nd_tree.levels + 1  # cuDSS counts node levels
    assert sym.nnz_L <= with_tree["backend_nnz_L"] <= 1.5 * sym.nnz_L
