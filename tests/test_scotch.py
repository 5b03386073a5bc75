"""The ``scotch`` ordering: Scotch 7 nested dissection through scotchpy.

Tests that call Scotch skip where scotchpy cannot be imported; the unavailable reason is tested
everywhere by hiding the module.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from permbench.datasets import load
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.core.case import inverse_perm, symmetric_graph, validate_perm
from permbench.core.specs import SpecError
from permbench.orderings import create
from permbench.orderings import scotch


@pytest.fixture(scope="module")
def scotchpy_present():
    ok, reason = scotch.Scotch.available()
    if not ok:
        pytest.skip(f"scotch unavailable: {reason}")


def grid_graph(k: int):
    return symmetric_graph(load(f"grid[n={k * k},matrix=graph]").A)


def nnz_L(graph, perm) -> int:
    return symbolic_factor(graph, perm).nnz_L


def test_without_scotchpy_the_reason_names_what_to_install(monkeypatch):
    scotch.import_scotchpy.cache_clear()
    monkeypatch.setitem(sys.modules, "scotchpy", None)  # `import scotchpy` now raises ImportError
    try:
        ok, reason = scotch.Scotch.available()
    finally:
        scotch.import_scotchpy.cache_clear()
    assert not ok
    assert reason.startswith("scotchpy not installed (pip install scotchpy64==1.0.2")


def test_a_scotchpy_whose_library_fails_to_load_is_unavailable_with_the_error(monkeypatch):
    class Broken:
        def find_spec(self, name, path=None, target=None):
            if name == "scotchpy":
                raise Exception("The scotch library is not included in the package")  # as scotchpy's find_libs does
            return None

    scotch.import_scotchpy.cache_clear()
    monkeypatch.delitem(sys.modules, "scotchpy", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    try:
        ok, reason = scotch.Scotch.available()
    finally:
        scotch.import_scotchpy.cache_clear()
    assert not ok
    assert "does not load: The scotch library is not included" in reason


def test_version_comes_from_the_loaded_library(scotchpy_present):
    import scotchpy

    versions = create("scotch").library_versions()
    # SCOTCH_version() of the loaded library must agree with the scotch.h its wheel ships (the
    # wheel's libscotch.so is a copy, not a link, so its file name carries no version).
    header = (Path(scotchpy.__file__).parent / "scotch.h").read_text()
    macros = [re.search(rf"#define SCOTCH_{m}\s+(\d+)", header).group(1) for m in ("VERSION", "RELEASE", "PATCHLEVEL")]
    assert versions["scotch"] == ".".join(macros)
    assert versions["scotchpy"] == importlib.metadata.version("scotchpy64")


def test_unknown_strategy_is_named():
    with pytest.raises(SpecError, match="strategy='fastest' is not one of default, quality, speed"):
        create("scotch[strategy=fastest]")


@pytest.mark.parametrize("dataset", ["grid[n=4000]", "icosphere[n=2600]", "torus[n=3000]",
                                     "delaunay[n=3000,seed=2]", "tetgrid[n=4000]"])
def test_every_generator_gives_a_valid_permutation(scotchpy_present, dataset):
    graph = symmetric_graph(load(dataset).A)
    for strategy in scotch.STRATEGY_FLAGS:
        ordering = create(f"scotch[strategy={strategy}]").compute(graph, threads=2)
        validate_perm(ordering.perm, graph.shape[0])
        assert ordering.stats == {"threads": 2, "strategy": strategy}


def test_same_seed_and_threads_give_the_same_permutation(scotchpy_present):
    graph = grid_graph(120)
    for threads in (1, 2):
        first = create("scotch").compute(graph, threads=threads).perm
        create("scotch[seed=7]").compute(graph, threads=threads)  # moves no shared random state
        assert np.array_equal(first, create("scotch").compute(graph, threads=threads).perm)


def test_perm_is_new_to_old(scotchpy_present):
    graph = grid_graph(100)
    perm = create("scotch").compute(graph).perm
    assert nnz_L(graph, perm) * 4 < nnz_L(graph, inverse_perm(perm))


def test_fill_on_a_300x300_grid_is_within_1_5x_of_metis(scotchpy_present):
    graph = grid_graph(300)
    metis = nnz_L(graph, create("metis").compute(graph).perm)
    for threads in (1, 2):
        fill = nnz_L(graph, create("scotch").compute(graph, threads=threads).perm)
        assert fill <= 1.5 * metis, (threads, fill, metis)


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_graphs(scotchpy_present, n):
    import scipy.sparse as sp

    graph = symmetric_graph(sp.csr_matrix(np.ones((n, n))))
    validate_perm(create("scotch").compute(graph).perm, n)


def test_graph_without_edges_and_many_components(scotchpy_present):
    import scipy.sparse as sp

    empty = sp.csr_matrix((50, 50))
    validate_perm(create("scotch").compute(empty).perm, 50)
    blocks = sp.block_diag([grid_graph(10)] * 7, format="csr")
    validate_perm(create("scotch").compute(blocks, threads=2).perm, 700)


@pytest.mark.slow
def test_every_shared_mesh_and_matrix(scotchpy_present, shared_data_dir):
    manifest = json.loads((shared_data_dir / "manifest.json").read_text())
    files = [entry["file"] for entry in manifest.get("meshes", []) + manifest.get("suitesparse", [])]
    assert files
    for name in files:
        spec = f"file:{shared_data_dir / name}" + ("[matrix=graph]" if name.endswith(".obj") else "")
        graph = symmetric_graph(load(spec).A)
        validate_perm(create("scotch").compute(graph, threads=2).perm, graph.shape[0], who=name)
