"""The study commands (`permbench study ...`), the result-file tools (`permbench results ...`), the
asv module that replaced the symbolic-analysis script, the GPU host script's calls into them, and
the provenance a run records without a `.git` (the GPU host's copy of the tree)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from permbench.core import provenance
from permbench.harness import runner as run_api
from permbench.harness import studies
from permbench.harness.cli import app
from permbench.harness.results import read_results, write_results
from permbench.harness.store import StoreError, combine_files

REPO = Path(__file__).resolve().parents[1]
cli = CliRunner()
GRID = "grid[n=400]"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two real runs into two files: amd + metis once, then metis + patch twice (metis re-measured)."""
    folder = tmp_path_factory.mktemp("runs")
    first = run_api.run(run_api.RunConfig(datasets=[GRID], orderings=["amd", "metis"], out=folder / "first.parquet"))
    second = run_api.run(run_api.RunConfig(datasets=[GRID], orderings=["metis", "patch"], repeat=2,
                                           out=folder / "second.parquet"))
    assert set(first.frame["status"]) == set(second.frame["status"]) == {"ok"}
    return folder / "first.parquet", folder / "second.parquet"


# -- permbench results combine ---------------------------------------------------------------------

def test_combine_takes_each_cell_from_the_latest_file_that_holds_it(two_runs, tmp_path):
    first, second = two_runs
    out = tmp_path / "both.parquet"
    done = cli.invoke(app, ["results", "combine", str(first), str(second), "--out", str(out), "--note", "test"])
    assert done.exit_code == 0, done.output
    assert "5 rows from 2 files" in done.output
    frame, prov = read_results(out)
    repeats = frame.groupby("ordering")["repeat"].apply(sorted).to_dict()
    assert repeats == {"amd": [0], "metis": [0, 1], "patch": [0, 1]}  # metis: the second file's two repeats
    second_frame, _ = read_results(second)
    metis = frame[frame.ordering == "metis"].sort_values("repeat")
    assert list(metis["cell_id"]) == list(second_frame[second_frame.ordering == "metis"].sort_values("repeat")["cell_id"])
    assert [r["file"] for r in prov["runs"]] == ["first.parquet", "second.parquet"]
    assert [r["run"]["orderings"] for r in prov["runs"]] == [["amd", "metis"], ["metis", "patch"]]
    assert prov["combined"] == {"from": [str(first), str(second)], "note": "test"}
    assert "run" not in prov  # the runs are listed under "runs"; no one of them stands for the file


def test_combine_into_one_of_its_inputs_extends_it(two_runs, tmp_path):
    first, second = two_runs
    target = tmp_path / "target.parquet"
    target.write_bytes(first.read_bytes())
    frame = combine_files([target, second], target)
    assert sorted(frame["ordering"].unique()) == ["amd", "metis", "patch"] and len(read_results(target)[0]) == 5
    assert combine_files([target, second], target).equals(frame)  # combining again changes nothing


def test_combine_refuses_what_it_must_not_overwrite_or_read(two_runs, tmp_path):
    first, second = two_runs
    existing = tmp_path / "existing.parquet"
    existing.write_bytes(first.read_bytes())
    with pytest.raises(StoreError, match="not one of the inputs"):
        combine_files([first, second], existing)
    stranger = tmp_path / "stranger.parquet"
    import pandas as pd

    pd.DataFrame({"x": [1]}).to_parquet(stranger)
    done = cli.invoke(app, ["results", "combine", str(first), str(stranger), "--out", str(tmp_path / "o.parquet")])
    assert done.exit_code == 2 and "not a permbench result file" in done.output
    assert not (tmp_path / "o.parquet").exists()
    done = cli.invoke(app, ["results", "combine", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o.parquet")])
    assert done.exit_code == 2 and "no such result file" in done.output


def test_combine_the_committed_gpu_study_files(tmp_path):
    """Two H200 files (cuDSS 1.0, 16 threads) share the cuDSS-default cells: the later file's repeats win."""
    from permbench.harness.store import CELL_KEY, with_budget

    files = [REPO / "results" / "gpu" / "patch-cudss-h200-subtree-tasks.parquet",
             REPO / "results" / "gpu" / "patch-cudss-h200.parquet"]
    early, late = (with_budget(read_results(f)[0]) for f in files)
    shared = set(map(tuple, early[CELL_KEY].values)) & set(map(tuple, late[CELL_KEY].values))
    assert shared  # e.g. grid[matrix=graph,n=1000000] · native · cudss[k=10]
    frame = combine_files(files, tmp_path / "gpu.parquet")
    dropped = early[[tuple(k) in shared for k in early[CELL_KEY].values]]
    assert len(frame) == len(early) + len(late) - len(dropped)
    for key in shared:
        rows = frame[(frame[CELL_KEY] == list(key)).all(axis=1)]
        want = late[(late[CELL_KEY] == list(key)).all(axis=1)]
        assert sorted(rows["cell_id"] + rows["repeat"].astype(str)) == sorted(want["cell_id"] + want["repeat"].astype(str))
    assert {r["file"] for r in read_results(tmp_path / "gpu.parquet")[1]["runs"]} == {f.name for f in files}


def test_relabel_command_reports_what_it_did(two_runs, tmp_path):
    target = tmp_path / "r.parquet"
    target.write_bytes(two_runs[0].read_bytes())
    done = cli.invoke(app, ["results", "relabel", str(target)])
    assert done.exit_code == 0 and f"{target}: nothing to relabel" in done.output  # generated datasets only
    assert target.read_bytes() == two_runs[0].read_bytes()
    done = cli.invoke(app, ["results", "relabel", str(tmp_path / "missing.parquet")])
    assert done.exit_code == 2 and "no such result file" in done.output


def test_a_run_records_its_command_line_and_the_gpus(two_runs):
    _, prov = read_results(two_runs[0])
    assert isinstance(prov["run"]["argv"], list) and prov["run"]["argv"]
    assert isinstance(prov["gpus"], list)


# -- permbench study patch-table -------------------------------------------------------------------

def test_patch_table_reproduces_the_committed_study_tables(monkeypatch):
    """results/patch/patch-2core.md holds the tables the command prints for its result file."""
    monkeypatch.chdir(REPO)
    done = cli.invoke(app, ["study", "patch-table", "results/patch/patch-2core.parquet"])
    assert done.exit_code == 0, done.output
    assert done.output in (REPO / "results" / "patch" / "patch-2core.md").read_text()
    assert done.output.count("\n| ") > 40  # the tables themselves, not an empty header


def test_patch_table_of_a_small_run(two_runs, tmp_path):
    combined = combine_files(list(two_runs), tmp_path / "c.parquet")
    out = tmp_path / "table.md"
    done = cli.invoke(app, ["study", "patch-table", str(tmp_path / "c.parquet"), "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {GRID} |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    nnz = combined.groupby("ordering")["nnz_L"].median()
    assert cells[1] == f"{int(combined['n'].iloc[0]):,}"
    # columns: input, n, amd, metis, patch, patch/homa, /amd, /metis, nnz/metis, flops/metis, targets missed
    assert cells[8] == f"{nnz['patch'] / nnz['metis']:.3f}" and cells[5] == "nan"  # no homa in this run
    t = combined.groupby("ordering")["t_order_s"]
    assert cells[4] == f"{t.median()['patch']:.3f} [{t.min()['patch']:.3f}-{t.max()['patch']:.3f}]"
    assert "## patch: phase breakdown" in text and f"| {GRID} | " in text.split("phase breakdown")[1]


def test_patch_table_of_a_thread_scaling_run_never_pools_thread_budgets(tmp_path):
    files = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.parquet"
        run_api.run(run_api.RunConfig(datasets=[GRID], orderings=["patch"], repeat=2, threads=threads, out=out))
        files.append(out)
    combined = combine_files(files, tmp_path / "scaling.parquet")
    done = cli.invoke(app, ["study", "patch-table", str(tmp_path / "scaling.parquet")])
    assert done.exit_code == 0, done.output
    assert "thread budgets: [1, 2]" in done.output
    row = next(line for line in done.output.splitlines() if line.startswith(f"| {GRID} | ") and "| patch |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    t = {k: g.t_order_s for k, g in combined.groupby("threads")}
    assert cells[3] == f"{t[1].median():.3f} [{t[1].min():.3f}-{t[1].max():.3f}]"
    assert cells[4] == f"{t[2].median():.3f} [{t[2].min():.3f}-{t[2].max():.3f}]"
    assert cells[5] == f"{t[1].median() / t[2].median():.2f}x"
    assert "decomposition / local step" in done.output


def test_targets_a_run_cannot_check_are_not_reported_as_met():
    from permbench.harness.studies import _targets_missed

    nan = float("nan")
    assert _targets_missed(1_000_000, 0.5, 2.0, 0.1, 1.2) == ["amd 1.5x", "nnz 1.15x"]
    assert _targets_missed(50_000, nan, 0.5, 0.1, 1.0) == ["homa n/a"]  # homa did not run
    assert _targets_missed(1_000_000, nan, 0.66, nan, nan) == ["homa n/a", "metis 0.2x n/a", "nnz 1.15x n/a"]
    assert _targets_missed(1_000, nan, nan, 1.0, 1.0) == []  # below 30k only METIS's and the fill count


def test_patch_table_refuses_a_file_without_study_rows(tmp_path):
    done = cli.invoke(app, ["study", "patch-table", str(tmp_path / "none.parquet")])
    assert done.exit_code == 2 and "no such result file" in done.output
    empty = tmp_path / "empty.parquet"
    write_results([], empty, {"test": True})
    done = cli.invoke(app, ["study", "patch-table", str(empty)])
    assert done.exit_code == 2 and "no ok rows" in done.output


# -- permbench study isolation ---------------------------------------------------------------------

def test_isolation_study_reports_the_overhead_of_each_unit(tmp_path):
    out = tmp_path / "iso.parquet"
    done = cli.invoke(app, ["study", "isolation", "-d", GRID, "-o", "natural", "-o", "amd", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "2 units (one cell each), jobs=1" in done.output
    match = re.search(r"overhead per unit \(wall - work\): median ([0-9.]+) s, min ([0-9.]+) s, max ([0-9.]+) s",
                      done.output)
    assert match and 0 < float(match[2]) <= float(match[1]) <= float(match[3])
    frame, _ = read_results(out)
    assert sorted(frame["ordering"]) == ["amd", "natural"] and set(frame["status"]) == {"ok"}


def test_isolation_overhead_is_wall_time_beyond_the_recorded_work(tmp_path):
    result = studies.isolation_overhead([GRID], ["amd"], tmp_path / "iso.parquet")
    (unit,) = result["units"]
    frame, _ = read_results(tmp_path / "iso.parquet")
    row = frame.iloc[0]
    assert unit["work_s"] == pytest.approx(row["t_warmup_s"] + row["t_order_s"] + row["t_symbolic_s"])
    assert unit["wall_s"] > unit["work_s"] > 0  # the child's work happens inside the parent's wall time


# -- permbench study cudss-explore -----------------------------------------------------------------

def test_cudss_explore_says_why_it_cannot_run_here():
    from permbench.harness.backends.cudss import CuDSS

    ok, reason = CuDSS.available()
    if ok:
        pytest.skip("cudss is available here")
    done = cli.invoke(app, ["study", "cudss-explore", "-d", GRID])
    assert done.exit_code == 2 and "cudss back-end is unavailable here" in done.output


# -- the GPU host script ---------------------------------------------------------------------------

SCRIPT = REPO / "scripts" / "gpu_bench.sh"


def test_gpu_host_script_parses_and_calls_existing_commands():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    text = SCRIPT.read_text()
    calls = re.findall(r'"\$\{PERMBENCH\[@\]\}" (\w[\w-]*)(?: (\w[\w-]*))?', text)
    assert ("run", "") in calls and ("study", "cudss-explore") in calls
    for command in calls:
        done = cli.invoke(app, [c for c in command if c] + ["--help"])
        assert done.exit_code == 0, (command, done.output)
    assert "export PERMBENCH_GIT_STATE=$repo/.gpu-wheels/meta/git.json" in text
    assert '> "$w/meta/git.json"' in text  # bundle writes the file host_env names
    assert "gpu_bench.py explore" not in text and "gpu_bench.py finalize" not in text


# -- provenance of a tree without .git -------------------------------------------------------------

@pytest.fixture
def copied_tree(tmp_path, monkeypatch):
    """permbench as if imported from a copy of the tree without .git (the GPU host's)."""
    package = tmp_path / "copy" / "permbench"
    package.mkdir(parents=True)
    monkeypatch.setattr(provenance, "permbench", type("copy", (), {"__file__": str(package / "__init__.py")}))
    return tmp_path


def test_git_state_of_a_copied_tree_comes_from_the_recorded_file(copied_tree, monkeypatch):
    monkeypatch.delenv(provenance.GIT_STATE_ENV, raising=False)
    assert provenance.git_state() == {"commit": None, "dirty": None}
    recorded = copied_tree / "git.json"
    recorded.write_text(json.dumps({"commit": "a" * 40, "dirty": True, "sources_sha256": "f" * 64}))
    monkeypatch.setenv(provenance.GIT_STATE_ENV, str(recorded))
    state = provenance.git_state()
    assert state["commit"] == "a" * 40 and state["dirty"] is True and state["sources_sha256"] == "f" * 64
    assert str(recorded) in state["source"]
    monkeypatch.setenv(provenance.GIT_STATE_ENV, str(copied_tree / "missing.json"))
    state = provenance.git_state()
    assert state["commit"] is None and "missing.json" in state["error"]


def test_a_checkout_ignores_the_recorded_file(monkeypatch, tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    recorded = tmp_path / "git.json"
    recorded.write_text(json.dumps({"commit": "b" * 40, "dirty": False}))
    monkeypatch.setenv(provenance.GIT_STATE_ENV, str(recorded))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert provenance.git_state()["commit"] == commit


def test_gpus_as_nvidia_smi_lists_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert provenance.gpus() == []  # no nvidia-smi on the PATH: no GPU listed
    smi = tmp_path / "nvidia-smi"
    # nvidia-smi's CSV output for --query-gpu=name,driver_version,memory.total --format=csv,noheader
    smi.write_text("#!/bin/sh\necho 'NVIDIA H200, 580.95.05, 143771 MiB'\n")
    smi.chmod(0o755)
    assert provenance.gpus() == [{"name": "NVIDIA H200", "driver_version": "580.95.05", "memory.total": "143771 MiB"}]
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    (entry,) = provenance.gpus()
    assert "exited 9" in entry["error"] and "has failed" in entry["error"]


# -- benchmarks/symbolic.py (asv) ------------------------------------------------------------------

def load_symbolic_benchmarks():
    spec = importlib.util.spec_from_file_location("permbench_asv_symbolic", REPO / "benchmarks" / "symbolic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_symbolic_benchmarks_time_the_analysis_of_the_ordering():
    cholmod = pytest.importorskip("sksparse.cholmod")
    bench_module = load_symbolic_benchmarks()
    inputs = bench_module.build_inputs("grid[n=2500]")
    for ordering in bench_module.ORDERINGS:
        perm = inputs["perms"][ordering]
        bench = bench_module.SymbolicAnalysis()
        bench.setup(inputs, ordering)
        bench.time_symbolic_factor(inputs, ordering)
        bench.time_postordered_perm(inputs, ordering)
        L = cholmod.cholesky(inputs["permuted"][ordering], mode="simplicial", ordering_method="natural").L().tocsc()
        assert bench.symbolic.nnz_L == L.nnz  # what was timed is the analysis of that permuted matrix
        assert sorted(bench.postordered) == list(range(len(perm)))
        analyzer = bench_module.CholmodAnalyze()
        analyzer.setup(inputs, ordering)
        analyzer.time_cholmod_analyze(inputs, ordering)
        assert sorted(analyzer.analysis.P()) == list(range(len(perm)))
    assert not np.array_equal(inputs["perms"]["metis"], inputs["perms"]["amd"])


def test_scripts_hold_only_set_up_and_the_gpu_host():
    names = {p.name for p in (REPO / "scripts").iterdir()}
    assert names - {"__pycache__"} == {"setup.sh", "freeze.sh", "gpu_bench.sh"}


def test_gpu_figures_rebuild_the_committed_cudss_study(tmp_path, monkeypatch):
    """`permbench study gpu-figures` draws the study's set from stored rows: the committed cuDSS 0.8
    study's table comes back byte for byte, and both figures are written."""
    monkeypatch.chdir(REPO)  # the table's caption names the result file as given
    study = Path("results/gpu/cudss-0.8")
    result = cli.invoke(app, ["study", "gpu-figures", str(study / "cudss-h200.parquet"), "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cudss_table.md").read_text() == (study / "cudss_table.md").read_text()
    for name in ("cudss_phases", "cudss_speedup_vs_n"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000 and (tmp_path / f"{name}.json").is_file()
    missing = cli.invoke(app, ["study", "gpu-figures", str(tmp_path / "none.parquet")])
    assert missing.exit_code == 2 and "no such result file" in missing.output


def test_gpu_bench_sh_imports_names_that_exist():
    """The host script's inline Python names package functions; a moved function must fail here,
    not on the GPU host (it did once: preload_cudss moved to harness/backends/_cudss_session.py)."""
    text = SCRIPT.read_text()
    imports = re.findall(r"from (permbench[\w.]*) import ([\w, ]+)", text)
    assert len(imports) >= 3
    for module, names in imports:
        loaded = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(loaded, name), f"scripts/gpu_bench.sh: {module} has no {name}"
