"""The plug-in folders import only the core (permbench/core/), never the harness that runs them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_FOLDERS = ("orderings", "datasets")


def harness_imports(source: str, relpath: str) -> list[str]:
    """The imports of a file at ``relpath`` (under the repository) that reach ``permbench.harness``."""
    depth = len(Path(relpath).parts) - 1  # orderings/x.py: 1, orderings/patch/x.py: 2
    found = []
    for node in ast.walk(ast.parse(source, relpath)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0:
                names = [module]
            elif node.level == depth + 1:  # relative to `permbench`: ..harness, ...harness
                names = [f"permbench.{module}"] if module else [f"permbench.{a.name}" for a in node.names]
            else:
                names = []
        else:
            continue
        found += [f"{relpath}:{node.lineno}: {n}" for n in names
                  if n == "permbench.harness" or n.startswith("permbench.harness.")]
    return found


PLUGIN_FILES = sorted(str(p.relative_to(ROOT)) for folder in PLUGIN_FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_plugin_folders_are_found():
    assert "orderings/amd.py" in PLUGIN_FILES and "orderings/patch/pipeline.py" in PLUGIN_FILES
    assert "datasets/grid.py" in PLUGIN_FILES


@pytest.mark.parametrize("relpath", PLUGIN_FILES)
def test_plugins_do_not_import_the_harness(relpath):
    assert harness_imports((ROOT / relpath).read_text(), relpath) == []


@pytest.mark.parametrize("line, relpath", [
    ("from ..harness.child import run_group", "orderings/x.py"),
    ("from ..harness import runner", "datasets/x.py"),
    ("from .. import harness", "orderings/x.py"),
    ("from ...harness.backends import cudss", "orderings/patch/x.py"),
    ("import permbench.harness.cli", "orderings/x.py"),
    ("from permbench.harness.store import ResultStore", "datasets/x.py"),
    ("def f():\n    from ..harness.specs import Spec", "orderings/x.py"),
])
def test_the_check_sees_every_form(line, relpath):
    assert harness_imports(line + "\n", relpath)


@pytest.mark.parametrize("line, relpath", [
    ("from ..core.case import Ordering", "orderings/x.py"),
    ("from . import amd", "orderings/x.py"),
    ("from .. import core", "datasets/x.py"),
    ("from ..harness import x", "orderings/patch/x.py"),  # permbench.orderings.harness, not the harness
])
def test_the_check_passes_core_imports(line, relpath):
    assert harness_imports(line + "\n", relpath) == []
