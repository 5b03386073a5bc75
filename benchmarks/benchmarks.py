"""permbench's asv suite: thin wrappers over the library, on small fixed inputs, found by asv's
naming conventions (``time_``, ``track_``, ``peakmem_``; asv.conf.json).

What it tracks per commit:

* ``Fill.track_nnz_L`` / ``Fill.track_flops`` — nnz(L) and flops of every ordering on every input,
  from the ``symbolic`` back-end's analysis (deterministic: a change is a fill regression or gain);
* ``OrderTime.time_order`` — the ordering's ``compute`` on the symmetric graph, as ``permbench run``
  times it;
* ``Factor.time_factor`` / ``Factor.time_solve`` — numeric factorization and one solve of the
  ``cholmod`` back-end (and ``cudss`` where there is a GPU) with the ordering's permutation;
* ``Total.time_total`` — the README's total of a cell, from the matrix as given: graph build,
  ordering, analysis (with anything the back-end derives), factorization and solve; for ``native``
  the solver's own phases;
* ``PatchThreads.time_order`` / ``track_nnz_L`` — the patch ordering on a 250k-vertex grid per preset
  and thread budget (1, 2, 4);
* ``PeakMemory.peakmem_order_and_factor`` — a whole cell (ordering + analysis + factorization +
  solve) on the largest input.

Every ordering gets the same thread budget (``THREADS``: the CPUs this process may use), as
``permbench run --threads`` hands each cell one.

All orderings, symbolic analyses and inputs are computed once, in ``setup_cache`` (shared by every
class: asv keys the cache by the function's source line); each benchmark's ``setup`` only picks its
piece out of it. Inputs are built-in generators with fixed seeds, plus two files the suite writes
itself from generators (an OBJ mesh and a gzipped Matrix Market matrix), so the file readers are
measured too and nothing is downloaded. An ordering or back-end that is not registered or cannot run
here (``homa`` without homapy, ``cudss`` without a GPU) raises ``NotImplementedError`` in ``setup``:
asv's way to skip.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from permbench import datasets, orderings
from permbench.harness import backends
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.core.case import MatrixCase, Ordering, symmetric_graph, validate_perm
from permbench.core.specs import SpecError

#: Files the suite writes into asv's cache folder, and the generator each is written from.
FILE_SOURCES = {"torus.obj": "torus[n=5000]", "icosphere.mtx.gz": "icosphere[n=2562]"}
#: The fixed inputs, as dataset names; ``file:`` names are relative to the folder ``setup_cache``
#: writes into (asv runs every benchmark in that folder).
CASES = [
    "grid[n=10000]",
    "delaunay[n=20000,seed=1]",
    "tetgrid[n=8000]",
    "file:torus.obj",
    "file:icosphere.mtx.gz",
]
LARGEST_CASE = "delaunay[n=20000,seed=1]"
SMALLEST_CASE = "file:icosphere.mtx.gz"
#: Every ordering the suite tracks; those not registered or not available here are skipped.
ORDERINGS = ["natural", "rcm", "amd", "metis", "cholmod-amd", "cholmod-metis", "cholmod-nesdis", "patch", "homa"]
#: Orderings whose numeric factorization is timed (the fill-reducing ones worth a solver's time).
FACTOR_ORDERINGS = ["amd", "metis", "patch", "homa"]
BACKENDS = ["cholmod", "cudss"]
#: The seed ``permbench run`` passes to an ordering's first repeat.
SEED = 0
#: The thread budget every ordering gets (the BLAS of the back-ends uses the same CPUs).
THREADS = len(os.sched_getaffinity(0))
#: Inputs and orderings of the end-to-end total (the native ordering: the solver's own).
TOTAL_CASES = ["grid[n=10000]", LARGEST_CASE]
TOTAL_ORDERINGS = ["amd", "metis", "patch", "native"]


# --------------------------------------------------------------------------------------------------
# Inputs and the cache (plain functions: the tests call them directly)
# --------------------------------------------------------------------------------------------------


def write_input_file(folder: Path, filename: str) -> Path:
    """Write one of ``FILE_SOURCES`` into ``folder`` from its generator (same bytes every time)."""
    import scipy.io

    case = datasets.load(FILE_SOURCES[filename])
    path = Path(folder) / filename
    if filename.endswith(".obj"):
        # Written here rather than with meshio, whose OBJ header carries the time of writing.
        with open(path, "w") as stream:
            np.savetxt(stream, case.coords, fmt="v %.17g %.17g %.17g")
            np.savetxt(stream, case.faces + 1, fmt="f %d %d %d")  # OBJ counts vertices from 1
    elif filename.endswith(".mtx.gz"):
        # mtime=0: no timestamp in the gzip header. Symmetric: the lower triangle, as SuiteSparse ships.
        with gzip.GzipFile(path, "wb", mtime=0) as stream:
            scipy.io.mmwrite(stream, case.A.tocoo(), symmetry="symmetric")
    else:
        raise ValueError(f"{filename}: the suite writes only .obj and .mtx.gz files")
    return path


def load_input(name: str, folder: Path) -> tuple[MatrixCase, object]:
    """The matrix case and its symmetric graph for one of ``CASES`` (files written into ``folder``)."""
    if name.startswith("file:"):
        path = write_input_file(folder, name[len("file:"):])
        case = datasets.load(f"file:{path}")
    else:
        case = datasets.load(name)
    return case, symmetric_graph(case.A)


def coords_of(case: MatrixCase):
    """Vertex coordinates when they index the unknowns one-to-one (as the harness passes them)."""
    return case.coords if case.coords is not None and len(case.coords) == case.n else None


def create_ordering(name: str, case: MatrixCase):
    """The ordering plug-in, or ``NotImplementedError`` (asv: skip) with the reason it cannot run."""
    try:
        ordering = orderings.create(name)
    except SpecError as err:
        raise NotImplementedError(f"ordering {name} is not registered: {err}") from None
    for ok, reason in (ordering.available(), ordering.supports(case)):
        if not ok:
            raise NotImplementedError(f"ordering {name}: {reason}")
    return ordering


def create_backend(name: str):
    """The back-end plug-in, or ``NotImplementedError`` (asv: skip) when it cannot run here."""
    backend = backends.create(name)
    ok, reason = backend.available()
    if not ok:
        raise NotImplementedError(f"back-end {name}: {reason}")
    return backend


def order_and_analyze(name: str, case: MatrixCase, graph) -> dict:
    """What a ``permbench run`` cell computes before any numerics: the ordering (validated) and its
    symbolic analysis. Returns an entry of the cache: status ``ok``/``skip``/``error``."""
    try:
        ordering = create_ordering(name, case)
    except NotImplementedError as err:
        return {"status": "skip", "reason": str(err)}
    try:
        result = ordering.compute(graph, coords=coords_of(case), seed=SEED)
        perm = validate_perm(result.perm, case.n, who=name)
        symbolic = symbolic_factor(graph, perm)
    except Exception as err:  # recorded, and raised again by the benchmarks that need it
        return {"status": "error", "reason": f"ordering {name}: {type(err).__name__}: {err}"}
    return {"status": "ok", "reason": "", "ordering": Ordering(perm=perm, nd_tree=result.nd_tree, stats=result.stats),
            "nnz_L": int(symbolic.nnz_L), "flops": int(symbolic.flops)}


def build_cache(folder: Path, cases=CASES, ordering_names=ORDERINGS) -> dict:
    """Inputs (case, graph) by dataset name, and ``order_and_analyze`` of every (dataset, ordering)."""
    inputs = {name: load_input(name, Path(folder)) for name in cases}
    entries = {(d, o): order_and_analyze(o, *inputs[d]) for d in cases for o in ordering_names}
    return {"inputs": inputs, "entries": entries}


def entry_or_skip(cache: dict, dataset: str, ordering: str) -> dict:
    """The cached entry of (dataset, ordering); skips (``NotImplementedError``) what cannot run here
    and fails (``RuntimeError``) what crashed, so a broken ordering shows up as a failed benchmark."""
    entry = cache["entries"][dataset, ordering]
    if entry["status"] == "skip":
        raise NotImplementedError(entry["reason"])
    if entry["status"] == "error":
        raise RuntimeError(entry["reason"])
    return entry


def right_hand_side(n: int) -> np.ndarray:
    """The right-hand side the numeric back-ends solve for (NumericBackend.run's)."""
    return np.random.default_rng(0).standard_normal(n)


# --------------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------------


class _Cached:
    """Shares one ``setup_cache`` among all classes (asv keys it by this function's source line)."""

    def setup_cache(self):
        # asv runs setup_cache, and later every benchmark, in one folder of its own.
        return build_cache(Path.cwd())

    setup_cache.timeout = 900


class Fill(_Cached):
    """nnz(L) and flops (Σ c_j²) per ordering and input: deterministic, tracked per commit."""

    params = (CASES, ORDERINGS)
    param_names = ("dataset", "ordering")

    def setup(self, cache, dataset, ordering):
        self.entry = entry_or_skip(cache, dataset, ordering)

    def track_nnz_L(self, cache, dataset, ordering):
        return self.entry["nnz_L"]

    track_nnz_L.unit = "entries"

    def track_flops(self, cache, dataset, ordering):
        return self.entry["flops"]

    track_flops.unit = "flops"


class OrderTime(_Cached):
    """Wall time of the ordering itself, from the symmetric graph to a permutation."""

    params = (CASES, ORDERINGS)
    param_names = ("dataset", "ordering")

    def setup(self, cache, dataset, ordering):
        entry_or_skip(cache, dataset, ordering)
        case, self.graph = cache["inputs"][dataset]
        self.coords = coords_of(case)
        self.ordering = create_ordering(ordering, case)
        # One untimed call: loads numba's cached kernels and initializes libraries, as the harness's
        # warm-up does before it times an ordering.
        self.ordering.compute(self.graph, coords=self.coords, seed=SEED, threads=THREADS)

    def time_order(self, cache, dataset, ordering):
        self.result = self.ordering.compute(self.graph, coords=self.coords, seed=SEED, threads=THREADS)


class Factor(_Cached):
    """Numeric factorization and one solve, given the ordering's permutation (analysis untimed)."""

    params = (CASES, FACTOR_ORDERINGS, BACKENDS)
    param_names = ("dataset", "ordering", "backend")

    def setup(self, cache, dataset, ordering, backend):
        entry = entry_or_skip(cache, dataset, ordering)
        self.backend = create_backend(backend)
        case, _graph = cache["inputs"][dataset]
        self.A = case.A
        self.b = right_hand_side(case.n)
        self.backend.analyze(self.A, entry["ordering"].perm, entry["ordering"])
        self.backend.factorize(self.A)  # the factor time_solve uses; also warms the back-end up

    def time_factor(self, cache, dataset, ordering, backend):
        self.backend.factorize(self.A)

    def time_solve(self, cache, dataset, ordering, backend):
        self.backend.solve(self.b)

    def teardown(self, cache, dataset, ordering, backend):
        if getattr(self, "backend", None) is not None:  # asv calls teardown after a skip too
            self.backend.release()


class PeakMemory(_Cached):
    """Peak resident memory of a whole cell on the largest input: ordering, then ``cholmod``'s
    analysis, factorization and solve (``NumericBackend.run``, as ``permbench run`` calls it)."""

    params = (FACTOR_ORDERINGS,)
    param_names = ("ordering",)

    def setup(self, cache, ordering):
        entry_or_skip(cache, LARGEST_CASE, ordering)
        self.case, self.graph = cache["inputs"][LARGEST_CASE]
        self.ordering = create_ordering(ordering, self.case)
        self.backend = create_backend("cholmod")

    def peakmem_order_and_factor(self, cache, ordering):
        result = self.ordering.compute(self.graph, coords=coords_of(self.case), seed=SEED, threads=THREADS)
        perm = validate_perm(result.perm, self.case.n, who=ordering)
        self.metrics = self.backend.run(self.case, perm, result, None)


class Total(_Cached):
    """The README's total of one cell, timed by asv as one call: graph build + ordering + the
    back-end's phases (what it derives from the ordering, analysis, factorization, solve); for
    ``native``, the solver's phases alone (it builds its graph inside them)."""

    params = (TOTAL_CASES, TOTAL_ORDERINGS, ["cholmod"])
    param_names = ("dataset", "ordering", "backend")

    def setup(self, cache, dataset, ordering, backend):
        self.case, _graph = cache["inputs"][dataset]
        self.backend = create_backend(backend)
        self.ordering = None if ordering == "native" else create_ordering(ordering, self.case)
        if self.ordering is None and not self.backend.supports_native:
            raise NotImplementedError(f"{backend} has no native ordering")
        if self.ordering is not None:
            entry_or_skip(cache, dataset, ordering)
        self.time_total(cache, dataset, ordering, backend)  # warm-up, untimed: as the harness's

    def time_total(self, cache, dataset, ordering, backend):
        if self.ordering is None:
            self.metrics = self.backend.run(self.case, None, None, None)
            return
        graph = symmetric_graph(self.case.A)
        result = self.ordering.compute(graph, coords=coords_of(self.case), seed=SEED, threads=THREADS)
        perm = validate_perm(result.perm, self.case.n, who=ordering)
        self.case.graph = graph
        self.metrics = self.backend.run(self.case, perm, result, None)


class PatchThreads:
    """The patch ordering at a mid size (a 250k-vertex triangulated grid, built in ``setup``, not in
    the shared cache), per preset and thread budget: ``time_order`` is its ``compute`` as
    ``permbench run`` times it, ``track_nnz_L`` the fill of that preset (the same for every thread
    count: the permutation does not depend on it). Thread counts above this machine's cores skip."""

    params = (["default", "fast", "quality"], [1, 2, 4])
    param_names = ("preset", "threads")
    timeout = 300
    CASE = "grid[n=250000,matrix=graph]"

    def setup(self, preset, threads):
        import os

        if threads > (os.cpu_count() or 1):
            raise NotImplementedError(f"{threads} threads on a machine with {os.cpu_count()} cores")
        self.graph = symmetric_graph(datasets.load(self.CASE).A)
        self.ordering = orderings.create(f"patch[preset={preset}]")
        self.ordering.compute(self.graph, seed=SEED, threads=threads)  # numba's cache, METIS instances

    def time_order(self, preset, threads):
        self.ordering.compute(self.graph, seed=SEED, threads=threads)

    def track_nnz_L(self, preset, threads):
        perm = self.ordering.compute(self.graph, seed=SEED, threads=threads).perm
        return symbolic_factor(self.graph, perm).nnz_L
