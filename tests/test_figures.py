"""The one figure registry (harness/figures.py) and its sets (`permbench figures`, `permbench
report`, the GPU study): built from result files only, byte-identical on the same inputs, sidecars
with the inputs' sha256, absent data skipped, every registered figure built from real rows, and no
figure module importing a plug-in."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from permbench.harness import figures, plotting
from permbench.harness.cli import app
from permbench.harness.results import write_results as write_result_file

ORDERINGS = {"amd": 1.2, "metis": 1.0, "natural": 4.0}  # fill relative to metis


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def result_rows(k: int = 4, numeric: bool = True) -> list[dict]:
    """A small study: 3 datasets × 3 orderings × (symbolic, cholmod[k=K]) × 2 repeats, made-up values."""
    rows = []
    backend = f"cholmod[k={k}]" if k > 1 else "cholmod"
    for dataset, n in (("grid[n=100]", 100), ("icosphere[n=642]", 642), ("tetgrid[n=1000]", 1000)):
        for ordering, rel in ORDERINGS.items():
            for repeat in range(2):
                base = dict(dataset=dataset, ordering=ordering, repeat=repeat, status="ok", reason="", n=n,
                            nnz_L=int(10 * n * rel), flops=int(100 * n * rel**2),
                            t_order_s=1e-5 * n * (3.0 if ordering == "metis" else 1.0) * (1 + 0.1 * repeat))
                rows.append(dict(base, backend="symbolic"))
                if numeric:
                    t_factor, t_solve, t_analyze = 1e-6 * n * rel**2, 1e-7 * n * rel, 2e-6 * n
                    t_total = base["t_order_s"] + t_analyze + t_factor + t_solve
                    rows.append(dict(base, backend=backend, t_analyze_s=t_analyze, t_factor_s=t_factor,
                                     t_solve_s=t_solve, t_total_s=t_total, k=k,
                                     t_refactor_median_s=0.5 * t_factor if k > 1 else None,
                                     t_total_k_s=t_total + (k - 1) * (0.5 * t_factor + t_solve)))
    return rows


def write_results(path: Path, rows: list[dict]) -> Path:
    write_result_file(rows, path, {"test": True})
    return path


def gpu_rows() -> list[dict]:
    """cuDSS configurations on two datasets: default 2 s, no MT layer 4 s, METIS + derived tree 1 s."""
    rows = []
    for dataset, n, scale in (("grid[n=100000]", 100000, 1.0), ("grid[n=1000000]", 1000000, 10.0)):
        for ordering, backend, t in (("native", "cudss[k=10]", 2.0), ("native", "cudss[k=10,mt=false]", 4.0),
                                     ("metis", "cudss[k=10,tree=derive]", 1.0)):
            rows.append(dict(dataset=dataset, ordering=ordering, backend=backend, repeat=0, status="ok", reason="",
                             n=n, nnz_L=10 * n, flops=100 * n, t_order_s=0.1, t_analyze_s=0.1, t_factor_s=0.1,
                             t_solve_s=0.1, t_total_s=t * scale, k=10, t_total_k_s=3 * t * scale))
    return rows


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A working folder with results/paper/paper.parquet and a suite file naming it."""
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "results" / "paper" / "paper.parquet", result_rows())
    config = tmp_path / "paper.toml"
    config.write_text('out = "results/paper/paper.parquet"\n[figures]\nout_dir = "figs"\nk_max = 50\n')
    return config


def test_performance_profile_by_hand():
    table = pd.DataFrame({"a": [1.0, 4.0, np.nan], "b": [2.0, 2.0, 3.0]}, index=["p", "q", "r"])
    ratios = plotting.performance_ratios(table)
    np.testing.assert_array_equal(ratios.to_numpy(), [[1.0, 2.0], [2.0, 1.0], [np.inf, 1.0]])
    rho = plotting.performance_profile(ratios, np.array([1.0, 1.5, 2.0, 100.0]))
    np.testing.assert_allclose(rho["a"].to_numpy(), [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(rho["b"].to_numpy(), [2 / 3, 2 / 3, 1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        plotting.performance_ratios(pd.DataFrame({"a": [0.0], "b": [1.0]}))


def test_amortized_time_follows_the_design_formula():
    phases = pd.DataFrame({"t_order_s": [1.0, np.nan, 1.0], "t_analyze_s": [0.5, 0.5, 0.5],
                           "t_factor_s": [2.0, 1.0, 2.0], "t_solve_s": [0.25, 0.5, 0.25],
                           "t_refactor_median_s": [np.nan, np.nan, 1.0]}, index=["x", "native", "refactored"])
    curves = plotting.amortized_time(phases, np.array([1, 10]))
    # Without a measured refactorization: t_order + t_analyze + k·(t_factor + t_solve), as t_total_k_s is defined (harness/metrics.py).
    np.testing.assert_allclose(curves.loc["x"].to_numpy(), [1.5 + 2.25, 1.5 + 22.5])
    np.testing.assert_allclose(curves.loc["native"].to_numpy(), [0.5 + 1.5, 0.5 + 15.0])  # NaN order: 0
    # With one: the first factorization, then k − 1 refactorizations.
    np.testing.assert_allclose(curves.loc["refactored"].to_numpy(), [1.5 + 2.25, 1.5 + 2.25 + 9 * 1.25])


def test_gpu_speedups_over_cudss_default():
    table = plotting.gpu_speedups(pd.DataFrame(gpu_rows()))
    got = {(r.dataset, r.configuration): r.speedup for r in table.itertuples()}
    assert got == {("grid[n=100000]", "cuDSS default (no MT layer)"): 0.5,
                   ("grid[n=100000]", "metis + tree from etree"): 2.0,
                   ("grid[n=1000000]", "cuDSS default (no MT layer)"): 0.5,
                   ("grid[n=1000000]", "metis + tree from etree"): 2.0}
    # Over the default without its multithreading layer: the default is twice as fast.
    other = plotting.gpu_speedups(pd.DataFrame(gpu_rows()), baseline="cuDSS default (no MT layer)")
    assert {(r.dataset, r.configuration): r.speedup for r in other.itertuples()}[("grid[n=100000]", "cuDSS default")] == 2.0
    no_default = pd.DataFrame([r for r in gpu_rows() if r["backend"] != "cudss[k=10]"])
    with pytest.raises(figures.Skip, match="default"):
        plotting.gpu_speedups(no_default)


def test_figures_are_byte_identical_and_sidecars_hash_the_inputs(study, tmp_path):
    cfg = figures.load_config(study)
    cfg = figures.FigureConfig(**{**cfg.__dict__, "names": ("a_order_time_vs_n", "d_performance_profiles")})
    outcomes = figures.build_figures(cfg)
    assert [o.skipped for o in outcomes] == [None, None]
    first = {p.name: sha256(p) for p in (tmp_path / "figs").iterdir()}
    assert len(first) == 6  # png, pdf, json each
    second = figures.build_figures(figures.FigureConfig(**{**cfg.__dict__, "out_dir": tmp_path / "again"}))
    assert {p.name: sha256(p) for p in (tmp_path / "again").iterdir()} == first
    results = tmp_path / "results" / "paper" / "paper.parquet"
    for outcome in second:
        sidecar = json.loads((tmp_path / "again" / f"{outcome.name}.json").read_text())
        assert sidecar["inputs"] == [{"path": "results/paper/paper.parquet", "sha256": sha256(results),
                                      "bytes": results.stat().st_size}]
        for name, digest in sidecar["outputs"].items():
            assert sha256(tmp_path / "again" / name) == digest
        assert b"CreationDate" not in (tmp_path / "again" / f"{outcome.name}.pdf").read_bytes()


@pytest.mark.slow
def test_cli_twice_gives_identical_files_and_reports_skips(study, tmp_path):
    """`permbench figures` twice in a row: the whole set, the same bytes."""
    runner = CliRunner()
    first = runner.invoke(app, ["figures", "-c", str(study)])
    assert first.exit_code == 0, first.output
    assert "skipped f_gpu_speedup_vs_n" in first.output
    hashes = {p.name: sha256(p) for p in (tmp_path / "figs").iterdir()}
    built = set(figures.FIGURE_SET) - {"f_gpu_speedup_vs_n"}
    assert {name.rsplit(".", 1)[0] for name in hashes} == built and len(hashes) == 3 * len(built)
    second = runner.invoke(app, ["figures", "-c", str(study)])
    assert second.exit_code == 0, second.output
    assert {p.name: sha256(p) for p in (tmp_path / "figs").iterdir()} == hashes


def test_gpu_figure_is_built_when_gpu_results_exist(study, tmp_path):
    write_results(tmp_path / "results" / "gpu" / "cudss-h200.parquet", gpu_rows())
    # A suite's figures read only the files it names: without gpu_results, (f) is skipped.
    (unnamed,) = figures.build_figures(figures.FigureConfig(**{**figures.load_config(study).__dict__,
                                                               "names": ("f_gpu_speedup_vs_n",)}))
    assert unnamed.skipped and "names no gpu_results" in unnamed.skipped
    study.write_text(study.read_text().replace("[figures]\n", '[figures]\ngpu_results = ["results/gpu/*.parquet"]\n'))
    cfg = figures.load_config(study)
    (gpu,) = figures.build_figures(figures.FigureConfig(**{**cfg.__dict__, "names": ("f_gpu_speedup_vs_n",)}))
    assert gpu.skipped is None and {p.suffix for p in gpu.files} == {".png", ".pdf", ".json"}
    sidecar = json.loads((tmp_path / "figs" / "f_gpu_speedup_vs_n.json").read_text())
    assert [i["path"] for i in sidecar["inputs"]] == ["results/gpu/cudss-h200.parquet"]


def test_absent_data_is_skipped_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "symbolic.parquet", result_rows(numeric=False))
    names = ("c_phase_breakdown", "d_performance_profiles", "e_amortization")
    outcomes = {o.name: o for o in figures.build_figures(figures.FigureConfig(results=("symbolic.parquet",),
                                                                              out_dir=tmp_path / "f", names=names))}
    assert "numeric back-end" in outcomes["c_phase_breakdown"].skipped
    assert "numeric back-end" in outcomes["e_amortization"].skipped
    assert outcomes["d_performance_profiles"].skipped is None  # nnz_L and flops need no numerics
    missing = figures.build_figures(figures.FigureConfig(results=("nothing/*.parquet",), out_dir=tmp_path / "g"))
    assert all("no result files match" in o.skipped for o in missing if o.name != "f_gpu_speedup_vs_n")
    assert "names no gpu_results" in missing[-1].skipped
    assert not (tmp_path / "g").exists()


def test_single_k_runs_still_give_the_computed_amortization(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_results(tmp_path / "k1.parquet", result_rows(k=1))
    cfg = figures.FigureConfig(results=("k1.parquet",), out_dir=tmp_path / "f", names=("e_amortization",))
    (outcome,) = figures.build_figures(cfg)
    assert outcome.skipped is None


def test_figures_never_run_anything(study, monkeypatch):
    from permbench import orderings
    from permbench.harness import runner

    def forbidden(*args, **kwargs):
        raise AssertionError("figures must only read result files")

    monkeypatch.setattr(runner, "execute", forbidden)
    monkeypatch.setattr(runner, "run", forbidden)
    monkeypatch.setattr(orderings, "create", forbidden)
    cfg = figures.load_config(study)
    (outcome,) = figures.build_figures(figures.FigureConfig(**{**cfg.__dict__, "names": ("b_fill_flops_vs_baseline",)}))
    assert outcome.skipped is None


def test_bad_figure_tables_are_errors(tmp_path):
    with pytest.raises(figures.FigureConfigError, match="unknown key"):
        figures.config_from_suite({"out": "r.parquet", "figures": {"colour": "red"}}, "s.toml")
    with pytest.raises(figures.FigureConfigError, match="a_order_time_vs_n"):
        figures.config_from_suite({"out": "r.parquet", "figures": {"set": ["z_nothing"]}}, "s.toml")
    with pytest.raises(figures.FigureConfigError, match="no result files named"):
        figures.config_from_suite({"figures": {}}, "s.toml")
    result = CliRunner().invoke(app, ["figures", "-c", str(tmp_path / "absent.toml")])
    assert result.exit_code == 2 and "no such suite file" in " ".join(result.output.split())


@pytest.mark.parametrize("name", ["smoke", "default", "paper"])
def test_shipped_configs_load(name):
    from permbench.harness import suites

    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml"
    suite = suites.load(path)
    cfg = figures.config_from_suite(suite, str(path))
    assert cfg.results and set(cfg.names) == set(figures.FIGURE_SET)
    assert suite["backends"] and suite["datasets"]


def test_figure_a_on_a_real_run_plots_the_measured_medians(plugins, tmp_path):
    """A real (small) run, then figure (a): every plotted point is the median of the run's
    t_order_s over its repeats at that dataset's n, read back from the figure's artists."""
    import matplotlib.pyplot as plt

    from permbench.harness import runner

    cfg = runner.RunConfig(datasets=["test-tinygrid[k=12]", "test-tinygrid[k=30]"], orderings=["amd", "natural"],
                           backends=["symbolic"], repeat=3, out=tmp_path / "r.parquet", plugins=plugins, timeout_s=120)
    frame = runner.run(cfg).frame.assign(result_file=str(cfg.out))
    fig = figures.REGISTRY["order_time_vs_n"].build(frame)  # figure (a) of the paper set
    plotted, caps = [], []
    for container in fig.axes[0].containers:  # one errorbar per (ordering, family): line, caps, bars
        line, (low, high), _ = container.lines
        plotted += [(round(float(x)), float(y)) for x, y in zip(line.get_xdata(), line.get_ydata())]
        caps += [(float(a), float(b)) for a, b in zip(low.get_ydata(), high.get_ydata())]
    stats = frame.groupby(["ordering", "n"])["t_order_s"].agg(["median", "min", "max"])
    expected = sorted((int(n), float(row["median"])) for (_, n), row in stats.iterrows())
    assert [n for n, _ in sorted(plotted)] == [144, 144, 900, 900]
    for (_, y), (_, t) in zip(sorted(plotted), expected):
        assert y == pytest.approx(t, rel=1e-12)
    want = sorted((float(r["min"]), float(r["max"])) for _, r in stats.iterrows())
    assert np.allclose(np.array(sorted(caps)), np.array(want), rtol=1e-12, atol=0)  # the bars: min and max
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# The registry: every figure builds from real rows; no figure module imports a plug-in
# --------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
#: Real rows of the cudss back-end (a GPU run cannot happen here): the committed cuDSS 0.8 study.
GPU_RESULT = ROOT / "results" / "gpu" / "cudss-0.8" / "cudss-h200.parquet"
#: Style arguments a figure needs on the small run (its orderings are amd and natural).
OPTIONS = {"relative_fill": {"baseline": "amd"}}
GPU_FIGURES = {"gpu_speedup_vs_n", "cudss_table"}
GPU_OPTIONS = {"phase_breakdown": {"bars": "configuration", "min_n": 500_000}}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A real run: 2 grids × (amd, natural) × (symbolic, cholmod[k=3]) × 2 repeats."""
    from permbench.harness import runner

    out = tmp_path_factory.mktemp("run") / "r.parquet"
    cfg = runner.RunConfig(datasets=["grid[n=400]", "grid[n=900]"], orderings=["amd", "natural"],
                           backends=["symbolic", "cholmod[k=3]"], repeat=2, out=out, timeout_s=300)
    frame = runner.run(cfg).frame
    assert set(frame["status"]) == {"ok"}, frame[["ordering", "backend", "status", "reason"]]
    return figures.read_frames([out])


def _plotted(fig) -> int:
    """How many data points and bars the figure draws."""
    return sum(len(line.get_xydata()) for ax in fig.axes for line in ax.get_lines()) + \
        sum(len(ax.patches) for ax in fig.axes)


def test_every_registered_figure_is_tested():
    assert set(figures.REGISTRY) == {"order_time", "order_time_vs_n", "relative_fill", "phase_breakdown",
                                     "performance_profiles", "amortization"} | GPU_FIGURES
    assert all(entry.description for entry in figures.REGISTRY.values())


@pytest.mark.cholmod
@pytest.mark.parametrize("name", sorted(set(figures.REGISTRY) - GPU_FIGURES))
def test_every_cpu_figure_builds_from_a_real_run(small_run, name):
    import matplotlib.pyplot as plt

    pytest.importorskip("sksparse")
    fig = figures.REGISTRY[name].build(small_run, **OPTIONS.get(name, {}))
    assert fig.axes and _plotted(fig) > 0
    plt.close(fig)


@pytest.mark.parametrize("name", sorted(GPU_FIGURES | {"phase_breakdown"}))
def test_every_gpu_figure_builds_from_the_stored_cudss_rows(name):
    import matplotlib.pyplot as plt

    rows = figures.read_frames([GPU_RESULT])
    built = figures.REGISTRY[name].build(rows, **GPU_OPTIONS.get(name, {}))
    if figures.REGISTRY[name].kind == "table":
        for configuration in ("cuDSS default", "cuDSS default (no MT layer)", "cuDSS AMD", "patch + own tree",
                              "metis + tree from etree", "metis + no tree"):
            assert f"| {configuration} |" in built
        return
    assert built.axes and _plotted(built) > 0
    plt.close(built)


def test_gpu_set_writes_its_files_with_sidecars(tmp_path):
    result = write_results(tmp_path / "gpu.parquet", gpu_rows())
    outcomes = figures.write_set(figures.gpu_set(), {"results": [result]}, tmp_path / "out")
    assert [o.skipped for o in outcomes] == [None, None, None]
    tmp_path = tmp_path / "out"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["cudss_phases.png", "cudss_phases.pdf", "cudss_phases.json", "cudss_speedup_vs_n.png",
                            "cudss_speedup_vs_n.pdf", "cudss_speedup_vs_n.json", "cudss_table.md",
                            "cudss_table.json"])
    sidecar = json.loads((tmp_path / "cudss_table.json").read_text())
    assert sidecar["outputs"] == {"cudss_table.md": sha256(tmp_path / "cudss_table.md")}


def test_configurations_come_from_the_stored_params_not_the_name():
    """A row's backend_params decide its configuration (figures never decode names with plug-in code)."""
    rows = pd.DataFrame(gpu_rows())
    rows["backend_params"] = [json.dumps({"k": 10, "mt": False}) if b == "cudss[k=10]" else None
                              for b in rows["backend"]]
    labels = set(plotting.cudss_rows(rows)["configuration"])
    assert "cuDSS default" not in labels and "cuDSS default (no MT layer)" in labels


def test_cudss_defaults_match_the_back_end():
    from permbench.harness.backends.cudss import CuDSS

    assert plotting.CUDSS_DEFAULTS == {k: CuDSS.params[k] for k in plotting.CUDSS_DEFAULTS}


FIGURE_MODULES = ("harness/figures.py", "harness/plotting.py", "harness/report.py", "harness/html_report.py")
PLUGIN_PACKAGES = ("permbench.orderings", "permbench.datasets", "permbench.harness.backends")


def plugin_imports(source: str, relpath: str) -> list[str]:
    """The imports of a module of ``harness/`` (package ``permbench.harness``) that reach a plug-in package."""
    found = []
    for node in ast.walk(ast.parse(source, relpath)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ["permbench", "permbench.harness"][2 - node.level] if node.level in (1, 2) else ""
            module = ".".join(p for p in (base, node.module or "") if p) if node.level else node.module or ""
            names = [f"{module}.{a.name}" for a in node.names] if not node.module else [module]
        else:
            continue
        found += [f"{relpath}:{node.lineno}: {n}" for n in names
                  if any(n == p or n.startswith(p + ".") for p in PLUGIN_PACKAGES)]
    return found


@pytest.mark.parametrize("line", ["from .backends import registry", "from . import backends",
                                  "from .. import orderings", "from ..datasets.grid import Grid",
                                  "import permbench.orderings.amd", "def f():\n    from .backends.cudss import CuDSS"])
def test_the_import_check_sees_every_form(line):
    assert plugin_imports(line + "\n", "harness/x.py")


@pytest.mark.parametrize("line", ["from .results import read_results", "from ..core.specs import parse_spec",
                                  "from . import suites", "import matplotlib"])
def test_the_import_check_passes_other_imports(line):
    assert plugin_imports(line + "\n", "harness/x.py") == []


@pytest.mark.parametrize("relpath", FIGURE_MODULES)
def test_figure_modules_import_no_plugin(relpath):
    assert plugin_imports((ROOT / relpath).read_text(), relpath) == []


def test_drawing_every_set_loads_no_plugin_module(tmp_path):
    """In a fresh interpreter, importing the figure modules and building every item of every set
    leaves no plug-in module loaded (what they import indirectly counts too)."""
    import subprocess
    import sys

    cpu = write_results(tmp_path / "cpu.parquet", result_rows())
    gpu = write_results(tmp_path / "gpu.parquet", gpu_rows())
    code = ("import sys\n"
            "from permbench.harness import figures, report, html_report\n"
            f"rows = {{'results': figures.read_frames([{str(cpu)!r}]), 'gpu_results': figures.read_frames([{str(gpu)!r}])}}\n"
            "items = figures.report_set() + figures.paper_set() + [figures.Item(i.name, i.figure, i.options, 'gpu_results')\n"
            "                                                      for i in figures.gpu_set()]\n"
            "built = [figures.REGISTRY[i.figure].build(rows[i.inputs], **i.options) for i in items]\n"
            "print(len(built))\n"
            f"print(sorted(m for m in sys.modules if m.startswith({PLUGIN_PACKAGES!r})))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    count, loaded = done.stdout.strip().splitlines()
    assert count == "14" and loaded == "[]"


def test_cli_lists_the_registry_and_its_sets():
    result = CliRunner().invoke(app, ["figures", "--list"])
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in figures.REGISTRY)
    assert all(f"set {name}:" in result.output for name in figures.SETS)
