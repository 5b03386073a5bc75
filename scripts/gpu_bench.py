"""The GPU study's figures (cudss back-end, harness/backends/cudss.py): stacked per-phase bars per
configuration, end-to-end speedup over cuDSS's default versus n, and the table of phases and ratios
(Markdown), from a result file: ``python scripts/gpu_bench.py figures RESULT``.

The rest of the study is in the package: ``scripts/gpu_bench.sh`` installs the bundle on the GPU host
and runs ``permbench run`` and ``permbench study cudss-explore`` there; ``permbench results combine``
joins the files of its steps here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------------------------------
# figures and table (anywhere)
# --------------------------------------------------------------------------------------------------

PHASES = [("t_order_s", "ordering / cuDSS reordering"), ("t_analyze_s", "analysis (tree + cuDSS reorder + symbolic)"),
          ("t_factor_s", "factorization"), ("t_solve_s", "solve")]
PHASE_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
BASELINE_MT, BASELINE_1T = "cuDSS default (MT layer)", "cuDSS default (no MT layer)"


def config_label(ordering: str, backend: str) -> str:
    """One name per way of running cuDSS, independent of k."""
    from permbench.harness.backends import registry

    p = registry.create(backend).p
    if ordering == "native":
        if p["reorder"] == "default":
            return BASELINE_MT if p["mt"] else BASELINE_1T
        return f"cuDSS {p['reorder'].upper()}" + ("" if p["mt"] else " (no MT layer)")
    tree = {"off": "no tree", "auto": "own tree", "derive": "tree from etree"}[p["tree"]]
    if p["tree"] == "auto" and ordering.split("[")[0] not in ("patch",):
        tree = "no tree"
    return f"{ordering} + {tree}"


def config_style(config: str) -> tuple[str, str, float]:
    """(colour, line style, width): an ordering keeps its report colour; no tree is dashed."""
    from permbench.harness.report import color_of

    fixed = {BASELINE_MT: ("#000000", "-", 1.6), BASELINE_1T: ("#7f7f7f", "-", 1.6),
             "cuDSS AMD": ("#17becf", "-", 1.0), "cuDSS ND": ("#bcbd22", "-", 1.0)}
    if config in fixed:
        return fixed[config]
    ordering = config.split(" + ")[0]
    if config.endswith("no tree"):
        return color_of(ordering), "--", 1.0
    return color_of(ordering), "-", 2.2 if ordering == "patch" else 1.4


def load_rows(result: str):
    """Medians per (dataset, configuration).

    The single-factorization columns come from every ok row (a k=10 run starts with exactly the
    calls of a k=1 run: analysis, FACTORIZATION, SOLVE); ``t_total_k10_s`` and
    ``t_refactor_median_s`` from the k=10 rows.
    """
    from permbench.harness.results import read_results

    frame, prov = read_results(result)
    ok = frame[frame["status"] == "ok"].copy()
    ok["config"] = [config_label(o, b) for o, b in zip(ok["ordering"], ok["backend"])]
    ok["k"] = ok["k"].astype(int)
    keys = ["dataset", "config"]
    cols = ["n", "t_order_s", "t_analyze_s", "t_factor_s", "t_solve_s", "t_total_s", "nnz_L", "backend_nnz_L",
            "residual"]
    med = ok.groupby(keys)[cols].median()
    med["runs"] = ok.groupby(keys).size()
    ten = ok[ok["k"] == 10].groupby(keys)[["t_total_k_s", "t_refactor_median_s"]].median()
    med = med.join(ten.rename(columns={"t_total_k_s": "t_total_k10_s"}), how="left").reset_index()
    return med, frame, prov


def figures(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from permbench.harness.report import STYLE, save

    med, frame, prov = load_rows(args.result)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    configs = sorted(med["config"].unique(), key=lambda c: (not c.startswith("cuDSS"), c))
    datasets = sorted(med["dataset"].unique(), key=lambda d: (med[med.dataset == d]["n"].iloc[0], d))
    with plt.rc_context(STYLE):
        # 1. Stacked per-phase bars per configuration, one panel per dataset (single factorization).
        big = [d for d in datasets if med[med.dataset == d]["n"].iloc[0] >= args.min_n]
        cols = min(3, len(big))
        rows = int(np.ceil(len(big) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.4 * rows), squeeze=False)
        for ax, d in zip(axes.flat, big):
            sub = med[med.dataset == d].set_index("config")
            sub = sub.reindex([c for c in configs if c in set(sub.index)])
            bottom = np.zeros(len(sub))
            for (col, label), color in zip(PHASES, PHASE_COLORS):
                vals = sub[col].fillna(0).to_numpy()
                ax.bar(np.arange(len(sub)), vals, bottom=bottom, color=color, label=label)
                bottom += vals
            ax.set_xticks(np.arange(len(sub)), sub.index, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel("time [s]")
            ax.set_title(f"{d}\nn={int(sub['n'].iloc[0]):,}", fontsize=8)
        for ax in list(axes.flat)[len(big):]:
            ax.axis("off")
        axes.flat[0].legend(loc="upper left", fontsize=7)
        fig.suptitle("cuDSS on the H200: time per phase, single factorization (k=1)")
        fig.tight_layout()
        save(fig, out, "cudss_phases")

        # 2. End-to-end speedup over cuDSS's default versus n: one line per configuration and
        #    dataset family (grids of several sizes, icospheres, ...), markers name the family.
        panels = [(1, BASELINE_MT, "t_total_s"), (1, BASELINE_1T, "t_total_s"), (10, BASELINE_MT, "t_total_k10_s")]
        fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
        family = {d: d.split("[")[0].split(":")[0] for d in datasets}
        markers = dict(zip(sorted(set(family.values())), "osD^v<>"))
        for ax, (k, base, col) in zip(axes, panels):
            for c in configs:
                color, style, width = config_style(c)
                for fam in sorted(set(family.values())):
                    pts = []
                    for d in (d for d in datasets if family[d] == fam):
                        sel = med[med.dataset == d].set_index("config")
                        if base in sel.index and c in sel.index and sel.loc[[base, c], col].notna().all():
                            pts.append((sel["n"].iloc[0], sel.loc[base, col] / sel.loc[c, col]))
                    if pts:
                        xs, ys = zip(*sorted(pts))
                        ax.plot(xs, ys, style, marker=markers[fam], color=color, linewidth=width, markersize=4)
                ax.plot([], [], style, color=color, linewidth=width, label=c)
            ax.axhline(1.0, color="black", linewidth=0.6)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("n (unknowns)")
            what = "t_total (one factorization)" if k == 1 else f"t_total with k={k} factorizations"
            ax.set_ylabel(f"{what}: {base} / configuration")
            ax.set_title(f"k={k}, speedup over {base}", fontsize=9)
        axes[0].legend(fontsize=6.5, loc="lower right")
        fig.text(0.01, 0.005, "markers: " + ", ".join(f"{m} {f}" for f, m in sorted(markers.items())), fontsize=8)
        fig.suptitle("End-to-end speedup over cuDSS's own reordering (above 1: faster than that default)")
        fig.tight_layout()
        save(fig, out, "cudss_speedup_vs_n")
    write_table(med, out / "cudss_table.md", min_n=args.table_min_n)
    print("\n".join(str(p) for p in sorted(out.iterdir())))


def write_table(med, path: Path, min_n: int = 0) -> None:
    """Per dataset and configuration: phases, totals for k=1 and k=10, fill, ratios to both defaults."""
    f = lambda v: "–" if v is None or v != v else f"{v:.3f}"  # noqa: E731
    lines = []
    for d in sorted(med["dataset"].unique(), key=lambda d: (med[med.dataset == d]["n"].iloc[0], d)):
        sub = med[med.dataset == d].set_index("config")
        n = int(sub["n"].iloc[0])
        if n < min_n:
            continue

        def ratio(value, base, col):
            if base not in sub.index or value != value or sub.loc[base, col] != sub.loc[base, col]:
                return "–"
            return f"{value / sub.loc[base, col]:.2f}"

        lines += [f"\n### {d} (n = {n:,})\n",
                  "| configuration | runs | order | analysis | factor | refactor | solve | total k=1 | ÷ default MT | "
                  "÷ default 1T | total k=10 | ÷ default MT (k=10) | cuDSS LU nnz | nnz(L) | residual |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for config, r in sub.sort_values("t_total_s").iterrows():
            lines.append(
                f"| {config} | {int(r.runs)} | {f(r.t_order_s)} | {f(r.t_analyze_s)} | {f(r.t_factor_s)} | "
                f"{f(r.t_refactor_median_s)} | {f(r.t_solve_s)} | {f(r.t_total_s)} | "
                f"{ratio(r.t_total_s, BASELINE_MT, 't_total_s')} | {ratio(r.t_total_s, BASELINE_1T, 't_total_s')} | "
                f"{f(r.t_total_k10_s)} | {ratio(r.t_total_k10_s, BASELINE_MT, 't_total_k10_s')} | "
                f"{int(r.backend_nnz_L):,} | {int(r.nnz_L):,} | {r.residual:.1e} |")
    path.write_text("cuDSS 0.8 on one H200 (16 host cores), from results/gpu/cudss-h200.parquet (scripts/gpu_bench.py "
                    "figures). Times in seconds, medians over `runs`; k=1 columns are the first factorization and "
                    "solve of each run, `refactor` the median of the nine REFACTORIZATIONs that follow. Ratios are "
                    "t_total(configuration) / t_total(cuDSS default, with or without its multithreading layer); "
                    "below 1 is faster.\n"
                    + "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("figures", help="phase bars, speedup versus n and the ratio table")
    p.add_argument("result")
    p.add_argument("--out-dir", default="results/gpu")
    p.add_argument("--min-n", type=int, default=500_000, help="datasets in the phase figure: n at least this")
    p.add_argument("--table-min-n", type=int, default=0)
    p.set_defaults(fn=figures)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
