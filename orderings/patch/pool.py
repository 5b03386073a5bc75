"""The thread budget of one patch ordering: ``pool(fn, items)`` maps like the built-in ``map``
(results in item order) on the calling thread and threads - 1 pool threads, and ``pool.ranges(n)``
cuts n independent calls into contiguous runs, one pool task each, so that a compiled kernel can make many calls per task
without taking the GIL between them. How the calls are cut never changes a result: every call
depends only on its own inputs.

Short data-parallel passes (a few milliseconds over the inter-patch edges) go to numba's own
threads instead (``parallel=True`` kernels, through ``pool.run_pass``): on the 16-core GPU host a
round of pool tasks cost about a millisecond of GIL hand-offs, as much as the pass itself. Those
kernels cut their work into ``pool.pieces(size)`` fixed pieces, so their result does not depend on
the thread count either."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np

#: Runs per thread: a few more runs than threads even out nodes of unequal cost.
RUNS_PER_THREAD = 2
#: Pieces of a parallel compiled pass (any thread count): enough to keep 16 threads busy.
PASS_CHUNKS = 64
#: Smaller passes run serially: a launch costs more than they do (a 50k-vertex mesh's passes
#: ordered 7 % slower on 2 cores with launches than without).
PASS_MIN_SIZE = 1 << 16
#: numba's workqueue threading layer aborts the process on two parallel launches at once, so
#: launches from different orderings running in one process take turns.
_launch = threading.Lock()


def _choose_threading_layer() -> None:
    """Use numba's workqueue layer unless the user chose one (NUMBA_THREADING_LAYER) or a parallel
    kernel already ran. Its idle threads sleep; the OpenMP layer's spin, and on the 16-core GPU
    host they took the cores from the pool's METIS and CAMD calls (1M grid, 16 threads, one
    machine, medians of 5 in three rounds: 0.43 / 0.39 / 0.46 s with OpenMP, 0.33 / 0.35 / 0.39 s
    with workqueue; results/patch/ab-h200-threading-layer/)."""
    if threading_layer() or numba.config.THREADING_LAYER != "default":
        return
    numba.config.THREADING_LAYER = "workqueue"


def threading_layer() -> str:
    """The threading layer numba runs parallel kernels on ('' before the first one)."""
    try:
        return numba.threading_layer()
    except ValueError:  # numba's answer while no parallel kernel has run
        return ""


class Pool:
    def __init__(self, executor: Executor | None = None, threads: int = 1):
        self.executor = executor
        self.threads = threads if executor is not None else 1

    def __call__(self, fn, items) -> list:
        """[fn(x) for x in items], the calls shared by this thread and the pool's threads.

        The calling thread takes items too (the executor has threads - 1 workers): handing every
        call to a worker while the caller waited cost about a millisecond per tree level on
        2 cores (a 48k-vertex mesh's decomposition: 38 ms against 31 ms this way, 2 threads),
        and a single item runs here without any hand-off. Results come back in item order
        whoever ran them."""
        items = list(items)
        if self.executor is None or len(items) <= 1:
            return [fn(x) for x in items]
        results: list = [None] * len(items)
        claim = itertools.count()  # next() on it is atomic under the GIL: each item runs once

        def work():
            for i in claim:
                if i >= len(items):
                    return
                results[i] = fn(items[i])

        helpers = [self.executor.submit(work) for _ in range(min(self.threads, len(items)) - 1)]
        try:
            work()
        finally:
            for helper in helpers:
                # One that has not started would find nothing left: drop it rather than wait.
                if not helper.cancel():
                    helper.result()  # re-raises a helper's error
        return results

    def ranges(self, n: int) -> list[tuple[int, int]]:
        """[(start, stop), ...] covering 0..n: one run without threads, else up to
        RUNS_PER_THREAD * threads runs of near-equal length."""
        parts = max(1, min(n, 1 if self.threads == 1 else RUNS_PER_THREAD * self.threads))
        bounds = (np.arange(parts + 1) * n) // parts
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def pieces(self, size: int) -> int:
        """Pieces of a parallel compiled pass over ``size`` items: 1 (the caller runs the serial
        kernel in its own thread: no launch, no lock) without threads or below PASS_MIN_SIZE."""
        return 1 if self.threads == 1 or size < PASS_MIN_SIZE else PASS_CHUNKS

    def run_pass(self, pieces: int, serial, in_pieces) -> None:
        """One compiled pass cut into ``pieces`` (from :meth:`pieces`): ``serial()`` in the
        caller's thread when that is one piece (no launch, no lock), else ``in_pieces()`` on
        numba's threads."""
        if pieces == 1:
            serial()
        else:
            with self.compiled():
                in_pieces()

    @contextmanager
    def compiled(self):
        """numba's threads, as many as the budget (within numba's pool, NUMBA_NUM_THREADS), for
        the parallel kernels launched in the block; one launching thread at a time."""
        with _launch:
            _choose_threading_layer()
            before = numba.get_num_threads()
            numba.set_num_threads(max(1, min(self.threads, numba.config.NUMBA_NUM_THREADS)))
            try:
                yield
            finally:
                numba.set_num_threads(before)


#: No threads: every call in the caller's thread.
SERIAL = Pool()


@contextmanager
def every_pass_in_pieces():
    """Inside the block, compiled passes of any size run in pieces on numba's threads (with more
    than one thread): the harness's warm-up on a small grid then loads or compiles the parallel
    kernels that only large inputs reach (a fresh H200 host paid 10 s for them inside the first
    timed repeat at 1M). Not for concurrent use: it sets a module-wide threshold."""
    global PASS_MIN_SIZE
    before, PASS_MIN_SIZE = PASS_MIN_SIZE, 0
    try:
        yield
    finally:
        PASS_MIN_SIZE = before


@contextmanager
def thread_pool(threads: int):
    """A Pool of ``threads`` threads for the length of the block (SERIAL for one). Every parallel
    step hands it independent calls and reads the results in call order (or, for the tree's
    tasks, merges them in a way that does not depend on the order), so the output never depends
    on the thread count or on which thread finishes first."""
    if threads <= 1:
        yield SERIAL
        return
    # The caller is the budget's last thread (see Pool.__call__).
    with ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="patch") as executor:
        yield Pool(executor, threads)
