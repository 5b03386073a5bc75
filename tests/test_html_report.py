"""`permbench report` writes one self-contained report.html; a real browser (headless chromium)
renders it: the table has one row per cell and the page's script ran without a JavaScript error."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from permbench.harness.cli import app
from permbench.harness.results import write_results

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

ORDERINGS = ("amd", "metis", "rcm")
DATASETS = (("grid[n=100]", 100), ("icosphere[n=642]", 642), ("tetgrid[n=1000]", 1000))


def study(path: Path) -> Path:
    """3 datasets × 3 orderings × (symbolic, cholmod) × 3 repeats; rcm's cholmod cells are skipped."""
    rows = []
    for dataset, n in DATASETS:
        for i, ordering in enumerate(ORDERINGS):
            for repeat in range(3):
                t_order = 1e-5 * n * (i + 1) * (1 + 0.1 * repeat)
                base = dict(dataset=dataset, ordering=ordering, repeat=repeat, status="ok", reason="", n=n,
                            nnz_L=10 * n * (i + 1), flops=100 * n * (i + 1) ** 2, t_order_s=t_order)
                rows.append(dict(base, backend="symbolic"))
                if ordering == "rcm":
                    rows.append(dict(base, backend="cholmod", status="skipped", t_order_s=None,
                                     reason=f"predicted flops above the limit on {dataset}"))
                else:
                    rows.append(dict(base, backend="cholmod", t_analyze_s=1e-6 * n, t_factor_s=2e-6 * n,
                                     t_solve_s=1e-7 * n, t_total_s=t_order + 3.1e-6 * n, residual=1e-15))
    write_results(rows, path, {"permbench": "0.1.0", "git": {"commit": "abc123def", "dirty": False}, "cpu": "Test CPU",
                        "cpu_count": 2, "blas": {"threadpools": [{"internal_api": "openblas", "version": "0.3.21",
                                                                  "threading_layer": "pthreads"}]}})
    return path


CELLS = len(DATASETS) * len(ORDERINGS) * 2


@pytest.fixture
def report_page(tmp_path) -> Path:
    results = study(tmp_path / "study.parquet")
    result = runner.invoke(app, ["report", str(results), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    page = tmp_path / "report" / "report.html"
    assert page.is_file()
    return page


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_page_is_self_contained_and_complete(report_page):
    text = report_page.read_text()
    # Nothing to fetch: no external script, style, image or link.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<link" not in text
    assert text.count('src="data:image/png;base64,') >= 4  # order time, fill, breakdown, scaling, profiles
    assert "performance_profiles" in text
    for dataset, _ in DATASETS:
        assert f"predicted flops above the limit on {dataset}" in text  # every non-ok reason
    assert "abc123def" in text and "openblas 0.3.21" in text  # provenance: commit, BLAS
    assert "t_order" in text or "order [s]" in text
    assert text.count("<tr><td class=\"name\" data-v=") >= CELLS


@needs_chromium
def test_headless_chromium_renders_the_table(report_page, tmp_path):
    done = chromium(report_page, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert 'id="js-error"' not in dom, re.findall(r'id="js-error">[^<]*', dom)
    match = re.search(r'<body[^>]*data-rows="(\d+)"', dom)
    assert match, "the page's script did not run (no data-rows on <body>)"
    assert int(match.group(1)) == CELLS
    assert f"table ready: {CELLS} rows" in dom

    shot = tmp_path / "shot.png"
    done = chromium(report_page, tmp_path, "--hide-scrollbars", "--window-size=1280,900", f"--screenshot={shot}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@needs_chromium
def test_a_javascript_error_shows_in_the_page(report_page, tmp_path):
    # The check above can fail: a page whose script throws shows the error marker instead.
    broken = tmp_path / "broken.html"
    broken.write_text(report_page.read_text().replace("</body>", "<script>undefinedFunction();</script></body>"))
    dom = chromium(broken, tmp_path, "--dump-dom").stdout
    assert 'id="js-error"' in dom and "undefinedFunction" in dom


def test_report_old_option_spelling_still_works(tmp_path):
    results = study(tmp_path / "study.parquet")
    result = runner.invoke(app, ["report", str(results), "--out-dir", str(tmp_path / "old")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "old" / "report.html").is_file()
    assert "deprecated" in result.output
