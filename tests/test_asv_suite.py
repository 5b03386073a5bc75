"""The asv suite (benchmarks/benchmarks.py): what it tracks is what the library computes.

The suite is imported from its file and its setup_cache / setup / track_ / time_ functions are
called the way asv calls them, on the smallest input only; the tracked numbers are checked against
an independent computation (CHOLMOD's simplicial factor of the permuted matrix).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from permbench import datasets
from permbench.harness import backends
from permbench.core.case import symmetric_graph

REPO = Path(__file__).resolve().parents[1]


def load_suite():
    spec = importlib.util.spec_from_file_location("permbench_asv_suite", REPO / "benchmarks" / "benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


suite = load_suite()
SMALL = suite.SMALLEST_CASE


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("asv-cache")
    return suite.build_cache(folder, cases=[SMALL], ordering_names=["natural", "amd", "metis", "no-such"])


def cholmod_simplicial_counts(A, perm):
    """nnz(L) and Σ c_j² from CHOLMOD's simplicial factor of A[perm][:, perm] (natural order)."""
    cholmod = pytest.importorskip("sksparse.cholmod")
    B = A[perm][:, perm].tocsc()
    factor = cholmod.cholesky(B, mode="simplicial", ordering_method="natural")
    L = factor.L().tocsc()
    counts = np.diff(L.indptr)
    return int(counts.sum()), int(np.dot(counts, counts))


def test_written_input_files_load_to_their_generators_matrix(cache):
    case, graph = cache["inputs"][SMALL]
    source = datasets.load(suite.FILE_SOURCES["icosphere.mtx.gz"])
    assert case.n == source.n == 2562
    assert abs(case.A - source.A).max() <= 1e-12 * abs(source.A).max()
    assert (graph != symmetric_graph(source.A)).nnz == 0


def test_written_obj_mesh_loads_as_a_mesh(tmp_path):
    path = suite.write_input_file(tmp_path, "torus.obj")
    case = datasets.load(f"file:{path}")
    source = datasets.load(suite.FILE_SOURCES["torus.obj"])
    assert case.n == source.n and case.faces.shape == source.faces.shape
    np.testing.assert_allclose(case.coords, source.coords, rtol=0, atol=0)
    (tmp_path / "again").mkdir()
    assert path.read_bytes() == suite.write_input_file(tmp_path / "again", "torus.obj").read_bytes()  # no timestamp


@pytest.mark.parametrize("ordering", ["natural", "amd", "metis"])
def test_tracked_fill_is_cholmods_fill_for_the_same_permutation(cache, ordering):
    bench = suite.Fill()
    bench.setup(cache, SMALL, ordering)
    nnz_L, flops = bench.track_nnz_L(cache, SMALL, ordering), bench.track_flops(cache, SMALL, ordering)
    case, _ = cache["inputs"][SMALL]
    perm = cache["entries"][SMALL, ordering]["ordering"].perm
    assert (nnz_L, flops) == cholmod_simplicial_counts(case.A, perm)
    assert isinstance(nnz_L, int) and isinstance(flops, int)


def test_fill_reducing_orderings_track_less_fill_than_natural(cache):
    fill = {o: cache["entries"][SMALL, o]["nnz_L"] for o in ("natural", "amd", "metis")}
    assert fill["amd"] < fill["natural"] and fill["metis"] < fill["natural"]


def test_tracked_fill_is_deterministic(tmp_path, cache):
    again = suite.build_cache(tmp_path, cases=[SMALL], ordering_names=["metis", "amd"])
    for o in ("metis", "amd"):
        assert again["entries"][SMALL, o]["nnz_L"] == cache["entries"][SMALL, o]["nnz_L"]
        assert again["entries"][SMALL, o]["flops"] == cache["entries"][SMALL, o]["flops"]


def test_unregistered_or_unavailable_orderings_skip_in_setup(cache):
    entry = cache["entries"][SMALL, "no-such"]
    assert entry["status"] == "skip" and "not registered" in entry["reason"]
    for cls in (suite.Fill, suite.OrderTime):
        with pytest.raises(NotImplementedError, match="no-such"):
            cls().setup(cache, SMALL, "no-such")


def test_a_crashing_ordering_fails_its_benchmark(cache):
    broken = dict(cache, entries={(SMALL, "amd"): {"status": "error", "reason": "ordering amd: boom"}})
    with pytest.raises(RuntimeError, match="boom"):
        suite.Fill().setup(broken, SMALL, "amd")


def test_time_order_runs_the_registry_ordering(cache):
    bench = suite.OrderTime()
    bench.setup(cache, SMALL, "amd")
    bench.time_order(cache, SMALL, "amd")
    # What was timed is the registry's ordering of that input: the cached permutation again.
    np.testing.assert_array_equal(bench.result.perm, cache["entries"][SMALL, "amd"]["ordering"].perm)


def test_factor_and_solve_on_cholmod_solve_the_system(cache):
    pytest.importorskip("sksparse.cholmod")
    bench = suite.Factor()
    bench.setup(cache, SMALL, "metis", "cholmod")
    try:
        bench.time_factor(cache, SMALL, "metis", "cholmod")
        bench.time_solve(cache, SMALL, "metis", "cholmod")
        x, _ = bench.backend.solve(bench.b)
        assert np.linalg.norm(bench.A @ x - bench.b) <= 1e-10 * np.linalg.norm(bench.b)
    finally:
        bench.teardown(cache, SMALL, "metis", "cholmod")


def test_gpu_backend_skips_cleanly_without_a_gpu(cache):
    ok, reason = backends.create("cudss").available()
    if ok:
        pytest.skip("cudss is available here")
    bench = suite.Factor()
    with pytest.raises(NotImplementedError, match="cudss"):
        bench.setup(cache, SMALL, "metis", "cudss")
    bench.teardown(cache, SMALL, "metis", "cudss")  # asv calls teardown after a skip too


def test_peakmem_runs_a_whole_cell(cache, monkeypatch):
    pytest.importorskip("sksparse.cholmod")
    monkeypatch.setattr(suite, "LARGEST_CASE", SMALL)
    bench = suite.PeakMemory()
    bench.setup(cache, "metis")
    bench.peakmem_order_and_factor(cache, "metis")
    assert bench.metrics["residual"] < 1e-10 and bench.metrics["t_factor_s"] > 0  # a whole cell ran


def test_total_times_every_phase_of_a_cell(cache, monkeypatch):
    pytest.importorskip("sksparse.cholmod")
    bench = suite.Total()
    bench.setup(cache, SMALL, "amd", "cholmod")
    bench.time_total(cache, SMALL, "amd", "cholmod")
    assert bench.metrics["residual"] < 1e-10 and bench.metrics["t_analyze_s"] > 0
    native = suite.Total()
    native.setup(cache, SMALL, "native", "cholmod")
    native.time_total(cache, SMALL, "native", "cholmod")
    assert native.metrics["residual"] < 1e-10 and len(native.metrics["perm"]) == bench.case.n


def test_suite_parameters_and_config():
    conf = json.loads((REPO / "asv.conf.json").read_text())
    assert conf["branches"] == ["main"] and conf["repo"] == "."
    assert (REPO / conf["benchmark_dir"] / "benchmarks.py").exists()
    assert suite.LARGEST_CASE in suite.CASES and suite.SMALLEST_CASE in suite.CASES
    assert set(suite.FACTOR_ORDERINGS) <= set(suite.ORDERINGS)
    for name in suite.CASES:
        if name.startswith("file:"):
            assert name[len("file:"):] in suite.FILE_SOURCES


def test_asv_check_discovers_the_suite(tmp_path):
    asv = shutil.which("asv", path=str(Path(sys.executable).parent))
    if asv is None:
        pytest.skip("asv is not installed (pip install -e .[test])")
    env = {"HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    done = subprocess.run([asv, "check", "--python=same"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_patch_threads_benchmark_times_and_tracks_the_patch_ordering(monkeypatch):
    monkeypatch.setattr(suite.PatchThreads, "CASE", "grid[n=2500,matrix=graph]")
    bench = suite.PatchThreads()
    bench.setup("fast", 1)
    assert bench.time_order("fast", 1) is None
    fill = bench.track_nnz_L("fast", 1)
    graph = symmetric_graph(datasets.load("grid[n=2500,matrix=graph]").A)
    assert fill > graph.nnz // 2  # at least the matrix's own lower triangle
    with pytest.raises(NotImplementedError):
        bench.setup("fast", 10_000)
