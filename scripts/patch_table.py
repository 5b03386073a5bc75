"""Markdown table of a patch-ordering study (a `permbench run` result file): per input, the median
ordering time of each ordering with its range over the repeats, patch's time ratios against homa,
AMD and METIS, and its nnz(L) / flops ratios against METIS, each checked against the patch
ordering's targets (written out below: from 30k vertices faster than homa and under 0.2x METIS's
time, under 2x below; under 1.5x AMD's from 250k; nnz(L) under 1.15x METIS's); then the
geometric means of every patch variant's fill and flops against METIS, and patch's median phase
breakdown per input.

All numbers come from the one result file (one run): times are medians over the repeats of
``t_order_s`` (the ordering call alone; the graph build is the same for every ordering of an
input), fill and flops are medians over the repeats (each repeat has its own seed).

Usage: .venv/bin/python scripts/patch_table.py results/patch/patch-2core.parquet [--patch patch]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from pathlib import Path

from permbench.harness.results import read_results
from permbench.harness.store import read_fragments

PHASES = ("t_patch_s", "t_quotient_s", "t_decompose_s", "t_local_s", "t_assemble_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results")
    parser.add_argument("--patch", default="patch", help="the patch variant the ratios are about")
    args = parser.parse_args()
    if Path(args.results).is_dir():  # a run still in progress: its fragments
        frame, provenance = read_fragments(Path(args.results)), {}
    else:
        frame, provenance = read_results(args.results)
    ok = frame[(frame.status == "ok") & (frame.backend == "symbolic")]
    stats = ok.groupby(["dataset", "ordering"]).agg(
        n=("n", "first"), t=("t_order_s", "median"), t_min=("t_order_s", "min"), t_max=("t_order_s", "max"),
        nnz=("nnz_L", "median"), flops=("flops", "median"), runs=("t_order_s", "size"), threads=("threads", "first"))
    failed = frame[frame.status != "ok"]
    datasets = sorted(ok.dataset.unique(), key=lambda d: -int(stats.loc[d].n.iloc[0]))
    orderings = list(dict.fromkeys(ok.ordering))
    print(f"Result file `{args.results}`; threads per cell: {sorted(ok.threads.unique().tolist())}; "
          f"repeats per cell: {sorted(stats.runs.unique().tolist())}.\n")

    print("## Ordering time (median s, [min-max]) and patch's ratios\n")
    head = ["input", "n"] + orderings + [f"{args.patch}/homa", "/amd", "/metis", "nnz/metis", "flops/metis",
                                        "targets missed"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ratios = {o: {"nnz": [], "flops": []} for o in orderings}
    for d in datasets:
        s = stats.loc[d]
        n = int(s.n.iloc[0])
        cells = [d, f"{n:,}"]
        for o in orderings:
            cells.append(f"{s.t[o]:.3f} [{s.t_min[o]:.3f}-{s.t_max[o]:.3f}]" if o in s.index else "-")
        get = lambda o, col: float(s.loc[o, col]) if o in s.index else float("nan")  # noqa: E731
        tp = get(args.patch, "t")
        r_homa, r_amd, r_metis = tp / get("homa", "t"), tp / get("amd", "t"), tp / get("metis", "t")
        r_nnz, r_flops = get(args.patch, "nnz") / get("metis", "nnz"), get(args.patch, "flops") / get("metis", "flops")
        missed = []
        if n >= 30_000:
            missed += ["homa"] if r_homa > 1.0 else []
            missed += ["metis 0.2x"] if r_metis > 0.2 else []
        else:
            missed += ["metis 2x"] if r_metis > 2.0 else []
        if n >= 250_000 and r_amd > 1.5:
            missed.append("amd 1.5x")
        if r_nnz > 1.15:
            missed.append("nnz 1.15x")
        cells += [f"{r_homa:.2f}", f"{r_amd:.2f}", f"{r_metis:.2f}", f"{r_nnz:.3f}", f"{r_flops:.3f}",
                  ", ".join(missed) or "none"]
        print("| " + " | ".join(cells) + " |")
        for o in orderings:
            if o in s.index and "metis" in s.index:
                ratios[o]["nnz"].append(get(o, "nnz") / get("metis", "nnz"))
                ratios[o]["flops"].append(get(o, "flops") / get("metis", "flops"))

    print("\n## Fill and flops against METIS over all inputs (geometric mean [max])\n")
    print("| ordering | inputs | nnz(L)/METIS | flops/METIS | median time/METIS |")
    print("|---|---:|---:|---:|---:|")
    for o in orderings:
        r = ratios[o]
        if not r["nnz"]:
            continue
        t_ratio = [float(stats.loc[(d, o), "t"] / stats.loc[(d, "metis"), "t"]) for d in datasets
                   if (d, o) in stats.index and (d, "metis") in stats.index]
        gm = lambda v: float(np.exp(np.mean(np.log(v))))  # noqa: E731
        print(f"| {o} | {len(r['nnz'])} | {gm(r['nnz']):.3f} [{max(r['nnz']):.3f}] | "
              f"{gm(r['flops']):.3f} [{max(r['flops']):.3f}] | {np.median(t_ratio):.3f} |")

    print(f"\n## {args.patch}: phase breakdown (median s over the repeats)\n")
    print("| input | " + " | ".join(p[2:-2] for p in PHASES) + " | levels | threads_used |")
    print("|---|" + "---:|" * (len(PHASES) + 2))
    patch_rows = ok[ok.ordering == args.patch]
    for d in datasets:
        rows = patch_rows[patch_rows.dataset == d]
        if rows.empty:
            continue
        extras = [json.loads(e) if isinstance(e, str) else e for e in rows.ordering_extras]
        phases = [np.median([e.get(p, np.nan) for e in extras]) for p in PHASES]
        print(f"| {d} | " + " | ".join(f"{v:.3f}" for v in phases)
              + f" | {extras[0].get('levels')} | {extras[0].get('threads_used', '-')} |")

    if not failed.empty:
        print("\n## Cells not ok\n")
        for _, r in failed.iterrows():
            print(f"- {r.dataset} / {r.ordering} / {r.backend}: {r.status} ({r.reason})")


if __name__ == "__main__":
    main()
