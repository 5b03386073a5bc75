"""The thread budget of one patch ordering: ``pool(fn, items)`` maps like the built-in ``map``
(results in item order) on a thread pool, and ``pool.ranges(n)`` cuts n independent calls into
contiguous runs, one pool task each, so that a compiled kernel can make many calls per task
without taking the GIL between them. How the calls are cut never changes a result: every call
depends only on its own inputs."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

#: Runs per thread: a few more runs than threads even out nodes of unequal cost.
RUNS_PER_THREAD = 2


class Pool:
    def __init__(self, executor: Executor | None = None, threads: int = 1):
        self.executor = executor
        self.threads = threads if executor is not None else 1

    def __call__(self, fn, items):
        return map(fn, items) if self.executor is None else self.executor.map(fn, items)

    def ranges(self, n: int) -> list[tuple[int, int]]:
        """[(start, stop), ...] covering 0..n: one run without threads, else up to
        RUNS_PER_THREAD * threads runs of near-equal length."""
        parts = max(1, min(n, 1 if self.threads == 1 else RUNS_PER_THREAD * self.threads))
        bounds = (np.arange(parts + 1) * n) // parts
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


#: No threads: every call in the caller's thread.
SERIAL = Pool()


@contextmanager
def thread_pool(threads: int):
    """A Pool of ``threads`` threads for the length of the block (SERIAL for one). Every parallel
    step hands it independent calls and reads the results in call order (or, for the tree's
    tasks, merges them in a way that does not depend on the order), so the output never depends
    on the thread count or on which thread finishes first."""
    if threads <= 1:
        yield SERIAL
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="patch") as executor:
        yield Pool(executor, threads)
