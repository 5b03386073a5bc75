"""Side-by-side comparison of orderings: median ordering time, fill and flops, and their ratios."""

from __future__ import annotations

import pandas as pd
from rich.markup import escape
from rich.table import Table


def ratio_table(frame: pd.DataFrame, baseline: str = "metis") -> pd.DataFrame:
    """One row per (dataset, ordering): median t_order_s over repeats, nnz_L, flops, and ratios.

    Ratios divide by the baseline ordering's value on the same dataset from the same run.
    """
    ok = frame[(frame["status"] == "ok") & (frame["backend"] == "symbolic")]
    med = ok.groupby(["dataset", "ordering"], sort=True).agg(
        n=("n", "first"), t_order_s=("t_order_s", "median"), t_order_min_s=("t_order_s", "min"),
        t_order_max_s=("t_order_s", "max"), repeats=("t_order_s", "size"), cpu_util=("cpu_util", "median"),
        nnz_L=("nnz_L", "median"), flops=("flops", "median")).reset_index()
    base = med[med["ordering"] == baseline].set_index("dataset")
    for col in ("t_order_s", "nnz_L", "flops"):
        med[f"{col}_vs_{baseline}"] = med.apply(
            lambda r: r[col] / base.at[r["dataset"], col] if r["dataset"] in base.index else float("nan"), axis=1)
    return med


def rich_table(table: pd.DataFrame, baseline: str) -> Table:
    out = Table(title=f"orderings compared (ratios of medians to {baseline}, one run)")
    cols = ["dataset", "n", "ordering", "t_order_s", f"t_order_s_vs_{baseline}", "nnz_L",
            f"nnz_L_vs_{baseline}", "flops", f"flops_vs_{baseline}"]
    headers = ["dataset", "n", "ordering", "t_order [s] median [min–max] (repeats)", "×", "nnz(L)", "×", "flops", "×"]
    for col, header in zip(cols, headers):
        out.add_column(header, overflow="fold", no_wrap=col not in ("dataset", "ordering"))
    for row in table.itertuples(index=False):
        r = row._asdict()
        spread = f"{r['t_order_s']:.3f} [{r['t_order_min_s']:.3f}–{r['t_order_max_s']:.3f}] ({r['repeats']})"
        out.add_row(escape(str(r["dataset"])), f"{int(r['n']):,}", escape(str(r["ordering"])), escape(spread),
                    f"{r[f't_order_s_vs_{baseline}']:.2f}", f"{int(r['nnz_L']):,}",
                    f"{r[f'nnz_L_vs_{baseline}']:.2f}", f"{r['flops']:.3g}", f"{r[f'flops_vs_{baseline}']:.2f}")
    return out
