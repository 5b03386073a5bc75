"""Rows store their plug-ins' parameters (``ordering_params``, ``backend_params``: harness/rows.py);
files written before that get them from the stored names (``results.upgrade_params``), the same text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from permbench.harness import results
from permbench.harness.rows import params_text

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").rglob("*.parquet"))


@pytest.mark.parametrize("name, params", [
    ("native", {}), ("amd[dense=5.0]", {"dense": 5.0}), ("patch[preset=fast]", {"preset": "fast"}),
    ("cudss[k=10,mt=false,reorder=amd]", {"k": 10, "mt": False, "reorder": "amd"}),
    # A canonical name writes a boolean only as true/false: `off` was the string value.
    ("cudss[k=10,tree=off]", {"k": 10, "tree": "off"}),
])
def test_params_of_a_stored_name(name, params):
    assert results.params_of_name(name) == params


def test_params_of_a_name_are_what_the_plugin_holds():
    """The grammar-only reading gives what the plug-in itself would store, also where the grammar
    alone would misread a value (``tree=off``)."""
    from permbench import orderings
    from permbench.harness import backends

    for registry, name in ((backends.registry, "cudss[k=10,tree=off]"), (backends.registry, "cholmod[k=3]"),
                           (orderings.registry, "amd[aggressive=false,dense=5]"), (orderings.registry, "patch[preset=fast]")):
        plugin = registry.create(name)
        assert results.params_of_name(plugin.spec.canonical()) == plugin.spec.params


def test_a_run_stores_the_params_and_the_upgrade_gives_the_same_text(tmp_path):
    from permbench.harness import runner

    out = tmp_path / "r.parquet"
    frame = runner.run(runner.RunConfig(datasets=["grid[n=400]"], orderings=["amd[dense=5]", "natural"],
                                        backends=["symbolic"], repeat=1, out=out,
                                        timeout_s=300)).frame
    assert dict(zip(frame["ordering"], frame["ordering_params"])) == {"amd[dense=5.0]": '{"dense":5.0}',
                                                                      "natural": "{}"}
    assert set(frame["backend_params"]) == {"{}"}
    stored, provenance = results.read_results(out)
    # As a file written before the columns existed: the upgrade fills them with the same text.
    results.write_results(stored.drop(columns=["ordering_params", "backend_params"]), out, provenance)
    before, after = results.upgrade_params(out, "test: params from the names")
    assert before["ordering_params"].isna().all()
    assert list(after["ordering_params"]) == list(stored["ordering_params"])
    assert list(after["backend_params"]) == list(stored["backend_params"])
    assert results.read_results(out)[1]["upgrades"][-1] == "test: params from the names"


def test_params_text_is_canonical():
    assert params_text({"tree": "off", "k": 10}) == params_text({"k": 10, "tree": "off"}) == '{"k":10,"tree":"off"}'


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(ROOT)) for p in COMMITTED])
def test_committed_results_carry_the_params(path):
    frame, provenance = results.read_results(path)
    for kind in ("ordering", "backend"):
        stored = frame[f"{kind}_params"]
        assert stored.notna().all()
        assert [json.loads(t) for t in stored] == [results.params_of_name(n) for n in frame[kind]]
