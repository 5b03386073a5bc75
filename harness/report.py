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


def _per_ordering(frame: pd.DataFrame, value: str, stat: str = "median") -> pd.DataFrame:
    """``stat`` (median, min or max) of ``value`` over repeats and back-ends: rows = dataset (by n),
    columns = ordering."""
    ok = _ok(frame).dropna(subset=[value])
    table = ok.groupby(["dataset", "ordering"])[value].agg(stat).unstack("ordering")
    sizes = ok.groupby("dataset")["n"].first()
    return table.loc[sorted(table.index, key=lambda d: (sizes[d], d)), sorted(table.columns)]


def dataset_label(name: str, n=None, sep: str = "\n") -> str:
    """A dataset as figures name it: its canonical name (the parameters that differ from the
    defaults; a file by its file name) and its size, since a default size is not in the name."""
    if name.startswith("file:"):
        path, _, params = name[len("file:"):].partition("[")
        name = "file:" + path.rstrip("/").split("/")[-1] + ("[" + params if params else "")
    if n is None or n != n:
        return name
    return f"{name}{sep}n={int(n):,}"


def family_of(name: str) -> str:
    """The scaling family of a dataset: its name without the size parameters (``n``, ``upsample``).
    Lines join only points of one family: a grid's sizes form a curve, a grid and a scanned mesh do not."""
    from ..core.specs import SpecError, parse_spec

    try:
        spec = parse_spec(name)
    except SpecError:
        return name
    params = {k: v for k, v in spec.params.items() if k not in ("n", "upsample")}
    return type(spec)(spec.name, params, spec.target).canonical()


def legend_outside(where, handles=None, labels=None, **kwargs):
    """A legend beside the plot (axes or figure), never over its data."""
    if handles is None:
        handles, labels = where.get_legend_handles_labels()
    if not handles:
        return None
    import matplotlib.figure

    kwargs.setdefault("fontsize", 7)
    if isinstance(where, matplotlib.figure.Figure):
        return where.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.95), **kwargs)
    return where.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), **kwargs)


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


def fig_order_time(frame):
    table = _per_ordering(frame, "t_order_s")
    low, high = _per_ordering(frame, "t_order_s", "min"), _per_ordering(frame, "t_order_s", "max")
    sizes = frame.groupby("dataset")["n"].first()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(table)), 4))
    _grouped_bars(ax, table, sizes, low=low, high=high)
    ax.set_yscale("log")
    ax.set_ylabel("ordering time t_order [s] (log scale)")
    ax.set_title("Time to compute the ordering, per dataset (median over repeats, bars: min–max)")
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
        # The spread of the stack: min and max over repeats of the sum of the phases it shows.
        summed = cell.assign(_sum=cell[[p for p, _ in PHASES]].fillna(0).sum(axis=1)).groupby("ordering")["_sum"]
        bottom = np.zeros(len(med))
        for (phase, label), color in zip(PHASES, PHASE_COLORS):
            values = med[phase].fillna(0).to_numpy()
            ax.bar(med.index, values, bottom=bottom, label=label, color=color)
            bottom += values
        low, high = summed.min().reindex(med.index).to_numpy(), summed.max().reindex(med.index).to_numpy()
        ax.errorbar(med.index, bottom, yerr=np.clip(np.vstack([bottom - low, high - bottom]), 0, None), fmt="none",
                    ecolor="#333333", elinewidth=0.7, capsize=2, label="min–max of the sum")
        ax.set_title(f"{backend} · {dataset_label(dataset, cell['n'].iloc[0], ' · ')}", fontsize=8)
        ax.set_ylabel("time [s]")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("End-to-end time by phase: order + analyze + factor + solve (median over repeats)")
    fig.tight_layout()
    legend_outside(fig, *axes.flat[0].get_legend_handles_labels(), title="phase")
    return fig


def fig_time_vs_n(frame):
    """t_order against n, median with min–max error bars; lines join only datasets of one family
    (one generator at several sizes), each family with its own marker."""
    from matplotlib.lines import Line2D

    ok = _ok(frame).dropna(subset=["t_order_s", "n"])
    med = ok.groupby(["ordering", "dataset"]).agg(n=("n", "first"), t=("t_order_s", "median"),
                                                   lo=("t_order_s", "min"), hi=("t_order_s", "max")).reset_index()
    med["family"] = [family_of(d) for d in med["dataset"]]
    families = sorted(set(med["family"]))
    markers = {f: "osD^v<>pPhX*"[i % 12] for i, f in enumerate(families)}
    fig, ax = plt.subplots(figsize=(6, 4.5))
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
    ax.set_title("Ordering time versus problem size (log-log; median, bars: min–max)")
    orderings = sorted(set(med["ordering"]))
    colour_legend = legend_outside(ax, [Line2D([], [], color=color_of(o), linewidth=2) for o in orderings],
                                   orderings, title="ordering")
    ax.add_artist(colour_legend)
    ax.legend([Line2D([], [], color="#555555", marker=markers[f], linestyle="none") for f in families],
              [dataset_label(f) for f in families], loc="upper left", bbox_to_anchor=(1.01, 0.0), fontsize=6,
              title="dataset family (lines: one family)", title_fontsize=7)
    return fig


def read_all(results_files) -> pd.DataFrame:
    """The rows of one or several result files, with the file each came from as ``result_file``."""
    paths = [results_files] if isinstance(results_files, (str, Path)) else list(results_files)
    frames = [read_results(p)[0].assign(result_file=str(p)) for p in paths]
    return pd.concat(frames, ignore_index=True)


def write_report(results_files, out_dir, baseline: str = "metis", html: bool = True) -> list[Path]:
    """Figures (PNG + PDF) from one or several result files and, with ``html``, ``report.html``
    (html_report.py) holding the table, the statuses, the figures and the provenance."""
    from . import figures as figure_set
    from .html_report import write_html_report

    paths = [results_files] if isinstance(results_files, (str, Path)) else list(results_files)
    frame = read_all(paths)
    if _ok(frame).empty:
        raise ValueError(f"{', '.join(map(str, paths))}: no rows with status ok, nothing to plot")
    out_dir = Path(out_dir)
    written: list[Path] = []
    with plt.rc_context(STYLE):
        # The ordering runs once per repeat and every back-end of the repeat reuses it: one value each.
        once = _ok(frame).dropna(subset=["t_order_s"]).drop_duplicates(
            subset=["result_file", "dataset", "ordering", "repeat"])
        written += save(fig_order_time(once), out_dir, "order_time")
        if baseline in set(_ok(frame)["ordering"]):
            written += save(fig_relative_fill(frame, baseline), out_dir, "fill_vs_" + baseline)
        breakdown = fig_breakdown(frame)
        if breakdown is not None:
            written += save(breakdown, out_dir, "time_breakdown")
        written += save(fig_time_vs_n(once), out_dir, "order_time_vs_n")
        try:
            written += save(figure_set.fig_d_profiles(frame, figure_set.FigureConfig(results=())), out_dir,
                            "performance_profiles")
        except figure_set.Skip:
            pass  # fewer than 2 datasets or orderings: no profile to draw
    if html:
        written.append(write_html_report(paths, out_dir / "report.html", figures=written))
    return written
