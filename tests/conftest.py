"""Shared test helpers: small matrices, the shared real data, throw-away plug-ins."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp


def shared_data() -> Path | None:
    env = os.environ.get("PERMBENCH_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if (path / "manifest.json").exists() else None


@pytest.fixture
def shared_data_dir() -> Path:
    path = shared_data()
    if path is None:
        pytest.skip("../shared/data is not present (it ships only beside the project's CI clone)")
    return path


def grid_laplacian(k: int, shift: float = 1.0) -> sp.csr_matrix:
    """5-point Laplacian of a k×k grid plus shift·I: SPD for shift > 0."""
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    return (sp.kronsum(T, T) + shift * sp.identity(k * k)).tocsr()


@pytest.fixture
def register_plugin():
    """Register throw-away plug-in classes for one test, removing them afterwards."""
    added = []

    def add(registry, cls):
        registry.register(cls)
        added.append((registry, cls.name))
        return cls

    yield add
    for registry, name in added:
        registry.unregister(name)


@pytest.fixture
def plugins(register_plugin):
    """Register the test plug-ins in this process for one test; returns the module to hand to children."""
    import importlib

    from permbench import datasets, orderings
    from permbench.harness import backends

    module = importlib.import_module("plugins_for_tests")
    for registry, classes in ((datasets.registry, module.DATASETS), (orderings.registry, module.ORDERINGS),
                              (backends.registry, module.BACKENDS)):
        for cls in classes:
            register_plugin(registry, cls)
    return [module.MODULE]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# This test process loads native libraries that the harness otherwise confines to its children
# (MKL and homapy's Intel OpenMP, numba's OpenMP pool, the patch ordering's private METIS
# namespaces): their teardown at interpreter exit crashed it now and then (exit 139 after every
# test had passed). The harness's children skip that teardown for the same reason
# (harness/isolation.py); the test process does too, once pytest has reported.
_EXIT_STATUS = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["status"] = int(exitstatus)


def pytest_unconfigure(config):
    import sys

    if "status" in _EXIT_STATUS and not os.environ.get("PERMBENCH_TEST_FULL_TEARDOWN"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["status"])
