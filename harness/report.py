"""``permbench report``: the report set of figures (``figures.report_set``: ordering time, relative
fill, time per phase, scaling, performance profiles) from one or several result files, as PNG and
PDF, and ``report.html`` (``html_report.py``) holding them with the table, the statuses and the
provenance. Nothing is run; the figures come from the one registry in ``figures.py``.
"""

from __future__ import annotations

from pathlib import Path

from .figures import read_frames, report_set, write_set
from .html_report import write_html_report
from .plotting import ok_rows


def write_report(results_files, out_dir, baseline: str = "metis", html: bool = True) -> list[Path]:
    """The report set's figures (PNG + PDF) and, with ``html``, ``report.html``; a figure whose data
    is absent (no numeric back-end, no rows of ``baseline``) is left out. Returns the files written."""
    paths = [Path(results_files)] if isinstance(results_files, (str, Path)) else [Path(p) for p in results_files]
    frame = read_frames(paths)
    if ok_rows(frame).empty:
        raise ValueError(f"{', '.join(map(str, paths))}: no rows with status ok, nothing to plot")
    outcomes = write_set(report_set(baseline), {"results": paths}, out_dir, sidecars=False,
                         frames={"results": frame})
    written = [path for outcome in outcomes for path in outcome.files]
    if html:
        written.append(write_html_report(paths, Path(out_dir) / "report.html", figures=written))
    return written
