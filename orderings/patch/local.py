"""Step 3 of the patch ordering: order the vertices inside every tree node (leaf or separator).

Each function takes the graph and the tree node of every vertex and returns a *sequence*: every
vertex once, each node's vertices in their local elimination order (nodes may interleave;
assembly groups them with one stable sort).

* ``amd``: AMD on each node's induced subgraph, as one AMD call on the block-diagonal union of all
  blocks (AMD never links disconnected blocks, so each block's order equals a per-block call).
* ``amd-threshold``: the reference's rule, AMD only on blocks larger than a threshold, the input
  order (ascending index) below it.
* ``camd-subtrees`` (the default): CAMD on every subtree below a split level and on every
  separator above it, each on its own subgraph plus a *halo* (its neighbours in ancestor
  separators, put in a last constraint set and dropped from the result, so vertices next to a
  separator still get eliminated late). The calls are independent and run in parallel; see
  :func:`local_camd_subtrees`.
* ``camd``: one constrained minimum degree (CAMD) call on the whole graph, each node a constraint
  set in layout order (what CHOLMOD's nesdis does); serial, and never cheaper than AMD on the
  whole graph.
* ``metis``: METIS nested dissection on each block.
* ``identity``: ascending original index inside each block.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from ...core.ndtree import counting_order

from ..amd import amd_order
from .blocks import block_graph, block_matrix, block_slice, group_bounds, halo_subgraph, node_depth
from .camd import camd_order, camd_order_csr
from .pool import SERIAL

#: camd-subtrees: the smallest average subtree worth a call of its own. 8192: inputs of 16k-32k
#: vertices get two calls, which 2 threads run at once (30k mesh, 2 threads: 33.8 -> 29.5 ms,
#: same nnz(L) over 5 seeds; 4096 and 2048 gained nothing more; results/patch/ab-2core-subtree-min/).
SUBTREE_MIN = 8192

LOCAL_METHODS = ("camd-subtrees", "amd", "amd-threshold", "camd", "metis", "identity")


def _amd_runs(B: sp.csr_matrix, starts: np.ndarray, stops: np.ndarray, run_size: int) -> np.ndarray:
    """AMD on runs of consecutive whole blocks of about ``run_size`` vertices.

    AMD never links disconnected blocks, so any grouping gives each block the order a per-block
    call would; but one call on the union of all blocks of a 1M-vertex grid took 2-3x longer
    than the blocks one by one (its minimum-degree search jumps between blocks all over memory),
    while per-block calls pay Python overhead on thousands of tiny blocks. Runs get both right.
    """
    pieces = []
    s = 0
    n_blocks = starts.shape[0]
    while s < n_blocks:
        e = s + 1
        while e < n_blocks and stops[e - 1] - starts[s] < run_size:
            e += 1
        lo, hi = int(starts[s]), int(stops[e - 1])
        pieces.append(lo + amd_order(block_matrix(B, lo, hi)))
        s = e
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)


def local_amd(graph, node_of, run_size: int = 16384) -> np.ndarray:
    order, B, sorted_label = block_graph(graph, node_of)
    starts, stops = group_bounds(sorted_label)
    return order[_amd_runs(B, starts, stops, run_size)]


def local_amd_threshold(graph, node_of, threshold: int, run_size: int = 16384) -> np.ndarray:
    sizes = np.bincount(node_of)
    big = sizes[node_of] > threshold
    order, B, sorted_label = block_graph(graph, np.where(big, node_of, -1).astype(np.int32))
    starts, stops = group_bounds(sorted_label)
    small = np.flatnonzero(~big)  # ascending index: the identity inside each small block
    return np.concatenate([order[_amd_runs(B, starts, stops, run_size)], small])


def local_identity(node_of) -> np.ndarray:
    return np.arange(node_of.shape[0], dtype=np.int64)


def local_metis(graph, node_of) -> np.ndarray:
    import pymetis

    order, B, sorted_label = block_graph(graph, node_of)
    starts, stops = group_bounds(sorted_label)
    pieces = []
    for s, e in zip(starts, stops):
        indptr, indices = block_slice(B, s, e)
        if indices.shape[0] == 0:
            pieces.append(np.arange(s, e))
            continue
        perm, _ = pymetis.nested_dissection(pymetis.CSRAdjacency(indptr.astype(np.int64), indices.astype(np.int64)))
        pieces.append(s + np.asarray(perm, dtype=np.int64))
    return order[np.concatenate(pieces)]


def local_camd(graph, node_of, rank) -> np.ndarray:
    """Constraint set = layout rank of the vertex's node: CAMD returns the sets in increasing
    order, so its permutation is already in layout order."""
    constraint = rank[node_of]
    # Compress set numbers to 0..k-1 (CAMD needs them < n; empty nodes leave gaps).
    used = np.unique(constraint)
    return camd_order(graph, np.searchsorted(used, constraint))


@numba.njit(cache=True, nogil=True)
def _job_of(node_of, split, lo, hi, job_of):
    """job_of[lo:hi] (see :func:`subtree_jobs`)."""
    first = (1 << split) - 1
    for i in range(lo, hi):
        t = np.int64(node_of[i])
        depth = node_depth(t)
        job_of[i] = ((t + 1) >> (depth - split)) - 1 - first if depth >= split else (1 << split) + t


def subtree_jobs(node_of: np.ndarray, split: int, pool=SERIAL) -> tuple[np.ndarray, np.ndarray]:
    """Job of every vertex: job j < 2^split is the subtree under the j-th node of level ``split``;
    job 2^split + t is separator node t of a level above ``split``. Also the root tree node of
    every job. Computed over pieces of the vertices on numba's threads (:meth:`.pool.Pool.compiled`)."""
    roots = np.concatenate([(1 << split) - 1 + np.arange(1 << split), np.arange((1 << split) - 1)])
    job_of = np.empty(node_of.shape[0], dtype=np.int64)
    pieces = pool.pieces(node_of.shape[0])
    pool.run_pass(pieces, lambda: _job_of(node_of, split, 0, node_of.shape[0], job_of),
                  lambda: _job_of_chunks(node_of, split, job_of, pieces))
    return job_of, roots


@numba.njit(cache=True, nogil=True, parallel=True)
def _job_of_chunks(node_of, split, job_of, chunks):
    """:func:`_job_of` on ``chunks`` equal pieces of the vertices."""
    n = node_of.shape[0]
    for c in numba.prange(chunks):
        _job_of(node_of, split, c * n // chunks, (c + 1) * n // chunks, job_of)


@numba.njit(cache=True, nogil=True)
def _local_index(by_job, job_of, bounds, lo, hi, local_index):
    """Position of every vertex by_job[lo:hi] inside its job."""
    for i in range(lo, hi):
        v = by_job[i]
        local_index[v] = i - bounds[job_of[v]]


@numba.njit(cache=True, nogil=True, parallel=True)
def _local_index_chunks(by_job, job_of, bounds, local_index, chunks):
    """:func:`_local_index` on ``chunks`` equal pieces of ``by_job``."""
    n = by_job.shape[0]
    for c in numba.prange(chunks):
        _local_index(by_job, job_of, bounds, c * n // chunks, (c + 1) * n // chunks, local_index)


@numba.njit(cache=True, nogil=True)
def _job_constraints(members, node_of, rank, n_halo):
    """CAMD's constraint sets for a job: the layout rank of each member's node, compressed to
    0..k-1 in increasing order (what np.unique's inverse gives), then set k for the ``n_halo``
    halo vertices. Compiled: the jobs run in parallel threads, and np.unique holds the GIL."""
    used = np.zeros(rank.shape[0] + 1, dtype=np.int64)
    for v in members:
        used[rank[node_of[v]] + 1] = 1
    for r in range(rank.shape[0]):
        used[r + 1] += used[r]
    constraint = np.empty(members.shape[0] + n_halo, dtype=np.int64)
    for i in range(members.shape[0]):
        constraint[i] = used[rank[node_of[members[i]]]]
    constraint[members.shape[0]:] = used[rank.shape[0]]
    return constraint


def local_camd_subtrees(graph, node_of, rank, levels: int, split: int, pool=SERIAL, postorder: bool = False) -> np.ndarray:
    """CAMD per job (see :func:`subtree_jobs`): the subtrees below level ``min(split, levels)``
    and the separators above it, each with its halo of ancestor-separator neighbours.

    Inside a subtree this is what one whole-graph CAMD call does there (the postorder eliminates
    a subtree in one stretch, and minimum degree only sees the subtree and its separator
    neighbours while doing so); separators above the split are ordered on their own subgraph
    instead of their Schur complement (which is nearly dense, so their order matters little).
    The job split depends only on the tree, never on the thread count, so neither does the
    result. Returns a sequence (each node's vertices in local order; assembly groups them).
    ``postorder``: ``rank`` is the postorder layout; then every job's nodes are one stretch of it
    and CAMD already orders them by rank, so the jobs' orders, put in the order of their roots'
    ranks, are the permutation itself (what grouping by node would give, without its pass).
    """
    # Subtrees of at least SUBTREE_MIN vertices: below that, the calls' fixed cost outweighs
    # what they save (a 2k-vertex matrix is one call). Depends on n and the tree only.
    by_size = int(np.floor(np.log2(max(1.0, node_of.shape[0] / SUBTREE_MIN))))
    split = max(0, min(split, levels, by_size))
    job_of, roots = subtree_jobs(node_of, split, pool)
    by_job, bounds = counting_order(job_of, roots.shape[0])  # ascending vertex id inside each job
    local_index = np.empty(by_job.shape[0], dtype=np.int64)
    pieces = pool.pieces(by_job.shape[0])
    pool.run_pass(pieces, lambda: _local_index(by_job, job_of, bounds, 0, by_job.shape[0], local_index),
                  lambda: _local_index_chunks(by_job, job_of, bounds, local_index, pieces))

    def order_job(j):
        members = by_job[bounds[j]:bounds[j + 1]]
        if members.shape[0] <= 1:
            return members
        xadj, adjncy, halo = halo_subgraph(graph.indptr, graph.indices, members, job_of, local_index, j,
                                           node_of, int(roots[j]))
        # Constraint sets: the job's nodes in layout order (compressed to 0..k-1), the halo last.
        constraint = _job_constraints(members, node_of, rank, halo.shape[0])
        perm = camd_order_csr(xadj, adjncy, constraint)
        return members[perm[perm < members.shape[0]]]

    jobs = [j for j in range(roots.shape[0]) if bounds[j + 1] > bounds[j]]
    orders = list(pool(order_job, jobs))
    if postorder:
        orders = [orders[i] for i in np.argsort(rank[roots[jobs]], kind="stable")]
    return np.concatenate(orders)
