"""The patch-based nested-dissection ordering, end to end: patches, quotient graph,
level-by-level bisection, local orderings, assembly — each phase timed."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from ...core.case import Ordering
from . import local as local_orderings
from .assembly import LAYOUTS, group_by_node, nd_tree, node_rank
from .band import BAND_METHODS, patch_radius
from .decompose import tree_levels
from .pool import thread_pool, threading_layer
from .patcher import bfs_patches, lloyd_patches, metis_patches, spatial_patches
from .quotient import quotient_graph
from .separators import OBJTYPES
from .subtrees import decompose_tree


def _patches(graph, coords, patcher: str, patch_size: int, seed: int):
    if patcher == "bfs":
        return bfs_patches(graph, patch_size)
    if patcher == "spatial":
        if coords is None:
            raise ValueError("patch: patcher=spatial needs vertex coordinates, and this dataset has none")
        if len(coords) != graph.shape[0]:
            raise ValueError(f"patch: patcher=spatial needs one coordinate row per vertex "
                             f"({graph.shape[0]}), got {len(coords)} rows")
        return spatial_patches(graph, coords, patch_size)
    if patcher == "lloyd":
        return lloyd_patches(graph, patch_size)
    if patcher == "metis":
        return metis_patches(graph, patch_size, seed)
    raise ValueError(f"patch: unknown patcher {patcher!r} (expected one of {', '.join(PATCHERS)})")


def _local(graph, node_of, rank, local: str, amd_threshold: int, levels: int, local_split: int, pool,
           layout: str) -> tuple[np.ndarray, bool]:
    """The local step's sequence, and whether it already is the permutation (nodes in layout
    order): CAMD's constraint sets come out in that order, and so do camd-subtrees' jobs in the
    postorder layout; every other sequence needs assembly's regrouping."""
    if local == "camd-subtrees":
        postorder = layout == "postorder"
        return local_orderings.local_camd_subtrees(graph, node_of, rank, levels, local_split, pool,
                                                   postorder=postorder), postorder
    if local == "amd":
        return local_orderings.local_amd(graph, node_of), False
    if local == "camd":
        return local_orderings.local_camd(graph, node_of, rank), True
    if local == "amd-threshold":
        return local_orderings.local_amd_threshold(graph, node_of, amd_threshold), False
    if local == "metis":
        return local_orderings.local_metis(graph, node_of), False
    if local == "identity":
        return local_orderings.local_identity(node_of), False
    raise ValueError(f"patch: unknown local ordering {local!r} (expected one of "
                     f"{', '.join(local_orderings.LOCAL_METHODS)})")


#: How each ``bisection`` choice calls METIS on a quotient graph.
#: ``rb``: recursive bisection minimizing the fine edges cut (quotient edge weight = number of
#: fine edges between the two patches), imbalance up to 1.2 as METIS's own nested dissection.
#: ``kway``: the reference's call, k-way with the communication-volume objective, unit edge
#: weights, METIS's default imbalance (1.03).
BISECTIONS = {
    "rb": {"recursive": True, "unit_edge_weights": False, "metis": {"ufactor": 200}},
    "kway": {"recursive": False, "unit_edge_weights": True, "metis": {"objtype": OBJTYPES["vol"]}},
}

#: ``separator=auto`` (the default) uses METIS's separator on the real graph up to this many
#: vertices, the quotient separator above: on the small, dense SuiteSparse matrices (mean degree
#: 10-45) the quotient route's band refinement spans the whole graph and costs more than the
#: direct call, for the same fill (results/patch/patch-2core.md).
AUTO_DIRECT_MAX_N = 4096

#: On the direct route the leaves are leaf_size / DIRECT_LEAF_DIVISOR: those inputs are small dense
#: matrices (mean degree 10-45), where one more level of METIS separators still beats minimum
#: degree on the leaf (bcsstk09, 1,083 vertices: 1.03x METIS's nnz(L) with leaves of 1024, 1.24x
#: with 2048, which leaves it no separator at all). On the quotient route leaves of 2048 cost one
#: level less than 1024 (10-18 % less time on 30k-250k inputs, 2 cores) for 1.057 -> 1.059x METIS's
#: nnz(L) (geometric mean of 17 inputs; results/patch/ab-2core-leaf-2048/).
DIRECT_LEAF_DIVISOR = 2

#: Trees of fewer levels are built without a thread pool: their few METIS calls (about 1 ms each)
#: gain less from a second thread than starting one costs.
POOL_MIN_LEVELS = 3


PATCHERS = ("bfs", "lloyd", "spatial", "metis")
SEPARATORS = ("quotient", "direct", "auto")


def patch_order(graph: sp.csr_matrix, coords: np.ndarray | None = None, *, patch_size: int = 64,
                nd_levels: int = 8, leaf_size: int = 2048, patcher: str = "bfs", separator: str = "auto", bisection: str = "rb",
                trials: int = 1, band: float = 1.0, band_levels: int = 4, band_method: str = "flow", refine: int = 1,
                local: str = "camd-subtrees", local_split: int = 5, amd_threshold: int = 1024,
                layout: str = "postorder", seed: int = 0, threads: int = 1, subtree_tasks: bool = False) -> Ordering:
    """Patch-based nested dissection of a symmetric, diagonal-free CSR graph (see the package docstring).

    ``patch_size``: vertices per patch; ``nd_levels``: at most this many separator levels
    (L = min(nd_levels, floor(log2 #patches))); ``patcher``: bfs | lloyd | spatial (needs
    ``coords``, one row per vertex) | metis; ``separator``: quotient | direct (METIS's vertex
    separator on each node's real subgraph) | auto (direct up to AUTO_DIRECT_MAX_N vertices);
    ``bisection``: rb | kway (see BISECTIONS); ``trials``: METIS bisections per node at the root
    (halved per level; the smallest vertex cover wins); ``band``/``band_levels``: band refinement
    half-width in patch radii, on that many top levels; ``band_method``: flow (the band's smallest
    separator, by maximum flow) | metis (METIS's separator of the band); ``refine``: FM passes per level
    (not on the levels with a flow band separator, already the band's smallest);
    ``local``: camd-subtrees | amd | camd | amd-threshold | metis | identity; ``local_split``: for
    camd-subtrees, the level whose subtrees are ordered one by one (the separators above it alone);
    ``layout``: postorder | bfs (reverse breadth-first, cuDSS's); ``seed``: METIS's seed;
    ``threads``: the thread budget (METIS and CAMD calls of independent tree nodes run on it; the
    result is the same for every value); ``subtree_tasks``: decompose the subtrees below nodes of
    about 64k vertices as independent tasks on the pool (:mod:`.subtrees`; off by default: measured
    slower at 16 threads, see the package docstring).

    Returns the permutation (new -> old), the ND tree (``nd_tree``: 2^(L+1) - 1 node sizes in the
    layout's order, summing to n) and, in ``stats``, the per-phase times (``t_*_s``) and the tree
    statistics (``levels`` is L).
    """
    for name, value, allowed in (("patcher", patcher, PATCHERS), ("separator", separator, SEPARATORS),
                                 ("bisection", bisection, tuple(BISECTIONS)),
                                 ("local", local, local_orderings.LOCAL_METHODS), ("layout", layout, LAYOUTS),
                                 ("band_method", band_method, BAND_METHODS)):
        if value not in allowed:
            raise ValueError(f"patch: {name}={value!r} is not one of {', '.join(allowed)}")
    if patch_size < 1 or nd_levels < 0 or leaf_size < 1 or trials < 1 or band < 0 or refine < 0 or local_split < 0 or threads < 1:
        raise ValueError(f"patch: expected patch_size >= 1, nd_levels >= 0, leaf_size >= 1, trials >= 1, band >= 0, refine >= 0, "
                         f"local_split >= 0 and threads >= 1; got {patch_size}, {nd_levels}, {leaf_size}, {trials}, {band}, "
                         f"{refine}, {local_split}, {threads}")
    n = graph.shape[0]
    times = {"t_patch_s": 0.0, "t_quotient_s": 0.0, "t_decompose_s": 0.0, "t_local_s": 0.0,
             "t_assemble_s": 0.0}
    clock = time.perf_counter
    t0 = clock()
    if graph.nnz == 0:
        # No off-diagonal entries: nothing to reduce; the identity is optimal.
        extras = {**times, "n_patches": n, "levels": 0, "separator_sizes_per_level": [], "separator_vertices": 0}
        return Ordering(np.arange(n, dtype=np.int64), nd_tree(np.zeros(n, dtype=np.int64), 0, layout),
                        {**extras, "threads_used": 1})

    patch_of, n_patches = _patches(graph, coords, patcher, patch_size, seed)
    t1 = clock()
    times["t_patch_s"] = t1 - t0
    stats: dict = {}
    # Denser graphs (3D meshes: ~14 neighbours against a surface's 6) have larger separators
    # inside a leaf, so their leaves are kept smaller: leaf_size * 6 / mean degree, down to 1/4.
    mean_degree = graph.nnz / max(1, n)
    direct = separator == "direct" or (separator == "auto" and n <= AUTO_DIRECT_MAX_N)
    route_leaf = leaf_size // DIRECT_LEAF_DIVISOR if direct else leaf_size
    effective_leaf = max(1, int(route_leaf * max(0.25, min(1.0, 6.0 / max(mean_degree, 1e-9)))))
    levels = tree_levels(n_patches, nd_levels, n, effective_leaf)
    stats["leaf_size_target"] = effective_leaf
    threads_used = threads if levels >= POOL_MIN_LEVELS else 1
    with thread_pool(threads_used) as pool:
        if levels == 0:
            node_of = np.zeros(n, dtype=np.int32)
            t3 = clock()
        else:
            Q = quotient_graph(graph, patch_of, n_patches, pool)
            t2 = clock()
            times["t_quotient_s"] = t2 - t1
            how = BISECTIONS[bisection]
            # Band half-width in hops: ``band`` patch radii (0 turns band refinement off).
            band_hops = int(np.ceil(band * patch_radius(graph, patch_size))) if band > 0 else 0
            stats["band_hops"] = band_hops
            node_of, tree_stats = decompose_tree(
                graph, patch_of, Q, levels, pool, metis_options=how["metis"],
                direct_levels=levels if direct else 0, unit_edge_weights=how["unit_edge_weights"],
                recursive=how["recursive"], trials=trials, band_width=band_hops, band_levels=band_levels,
                band_method=band_method,
                refine_passes=refine, seed=seed, subtree_tasks=subtree_tasks)
            stats.update(tree_stats)
            stats["quotient_edges"] = int(Q.q_a.shape[0])  # at the start
            stats["inter_patch_edges"] = int(Q.edge_u.shape[0])
            t3 = clock()
            times["t_decompose_s"] = t3 - t2
        rank = node_rank(levels, layout)
        sequence, grouped = _local(graph, node_of, rank, local, amd_threshold, levels, local_split, pool, layout)
    t4 = clock()
    times["t_local_s"] = t4 - t3
    perm = sequence if grouped else group_by_node(sequence, node_of, rank)
    tree = nd_tree(node_of, levels, layout)
    times["t_assemble_s"] = clock() - t4

    sizes = np.bincount(node_of, minlength=rank.shape[0])
    first_leaf = (1 << levels) - 1
    leaves = sizes[first_leaf:]
    extras = {
        **times,
        "n_patches": int(n_patches),
        "patch_size_max": int(np.bincount(patch_of).max()),
        "levels": int(levels),
        "separator_vertices": int(sizes[:first_leaf].sum()),
        "leaf_size_min": int(leaves.min()),
        "leaf_size_max": int(leaves.max()),
        "empty_nodes": int((sizes == 0).sum()),
        "threads_used": int(threads_used),
        "numba_threading_layer": threading_layer(),
        **stats,
    }
    return Ordering(perm, tree, extras)
