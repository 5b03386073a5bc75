"""Figures from a result file (never from running anything): PNG and PDF, deterministic bytes.

Each ordering keeps one colour in every figure; categories are sorted; files carry no timestamps,
so the same results give byte-identical figures.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .results import read_results  # noqa: E402

#: Fixed colours: an ordering looks the same in every figure and every paper.
ORDERING_COLORS = {
    "natural": "#9e9e9e", "rcm": "#bcbd22", "amd": "#1f77b4", "metis": "#d62728",
    "cholmod-amd": "#17becf", "cholmod-metis": "#ff7f0e", "cholmod-nesdis": "#8c564b",
    "patch": "#2ca02c", "homa": "#9467bd", "cudss": "#e377c2", "pardiso": "#7f7f7f",
}
_FALLBACK = plt.get_cmap("tab20").colors
PHASES = [("t_order_s", "ordering"), ("t_analyze_s", "analysis"), ("t_factor_s", "factorization"),
          ("t_solve_s", "solve")]
PHASE_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
STYLE = {"figure.dpi": 100, "savefig.dpi": 150, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3,
         "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8, "svg.hashsalt": "permbench",
         "pdf.fonttype": 42}


def color_of(ordering: str) -> str:
    base = ordering.split("[")[0]
    if base in ORDERING_COLORS:
        return ORDERING_COLORS[base]
    return _FALLBACK[sum(map(ord, ordering)) % len(_FALLBACK)]


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """Write PNG and PDF without timestamps or software tags, so the bytes depend only on the data."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    fig.savefig(png, metadata={"Software": None}, bbox_inches="tight")
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
                bbox_inches="tight")
    plt.close(fig)
    return [png, pdf]


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


def _per_ordering(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Median of ``value`` over repeats and back-ends: rows = dataset (by n), columns = ordering."""
    ok = _ok(frame).dropna(subset=[value])
    table = ok.groupby(["dataset", "ordering"])[value].median().unstack("ordering")
    sizes = ok.groupby("dataset")["n"].first()
    return table.loc[sorted(table.index, key=lambda d: (sizes[d], d)), sorted(table.columns)]


def _dataset_label(name: str, n) -> str:
    short = name.split("/")[-1] if name.startswith("file:") else name
    return f"{short}\nn={int(n):,}"


def _grouped_bars(ax, table: pd.DataFrame, sizes: pd.Series, legend: bool = True):
    datasets, orderings = list(table.index), list(table.columns)
    width = 0.8 / max(1, len(orderings))
    x = np.arange(len(datasets))
    for i, o in enumerate(orderings):
        ax.bar(x + (i - (len(orderings) - 1) / 2) * width, table[o].to_numpy(dtype=float), width,
               label=o, color=color_of(o))
    ax.set_xticks(x, [_dataset_label(d, sizes[d]) for d in datasets], fontsize=7, rotation=30, ha="right",
                  rotation_mode="anchor")
    if legend:  # outside the axes: bars of any height stay visible
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="ordering")


def fig_order_time(frame):
    table = _per_ordering(frame, "t_order_s")
    sizes = frame.groupby("dataset")["n"].first()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(table)), 4))
    _grouped_bars(ax, table, sizes)
    ax.set_yscale("log")
    ax.set_ylabel("ordering time t_order [s] (log scale)")
    ax.set_title("Time to compute the ordering, per dataset (median over repeats)")
    return fig


def fig_relative_fill(frame, baseline: str):
    fig, axes = plt.subplots(2, 1, figsize=(max(6, 1.2 * frame["dataset"].nunique()), 7), sharex=True)
    sizes = frame.groupby("dataset")["n"].first()
    for ax, metric, label in ((axes[0], "nnz_L", "nnz(L)"), (axes[1], "flops", "flops")):
        table = _per_ordering(frame, metric)
        if baseline not in table.columns:
            raise ValueError(f"no ok rows of the baseline ordering {baseline!r}; use --baseline")
        rel = table.div(table[baseline], axis=0)
        _grouped_bars(ax, rel, sizes, legend=ax is axes[0])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel(f"{label} / {label} of {baseline} (log)")
    axes[0].set_title(f"Fill and flops of the Cholesky factor relative to {baseline} (lower is better)")
    return fig


def fig_breakdown(frame):
    """Stacked per-phase time per ordering, one panel per numeric back-end × dataset."""
    ok = _ok(frame).dropna(subset=["t_factor_s"])
    if ok.empty:
        return None
    panels = sorted(ok.groupby(["backend", "dataset"]).groups, key=lambda k: (k[0], ok[ok["dataset"] == k[1]]["n"].iloc[0]))
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (backend, dataset) in zip(axes.flat, panels):
        cell = ok[(ok["backend"] == backend) & (ok["dataset"] == dataset)]
        med = cell.groupby("ordering")[[p for p, _ in PHASES]].median().sort_index()
        bottom = np.zeros(len(med))
        for (phase, label), color in zip(PHASES, PHASE_COLORS):
            values = med[phase].fillna(0).to_numpy()
            ax.bar(med.index, values, bottom=bottom, label=label, color=color)
            bottom += values
        ax.set_title(f"{backend} · {dataset} (n={int(cell['n'].iloc[0]):,})", fontsize=8)
        ax.set_ylabel("time [s]")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper left")
    fig.suptitle("End-to-end time by phase: order + analyze + factor + solve (median over repeats)")
    fig.tight_layout()
    return fig


def fig_time_vs_n(frame):
    ok = _ok(frame).dropna(subset=["t_order_s", "n"])
    med = ok.groupby(["ordering", "dataset"]).agg(n=("n", "first"), t=("t_order_s", "median")).reset_index()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for ordering, sub in sorted(med.groupby("ordering")):
        sub = sub.sort_values("n")
        ax.plot(sub["n"], sub["t"], "o-", label=ordering, color=color_of(ordering), markersize=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("matrix size n (unknowns)")
    ax.set_ylabel("ordering time t_order [s]")
    ax.set_title("Ordering time versus problem size (log-log)")
    ax.legend(ncols=2)
    return fig


def write_report(results_file, out_dir, baseline: str = "metis") -> list[Path]:
    frame, _prov = read_results(results_file)
    if _ok(frame).empty:
        raise ValueError(f"{results_file}: no rows with status ok, nothing to plot")
    out_dir = Path(out_dir)
    written: list[Path] = []
    with plt.rc_context(STYLE):
        written += save(fig_order_time(frame), out_dir, "order_time")
        if baseline in set(_ok(frame)["ordering"]):
            written += save(fig_relative_fill(frame, baseline), out_dir, "fill_vs_" + baseline)
        breakdown = fig_breakdown(frame)
        if breakdown is not None:
            written += save(breakdown, out_dir, "time_breakdown")
        written += save(fig_time_vs_n(frame), out_dir, "order_time_vs_n")
    return written
