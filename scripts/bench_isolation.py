"""What per-unit process isolation costs: isolated run vs the same work in this process.

Runs a suite of trivial cells (small meshes × cheap orderings × the symbolic back-end: one cell
per unit) through ``runner.run`` — every unit in its own spawned child, every dataset loaded
once in a child of its own — and times each unit from its start to its fragment being written.
Then it runs the same units in this process, on the same loaded cases (warm: second call), and
prints the overhead per unit (isolated − in-process): median, min, max, and the dataset loaders'
time.

    .venv/bin/python scripts/bench_isolation.py            # 4 datasets × 5 orderings = 20 cells
    .venv/bin/python scripts/bench_isolation.py --jobs 2   # quality-only units two at a time
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from permbench import datasets
from permbench.harness import runner
from permbench.core.case import symmetric_graph
from permbench.harness.child import run_group

DATASETS = ["grid[n=1000]", "icosphere[n=642]", "torus[n=1000]", "delaunay[n=1000]"]
ORDERINGS = ["natural", "rcm", "amd", "metis", "cholmod-amd"]


class Clock(runner.Observer):
    def __init__(self):
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.loading: dict[str, float] = {}

    def dataset_loading(self, name):
        self.loading[name] = time.perf_counter()

    def unit_started(self, unit):
        self.started.setdefault(unit.label, time.perf_counter())

    def cell_finished(self, unit, rows):
        self.finished[unit.label] = time.perf_counter()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = runner.RunConfig(datasets=DATASETS, orderings=ORDERINGS, backends=["symbolic"],
                                  out=Path(tmp) / "r.parquet", jobs=args.jobs)
        groups = runner.plan(config)
        clock = Clock()
        t0 = time.perf_counter()
        runner.run(config, progress=clock)
        t_isolated = time.perf_counter() - t0
        isolated = {label: clock.finished[label] - clock.started[label] for label in clock.finished}
        loaders = [clock.started[min((lbl for lbl in clock.started if lbl.startswith(name + " · ")),
                                     key=clock.started.get)] - t for name, t in clock.loading.items()]
        cells = runner.cells_of(groups)
        units = runner.units_to_run(groups, {c.cell_id: runner.CellState("run", "new") for c in cells})

    in_process = {}
    for name in DATASETS:
        case = datasets.load(name)
        t = time.perf_counter()
        graph = symmetric_graph(case.A)
        t_graph = time.perf_counter() - t
        for unit in (u for u in units if u.dataset == name):
            unit.t_graph_s = t_graph
            run_group(unit, case, graph, config)  # warm: imports, JIT caches, first calls
            t = time.perf_counter()
            rows = run_group(unit, case, graph, config)
            in_process[unit.label] = time.perf_counter() - t
            assert {r["status"] for r in rows} == {"ok"}, rows

    overhead = sorted(isolated[label] - in_process[label] for label in isolated)
    print(f"{len(isolated)} units (one cell each), jobs={args.jobs}")
    print(f"isolated run, total wall: {t_isolated:.2f} s (includes {len(loaders)} dataset loaders, "
          f"median {statistics.median(loaders):.2f} s each)")
    print(f"in-process work per unit: median {statistics.median(in_process.values()) * 1e3:.1f} ms")
    print(f"isolation overhead per unit: median {statistics.median(overhead):.2f} s, "
          f"min {overhead[0]:.2f} s, max {overhead[-1]:.2f} s")


if __name__ == "__main__":
    main()
