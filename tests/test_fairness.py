"""Fair and fresh by construction: what a total counts, equal thread budgets, code-hashed cells,
honest inputs. Each test would fail if the property were lost."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from permbench.harness import runner
from permbench.harness.metrics import totals
from permbench.harness.store import ResultStore

PHASES = ("t_graph_s", "t_order_s", "t_tree_s", "t_analyze_s", "t_factor_s", "t_solve_s")


def run(tmp_path, plugins, orderings, backends=("symbolic",), datasets=("test-tinygrid",), **kw):
    kw.setdefault("timeout_s", 120)
    cfg = runner.RunConfig(datasets=list(datasets), orderings=list(orderings), backends=list(backends),
                           out=tmp_path / "r.parquet", plugins=plugins, **kw)
    return cfg, runner.run(cfg)


def phase_sum(row, phases=PHASES):
    return sum(0.0 if row[p] is None or math.isnan(row[p]) else row[p] for p in phases)


def test_a_total_counts_every_phase_including_the_graph_build(plugins, tmp_path):
    _, outcome = run(tmp_path, plugins, ["test-stamp[seconds=0.3]"], backends=["test-dense"])
    row = outcome.frame.iloc[0]
    assert row["status"] == "ok", row["reason"]
    assert row["t_order_s"] >= 0.3  # the ordering slept 0.3 s inside the timed call
    assert row["t_graph_s"] > 0
    assert row["t_total_s"] == pytest.approx(phase_sum(row), rel=1e-12, abs=0)
    assert row["t_total_s"] > row["t_order_s"] + row["t_graph_s"]


def test_a_derived_tree_is_charged_in_its_own_column_and_the_total(plugins, tmp_path):
    _, outcome = run(tmp_path, plugins, ["amd"], backends=["test-dense-tree[tree_seconds=0.25]"])
    row = outcome.frame.iloc[0]
    assert row["status"] == "ok", row["reason"]
    assert row["t_tree_s"] >= 0.25
    assert row["t_analyze_s"] < 0.25  # the tree is not hidden inside the analysis
    assert row["t_total_s"] == pytest.approx(phase_sum(row), rel=1e-12, abs=0)
    assert row["t_tree_cpu_s"] < 0.1  # it slept: wall time without CPU time, as measured


def test_a_native_total_is_its_own_phases_without_the_harness_graph():
    row = {"t_graph_s": 5.0, "t_order_s": float("nan"), "t_analyze_s": 1.0, "t_factor_s": 2.0, "t_solve_s": 0.5,
           "t_analyze_cpu_s": 1.0, "t_factor_cpu_s": 4.0, "t_solve_cpu_s": 0.5}
    assert totals(row, native=True)["t_total_s"] == 3.5
    assert totals(row, native=True)["cpu_util"] == pytest.approx(5.5 / 3.5)
    user = dict(row, t_order_s=1.0, t_order_cpu_s=1.0, t_graph_cpu_s=5.0)
    assert totals(user, native=False)["t_total_s"] == 9.5
    # A phase whose CPU time was not measured makes cpu_util unknown rather than wrong.
    assert math.isnan(totals(dict(user, t_order_cpu_s=None), native=False)["cpu_util"])


def test_every_ordering_gets_the_cell_thread_budget_and_the_row_records_it(plugins, tmp_path):
    _, outcome = run(tmp_path, plugins, ["test-threads", "amd"], threads=3)
    rows = outcome.frame.set_index("ordering")
    assert json.loads(rows.at["test-threads", "ordering_extras"])["threads_given"] == 3
    assert set(rows["threads"]) == {3}
    assert rows["deterministic"].all()
    assert (rows["t_order_cpu_s"] >= 0).all() and rows["t_order_cpu_s"].notna().all()


def test_cpu_util_shows_an_idle_phase(plugins, tmp_path):
    # test-stamp sleeps: its ordering's CPU time is far below its wall time.
    _, outcome = run(tmp_path, plugins, ["test-stamp[seconds=0.5]"], backends=["test-dense"])
    row = outcome.frame.iloc[0]
    assert row["t_order_cpu_s"] < 0.25 * row["t_order_s"]
    assert row["cpu_util"] < 0.5


def test_homa_says_it_is_not_deterministic():
    from permbench import orderings

    assert orderings.registry.get("homa").deterministic is False
    assert orderings.registry.get("amd").deterministic is True


PLUGIN = textwrap.dedent('''
    import numpy as np

    from permbench import orderings
    from permbench.core.case import Ordering


    @orderings.register
    class Edited(orderings.OrderingBase):
        name = "test-edited-{tag}"
        warmup = False

        def compute(self, graph, *, coords=None, seed=0, threads=1):
            return Ordering(np.arange(graph.shape[0])[::-1].copy())
''')


def test_editing_a_plugin_file_makes_exactly_its_cells_stale(plugins, tmp_path):
    tag = tmp_path.name.replace("_", "-").lower()
    plugin = tmp_path / "edited_plugin.py"
    plugin.write_text(PLUGIN.replace("{tag}", tag))
    kw = dict(plugins=plugins + [str(plugin)])
    cfg, first = run(tmp_path, plugins + [str(plugin)], ["amd", f"test-edited-{tag}"])
    before = first.frame.set_index("ordering")
    plugin.write_text(plugin.read_text() + "# a comment changes the code hash\n")
    states = runner.cell_states(runner.cells_of(runner.plan(cfg)), ResultStore(cfg.out), cfg)
    by_ordering = {c.ordering: states[c.cell_id].why for c in runner.cells_of(runner.plan(cfg))}
    assert by_ordering == {"amd": "final", f"test-edited-{tag}": "stale"}
    _, second = run(tmp_path, kw["plugins"], ["amd", f"test-edited-{tag}"])
    after = second.frame.set_index("ordering")
    assert len(after) == 2  # the stale cell was replaced, not added
    assert after.at["amd", "cell_id"] == before.at["amd", "cell_id"]
    assert after.at["amd", "t_order_s"] == before.at["amd", "t_order_s"]  # not re-run
    edited = f"test-edited-{tag}"
    assert after.at[edited, "cell_id"] != before.at[edited, "cell_id"]
    assert after.at[edited, "code_hash"] != before.at[edited, "code_hash"]
    assert "edited_plugin.py" in after.at[edited, "code_files"]


def test_a_cell_records_its_code_files_and_checkout(plugins, tmp_path):
    _, outcome = run(tmp_path, plugins, ["amd"])
    row = outcome.frame.iloc[0]
    files = json.loads(row["code_files"])
    assert "orderings/amd.py" in files and "harness/child.py" in files and "harness/backends/symbolic.py" in files
    assert "orderings/metis.py" not in files
    assert len(row["code_hash"]) == 16
    assert "git_commit" in row and "git_dirty" in row


# ------------------------------------------------------------------------------------------------
# Honest inputs.

ASYMMETRIC = """%%MatrixMarket matrix coordinate real general
3 3 7
1 1 4
2 2 4
3 3 4
1 2 -1
2 1 -1.5
2 3 -1
3 2 -1
"""

ONE_SIDED = """%%MatrixMarket matrix coordinate real general
3 3 5
1 1 4
2 2 4
3 3 4
2 1 -1
3 2 -1
"""

ZERO_DIAGONAL = """%%MatrixMarket matrix coordinate real symmetric
3 3 4
1 1 4
2 2 0
3 3 4
2 1 -1
"""


def test_an_asymmetric_matrix_is_an_error_naming_the_entry_and_symmetrize_opts_in(plugins, tmp_path):
    path = tmp_path / "asym.mtx"
    path.write_text(ASYMMETRIC)
    _, outcome = run(tmp_path, plugins, ["amd"], backends=["test-dense"],
                     datasets=[f"file:{path}", f"file:{path}[symmetrize=average]", "test-tinygrid"])
    rows = outcome.frame.set_index("dataset")
    bad = rows.loc[f"file:{path}"]
    assert bad["status"] == "error"
    assert "entry (1, 2) = -1 but (2, 1) = -1.5" in bad["reason"] and "symmetrize=" in bad["reason"]
    fixed = rows.loc[f"file:{path}[symmetrize=average]"]
    assert fixed["status"] == "ok", fixed["reason"]
    assert json.loads(fixed["dataset_meta"])["symmetrized"] == "average"
    assert rows.loc["test-tinygrid"]["status"] == "ok"
    assert outcome.failed


def test_a_one_sided_general_pattern_is_refused_and_lower_mirrors_it(tmp_path):
    from permbench import datasets
    from permbench.core.case import InputError

    path = tmp_path / "lower.mtx"
    path.write_text(ONE_SIDED)
    with pytest.raises(InputError, match=r"entry \(1, 2\) = 0 but \(2, 1\) = -1|entry \(2, 1\) = -1 but \(1, 2\) = 0"):
        datasets.load(f"file:{path}")
    case = datasets.load(f"file:{path}[symmetrize=lower]")
    assert (case.A != case.A.T).nnz == 0 and case.A[0, 1] == -1


def test_a_zero_diagonal_is_named_in_not_spd(plugins, tmp_path):
    path = tmp_path / "zero.mtx"
    path.write_text(ZERO_DIAGONAL)
    _, outcome = run(tmp_path, plugins, ["amd"], backends=["test-dense"], datasets=[f"file:{path}"])
    row = outcome.frame.iloc[0]
    assert row["status"] == "not_spd"
    assert "(2, 2) = 0" in row["reason"] and "positive diagonal" in row["reason"]
    assert not outcome.failed  # not_spd describes the matrix: not a failure of the run


def test_mesh_errors_name_the_file_line_and_index(tmp_path):
    from permbench.datasets.readers import read_mesh
    from permbench.core.case import InputError

    obj = tmp_path / "bad.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\n# comment\nf 1 2 3\nf 2 4 7\n")
    with pytest.raises(InputError, match=r"bad.obj: line 7: face 2 refers to vertex 7 \(1-based\), but the file has 4"):
        read_mesh(obj)
    off = tmp_path / "bad.off"
    off.write_text("OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n1 1 0\n3 0 1 2\n3 1 3 6\n")
    with pytest.raises(InputError, match=r"bad.off: line 8: face 2 refers to vertex 7 \(1-based"):
        read_mesh(off)
    points = tmp_path / "points.obj"
    points.write_text("".join(f"v {i % 40} {i // 40} 0\n" for i in range(1600)))
    with pytest.raises(InputError, match="1600 vertices and no faces"):
        read_mesh(points)


def test_orderings_list_says_which_orderings_are_not_deterministic():
    from typer.testing import CliRunner

    from permbench.harness.cli import app

    result = CliRunner().invoke(app, ["orderings", "list"], terminal_width=250)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 4}
    assert "no (threads > 1)" in rows["homa"] and "no (threads > 1)" not in rows["amd"]


def test_the_warm_up_orders_a_grid_of_the_orderings_own_size_with_the_cells_threads():
    """First-call costs stay out of t_order_s only if the untimed warm-up takes the code paths the
    real input takes: each ordering names its warm-up grid and the harness hands it to the
    ordering's warm_up with the cell's threads."""
    import types

    import numpy as np
    import scipy.sparse as sp

    from permbench import orderings
    from permbench.core.case import MatrixCase, Ordering
    from permbench.harness.child import _warm_up

    seen = []

    class Recorder(orderings.OrderingBase):
        native, warmup_grid = False, 20
        spec = types.SimpleNamespace(canonical=lambda: "recorder")

        def __init__(self):
            pass

        def compute(self, graph, *, coords=None, seed=0, threads=1):
            seen.append((graph.shape[0], threads))
            return Ordering(np.arange(graph.shape[0]))

    case = MatrixCase(name="x", A=sp.identity(3, format="csr"), meta={})
    _warm_up(Recorder(), case, lambda *_: None, threads=3)
    assert seen == [(400, 3)]
    assert orderings.OrderingBase.warmup_grid == 48


def test_the_patch_warm_up_takes_the_routes_and_parallel_passes_of_large_and_small_inputs(monkeypatch):
    """The patch ordering's warm-up must reach what a large input runs (the quotient route on the
    pool, the band levels and an FM level below them, the compiled passes both serially and in
    pieces on numba's threads) and what a small input runs (the direct route), or those first calls land in a timed
    repeat."""
    import scipy.sparse as sp

    import permbench.orderings.patch as patch_module
    from permbench.core.case import MatrixCase
    from permbench.harness.child import _warm_up
    from permbench.orderings.patch import pool
    from permbench.orderings.patch.pipeline import AUTO_DIRECT_MAX_N

    real, seen = patch_module.patch_order, []

    def recording(graph, *args, threads=1, **kwargs):
        out = real(graph, *args, threads=threads, **kwargs)
        pieces = pool.Pool(executor=object(), threads=threads).pieces(1)  # a pass of one item
        seen.append((graph.shape[0], out.stats["levels"], out.stats["threads_used"], pieces))
        return out

    monkeypatch.setattr(patch_module, "patch_order", recording)
    threshold = pool.PASS_MIN_SIZE
    patch = patch_module.Patch()
    _warm_up(patch, MatrixCase(name="x", A=sp.identity(3, format="csr"), meta={}), lambda *_: None, threads=2)
    (n_large, levels, threads_used, pieces), (n_again, _, _, pieces_again), (n_small, _, _, pieces_small) = seen
    assert n_large == n_again == patch.warmup_grid ** 2 > AUTO_DIRECT_MAX_N
    assert levels > patch.params["band_levels"]  # an FM level below the band levels
    assert threads_used == 2 and {pieces, pieces_again} == {1, pool.PASS_CHUNKS}  # serial and in pieces
    assert n_small <= AUTO_DIRECT_MAX_N and pieces_small == 1
    assert pool.PASS_MIN_SIZE == threshold
