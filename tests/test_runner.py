"""The run engine: rows per cell, statuses and reasons, budgets, fragments, resume."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from permbench import datasets, orderings
from permbench.harness import runner
from permbench.harness.case import Ordering
from permbench.harness.results import PROVENANCE_KEY, merge, read_results
from permbench.orderings import OrderingBase

from conftest import grid_laplacian


class TinyGrid(datasets.DatasetBase):
    name = "test-tinygrid"
    params = {"k": 12, "shift": 1.0}

    def load(self):
        return datasets.matrix_case(self.spec.canonical(), grid_laplacian(self.p["k"], self.p["shift"]), "test")


class BrokenDataset(datasets.DatasetBase):
    name = "test-broken"

    def load(self):
        raise OSError("disk on fire")


class Exploding(OrderingBase):
    name = "test-exploding"

    def compute(self, graph, *, coords=None, seed=0):
        raise RuntimeError("kaboom")


class NotABijection(OrderingBase):
    name = "test-duplicate"

    def compute(self, graph, *, coords=None, seed=0):
        perm = np.arange(graph.shape[0])
        perm[0] = 1
        return Ordering(perm)


class Missing(OrderingBase):
    name = "test-missing"
    requires = ("no_such_module_anywhere",)


CALLS = {"n": 0}


class Counting(OrderingBase):
    name = "test-counting"

    def compute(self, graph, *, coords=None, seed=0):
        CALLS["n"] += 1
        return Ordering(np.arange(graph.shape[0])[::-1].copy(), extras={"seed": seed})


@pytest.fixture
def plugins(register_plugin):
    for cls in (TinyGrid, BrokenDataset):
        register_plugin(datasets.registry, cls)
    for cls in (Exploding, NotABijection, Missing, Counting):
        register_plugin(orderings.registry, cls)


def run(tmp_path, **kw):
    cfg = runner.RunConfig(out=tmp_path / "r.parquet", **kw)
    parts = runner.execute(cfg)
    frame = merge(parts, cfg.out, {"test": True})
    return cfg, frame


def test_rows_per_cell_and_repeat(plugins, tmp_path):
    cfg, frame = run(tmp_path, datasets=["test-tinygrid"], orderings=["amd", "natural"],
                     backends=["symbolic"], repeat=2)
    assert len(frame) == 4
    assert set(frame["status"]) == {"ok"}
    amd = frame[frame["ordering"] == "amd"]
    nat = frame[frame["ordering"] == "natural"]
    assert (amd["nnz_L"].to_numpy() < nat["nnz_L"].to_numpy()).all()  # AMD reduces fill on a grid
    assert frame["n"].iloc[0] == 144 and (frame["t_order_s"] >= 0).all()
    assert frame["cell_id"].nunique() == 2  # repeats share the cell id
    _, prov = read_results(cfg.out)
    assert prov == {"test": True}


def test_failures_cost_only_their_cell(plugins, tmp_path):
    _, frame = run(tmp_path, datasets=["test-tinygrid", "test-broken"],
                   orderings=["amd", "test-exploding", "test-duplicate", "test-missing"], backends=["symbolic"])
    status = {(r.dataset, r.ordering): (r.status, r.reason) for r in frame.itertuples()}
    assert status[("test-tinygrid", "amd")][0] == "ok"
    assert status[("test-tinygrid", "test-exploding")] [0] == "error"
    assert "kaboom" in status[("test-tinygrid", "test-exploding")][1]
    assert "not a bijection" in status[("test-tinygrid", "test-duplicate")][1]
    assert status[("test-tinygrid", "test-missing")][0] == "unavailable"
    assert "no_such_module_anywhere" in status[("test-tinygrid", "test-missing")][1]
    for o in ("amd", "test-exploding"):
        st, reason = status[("test-broken", o)]
        assert st == "error" and "disk on fire" in reason and "test-broken" in reason


def test_unknown_names_fail_before_any_work(plugins, tmp_path):
    with pytest.raises(Exception, match="valid orderings"):
        run(tmp_path, datasets=["test-tinygrid"], orderings=["nope"])
    assert not (tmp_path / "r.parquet.parts").exists()


@pytest.mark.cholmod
def test_not_spd_keeps_ordering_and_symbolic_metrics(plugins, tmp_path):
    pytest.importorskip("sksparse")
    _, frame = run(tmp_path, datasets=["test-tinygrid[shift=-10.0]"], orderings=["amd"],
                   backends=["symbolic", "cholmod"])
    chol = frame[frame["backend"] == "cholmod"].iloc[0]
    assert chol["status"] == "not_spd"
    assert chol["nnz_L"] > 0 and chol["t_order_s"] >= 0
    assert frame[frame["backend"] == "symbolic"].iloc[0]["status"] == "ok"


@pytest.mark.cholmod
def test_memory_budget_skips_numeric_factorization(plugins, tmp_path):
    pytest.importorskip("sksparse")
    _, frame = run(tmp_path, datasets=["test-tinygrid"], orderings=["natural"], backends=["symbolic", "cholmod"],
                   mem_limit_bytes=1000)
    chol = frame[frame["backend"] == "cholmod"].iloc[0]
    assert chol["status"] == "skipped" and "predicted factor size" in chol["reason"]
    assert chol["nnz_L"] > 0


@pytest.mark.cholmod
def test_cholmod_row_has_phase_times_and_residual(plugins, tmp_path):
    pytest.importorskip("sksparse")
    _, frame = run(tmp_path, datasets=["test-tinygrid"], orderings=["amd"], backends=["cholmod[k=3]"])
    row = frame.iloc[0]
    assert row["status"] == "ok", row["reason"]
    assert row["residual"] < 1e-10
    for col in ("t_analyze_s", "t_factor_s", "t_solve_s", "t_total_s", "t_total_k_s"):
        assert row[col] > 0
    assert row["t_total_k_s"] > row["t_total_s"] - row["t_order_s"]
    assert row["k"] == 3


def test_resume_skips_finished_groups_and_force_reruns(plugins, tmp_path):
    CALLS["n"] = 0
    kw = dict(datasets=["test-tinygrid"], orderings=["test-counting"], backends=["symbolic"])
    run(tmp_path, **kw)
    run(tmp_path, **kw)
    assert CALLS["n"] == 1
    _, frame = run(tmp_path, force=True, **kw)
    assert CALLS["n"] == 2 and len(frame) == 1
    assert json.loads(frame["ordering_extras"].iloc[0]) == {"seed": 0}


def test_errors_are_retried_on_rerun(plugins, tmp_path):
    kw = dict(datasets=["test-tinygrid"], orderings=["test-exploding"], backends=["symbolic"])
    run(tmp_path, **kw)
    groups = runner.plan(runner.RunConfig(out=tmp_path / "r.parquet", **kw))
    assert runner.done_groups(tmp_path / "r.parquet.parts") == set()
    assert len(groups) == 1


def test_provenance_in_parquet_metadata(plugins, tmp_path):
    import pyarrow.parquet as pq

    cfg, _ = run(tmp_path, datasets=["test-tinygrid"], orderings=["amd"])
    assert PROVENANCE_KEY in pq.read_schema(cfg.out).metadata
