"""Runs that survive: per-unit child processes, timeouts, memory cap, crashes, interrupts, resume.

The misbehaving plug-ins are in tests/plugins_for_tests.py; children import it by name (the
parent's sys.path reaches them, as with multiprocessing's spawn), CLI runs through --plugins.
"""

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from permbench import datasets, orderings
from permbench.harness import backends, runner
from permbench.harness.isolation import Limits, run_child
from permbench.harness.store import ResultStore, read_fragments

TESTS = Path(__file__).resolve().parent
PERMBENCH = Path(sys.executable).with_name("permbench")


def run(tmp_path, plugins, **kw):
    kw.setdefault("timeout_s", 60)
    cfg = runner.RunConfig(out=tmp_path / "r.parquet", plugins=plugins, **kw)
    return runner.run(cfg).frame


def by_cell(frame):
    return {(r.ordering, r.backend, r.repeat): r for r in frame.itertuples()}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# ------------------------------------------------------------------------------------------------
# The child process itself.

def test_messages_sent_before_a_crash_are_kept():
    got = []
    outcome = run_child("plugins_for_tests:emit_then_abort", 3, Limits(timeout_s=30), on_message=got.append)
    assert got == [0, 1, 2]
    assert outcome.status == "error"
    assert "SIGABRT" in outcome.reason and "about to abort" in outcome.reason
    assert "Fatal Python error: Aborted" in outcome.reason  # faulthandler's report is quoted


def test_thread_counts_are_set_before_numpy_loads():
    got = []
    outcome = run_child("plugins_for_tests:emit_and_finish", "x", Limits(timeout_s=30, threads=1),
                        on_message=got.append)
    assert outcome.ok, outcome.reason
    (info,) = got
    assert info["payload"] == "x"
    assert info["env"] == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    assert info["pools"] and set(info["pools"]) == {1}  # numpy's OpenBLAS, as loaded


# ------------------------------------------------------------------------------------------------
# Faults cost one cell.

def test_segfault_and_abort_cost_only_their_cells(plugins, tmp_path):
    frame = run(tmp_path, plugins, datasets=["test-tinygrid"], jobs=2,
                orderings=["test-crash", "test-crash[how=segv]", "amd"], backends=["symbolic"])
    cells = {r.ordering: r for r in frame.itertuples()}
    assert cells["amd"].status == "ok"
    abort, segv = cells["test-crash"], cells["test-crash[how=segv]"]
    assert abort.status == segv.status == "error"
    assert "SIGABRT" in abort.reason and "ordering test-crash (repeat 0)" in abort.reason
    assert "SIGSEGV" in segv.reason


def test_crashing_backend_costs_only_its_cell(plugins, tmp_path):
    # The back-end crashes the child in repeat 0: the other back-end's repeats still run (in a new
    # child) and the ordering's metrics stay on the crashed cell's row.
    frame = run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["amd"],
                backends=["test-abort-backend", "symbolic"], repeat=2)
    cells = by_cell(frame)
    assert [cells[("amd", "symbolic", r)].status for r in (0, 1)] == ["ok", "ok"]
    crashed = cells[("amd", "test-abort-backend", 0)]
    assert crashed.status == "error" and "SIGABRT" in crashed.reason
    assert "back-end test-abort-backend (repeat 0)" in crashed.reason
    assert crashed.nnz_L == cells[("amd", "symbolic", 0)].nnz_L  # computed before the crash
    assert cells[("amd", "test-abort-backend", 1)].status == "error"


def test_timeout_kills_the_process_group(plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("PERMBENCH_TEST_PIDDIR", str(tmp_path))
    t0 = time.monotonic()
    frame = run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["test-sleep[seconds=30]"],
                backends=["symbolic"], timeout_s=5)
    assert time.monotonic() - t0 < 30
    row = frame.iloc[0]
    assert row["status"] == "timeout"
    assert re.search(r"still running after 5\.\d s", row["reason"]), row["reason"]
    assert "step 'ordering test-sleep[seconds=30.0] (repeat 0)'" in row["reason"]
    (pids,) = [p.read_text().split() for p in tmp_path.glob("*.pids")]
    child, grandchild = map(int, pids)
    assert not alive(child) and not alive(grandchild)  # the whole group, not just the child
    # A timeout is not final: the next run retries the cell.
    cfg = runner.RunConfig(datasets=["test-tinygrid"], orderings=["test-sleep[seconds=30]"], out=tmp_path / "r.parquet",
                           plugins=plugins)
    (state,) = runner.cell_states(runner.cells_of(runner.plan(cfg)), ResultStore(cfg.out), cfg).values()
    assert (state.action, state.why, state.statuses) == ("run", "retry", ("timeout",))


def test_memory_cap_kills_the_child(plugins, tmp_path):
    frame = run(tmp_path, plugins, datasets=["test-tinygrid"], orderings=["test-hog[mib=8192]"],
                backends=["symbolic"], mem_limit_bytes=1200 * 2**20)
    hog = frame.iloc[0]
    assert hog.status == "oom", hog.reason
    assert "exceeded the cap 1.17 GiB" in hog.reason and "step 'ordering test-hog[mib=8192] (repeat 0)'" in hog.reason
    assert 1200 * 2**20 < hog.peak_rss_bytes < 8192 * 2**20  # stopped near the cap, long before 8 GiB


# ------------------------------------------------------------------------------------------------
# Results that cannot be written.

def test_unwritable_results_folder_fails_before_any_work(plugins, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = runner.RunConfig(datasets=["test-tinygrid"], orderings=["amd"], out=blocker / "r.parquet", plugins=plugins)
    with pytest.raises(runner.ResultsWriteError, match="cannot write results at .*file/r.parquet"):
        runner.run(cfg)


def test_full_disk_stops_the_run_and_keeps_earlier_fragments(plugins, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    real_write = pq.write_table
    calls = {"n": 0}

    def write_until_full(table, where, *a, **kw):
        if not isinstance(where, (str, os.PathLike)):  # the in-memory round trip of a checksum
            return real_write(table, where, *a, **kw)
        calls["n"] += 1
        if calls["n"] > 1:
            Path(where).write_bytes(b"PAR1 half a file")  # the disk fills up mid-write
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(table, where, *a, **kw)

    monkeypatch.setattr(pq, "write_table", write_until_full)
    cfg = runner.RunConfig(datasets=["test-tinygrid"], orderings=["amd", "natural", "rcm"], out=tmp_path / "r.parquet",
                           plugins=plugins, timeout_s=60)
    with pytest.raises(runner.ResultsWriteError, match="No space left on device") as err:
        runner.run(cfg)
    parts = runner.parts_dir_for(cfg.out)
    assert str(parts) in str(err.value) and "intact" in str(err.value)
    monkeypatch.undo()
    (kept,) = list(parts.glob("*.parquet"))  # the fragment written before the disk filled up
    assert read_fragments(parts)["status"].tolist() == ["ok"]
    assert kept.stem in {c.cell_id for c in runner.cells_of(runner.plan(cfg))}
    assert [p.name for p in parts.iterdir() if p.name != ".cache"] == [kept.name]  # no temporary file left
    assert not (parts / ".cache").exists()


# ------------------------------------------------------------------------------------------------
# The command line, killed and interrupted.

def cli(tmp_path, *args, mark="", plugins_env=False):
    """``permbench run`` in a subprocess, with the test plug-ins (--plugins, or $PERMBENCH_PLUGINS)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               PERMBENCH_TEST_PIDDIR=str(tmp_path), PERMBENCH_TEST_MARK=mark)
    plugins = []
    if plugins_env:
        env["PERMBENCH_PLUGINS"] = "plugins_for_tests"
    else:
        plugins = ["--plugins", "plugins_for_tests"]
    cmd = [str(PERMBENCH), "run", *plugins, "--out", str(tmp_path / "r.parquet"), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_fragments(parts: Path, count: int, proc, timeout_s: float = 60) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted(parts.glob("*.parquet"))
        if len(found) >= count:
            return found
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.02)
    raise AssertionError(f"no fragment in {parts} after {timeout_s} s")


def marked_processes(mark: str) -> list[int]:
    pids = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("PERMBENCH_TEST_MARK") == mark:
                pids.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return pids


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(plugins, tmp_path):
    args = ["-d", "test-tinygrid", "-o", "test-stamp[seconds=0.1|0.2|0.3]", "-b", "symbolic"]
    mark = f"kill-{os.getpid()}-{time.time_ns()}"
    proc = cli(tmp_path, *args, mark=mark)
    parts = tmp_path / "r.parquet.parts"
    first = wait_for_fragments(parts, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_fragments(parts).set_index("cell_id")["ordering_extras"].to_dict()  # process stamps
    assert 1 <= len(before) < 3
    deadline = time.monotonic() + 10
    while marked_processes(mark) and time.monotonic() < deadline:  # children die with the parent
        time.sleep(0.05)
    assert marked_processes(mark) == []
    assert first[0].stem in before

    rerun = cli(tmp_path, *args)
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    frame = pd.read_parquet(tmp_path / "r.parquet")
    assert len(frame) == 3 and frame["cell_id"].is_unique and set(frame["status"]) == {"ok"}
    stamps = frame.set_index("cell_id")["ordering_extras"]
    for cid, stamp in before.items():
        assert stamps[cid] == stamp  # finished before the kill: kept as is, not re-run
    assert not parts.exists()  # merged into the result file; no temporary or cache left


def test_sigint_keeps_finished_cells_and_kills_children(plugins, tmp_path):
    args = ["-d", "test-tinygrid", "-o", "test-stamp", "-o", "test-sleep[seconds=60]", "-b", "symbolic"]
    proc = cli(tmp_path, *args, plugins_env=True)
    parts = tmp_path / "r.parquet.parts"
    wait_for_fragments(parts, 1, proc)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("*.pids")) and time.monotonic() < deadline:  # test-sleep is running
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, output
    assert "interrupted" in output
    frame = read_fragments(parts)
    assert frame["ordering"].tolist() == ["test-stamp"] and frame["status"].tolist() == ["ok"]
    assert [p.name for p in parts.iterdir()] == [f"{frame['cell_id'].iloc[0]}.parquet"]  # nothing partial
    (pids,) = [p.read_text().split() for p in tmp_path.glob("*.pids")]
    assert not any(alive(int(pid)) for pid in pids)


def test_exit_code_and_dry_run(plugins, tmp_path):
    from typer.testing import CliRunner

    from permbench.harness.cli import app

    base = ["run", "--plugins", "plugins_for_tests", "--out", str(tmp_path / "r.parquet"), "-d", "test-tinygrid",
            "-b", "symbolic", "--jobs", "2"]
    cli_runner = CliRunner()
    result = cli_runner.invoke(app, base + ["-o", "amd", "-o", "test-missing"])
    assert result.exit_code == 0, result.output  # unavailable is reported, not a failure
    result = cli_runner.invoke(app, base + ["-o", "amd", "-o", "test-missing", "-o", "test-exploding", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = {line.split(" · ")[1]: line for line in result.output.splitlines() if line.count(" · ") == 2}
    assert lines["amd"].startswith("done (ok)") and lines["test-missing"].startswith("done (unavailable)")
    assert lines["test-exploding"].startswith("to run (new)")
    assert "3 cells: 2 done, 0 stale, 1 to run" in result.output
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 2  # a dry run runs nothing
    result = cli_runner.invoke(app, base + ["-o", "amd", "-o", "test-exploding"])
    assert result.exit_code == 1, result.output
    assert "kaboom" in result.output


# ------------------------------------------------------------------------------------------------
# Dask.

@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_results(plugins, tmp_path):
    pytest.importorskip("distributed")
    kw = dict(datasets=["test-tinygrid[k=20]"], orderings=["amd", "natural", "test-exploding"],
              backends=["symbolic", "test-dense"], jobs=2)
    local = run(tmp_path / "local", plugins, **kw)
    dask = run(tmp_path / "dask", plugins, executor="dask", **kw)
    cols = ["cell_id", "dataset", "ordering", "backend", "repeat", "status", "nnz_L", "flops", "backend_nnz_L"]
    pd.testing.assert_frame_equal(local[cols], dask[cols])
    # An existing cluster, reached through its scheduler's address.
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = run(tmp_path / "remote", plugins, executor="dask", scheduler=cluster.scheduler_address, **kw)
    pd.testing.assert_frame_equal(local[cols], remote[cols])
    assert set(local["status"]) == {"ok", "error"}
    dense = dask[(dask["status"] == "ok") & (dask["backend"] == "test-dense")]
    assert len(dense) == 2 and (dense["residual"] < 1e-10).all()
