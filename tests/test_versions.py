"""Library versions in the rows come from the libraries loaded, never from constants in the code.

Each version is checked against independent evidence of the same library: its version call
against the real file name of the mapped library, pymetis's compiled option layout against the
version its description names, Scotch's call against the header its wheel ships.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path

import pytest

from permbench import orderings
from permbench.core import libversions
from permbench.harness import runner
from permbench.core.provenance import library_file_version

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def test_no_version_constants_in_the_code():
    # A module-level NAME = "5.2.1" is how a stale version got into every METIS row before.
    pattern = re.compile(r"^[A-Z_]*(?:VERSION|METIS|SCOTCH|CUDSS|MKL|CHOLMOD|AMD)[A-Z_]*\s*=\s*[\"']\d+\.\d+", re.M)
    offenders = [f"{path.relative_to(ROOT)}: {m.group(0)}"
                 for folder in ("orderings", "harness") for path in sorted((ROOT / folder).rglob("*.py"))
                 for m in pattern.finditer(path.read_text())]
    assert not offenders, offenders


def test_pymetis_metis_compiled_layout_agrees_with_its_stated_version():
    version = libversions.pymetis_metis_version()
    assert VERSION.match(version), version  # the full form only when layout and description agree
    assert orderings.create("metis").library_versions()["metis"] == version
    assert orderings.create("patch").library_versions()["metis"] == version


@pytest.mark.parametrize("name", ["cholmod", "suitesparseconfig"])
def test_suitesparse_version_calls_agree_with_the_mapped_files(name):
    pytest.importorskip("sksparse.cholmod")  # maps libcholmod and libsuitesparseconfig
    call = libversions.suitesparse_library_version(name)
    assert VERSION.match(call), call
    assert call == library_file_version(f"lib{name}.so")


@pytest.mark.parametrize("ordering, library", [("amd", "amd"), ("patch", "camd")])
def test_amd_and_camd_versions_are_those_of_the_loaded_files(ordering, library):
    plugin = orderings.create(ordering)
    if not plugin.available()[0]:
        pytest.skip(plugin.available()[1])
    version = plugin.library_versions()[library]
    assert VERSION.match(version), version
    assert version == library_file_version(f"lib{library}.so")


def test_cholmod_plugins_report_the_library_call():
    pytest.importorskip("sksparse.cholmod")
    from permbench.core.libversions import cholmod_version

    assert orderings.create("cholmod-amd").library_versions()["cholmod"] == cholmod_version()
    assert cholmod_version() == library_file_version("libcholmod.so")


def test_homapy_metis_from_its_header():
    if importlib.util.find_spec("homapy") is None:
        pytest.skip("homapy not installed")
    assert VERSION.match(libversions.homapy_metis_version())


def test_mkl_version_string_names_the_installed_release():
    from permbench.harness.backends import pardiso

    if not pardiso.Pardiso.available()[0]:
        pytest.skip("MKL not installed")
    wheel = importlib.metadata.version("mkl")  # 2026.2.0
    release = ".".join(wheel.split(".")[:2])
    assert f"Version {release}" in pardiso.mkl_version()


def test_rows_carry_the_library_versions_of_their_cell(tmp_path):
    cfg = runner.RunConfig(out=tmp_path / "r.parquet", datasets=["grid[n=400]"], orderings=["amd", "metis"],
                           backends=["symbolic"], timeout_s=60)
    frame = runner.run(cfg).frame
    assert set(frame["status"]) == {"ok"}, frame["reason"].tolist()
    libs = {r.ordering: json.loads(r.ordering_libraries) for r in frame.itertuples()}
    assert libs["metis"]["metis"] == libversions.pymetis_metis_version()
    assert libs["amd"]["amd"] == libversions.suitesparse_library_version("amd")
    assert json.loads(frame["backend_libraries"].iloc[0]) == {}
