"""Named suites: the default run, the comparison study, and suite files (TOML) mirroring `run`'s options."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


class SuiteError(ValueError):
    """A suite file that cannot be read or has keys `permbench run` does not know."""


KEYS = {"datasets", "orderings", "backends", "repeat", "out", "mem_limit", "flop_limit", "timeout", "jobs", "threads",
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
    """The patch-ordering study: large generated meshes plus every real mesh available."""
    names = ["grid[n=1000000]", "icosphere[n=655362]", "tetgrid[n=512000]"]
    shared = shared_data_dir()
    if shared is not None:
        names += [f"file:{p}" for p in sorted((shared / "meshes").glob("*.obj"))]
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
    return data
