"""Benchmark: permbench's symbolic analysis vs CHOLMOD's own, on a triangulated grid.

For each ordering (METIS via pymetis, AMD via libamd) of an m x m triangulated grid (7-point
stencil: each square split by one diagonal; graph Laplacian + I), this times

* ``symbolic_factor(graph, perm)``: symmetric permutation of the graph, etree, postorder, column
  counts, tree statistics (everything the ``symbolic`` back-end reports), and
* ``cholmod.analyze(A_perm, mode="supernodal", ordering_method="natural")`` on the pre-permuted
  matrix (built beforehand, not timed),

each the median of ``--repeats`` runs after a warm-up, and prints the ratio. The first call of
``symbolic_factor`` in this process is timed separately: it includes numba's compilation, or the
load of its on-disk cache (``cache=True``) when an earlier run compiled it.

Usage: .venv/bin/python scripts/bench_symbolic.py [--m 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp


def triangulated_grid(m: int) -> sp.csr_matrix:
    """Graph Laplacian + I of an m x m grid with one diagonal per square (n = m², 7-point stencil)."""
    n = m * m
    idx = np.arange(n).reshape(m, m)
    right = (idx[:, :-1].ravel(), idx[:, 1:].ravel())
    down = (idx[:-1, :].ravel(), idx[1:, :].ravel())
    diag = (idx[:-1, :-1].ravel(), idx[1:, 1:].ravel())
    rows = np.concatenate([right[0], down[0], diag[0]])
    cols = np.concatenate([right[1], down[1], diag[1]])
    W = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    W = W + W.T
    degree = np.asarray(W.sum(axis=1)).ravel()
    A = sp.diags(degree + 1.0) - W
    A = A.tocsr()
    A.sort_indices()
    return A


def interleaved_medians(fns: dict, repeats: int) -> dict:
    """name -> (median wall s, median thread CPU s). Calls alternate, so load drifts hit all alike.

    Both kernels are single-threaded, so thread CPU time is also reported: on a shared machine it
    is far less disturbed by other processes than wall time.
    """
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.thread_time() - c0)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in fns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", type=int, default=1000, help="grid side (n = m²); default 1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--orderings", default="metis,amd")
    args = parser.parse_args()

    from sksparse import cholmod

    from permbench import orderings
    from permbench.harness.backends.symbolic import postordered_perm, symbolic_factor
    from permbench.core.case import symmetric_graph

    t0 = time.perf_counter()
    A = triangulated_grid(args.m)
    graph = symmetric_graph(A)
    print(f"grid {args.m}x{args.m}: n={A.shape[0]:,} nnz(A)={A.nnz:,} (built in {time.perf_counter() - t0:.2f} s)")

    small = symmetric_graph(triangulated_grid(4))
    t0 = time.perf_counter()
    symbolic_factor(small, np.arange(16))
    print(f"first symbolic_factor call (numba compile or cache load): {time.perf_counter() - t0:.2f} s")

    for name in args.orderings.split(","):
        t0 = time.perf_counter()
        perm = orderings.create(name).compute(graph).perm
        t_order = time.perf_counter() - t0
        A_perm = A[perm][:, perm].tocsc()
        A_perm.sort_indices()

        fns = {
            "symbolic_factor": lambda: symbolic_factor(graph, perm),
            "cholmod.analyze": lambda: cholmod.analyze(A_perm, mode="supernodal", ordering_method="natural"),
            "postordered_perm": lambda: postordered_perm(graph, perm),
        }
        for fn in fns.values():  # warm-up
            fn()
        times = interleaved_medians(fns, args.repeats)
        f = symbolic_factor(graph, perm)
        print(f"{name:>6}: order {t_order:.2f} s | nnz_L={f.nnz_L:,} flops={f.flops:.3e} supernodes={f.supernodes:,}")
        for label, (wall, cpu) in times.items():
            print(f"        {label:<17} wall {wall * 1e3:8.1f} ms   cpu {cpu * 1e3:8.1f} ms")
        (sym_wall, sym_cpu), (chol_wall, chol_cpu) = times["symbolic_factor"], times["cholmod.analyze"]
        print(f"        ratio symbolic_factor / cholmod.analyze: wall {sym_wall / chol_wall:.3f}, "
              f"cpu {sym_cpu / chol_cpu:.3f}  (medians of {args.repeats}; cholmod.analyze: supernodal, "
              "natural ordering, on the pre-permuted matrix)")

if __name__ == "__main__":
    main()
