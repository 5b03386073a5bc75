"""Named suites: the default run, the comparison study, and suite files (TOML) mirroring `run`'s options."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


class SuiteError(ValueError):
    """A suite file that cannot be read or has keys `permbench run` does not know."""


KEYS = {"data_dir", "datasets", "orderings", "backends", "repeat", "rounds", "out", "mem_limit", "flop_limit", "timeout", "jobs", "threads",
        "executor", "figures"}

#: The default suite: built-in meshes from 10k to 1M vertices, every available ordering, the
#: symbolic and CHOLMOD back-ends. Sized to finish in a few minutes on a 2-core machine.
DEFAULT = {
    "datasets": [
        "grid[n=10000]",
        "icosphere[n=40962]",
        "delaunay[n=100000]",
        "tetgrid[n=125000]",
        "grid[n=1000000]",
    ],
    "backends": ["symbolic", "cholmod"],
    "repeat": 1,
}


def available_orderings() -> list[str]:
    from .. import orderings

    return [cls.name for cls in orderings.registry.classes() if cls.available()[0]]


def shared_data_dir() -> Path | None:
    """The project's shared real inputs (../shared/data beside the checkout), if present."""
    env = os.environ.get("PERMBENCH_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    candidates.append(Path.cwd().parent / "shared" / "data")
    for path in candidates:
        if (path / "manifest.json").exists():
            return path
    return None


def compare_datasets() -> list[str]:
    """The patch-ordering study: large generated meshes plus every real mesh available, by its
    catalogue name (``mesh:NAME``, served from the shared mirror), never by this machine's path."""
    import json

    names = ["grid[n=1000000]", "icosphere[n=655362]", "tetgrid[n=512000]"]
    shared = shared_data_dir()
    if shared is not None:
        manifest = json.loads((shared / "manifest.json").read_text())
        names += [f"mesh:{Path(e['file']).stem}" for e in sorted(manifest.get("meshes", []), key=lambda e: e["file"])]
    return names


def load(path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such suite file") from None
    except tomllib.TOMLDecodeError as err:
        raise SuiteError(f"{path}: not valid TOML ({err})") from None
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise SuiteError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KEYS))}")
    for key in ("datasets", "orderings", "backends"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(x, str) for x in data[key])):
            raise SuiteError(f"{path}: {key} must be a list of names")
    return resolve_paths(data, path.parent)


def _relative_to_suite(value: str, folder: Path) -> str:
    """A path written in a suite file means the same file from any working directory: it is taken
    relative to the suite's folder, then written relative to the working directory (so a run from
    the usual place stores the same short, portable name as before, never an absolute path)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return value
    return os.path.relpath(os.path.normpath(folder.resolve() / path), Path.cwd())


def resolve_paths(data: dict, folder: Path) -> dict:
    """The suite's paths (``out``, ``file:`` datasets, the ``[figures]`` files and folder) made
    relative to the suite file's folder instead of the working directory."""
    data = dict(data)
    for key in ("out", "data_dir"):
        if isinstance(data.get(key), str):
            data[key] = _relative_to_suite(data[key], folder)
    if isinstance(data.get("datasets"), list):
        resolved = []
        for name in data["datasets"]:
            if name.startswith("file:"):
                target, bracket, params = name[len("file:"):].partition("[")
                name = "file:" + _relative_to_suite(target, folder) + bracket + params
            resolved.append(name)
        data["datasets"] = resolved
    figures = data.get("figures")
    if isinstance(figures, dict):
        figures = dict(figures)
        for key in ("results", "gpu_results"):
            value = figures.get(key)
            if isinstance(value, str):
                figures[key] = _relative_to_suite(value, folder)
            elif isinstance(value, list):
                figures[key] = [_relative_to_suite(v, folder) if isinstance(v, str) else v for v in value]
        if isinstance(figures.get("out_dir"), str):
            figures["out_dir"] = _relative_to_suite(figures["out_dir"], folder)
        data["figures"] = figures
    return data
