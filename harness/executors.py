"""Where units run: a local pool of supervisor threads, or a Dask distributed cluster.

Either way a unit runs in its own spawned child process under the same limits (``isolation``),
so results do not depend on the executor. ``submit`` returns a ``concurrent.futures.Future``;
the runner decides how many run at once (quality-only units up to ``--jobs``, timing units alone).

* ``local``: one supervisor thread per running unit; each cell is written by the parent as soon
  as its child reports it.
* ``dask``: ``dask.distributed`` (a ``LocalCluster`` of ``--jobs`` single-threaded worker
  processes by default, or an existing scheduler at ``--scheduler tcp://HOST:PORT``); the worker
  supervises the child and returns the unit's rows, which the client writes as fragments when the
  unit ends. On a real cluster, workers load the dataset themselves unless the run's ``.parts``
  folder is on a shared filesystem (the cache path is then visible to them).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from .isolation import ChildRegistry
from .rows import cell_rows
from .runner import RunConfig, Unit, supervise_unit


class LocalExecutor:
    def __init__(self, jobs: int):
        self.children = ChildRegistry()
        self._pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="permbench-unit")

    def submit(self, unit: Unit, config: RunConfig, concurrency: int, on_cell, on_start) -> Future:
        return self._pool.submit(supervise_unit, unit, config, concurrency, on_cell=on_cell, on_start=on_start,
                                 registry=self.children)

    def cancel(self) -> None:
        self.children.kill_all()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    def __init__(self, jobs: int, scheduler: str | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise ImportError("--executor dask needs dask.distributed: pip install 'dask[distributed]'") from err
        self.children = ChildRegistry()  # the dataset loaders run here, in the client's process
        self._cluster = None
        if scheduler:
            self._client = Client(scheduler)
        else:
            # One single-threaded worker process per job; no dask memory management: every
            # unit's child has its own cap, and the worker itself holds only rows.
            self._cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                                         memory_limit=0, dashboard_address=None, silence_logs=logging.ERROR)
            self._client = Client(self._cluster)
        self._futures = []

    def submit(self, unit: Unit, config: RunConfig, concurrency: int, on_cell, on_start) -> Future:
        on_start(unit)
        remote = self._client.submit(supervise_unit, unit, config, concurrency, pure=False)
        self._futures.append(remote)
        local: Future = Future()
        local.set_running_or_notify_cancel()

        def done(fut):
            try:
                if fut.cancelled():
                    local.cancel()
                    return
                try:
                    cells = fut.result()
                except Exception as err:  # the worker died or could not run the task: the unit's cells fail
                    reason = f"dask: {type(err).__name__}: {err}"
                    cells = [(unit.cell_id(b), cell_rows(unit, b, range(config.repeat), "error", reason))
                             for b in unit.backends]
                for cid, rows in cells:
                    on_cell(unit, cid, rows)
                local.set_result(cells)
            except BaseException as err:  # a write failure: the runner stops the run
                local.set_exception(err)

        remote.add_done_callback(done)
        return local

    def cancel(self) -> None:
        # Running tasks cannot be interrupted remotely; closing a LocalCluster kills its workers,
        # and a child dies with the worker that started it (PR_SET_PDEATHSIG).
        try:
            self._client.cancel(self._futures)
        except Exception:
            pass
        self.children.kill_all()

    def close(self) -> None:
        try:
            self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()


def make_executor(config: RunConfig):
    if config.executor == "dask":
        return DaskExecutor(config.jobs, config.scheduler)
    return LocalExecutor(config.jobs)
