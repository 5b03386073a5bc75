"""The result store: accumulation across runs, one writer, verified fragments, exit codes.

Real processes and real files throughout: runs go through ``runner.run`` or the ``permbench``
command in a subprocess; nothing of the store is mocked.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from permbench.harness import runner
from permbench.harness.results import read_results
from permbench.harness.store import ResultStore, StoreError, check_unique, parts_dir_for

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
PERMBENCH = Path(sys.executable).with_name("permbench")


def config(tmp_path, plugins, orderings, out="r.parquet", **kw):
    kw.setdefault("timeout_s", 60)
    return runner.RunConfig(datasets=["test-tinygrid"], orderings=orderings, backends=["symbolic"],
                            out=tmp_path / out, plugins=plugins, **kw)


def cli(tmp_path, out, *args):
    env = dict(os.environ, PYTHONPATH=str(TESTS), PERMBENCH_TEST_PIDDIR=str(tmp_path))
    cmd = [str(PERMBENCH), "run", "--plugins", "plugins_for_tests", "--out", str(out), "-d", "test-tinygrid",
           "-b", "symbolic", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path: Path, proc, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def test_two_invocations_with_different_cells_accumulate(plugins, tmp_path):
    first = runner.run(config(tmp_path, plugins, ["amd"]))
    second = runner.run(config(tmp_path, plugins, ["natural"]))
    frame, prov = read_results(tmp_path / "r.parquet")
    assert sorted(frame["ordering"]) == ["amd", "natural"]
    assert len(second.cells) == 1 and len(second.frame) == 2
    # The amd row is the first run's, untouched.
    amd = frame[frame["ordering"] == "amd"].iloc[0]
    assert amd["t_order_s"] == first.frame.iloc[0]["t_order_s"]
    assert [r["orderings"] for r in (run["run"] for run in prov["runs"])] == [["amd"], ["natural"]]


def test_a_bare_committed_result_file_is_kept_and_extended(plugins, tmp_path):
    committed = REPO / "results" / "paper" / "paper.parquet"
    old, _ = read_results(committed)
    copy = tmp_path / "copy.parquet"
    shutil.copy(committed, copy)
    outcome = runner.run(config(tmp_path, plugins, ["amd"], out="copy.parquet"))
    frame, prov = read_results(copy)
    assert len(frame) == len(old) + 1
    assert outcome.status_counts() == {"ok": 1}
    kept = frame[frame["cell_id"].isin(old["cell_id"])].sort_values(["cell_id", "repeat"]).reset_index(drop=True)
    old = old.sort_values(["cell_id", "repeat"]).reset_index(drop=True)
    for col in ("dataset", "ordering", "backend", "status", "nnz_L", "t_order_s"):
        pd.testing.assert_series_equal(kept[col], old[col], check_dtype=False)
    assert len(prov["runs"]) == 2  # the committed file's own provenance, then this run's


def test_files_that_are_not_permbench_results_are_refused(plugins, tmp_path):
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(foreign)
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="not a permbench result file .*refusing to overwrite"):
        runner.run(config(tmp_path, plugins, ["amd"], out="foreign.parquet"))
    assert foreign.read_bytes() == before
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("hello")
    with pytest.raises(StoreError, match="not a readable parquet file"):
        runner.run(config(tmp_path, plugins, ["amd"], out="garbage.parquet"))
    assert garbage.read_text() == "hello"


def test_a_second_writer_is_refused_at_once_and_wait_waits(plugins, tmp_path):
    out = tmp_path / "r.parquet"
    holder = cli(tmp_path, out, "-o", "test-stamp[seconds=4]")
    wait_for(out.with_name(out.name + ".writer.json"), holder)
    t0 = time.monotonic()
    second = cli(tmp_path, out, "-o", "amd")
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 2, output
    assert time.monotonic() - t0 < 20  # at once: a fresh interpreter's start-up, no work
    assert f"PID {holder.pid}" in output and "--wait" in output
    waiter = cli(tmp_path, out, "-o", "amd", "--wait")
    time.sleep(1.0)
    assert waiter.poll() is None  # still waiting for the lock
    assert holder.wait(timeout=120) == 0
    output, _ = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, output
    assert sorted(pd.read_parquet(out)["ordering"]) == ["amd", "test-stamp[seconds=4.0]"]


def test_sigkill_of_the_lock_holder_frees_the_lock(plugins, tmp_path):
    out = tmp_path / "r.parquet"
    holder = cli(tmp_path, out, "-o", "test-sleep[seconds=30]")
    wait_for(out.with_name(out.name + ".writer.json"), holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    after = cli(tmp_path, out, "-o", "amd")
    output, _ = after.communicate(timeout=120)
    assert after.returncode == 0, output
    assert "cells: ok=1" in output


def test_forged_and_truncated_fragments_are_rejected_and_their_cells_rerun(plugins, tmp_path):
    cfg = config(tmp_path, plugins, ["amd", "natural", "rcm"])
    cells = {c.ordering: c.cell_id for c in runner.cells_of(runner.plan(cfg))}
    runner.run(config(tmp_path, plugins, ["amd"]))
    stored, _ = read_results(cfg.out)
    parts = parts_dir_for(cfg.out)
    # A real fragment of amd's cell, copied under natural's name; and a half-written one for rcm.
    ResultStore(cfg.out).write_new_fragment(stored.to_dict("records"), cells["amd"])
    shutil.copy(parts / f"{cells['amd']}.parquet", parts / f"{cells['natural']}.parquet")
    (parts / f"{cells['amd']}.parquet").unlink()
    (parts / f"{cells['rcm']}.parquet").write_bytes(b"PAR1 half a file")
    warnings = []
    outcome = runner.run(cfg, warn=warnings.append)
    text = "\n".join(warnings)
    assert f"{cells['natural']}.parquet" in text and f"holds cell {cells['amd']}" in text
    assert f"{cells['rcm']}.parquet" in text and "unreadable" in text
    assert sorted(p.name for p in (parts / "rejected").iterdir()) == sorted(
        [f"{cells['natural']}.parquet", f"{cells['rcm']}.parquet"])
    frame = outcome.frame
    assert sorted(frame["ordering"]) == ["amd", "natural", "rcm"] and frame["cell_id"].is_unique
    assert set(frame["status"]) == {"ok"}
    assert frame.set_index("ordering").at["natural", "cell_id"] == cells["natural"]


def test_a_fragment_edited_after_writing_fails_its_checksum(plugins, tmp_path):
    import pyarrow.parquet as pq

    cfg = config(tmp_path, plugins, ["amd"])
    runner.run(cfg)
    stored, _ = read_results(cfg.out)
    (cid,) = stored["cell_id"]
    store = ResultStore(cfg.out)
    path = store.write_new_fragment(stored.to_dict("records"), cid)
    table = pq.read_table(path)
    forged = table.set_column(table.column_names.index("nnz_L"), "nnz_L", pq.read_table(path)["nnz_L"].cast("int64"))
    forged = forged.set_column(forged.column_names.index("nnz_L"), "nnz_L",
                               __import__("pyarrow").array([1], type=forged.schema.field("nnz_L").type))
    pq.write_table(forged, path)  # keeps the header: the metadata travels with the schema
    warnings = []
    ResultStore(cfg.out, warn=warnings.append).fragments()
    assert "do not match the checksum" in warnings[0]


def test_the_merged_file_never_holds_a_cell_twice(tmp_path):
    row = dict(cell_id="a", dataset="d", ordering="o", backend="b", thread_budget="auto", repeat=0, status="ok")
    frame = pd.DataFrame([row, dict(row, cell_id="b")])
    with pytest.raises(StoreError, match="would hold cell d · o · b repeat 0 2 times"):
        check_unique(frame, tmp_path / "x.parquet")
    check_unique(pd.DataFrame([row, dict(row, repeat=1)]), tmp_path / "x.parquet")


def _invoke(tmp_path, *args):
    from typer.testing import CliRunner

    from permbench.harness.cli import app

    base = ["run", "--plugins", "plugins_for_tests", "--out", str(tmp_path / "r.parquet"), "-d", "test-tinygrid",
            "-b", "symbolic"]
    return CliRunner().invoke(app, base + list(args))


def test_exit_codes_and_the_last_line_summarize_the_run(plugins, tmp_path):
    ok = _invoke(tmp_path / "ok", "-o", "amd", "-o", "natural")
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().splitlines()[-1] == "cells: ok=2"
    oom = _invoke(tmp_path / "oom", "-o", "amd", "-o", "natural", "--mem-limit", "50M")
    assert oom.exit_code == 1, oom.output
    assert oom.output.strip().splitlines()[-1] == "cells: oom=2"
    timeout = _invoke(tmp_path / "timeout", "-o", "amd", "-o", "test-sleep[seconds=60]", "--timeout", "6")
    assert timeout.exit_code == 1, timeout.output
    assert timeout.output.strip().splitlines()[-1] == "cells: ok=1 timeout=1"


def test_a_locked_or_refused_file_exits_2(plugins, tmp_path):
    foreign = tmp_path / "r.parquet"
    foreign.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"a": [1]}).to_parquet(foreign)
    refused = _invoke(tmp_path, "-o", "amd")
    assert refused.exit_code == 2 and "not a permbench result file" in refused.output


def test_clean_merges_finished_fragments_and_removes_the_rest(plugins, tmp_path):
    from typer.testing import CliRunner

    from permbench.harness.cli import app

    cfg = config(tmp_path, plugins, ["amd", "natural"])
    cells = {c.ordering: c.cell_id for c in runner.cells_of(runner.plan(cfg))}
    runner.run(config(tmp_path, plugins, ["amd"]))
    stored, _ = read_results(cfg.out)
    store = ResultStore(cfg.out)
    # What an interrupted run leaves: a finished cell's fragment and a dataset cache.
    rows = [dict(r, cell_id=cells["natural"], ordering="natural") for r in stored.to_dict("records")]
    store.write_new_fragment(rows, cells["natural"])
    (store.parts / ".cache" / "x").mkdir(parents=True)
    result = CliRunner().invoke(app, ["clean", str(cfg.out)])
    assert result.exit_code == 0, result.output
    assert not store.parts.exists()
    assert sorted(read_results(cfg.out)[0]["ordering"]) == ["amd", "natural"]


def test_cells_at_different_thread_budgets_are_kept_side_by_side(plugins, tmp_path):
    # A thread-scaling study: the same cell at --threads 1 and 2 into one file, then 1 again.
    runner.run(config(tmp_path, plugins, ["test-threads"], threads=1))
    runner.run(config(tmp_path, plugins, ["test-threads"], threads=2))
    frame, _ = read_results(tmp_path / "r.parquet")
    assert sorted(frame["thread_budget"]) == ["1", "2"] and sorted(frame["threads"]) == [1, 2]
    again = config(tmp_path, plugins, ["test-threads"], threads=1)
    states = runner.cell_states(runner.cells_of(runner.plan(again)), ResultStore(again.out), again)
    assert [s.why for s in states.values()] == ["final"]
    default = config(tmp_path, plugins, ["test-threads"])
    states = runner.cell_states(runner.cells_of(runner.plan(default)), ResultStore(default.out), default)
    assert [s.why for s in states.values()] == ["new"]  # the default budget is a cell of its own
