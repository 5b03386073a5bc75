"""Diff two stored result files: which timings changed, by how much, and whether the change is
larger than the noise of the repeats.

Cells are matched by their (dataset, ordering, back-end) names, put in canonical form (parameters
sorted, defaults dropped), never by cell id: an id also hashes the code's versions, so the same
cell measured by two commits has two ids.

For every timing (``t_*_s``) of a cell present in both files: the median over the ok repeats of
each file with its range, the ratio new / base of the medians, and a two-sided Mann–Whitney U test
over the repeats (scipy.stats.mannwhitneyu). A timing *regressed* when the ratio exceeds the
threshold and p < alpha; it *improved* when the ratio is below 1 / threshold and p < alpha. With so
few repeats that no outcome could reach p < alpha (two-sided exact test: the smallest p is
2 / C(n_base + n_new, n_base), so 4 repeats on each side at alpha = 0.05), a change beyond the
threshold is reported as "too few repeats" instead of guessed at. Counts (nnz(L), flops, …) are
exact, so they are compared exactly: any difference is reported, one beyond the threshold is a
regression. A cell that was ok in the base and is not ok in the new file is a regression too.

Entry point: :func:`diff_files` (or :func:`diff_frames`); :func:`render_markdown` / ``csv`` / ``json``
and :func:`rich_table` present the outcome. The command is ``permbench diff BASE NEW``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy.stats import mannwhitneyu

from .results import read_results
from ..core.specs import SpecError, parse_spec

KEYS = ["dataset", "ordering", "backend"]

#: Exact counts: equal inputs and orderings give equal values, so any difference is real.
COUNT_METRICS = ["n", "nnz_A", "nnz_L", "flops", "critical_flops", "etree_height", "supernodes", "backend_nnz_L"]

#: Timings not compared: the untimed warm-up call, and the per-repeat sums that t_total_k_s already holds.
IGNORED_TIMINGS = {"t_warmup_s", "t_factor_sum_s", "t_solve_sum_s"}

REGRESSED, IMPROVED, SAME, TOO_FEW, DIFFERS = "regressed", "improved", "same", "too few repeats", "differs"


@dataclass
class Diff:
    """The outcome: one row per (cell, metric), the cells found in one file only, and cells whose
    status changed."""

    rows: pd.DataFrame
    only_in_base: pd.DataFrame
    only_in_new: pd.DataFrame
    status_changes: pd.DataFrame
    threshold: float
    alpha: float
    files: dict = field(default_factory=dict)

    @property
    def regressions(self) -> int:
        return int((self.rows["verdict"] == REGRESSED).sum()) + int(self.status_changes["regressed"].sum())

    def exit_code(self) -> int:
        """asv's convention: 1 when something regressed beyond the threshold, significantly; else 0."""
        return 1 if self.regressions else 0

    def summary(self) -> dict:
        counts = self.rows["verdict"].value_counts().to_dict() if len(self.rows) else {}
        return {"compared_cells": int(self.rows[KEYS].drop_duplicates().shape[0]) if len(self.rows) else 0,
                "verdicts": {k: int(v) for k, v in sorted(counts.items())},
                "status_changes": len(self.status_changes), "only_in_base": len(self.only_in_base),
                "only_in_new": len(self.only_in_new), "regressions": self.regressions,
                "threshold": self.threshold, "alpha": self.alpha}


def canonical_name(kind: str, name: str) -> str:
    """The canonical spelling of a stored name: keys sorted and, where the plug-in is known here,
    parameters equal to their defaults dropped. Unknown plug-ins keep the parsed spelling."""
    try:
        spec = parse_spec(str(name))
    except SpecError:
        return str(name)
    try:
        if kind == "dataset":
            from ..datasets import registry
        elif kind == "ordering":
            from ..orderings import registry
        else:
            from .backends import registry
        return registry.create(spec).spec.canonical()
    except Exception:  # a plug-in absent here, or a file dataset whose path is gone: keep its spelling
        return spec.canonical()


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for key in KEYS:
        names = {name: canonical_name(key, name) for name in frame[key].unique()}
        frame[key] = frame[key].map(names)
    return frame


def min_p_value(n_base: int, n_new: int) -> float:
    """The smallest two-sided p-value an exact Mann–Whitney test can give for these sample sizes."""
    if n_base == 0 or n_new == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_base + n_new, n_base))


def timing_columns(frame: pd.DataFrame) -> list[str]:
    return sorted(c for c in frame.columns if c.startswith("t_") and c.endswith("_s") and c not in IGNORED_TIMINGS)


def _values(rows: pd.DataFrame, metric: str) -> pd.Series:
    if metric not in rows:
        return pd.Series(dtype=float)
    return pd.to_numeric(rows[metric], errors="coerce").dropna()


def _compare_timing(base: pd.Series, new: pd.Series, threshold: float, alpha: float) -> tuple[float | None, str]:
    ratio = float(new.median() / base.median()) if base.median() > 0 else math.inf
    beyond = ratio > threshold or ratio < 1.0 / threshold
    if min_p_value(len(base), len(new)) >= alpha:
        return None, TOO_FEW if beyond else SAME
    p = float(mannwhitneyu(new.to_numpy(), base.to_numpy(), alternative="two-sided").pvalue)
    if p < alpha and ratio > threshold:
        return p, REGRESSED
    if p < alpha and ratio < 1.0 / threshold:
        return p, IMPROVED
    return p, SAME


def _compare_count(base: pd.Series, new: pd.Series, threshold: float) -> str:
    if sorted(base.unique()) == sorted(new.unique()):
        return SAME
    base_median = float(base.median())
    if base_median > 0 and float(new.median()) / base_median > threshold:
        return REGRESSED
    return DIFFERS


def diff_frames(base: pd.DataFrame, new: pd.DataFrame, threshold: float = 1.1, alpha: float = 0.05) -> Diff:
    if threshold < 1.0:
        raise ValueError(f"threshold must be >= 1 (a ratio new/base), got {threshold}")
    base, new = _canonical(base), _canonical(new)
    base_cells = {k: g for k, g in base.groupby(KEYS, sort=True)}
    new_cells = {k: g for k, g in new.groupby(KEYS, sort=True)}

    def cell_list(keys, cells):
        out = [dict(zip(KEYS, k), statuses=",".join(sorted(set(cells[k]["status"]))), repeats=len(cells[k]))
               for k in sorted(keys)]
        return pd.DataFrame(out, columns=KEYS + ["statuses", "repeats"])

    only_base = cell_list(set(base_cells) - set(new_cells), base_cells)
    only_new = cell_list(set(new_cells) - set(base_cells), new_cells)
    metrics = [m for m in timing_columns(base) if m in new.columns]
    counts = [m for m in COUNT_METRICS if m in base.columns and m in new.columns]
    rows, changes = [], []
    for key in sorted(set(base_cells) & set(new_cells)):
        b_all, n_all = base_cells[key], new_cells[key]
        b_ok, n_ok = b_all[b_all["status"] == "ok"], n_all[n_all["status"] == "ok"]
        b_status, n_status = ",".join(sorted(set(b_all["status"]))), ",".join(sorted(set(n_all["status"])))
        if b_status != n_status:
            reasons = n_all.loc[n_all["status"] != "ok", "reason"].dropna().astype(str)
            changes.append({**dict(zip(KEYS, key)), "base_status": b_status, "new_status": n_status,
                            "new_reason": reasons.iloc[0] if len(reasons) else "",
                            "regressed": b_status == "ok" and n_status != "ok"})
        for metric in counts + metrics:
            b, n = _values(b_ok, metric), _values(n_ok, metric)
            if b.empty or n.empty:
                continue
            if metric in counts:
                p, verdict = None, _compare_count(b, n, threshold)
            else:
                p, verdict = _compare_timing(b, n, threshold, alpha)
            b_med, n_med = float(b.median()), float(n.median())
            rows.append({**dict(zip(KEYS, key)), "metric": metric, "unit": unit_of(metric),
                         "base_median": b_med, "base_min": float(b.min()), "base_max": float(b.max()),
                         "base_repeats": len(b), "new_median": n_med, "new_min": float(n.min()),
                         "new_max": float(n.max()), "new_repeats": len(n),
                         "ratio": n_med / b_med if b_med else (1.0 if n_med == 0 else math.inf),
                         "p_value": p, "verdict": verdict})
    columns = KEYS + ["metric", "unit", "base_median", "base_min", "base_max", "base_repeats", "new_median",
                      "new_min", "new_max", "new_repeats", "ratio", "p_value", "verdict"]
    return Diff(rows=pd.DataFrame(rows, columns=columns), only_in_base=only_base, only_in_new=only_new,
                status_changes=pd.DataFrame(changes, columns=KEYS + ["base_status", "new_status", "new_reason",
                                                                     "regressed"]),
                threshold=threshold, alpha=alpha)


def diff_files(base_path, new_path, threshold: float = 1.1, alpha: float = 0.05) -> Diff:
    base, _ = read_results(base_path)
    new, _ = read_results(new_path)
    for path, frame in ((base_path, base), (new_path, new)):
        missing = [c for c in KEYS + ["status"] if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: not a permbench result file (no column {', '.join(missing)})")
    out = diff_frames(base, new, threshold=threshold, alpha=alpha)
    out.files = {"base": str(base_path), "new": str(new_path)}
    return out


def unit_of(metric: str) -> str:
    if metric.endswith("_s"):
        return "s"
    return "flop" if "flops" in metric else ""


# --------------------------------------------------------------------------------------------------
# Presentation
# --------------------------------------------------------------------------------------------------


def _num(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric.endswith("_s") or "flops" in metric:
        return f"{value:.4g}"
    return f"{int(round(value)):,}"


def display_frame(diff: Diff, only_changed: bool = False) -> pd.DataFrame:
    """The rows as text: median [min–max] per side, ratio, p-value or 'too few repeats', verdict."""
    rows = diff.rows if not only_changed else diff.rows[diff.rows["verdict"] != SAME]
    out = pd.DataFrame({
        "dataset": rows["dataset"], "ordering": rows["ordering"], "backend": rows["backend"],
        "metric": [f"{m} [{u}]" if u else m for m, u in zip(rows["metric"], rows["unit"])],
        "base median [min–max] (n)": [f"{_num(r.base_median, r.metric)} [{_num(r.base_min, r.metric)}–"
                                      f"{_num(r.base_max, r.metric)}] ({r.base_repeats})" for r in rows.itertuples()],
        "new median [min–max] (n)": [f"{_num(r.new_median, r.metric)} [{_num(r.new_min, r.metric)}–"
                                     f"{_num(r.new_max, r.metric)}] ({r.new_repeats})" for r in rows.itertuples()],
        "new/base": [f"{r:.3f}" for r in rows["ratio"]],
        "p": [("exact" if m in COUNT_METRICS else "too few repeats") if p is None or pd.isna(p) else f"{p:.3g}"
              for p, m in zip(rows["p_value"], rows["metric"])],
        "verdict": rows["verdict"],
    })
    return out.reset_index(drop=True)


def render_markdown(diff: Diff, only_changed: bool = False) -> str:
    parts = [f"Diff of {diff.files.get('base', 'base')} → {diff.files.get('new', 'new')} "
             f"(threshold {diff.threshold:g}×, Mann–Whitney two-sided, alpha {diff.alpha:g})", ""]
    frame = display_frame(diff, only_changed)
    parts.append(frame.to_markdown(index=False) if len(frame) else "(no cell in both files)")
    for title, table in (("Status changes", diff.status_changes), ("Only in base", diff.only_in_base),
                         ("Only in new", diff.only_in_new)):
        if len(table):
            parts += ["", f"**{title}**", "", table.to_markdown(index=False)]
    parts += ["", summary_line(diff)]
    return "\n".join(parts) + "\n"


def render_csv(diff: Diff, only_changed: bool = False) -> str:
    rows = diff.rows if not only_changed else diff.rows[diff.rows["verdict"] != SAME]
    return rows.to_csv(index=False)


def render_json(diff: Diff, only_changed: bool = False) -> str:
    rows = diff.rows if not only_changed else diff.rows[diff.rows["verdict"] != SAME]

    def records(frame):
        return json.loads(frame.to_json(orient="records"))

    return json.dumps({"files": diff.files, "summary": diff.summary(), "rows": records(rows),
                       "status_changes": records(diff.status_changes), "only_in_base": records(diff.only_in_base),
                       "only_in_new": records(diff.only_in_new)}, indent=1) + "\n"


def summary_line(diff: Diff) -> str:
    s = diff.summary()
    verdicts = ", ".join(f"{v} {k}" for k, v in s["verdicts"].items()) or "nothing compared"
    return (f"{s['compared_cells']} cells compared ({verdicts}); {s['status_changes']} status changes; "
            f"{s['only_in_base']} only in base, {s['only_in_new']} only in new; "
            f"{s['regressions']} regressions beyond {diff.threshold:g}×")


def rich_table(diff: Diff, only_changed: bool = False):
    from rich.markup import escape
    from rich.table import Table

    colours = {REGRESSED: "red", IMPROVED: "green", TOO_FEW: "yellow", DIFFERS: "magenta"}
    frame = display_frame(diff, only_changed)
    table = Table(title=escape(f"{diff.files.get('base', 'base')} → {diff.files.get('new', 'new')}"))
    for col in frame.columns:
        table.add_column(escape(col), overflow="fold", justify="right" if col in ("new/base", "p") else "left")
    for row in frame.itertuples(index=False):
        cells = [escape(str(v)) for v in row]
        colour = colours.get(row.verdict)
        if colour:
            cells[-1] = f"[{colour}]{cells[-1]}[/]"
        table.add_row(*cells)
    return table
