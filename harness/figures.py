"""The paper's figure set, rebuilt from stored result files only: it never runs a benchmark.

``permbench figures -c configs/paper.toml`` reads the suite file's ``[figures]`` table::

    [figures]
    results = ["results/paper/paper.parquet"]   # result files or glob patterns (default: the suite's out)
    gpu_results = ["results/gpu/*.parquet"]     # for (f); the cudss study writes them
    out_dir = "results/figures"
    set = ["a_order_time_vs_n", ...]            # default: all of FIGURE_SET
    baseline = "metis"                          # the ordering (b) is relative to
    k_max = 100                                 # the largest k of (e)

and writes, per figure, ``NAME.png``, ``NAME.pdf`` and ``NAME.json`` (the sidecar: sha256 and size of
every result file the figure read, and of the PNG/PDF written). A figure whose data is absent (no GPU
results yet, no numeric back-end) is skipped with the reason, never an error.

Determinism: one fixed style (matplotlib's defaults + ``report.STYLE``, ignoring any local
matplotlibrc), one fixed colour per ordering (``report.color_of``), categories sorted, and files
written without timestamps (``report.save``), so the same result files give byte-identical figures.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import suites  # noqa: E402
from .report import (STYLE, family_of, color_of, dataset_label, fig_breakdown, fig_relative_fill, fig_time_vs_n,  # noqa: E402
                     legend_outside, save)
from ..core.provenance import sha256_file  # noqa: E402
from .results import read_results  # noqa: E402

#: matplotlib's own defaults (not the machine's matplotlibrc), then the project's style.
FIGURE_STYLE = ["default", {**STYLE, "font.family": "DejaVu Sans"}]
#: A suite's figures read only the files it names: no GPU result files unless [figures] gpu_results lists them.
DEFAULT_GPU_RESULTS: tuple[str, ...] = ()
DEFAULT_OUT_DIR = "results/figures"
CONFIG_KEYS = {"results", "gpu_results", "out_dir", "set", "baseline", "k_max"}
LINESTYLES = ["-", "--", ":", "-."]


class FigureConfigError(ValueError):
    """A ``[figures]`` table that cannot be used: the message names the file and the key."""


class Skip(Exception):
    """The data a figure needs is absent; the message says what is missing."""


@dataclass(frozen=True)
class FigureConfig:
    results: tuple[str, ...]
    gpu_results: tuple[str, ...] = DEFAULT_GPU_RESULTS
    out_dir: Path = Path(DEFAULT_OUT_DIR)
    names: tuple[str, ...] = ()  # empty: every figure of FIGURE_SET
    baseline: str = "metis"
    k_max: int = 100


@dataclass
class Outcome:
    """What happened to one figure: the files written, or the reason it was skipped."""

    name: str
    files: list[Path] = field(default_factory=list)
    skipped: str | None = None


# --------------------------------------------------------------------------------------------------
# Configuration and inputs
# --------------------------------------------------------------------------------------------------


def _string_list(value, source: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise FigureConfigError(f"{source}: [figures] {key} must be a list of paths or glob patterns")
    return tuple(value)


def config_from_suite(suite: dict, source: str = "suite") -> FigureConfig:
    """The figure configuration of a suite (as ``suites.load`` returns it)."""
    table = suite.get("figures", {})
    if not isinstance(table, dict):
        raise FigureConfigError(f"{source}: 'figures' must be a table ([figures])")
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        raise FigureConfigError(f"{source}: unknown key(s) in [figures]: {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(CONFIG_KEYS))}")
    if "results" in table:
        results = _string_list(table["results"], source, "results")
    elif suite.get("out"):
        results = (str(suite["out"]),)
    else:
        raise FigureConfigError(f"{source}: no result files named: set [figures] results or the suite's out")
    names = _string_list(table.get("set", list(FIGURE_SET)), source, "set")
    wrong = [n for n in names if n not in FIGURE_SET]
    if wrong:
        raise FigureConfigError(f"{source}: unknown figure(s) in [figures] set: {', '.join(wrong)}; "
                                f"known: {', '.join(FIGURE_SET)}")
    k_max = table.get("k_max", 100)
    if not isinstance(k_max, int) or k_max < 2:
        raise FigureConfigError(f"{source}: [figures] k_max must be an integer >= 2 (got {k_max!r})")
    baseline = table.get("baseline", "metis")
    if not isinstance(baseline, str):
        raise FigureConfigError(f"{source}: [figures] baseline must be an ordering name (got {baseline!r})")
    return FigureConfig(results=results,
                        gpu_results=_string_list(table.get("gpu_results", list(DEFAULT_GPU_RESULTS)), source,
                                                 "gpu_results"),
                        out_dir=Path(table.get("out_dir", DEFAULT_OUT_DIR)), names=names, baseline=baseline,
                        k_max=k_max)


def load_config(path) -> FigureConfig:
    return config_from_suite(suites.load(path), source=str(path))


def resolve(patterns) -> list[Path]:
    """The existing files named by paths or glob patterns (relative to the working directory), sorted."""
    found: set[str] = set()
    for pattern in patterns:
        found.update(p for p in glob.glob(pattern) if Path(p).is_file())
    return [Path(p) for p in sorted(found)]


def read_frames(paths: list[Path]) -> pd.DataFrame:
    """The rows of every result file, with the file they came from as ``result_file``."""
    frames = []
    for path in paths:
        frame, _provenance = read_results(path)
        frames.append(frame.assign(result_file=path.as_posix()))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"] if len(frame) else frame


def dataset_order(frame: pd.DataFrame) -> list[str]:
    """Datasets by size, then name."""
    sizes = frame.groupby("dataset")["n"].first()
    return sorted(sizes.index, key=lambda d: (sizes[d], d))


def numeric_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok rows of numeric back-ends (those that measured a factorization)."""
    ok = ok_rows(frame)
    return ok.dropna(subset=["t_factor_s"]) if len(ok) else ok


# --------------------------------------------------------------------------------------------------
# Pure computations behind (d), (e), (f)
# --------------------------------------------------------------------------------------------------


def performance_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Dolan–Moré ratios r[p, s] = t[p, s] / min over s of t[p, s] (rows: problems, columns: solvers).

    Missing values (NaN: the ordering failed or was skipped on that dataset) become +inf, the usual
    convention: they count against the ordering at every τ. Rows with no value at all are dropped.
    """
    table = table.dropna(how="all")
    values = table.to_numpy(dtype=float)
    if np.any(values[np.isfinite(values)] <= 0):
        raise ValueError("performance ratios need positive values (times, counts)")
    best = np.nanmin(values, axis=1, keepdims=True)
    ratios = np.where(np.isnan(values), np.inf, values / best)
    return pd.DataFrame(ratios, index=table.index, columns=table.columns)


def performance_profile(ratios: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """ρ_s(τ) = fraction of problems whose ratio r[p, s] ≤ τ; rows: τ, columns: solvers."""
    r = ratios.to_numpy(dtype=float)
    taus = np.asarray(taus, dtype=float)
    rho = (r[None, :, :] <= taus[:, None, None]).mean(axis=1)
    return pd.DataFrame(rho, index=pd.Index(taus, name="tau"), columns=ratios.columns)


def metric_table(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Median of ``metric`` over repeats: rows = dataset, columns = ordering (sorted)."""
    rows = ok_rows(frame).dropna(subset=[metric])
    table = rows.groupby(["dataset", "ordering"])[metric].median().unstack("ordering")
    return table.sort_index().reindex(sorted(table.columns), axis=1)


def amortized_time(phases: pd.DataFrame, ks: np.ndarray) -> pd.DataFrame:
    """End-to-end time of k factorizations reusing one ordering and analysis, for each row of ``phases``:

        t_order + t_analyze + (t_factor + t_solve) + (k − 1)·(t_refactor + t_solve)

    where t_refactor is the measured median of the later factorizations (``t_refactor_median_s``,
    from runs with k > 1) and, where it was not measured, t_factor itself, which makes this
    t_order + t_analyze + k·(t_factor + t_solve) (t_total_k_s; README, "What a total counts").
    The first factorization pays one-off costs (allocating the factor), so reusing its time for
    every k would overstate the slope. A NaN
    t_order_s (a solver's own ordering, timed inside its analysis) counts as 0.
    Returns rows = phases' rows, columns = k.
    """
    once = phases["t_order_s"].fillna(0.0).to_numpy() + phases["t_analyze_s"].to_numpy()
    first = phases["t_factor_s"].to_numpy() + phases["t_solve_s"].to_numpy()
    refactor = phases["t_refactor_median_s"] if "t_refactor_median_s" in phases else phases["t_factor_s"]
    later = refactor.fillna(phases["t_factor_s"]).to_numpy() + phases["t_solve_s"].to_numpy()
    ks = np.asarray(ks, dtype=float)
    return pd.DataFrame(once[:, None] + first[:, None] + (ks[None, :] - 1) * later[:, None], index=phases.index,
                        columns=ks)


def cudss_configuration(ordering: str, backend: str) -> tuple[str, bool]:
    """A readable name for one way of running cuDSS, independent of k, and whether it is cuDSS's
    default (its own reordering, with the multithreading layer): the baseline of (f)."""
    from .backends import registry

    p = registry.create(backend).p
    if ordering == "native":
        default = p["reorder"] == "default" and bool(p["mt"])
        name = "cuDSS default" if p["reorder"] == "default" else f"cuDSS {p['reorder']}"
        return name + ("" if p["mt"] else " (no MT layer)"), default
    return f"{ordering}, tree={p['tree']}", False


def gpu_speedups(frame: pd.DataFrame, column: str = "t_total_s") -> pd.DataFrame:
    """Speedup of every cuDSS configuration over cuDSS's default on each dataset.

    Rows: (dataset, n, configuration, ordering, speedup) with speedup = median ``column`` of the
    default / median ``column`` of the configuration, for rows with the same k. Raises ``Skip`` when
    the rows needed are absent.
    """
    rows = numeric_rows(frame)
    rows = rows[rows["backend"].str.split("[").str[0] == "cudss"] if len(rows) else rows
    if rows.empty:
        raise Skip("no ok rows of the cudss back-end in the GPU result files")
    rows = rows.dropna(subset=[column])
    labels = [cudss_configuration(o, b) for o, b in zip(rows["ordering"], rows["backend"])]
    rows = rows.assign(configuration=[name for name, _ in labels], is_default=[d for _, d in labels],
                       k=rows["k"].astype(int))
    med = rows.groupby(["dataset", "k", "configuration", "ordering", "is_default"]) \
        .agg(n=("n", "first"), t=(column, "median"), t_min=(column, "min"), t_max=(column, "max")).reset_index()
    base_rows = med[med["is_default"]].set_index(["dataset", "k"])
    base = base_rows["t"]
    if base.empty:
        raise Skip("no rows of cuDSS's default (ordering native, back-end cudss with reorder=default, mt=true)")
    others = med[~med["is_default"]]
    keys = list(zip(others["dataset"], others["k"]))
    has_base = np.array([key in base.index for key in keys], dtype=bool)
    others = others[has_base]
    keys = list(zip(others["dataset"], others["k"]))
    speedup = [base[key] / t for key, t in zip(keys, others["t"])]
    # The range of the speedup over the repeats: slowest default over fastest configuration, and back.
    high = [base_rows.at[key, "t_max"] / t for key, t in zip(keys, others["t_min"])]
    low = [base_rows.at[key, "t_min"] / t for key, t in zip(keys, others["t_max"])]
    out = others.assign(speedup=speedup, speedup_min=low, speedup_max=high)[
        ["dataset", "n", "k", "configuration", "ordering", "speedup", "speedup_min", "speedup_max"]]
    if out.empty:
        raise Skip("no cuDSS configuration shares a dataset and k with cuDSS's default")
    return out.sort_values(["configuration", "k", "n", "dataset"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# The figures: each takes the rows it reads and returns a figure, or raises Skip
# --------------------------------------------------------------------------------------------------


def fig_a_order_time(frame: pd.DataFrame, config: FigureConfig):
    ok = ok_rows(frame)
    if ok.empty or ok["t_order_s"].isna().all():
        raise Skip("no ok rows with an ordering time")
    # The ordering runs once per repeat and every back-end of the repeat reuses it: one value each.
    once = ok.dropna(subset=["t_order_s"]).drop_duplicates(subset=["result_file", "dataset", "ordering", "repeat"])
    return fig_time_vs_n(once)


def fig_b_relative_fill(frame: pd.DataFrame, config: FigureConfig):
    ok = ok_rows(frame)
    if ok.empty or config.baseline not in set(ok.dropna(subset=["nnz_L"])["ordering"]):
        raise Skip(f"no ok rows of the baseline ordering {config.baseline!r} with nnz_L")
    fig = fig_relative_fill(ok, config.baseline)
    # One legend beside the panels instead of one over each panel's bars; slanted dataset names so
    # long ones do not run into each other.
    handles, labels = fig.axes[0].get_legend_handles_labels()
    for ax in fig.axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.axes[0].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def fig_c_phases(frame: pd.DataFrame, config: FigureConfig):
    fig = fig_breakdown(frame) if len(frame) else None
    if fig is None:
        raise Skip("no ok rows of a numeric back-end (no t_factor_s)")
    return fig


def fig_d_profiles(frame: pd.DataFrame, config: FigureConfig):
    panels = [(metric, label, ok_rows(frame)) for metric, label in (("nnz_L", "nnz(L)"), ("flops", "flops"))]
    numeric = numeric_rows(frame)
    for backend in sorted(set(numeric["backend"])) if len(numeric) else []:
        panels.append(("t_total_s", f"t_total on {backend}", numeric[numeric["backend"] == backend]))
    tables = [(label, metric_table(rows, metric)) for metric, label, rows in panels if len(rows)]
    tables = [(label, t) for label, t in tables if t.shape[0] >= 2 and t.shape[1] >= 2]
    if not tables:
        raise Skip("performance profiles need at least 2 datasets and 2 orderings with ok rows")
    fig, axes = plt.subplots(1, len(tables), figsize=(4.6 * len(tables), 4.0), squeeze=False)
    for ax, (label, table) in zip(axes.flat, tables):
        ratios = performance_ratios(table)
        finite = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
        tau_max = max(2.0, float(finite.max()) * 1.1)
        taus = np.unique(np.concatenate([[1.0], finite, [tau_max]]))
        rho = performance_profile(ratios, taus)
        for ordering in rho.columns:
            ax.step(taus, rho[ordering].to_numpy(), where="post", label=ordering, color=color_of(ordering))
        ax.set_xscale("log", base=2)
        ax.set_xlim(1.0, tau_max)
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("τ: ratio to the best ordering on a dataset")
        ax.set_ylabel("fraction of datasets within τ of the best")
        ax.set_title(f"{label} ({ratios.shape[0]} datasets)", fontsize=9)
    fig.suptitle("Dolan–Moré performance profiles: ρ(τ) = fraction of datasets where the ordering's value "
                 "≤ τ × the best (higher and further left is better)", fontsize=9)
    fig.tight_layout()
    legend_outside(fig, *axes.flat[0].get_legend_handles_labels(), title="ordering")
    return fig


def fig_e_amortization(frame: pd.DataFrame, config: FigureConfig):
    rows = numeric_rows(frame)
    if rows.empty:
        raise Skip("no ok rows of a numeric back-end (no t_factor_s)")
    keys = ["dataset", "ordering", "backend"]
    rows = rows.assign(t_refactor_median_s=pd.to_numeric(rows["t_refactor_median_s"], errors="coerce"))
    phases = rows.groupby(keys)[["t_order_s", "t_analyze_s", "t_factor_s", "t_solve_s",
                                 "t_refactor_median_s"]].median()
    measured = rows[rows["k"].astype(float) > 1].dropna(subset=["t_total_k_s"])
    measured = measured.assign(k=measured["k"].astype(int)).groupby(keys + ["k"])["t_total_k_s"] \
        .agg(["median", "min", "max"])
    measured_keys = set(measured.index.droplevel("k")) if len(measured) else set()
    ks = np.unique(np.round(np.logspace(0, np.log10(config.k_max), 40)))
    curves = amortized_time(phases, ks)
    datasets = dataset_order(rows)
    backends = sorted(set(rows["backend"]))
    style = {b: LINESTYLES[i % len(LINESTYLES)] for i, b in enumerate(backends)}
    sizes = rows.groupby("dataset")["n"].first()
    cols = min(3, len(datasets))
    nrows = int(np.ceil(len(datasets) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.4 * cols, 3.6 * nrows), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets):
        for (d, ordering, backend), curve in curves.loc[[dataset]].iterrows():
            label = ordering if len(backends) == 1 else f"{ordering} · {backend}"
            ax.plot(ks, curve.to_numpy(), style[backend], color=color_of(ordering), label=label, linewidth=1.2)
            if (d, ordering, backend) in measured_keys:
                points = measured.loc[(d, ordering, backend)]
                t = points["median"].to_numpy()
                ax.errorbar(points.index.to_numpy(), t, fmt="o", color=color_of(ordering), markersize=4,
                            yerr=np.vstack([t - points["min"].to_numpy(), points["max"].to_numpy() - t]),
                            elinewidth=0.7, capsize=1.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("k factorizations (one ordering and analysis)")
        ax.set_ylabel("end-to-end time [s]")
        ax.set_title(dataset_label(dataset, sizes[dataset], " · "), fontsize=8)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    fig.suptitle("Amortization, k factorizations on one ordering and analysis. Lines: computed from the median "
                 "measured phases,\nt_order + t_analyze + (t_factor + t_solve) + (k−1)·(t_refactor + t_solve) "
                 "(t_refactor: median of the later factorizations where measured, else t_factor);\n"
                 "dots: t_total_k measured end to end with k factorizations (runs with k > 1; median, bars: "
                 "min–max)", fontsize=9)
    fig.tight_layout()
    legend_outside(fig, *axes.flat[0].get_legend_handles_labels())
    return fig


def fig_f_gpu_speedup(frame: pd.DataFrame, config: FigureConfig):
    if frame.empty:
        raise Skip(f"no GPU result files match {', '.join(config.gpu_results)} (the cudss study writes them)")
    panels = [("t_total_s", "single factorization (t_total)", gpu_speedups(frame, "t_total_s"))]
    try:
        multi = gpu_speedups(frame, "t_total_k_s")
        multi = multi[multi["k"] > 1]
        if len(multi):
            panels.append(("t_total_k_s", "k factorizations (t_total_k)", multi))
    except Skip:
        pass
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), squeeze=False)
    for ax, (_column, title, table) in zip(axes.flat, panels):
        configurations = sorted(set(table["configuration"]))
        for i, (configuration, k) in enumerate(sorted(set(zip(table["configuration"], table["k"])))):
            sub = table[(table["configuration"] == configuration) & (table["k"] == k)].sort_values(["n", "dataset"])
            ordering = sub["ordering"].iloc[0]
            color = color_of(ordering if ordering != "native" else "cudss-" + configuration)
            marker = "osD^v<>"[configurations.index(configuration) % 7]
            label = configuration if k == 1 or len(set(table["k"])) == 1 else f"{configuration}, k={k}"
            # A line joins only datasets of one family (one generator at several sizes); a lone
            # dataset of its family is a point.
            for j, (_family, part) in enumerate(sub.groupby(sub["dataset"].map(family_of), sort=True)):
                speedup = part["speedup"].to_numpy()
                ax.errorbar(part["n"], speedup, fmt=("-" if len(part) > 1 else "") + marker, color=color,
                            label=label if j == 0 else None, markersize=4, linewidth=1, elinewidth=0.7, capsize=1.5,
                            yerr=np.vstack([speedup - part["speedup_min"].to_numpy(),
                                            part["speedup_max"].to_numpy() - speedup]))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n (unknowns)")
        ax.set_ylabel("speedup over cuDSS's default (above 1: faster)")
        ax.set_title(title, fontsize=9)
        legend_outside(ax, fontsize=6)
    fig.suptitle("GPU: end-to-end speedup over cuDSS's own reordering (median over repeats; bars: slowest/fastest "
                 "repeats)", fontsize=9)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class FigureSpec:
    builder: Callable
    inputs: str  # "results" or "gpu_results"
    description: str


#: The named figure set, in the paper's order.
FIGURE_SET: dict[str, FigureSpec] = {
    "a_order_time_vs_n": FigureSpec(fig_a_order_time, "results",
                                    "(a) ordering time vs n, log-log, one line per ordering"),
    "b_fill_flops_vs_baseline": FigureSpec(fig_b_relative_fill, "results",
                                           "(b) nnz(L) and flops relative to the baseline ordering, per dataset"),
    "c_phase_breakdown": FigureSpec(fig_c_phases, "results",
                                    "(c) stacked per-phase time per ordering, one panel per back-end and dataset"),
    "d_performance_profiles": FigureSpec(fig_d_profiles, "results",
                                         "(d) Dolan–Moré performance profiles of nnz_L, flops and t_total"),
    "e_amortization": FigureSpec(fig_e_amortization, "results",
                                 "(e) end-to-end time vs number of factorizations k, per dataset"),
    "f_gpu_speedup_vs_n": FigureSpec(fig_f_gpu_speedup, "gpu_results",
                                     "(f) GPU end-to-end speedup over cuDSS's default reordering vs n"),
}


# --------------------------------------------------------------------------------------------------
# Building the set
# --------------------------------------------------------------------------------------------------


def write_sidecar(out_dir: Path, name: str, spec: FigureSpec, inputs: list[Path], files: list[Path],
                  rows: int) -> Path:
    """``NAME.json``: what the figure shows, the result files it read (sha256) and what it wrote."""
    sidecar = {
        "figure": name,
        "description": spec.description,
        "inputs": [{"path": p.as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in inputs],
        "rows_read": rows,
        "outputs": {f.name: sha256_file(f) for f in files},
        "matplotlib": matplotlib.__version__,
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(sidecar, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def build_figures(config: FigureConfig) -> list[Outcome]:
    """Every figure of ``config.names`` (default: all) from the result files; nothing is computed
    beyond reading them. Returns one outcome per figure, in the set's order."""
    names = config.names or tuple(FIGURE_SET)
    inputs = {"results": resolve(config.results), "gpu_results": resolve(config.gpu_results)}
    frames = {key: read_frames(paths) for key, paths in inputs.items() if any(FIGURE_SET[n].inputs == key
                                                                             for n in names)}
    out_dir = Path(config.out_dir)
    outcomes = []
    for name in names:
        spec = FIGURE_SET[name]
        paths, frame = inputs[spec.inputs], frames[spec.inputs]
        if not paths:
            patterns = config.results if spec.inputs == "results" else config.gpu_results
            outcomes.append(Outcome(name, skipped=f"no result files match {', '.join(patterns)}" if patterns
                                    else f"the suite names no {spec.inputs} ([figures] {spec.inputs})"))
            continue
        with plt.style.context(FIGURE_STYLE):
            try:
                fig = spec.builder(frame, config)
            except Skip as why:
                plt.close("all")
                outcomes.append(Outcome(name, skipped=str(why)))
                continue
            files = save(fig, out_dir, name)
        files.append(write_sidecar(out_dir, name, spec, paths, files, len(frame)))
        outcomes.append(Outcome(name, files=files))
    return outcomes


__all__ = ["FIGURE_SET", "FigureConfig", "FigureConfigError", "Outcome", "Skip", "amortized_time",
           "build_figures", "config_from_suite", "cudss_configuration", "gpu_speedups", "load_config",
           "performance_profile", "performance_ratios"]
