"""What every figure builder shares (``figures.py`` holds the builders): the fixed style and
colours, writing PNG/PDF without timestamps, how datasets and cuDSS configurations are named, and
the computations behind the figures (performance profiles, amortization, GPU speedups).

Everything here reads stored rows only. A plug-in's parameters come from the row's
``ordering_params``/``backend_params`` (``harness/rows.py``), never from plug-in code, so nothing
here (or in ``figures.py``) imports a plug-in; ``tests/test_figures.py`` checks the imports.

Determinism: matplotlib's defaults (not the machine's matplotlibrc) plus ``STYLE``, one fixed
colour per ordering, categories sorted, no timestamps in the files: the same rows give the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..core.specs import SpecError, parse_spec  # noqa: E402
from .results import params_of_name  # noqa: E402

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
#: matplotlib's own defaults (not the machine's matplotlibrc), then the project's style.
FIGURE_STYLE = ["default", {**STYLE, "font.family": "DejaVu Sans"}]


class Skip(Exception):
    """The data a figure needs is absent; the message says what is missing."""


def color_of(ordering: str) -> str:
    base = ordering.split("[")[0]
    if base in ORDERING_COLORS:
        return ORDERING_COLORS[base]
    return _FALLBACK[sum(map(ord, ordering)) % len(_FALLBACK)]


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """Write PNG and PDF without timestamps or software tags, so the bytes depend only on the data."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    fig.savefig(png, metadata={"Software": None}, bbox_inches="tight")
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
                bbox_inches="tight")
    plt.close(fig)
    return [png, pdf]


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


def panel_grid(count: int, size: tuple[float, float], columns: int = 3):
    """A figure with ``count`` panels, ``columns`` to a row, each ``size`` inches; the unused ones hidden."""
    cols = max(1, min(columns, count))
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    return fig, list(axes.flat)


# --------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------


def ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"] if len(frame) else frame


def numeric_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok rows of numeric back-ends (those that measured a factorization)."""
    ok = ok_rows(frame)
    return ok.dropna(subset=["t_factor_s"]) if len(ok) and "t_factor_s" in ok else ok.iloc[0:0]


def dataset_order(frame: pd.DataFrame) -> list[str]:
    """Datasets by size, then name."""
    sizes = frame.groupby("dataset")["n"].first()
    return sorted(sizes.index, key=lambda d: (sizes[d], d))


def once_per_repeat(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok rows with an ordering time, one per (file, dataset, ordering, repeat): the ordering runs
    once per repeat and every back-end of the repeat reuses it."""
    ok = ok_rows(frame)
    if ok.empty or "t_order_s" not in ok or ok["t_order_s"].isna().all():
        raise Skip("no ok rows with an ordering time")
    keys = [k for k in ("result_file", "dataset", "ordering", "repeat") if k in ok]
    return ok.dropna(subset=["t_order_s"]).drop_duplicates(subset=keys)


def per_ordering(frame: pd.DataFrame, value: str, stat: str = "median") -> pd.DataFrame:
    """``stat`` (median, min or max) of ``value`` over repeats and back-ends: rows = dataset (by n),
    columns = ordering."""
    ok = ok_rows(frame).dropna(subset=[value])
    table = ok.groupby(["dataset", "ordering"])[value].agg(stat).unstack("ordering")
    sizes = ok.groupby("dataset")["n"].first()
    return table.loc[sorted(table.index, key=lambda d: (sizes[d], d)), sorted(table.columns)]


def plugin_params(frame: pd.DataFrame, kind: str) -> list[dict]:
    """Each row's ``<kind>_params`` (kind: ordering or backend) as a dict; rows of files written
    before the column existed get theirs from the stored name (``results.params_of_name``)."""
    column = f"{kind}_params"
    texts = frame[column] if column in frame else [None] * len(frame)
    return [json.loads(text) if isinstance(text, str) else params_of_name(name)
            for text, name in zip(texts, frame[kind])]


def row_extras(frame: pd.DataFrame, column: str = "backend_extras") -> list[dict]:
    """Each row's JSON extras as a dict (empty where absent or unreadable)."""
    out = []
    for text in frame[column] if column in frame else [None] * len(frame):
        try:
            value = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            value = {}
        out.append(value if isinstance(value, dict) else {})
    return out


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------


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
    try:
        spec = parse_spec(name)
    except SpecError:
        return name
    params = {k: v for k, v in spec.params.items() if k not in ("n", "upsample")}
    return type(spec)(spec.name, params, spec.target).canonical()


#: The cudss back-end's parameter defaults (``params`` in harness/backends/cudss.py): a row's
#: ``backend_params`` names only the ones that differ. tests/test_figures.py checks they agree.
CUDSS_DEFAULTS = {"reorder": "default", "mt": True, "tree": "auto"}
#: Where the ND tree handed to cuDSS came from (the row's ``tree_source``), else what the mode asks.
TREE_SOURCES = {"ordering": "own tree", "etree": "tree from etree", "none": "no tree"}
TREE_MODES = {"auto": "own tree if any", "derive": "tree from etree", "off": "no tree"}
NO_MT = " (no MT layer)"
DEFAULT_MT = "cuDSS default"
DEFAULT_1T = DEFAULT_MT + NO_MT


def cudss_configuration(ordering: str, params: dict, tree_source: str | None = None) -> str:
    """A readable name for one way of running cuDSS, independent of k: its own reordering (with
    or without the multithreading layer) or a user ordering with the ND tree it was given."""
    p = {**CUDSS_DEFAULTS, **params}
    if ordering == "native":
        name = DEFAULT_MT if p["reorder"] == "default" else f"cuDSS {str(p['reorder']).upper()}"
    else:
        name = f"{ordering} + {TREE_SOURCES.get(tree_source) or TREE_MODES.get(p['tree'], 'tree=' + str(p['tree']))}"
    return name + ("" if p["mt"] else NO_MT)  # runs without the MT layer are never pooled with those with it


def cudss_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok rows of the cudss back-end with their ``configuration``; raises Skip when there are none."""
    rows = numeric_rows(frame)
    rows = rows[rows["backend"].str.split("[").str[0] == "cudss"] if len(rows) else rows
    if rows.empty:
        raise Skip("no ok rows of the cudss back-end")
    sources = [e.get("tree_source") for e in row_extras(rows)]
    labels = [cudss_configuration(o, p, s) for o, p, s in zip(rows["ordering"], plugin_params(rows, "backend"), sources)]
    return rows.assign(configuration=labels, k=rows["k"].astype(int))


def configuration_order(labels) -> list[str]:
    """cuDSS's own configurations first, then the user orderings, each alphabetically."""
    return sorted(set(labels), key=lambda c: (not c.startswith("cuDSS"), c))


def configuration_style(configuration: str) -> tuple[str, str, float]:
    """(colour, line style, width) of a cuDSS configuration: the defaults black and grey, a user
    ordering its own colour, dashed without an ND tree."""
    fixed = {DEFAULT_MT: ("#000000", "-", 1.6), DEFAULT_1T: ("#7f7f7f", "-", 1.6),
             "cuDSS AMD": ("#17becf", "-", 1.0), "cuDSS ND": ("#bcbd22", "-", 1.0)}
    if configuration in fixed:
        return fixed[configuration]
    if configuration.startswith("cuDSS"):
        return color_of("cudss-" + configuration), "-", 1.0
    ordering = configuration.split(" + ")[0]
    if configuration.endswith("no tree"):
        return color_of(ordering), "--", 1.0
    return color_of(ordering), "-", 2.2 if ordering == "patch" else 1.4


# --------------------------------------------------------------------------------------------------
# Computations
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
    every k would overstate the slope. A NaN t_order_s (a solver's own ordering, timed inside its
    analysis) counts as 0. Returns rows = phases' rows, columns = k.
    """
    once = phases["t_order_s"].fillna(0.0).to_numpy() + phases["t_analyze_s"].to_numpy()
    first = phases["t_factor_s"].to_numpy() + phases["t_solve_s"].to_numpy()
    refactor = phases["t_refactor_median_s"] if "t_refactor_median_s" in phases else phases["t_factor_s"]
    later = refactor.fillna(phases["t_factor_s"]).to_numpy() + phases["t_solve_s"].to_numpy()
    ks = np.asarray(ks, dtype=float)
    return pd.DataFrame(once[:, None] + first[:, None] + (ks[None, :] - 1) * later[:, None], index=phases.index,
                        columns=ks)


def gpu_speedups(frame: pd.DataFrame, column: str = "t_total_s", baseline: str = DEFAULT_MT) -> pd.DataFrame:
    """Speedup of every cuDSS configuration over ``baseline`` (a configuration name) on each dataset.

    Rows: (dataset, n, k, configuration, ordering, speedup, speedup_min, speedup_max) with speedup =
    median ``column`` of the baseline / median ``column`` of the configuration, for rows with the
    same k. Raises ``Skip`` when the rows needed are absent.
    """
    rows = cudss_rows(frame).dropna(subset=[column])
    med = rows.groupby(["dataset", "k", "configuration", "ordering"]) \
        .agg(n=("n", "first"), t=(column, "median"), t_min=(column, "min"), t_max=(column, "max")).reset_index()
    base_rows = med[med["configuration"] == baseline].set_index(["dataset", "k"])
    if base_rows.empty:
        raise Skip(f"no rows of {baseline!r} (the baseline) with {column}")
    others = med[med["configuration"] != baseline]
    others = others[[key in base_rows.index for key in zip(others["dataset"], others["k"])]]
    keys = list(zip(others["dataset"], others["k"]))
    speedup = [base_rows.at[key, "t"] / t for key, t in zip(keys, others["t"])]
    # The range of the speedup over the repeats: slowest baseline over fastest configuration, and back.
    high = [base_rows.at[key, "t_max"] / t for key, t in zip(keys, others["t_min"])]
    low = [base_rows.at[key, "t_min"] / t for key, t in zip(keys, others["t_max"])]
    out = others.assign(speedup=speedup, speedup_min=low, speedup_max=high)[
        ["dataset", "n", "k", "configuration", "ordering", "speedup", "speedup_min", "speedup_max"]]
    if out.empty:
        raise Skip(f"no cuDSS configuration shares a dataset and k with {baseline!r}")
    return out.sort_values(["configuration", "k", "n", "dataset"]).reset_index(drop=True)
