"""The GPU study's figures (cudss back-end, harness/backends/cudss.py): stacked per-phase bars per
configuration, end-to-end speedup over cuDSS's defaults versus n, and the table of phases and ratios
(Markdown), each with its sidecar: the ``gpu_set`` of the one figure registry (harness/figures.py),
from a result file: ``python scripts/gpu_bench.py figures RESULT``.

The rest of the study is in the package: ``scripts/gpu_bench.sh`` installs the bundle on the GPU host
and runs ``permbench run`` and ``permbench study cudss-explore`` there; ``permbench results combine``
joins the files of its steps here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def figures(args) -> None:
    """The study's set (``figures.gpu_set``) from the one figure registry (harness/figures.py)."""
    from permbench.harness import figures as registry

    outcomes = registry.write_set(registry.gpu_set(min_n=args.min_n, table_min_n=args.table_min_n),
                                  {"results": [Path(args.result)]}, Path(args.out_dir))
    for outcome in outcomes:
        print(f"skipped {outcome.name}: {outcome.skipped}" if outcome.skipped else "\n".join(map(str, outcome.files)))


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
