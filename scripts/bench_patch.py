"""Benchmark: the patch ordering's presets against METIS, AMD and the C++ reference (homa).

For each target input of the patch ordering (orderings/patch/__init__.py), built by the project's own generators with
``matrix=graph`` (the pattern of the mesh's edges):

* ``grid``: ``grid[n=1000000]``, a 1000x1000 triangulated grid (each square split by one diagonal);
* ``icosphere``: ``icosphere[n=655362]``, the level-8 subdivided icosahedron;
* ``tetgrid``: ``tetgrid[n=512000]``, an 80x80x80 tetrahedral grid (Kuhn split, 14 neighbours),

it times each ordering's ``compute`` on the symmetric graph (median of ``--repeats`` calls,
interleaved across orderings so load drifts hit all alike, after one untimed warm-up call on a
small graph that loads numba's cache and the libraries), validates the permutation, and computes
nnz(L) and flops (Σ c_j²) with the ``symbolic`` back-end. It prints one table per input with
ratios against METIS and, when homapy is importable, against the reference; then the patch
orderings' phase breakdown (last timed call) on each input.

Wall time is what the targets are about; process CPU time is printed too, because on a shared
machine it is far less disturbed by other processes (for the single-threaded orderings: all but
homa, which runs OpenMP threads). homa is followed by METIS in the interleaving, so its idle
OpenMP threads, still spinning for a moment after it returns, do not share a core with a short
measurement.

Usage: .venv/bin/python scripts/bench_patch.py [--inputs grid,icosphere,tetgrid] [--repeats 3]
       [--orderings patch[preset=fast],patch,patch[preset=quality],homa,metis,amd] [--threads 1]
(an input is one of the keys above or any dataset spec, e.g. "grid[n=250000,matrix=graph]";
every ordering gets ``--threads`` threads).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from permbench.datasets import load
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.core.case import symmetric_graph, validate_perm
from permbench.orderings import create, registry

INPUTS = {
    "grid": "grid[n=1000000,matrix=graph]",
    "icosphere": "icosphere[n=655362,matrix=graph]",
    "tetgrid": "tetgrid[n=512000,matrix=graph]",
}
DEFAULT_ORDERINGS = "patch[preset=fast],patch,patch[preset=quality],homa,metis,amd"
PHASES = ("t_patch_s", "t_quotient_s", "t_decompose_s", "t_local_s", "t_assemble_s")


def split_specs(text: str) -> list[str]:
    """Split on commas outside brackets (spec names contain commas inside them)."""
    names, depth, token = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            names.append(token)
            token = ""
        else:
            token += ch
    names.append(token)
    return [n for n in names if n]


def available_orderings(names: list[str]) -> dict:
    out = {}
    for name in names:
        ordering = create(name)
        ok, reason = registry.get(ordering.name).available()
        if ok:
            out[name] = ordering
        else:
            print(f"skipping {name}: {reason}")
    return out


def warm_up(orderings: dict, threads: int) -> None:
    case = load("grid[n=20000,matrix=graph]")
    graph = symmetric_graph(case.A)
    for ordering in orderings.values():
        ordering.compute(graph, coords=case.coords, seed=0, threads=threads)
    symbolic_factor(graph, np.arange(graph.shape[0]))


def time_orderings(orderings: dict, graph, coords, repeats: int, threads: int) -> tuple[dict, dict]:
    wall = {name: [] for name in orderings}
    cpu = {name: [] for name in orderings}
    last = {}
    for _ in range(repeats):
        for name, ordering in orderings.items():
            c0, t0 = time.process_time(), time.perf_counter()
            result = ordering.compute(graph, coords=coords, seed=0, threads=threads)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            last[name] = result
    timing = {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in orderings}
    return timing, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", default=",".join(INPUTS))
    parser.add_argument("--orderings", default=DEFAULT_ORDERINGS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    orderings = available_orderings(split_specs(args.orderings))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; repeats {args.repeats}; threads {args.threads}")
    warm_up(orderings, args.threads)

    for key in split_specs(args.inputs):
        spec = INPUTS.get(key, key)
        case = load(spec)
        graph = symmetric_graph(case.A)
        timing, results = time_orderings(orderings, graph, case.coords, args.repeats, args.threads)
        rows = {}
        for name, result in results.items():
            perm = validate_perm(result.perm, graph.shape[0], name)
            sym = symbolic_factor(graph, perm)
            rows[name] = (timing[name][0], timing[name][1], sym.nnz_L, sym.flops)
        print(f"\n== {key}: {spec}  n={graph.shape[0]:,}  nnz(graph)={graph.nnz:,}")
        ref = {r: rows[r] for r in ("metis", "homa") if r in rows}
        head = f"{'ordering':28s} {'t_wall_s':>9s} {'t_cpu_s':>8s} {'nnz_L':>12s} {'flops':>10s}"
        for r in ref:
            head += f" | t/{r:5s} nnz/{r:5s} fl/{r:5s}"
        print(head)
        for name, (t_wall, t_cpu, nnz, flops) in rows.items():
            line = f"{name:28s} {t_wall:9.3f} {t_cpu:8.3f} {nnz:12,d} {flops:10.3e}"
            for r, (rt, _rc, rn, rf) in ref.items():
                line += f" | {t_wall / rt:7.3f} {nnz / rn:9.3f} {flops / rf:8.3f}"
            print(line)
        for name, result in results.items():
            if name.startswith("patch"):
                extras = result.extras
                phases = "  ".join(f"{p[2:-2]} {extras[p]:.3f}" for p in PHASES)
                print(f"  {name}: phases (s, last call): {phases}; patches {extras['n_patches']}, "
                      f"levels {extras['levels']}, separator vertices {extras['separator_vertices']}, "
                      f"threads used {extras.get('threads_used', 1)}")


if __name__ == "__main__":
    main()
