"""The run engine: rows per cell, statuses and reasons, budgets, fragments, resume.

Every cell runs in a spawned child, so the test plug-ins live in an importable module
(tests/plugins_for_tests.py) that the children import too.
"""

import json

import pytest

from permbench import datasets, orderings
from permbench.harness import backends, runner
from permbench.harness.results import read_results
from permbench.harness.store import ResultStore


def run(tmp_path, plugins, **kw):
    kw.setdefault("timeout_s", 60)
    cfg = runner.RunConfig(out=tmp_path / "r.parquet", plugins=plugins, **kw)
    return cfg, runner.run(cfg).frame


def test_rows_per_cell_and_repeat(plugins, tmp_path):
    cfg, frame = run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["amd", "natural"],
                     backends=["symbolic"], repeat=2, jobs=2)
    assert len(frame) == 4
    assert set(frame["status"]) == {"ok"}, frame["reason"].tolist()
    amd = frame[frame["ordering"] == "amd"]
    nat = frame[frame["ordering"] == "natural"]
    assert (amd["nnz_L"].to_numpy() < nat["nnz_L"].to_numpy()).all()  # AMD reduces fill on a grid
    assert frame["n"].iloc[0] == 144 and (frame["t_order_s"] >= 0).all()
    assert frame["cell_id"].nunique() == 2  # repeats share the cell id
    # Every fragment was merged into the result file, then removed with its folder.
    assert not runner.parts_dir_for(cfg.out).exists()
    stored, prov = read_results(cfg.out)
    assert len(stored) == 4
    assert prov["run"]["repeat"] == 2 and len(prov["runs"]) == 1  # the provenance is in the parquet metadata


def test_failures_cost_only_their_cell(plugins, tmp_path):
    _, frame = run(tmp_path, plugins, datasets=["test-tinygrid", "test-broken"],
                   orderings=["amd", "test-exploding", "test-duplicate", "test-bad-tree", "test-missing"],
                   backends=["symbolic"], jobs=2)
    status = {(r.dataset, r.ordering): (r.status, r.reason) for r in frame.itertuples()}
    assert status[("test-tinygrid", "amd")][0] == "ok"
    assert status[("test-tinygrid", "test-exploding")][0] == "error"
    assert "kaboom" in status[("test-tinygrid", "test-exploding")][1]
    assert "not a bijection" in status[("test-tinygrid", "test-duplicate")][1]
    assert status[("test-tinygrid", "test-bad-tree")][0] == "error"
    assert "ND tree: node sizes sum to 143, expected n=144" in status[("test-tinygrid", "test-bad-tree")][1]
    assert status[("test-tinygrid", "test-missing")][0] == "unavailable"
    assert "no_such_module_anywhere" in status[("test-tinygrid", "test-missing")][1]
    for o in ("amd", "test-exploding"):
        st, reason = status[("test-broken", o)]
        assert st == "error" and "disk on fire" in reason and "test-broken" in reason


def test_unknown_names_fail_before_any_work(plugins, tmp_path):
    with pytest.raises(Exception, match="valid orderings"):
        run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["nope"])
    assert not (tmp_path / "r.parquet.parts").exists()


def test_numeric_backend_rows_phase_times_residual_and_not_spd(plugins, tmp_path):
    _, frame = run(tmp_path, plugins, datasets=["test-tinygrid", "test-tinygrid[shift=-10.0]"], orderings=["amd"],
                   backends=["symbolic", "test-dense[k=3]"])
    row = frame[(frame["dataset"] == "test-tinygrid") & (frame["backend"] == "test-dense[k=3]")].iloc[0]
    assert row["status"] == "ok", row["reason"]
    assert row["residual"] < 1e-10
    for col in ("t_analyze_s", "t_factor_s", "t_solve_s", "t_total_s", "t_total_k_s"):
        assert row[col] > 0
    assert row["t_total_k_s"] > row["t_total_s"] - row["t_order_s"]
    assert row["k"] == 3
    # Indefinite matrix: the factorization fails, the ordering and symbolic metrics stay.
    indefinite = frame[frame["dataset"] == "test-tinygrid[shift=-10.0]"]
    dense = indefinite[indefinite["backend"] == "test-dense[k=3]"].iloc[0]
    assert dense["status"] == "not_spd", dense["reason"]
    assert dense["nnz_L"] > 0 and dense["t_order_s"] >= 0
    assert indefinite[indefinite["backend"] == "symbolic"].iloc[0]["status"] == "ok"


def test_memory_budget_skips_numeric_factorization(plugins, tmp_path):
    # Natural order on a 500x500 grid: nnz_L ~ 1.25e8, a predicted 1.4 GiB factor, over a 1 GiB
    # budget that the child itself (a few hundred MiB) stays under.
    _, frame = run(tmp_path, plugins, datasets=["test-tinygrid[k=500]"], orderings=["natural"],
                   backends=["symbolic", "test-dense"], mem_limit_bytes=2**30)
    dense = frame[frame["backend"] == "test-dense"].iloc[0]
    assert dense["status"] == "skipped" and "predicted factor size" in dense["reason"], dense["reason"]
    assert "already resident" in dense["reason"]
    assert dense["nnz_L"] > 10**8
    assert frame[frame["backend"] == "symbolic"].iloc[0]["status"] == "ok"


@pytest.mark.cholmod
def test_cholmod_row_has_phase_times_and_residual(plugins, tmp_path):
    pytest.importorskip("sksparse")
    _, frame = run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["amd"], backends=["cholmod[k=3]"])
    row = frame.iloc[0]
    assert row["status"] == "ok", row["reason"]
    assert row["residual"] < 1e-10
    for col in ("t_analyze_s", "t_factor_s", "t_solve_s", "t_total_s", "t_total_k_s"):
        assert row[col] > 0
    assert row["k"] == 3


def test_resume_skips_finished_cells_and_force_reruns(plugins, tmp_path):
    kw = dict(datasets=["test-tinygrid"], orderings=["test-stamp", "amd"], backends=["symbolic"])
    _, first = run(tmp_path, plugins, **kw)
    _, second = run(tmp_path, plugins, **kw)
    stamp = lambda f: json.loads(f[f["ordering"] == "test-stamp"]["ordering_extras"].iloc[0])  # noqa: E731
    assert stamp(second) == stamp(first)  # not re-run: the same row, same process stamp
    _, forced = run(tmp_path, plugins, force=["test-stamp"], **kw)
    assert stamp(forced)["time_ns"] != stamp(first)["time_ns"]
    assert len(forced) == 2 and stamp(forced)["seed"] == 0
    # amd was not forced: its row is the one from the first run.
    amd = lambda f: f[f["ordering"] == "amd"]["t_order_s"].iloc[0]  # noqa: E731
    assert amd(forced) == amd(first)


def test_force_patterns():
    cell = runner.Cell("id", "grid[n=10000]", "patch[patch_size=256]", "cholmod")
    assert runner.is_forced(cell, ["grid[n=10000]"])  # literal name, brackets and all
    assert runner.is_forced(cell, ["patch*"])
    assert runner.is_forced(cell, ["*/patch*/cholmod"])
    assert runner.is_forced(cell, ["*"])
    assert not runner.is_forced(cell, ["metis", "grid[n=1000]", "*/*/symbolic"])
    assert not runner.is_forced(cell, [])


def test_errors_are_retried_unless_no_retry(plugins, tmp_path):
    kw = dict(datasets=["test-tinygrid"], orderings=["test-exploding", "amd"], backends=["symbolic"])
    cfg, _ = run(tmp_path, plugins, **kw)
    groups = runner.plan(cfg)
    states = runner.cell_states(runner.cells_of(groups), ResultStore(cfg.out), cfg)
    by_ordering = {c.ordering: states[c.cell_id] for c in runner.cells_of(groups)}
    assert by_ordering["test-exploding"].action == "run" and by_ordering["test-exploding"].why == "retry"
    assert by_ordering["amd"].action == "done"
    cfg.retry = False
    states = runner.cell_states(runner.cells_of(groups), ResultStore(cfg.out), cfg)
    assert all(s.action == "done" for s in states.values())


def test_more_repeats_rerun_a_cell(plugins, tmp_path):
    kw = dict(datasets=["test-tinygrid"], orderings=["amd"], backends=["symbolic"])
    run(tmp_path, plugins, repeat=1, **kw)
    cfg, frame = run(tmp_path, plugins, repeat=2, **kw)
    assert sorted(frame["repeat"]) == [0, 1]  # replaced, not appended: two rows, not three


def test_rounds_interleave_the_repeats_of_a_dataset_in_fresh_children(plugins, tmp_path):
    """rounds=3, repeat=3: repeat k of every cell of the dataset runs before any repeat k + 1, each
    in a child of its own; each cell is written once, with all its rows."""
    cfg, frame = run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["test-stamp", "test-stamp[seconds=0.01]"],
                     backends=["symbolic"], repeat=3, rounds=3)
    assert set(frame["status"]) == {"ok"} and len(frame) == 6
    stats = [dict(json.loads(r.ordering_extras), repeat=r.repeat, cell=r.cell_id) for r in frame.itertuples()]
    for k in range(2):
        assert max(s["time_ns"] for s in stats if s["repeat"] == k) < min(s["time_ns"] for s in stats if s["repeat"] == k + 1)
    for cell in {s["cell"] for s in stats}:
        assert len({s["pid"] for s in stats if s["cell"] == cell}) == 3  # a fresh child per round
        assert sorted(s["repeat"] for s in stats if s["cell"] == cell) == [0, 1, 2]
    assert read_results(cfg.out)[1]["run"]["rounds"] == 3


def test_rounds_stop_a_failed_cell_and_keep_the_others(plugins, tmp_path):
    _, frame = run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["amd", "test-exploding"],
                   backends=["symbolic"], repeat=4, rounds=2)
    amd, bad = frame[frame["ordering"] == "amd"], frame[frame["ordering"] == "test-exploding"].sort_values("repeat")
    assert list(amd["status"]) == ["ok"] * 4 and sorted(amd["repeat"]) == [0, 1, 2, 3]
    assert list(bad["status"]) == ["error"] * 4 and sorted(bad["repeat"]) == [0, 1, 2, 3]
    # Round 0 ran repeats 0 and 2 (both fail in the child); round 1 never ran the cell.
    assert "kaboom" in bad["reason"].iloc[0]
    assert all(r.startswith("not run: an earlier repeat failed") for r in bad["reason"].iloc[[1, 3]])
    with pytest.raises(ValueError, match="rounds"):
        runner.RunConfig(datasets=["x"], orderings=["amd"], rounds=0)
