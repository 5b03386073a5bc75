"""A CLI without surprises: --version, suite-relative paths, --data-dir wherever datasets are named,
compare's plan and --dry-run, warnings for machine paths, portable names, dataset families."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pandas as pd
import pytest
from typer.testing import CliRunner

from permbench import __version__
from permbench.harness import plotting, portable, suites
from permbench.harness.cli import app
from permbench.harness.results import read_results, write_results

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"permbench {__version__}"


def test_suite_paths_are_relative_to_the_suite_file(tmp_path, monkeypatch):
    suite_dir = tmp_path / "project" / "configs"
    suite_dir.mkdir(parents=True)
    mesh = tmp_path / "project" / "data" / "m.obj"
    suite = suite_dir / "s.toml"
    suite.write_text('datasets = ["file:../data/m.obj[matrix=graph]", "grid"]\nout = "../results/r.parquet"\n'
                     '[figures]\nresults = ["../results/*.parquet"]\ngpu_results = ["/abs/gpu.parquet"]\n'
                     'out_dir = "../figs"\n')
    for cwd in (tmp_path, tmp_path / "project", suite_dir):
        monkeypatch.chdir(cwd)
        data = suites.load(suite.relative_to(cwd) if cwd != tmp_path else suite)
        target = data["datasets"][0][len("file:"):].partition("[")[0]
        assert Path(target).resolve() == mesh.resolve()  # the same file from every working directory
        assert not Path(target).is_absolute()  # and still a relative, portable name
        assert data["datasets"][0].endswith("[matrix=graph]") and data["datasets"][1] == "grid"
        assert Path(data["out"]).resolve() == (tmp_path / "project" / "results" / "r.parquet").resolve()
        assert Path(data["figures"]["out_dir"]).resolve() == (tmp_path / "project" / "figs").resolve()
        assert Path(data["figures"]["results"][0]).parent.resolve() == (tmp_path / "project" / "results").resolve()
        assert data["figures"]["gpu_results"] == ["/abs/gpu.parquet"]
    monkeypatch.chdir(tmp_path / "project")
    assert suites.load(suite)["datasets"][0] == "file:data/m.obj[matrix=graph]"


def test_shipped_paper_suite_names_the_same_files_from_the_repository_root(monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    data = suites.load(root / "configs" / "paper.toml")
    assert data["out"] == "results/paper/paper.parquet"  # the committed result file, same cell names
    assert "mesh:bunny" in data["datasets"] and data["data_dir"] == "../shared/data"
    stored = set(pd.read_parquet(root / data["out"], columns=["dataset"])["dataset"])
    from permbench import datasets

    canonical = {datasets.create(name).spec.canonical() for name in data["datasets"]}
    assert canonical <= stored  # the suite's names are the committed rows' names
    assert data["figures"]["gpu_results"] == ["results/gpu/*.parquet"]


def test_every_shipped_suite_writes_under_results(monkeypatch):
    """A suite's ``out`` is relative to the suite's folder (configs/): one written as if from the
    repository root ("results/...") would land in configs/results/ (it once did)."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    suite_files = sorted((root / "configs").glob("*.toml"))
    assert len(suite_files) >= 5
    for path in suite_files:
        data = suites.load(path)
        if "out" in data:
            assert data["out"].startswith("results/"), f"{path.name}: out resolves to {data['out']}"


def test_datasets_commands_take_data_dir_and_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("PERMBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("PERMBENCH_OFFLINE", raising=False)
    for command in (["datasets", "list", "--source", "mesh"], ["datasets", "info", "mesh:bunny"]):
        result = runner.invoke(app, command + ["--data-dir", str(tmp_path), "--offline"])
        assert result.exit_code == 2 and "manifest.json" in result.output  # the option exists and is checked
    for key in ("PERMBENCH_DATA_DIR", "PERMBENCH_OFFLINE"):
        os.environ.pop(key, None)


def test_datasets_info_from_the_shared_mirror(shared_data_dir, monkeypatch):
    monkeypatch.delenv("PERMBENCH_DATA_DIR", raising=False)
    result = runner.invoke(app, ["datasets", "info", "mesh:bunny", "--data-dir", str(shared_data_dir), "--offline"])
    os.environ.pop("PERMBENCH_DATA_DIR", None)
    os.environ.pop("PERMBENCH_OFFLINE", None)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["name"] == "mesh:bunny"


def test_compare_prints_its_plan_and_dry_run_runs_nothing(tmp_path, monkeypatch):
    from permbench.harness import runner as run_module

    def forbidden(*args, **kwargs):
        raise AssertionError("--dry-run must not run anything")

    monkeypatch.setattr(run_module, "execute", forbidden)
    result = runner.invoke(app, ["compare", "--dry-run", "-d", "grid[n=400]", "-d", "torus", "--orderings", "amd,rcm",
                                 "--repeat", "3", "--out", str(tmp_path / "c.parquet")])
    assert result.exit_code == 0, result.output
    assert "plan: 2 datasets × 2 orderings × symbolic, 3 repeats" in result.output
    assert result.output.count("run (new)") == 4
    assert not (tmp_path / "c.parquet").exists()


def test_run_warns_about_files_under_hidden_or_temporary_folders(tmp_path):
    hidden = tmp_path / ".cache-copy"
    hidden.mkdir()
    mesh = hidden / "m.obj"
    mesh.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\nf 2 4 3\n")
    result = runner.invoke(app, ["run", "--dry-run", "-d", f"file:{mesh}", "-o", "amd", "-b", "symbolic",
                                 "--out", str(tmp_path / "r.parquet")])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "hidden folder '.cache-copy'" in result.output
    assert portable.machine_path_reason("../shared/data/meshes/ogre.obj") is None
    assert "temporary folder" in portable.machine_path_reason("/tmp/x/m.obj")


def test_relabel_to_catalogue_name_keeps_every_other_value(tmp_path):
    bumpy_sha = "73810360133b680ac2c545fe973ab4003ae0d1aba7d6d29f49e0c7a2e79f2466"  # datasets/catalog.toml
    rows = [dict(cell_id="c1", dataset="file:.gpu-wheels/data/meshes/bumpy-cube.obj[matrix=graph,upsample=2]",
                 ordering="amd", backend="symbolic", repeat=0, status="ok", reason="", n=319490, nnz_L=5,
                 dataset_meta=json.dumps({"file_sha256": bumpy_sha})),
            dict(cell_id="c2", dataset="file:.hidden/other.obj", ordering="amd", backend="symbolic", repeat=0,
                 status="ok", reason="", n=10, nnz_L=7, dataset_meta=json.dumps({"file_sha256": "0" * 64})),
            dict(cell_id="c3", dataset="grid", ordering="amd", backend="symbolic", repeat=0, status="ok", reason="",
                 n=10000, nnz_L=9, dataset_meta="{}")]
    path = tmp_path / "r.parquet"
    write_results(rows, path, {"test": True})
    before = pq.read_table(path).to_pandas()
    mapping = portable.relabel_file(path, "why")
    assert mapping == {rows[0]["dataset"]: "mesh:bumpy-cube[matrix=graph,upsample=2]"}
    after, provenance = read_results(path)
    assert dict(zip(after["cell_id"], after["dataset"])) == {
        "c1": "mesh:bumpy-cube[matrix=graph,upsample=2]", "c2": "file:.hidden/other.obj", "c3": "grid"}
    others = [c for c in before.columns if c != "dataset"]
    assert before[others].equals(after[others])
    assert provenance["test"] is True and provenance["relabelled"][0]["datasets"] == mapping
    assert portable.relabel_file(path, "again") == {}  # nothing left to relabel


def test_committed_results_carry_no_machine_paths():
    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "results").rglob("*.parquet")):
        frame, _ = read_results(path)
        for name in frame["dataset"].unique():
            if name.startswith("file:"):
                target = name[len("file:"):].partition("[")[0]
                assert not Path(target).is_absolute() and portable.machine_path_reason(target) is None, (path, name)


@pytest.mark.parametrize("name, family", [
    ("grid[n=10000]", "grid"), ("grid", "grid"), ("grid[matrix=graph,n=100000]", "grid[matrix=graph]"),
    ("mesh:ogre[upsample=2]", "mesh:ogre"), ("file:../a/b.obj", "file:../a/b.obj"),
])
def test_dataset_families_drop_only_the_size(name, family):
    assert plotting.family_of(name) == family


def test_labels_show_non_default_parameters_and_size():
    assert plotting.dataset_label("grid", 10201) == "grid\nn=10,201"
    assert plotting.dataset_label("file:../shared/data/meshes/ogre.obj[upsample=1]", 248000, " · ") == \
        "file:ogre.obj[upsample=1] · n=248,000"
