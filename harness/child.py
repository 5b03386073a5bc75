"""What runs inside a unit's child process: load the cached dataset, order, analyse, factorize.

``run_group`` executes one unit (a dataset × an ordering × its back-ends) on a loaded case and
never raises for a cell: every outcome becomes a row with a status and a reason. The ordering is
computed (and timed) once per repeat, its symbolic analysis once, and every back-end of the unit
measures that same permutation. Rows go to ``emit`` as soon as they are finished and ``step`` is
told what starts next, so that the parent (``runner.supervise_unit``) can keep everything finished
and name the step if the child dies.

Nothing here imports pandas or pyarrow: a child's start-up stays short.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .. import datasets as dataset_registry
from .. import orderings as ordering_registry
from . import backends as backend_registry
from .backends import NotSPD
from ..core.case import MatrixCase, diagonal_reason, symmetric_graph, validate_perm
from .metrics import totals
from .rows import base_row, error_text, failed, failure_status, with_status
from .runner import RunConfig, Unit, load_plugins

#: The symbolic analysis' metrics stored in every row (docs/architecture.md, "Metric definitions").
SYMBOLIC_METRICS = ("nnz_L", "flops", "fill_ratio", "etree_height", "critical_flops", "parallelism", "supernodes")

#: Bytes per predicted factor entry: an 8-byte value plus integer indices and workspace margin.
FACTOR_BYTES_PER_NNZ = 12.0


def dataset_fields(case: MatrixCase) -> dict:
    lower = (case.A.nnz - case.A.diagonal().astype(bool).sum()) // 2 + case.n
    return dict(n=case.n, nnz_A=int(case.A.nnz), nnz_tril_A=int(lower), n_vertices=case.meta.get("n_vertices"),
                derived=bool(case.meta.get("derived", False)),
                dataset_meta=json.dumps(case.meta, sort_keys=True, default=str))


def _numeric_budget_reason(symbolic, config: RunConfig) -> str | None:
    predicted = symbolic.nnz_L * FACTOR_BYTES_PER_NNZ
    resident = _own_rss_bytes()
    if predicted + resident > config.mem_limit_bytes:
        return (f"predicted factor size {predicted / 2**30:.2f} GiB (nnz_L={symbolic.nnz_L:,}) plus the "
                f"{resident / 2**30:.2f} GiB already resident exceeds the memory budget "
                f"{config.mem_limit_bytes / 2**30:.2f} GiB (--mem-limit)")
    if symbolic.flops > config.flop_limit:
        return f"predicted flops {symbolic.flops:.3g} exceed the budget {config.flop_limit:.3g} (--flop-limit)"
    return None


def _own_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def symbolic_metrics(symbolic) -> dict:
    return {m: numpy_safe(getattr(symbolic, m)) for m in SYMBOLIC_METRICS}


def numpy_safe(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _noop(*_args, **_kwargs):
    return None


def _warm_up(ordering, case: MatrixCase, step, threads: int = 1) -> float:
    """Call the ordering and the symbolic analysis once on a small grid, untimed by the row.

    Every unit starts in a fresh interpreter, so without this each t_order_s would include the
    first-call costs (numba loading its cache, library initialization: 0.4 s for the symbolic
    analysis, 0.03 s for METIS, measured) that an in-process run pays only once. Failures are
    ignored here: the real call reports them. Returns the warm-up's wall time.
    """
    import scipy.sparse as sp

    from .backends.symbolic import symbolic_factor

    t0 = time.perf_counter()
    k = getattr(ordering, "warmup_grid", 48)  # the ordering's own size: the code paths a real input takes
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    graph = symmetric_graph((sp.kronsum(T, T) + sp.identity(k * k)).tocsr())
    perm = np.arange(k * k)
    if ordering is not None and not ordering.native and getattr(ordering, "warmup", True):
        step({"name": f"warm-up {ordering.spec.canonical()}", "kind": "warmup"})
        coords = None
        if case.coords is not None and len(case.coords) == case.n:
            xy = np.stack(np.meshgrid(np.arange(k), np.arange(k), indexing="ij"), -1).reshape(-1, 2) / k
            coords = np.zeros((k * k, case.coords.shape[1]))
            coords[:, : min(2, coords.shape[1])] = xy[:, : min(2, coords.shape[1])]
        try:
            perm = validate_perm(ordering.warm_up(graph, coords=coords, threads=threads).perm, k * k)
        except Exception:
            perm = np.arange(k * k)
    try:
        symbolic_factor(graph, perm)
    except Exception:
        pass
    return time.perf_counter() - t0


def run_group(unit: Unit, case: MatrixCase, graph, config: RunConfig, emit=None, step=None,
              todo: dict[str, list[int]] | None = None, threads: int = 1) -> list[dict]:
    """Execute one unit on a loaded case; never raises for a cell.

    ``todo`` maps each back-end to the repeats still to run (default: all); ``threads`` is the
    cell's thread budget, handed to the ordering as to every back-end. Every finished row is
    passed to ``emit`` at once; ``step`` is told what starts next (for the timeout and the reason
    of a failure). Returns the rows.
    """
    rows: list[dict] = []

    def out(row):
        rows.append(row)
        if emit is not None:
            emit(row)

    step = step or _noop
    todo = todo or {b: list(range(config.repeat)) for b in unit.backends}
    pending = [(r, b) for r in range(config.repeat) for b in unit.backends if r in todo.get(b, ())]
    base = {"t_graph_s": unit.t_graph_s, "t_graph_cpu_s": unit.t_graph_cpu_s}
    try:
        ordering = ordering_registry.create(unit.ordering)
        backends = {b: backend_registry.create(b) for b in unit.backends}
    except Exception as err:
        for r, b in pending:
            out(with_status(dict(base_row(unit, b, r), **base), "error", f"creating plug-ins: {error_text(err)}"))
        return rows
    # Load every back-end's native libraries before the ordering's: a library an ordering brings
    # (homapy's MKL) otherwise takes over the BLAS symbols of one loaded after it, and CHOLMOD
    # then silently factorizes with MKL at a fraction of its speed.
    for backend in backends.values():
        if backend.available()[0]:
            try:
                backend.prepare()
            except Exception:
                pass  # the back-end's own run reports it, as a row
    ok, reason = ordering.available()
    if not ok:
        for r, b in pending:
            out(with_status(dict(base_row(unit, b, r), **base), "unavailable", f"ordering {ordering.name}: {reason}"))
        return rows
    ok, reason = ordering.supports(case)
    if not ok:
        for r, b in pending:
            out(with_status(dict(base_row(unit, b, r), **base), "skipped", f"ordering {ordering.name}: {reason}"))
        return rows
    if config.warmup:
        base["t_warmup_s"] = _warm_up(ordering, case, step, threads)
    if ordering.native:
        return _run_native(unit, case, graph, backends, pending, base, out, step)
    coords = case.coords if case.coords is not None and len(case.coords) == case.n else None
    from .backends.symbolic import symbolic_factor

    for repeat in sorted({r for r, _ in pending}):
        names = [b for r, b in pending if r == repeat]
        step({"name": f"ordering {unit.ordering} (repeat {repeat})", "kind": "ordering", "repeat": repeat})
        row_base = dict(base)
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            result = ordering.compute(graph, coords=coords, seed=config.seed + repeat, threads=threads)
            t_order, cpu_order = time.perf_counter() - t0, time.process_time() - c0
            perm = validate_perm(result.perm, case.n, who=unit.ordering)
            if result.nd_tree is not None:
                result.nd_tree.check(case.n)
            t0 = time.perf_counter()
            symbolic = symbolic_factor(graph, perm)
            t_symbolic = time.perf_counter() - t0
        except Exception as err:
            for b in names:
                out(failed(dict(base_row(unit, b, repeat), **row_base), err, f"ordering {unit.ordering}",
                           "ordering_extras"))
            continue
        row_base.update(t_order_s=t_order, t_order_cpu_s=cpu_order, t_symbolic_s=t_symbolic,
                        ordering_extras=json.dumps(result.stats, sort_keys=True, default=str),
                        **symbolic_metrics(symbolic))
        for b in names:
            step({"name": f"back-end {b} (repeat {repeat})", "kind": "backend", "backend": b, "repeat": repeat,
                  "base": row_base})
            out(_run_backend(unit, backends[b], b, repeat, case, perm, result, symbolic, row_base, config))
    return rows


def _run_native(unit, case, graph, backends, pending, base, out, step) -> list[dict]:
    """The back-end orders the matrix itself (e.g. cuDSS's reordering inside its analysis).

    The back-end reports its reordering time as ``t_order_s`` where its API separates it (else
    NaN: the ordering is inside ``t_analyze_s``) and hands back the permutation it used
    (``perm``), from which the same symbolic metrics as for every other ordering are computed.
    There is no prediction before the numeric phase, so no memory budget applies here (the
    child's memory cap still does).
    """
    from .backends.symbolic import symbolic_factor

    rows = []
    for repeat, name in pending:
        backend = backends[name]
        row = dict(base_row(unit, name, repeat), **base)
        step({"name": f"back-end {name} (native, repeat {repeat})", "kind": "backend", "backend": name,
              "repeat": repeat, "base": base})
        if not backend.supports_native:
            rows.append(with_status(row, "skipped", f"'native' is a solver's own ordering; back-end {backend.name} has none"))
            out(rows[-1])
            continue
        ok, reason = backend.available()
        if not ok:
            rows.append(with_status(row, "unavailable", f"back-end {backend.name}: {reason}"))
            out(rows[-1])
            continue
        try:
            metrics = backend.run(case, None, None, None)
            perm = metrics.pop("perm", None)
            if perm is not None:
                perm = validate_perm(perm, case.n, who=f"{name} (native)")
                t0 = time.perf_counter()
                row.update(symbolic_metrics(symbolic_factor(graph, perm)))
                row["t_symbolic_s"] = time.perf_counter() - t0
        except NotSPD as err:
            rows.append(with_status(row, "not_spd", str(err) + diagonal_reason(case.meta)))
            out(rows[-1])
            continue
        except Exception as err:
            rows.append(failed(row, err, f"back-end {name}", "backend_extras"))
            out(rows[-1])
            continue
        row.setdefault("t_order_s", float("nan"))
        rows.append(_finish_row(row, metrics, backend, native=True))
        out(rows[-1])
    return rows


def _finish_row(row: dict, metrics: dict, backend, native: bool = False) -> dict:
    extras = metrics.pop("extras", {})
    row.update(metrics)
    row["backend_extras"] = json.dumps(extras, sort_keys=True, default=str)
    row["backend_provenance"] = _backend_provenance(backend)
    row = with_status(row, "ok", "")
    if backend.numeric:
        row.update(totals(row, native))
    return row


def _run_backend(unit, backend, name, repeat, case, perm, result, symbolic, row_base, config) -> dict:
    row = dict(base_row(unit, name, repeat), **row_base)
    ok, reason = backend.available()
    if not ok:
        return with_status(row, "unavailable", f"back-end {backend.name}: {reason}")
    if backend.numeric:
        over = _numeric_budget_reason(symbolic, config)
        if over:
            return with_status(row, "skipped", over)
    try:
        metrics = backend.run(case, perm, result, symbolic)
    except NotSPD as err:
        return with_status(row, "not_spd", str(err) + diagonal_reason(case.meta))
    except Exception as err:
        return failed(row, err, f"back-end {name}", "backend_extras")
    return _finish_row(row, metrics, backend)


# ------------------------------------------------------------------------------------------------
# The dataset cache: written once per dataset by a child of its own, read by every unit's child.

def save_case(cache_dir: Path, case: MatrixCase, graph, t_graph_s: float) -> None:
    """Write the case and its graph as .npy arrays; the folder appears complete or not at all."""
    cache_dir = Path(cache_dir)
    tmp = cache_dir.with_name(cache_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    A = case.A.tocsr()
    arrays = {"A_data": A.data, "A_indices": A.indices, "A_indptr": A.indptr,
              "G_indices": graph.indices, "G_indptr": graph.indptr}
    if case.coords is not None:
        arrays["coords"] = case.coords
    if case.faces is not None:
        arrays["faces"] = np.asarray(case.faces)
    for key, value in arrays.items():
        np.save(tmp / f"{key}.npy", np.ascontiguousarray(value), allow_pickle=False)
    info = {"name": case.name, "shape": list(A.shape), "meta": case.meta, "t_graph_s": t_graph_s,
            "graph_nnz": int(graph.nnz)}
    (tmp / "case.json").write_text(json.dumps(info, default=str))
    shutil.rmtree(cache_dir, ignore_errors=True)
    os.replace(tmp, cache_dir)


def load_case(cache_dir: Path) -> tuple[MatrixCase, object]:
    import scipy.sparse as sp

    cache_dir = Path(cache_dir)
    info = json.loads((cache_dir / "case.json").read_text())
    n = info["shape"][0]

    def arr(key):
        path = cache_dir / f"{key}.npy"
        return np.load(path, allow_pickle=False) if path.exists() else None

    A = sp.csr_matrix((arr("A_data"), arr("A_indices"), arr("A_indptr")), shape=tuple(info["shape"]))
    A.has_sorted_indices = True
    G_indices = arr("G_indices")
    graph = sp.csr_matrix((np.ones(len(G_indices), dtype=np.int8), G_indices, arr("G_indptr")), shape=(n, n))
    graph.has_sorted_indices = True
    case = MatrixCase(name=info["name"], A=A, coords=arr("coords"), faces=arr("faces"), meta=info["meta"])
    return case, graph


def prepare_main(payload, emit, step) -> None:
    """Child: load a dataset once, build its graph (timed), write the cache, report its columns."""
    name, cache_dir, plugins = payload
    load_plugins(plugins)
    step({"name": f"load dataset {name}", "kind": "load"})
    try:
        case = dataset_registry.create(name).load()
        case.name = name
        step({"name": f"graph of {name}", "kind": "load"})
        t0, c0 = time.perf_counter(), time.process_time()
        graph = symmetric_graph(case.A)
        t_graph, cpu_graph = time.perf_counter() - t0, time.process_time() - c0
        step({"name": f"cache {name}", "kind": "load"})
        save_case(Path(cache_dir), case, graph, t_graph)
    except Exception as err:
        emit(("failed", failure_status(err), f"dataset {name}: {error_text(err)}"))
        return
    emit(("prepared", {"t_graph_s": t_graph, "t_graph_cpu_s": cpu_graph, "fields": dataset_fields(case)}))


def _backend_provenance(backend) -> str:
    """What the back-end loaded (BLAS, library versions), read in the process that ran it: the
    parent never loads the solver libraries, so its own provenance cannot see them."""
    cached = getattr(backend, "_permbench_provenance", None)
    if cached is None:
        try:
            cached = json.dumps(backend.provenance(), sort_keys=True, default=str)
        except Exception as err:  # provenance must never fail a cell
            cached = json.dumps({"error": error_text(err)})
        backend._permbench_provenance = cached
    return cached


def _thread_info(threads: int) -> str:
    from .isolation import THREAD_ENV_VARS

    from ..core.provenance import loaded_libraries

    info: dict = {"threads": threads, "env": {k: os.environ.get(k) for k in THREAD_ENV_VARS},
                  "blas_loaded": sorted(set(loaded_libraries("blas", "lapack", "mkl_rt").values()))}
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "filepath")}
                               for p in threadpool_info()]
    except Exception as err:
        info["threadpools_error"] = repr(err)
    return json.dumps(info, sort_keys=True)


def unit_main(payload, emit, step) -> None:
    """Child: run one unit on the cached dataset (or load it here when the cache is not visible,
    e.g. on a cluster node without the parent's disk), streaming each row to the parent."""
    import resource

    unit, config, todo, threads, concurrency = payload
    load_plugins(config.plugins)
    step({"name": f"load {unit.dataset}", "kind": "load"})
    if unit.cache_dir and (Path(unit.cache_dir) / "case.json").exists():
        case, graph = load_case(unit.cache_dir)
    else:
        case = dataset_registry.create(unit.dataset).load()
        case.name = unit.dataset
        t0, c0 = time.perf_counter(), time.process_time()
        graph = symmetric_graph(case.A)
        unit.t_graph_s, unit.t_graph_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        unit.fields = dataset_fields(case)
    case.graph = graph
    thread_info = None

    def send(row):
        nonlocal thread_info
        thread_info = thread_info or _thread_info(threads)  # after the first row: libraries are loaded
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        emit(("row", dict(row, threads=threads, concurrent_jobs=concurrency, peak_rss_bytes=peak,
                          thread_info=thread_info)))

    run_group(unit, case, graph, config, emit=send, step=step, todo=todo, threads=threads)
