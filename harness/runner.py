"""Plan and execute a run: datasets × orderings × back-ends × repeats -> result rows.

A *cell* is (dataset, ordering, back-end) with their parameters; its id hashes the canonical specs
plus the versions that shape its result, so a finished cell is skipped on re-run and a changed
ordering is re-run. Work is grouped by (dataset, ordering): the matrix and its graph are built once
per dataset, the ordering is computed (and timed) once per repeat, its symbolic analysis is done
once, and every back-end of the group measures that same permutation. Each group's rows are
written as a fragment as soon as the group ends.

Status of a row: ``ok``; ``skipped`` (does not apply, or predicted over the memory/flop budget —
reason says which); ``unavailable`` (plug-in cannot run here — reason says why); ``not_spd``
(the numeric factorization failed: ordering and symbolic metrics are still recorded); ``error``
(anything else, with the exception's text).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import permbench

from .. import datasets as dataset_registry
from .. import orderings as ordering_registry
from . import backends as backend_registry
from .backends import NotSPD
from .backends.symbolic import symbolic_factor
from .case import MatrixCase, symmetric_graph, validate_perm
from .plugins import Plugin
from .results import FINAL_STATUSES, write_fragment
from .specs import parse_specs

#: The symbolic analysis' metrics stored in every row (DESIGN §3).
SYMBOLIC_METRICS = ("nnz_L", "flops", "fill_ratio", "etree_height", "critical_flops", "parallelism", "supernodes")

#: Bytes per predicted factor entry: an 8-byte value plus integer indices and workspace margin.
FACTOR_BYTES_PER_NNZ = 12.0


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
    mem_limit_bytes: int = field(default_factory=default_mem_limit_bytes)
    flop_limit: float = 1e11
    seed: int = 0
    force: bool = False


@dataclass
class Group:
    """One dataset × one ordering, with all back-ends; the unit of execution and of fragments."""

    dataset: Plugin
    ordering: Plugin
    backends: list[Plugin]
    group_id: str
    cell_ids: dict[str, str]


def _versions(plugin: Plugin) -> dict:
    try:
        libs = plugin.library_versions() if plugin.available()[0] else {}
    except Exception as err:  # a broken library must not break planning; it shows in the cell
        libs = {"error": repr(err)}
    return {"version": plugin.version, "libraries": libs}


def cell_id(dataset: Plugin, ordering: Plugin, backend: Plugin, versions: dict) -> str:
    key = {
        "permbench": permbench.__version__,
        "dataset": [dataset.spec.canonical(), dataset.version],
        "ordering": [ordering.spec.canonical(), versions[ordering.spec.canonical()]],
        "backend": [backend.spec.canonical(), versions[backend.spec.canonical()]],
    }
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
    datasets = _expand(config.datasets, dataset_registry.registry)
    orderings = _expand(config.orderings, ordering_registry.registry)
    backends = _expand(config.backends, backend_registry.registry)
    versions = {p.spec.canonical(): _versions(p) for p in orderings + backends}
    groups = []
    for d in datasets:
        for o in orderings:
            ids = {b.spec.canonical(): cell_id(d, o, b, versions) for b in backends}
            gid = hashlib.sha256(json.dumps(sorted(ids.values())).encode()).hexdigest()[:16]
            groups.append(Group(d, o, backends, gid, ids))
    return groups


def _base_row(group: Group, backend: Plugin, repeat: int, case: MatrixCase | None) -> dict:
    row = {
        "cell_id": group.cell_ids[backend.spec.canonical()],
        "dataset": group.dataset.spec.canonical(),
        "ordering": group.ordering.spec.canonical(),
        "backend": backend.spec.canonical(),
        "repeat": repeat,
        "ordering_version": group.ordering.version,
        "backend_version": backend.version,
    }
    if case is not None:
        lower = (case.A.nnz - case.A.diagonal().astype(bool).sum()) // 2 + case.n
        row.update(n=case.n, nnz_A=int(case.A.nnz), nnz_tril_A=int(lower),
                   n_vertices=case.meta.get("n_vertices"), derived=bool(case.meta.get("derived", False)),
                   dataset_meta=json.dumps(case.meta, sort_keys=True, default=str))
    return row


def _status_rows(group: Group, case, status: str, reason: str, repeats: int) -> list[dict]:
    return [dict(_base_row(group, b, r, case), status=status, reason=reason)
            for b in group.backends for r in range(repeats)]


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _numeric_budget_reason(symbolic, config: RunConfig) -> str | None:
    predicted = symbolic.nnz_L * FACTOR_BYTES_PER_NNZ
    if predicted > config.mem_limit_bytes:
        return (f"predicted factor size {predicted / 2**30:.2f} GiB (nnz_L={symbolic.nnz_L:,}) exceeds the "
                f"memory budget {config.mem_limit_bytes / 2**30:.2f} GiB (--mem-limit)")
    if symbolic.flops > config.flop_limit:
        return f"predicted flops {symbolic.flops:.3g} exceed the budget {config.flop_limit:.3g} (--flop-limit)"
    return None


def run_group(group: Group, case: MatrixCase, graph, t_graph_s: float, config: RunConfig) -> list[dict]:
    """Execute one (dataset, ordering) group on an already loaded case; never raises for a cell."""
    ordering = group.ordering
    ok, reason = ordering.available()
    if not ok:
        return _status_rows(group, case, "unavailable", f"ordering {ordering.name}: {reason}", config.repeat)
    ok, reason = ordering.supports(case)
    if not ok:
        return _status_rows(group, case, "skipped", f"ordering {ordering.name}: {reason}", config.repeat)
    if ordering.native:
        return _run_native(group, case, graph, t_graph_s, config)
    coords = case.coords if case.coords is not None and len(case.coords) == case.n else None
    rows = []
    for repeat in range(config.repeat):
        base = {"t_graph_s": t_graph_s}
        try:
            t0 = time.perf_counter()
            result = ordering.compute(graph, coords=coords, seed=config.seed + repeat)
            t_order = time.perf_counter() - t0
            perm = validate_perm(result.perm, case.n, who=ordering.spec.canonical())
            t0 = time.perf_counter()
            symbolic = symbolic_factor(graph, perm)
            t_symbolic = time.perf_counter() - t0
        except Exception as err:
            reason = f"ordering {ordering.spec.canonical()}: {_error_text(err)}"
            rows += [dict(_base_row(group, b, repeat, case), **base, status="error", reason=reason,
                          ordering_extras=json.dumps({"traceback": traceback.format_exc(limit=8)}))
                     for b in group.backends]
            continue
        base.update(t_order_s=t_order, t_symbolic_s=t_symbolic,
                    ordering_extras=json.dumps(result.extras, sort_keys=True, default=str),
                    **symbolic_metrics(symbolic))
        for backend in group.backends:
            rows.append(_run_backend(group, backend, repeat, case, perm, result, symbolic, base, config))
    return rows


def _run_native(group: Group, case: MatrixCase, graph, t_graph_s: float, config: RunConfig) -> list[dict]:
    """The back-end orders the matrix itself (e.g. cuDSS's reordering inside its analysis).

    The back-end reports its reordering time as ``t_order_s`` where its API separates it (else
    NaN: the ordering is inside ``t_analyze_s``) and hands back the permutation it used
    (``perm``), from which the same symbolic metrics as for every other ordering are computed.
    There is no prediction before the numeric phase, so no memory budget applies here.
    """
    rows = []
    for repeat in range(config.repeat):
        for backend in group.backends:
            row = dict(_base_row(group, backend, repeat, case), t_graph_s=t_graph_s)
            if not backend.supports_native:
                rows.append(dict(row, status="skipped",
                                 reason=f"'native' is a solver's own ordering; back-end {backend.name} has none"))
                continue
            ok, reason = backend.available()
            if not ok:
                rows.append(dict(row, status="unavailable", reason=f"back-end {backend.name}: {reason}"))
                continue
            try:
                metrics = backend.run(case, None, None, None)
                perm = metrics.pop("perm", None)
                if perm is not None:
                    perm = validate_perm(perm, case.n, who=f"{backend.spec.canonical()} (native)")
                    t0 = time.perf_counter()
                    row.update(symbolic_metrics(symbolic_factor(graph, perm)))
                    row["t_symbolic_s"] = time.perf_counter() - t0
            except NotSPD as err:
                rows.append(dict(row, status="not_spd", reason=str(err)))
                continue
            except Exception as err:
                rows.append(dict(row, status="error", reason=f"back-end {backend.spec.canonical()}: {_error_text(err)}",
                                 backend_extras=json.dumps({"traceback": traceback.format_exc(limit=8)})))
                continue
            row.setdefault("t_order_s", float("nan"))
            rows.append(_finish_row(row, metrics, backend))
    return rows


def _finish_row(row: dict, metrics: dict, backend) -> dict:
    extras = metrics.pop("extras", {})
    row.update(metrics)
    row["backend_extras"] = json.dumps(extras, sort_keys=True, default=str)
    row["status"], row["reason"] = "ok", ""
    if backend.numeric:
        order = row.get("t_order_s")
        order = 0.0 if order is None or order != order else order  # native: inside t_analyze_s
        row["t_total_s"] = order + row["t_analyze_s"] + row["t_factor_s"] + row["t_solve_s"]
        row["t_total_k_s"] = (order + row["t_analyze_s"] + row.get("t_factor_sum_s", row["t_factor_s"])
                              + row.get("t_solve_sum_s", row["t_solve_s"]))
    return row


def _run_backend(group, backend, repeat, case, perm, result, symbolic, base, config) -> dict:
    row = dict(_base_row(group, backend, repeat, case), **base)
    ok, reason = backend.available()
    if not ok:
        return dict(row, status="unavailable", reason=f"back-end {backend.name}: {reason}")
    if backend.numeric:
        over = _numeric_budget_reason(symbolic, config)
        if over:
            return dict(row, status="skipped", reason=over)
    try:
        metrics = backend.run(case, perm, result, symbolic)
    except NotSPD as err:
        return dict(row, status="not_spd", reason=str(err))
    except Exception as err:
        return dict(row, status="error", reason=f"back-end {backend.spec.canonical()}: {_error_text(err)}",
                    backend_extras=json.dumps({"traceback": traceback.format_exc(limit=8)}))
    return _finish_row(row, metrics, backend)


def symbolic_metrics(symbolic) -> dict:
    return {m: numpy_safe(getattr(symbolic, m)) for m in SYMBOLIC_METRICS}


def parts_dir_for(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".parts")


def done_groups(parts_dir: Path) -> set[str]:
    """Groups whose fragment holds only final statuses (their cells are not re-run)."""
    done = set()
    if not parts_dir.exists():
        return done
    for frag in parts_dir.glob("*.parquet"):
        try:
            frame = read_fragments_file(frag)
        except Exception:
            continue  # an unreadable fragment is simply re-run
        if len(frame) and frame["status"].isin(FINAL_STATUSES).all():
            done.add(frag.stem)
    return done


def read_fragments_file(path: Path):
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["status"]).to_pandas()


Progress = Callable[[Group, list[dict] | None], None]


def execute(config: RunConfig, progress: Progress | None = None) -> Path:
    """Run every group not already done, writing a fragment per group; returns the parts folder."""
    groups = plan(config)
    parts = parts_dir_for(config.out)
    parts.mkdir(parents=True, exist_ok=True)
    done = set() if config.force else done_groups(parts)
    by_dataset: dict[str, list[Group]] = {}
    for g in groups:
        by_dataset.setdefault(g.dataset.spec.canonical(), []).append(g)
    for name, todo in by_dataset.items():
        todo = [g for g in todo if g.group_id not in done]
        if not todo:
            continue
        case = graph = None
        t_graph = math.nan
        try:
            case = todo[0].dataset.load()
            case.name = name
            t0 = time.perf_counter()
            graph = symmetric_graph(case.A)
            t_graph = time.perf_counter() - t0
        except Exception as err:
            failure = f"dataset {name}: {_error_text(err)}"
        for group in todo:
            if progress:
                progress(group, None)
            if graph is None:
                rows = _status_rows(group, case, "error", failure, config.repeat)
            else:
                rows = run_group(group, case, graph, t_graph, config)
            write_fragment(rows, parts / f"{group.group_id}.parquet")
            if progress:
                progress(group, rows)
        del case, graph
    return parts


def median_by_cell(frame, columns=("t_order_s", "nnz_L", "flops")):
    """Median over repeats of each cell's ok rows (for summaries and comparisons)."""
    ok = frame[frame["status"] == "ok"]
    cols = [c for c in columns if c in ok.columns]
    return ok.groupby(["dataset", "ordering", "backend"], sort=True)[cols].median().reset_index()


def numpy_safe(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value
