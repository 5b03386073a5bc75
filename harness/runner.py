"""Plan and execute a run: datasets × orderings × back-ends × repeats -> result rows.

A *cell* is (dataset, ordering, back-end) with their parameters; its id hashes the canonical specs
plus the versions that shape its result, so a finished cell is skipped on re-run and a changed
ordering is re-run. A *unit* is one dataset × one ordering with the back-ends still to run: the
unit of isolation. Each unit runs in its own spawned child process (``isolation`` starts and
polices it, ``child`` is what runs in it), which computes the ordering once per repeat, its
symbolic analysis once, and lets every back-end of the unit measure that same permutation
(fairness: all back-ends see the same perm). The child streams
each row to the parent as it finishes; the parent writes each cell as its own fragment
(``<out>.parts/<cell_id>.parquet``, atomically) as soon as all its repeats are in. When a back-end
kills the child (segfault, timeout, memory), only that back-end's cell fails: a new child runs the
unit's remaining back-ends.

Each dataset is loaded once, in a child of its own (a crash or a memory blow-up while loading costs
that dataset only), and cached in the parts folder as plain ``.npy`` arrays (matrix, graph,
coordinates) that the units' children load in a fraction of the time a generator takes.

Status of a row: ``ok``; ``skipped`` (does not apply, or predicted over the memory/flop budget —
reason says which); ``unavailable`` (plug-in cannot run here — reason says why); ``not_spd``
(the numeric factorization failed: ordering and symbolic metrics are still recorded); ``timeout``
(a step ran past ``--timeout``: the reason gives the elapsed time); ``oom`` (the child's resident
memory passed ``--mem-limit``, or an allocation failed); ``error`` (anything else, with the
exception's text or the signal that killed the child). Re-running skips cells whose rows are all
final (``ok``, ``skipped``, ``unavailable``, ``not_spd``) and retries the others unless told not to.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import math
import os
import shutil
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import permbench

from .. import datasets as dataset_registry
from .. import orderings as ordering_registry
from . import backends as backend_registry
from . import codehash
from ..core.plugins import Plugin
from ..core.specs import parse_specs
from .rows import base_row, cell_rows, params_text, with_status
from .store import ResultStore, ResultsWriteError, parts_dir_for  # noqa: F401 (part of the runner API)

#: Default wall-clock limit of one step of a child (loading a dataset, one ordering, one back-end).
DEFAULT_TIMEOUT_S = 1800.0

#: Environment variable listing extra plug-in modules (comma-separated), as ``--plugins`` does.
PLUGINS_ENV = "PERMBENCH_PLUGINS"

_CHILD = "permbench.harness.child"


def default_mem_limit_bytes() -> int:
    """40 % of the machine's memory: room for the matrix, the factor's workspace and the OS."""
    import psutil

    return int(0.4 * psutil.virtual_memory().total)


@dataclass
class RunConfig:
    datasets: list[str]
    orderings: list[str]
    backends: list[str] = field(default_factory=lambda: ["symbolic"])
    repeat: int = 1
    out: Path = Path("results/run.parquet")
    #: Memory budget of one child: factorizations predicted above it are skipped, and a child
    #: whose resident memory passes it is killed (status ``oom``).
    mem_limit_bytes: int = field(default_factory=default_mem_limit_bytes)
    flop_limit: float = 4e11  # Σc²; CHOLMOD did ~1e11 in 2.4 s on 2 cores (tetgrid 125k, METIS)
    seed: int = 0
    #: Glob patterns: matching cells are re-run even when done (``["*"]``: all). ``True`` = all.
    force: list[str] = field(default_factory=list)
    #: Re-run cells that ended in error/timeout/oom.
    retry: bool = True
    timeout_s: float | None = DEFAULT_TIMEOUT_S
    #: Children at once for quality-only units (no numeric back-end); timing units run alone.
    jobs: int = 1
    #: Threads per child; None: all CPUs for a unit running alone, CPUs / jobs otherwise.
    threads: int | None = None
    executor: str = "local"
    scheduler: str | None = None
    #: Extra plug-in modules (names or .py paths) imported by the parent and every child.
    plugins: list[str] = field(default_factory=list)
    #: Call each ordering once on a small grid before timing it (numba/JIT/first-call costs).
    warmup: bool = True
    #: Run the repeats in this many rounds (at most ``repeat``), as asv's rounds: round k runs
    #: repeats r with r % rounds == k of every cell of a dataset, one cell after the other, before
    #: round k + 1 starts. A slow spell of a noisy machine then falls on every contender of the
    #: dataset instead of on the one that happened to run in it. Each round is a fresh child
    #: with its own warm-up.
    rounds: int = 1

    def __post_init__(self):
        if self.force is True:
            self.force = ["*"]
        elif not self.force:
            self.force = []
        elif isinstance(self.force, str):
            self.force = [self.force]
        self.plugins = resolve_plugins(self.plugins)
        self.out = Path(self.out)
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1 (got {self.jobs})")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1 (got {self.rounds})")
        self.rounds = min(self.rounds, self.repeat)  # a round runs at least one repeat
        if self.executor not in ("local", "dask"):
            raise ValueError(f"executor must be 'local' or 'dask' (got {self.executor!r})")


@dataclass
class Group:
    """One dataset × one ordering, with all back-ends (the planning view, with plug-in objects)."""

    dataset: Plugin
    ordering: Plugin
    backends: list[Plugin]
    group_id: str
    cell_ids: dict[str, str]
    code: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # back-end -> (hash, files)
    libraries: dict[str, str] = field(default_factory=dict)  # plug-in spec -> its library versions (JSON)


@dataclass(frozen=True)
class Cell:
    cell_id: str
    dataset: str
    ordering: str
    backend: str


@dataclass
class Unit:
    """What one child runs: a dataset × an ordering × the back-ends still to do. Plain, picklable."""

    dataset: str
    ordering: str
    backends: list[str]
    keys: dict[str, dict]  # back-end -> the identifying columns of its rows (cell id, names, versions)
    exclusive: bool  # has a numeric back-end: times things, so runs alone
    known: dict[str, tuple[str, str]] = field(default_factory=dict)  # back-end -> (status, reason), no child needed
    cache_dir: str | None = None
    t_graph_s: float = math.nan
    t_graph_cpu_s: float = math.nan
    fields: dict = field(default_factory=dict)  # the dataset's columns (n, nnz_A, ...)
    repeats: list[int] | None = None  # the repeats this child runs (None: all; see RunConfig.rounds)

    @property
    def label(self) -> str:
        return f"{self.dataset} · {self.ordering}"

    def cell_id(self, backend: str) -> str:
        return self.keys[backend]["cell_id"]


class Observer:
    """Hooks for progress reporting; every method may be called from a worker thread."""

    def planned(self, cells_to_run: int, cells_done: int) -> None:
        pass

    def dataset_loading(self, name: str) -> None:
        pass

    def unit_started(self, unit: Unit) -> None:
        pass

    def cell_finished(self, unit: Unit, rows: list[dict]) -> None:
        pass


# ------------------------------------------------------------------------------------------------
# Plug-ins and planning.

def resolve_plugins(names) -> list[str]:
    """The given plug-in modules plus those of $PERMBENCH_PLUGINS; files as absolute paths."""
    env = [p.strip() for p in os.environ.get(PLUGINS_ENV, "").split(",") if p.strip()]
    plugins = []
    for name in list(names or []) + env:
        if name.endswith(".py"):
            name = str(Path(name).resolve())
        if name not in plugins:
            plugins.append(name)
    return plugins


def load_plugins(modules: list[str]) -> None:
    """Import extra plug-in modules (``pkg.module`` or ``path/to/file.py``); importing registers them."""
    import importlib
    import importlib.util
    import sys

    for name in modules:
        if name.endswith(".py"):
            module_name = "permbench_plugins_" + hashlib.sha256(name.encode()).hexdigest()[:12]
            if module_name in sys.modules:
                continue
            path = Path(name)
            if not path.exists():
                raise FileNotFoundError(f"plug-in file {path}: no such file")
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(name)


def _versions(plugin: Plugin) -> dict:
    try:
        libs = plugin.library_versions() if plugin.available()[0] else {}
    except Exception as err:  # a broken library must not break planning; it shows in the cell
        libs = {"error": repr(err)}
    return {"version": plugin.version, "libraries": libs}


def code_files(dataset: Plugin, ordering: Plugin, backend: Plugin) -> tuple:
    """The source files that shape a cell's result (``codehash.py`` says which and why)."""
    files = set(codehash.harness_files())
    for plugin in (dataset, ordering, backend):
        files.update(codehash.plugin_files(type(plugin)))
    return tuple(sorted(files))


def cell_id(dataset: Plugin, ordering: Plugin, backend: Plugin, versions: dict, code_hash: str = "",
            threads: int | None = None) -> str:
    """Hash of the cell's canonical names, plug-in and library versions, the hash of its code and
    an explicit thread budget: a cell whose code changed is a new cell (the old one shows as
    ``stale``), and the same cell at --threads 4 is not the one at --threads 16."""
    key = {
        "permbench": permbench.__version__,
        "dataset": [dataset.spec.canonical(), dataset.version],
        "ordering": [ordering.spec.canonical(), versions[ordering.spec.canonical()]],
        "backend": [backend.spec.canonical(), versions[backend.spec.canonical()]],
        "code": code_hash,
    }
    if threads is not None:
        key["threads"] = threads
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _expand(names: list[str], registry) -> list[Plugin]:
    plugins, seen = [], set()
    for name in names:
        for spec in parse_specs(name):
            plugin = registry.create(spec)
            key = plugin.spec.canonical()
            if key not in seen:
                seen.add(key)
                plugins.append(plugin)
    return plugins


def plan(config: RunConfig) -> list[Group]:
    """Expand the names (grids included) into groups; unknown names fail here, before any work."""
    load_plugins(config.plugins)
    datasets = _expand(config.datasets, dataset_registry.registry)
    orderings = _expand(config.orderings, ordering_registry.registry)
    backends = _expand(config.backends, backend_registry.registry)
    versions = {p.spec.canonical(): _versions(p) for p in orderings + backends}
    groups = []
    for d in datasets:
        for o in orderings:
            ids, code = {}, {}
            for b in backends:
                files = code_files(d, o, b)
                own = [f for p in (d, o, b) for f in codehash.own_files(type(p))]
                code[b.spec.canonical()] = (codehash.hash_files(files, own), codehash.display(files))
                ids[b.spec.canonical()] = cell_id(d, o, b, versions, code[b.spec.canonical()][0], config.threads)
            gid = hashlib.sha256(json.dumps(sorted(ids.values())).encode()).hexdigest()[:16]
            libraries = {p.spec.canonical(): json.dumps(versions[p.spec.canonical()]["libraries"], sort_keys=True)
                         for p in [o, *backends]}
            groups.append(Group(d, o, backends, gid, ids, code, libraries))
    return groups


def cells_of(groups: list[Group]) -> list[Cell]:
    return [Cell(g.cell_ids[b.spec.canonical()], g.dataset.spec.canonical(), g.ordering.spec.canonical(),
                 b.spec.canonical()) for g in groups for b in g.backends]


def is_forced(cell: Cell, patterns: list[str]) -> bool:
    """Whether a ``--force`` pattern names the cell: a glob over its dataset, ordering or back-end
    name, or over ``dataset/ordering/backend``. An exact name also matches literally (names hold
    brackets, which a glob reads as a character class)."""
    names = (cell.dataset, cell.ordering, cell.backend, f"{cell.dataset}/{cell.ordering}/{cell.backend}")
    return any(p == n or fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


@dataclass(frozen=True)
class CellState:
    """What a re-run does with a cell: ``run`` it or keep what is there (``done``), and why."""

    action: str  # "run" | "done"
    why: str  # "new", "stale", "incomplete", "retry", "forced", "final", "kept"
    statuses: tuple[str, ...] = ()

    def describe(self) -> str:
        st = ",".join(self.statuses)
        return {"new": "to run (new)", "stale": "stale (code changed)",
                "incomplete": f"to run (incomplete: {st or 'unreadable'})",
                "retry": f"to run (retry: {st})", "forced": f"to run (forced; was {st or 'new'})",
                "final": f"done ({st})", "kept": f"done ({st}; --no-retry)"}[self.why]


def cell_states(cells: list[Cell], store: ResultStore, config: RunConfig) -> dict[str, CellState]:
    """Each cell's state against what the store holds: its file's rows and verified fragments.
    A cell whose names are stored under another id only (its code or versions changed) is stale."""
    from .results import FINAL_STATUSES

    records = store.records()
    names = store.known_names()
    states = {}
    for cell in cells:
        record = records.get(cell.cell_id)
        statuses = record.statuses if record else ()
        if is_forced(cell, config.force):
            states[cell.cell_id] = CellState("run", "forced", statuses)
        elif record is None:
            budget = "auto" if config.threads is None else str(config.threads)
            stale = names.get((cell.dataset, cell.ordering, cell.backend, budget), set()) - {cell.cell_id}
            states[cell.cell_id] = CellState("run", "stale" if stale else "new")
        elif set(range(config.repeat)) - set(record.repeats):
            states[cell.cell_id] = CellState("run", "incomplete", statuses)
        elif set(statuses) <= FINAL_STATUSES:
            states[cell.cell_id] = CellState("done", "final", statuses)
        elif config.retry:
            states[cell.cell_id] = CellState("run", "retry", statuses)
        else:
            states[cell.cell_id] = CellState("done", "kept", statuses)
    return states


def _known_outcomes(ordering, backends) -> dict[str, tuple[str, str]]:
    """Cells whose outcome is known without running anything (no child is started for them): the
    ordering cannot run here, or it is a solver's own ordering and the back-end has none."""
    ok, reason = ordering.available()
    if not ok:
        return {b.spec.canonical(): ("unavailable", f"ordering {ordering.name}: {reason}") for b in backends}
    if ordering.native:
        return {b.spec.canonical(): ("skipped", f"'native' is a solver's own ordering; back-end {b.name} has none")
                for b in backends if not b.supports_native}
    return {}


def units_to_run(groups: list[Group], states: dict[str, CellState], threads: int | None = None) -> list[Unit]:
    """One unit per group with a cell to run; within a dataset, quality-only units first (they may
    run in parallel), then the units that time a numeric back-end (they run alone)."""
    units = []
    for g in groups:
        todo = [b for b in g.backends if states[g.cell_ids[b.spec.canonical()]].action == "run"]
        if not todo:
            continue
        keys = {b.spec.canonical(): {
            "cell_id": g.cell_ids[b.spec.canonical()], "dataset": g.dataset.spec.canonical(),
            "ordering": g.ordering.spec.canonical(), "backend": b.spec.canonical(),
            "ordering_version": g.ordering.version, "backend_version": b.version,
            "ordering_params": params_text(g.ordering.spec.params), "backend_params": params_text(b.spec.params),
            "thread_budget": "auto" if threads is None else str(threads),
            "deterministic": bool(getattr(g.ordering, "deterministic", True)),
            "code_hash": g.code[b.spec.canonical()][0], "code_files": json.dumps(g.code[b.spec.canonical()][1]),
            # the library versions its cell id was keyed on, read from the loaded libraries
            "ordering_libraries": g.libraries.get(g.ordering.spec.canonical()),
            "backend_libraries": g.libraries.get(b.spec.canonical()),
            **_git_columns()} for b in todo}
        units.append(Unit(g.dataset.spec.canonical(), g.ordering.spec.canonical(), [b.spec.canonical() for b in todo],
                          keys, exclusive=any(b.numeric for b in todo), known=_known_outcomes(g.ordering, todo)))
    order = {d: i for i, d in enumerate(dict.fromkeys(u.dataset for u in units))}
    return sorted(units, key=lambda u: (order[u.dataset], u.exclusive))


@functools.lru_cache(maxsize=1)
def _git_columns() -> dict:
    """The checkout every row of this run comes from (a file can mix commits: each row says)."""
    from ..core.provenance import git_state

    state = git_state()
    return {"git_commit": state.get("commit"), "git_dirty": state.get("dirty")}


# ------------------------------------------------------------------------------------------------
# One unit, in the parent (or on a dask worker): supervise its child, respawn after a crash.

def child_limits(config: RunConfig, concurrency: int):
    from .isolation import Limits, available_cpus

    threads = config.threads or max(1, available_cpus() // max(1, concurrency))
    return Limits(timeout_s=config.timeout_s or None, mem_limit_bytes=config.mem_limit_bytes, threads=threads)


def supervise_unit(unit: Unit, config: RunConfig, concurrency: int = 1, on_cell=None, on_start=None,
                   registry=None) -> list[tuple[str, list[dict]]]:
    """Run a unit in isolated children; returns [(cell_id, rows)] and calls ``on_cell`` for each cell
    as soon as all its repeats are in. A child killed in a back-end's step fails that back-end's
    cell only (timeout / oom / error, with the step and elapsed time) and a new child runs the
    unit's other back-ends; a child killed anywhere else fails every cell still pending."""
    from .isolation import run_child

    limits = child_limits(config, concurrency)
    repeats = list(range(config.repeat)) if unit.repeats is None else list(unit.repeats)
    pending = {b: list(repeats) for b in unit.backends}
    got: dict[str, dict[int, dict]] = {b: {} for b in unit.backends}
    finished: list[tuple[str, list[dict]]] = []

    def complete(backend):
        if not pending[backend] and backend in got:
            rows = [got[backend][r] for r in sorted(got[backend])]
            del got[backend]
            finished.append((unit.cell_id(backend), rows))
            if on_cell is not None:
                on_cell(unit, unit.cell_id(backend), rows)

    def collect(message):
        kind, row = message
        if kind != "row":
            return
        b, r = row["backend"], row["repeat"]
        if r in pending.get(b, ()):
            got[b][r] = row
            pending[b].remove(r)
            complete(b)

    if on_start is not None:
        on_start(unit)
    while any(pending.values()):
        todo = {b: list(rs) for b, rs in pending.items() if rs}
        outcome = run_child(f"{_CHILD}:unit_main", (unit, config, todo, limits.threads, concurrency), limits,
                            on_message=collect, registry=registry)
        if outcome.status == "cancelled":
            return finished  # interrupted: unfinished cells are not written
        if outcome.ok and any(pending.values()):
            outcome.status, outcome.reason = "error", "the child finished without a result for this cell"
        elif outcome.ok:
            break
        step = outcome.step or {}
        failing = [step["backend"]] if step.get("kind") == "backend" and pending.get(step.get("backend")) else \
            [b for b in pending if pending[b]]
        for b in failing:
            for r in pending[b]:
                row = dict(base_row(unit, b, r), t_graph_s=unit.t_graph_s, threads=limits.threads,
                           concurrent_jobs=concurrency, peak_rss_bytes=outcome.peak_rss_bytes)
                if step.get("kind") == "backend" and step.get("repeat") == r:
                    row.update(step.get("base") or {})  # the ordering's metrics were computed
                if step.get("repeat") is not None and r > step["repeat"]:
                    reason = _not_run(outcome.reason)
                else:
                    reason = outcome.reason  # names the step (ordering or back-end, repeat)
                got[b][r] = with_status(row, outcome.status, reason)
            pending[b] = []
            complete(b)
    return finished


def prepare_dataset(name: str, cache_dir: Path, config: RunConfig, registry=None):
    """Load a dataset in a child and cache it: (True, {t_graph_s, fields}) or (False, (status, reason))."""
    from .isolation import run_child

    messages = []
    outcome = run_child(f"{_CHILD}:prepare_main", (name, str(cache_dir), config.plugins),
                        child_limits(config, 1), on_message=messages.append, registry=registry)
    for message in messages:
        if message[0] == "prepared":
            return True, message[1]
        if message[0] == "failed":
            return False, (message[1], message[2])
    if outcome.status == "cancelled":
        raise KeyboardInterrupt
    return False, (outcome.status, f"dataset {name}: {outcome.reason}")


# ------------------------------------------------------------------------------------------------
# The whole run.

def _make_parts(parts: Path) -> None:
    try:
        parts.mkdir(parents=True, exist_ok=True)
        probe = parts / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ResultsWriteError(f"cannot write results in {parts}: {err.strerror or err} "
                                f"(check --out: the folder must be creatable and writable)") from err


def execute(config: RunConfig, store: ResultStore, progress: Observer | None = None,
            groups: list[Group] | None = None) -> list[Cell]:
    """Run every cell of the plan not already done, writing a verified fragment per cell; returns
    the plan's cells. The caller holds the store's lock.

    Raises ResultsWriteError when a fragment cannot be written (the fragments already written
    stay intact), and KeyboardInterrupt after killing the children when interrupted.
    """
    from .executors import make_executor

    progress = progress or Observer()
    groups = groups if groups is not None else plan(config)
    cells = cells_of(groups)
    parts = store.parts
    _make_parts(parts)
    shutil.rmtree(parts / ".cache", ignore_errors=True)  # left by a killed run; only the lock holder uses it
    states = cell_states(cells, store, config)
    units = units_to_run(groups, states, config.threads)
    progress.planned(sum(len(u.backends) for u in units), sum(s.action == "done" for s in states.values()))
    if not units:
        return cells
    lock = threading.Lock()

    def on_cell(unit, cid, rows):
        try:
            store.write_new_fragment(rows, cid)
        except OSError as err:
            kept = len(list(parts.glob("*.parquet")))
            raise ResultsWriteError(
                f"cannot write the result fragment {parts / (cid + '.parquet')}: {err.strerror or err}; the {kept} "
                f"fragments already in {parts} are intact — free space or fix the folder, then re-run the same "
                f"command to resume"
            ) from err
        with lock:
            progress.cell_finished(unit, rows)

    cache_root = parts / ".cache"
    executor = make_executor(config)
    try:
        by_dataset: dict[str, list[Unit]] = {}
        for unit in units:
            by_dataset.setdefault(unit.dataset, []).append(unit)
        for name, todo in by_dataset.items():
            cache_dir = cache_root / hashlib.sha256(name.encode()).hexdigest()[:16]
            progress.dataset_loading(name)
            ok, info = prepare_dataset(name, cache_dir, config, registry=executor.children)
            if not ok:
                status, reason = info
                for unit in todo:
                    for b in unit.backends:
                        on_cell(unit, unit.cell_id(b), cell_rows(unit, b, range(config.repeat), status, reason))
                continue
            for unit in todo:
                unit.cache_dir, unit.fields = str(cache_dir), info["fields"]
                unit.t_graph_s, unit.t_graph_cpu_s = info["t_graph_s"], info.get("t_graph_cpu_s", math.nan)
                for b, (status, reason) in unit.known.items():
                    on_cell(unit, unit.cell_id(b), cell_rows(unit, b, range(config.repeat), status, reason,
                                                             t_graph_s=unit.t_graph_s))
                unit.backends = [b for b in unit.backends if b not in unit.known]
            runnable = [u for u in todo if u.backends]
            if config.rounds > 1:
                _schedule_rounds(runnable, executor, config, on_cell, progress.unit_started)
            else:
                _schedule(runnable, executor, config, on_cell, progress.unit_started)
            shutil.rmtree(cache_dir, ignore_errors=True)
    except BaseException:
        executor.cancel()
        raise
    finally:
        executor.close()
        shutil.rmtree(cache_root, ignore_errors=True)
    return cells


@dataclass
class RunOutcome:
    """What ``run`` produced: the result file's rows, the rows of this run's cells, and timing."""

    out: Path
    frame: "object"  # every row of the result file (pandas DataFrame)
    cells: "object"  # the rows of the cells this run planned
    seconds: float
    rejected: list = field(default_factory=list)

    def status_counts(self) -> dict[str, int]:
        """Cells by status (a cell whose repeats differ counts under its worst status)."""
        counts: dict[str, int] = {}
        for _, cell in self.cells.groupby("cell_id", sort=False):
            statuses = set(cell["status"])
            status = next((s for s in STATUS_ORDER if s in statuses), sorted(statuses)[0])
            counts[status] = counts.get(status, 0) + 1
        return counts

    @property
    def failed(self) -> bool:
        """Whether any cell ended in a failure (error, timeout, oom): exit code 1."""
        return any(s in FAILED_STATUSES for s in self.status_counts())


#: A cell's status when its repeats differ: the worst one.
STATUS_ORDER = ("error", "oom", "timeout", "not_spd", "unavailable", "skipped", "ok")
#: Statuses that make a run fail (exit 1). ``not_spd`` is a property of the matrix, not a failure.
FAILED_STATUSES = {"error", "timeout", "oom"}


def run(config: RunConfig, progress: Observer | None = None, wait: bool = False, warn=print) -> RunOutcome:
    """The public entry point (CLI, ``compare``, asv, studies): plan, hold the result file's lock,
    run what is not done, merge every finished cell into ``config.out``. Raises StoreError
    (refused/locked file) and ResultsWriteError before or while writing; KeyboardInterrupt keeps
    every finished cell's fragment for the next run."""
    import time

    from ..core import provenance

    started = time.perf_counter()
    with ResultStore(config.out, wait=wait, warn=warn) as store:  # first: a second writer learns at once
        groups = plan(config)
        store.rows()  # refuse a file that is not a permbench result before any work
        cells = execute(config, store, progress=progress, groups=groups)
        ids = {c.cell_id for c in cells}
        prov = provenance.collect()
        prov["run"] = run_provenance(config)
        prov["children"] = children_provenance([f for cid, f in store.fragments().items() if cid in ids])
        frame = store.merge(prov, current=ids)
    this_run = frame[frame["cell_id"].isin(ids)]
    return RunOutcome(Path(config.out), frame, this_run, time.perf_counter() - started, store.rejected)


def children_provenance(frames) -> dict:
    """Each back-end's provenance as its child reported it (the solver libraries, the BLAS they
    loaded), and the distinct thread settings the children ran with."""
    out: dict = {"backends": {}, "thread_settings": []}
    seen = set()
    for frame in frames:
        for row in frame.itertuples():
            if isinstance(getattr(row, "backend_provenance", None), str):
                out["backends"].setdefault(row.backend, json.loads(row.backend_provenance))
            info = getattr(row, "thread_info", None)
            if isinstance(info, str) and info not in seen:
                seen.add(info)
                out["thread_settings"].append(json.loads(info))
    return out


def run_provenance(config: RunConfig) -> dict:
    return {"datasets": config.datasets, "orderings": config.orderings, "backends": config.backends,
            "repeat": config.repeat, "mem_limit_bytes": config.mem_limit_bytes, "flop_limit": config.flop_limit,
            "seed": config.seed, "executor": config.executor, "scheduler": config.scheduler, "jobs": config.jobs,
            "threads": config.threads, "timeout_s": config.timeout_s, "plugins": config.plugins,
            "warmup": config.warmup, "rounds": config.rounds,
            "isolation": "one spawned child process per (dataset, ordering) unit and round",
            "argv": list(sys.argv)}  # the command that ran (permbench, pytest, asv, ...)


def _schedule(units: list[Unit], executor, config: RunConfig, on_cell, on_start) -> None:
    """Quality-only units run up to ``jobs`` at once; a unit with a numeric back-end runs alone."""
    running = set()

    def drain(at_most: int):
        while len(running) > at_most:
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                running.discard(future)
                future.result()  # re-raises a write failure

    for unit in units:
        if unit.exclusive:
            drain(0)
            running.add(executor.submit(unit, config, 1, on_cell, on_start))
            drain(0)
        else:
            drain(config.jobs - 1)
            running.add(executor.submit(unit, config, config.jobs, on_cell, on_start))
    drain(0)


def _not_run(reason: str) -> str:
    """The reason of a repeat left out because an earlier one of its cell failed."""
    return f"not run: an earlier repeat failed ({reason})"


def _schedule_rounds(units: list[Unit], executor, config: RunConfig, on_cell, on_start) -> None:
    """The units of one dataset in ``config.rounds`` rounds (see RunConfig.rounds): every round
    runs its share of the repeats of every unit (a child each, through :func:`_schedule`), and a
    cell is handed to ``on_cell`` once its rows of all rounds are in. A cell that did not end ok
    in a round runs no further rounds: its remaining repeats get its status (a failure's with
    the reason a single child gives them, :func:`_not_run`)."""
    rows_of: dict[str, list[dict]] = {}
    settled: dict[str, tuple[str, str]] = {}  # cell id -> (status, reason) that ends it early
    lock = threading.Lock()

    def collect(unit, cid, rows):
        with lock:
            rows_of.setdefault(cid, []).extend(rows)
            bad = next((row for row in rows if row.get("status") != "ok"), None)
            if bad is not None and cid not in settled:
                settled[cid] = (bad["status"], bad.get("reason") or "")
            done = rows_of[cid] if len(rows_of[cid]) == config.repeat else None
        if done is not None:
            on_cell(unit, cid, sorted(done, key=lambda row: row["repeat"]))

    for k in range(config.rounds):
        repeats = [r for r in range(config.repeat) if r % config.rounds == k]
        part = []
        for unit in units:
            todo = []
            for b in unit.backends:
                cid = unit.cell_id(b)
                if cid in settled:
                    status, reason = settled[cid]
                    reason = _not_run(reason) if status in FAILED_STATUSES else reason
                    collect(unit, cid, cell_rows(unit, b, repeats, status, reason, t_graph_s=unit.t_graph_s))
                else:
                    todo.append(b)
            if todo:
                part.append(replace(unit, backends=todo, repeats=repeats))
        _schedule(part, executor, config, collect, on_start)
