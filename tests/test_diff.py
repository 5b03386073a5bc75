"""`permbench diff`: stored result files compared per cell and metric, with significance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from permbench.harness import diff
from permbench.harness.cli import app
from permbench.harness.results import write_results

runner = CliRunner()


def study_rows(repeats: int, slow: dict | None = None, cell_prefix: str = "a", seed: int = 0,
               dataset_names=("grid[n=2500]", "icosphere[n=2562]")) -> list[dict]:
    """2 datasets × 2 orderings × symbolic, `repeats` repeats with a few % of noise; the orderings
    named in `slow` have their timings multiplied by the factor given."""
    rng = np.random.default_rng(seed)
    slow = slow or {}
    rows = []
    for dataset, n in zip(dataset_names, (2500, 2562)):
        for ordering, t in (("amd", 0.01), ("metis", 0.03)):
            for repeat in range(repeats):
                factor = slow.get(ordering, 1.0)
                rows.append(dict(cell_id=f"{cell_prefix}-{dataset}-{ordering}", dataset=dataset, ordering=ordering,
                                 backend="symbolic", repeat=repeat, status="ok", reason="", n=n,
                                 nnz_L=10 * n, flops=100 * n,
                                 t_order_s=factor * t * (1 + 0.03 * rng.standard_normal()),
                                 t_symbolic_s=0.001 * (1 + 0.03 * rng.standard_normal())))
    return rows


def write(path, rows):
    write_results(rows, path, {"test": True})
    return path


def verdicts(outcome, metric="t_order_s"):
    rows = outcome.rows[outcome.rows["metric"] == metric]
    return {(r.dataset, r.ordering): r.verdict for r in rows.itertuples()}


def test_planted_2x_slowdown_is_flagged_and_exits_1(tmp_path):
    base = write(tmp_path / "base.parquet", study_rows(5))
    # Different noise and different cell ids (the code changed): cells still match by name.
    new = write(tmp_path / "new.parquet", study_rows(5, slow={"metis": 2.0}, cell_prefix="b", seed=1))
    outcome = diff.diff_files(base, new, threshold=1.1)
    got = verdicts(outcome)
    assert got[("grid[n=2500]", "metis")] == diff.REGRESSED
    assert got[("icosphere[n=2562]", "metis")] == diff.REGRESSED
    assert got[("grid[n=2500]", "amd")] == diff.SAME and got[("icosphere[n=2562]", "amd")] == diff.SAME
    row = outcome.rows[(outcome.rows["metric"] == "t_order_s") & (outcome.rows["ordering"] == "metis")].iloc[0]
    assert 1.8 < row.ratio < 2.2 and row.p_value < 0.05
    assert row.base_min <= row.base_median <= row.base_max
    assert outcome.exit_code() == 1

    result = runner.invoke(app, ["diff", str(base), str(new)])
    assert result.exit_code == 1, result.output
    assert "regressed" in result.output


def test_a_2x_speedup_is_an_improvement_not_a_failure(tmp_path):
    base = write(tmp_path / "base.parquet", study_rows(5, slow={"amd": 2.0}))
    new = write(tmp_path / "new.parquet", study_rows(5, seed=1))
    outcome = diff.diff_files(base, new)
    assert verdicts(outcome)[("grid[n=2500]", "amd")] == diff.IMPROVED
    assert outcome.exit_code() == 0


def test_identical_files_are_not_flagged(tmp_path):
    base = write(tmp_path / "base.parquet", study_rows(5))
    outcome = diff.diff_files(base, base)
    assert set(outcome.rows["verdict"]) == {diff.SAME}
    assert (outcome.rows["ratio"] == 1.0).all()
    result = runner.invoke(app, ["diff", str(base), str(base), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["summary"]["regressions"] == 0 and data["summary"]["compared_cells"] == 4


def test_one_repeat_says_too_few_repeats_and_does_not_fail(tmp_path):
    base = write(tmp_path / "base.parquet", study_rows(1))
    new = write(tmp_path / "new.parquet", study_rows(1, slow={"metis": 2.0}, seed=1))
    outcome = diff.diff_files(base, new)
    assert verdicts(outcome)[("grid[n=2500]", "metis")] == diff.TOO_FEW
    assert outcome.exit_code() == 0
    result = runner.invoke(app, ["diff", str(base), str(new), "--format", "md"])
    assert result.exit_code == 0
    assert "too few repeats" in result.output


def test_smallest_p_value_decides_when_repeats_can_tell():
    # Two-sided exact Mann–Whitney: 3 against 3 cannot go below 0.1, 4 against 4 can (0.029).
    assert diff.min_p_value(3, 3) == pytest.approx(0.1)
    assert diff.min_p_value(4, 4) == pytest.approx(2 / 70)
    assert diff.min_p_value(1, 10) > 0.05


def test_counts_compare_exactly(tmp_path):
    base_rows = study_rows(5)
    new_rows = study_rows(5, seed=1)
    for row in new_rows:
        if row["ordering"] == "amd" and row["dataset"] == "grid[n=2500]":
            row["nnz_L"] += 1  # one more nonzero: not noise, a different factor
        if row["ordering"] == "metis" and row["dataset"] == "grid[n=2500]":
            row["flops"] *= 3
    outcome = diff.diff_files(write(tmp_path / "b.parquet", base_rows), write(tmp_path / "n.parquet", new_rows))
    assert verdicts(outcome, "nnz_L")[("grid[n=2500]", "amd")] == diff.DIFFERS
    assert verdicts(outcome, "nnz_L")[("grid[n=2500]", "metis")] == diff.SAME
    assert verdicts(outcome, "flops")[("grid[n=2500]", "metis")] == diff.REGRESSED
    assert outcome.exit_code() == 1


def test_cells_match_by_canonical_name_and_one_sided_cells_are_listed(tmp_path):
    # grid's default n is 10000: "grid[n=10000]" and "grid" are the same cell.
    base = write(tmp_path / "b.parquet", study_rows(5, dataset_names=("grid[n=10000]", "torus")))
    new = write(tmp_path / "n.parquet", study_rows(5, seed=1, dataset_names=("grid", "delaunay")))
    outcome = diff.diff_files(base, new)
    assert set(outcome.rows["dataset"]) == {"grid"}
    assert list(outcome.only_in_base["dataset"]) == ["torus", "torus"]
    assert list(outcome.only_in_new["dataset"]) == ["delaunay", "delaunay"]
    result = runner.invoke(app, ["diff", str(base), str(new)])
    assert result.exit_code == 0
    assert "only in base" in result.output and "only in new" in result.output


def test_a_cell_that_now_fails_is_a_regression(tmp_path):
    new_rows = study_rows(5, seed=1)
    for row in new_rows:
        if row["ordering"] == "amd" and row["dataset"] == "grid[n=2500]":
            row.update(status="error", reason="boom", t_order_s=None)
    outcome = diff.diff_files(write(tmp_path / "b.parquet", study_rows(5)), write(tmp_path / "n.parquet", new_rows))
    change = outcome.status_changes.iloc[0]
    assert (change.base_status, change.new_status, change.new_reason) == ("ok", "error", "boom")
    assert outcome.exit_code() == 1


def test_csv_output_and_bad_arguments(tmp_path):
    base = write(tmp_path / "b.parquet", study_rows(5))
    out = tmp_path / "diff.csv"
    result = runner.invoke(app, ["diff", str(base), str(base), "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[:5] == ["dataset", "ordering", "backend", "metric", "unit"] and "p_value" in header
    assert runner.invoke(app, ["diff", str(base), str(tmp_path / "missing.parquet")]).exit_code == 2
    assert runner.invoke(app, ["diff", str(base), str(base), "--format", "xml"]).exit_code == 2
