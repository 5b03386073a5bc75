"""The patch-based nested-dissection ordering (``patch``; docs/architecture.md, "The patch ordering")."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from permbench.datasets import load
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.core.case import symmetric_graph, validate_perm
from permbench.core.specs import SpecError
from permbench.orderings import create
from permbench.orderings.patch import PRESETS, Patch, patch_order
from permbench.orderings.patch.assembly import node_rank
from permbench.orderings.patch.pipeline import AUTO_DIRECT_MAX_N, POOL_MIN_LEVELS
from permbench.orderings.patch.matching import bipartite_vertex_cover, hopcroft_karp
from permbench.orderings.patch.patcher import bfs_patches, lloyd_patches, spatial_patches


# ------------------------------------------------------------------ helpers


def node_of_vertex(ordering, n: int, layout: str) -> np.ndarray:
    """Tree node of every vertex, read back from the permutation and the ND tree alone."""
    levels = ordering.stats["levels"]
    rank = node_rank(levels, layout)
    node_at_rank = np.argsort(rank)
    node_of_position = np.repeat(node_at_rank, ordering.nd_tree.sizes)
    np.testing.assert_array_equal(node_of_position, ordering.nd_tree.node_at_positions())
    node = np.empty(n, dtype=np.int64)
    node[ordering.perm] = node_of_position
    return node


def depth(t: np.ndarray) -> np.ndarray:
    return np.floor(np.log2(t + 1)).astype(np.int64)


def assert_nested_dissection(graph: sp.csr_matrix, ordering, layout: str = "postorder") -> None:
    """Valid perm, ND tree of the right length summing to n, and the separator property: every
    edge joins a node to itself or to an ancestor (never the left and right subtrees of a node)."""
    n = graph.shape[0]
    validate_perm(ordering.perm, n)
    levels = ordering.stats["levels"]
    assert ordering.nd_tree is not None
    assert ordering.nd_tree.sizes.shape == ((1 << (levels + 1)) - 1,)
    assert int(ordering.nd_tree.sizes.sum()) == n
    assert ordering.nd_tree.levels == levels  # one convention: levels of dissection (core/ndtree.py)
    assert ordering.nd_tree.layout == {"postorder": "postorder", "bfs": "reverse_bfs"}[layout]
    node = node_of_vertex(ordering, n, layout)
    coo = sp.triu(graph, k=1).tocoo()
    a, b = node[coo.row], node[coo.col]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # Ancestor test in heap numbering: shift the deeper node up to the other's depth.
    shallow, deep = np.where(depth(lo) <= depth(hi), lo, hi), np.where(depth(lo) <= depth(hi), hi, lo)
    up = ((deep + 1) >> (depth(deep) - depth(shallow))) - 1
    bad = up != shallow
    assert not bad.any(), f"{int(bad.sum())} edges join two different subtrees, e.g. nodes {a[bad][0]} and {b[bad][0]}"


def grid_graph(k: int) -> sp.csr_matrix:
    return symmetric_graph(load(f"grid[n={k * k},matrix=graph]").A)


def nnz_L(graph, perm) -> int:
    return symbolic_factor(graph, perm).nnz_L


# ------------------------------------------------------------------ generators and options


@pytest.mark.parametrize("dataset", ["grid[n=4000]", "icosphere[n=2600]", "torus[n=3000]",
                                     "delaunay[n=3000,seed=2]", "tetgrid[n=4000]"])
def test_every_generator_gives_a_nested_dissection(dataset):
    case = load(dataset)
    graph = symmetric_graph(case.A)
    # leaf_size=64: a deep tree even on these small graphs (the default adapts the depth to n).
    for spec in ("patch[leaf_size=64]", "patch[preset=fast,leaf_size=64]", "patch[preset=quality,leaf_size=64]",
                 "patch[patch_size=64,layout=bfs,leaf_size=64]"):
        ordering = create(spec).compute(graph, coords=case.coords, seed=0)
        assert_nested_dissection(graph, ordering, "bfs" if "bfs" in spec else "postorder")
        assert ordering.stats["levels"] >= 2, spec  # these graphs are big enough to be dissected


@pytest.mark.parametrize("option", [
    {"patcher": "bfs"}, {"patcher": "lloyd"}, {"patcher": "spatial"}, {"patcher": "metis"},
    {"separator": "direct"}, {"separator": "auto"}, {"bisection": "kway"}, {"trials": 4},
    {"refine": 0}, {"refine": 3}, {"band_method": "metis"}, {"band_method": "flow", "band_levels": 99},
    {"local": "amd"}, {"local": "camd"}, {"local": "amd-threshold", "amd_threshold": 100},
    {"local": "metis"}, {"local": "identity"},
    {"layout": "bfs"}, {"nd_levels": 1}, {"nd_levels": 20},
])
def test_every_option_gives_a_nested_dissection(option):
    case = load("delaunay[n=6000,seed=1]")
    graph = symmetric_graph(case.A)
    ordering = Patch(patch_size=64, **option).compute(graph, coords=case.coords, seed=0)
    assert_nested_dissection(graph, ordering, option.get("layout", "postorder"))


def test_reverse_bfs_layout_puts_leaves_first_and_the_root_separator_last():
    graph = grid_graph(60)
    ordering = Patch(patch_size=64, layout="bfs", nd_levels=3, leaf_size=64).compute(graph)
    levels = ordering.stats["levels"]
    assert levels == 3
    # Reverse breadth-first: node ids descending, so the 8 leaves come first, the root last.
    sizes = ordering.nd_tree.sizes
    root = ordering.perm[len(ordering.perm) - sizes[-1]:]
    rest = np.setdiff1d(np.arange(graph.shape[0]), root)
    n_parts, _ = sp.csgraph.connected_components(graph[rest][:, rest])
    assert n_parts >= 2  # removing the root separator disconnects the graph
    assert sizes[: 1 << levels].sum() > 0.8 * graph.shape[0]  # the leaves hold most vertices


def test_both_layouts_order_the_same_blocks_with_the_same_fill():
    graph = grid_graph(80)
    post = Patch(patch_size=64, local="amd").compute(graph)
    bfs = Patch(patch_size=64, local="amd", layout="bfs").compute(graph)
    assert_nested_dissection(graph, post, "postorder")
    assert_nested_dissection(graph, bfs, "bfs")
    assert sorted(post.nd_tree.sizes.tolist()) == sorted(bfs.nd_tree.sizes.tolist())
    assert nnz_L(graph, post.perm) == nnz_L(graph, bfs.perm)


def test_same_seed_same_output_and_other_seeds_stay_valid():
    case = load("delaunay[n=5000,seed=4]")
    graph = symmetric_graph(case.A)
    first = Patch(patch_size=64, trials=2, refine=2).compute(graph, seed=3)
    again = Patch(patch_size=64, trials=2, refine=2).compute(graph, seed=3)
    np.testing.assert_array_equal(first.perm, again.perm)
    np.testing.assert_array_equal(first.nd_tree.sizes, again.nd_tree.sizes)
    assert_nested_dissection(graph, Patch(patch_size=64).compute(graph, seed=11))


def test_phase_times_and_statistics_are_plain_json():
    graph = grid_graph(70)
    stats = Patch(patch_size=64, refine=2).compute(graph).stats
    json.dumps(stats)  # plain values only
    for phase in ("t_patch_s", "t_quotient_s", "t_decompose_s", "t_local_s", "t_assemble_s"):
        assert stats[phase] >= 0.0
    levels = stats["levels"]
    assert len(stats["separator_sizes_per_level"]) == levels
    assert sum(stats["separator_sizes_per_level"]) == stats["separator_vertices"]
    assert stats["n_patches"] >= 70 * 70 // 64


# ------------------------------------------------------------------ edge cases


def test_graph_without_edges_gets_the_identity():
    graph = symmetric_graph(sp.identity(50, format="csr"))
    ordering = Patch().compute(graph)
    np.testing.assert_array_equal(ordering.perm, np.arange(50))
    np.testing.assert_array_equal(ordering.nd_tree.sizes, [50])


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_vertices(n):
    A = sp.csr_matrix(np.ones((n, n)))
    ordering = Patch().compute(symmetric_graph(A))
    assert sorted(ordering.perm.tolist()) == list(range(n))
    assert ordering.nd_tree.sizes.sum() == n


def test_graph_not_larger_than_a_patch_is_one_leaf():
    graph = grid_graph(20)  # 400 vertices <= 512
    ordering = Patch(patch_size=512).compute(graph)
    assert ordering.stats["levels"] == 0
    np.testing.assert_array_equal(ordering.nd_tree.sizes, [400])
    validate_perm(ordering.perm, 400)


def test_many_components():
    blocks = [grid_graph(k) for k in (3, 7, 12, 25, 25, 40)] + [sp.csr_matrix((30, 30))]
    graph = symmetric_graph(sp.block_diag(blocks, format="csr"))
    for option in ({}, {"separator": "direct"}, {"refine": 2}, {"patcher": "lloyd"}):
        assert_nested_dissection(graph, Patch(patch_size=32, **option).compute(graph))


def test_star_graph():
    n = 3000
    hub = np.zeros(n - 1, dtype=np.int64)
    A = sp.coo_matrix((np.ones(n - 1), (hub, np.arange(1, n))), shape=(n, n))
    graph = symmetric_graph(A)
    for option in ({}, {"refine": 2}, {"separator": "direct"}, {"local": "identity"}):
        ordering = Patch(patch_size=64, **option).compute(graph)
        assert_nested_dissection(graph, ordering)
        # The best elimination keeps the hub last; any ND here must not fill the leaves.
        assert nnz_L(graph, ordering.perm) <= 2 * n


def test_path_graph():
    n = 5000
    A = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], shape=(n, n), format="csr")
    graph = symmetric_graph(A)
    ordering = Patch(patch_size=64, refine=2).compute(graph)
    assert_nested_dissection(graph, ordering)
    # Separators of a path are single vertices: fill stays O(n log n) with a tiny constant.
    assert nnz_L(graph, ordering.perm) < 3 * n


def test_duplicated_and_asymmetric_entries_go_through_symmetric_graph():
    base = grid_graph(50)
    coo = sp.triu(base, k=1).tocoo()  # one triangle only: asymmetric
    rows = np.concatenate([coo.row, coo.row[:100]])  # plus duplicated entries
    cols = np.concatenate([coo.col, coo.col[:100]])
    A = sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=base.shape)
    graph = symmetric_graph(A)
    assert (graph != base).nnz == 0
    ordering = Patch(patch_size=64).compute(graph)
    assert_nested_dissection(graph, ordering)


def test_spatial_patcher_needs_coordinates():
    graph = grid_graph(30)
    with pytest.raises(ValueError, match="coordinates"):
        Patch(patcher="spatial").compute(graph, coords=None)
    with pytest.raises(ValueError, match="one coordinate row per vertex"):
        Patch(patcher="spatial").compute(graph, coords=np.zeros((10, 2)))
    case = load("grid[n=900]")
    case.coords = None
    ok, reason = Patch(patcher="spatial").supports(case)
    assert not ok and "coordinates" in reason
    assert Patch().supports(case) == (True, "")


def test_bad_settings_are_named_in_the_error():
    graph = grid_graph(20)
    with pytest.raises(ValueError, match="local='colamd' is not one of"):
        patch_order(graph, local="colamd")
    with pytest.raises(ValueError, match="patch_size >= 1"):
        patch_order(graph, patch_size=0)


# ------------------------------------------------------------------ fill


def test_fill_on_a_300x300_grid_is_within_1_5x_of_metis():
    graph = grid_graph(300)
    patch = nnz_L(graph, create("patch").compute(graph).perm)
    metis = nnz_L(graph, create("metis").compute(graph).perm)
    assert patch <= 1.5 * metis, (patch, metis)


def test_fill_beats_the_natural_order_and_amd_on_a_grid():
    graph = grid_graph(150)
    patch = nnz_L(graph, create("patch").compute(graph).perm)
    assert patch < nnz_L(graph, np.arange(graph.shape[0]))
    assert patch < nnz_L(graph, create("amd").compute(graph).perm)


# ------------------------------------------------------------------ kernels


def brute_force_matching_size(left, right) -> int:
    rows, r = np.unique(left, return_inverse=True)
    cols, c = np.unique(right, return_inverse=True)
    B = sp.csr_matrix((np.ones(r.shape[0]), (c, r)), shape=(cols.shape[0], rows.shape[0]))
    return int((sp.csgraph.maximum_bipartite_matching(B, perm_type="column") >= 0).sum())


def test_vertex_cover_is_valid_and_minimum_on_random_bipartite_graphs(rng):
    for _ in range(20):
        n_left, n_right, m = rng.integers(1, 40), rng.integers(1, 40), rng.integers(1, 120)
        left = rng.integers(0, n_left, m)
        right = 1000 + rng.integers(0, n_right, m)
        cover = set(bipartite_vertex_cover(left, right).tolist())
        assert all(a in cover or b in cover for a, b in zip(left, right))
        assert len(cover) == brute_force_matching_size(left, right)  # König


def _split_graph_flow_value(xadj, adjncy, source, sink) -> int:
    """Maximum number of vertex-disjoint source-sink paths by scipy's maximum_flow on the split
    graph (vertex v: in 2v -> out 2v+1, capacity 1; edges unbounded)."""
    n = xadj.shape[0] - 1
    rows = np.repeat(np.arange(n), np.diff(xadj))
    big = n + 1
    vertex_cap = np.where((np.arange(n) == source) | (np.arange(n) == sink), big, 1)
    tails = np.concatenate([2 * np.arange(n), 2 * rows + 1])
    heads = np.concatenate([2 * np.arange(n) + 1, 2 * adjncy.astype(np.int64)])
    caps = np.concatenate([vertex_cap, np.full(rows.shape[0], big)]).astype(np.int32)
    G = sp.csr_matrix((caps, (tails, heads)), shape=(2 * n, 2 * n))
    return int(sp.csgraph.maximum_flow(G, 2 * source + 1, 2 * sink).flow_value)


def test_flow_separator_is_a_smallest_separator_on_random_graphs(rng):
    from permbench.orderings.patch.flow import min_separator

    for trial in range(40):
        n = int(rng.integers(4, 200))
        m = int(rng.integers(n, 4 * n))
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        source, sink = 0, n - 1
        # No loops, and source and sink not adjacent.
        keep = (a != b) & ~((np.minimum(a, b) == source) & (np.maximum(a, b) == sink))
        A = sp.coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
        A = (A + A.T).tocsr()
        A.sort_indices()
        xadj, adjncy = A.indptr.astype(np.int32), A.indices.astype(np.int32)
        part, size = min_separator(xadj, adjncy, source, sink)
        assert part[source] == 0 and part[sink] == 1
        assert int((part == 2).sum()) == size == _split_graph_flow_value(xadj, adjncy, source, sink), trial
        rows = np.repeat(np.arange(n), np.diff(xadj))
        assert not ((part[rows] == 0) & (part[adjncy] == 1)).any(), "an edge joins the two sides"


def test_flow_band_separators_are_never_larger_than_metis_band_separators():
    graph = symmetric_graph(load("delaunay[n=20000,seed=3]").A)
    flow = patch_order(graph, band_method="flow", refine=0)
    metis = patch_order(graph, band_method="metis", refine=0)
    top = 4  # band levels: the root's separator is the same patch cut before refinement
    assert flow.stats["band_improved_nodes"] > 0
    assert flow.stats["separator_sizes_per_level"][0] <= metis.stats["separator_sizes_per_level"][0]
    assert sum(flow.stats["separator_sizes_per_level"][:top]) <= 1.02 * sum(metis.stats["separator_sizes_per_level"][:top])
    assert_nested_dissection(graph, flow)


def test_bipartite_csr_is_scipys_canonical_csr(rng):
    from permbench.orderings.patch.matching import bipartite_csr

    for _ in range(20):
        m = int(rng.integers(1, 300))
        left = rng.integers(0, 50, m) * 7  # gaps in the ids, repeated edges
        right = 10_000 + rng.integers(0, 60, m) * 3
        rows, cols, indptr, indices = bipartite_csr(left, right)
        r_idx, c_idx = np.searchsorted(np.unique(left), left), np.searchsorted(np.unique(right), right)
        B = sp.csr_matrix((np.ones(m), (r_idx, c_idx)), shape=(rows.shape[0], cols.shape[0]))
        np.testing.assert_array_equal(rows, np.unique(left))
        np.testing.assert_array_equal(cols, np.unique(right))
        np.testing.assert_array_equal(indptr, B.indptr)
        np.testing.assert_array_equal(indices, B.indices)


def test_matching_on_layered_graphs_where_scipy_explodes():
    # Ladders: every level has two rows joined to both columns of the next level. SciPy's
    # Hopcroft–Karp re-explores them exponentially (scipy/scipy#26147); ours removes dead ends.
    levels = 60
    rows, cols = [], []
    for level in range(levels):
        for r in (2 * level, 2 * level + 1):
            for c in (2 * level, 2 * level + 1, 2 * level + 2, 2 * level + 3):
                if c < 2 * levels:
                    rows.append(r)
                    cols.append(c)
    B = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * levels + 2, 2 * levels))
    match_row, match_col = hopcroft_karp(B.indptr, B.indices.astype(np.int64), 2 * levels)
    assert (match_row >= 0).sum() == 2 * levels
    matched = np.flatnonzero(match_row >= 0)
    np.testing.assert_array_equal(match_col[match_row[matched]], matched)


def test_patchers_cover_every_vertex_with_connected_patches():
    case = load("delaunay[n=4000,seed=5]")
    graph = symmetric_graph(case.A)
    for name, (patch_of, n_patches) in {
        "bfs": bfs_patches(graph, 100),
        "lloyd": lloyd_patches(graph, 100),
        "spatial": spatial_patches(graph, case.coords, 100),
    }.items():
        assert patch_of.shape == (graph.shape[0],) and patch_of.min() == 0
        assert np.bincount(patch_of).min() > 0 and patch_of.max() == n_patches - 1
        if name != "lloyd":  # Voronoi cells are not capped
            assert np.bincount(patch_of).max() <= 100
        coo = graph.tocoo()
        inside = patch_of[coo.row] == patch_of[coo.col]
        H = sp.csr_matrix((np.ones(int(inside.sum())), (coo.row[inside], coo.col[inside])), shape=graph.shape)
        n_parts, _ = sp.csgraph.connected_components(H)
        assert n_parts == n_patches, name


# ------------------------------------------------------------------ the plug-in


def test_presets_and_canonical_specs():
    assert create("patch").spec.canonical() == "patch"
    assert create("patch[preset=fast]").spec.canonical() == "patch[preset=fast]"
    explicit = create("patch[preset=fast,local=camd]")
    assert explicit.settings()["local"] == "camd"
    # A value equal to the class default but different from the preset's stays in the spec.
    for preset, values in PRESETS.items():
        for key, value in values.items():
            if value != Patch.params[key]:
                spec = f"patch[preset={preset},{key}={Patch.params[key]}]"
                assert create(spec).spec.canonical() != f"patch[preset={preset}]"
                assert create(create(spec).spec.canonical()).settings() == create(spec).settings()
    with pytest.raises(SpecError):
        create("patch[local=colamd]")
    with pytest.raises(SpecError):
        create("patch[preset=turbo]")
    assert Patch.provides_nd_tree


# ------------------------------------------------------------------ real data


@pytest.mark.slow
def test_every_shared_mesh_and_matrix(shared_data_dir):
    manifest = json.loads((shared_data_dir / "manifest.json").read_text())
    files = [entry["file"] for entry in manifest.get("meshes", []) + manifest.get("suitesparse", [])]
    if not files:  # fall back to the folder listing
        files = [str(p.relative_to(shared_data_dir)) for p in sorted(shared_data_dir.glob("*/*"))
                 if p.suffix in (".obj", ".gz")]
    assert files
    for name in files:
        spec = f"file:{shared_data_dir / name}" + ("[matrix=graph]" if name.endswith(".obj") else "")
        case = load(spec)
        graph = symmetric_graph(case.A)
        ordering = create("patch").compute(graph, coords=case.coords)
        assert_nested_dissection(graph, ordering)


# ------------------------------------------------------------------ threads and the local step


@pytest.fixture
def small_subtrees(monkeypatch):
    """Let camd-subtrees split small test graphs (by default a subtree must average 16k vertices),
    the decomposition run one task per node down to nodes of 512 vertices (by default 64k), and
    the compiled passes run on numba's threads at any size (by default from 65,536 items)."""
    from permbench.orderings.patch import local, pool, subtrees

    monkeypatch.setattr(local, "SUBTREE_MIN", 64)
    monkeypatch.setattr(subtrees, "SUBTREE_MIN", 512)
    monkeypatch.setattr(pool, "PASS_MIN_SIZE", 0)


def _thread_inputs():
    star = sp.coo_matrix((np.ones(1999), (np.zeros(1999, dtype=np.int64), np.arange(1, 2000))), shape=(2000, 2000))
    path = sp.diags([np.ones(1999), np.ones(1999)], [-1, 1], shape=(2000, 2000), format="csr")
    components = sp.block_diag([grid_graph(k) for k in (3, 7, 12, 25, 25, 30)] + [sp.csr_matrix((30, 30))], format="csr")
    return {
        "grid": (grid_graph(90), None),
        "delaunay": (symmetric_graph(load("delaunay[n=6000,seed=1]").A), None),
        "tetgrid": (symmetric_graph(load("tetgrid[n=8000]").A), None),
        "star": (symmetric_graph(star), None),
        "path": (symmetric_graph(path), None),
        "components": (symmetric_graph(components), None),
    }


@pytest.mark.parametrize("spec", ["patch[leaf_size=64]", "patch[leaf_size=64,subtree_tasks=true]",
                                  "patch[preset=quality,leaf_size=64,subtree_tasks=true]",
                                  "patch[preset=fast,leaf_size=64]", "patch[leaf_size=64,separator=direct]",
                                  "patch[leaf_size=64,local=camd,trials=3]", "patch[leaf_size=64,band_method=metis]"])
def test_same_permutation_for_any_thread_count(spec, small_subtrees):
    for name, (graph, coords) in _thread_inputs().items():
        ordering = create(spec)
        runs = [ordering.compute(graph, coords=coords, seed=2, threads=t) for t in (1, 2, 4)]
        if name in ("grid", "delaunay", "tetgrid") and "subtree_tasks=true" in spec:
            assert runs[0].stats["subtree_tasks"] > 1  # the subtree tasks ran
        if "subtree_tasks" not in spec:
            assert runs[0].stats["subtree_tasks"] == 0  # off by default
        for threads, run in zip((1, 2, 4), runs):
            # trees of fewer than POOL_MIN_LEVELS levels are built without a thread pool
            assert run.stats["threads_used"] == (threads if run.stats["levels"] >= POOL_MIN_LEVELS else 1)
            np.testing.assert_array_equal(run.perm, runs[0].perm, err_msg=f"{spec} on {name}, {threads} threads")
            np.testing.assert_array_equal(run.nd_tree.sizes, runs[0].nd_tree.sizes)
        assert_nested_dissection(graph, runs[0])


def test_parallel_metis_calls_match_serial_ones():
    """METIS draws from libc's rand(); concurrent calls each get their own library instance."""
    from concurrent.futures import ThreadPoolExecutor

    from permbench.orderings.patch.metis_sep import bisect, vertex_separator

    graph = symmetric_graph(load("delaunay[n=20000,seed=5]").A)
    ones_v = np.ones(graph.shape[0], dtype=np.int32)
    ones_e = np.ones(graph.nnz, dtype=np.int32)

    def both(seed):
        return (bisect(graph.indptr, graph.indices, ones_v, ones_e, seed=seed, ufactor=200),
                vertex_separator(graph.indptr, graph.indices, seed))

    serial = [both(s % 2) for s in range(8)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(both, [s % 2 for s in range(8)]))
    for (a, b), (c, d) in zip(serial, parallel):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert set(np.unique(serial[0][0])) == {0, 1} and 2 in serial[0][1]


def test_batched_bisections_equal_one_call_each_on_any_runs():
    """bisect_blocks (one compiled loop per run of blocks, the GIL released) gives every block
    what a single bisect call gives it, however the blocks are cut into runs and threads."""
    from concurrent.futures import ThreadPoolExecutor

    from permbench.orderings.patch.metis_sep import bisect, bisect_blocks, options_rows
    from permbench.orderings.patch.pool import Pool

    parts = [symmetric_graph(load(f"delaunay[n={n},seed={n}]").A) for n in (40, 300, 2000, 90, 700)]
    whole = sp.block_diag(parts, format="csr")
    whole.sort_indices()
    starts = np.concatenate([[0], np.cumsum([g.shape[0] for g in parts])])
    vwgt = np.arange(whole.shape[0]) % 3 + 1
    ewgt = np.ones(whole.nnz, dtype=np.int64)
    trials = [{"seed": 0, "ufactor": 200}, {"seed": 1, "ufactor": 200}]
    jobs = np.array([(starts[k], starts[k + 1], t) for k in range(len(parts)) for t in range(2)], dtype=np.int64)
    expected = np.zeros((2, whole.shape[0]), dtype=np.int8)
    for s, e, t in jobs:
        g = whole[s:e, s:e]
        expected[t, s:e] = bisect(g.indptr, g.indices, vwgt[s:e], np.ones(g.nnz), **trials[t])
    assert set(np.unique(expected)) == {0, 1}
    for threads in (1, 3):
        with ThreadPoolExecutor(threads) as executor:
            pool = Pool(executor, threads)
            out = np.full((2, whole.shape[0]), -1, dtype=np.int8)
            list(pool(lambda r: bisect_blocks(whole.indptr, whole.indices, vwgt, ewgt, jobs[r[0]:r[1]],
                                              options_rows(trials), out), pool.ranges(jobs.shape[0])))
        np.testing.assert_array_equal(out, expected)


def test_level_cover_is_the_single_call_cover_for_any_runs_of_nodes(rng, small_subtrees):
    """The level's cut edges grouped by node (cut_by_node) are exactly the cut edges, whatever the
    threads, and covering runs of nodes apart on threads gives the cover of one call on the whole
    level, in its order."""
    from permbench.orderings.patch.pool import SERIAL, thread_pool
    from permbench.orderings.patch.separators import cut_by_node, min_vertex_cover

    for _ in range(10):
        n_nodes, n = int(rng.integers(1, 12)), 3000
        node_of_vertex = rng.integers(0, n_nodes, n)
        patch_of = np.arange(n) // 3  # patches of 3 vertices; each patch in its first vertex's node
        node_of_patch = 7 + node_of_vertex[::3]  # the level's first node is 7
        node_of_vertex = node_of_patch[patch_of] - 7
        side = rng.integers(0, 2, patch_of.max() + 1).astype(np.int8)
        u, v = rng.integers(0, n, 4000), rng.integers(0, n, 4000)
        keep = (node_of_vertex[u] == node_of_vertex[v]) & (patch_of[u] != patch_of[v])
        u, v = u[keep].astype(np.int32), v[keep].astype(np.int32)
        left, right, bounds = cut_by_node(u, v, patch_of, side, node_of_patch, 7, n_nodes)
        cut = side[patch_of[u]] != side[patch_of[v]]
        expected_left = np.where(side[patch_of[u]] == 0, u, v)[cut]
        order = np.argsort(node_of_vertex[expected_left], kind="stable")
        np.testing.assert_array_equal(left, expected_left[order])
        np.testing.assert_array_equal(right, np.where(side[patch_of[u]] == 0, v, u)[cut][order])
        np.testing.assert_array_equal(np.diff(bounds), np.bincount(node_of_vertex[left], minlength=n_nodes))
        whole = bipartite_vertex_cover(left, right)
        np.testing.assert_array_equal(min_vertex_cover(left, right, bounds, SERIAL), whole)
        for threads in (2, 5):
            with thread_pool(threads) as pool:
                for got, want in zip(cut_by_node(u, v, patch_of, side, node_of_patch, 7, n_nodes, pool),
                                     (left, right, bounds)):
                    np.testing.assert_array_equal(got, want)
                np.testing.assert_array_equal(min_vertex_cover(left, right, bounds, pool), whole)


def test_one_sided_bisections_are_found_per_block_and_trial():
    from permbench.orderings.patch.separators import _one_sided

    sides = np.array([[0, 0, 1, 1, 1, 0, 1], [1, 1, 0, 1, 0, 0, 0]], dtype=np.int8)
    jobs = np.array([[0, 2, 0], [2, 5, 0], [5, 7, 0], [0, 2, 1], [2, 5, 1], [4, 7, 1], [6, 7, 1]])
    np.testing.assert_array_equal(_one_sided(sides, jobs), [True, True, False, True, False, True, True])


def test_pool_ranges_cover_every_call_once():
    from permbench.orderings.patch.pool import SERIAL, Pool

    assert SERIAL.ranges(7) == [(0, 7)] and SERIAL.ranges(0) == []
    pool = Pool(object(), 4)  # only ranges() is used: no executor needed
    for n in (1, 5, 8, 100):
        runs = pool.ranges(n)
        assert runs[0][0] == 0 and runs[-1][1] == n and len(runs) == min(n, 8)
        assert all(a < b for a, b in runs) and all(b == c for (_, b), (c, _) in zip(runs, runs[1:]))


def test_pool_map_runs_every_item_once_in_order_on_the_caller_and_the_workers():
    """pool(fn, items) is [fn(x) for x in items] whoever runs each call: every item once, results
    in item order, a single item in the calling thread (no hand-off), a worker's error re-raised,
    and a call made from inside a call (all workers busy) finishes instead of waiting forever."""
    import threading
    from collections import Counter

    from permbench.orderings.patch.pool import thread_pool

    with thread_pool(3) as pool:
        calls, lock = Counter(), threading.Lock()

        def square(x):
            with lock:
                calls[x] += 1
            return x * x

        assert pool(square, range(200)) == [x * x for x in range(200)]
        assert calls == Counter(range(200))
        assert pool(lambda _: threading.get_ident(), [0]) == [threading.get_ident()]
        assert pool(square, []) == []
        with pytest.raises(ZeroDivisionError):
            pool(lambda x: 1 // (x - 37), range(100))
        nested = []
        caller = threading.Thread(target=lambda: nested.append(
            pool(lambda x: sum(pool(lambda y: y, range(x))), range(40))), daemon=True)
        caller.start()
        caller.join(timeout=60)
        assert not caller.is_alive(), "a call inside a pool call never finished"
        assert nested == [[x * (x - 1) // 2 for x in range(40)]]


@pytest.mark.parametrize("split", [0, 1, 3, 20])
def test_camd_subtrees_keeps_the_tree_and_the_fill_of_one_camd_call(split, small_subtrees):
    graph = grid_graph(100)
    whole = Patch(leaf_size=64, local="camd").compute(graph)
    ordering = Patch(leaf_size=64, local_split=split).compute(graph, threads=2)
    assert ordering.stats["levels"] >= 6
    assert_nested_dissection(graph, ordering)
    np.testing.assert_array_equal(ordering.nd_tree.sizes, whole.nd_tree.sizes)  # same tree, other local orders
    # Inside a subtree, CAMD with the halo sees what the whole-graph call sees there; the
    # separators above the split are ordered on their own subgraph: fill stays within 3 %.
    assert nnz_L(graph, ordering.perm) <= 1.03 * nnz_L(graph, whole.perm)


@pytest.mark.parametrize("split", [0, 2, 20])
def test_camd_subtrees_in_postorder_is_the_grouped_sequence(split, small_subtrees):
    """In the postorder layout the jobs' orders, put in their roots' order, are the permutation
    that grouping the sequence by node gives (assembly then skips that pass)."""
    from permbench.orderings.patch.local import local_camd_subtrees
    from permbench.core.ndtree import group_by_node

    graph = grid_graph(80)
    ordering = Patch(leaf_size=64).compute(graph)
    node = node_of_vertex(ordering, graph.shape[0], "postorder")
    levels, rank = ordering.stats["levels"], node_rank(ordering.stats["levels"], "postorder")
    sequence = local_camd_subtrees(graph, node, rank, levels, split)
    grouped = local_camd_subtrees(graph, node, rank, levels, split, postorder=True)
    np.testing.assert_array_equal(grouped, group_by_node(sequence, node, rank))
    if split > 0:
        assert not np.array_equal(sequence, grouped)  # the jobs do come out of layout order


def test_halo_holds_only_ancestor_neighbours(small_subtrees):
    from permbench.orderings.patch.blocks import halo_subgraph
    from permbench.orderings.patch.local import subtree_jobs

    graph = grid_graph(60)
    ordering = Patch(leaf_size=64, layout="postorder").compute(graph)
    node = node_of_vertex(ordering, graph.shape[0], "postorder")
    job_of, roots = subtree_jobs(node, 2)
    assert roots.tolist() == [3, 4, 5, 6, 0, 1, 2]
    for job in range(roots.shape[0]):
        members = np.flatnonzero(job_of == job)
        local_index = np.zeros(graph.shape[0], dtype=np.int64)
        local_index[members] = np.arange(members.shape[0])
        xadj, adjncy, halo = halo_subgraph(graph.indptr, graph.indices, members, job_of, local_index, job,
                                           node.astype(np.int32), int(roots[job]))
        m, h = members.shape[0], halo.shape[0]
        sub = sp.csr_matrix((np.ones(adjncy.shape[0]), adjncy, xadj), shape=(m + h, m + h))
        assert (sub != sub.T).nnz == 0  # symmetric pattern
        # Halo: exactly the neighbours of the members that lie in an ancestor of the job's root.
        root = int(roots[job])
        ancestors = set()
        t = root
        while t > 0:
            t = (t - 1) // 2
            ancestors.add(t)
        neighbours = np.unique(graph[members].indices)
        expected = [u for u in neighbours if job_of[u] != job and node[u] in ancestors]
        assert halo.tolist() == expected
        # Member rows hold every edge among members.
        inside = graph[members][:, members]
        assert (sub[:m, :m] != inside).nnz == 0


def test_tree_depth_adapts_to_the_size_and_density_of_the_graph():
    from permbench.orderings.patch.decompose import tree_levels

    assert tree_levels(1, 9, 50, 1024) == 0
    assert tree_levels(40, 9, 2000, 1024) == 0  # below 2 leaves: minimum degree alone
    assert tree_levels(40, 9, 3000, 1024) == 1
    assert tree_levels(4000, 9, 250_000, 1024) == 7  # leaves of ~2k vertices
    assert tree_levels(16000, 9, 1_000_000, 1024) == 9  # capped by nd_levels
    assert tree_levels(16000, 8, 1_000_000, 1024) == 8  # the default cap
    assert tree_levels(400, 0, 25_000, 1024) == 0
    small, big = grid_graph(40), grid_graph(200)
    assert Patch().compute(small).stats["levels"] < Patch().compute(big).stats["levels"]
    # Leaves of leaf_size on the quotient route, half that on the direct route (n <= 4096).
    assert Patch().compute(big).stats["leaf_size_target"] == Patch.params["leaf_size"]
    assert Patch().compute(small).stats["leaf_size_target"] == Patch.params["leaf_size"] // 2
    assert Patch(separator="quotient").compute(small).stats["leaf_size_target"] == Patch.params["leaf_size"]
    tet = symmetric_graph(load("tetgrid[n=27000]").A)
    # A tetrahedral grid (~13 neighbours) gets a smaller leaf target than a triangle mesh.
    assert Patch().compute(tet).stats["leaf_size_target"] < Patch().compute(big).stats["leaf_size_target"]


def test_subtree_tasks_keep_the_separator_property_and_split_where_the_rule_says(monkeypatch):
    """Below the split level every subtree is decomposed from its own extracted subgraph; the
    tree must still be a nested dissection of the whole graph, with the separator counts of all
    levels accounted for."""
    from permbench.orderings.patch import subtrees

    assert subtrees.split_level(subtrees.SUBTREE_MIN - 1, 9) == 0
    assert subtrees.split_level(1_000_000, 9) == 4
    assert subtrees.split_level(1_000_000, 2) == 2
    monkeypatch.setattr(subtrees, "SUBTREE_MIN", 300)
    for graph in (grid_graph(80), symmetric_graph(load("tetgrid[n=8000]").A)):
        ordering = Patch(leaf_size=32, subtree_tasks=True).compute(graph, threads=2)
        extras = ordering.stats
        assert 0 < extras["split_level"] < extras["levels"]
        assert extras["subtree_tasks"] == 1 << extras["split_level"]
        assert sum(extras["separator_sizes_per_level"]) == extras["separator_vertices"]
        assert len(extras["separator_sizes_per_level"]) == extras["levels"]
        assert_nested_dissection(graph, ordering)


def _small_inputs():
    """Graphs of at most 2000 vertices, where the adaptive rule takes direct separators and no pool."""
    path = sp.diags([np.ones(1999), np.ones(1999)], [-1, 1], shape=(2000, 2000))
    star = sp.coo_matrix((np.ones(1499), (np.zeros(1499, dtype=int), np.arange(1, 1500))), shape=(1500, 1500))
    pieces = sp.block_diag([sp.diags([np.ones(39), np.ones(39)], [-1, 1]) for _ in range(40)])  # 40 paths
    dense = sp.block_diag([np.ones((60, 60))] * 25).tolil()  # 25 dense blocks chained by one edge each
    for b in range(24):
        dense[60 * b + 59, 60 * b + 60] = dense[60 * b + 60, 60 * b + 59] = 1
    return {"path": path, "star": star, "components": pieces, "dense blocks": dense,
            "grid": load("grid[n=1600]").A}


@pytest.mark.parametrize("name", ["path", "star", "components", "dense blocks", "grid"])
def test_small_inputs_take_direct_separators_without_a_pool(name):
    graph = symmetric_graph(sp.csr_matrix(_small_inputs()[name]))
    assert graph.shape[0] <= min(2000, AUTO_DIRECT_MAX_N)
    ordering = create("patch[leaf_size=128]").compute(graph, seed=1, threads=2)
    assert_nested_dissection(graph, ordering)
    assert ordering.stats["levels"] >= 1
    assert ordering.stats["direct_levels"] == ordering.stats["levels"]
    assert ordering.stats["threads_used"] == (2 if ordering.stats["levels"] >= POOL_MIN_LEVELS else 1)
    serial = create("patch[leaf_size=128]").compute(graph, seed=1, threads=1)
    np.testing.assert_array_equal(serial.perm, ordering.perm)
