"""Step 0 of the patch ordering: split the vertices into small connected patches.

Every patcher returns ``patch_of`` (int32, one patch id per vertex, ids 0..n_patches-1) and
``n_patches``. Patches never cross connected components and are connected (the decomposition
relies on it only for quality, not for correctness).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp


@numba.njit(cache=True)
def _bfs_grow(indptr, indices, label, patch_size):
    """Sweep vertex ids in increasing order; each unassigned vertex seeds a breadth-first growth
    claiming unassigned neighbours of its own ``label`` until the piece holds ``patch_size``."""
    n = indptr.shape[0] - 1
    patch_of = np.full(n, -1, dtype=np.int32)
    queue = np.empty(n, dtype=np.int64)
    n_patches = 0
    for seed in range(n):
        if patch_of[seed] != -1:
            continue
        patch_of[seed] = n_patches
        lab = label[seed]
        head, tail, size = 0, 1, 1
        queue[0] = seed
        while head < tail and size < patch_size:
            v = queue[head]
            head += 1
            for p in range(indptr[v], indptr[v + 1]):
                u = indices[p]
                if patch_of[u] == -1 and label[u] == lab:
                    patch_of[u] = n_patches
                    queue[tail] = u
                    tail += 1
                    size += 1
                    if size == patch_size:
                        break
        n_patches += 1
    return patch_of, n_patches


def bfs_patches(graph: sp.csr_matrix, patch_size: int) -> tuple[np.ndarray, int]:
    """The reference's deterministic patcher: sweep vertex ids in increasing order; each unassigned
    vertex seeds a breadth-first growth that claims unassigned neighbours until the patch holds
    ``patch_size`` vertices (late patches can be small fragments)."""
    one_class = np.zeros(graph.shape[0], dtype=np.int8)
    return _bfs_grow(graph.indptr, graph.indices, one_class, max(1, int(patch_size)))


def split_disconnected(graph: sp.csr_matrix, label: np.ndarray) -> tuple[np.ndarray, int]:
    """Split every class of ``label`` into its connected pieces (new ids in order of first vertex)."""
    n = graph.shape[0]
    return _bfs_grow(graph.indptr, graph.indices, np.ascontiguousarray(label), max(1, n))


@numba.njit(cache=True)
def _distance_to_boundary(indptr, indices, label):
    """Hops from each vertex to the nearest vertex of its class that has a neighbour in another
    class (multi-source BFS inside the classes); -1 for classes without such a vertex."""
    n = indptr.shape[0] - 1
    dist = np.full(n, -1, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for v in range(n):
        for p in range(indptr[v], indptr[v + 1]):
            if label[indices[p]] != label[v]:
                dist[v] = 0
                queue[tail] = v
                tail += 1
                break
    head = 0
    while head < tail:
        v = queue[head]
        head += 1
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if dist[u] == -1 and label[u] == label[v]:
                dist[u] = dist[v] + 1
                queue[tail] = u
                tail += 1
    return dist


@numba.njit(cache=True)
def _deepest_vertices(label, dist, n_labels):
    """For each class, its vertex farthest from the class boundary (first one on ties)."""
    best = np.full(n_labels, -1, dtype=np.int64)
    depth = np.full(n_labels, -2, dtype=np.int64)
    for v in range(label.shape[0]):
        c = label[v]
        if dist[v] > depth[c]:
            depth[c] = dist[v]
            best[c] = v
    return best


@numba.njit(cache=True)
def _graph_voronoi(indptr, indices, seeds):
    """Assign every vertex to its nearest seed in hops (simultaneous BFS; ties to the seed whose
    wave arrives first). Vertices in components without a seed keep -1."""
    n = indptr.shape[0] - 1
    label = np.full(n, -1, dtype=np.int32)
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for i in range(seeds.shape[0]):
        label[seeds[i]] = i
        queue[tail] = seeds[i]
        tail += 1
    head = 0
    while head < tail:
        v = queue[head]
        head += 1
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if label[u] == -1:
                label[u] = label[v]
                queue[tail] = u
                tail += 1
    return label


def lloyd_patches(graph: sp.csr_matrix, patch_size: int, iterations: int = 1) -> tuple[np.ndarray, int]:
    """Compact patches: start from the BFS sweep, then move each patch's seed to its deepest
    vertex and regrow all patches at once as a graph Voronoi diagram (Lloyd iterations).

    The sweep's late patches are strips squeezed between earlier ones; a cut along patch
    boundaries is then jagged in one direction. Voronoi cells of well-spread seeds are compact,
    so patch boundaries can line up with short separators. Sizes stay near ``patch_size`` on
    average but are not capped.
    """
    label, n_labels = bfs_patches(graph, patch_size)
    for _ in range(iterations):
        depth = _distance_to_boundary(graph.indptr, graph.indices, label)
        seeds = _deepest_vertices(label, depth, n_labels)
        label = _graph_voronoi(graph.indptr, graph.indices, seeds)
        n_labels = seeds.shape[0]
    return label, n_labels


def _spread_bits(x: np.ndarray, dims: int) -> np.ndarray:
    """Insert dims-1 zero bits between the bits of x (uint64), for a Morton key."""
    x = x.astype(np.uint64)
    if dims == 2:  # 32 bits -> 64
        masks = [(16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F),
                 (2, 0x3333333333333333), (1, 0x5555555555555555)]
    else:  # 21 bits -> 63
        masks = [(32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                 (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)]
    for shift, mask in masks:
        x = (x | (x << np.uint64(shift))) & np.uint64(mask)
    return x


def morton_keys(coords: np.ndarray) -> np.ndarray:
    """Z-order (Morton) key of each point: coordinates quantized on a 2^21 (3D) or 2^32 (2D) grid."""
    pts = np.asarray(coords, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (1, 2, 3):
        raise ValueError(f"coords must have shape (n, 2) or (n, 3), got {pts.shape}")
    if pts.shape[1] == 1:
        pts = np.hstack([pts, np.zeros_like(pts)])
    dims = pts.shape[1]
    bits = 32 if dims == 2 else 21
    lo = pts.min(axis=0)
    span = float((pts.max(axis=0) - lo).max()) or 1.0
    # One scale for all axes keeps cells square, so runs of the curve are compact blobs.
    q = np.floor((pts - lo) / span * (2.0**bits - 1)).astype(np.uint64)
    key = _spread_bits(q[:, 0], dims)
    for d in range(1, dims):
        key |= _spread_bits(q[:, d], dims) << np.uint64(d)
    return key


def spatial_patches(graph: sp.csr_matrix, coords: np.ndarray, patch_size: int) -> tuple[np.ndarray, int]:
    """Sort vertices along a Morton curve, cut the sorted sequence into runs of ``patch_size``, then
    split runs that are disconnected in the graph (a run can jump across a gap or a thin feature)."""
    n = graph.shape[0]
    order = np.argsort(morton_keys(coords), kind="stable")
    run = np.empty(n, dtype=np.int32)
    run[order] = (np.arange(n) // max(1, int(patch_size))).astype(np.int32)
    return split_disconnected(graph, run)


def metis_patches(graph: sp.csr_matrix, patch_size: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """METIS k-way partition into ceil(n / patch_size) parts, split into connected pieces."""
    import pymetis

    n = graph.shape[0]
    n_parts = -(-n // max(1, int(patch_size)))
    if n_parts <= 1 or graph.nnz == 0:
        return split_disconnected(graph, np.zeros(n, dtype=np.int32))
    options = pymetis.Options(seed=int(seed))
    adjacency = pymetis.CSRAdjacency(graph.indptr, graph.indices)
    _cut, parts = pymetis.part_graph(n_parts, adjacency, options=options, recursive=False)
    return split_disconnected(graph, np.asarray(parts, dtype=np.int32))
