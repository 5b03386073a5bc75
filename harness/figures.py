"""Every figure (and the GPU study's table) permbench draws, in one registry, and the sets that
commands write. Figures are built from stored result rows only: nothing here runs a benchmark or
imports a plug-in (a plug-in's parameters are the row's ``ordering_params``/``backend_params``).

* ``REGISTRY``: name -> ``Entry`` (builder, one-line description, kind). A builder takes the rows
  (a DataFrame of one or more result files, with ``result_file``) and style arguments — title,
  size, baseline, which panels or configurations — and returns a matplotlib figure (kind
  ``figure``: PNG + PDF) or Markdown text (kind ``table``); it raises ``Skip`` when its data is absent.
  ``permbench figures --list`` prints the registry.
* Sets: ``report_set`` (``permbench report`` and its report.html), ``paper_set`` (``permbench
  figures -c configs/paper.toml``, the suite's ``[figures]`` table) and ``gpu_set`` (the cuDSS
  study, ``permbench study gpu-figures``): lists of ``Item`` (output name, registered figure, its
  style arguments, which result files it reads).

``permbench figures -c configs/paper.toml`` reads the suite file's ``[figures]`` table::

    [figures]
    results = ["results/paper/paper.parquet"]   # result files or glob patterns (default: the suite's out)
    gpu_results = ["results/gpu/*.parquet"]     # for (f); the cudss study writes them
    out_dir = "results/figures"
    set = ["a_order_time_vs_n", ...]            # default: every item of the paper set
    baseline = "metis"                          # the ordering (b) is relative to
    k_max = 100                                 # the largest k of (e)

Every output ``NAME`` gets ``NAME.json`` beside it (the sidecar: sha256 and size of every result
file it read, and of the files written). Same result files, byte-identical outputs (``plotting.py``).
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
from ..core.provenance import sha256_file  # noqa: E402
from .plotting import (DEFAULT_1T, DEFAULT_MT, FIGURE_STYLE, PHASE_COLORS, PHASES, Skip, amortized_time,  # noqa: E402
                       color_of, configuration_order, configuration_style, cudss_rows, dataset_label, dataset_order,
                       family_of, gpu_speedups, legend_outside, metric_table, numeric_rows, ok_rows, once_per_repeat,
                       panel_grid, per_ordering, performance_profile, performance_ratios, row_extras, save)
from .results import read_results  # noqa: E402

LINESTYLES = ["-", "--", ":", "-."]


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable  # build(rows, **style) -> matplotlib Figure (kind "figure") or Markdown text ("table")
    description: str
    kind: str = "figure"


REGISTRY: dict[str, Entry] = {}


def register(name: str, description: str, kind: str = "figure"):
    """Add the decorated builder to ``REGISTRY`` under ``name``."""
    def add(build: Callable) -> Callable:
        if name in REGISTRY:
            raise ValueError(f"figure {name!r} registered twice")
        REGISTRY[name] = Entry(name, build, description, kind)
        return build
    return add


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------


def _grouped_bars(ax, table: pd.DataFrame, sizes: pd.Series, legend: bool = True, low=None, high=None):
    """Bars of medians; ``low``/``high`` (same shape: min and max over repeats) draw the spread."""
    datasets, orderings = list(table.index), list(table.columns)
    width = 0.8 / max(1, len(orderings))
    x = np.arange(len(datasets))
    for i, o in enumerate(orderings):
        values = table[o].to_numpy(dtype=float)
        yerr = None
        if low is not None and high is not None:
            yerr = np.vstack([values - low[o].to_numpy(dtype=float), high[o].to_numpy(dtype=float) - values])
            yerr = np.nan_to_num(yerr, nan=0.0)
        ax.bar(x + (i - (len(orderings) - 1) / 2) * width, values, width, label=o, color=color_of(o),
               yerr=yerr, error_kw={"elinewidth": 0.7, "capsize": 1.5, "ecolor": "#333333"})
    ax.set_xticks(x, [dataset_label(d, sizes[d]) for d in datasets], fontsize=7, rotation=30, ha="right",
                  rotation_mode="anchor")
    if legend:  # outside the axes: bars of any height stay visible
        legend_outside(ax, title="ordering")


@register("order_time", "ordering time per dataset, one bar per ordering (median, min–max)")
def order_time(rows, title: str | None = None, size: tuple | None = None, log: bool = True):
    once = once_per_repeat(rows)
    table = per_ordering(once, "t_order_s")
    low, high = per_ordering(once, "t_order_s", "min"), per_ordering(once, "t_order_s", "max")
    fig, ax = plt.subplots(figsize=size or (max(6, 1.2 * len(table)), 4))
    _grouped_bars(ax, table, once.groupby("dataset")["n"].first(), low=low, high=high)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel("ordering time t_order [s]" + (" (log scale)" if log else ""))
    ax.set_title(title or "Time to compute the ordering, per dataset (median over repeats, bars: min–max)")
    return fig


@register("order_time_vs_n", "ordering time against n, log-log; lines join one dataset family per ordering")
def order_time_vs_n(rows, title: str | None = None, size: tuple = (6, 4.5)):
    from matplotlib.lines import Line2D

    ok = once_per_repeat(rows).dropna(subset=["n"])
    med = ok.groupby(["ordering", "dataset"]).agg(n=("n", "first"), t=("t_order_s", "median"),
                                                   lo=("t_order_s", "min"), hi=("t_order_s", "max")).reset_index()
    med["family"] = [family_of(d) for d in med["dataset"]]
    families = sorted(set(med["family"]))
    markers = {f: "osD^v<>pPhX*"[i % 12] for i, f in enumerate(families)}
    fig, ax = plt.subplots(figsize=size)
    for (ordering, family), sub in sorted(med.groupby(["ordering", "family"])):
        sub = sub.sort_values("n")
        t = sub["t"].to_numpy()
        ax.errorbar(sub["n"], t, yerr=np.vstack([t - sub["lo"].to_numpy(), sub["hi"].to_numpy() - t]),
                    fmt=markers[family] + ("-" if len(sub) > 1 else ""), color=color_of(ordering), markersize=4,
                    elinewidth=0.7, capsize=1.5, linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("matrix size n (unknowns)")
    ax.set_ylabel("ordering time t_order [s]")
    ax.set_title(title or "Ordering time versus problem size (log-log; median, bars: min–max)")
    orderings = sorted(set(med["ordering"]))
    colour_legend = legend_outside(ax, [Line2D([], [], color=color_of(o), linewidth=2) for o in orderings],
                                   orderings, title="ordering")
    ax.add_artist(colour_legend)
    ax.legend([Line2D([], [], color="#555555", marker=markers[f], linestyle="none") for f in families],
              [dataset_label(f) for f in families], loc="upper left", bbox_to_anchor=(1.01, 0.0), fontsize=6,
              title="dataset family (lines: one family)", title_fontsize=7)
    return fig


@register("relative_fill", "nnz(L) and flops relative to a baseline ordering, per dataset")
def relative_fill(rows, baseline: str = "metis", title: str | None = None, size: tuple | None = None):
    ok = ok_rows(rows)
    if ok.empty or baseline not in set(ok.dropna(subset=["nnz_L"])["ordering"]):
        raise Skip(f"no ok rows of the baseline ordering {baseline!r} with nnz_L")
    fig, axes = plt.subplots(2, 1, figsize=size or (max(6, 1.2 * ok["dataset"].nunique()), 7), sharex=True)
    sizes = ok.groupby("dataset")["n"].first()
    for ax, metric, label in ((axes[0], "nnz_L", "nnz(L)"), (axes[1], "flops", "flops")):
        table = per_ordering(ok, metric)
        if baseline not in table.columns:
            raise Skip(f"no ok rows of the baseline ordering {baseline!r} with {metric}")
        # One legend beside the upper panel serves both.
        _grouped_bars(ax, table.div(table[baseline], axis=0), sizes, legend=ax is axes[0])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel(f"{label} / {label} of {baseline} (log)")
    axes[0].set_title(title or f"Fill and flops of the Cholesky factor relative to {baseline} (lower is better)")
    return fig


#: The GPU study's names of the phases: a native row's t_order_s is cuDSS's own reordering.
GPU_PHASE_LABELS = ("ordering / cuDSS reordering", "analysis (tree + cuDSS reorder + symbolic)", "factorization",
                    "solve")


@register("phase_breakdown", "stacked per-phase time (order, analyze, factor, solve) per ordering or cuDSS "
                             "configuration, one panel per back-end and dataset")
def phase_breakdown(rows, bars: str = "ordering", min_n: int = 0, phase_labels: tuple | None = None,
                    title: str | None = None, size: tuple = (4.2, 3.4), columns: int = 3):
    """``bars``: ``ordering`` (one panel per back-end × dataset) or ``configuration`` (cuDSS rows,
    one panel per dataset, one bar per way of running cuDSS). ``min_n``: only datasets this large."""
    if bars == "configuration":
        ok = cudss_rows(rows)
        ok = ok.assign(_backend="", _bar=ok["configuration"])
        bar_order = configuration_order(ok["_bar"])
    else:
        ok = numeric_rows(rows)
        if ok.empty:
            raise Skip("no ok rows of a numeric back-end (no t_factor_s)")
        ok = ok.assign(_backend=ok["backend"], _bar=ok["ordering"])
        bar_order = sorted(set(ok["_bar"]))
    ok = ok[ok["n"] >= min_n]
    if ok.empty:
        raise Skip(f"no dataset with n >= {min_n:,}")
    sizes = ok.groupby("dataset")["n"].first()
    panels = sorted(set(zip(ok["_backend"], ok["dataset"])), key=lambda p: (p[0], sizes[p[1]], p[1]))
    labels = phase_labels or [label for _, label in PHASES]
    phases = [p for p, _ in PHASES]
    fig, axes = panel_grid(len(panels), size, columns)
    for ax, (backend, dataset) in zip(axes, panels):
        cell = ok[(ok["_backend"] == backend) & (ok["dataset"] == dataset)]
        med = cell.groupby("_bar")[phases].median()
        med = med.reindex([b for b in bar_order if b in med.index])
        # The spread of the stack: min and max over repeats of the sum of the phases it shows.
        summed = cell.assign(_sum=cell[phases].fillna(0).sum(axis=1)).groupby("_bar")["_sum"]
        x = np.arange(len(med))
        bottom = np.zeros(len(med))
        for phase, label, color in zip(phases, labels, PHASE_COLORS):
            values = med[phase].fillna(0).to_numpy()
            ax.bar(x, values, bottom=bottom, label=label, color=color)
            bottom += values
        low, high = summed.min().reindex(med.index).to_numpy(), summed.max().reindex(med.index).to_numpy()
        ax.errorbar(x, bottom, yerr=np.clip(np.vstack([bottom - low, high - bottom]), 0, None), fmt="none",
                    ecolor="#333333", elinewidth=0.7, capsize=2, label="min–max of the sum")
        ax.set_xticks(x, list(med.index), rotation=45 if bars == "ordering" else 60, ha="right",
                      rotation_mode="anchor", fontsize=7)
        label = dataset_label(dataset, sizes[dataset], " · ")
        ax.set_title(f"{backend} · {label}" if backend else label, fontsize=8)
        ax.set_ylabel("time [s]")
    fig.suptitle(title or "End-to-end time by phase: order + analyze + factor + solve (median over repeats)")
    fig.tight_layout()
    legend_outside(fig, *axes[0].get_legend_handles_labels(), title="phase")
    return fig


@register("performance_profiles", "Dolan–Moré performance profiles of nnz_L, flops and t_total per back-end")
def performance_profiles(rows, title: str | None = None, size: tuple = (4.6, 4.0)):
    panels = [(metric, label, ok_rows(rows)) for metric, label in (("nnz_L", "nnz(L)"), ("flops", "flops"))]
    numeric = numeric_rows(rows)
    for backend in sorted(set(numeric["backend"])) if len(numeric) else []:
        panels.append(("t_total_s", f"t_total on {backend}", numeric[numeric["backend"] == backend]))
    tables = [(label, metric_table(part, metric)) for metric, label, part in panels if len(part)]
    tables = [(label, t) for label, t in tables if t.shape[0] >= 2 and t.shape[1] >= 2]
    if not tables:
        raise Skip("performance profiles need at least 2 datasets and 2 orderings with ok rows")
    fig, axes = plt.subplots(1, len(tables), figsize=(size[0] * len(tables), size[1]), squeeze=False)
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
    fig.suptitle(title or "Dolan–Moré performance profiles: ρ(τ) = fraction of datasets where the ordering's "
                 "value ≤ τ × the best (higher and further left is better)", fontsize=9)
    fig.tight_layout()
    legend_outside(fig, *axes.flat[0].get_legend_handles_labels(), title="ordering")
    return fig


@register("amortization", "end-to-end time against the number of factorizations k, one panel per dataset")
def amortization(rows, k_max: int = 100, title: str | None = None, size: tuple = (4.4, 3.6), columns: int = 3):
    rows = numeric_rows(rows)
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
    ks = np.unique(np.round(np.logspace(0, np.log10(k_max), 40)))
    curves = amortized_time(phases, ks)
    datasets = dataset_order(rows)
    backends = sorted(set(rows["backend"]))
    style = {b: LINESTYLES[i % len(LINESTYLES)] for i, b in enumerate(backends)}
    sizes = rows.groupby("dataset")["n"].first()
    fig, axes = panel_grid(len(datasets), size, columns)
    for ax, dataset in zip(axes, datasets):
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
    fig.suptitle(title or "Amortization, k factorizations on one ordering and analysis. Lines: computed from the "
                 "median measured phases,\nt_order + t_analyze + (t_factor + t_solve) + (k−1)·(t_refactor + t_solve) "
                 "(t_refactor: median of the later factorizations where measured, else t_factor);\n"
                 "dots: t_total_k measured end to end with k factorizations (runs with k > 1; median, bars: "
                 "min–max)", fontsize=9)
    fig.tight_layout()
    legend_outside(fig, *axes[0].get_legend_handles_labels())
    return fig


#: (column, baseline configuration) per panel of the GPU speedup figure.
GPU_PANELS = (("t_total_s", DEFAULT_MT), ("t_total_k_s", DEFAULT_MT))


@register("gpu_speedup_vs_n", "end-to-end speedup of each cuDSS configuration over a cuDSS default against n")
def gpu_speedup_vs_n(rows, panels: tuple = GPU_PANELS, configurations: tuple | None = None,
                     title: str | None = None, size: tuple = (5.6, 4.4)):
    """One panel per (column, baseline) of ``panels``: ``t_total_s`` (one factorization) or
    ``t_total_k_s`` (k > 1 factorizations). ``configurations``: only these (default: all)."""
    tables, skipped = [], []
    for column, baseline in panels:
        try:
            table = gpu_speedups(rows, column, baseline)
        except Skip as why:
            skipped.append(why)
            continue
        if column == "t_total_k_s":
            table = table[table["k"] > 1]
        if configurations is not None:
            table = table[table["configuration"].isin(configurations)]
        if len(table):
            tables.append((column, baseline, table))
    if not tables:
        raise skipped[0] if skipped else Skip("no cuDSS configuration to plot")
    fig, axes = plt.subplots(1, len(tables), figsize=(size[0] * len(tables), size[1]), squeeze=False)
    for ax, (column, baseline, table) in zip(axes.flat, tables):
        configs = configuration_order(table["configuration"])
        for configuration, k in sorted(set(zip(table["configuration"], table["k"])),
                                       key=lambda ck: (configs.index(ck[0]), ck[1])):
            sub = table[(table["configuration"] == configuration) & (table["k"] == k)].sort_values(["n", "dataset"])
            color, linestyle, width = configuration_style(configuration)
            marker = "osD^v<>"[configs.index(configuration) % 7]
            label = configuration if k == 1 or len(set(table["k"])) == 1 else f"{configuration}, k={k}"
            # A line joins only datasets of one family (one generator at several sizes); a lone
            # dataset of its family is a point.
            for j, (_family, part) in enumerate(sub.groupby(sub["dataset"].map(family_of), sort=True)):
                speedup = part["speedup"].to_numpy()
                ax.errorbar(part["n"], speedup, fmt=marker, linestyle=linestyle if len(part) > 1 else "none",
                            color=color, label=label if j == 0 else None, markersize=4, linewidth=width,
                            elinewidth=0.7, capsize=1.5,
                            yerr=np.vstack([speedup - part["speedup_min"].to_numpy(),
                                            part["speedup_max"].to_numpy() - speedup]))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n (unknowns)")
        ax.set_ylabel(f"speedup over {baseline} (above 1: faster)")
        what = "single factorization (t_total)" if column == "t_total_s" else "k factorizations (t_total_k)"
        ax.set_title(f"{what} over {baseline}", fontsize=9)
        legend_outside(ax, fontsize=6)
    fig.suptitle(title or "GPU: end-to-end speedup over cuDSS's own reordering (median over repeats; bars: "
                 "slowest/fastest repeats)", fontsize=9)
    fig.tight_layout()
    return fig


@register("cudss_table", "per dataset and cuDSS configuration: phases, totals for k=1 and k, fill, ratios to "
                         "both cuDSS defaults (Markdown)", kind="table")
def cudss_table(rows, min_n: int = 0, k: int = 10, title: str | None = None) -> str:
    """The single-factorization columns come from every ok row (a run with k factorizations starts
    with exactly the calls of a k=1 run: analysis, FACTORIZATION, SOLVE); ``total k`` and
    ``refactor`` from the rows with ``k`` factorizations."""
    ok = cudss_rows(rows)
    keys = ["dataset", "configuration"]
    cols = ["n", "t_order_s", "t_analyze_s", "t_factor_s", "t_solve_s", "t_total_s", "nnz_L", "backend_nnz_L",
            "residual"]
    med = ok.groupby(keys)[cols].median()
    med["runs"] = ok.groupby(keys).size()
    multi = ok[ok["k"] == k].groupby(keys)[["t_total_k_s", "t_refactor_median_s"]].median()
    med = med.join(multi.rename(columns={"t_total_k_s": "t_total_multi_s"}), how="left").reset_index()
    def f(value, spec=".3f"):
        return "–" if value is None or value != value else format(value, spec)

    lines = []
    for d in dataset_order(med):
        sub = med[med.dataset == d].set_index("configuration")
        n = int(sub["n"].iloc[0])
        if n < min_n:
            continue

        def ratio(value, base, col):
            if base not in sub.index or value != value or sub.loc[base, col] != sub.loc[base, col]:
                return "–"
            return f"{value / sub.loc[base, col]:.2f}"

        lines += [f"\n### {d} (n = {n:,})\n",
                  "| configuration | runs | order | analysis | factor | refactor | solve | total k=1 | ÷ default MT | "
                  f"÷ default 1T | total k={k} | ÷ default MT (k={k}) | cuDSS LU nnz | nnz(L) | residual |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for config, r in sub.sort_values("t_total_s").iterrows():
            lines.append(
                f"| {config} | {int(r.runs)} | {f(r.t_order_s)} | {f(r.t_analyze_s)} | {f(r.t_factor_s)} | "
                f"{f(r.t_refactor_median_s)} | {f(r.t_solve_s)} | {f(r.t_total_s)} | "
                f"{ratio(r.t_total_s, DEFAULT_MT, 't_total_s')} | {ratio(r.t_total_s, DEFAULT_1T, 't_total_s')} | "
                f"{f(r.t_total_multi_s)} | {ratio(r.t_total_multi_s, DEFAULT_MT, 't_total_multi_s')} | "
                f"{f(r.backend_nnz_L, ',.0f')} | {f(r.nnz_L, ',.0f')} | {f(r.residual, '.1e')} |")
    if title is None:
        provenance = row_extras(ok, "backend_provenance")
        versions = ", ".join(sorted({str(p["cudss"]) for p in provenance if p.get("cudss")})) or "?"
        gpus = ", ".join(sorted({str(p["gpu"]) for p in provenance if p.get("gpu")})) or "?"
        threads = ", ".join(sorted({str(int(t)) for t in ok["threads"].dropna()})) if "threads" in ok else "?"
        files = ", ".join(sorted(set(ok["result_file"]))) if "result_file" in ok else "the result files"
        title = (f"cuDSS {versions} on {gpus} ({threads or '?'} host threads), from {files}. Times in seconds, "
                 f"medians over `runs`; k=1 columns are the first factorization and solve of each run, `refactor` "
                 f"the median of the {k - 1} REFACTORIZATIONs that follow. Ratios are t_total(configuration) / "
                 "t_total(cuDSS default, with or without its multithreading layer); below 1 is faster.")
    return title + "\n" + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Sets: what each command writes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One output of a set: its file name, the registered figure drawn, that figure's style
    arguments, and which result files it reads (a suite's ``results`` or ``gpu_results``)."""

    name: str
    figure: str
    options: dict = field(default_factory=dict)
    inputs: str = "results"
    description: str = ""  # default: the registered figure's

    def describe(self) -> str:
        return self.description or REGISTRY[self.figure].description


def report_set(baseline: str = "metis") -> list[Item]:
    """``permbench report``: the figures of one run (and its report.html)."""
    return [Item("order_time", "order_time"),
            Item(f"fill_vs_{baseline}", "relative_fill", {"baseline": baseline}),
            Item("time_breakdown", "phase_breakdown"),
            Item("order_time_vs_n", "order_time_vs_n"),
            Item("performance_profiles", "performance_profiles")]


def paper_set(baseline: str = "metis", k_max: int = 100) -> list[Item]:
    """``permbench figures -c configs/paper.toml``: the paper's figures (a)–(f), in order."""
    return [Item("a_order_time_vs_n", "order_time_vs_n", description="(a) ordering time vs n, log-log, one line "
                 "per ordering"),
            Item("b_fill_flops_vs_baseline", "relative_fill", {"baseline": baseline},
                 description="(b) nnz(L) and flops relative to the baseline ordering, per dataset"),
            Item("c_phase_breakdown", "phase_breakdown", description="(c) stacked per-phase time per ordering, one "
                 "panel per back-end and dataset"),
            Item("d_performance_profiles", "performance_profiles", description="(d) Dolan–Moré performance "
                 "profiles of nnz_L, flops and t_total"),
            Item("e_amortization", "amortization", {"k_max": k_max}, description="(e) end-to-end time vs number "
                 "of factorizations k, per dataset"),
            Item("f_gpu_speedup_vs_n", "gpu_speedup_vs_n", inputs="gpu_results", description="(f) GPU end-to-end "
                 "speedup over cuDSS's default reordering vs n")]


def gpu_set(min_n: int = 500_000, table_min_n: int = 0) -> list[Item]:
    """The cuDSS study (``permbench study gpu-figures``): phases per configuration on the datasets
    with n >= ``min_n``, speedups over both defaults, and the table."""
    return [Item("cudss_phases", "phase_breakdown",
                 {"bars": "configuration", "min_n": min_n, "phase_labels": GPU_PHASE_LABELS,
                  "title": "cuDSS: time per phase, single factorization (first factorization and solve)",
                  "size": (5.2, 4.4)}),
            Item("cudss_speedup_vs_n", "gpu_speedup_vs_n",
                 {"panels": (("t_total_s", DEFAULT_MT), ("t_total_s", DEFAULT_1T), ("t_total_k_s", DEFAULT_MT)),
                  "title": "End-to-end speedup over cuDSS's own reordering (above 1: faster than that default; "
                           "median over repeats, bars: slowest/fastest repeats)"}),
            Item("cudss_table", "cudss_table", {"min_n": table_min_n})]


#: Every set, by the command that writes it.
SETS = {"report": report_set, "paper": paper_set, "gpu": gpu_set}


def registry_lines() -> list[str]:
    """The registry and the sets drawn from it, as ``permbench figures --list`` prints them."""
    lines = [f"{name:22s} {entry.kind:6s} {entry.description}" for name, entry in sorted(REGISTRY.items())]
    for set_name, make in SETS.items():
        lines.append(f"\nset {set_name}: " + ", ".join(f"{i.name} ({i.figure})" for i in make()))
    return lines


#: The items a suite's ``[figures] set`` may name: the paper set.
FIGURE_SET: dict[str, Item] = {item.name: item for item in paper_set()}


# --------------------------------------------------------------------------------------------------
# Writing a set
# --------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one output: the files written, or the reason it was skipped."""

    name: str
    files: list[Path] = field(default_factory=list)
    skipped: str | None = None


def resolve(patterns) -> list[Path]:
    """The existing files named by paths or glob patterns (relative to the working directory), sorted."""
    found: set[str] = set()
    for pattern in patterns:
        found.update(p for p in glob.glob(pattern) if Path(p).is_file())
    return [Path(p) for p in sorted(found)]


def read_frames(paths) -> pd.DataFrame:
    """The rows of every result file, with the file they came from as ``result_file``."""
    frames = []
    for path in map(Path, paths):
        frame, _provenance = read_results(path)
        frames.append(frame.assign(result_file=path.as_posix()))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def draw(item: Item, rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Build one item from ``rows`` and write it (PNG + PDF, or Markdown); raises Skip."""
    entry = REGISTRY[item.figure]
    with plt.style.context(FIGURE_STYLE):
        try:
            built = entry.build(rows, **item.options)
        except Skip:
            plt.close("all")
            raise
        if entry.kind == "table":
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{item.name}.md"
            path.write_text(built, encoding="utf-8")
            return [path]
        return save(built, out_dir, item.name)


def write_sidecar(out_dir: Path, item: Item, inputs: list[Path], files: list[Path], rows: int) -> Path:
    """``NAME.json``: what the output shows, the result files it read (sha256) and what it wrote."""
    sidecar = {
        "figure": item.name,
        "description": item.describe(),
        "inputs": [{"path": p.as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in inputs],
        "rows_read": rows,
        "outputs": {f.name: sha256_file(f) for f in files},
        "matplotlib": matplotlib.__version__,
    }
    path = out_dir / f"{item.name}.json"
    path.write_text(json.dumps(sidecar, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def write_set(items: list[Item], inputs: dict[str, list[Path]], out_dir, sidecars: bool = True,
              missing: dict[str, str] | None = None, frames: dict[str, pd.DataFrame] | None = None) -> list[Outcome]:
    """Every item from the result files of its ``inputs`` key; an item whose files are absent or
    whose data is missing is skipped with the reason (``missing[key]`` says why a key has no files).
    ``frames``: the rows of those files where the caller has read them already."""
    out_dir = Path(out_dir)
    frames = dict(frames or {})
    for key, paths in inputs.items():
        if key not in frames and any(i.inputs == key for i in items):
            frames[key] = read_frames(paths)
    outcomes = []
    for item in items:
        paths = inputs.get(item.inputs, [])
        if not paths:
            outcomes.append(Outcome(item.name, skipped=(missing or {}).get(item.inputs, f"no {item.inputs} files")))
            continue
        try:
            files = draw(item, frames[item.inputs], out_dir)
        except Skip as why:
            outcomes.append(Outcome(item.name, skipped=str(why)))
            continue
        if sidecars:
            files.append(write_sidecar(out_dir, item, paths, files, len(frames[item.inputs])))
        outcomes.append(Outcome(item.name, files=files))
    return outcomes


# --------------------------------------------------------------------------------------------------
# The paper set from a suite's [figures] table
# --------------------------------------------------------------------------------------------------

#: A suite's figures read only the files it names: no GPU result files unless [figures] gpu_results lists them.
DEFAULT_GPU_RESULTS: tuple[str, ...] = ()
DEFAULT_OUT_DIR = "results/figures"
CONFIG_KEYS = {"results", "gpu_results", "out_dir", "set", "baseline", "k_max"}


class FigureConfigError(ValueError):
    """A ``[figures]`` table that cannot be used: the message names the file and the key."""


@dataclass(frozen=True)
class FigureConfig:
    results: tuple[str, ...]
    gpu_results: tuple[str, ...] = DEFAULT_GPU_RESULTS
    out_dir: Path = Path(DEFAULT_OUT_DIR)
    names: tuple[str, ...] = ()  # empty: every item of the paper set
    baseline: str = "metis"
    k_max: int = 100


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


def build_figures(config: FigureConfig) -> list[Outcome]:
    """Every item of the paper set named by ``config.names`` (default: all) from the result files;
    nothing is computed beyond reading them. Returns one outcome per item, in the set's order."""
    names = config.names or tuple(FIGURE_SET)
    items = [i for i in paper_set(config.baseline, config.k_max) if i.name in names]
    patterns = {"results": config.results, "gpu_results": config.gpu_results}
    missing = {key: f"no result files match {', '.join(p)}" if p else f"the suite names no {key} ([figures] {key})"
               for key, p in patterns.items()}
    return write_set(items, {key: resolve(p) for key, p in patterns.items()}, config.out_dir, missing=missing)


__all__ = ["FIGURE_SET", "REGISTRY", "SETS", "Entry", "FigureConfig", "FigureConfigError", "Item", "Outcome", "Skip",
           "build_figures", "config_from_suite", "draw", "gpu_set", "load_config", "paper_set", "register",
           "registry_lines", "report_set", "write_set"]
