"""Which source files shape a cell's result, and their hash: a changed plug-in re-runs its cells.

A plug-in's files are its own module (the whole folder when the plug-in is a package, as
``orderings/patch/`` is) plus, transitively, every module of a plug-in folder (``orderings/``,
``datasets/``, ``harness/backends/``) it imports — found by reading its ``import`` statements,
so nobody keeps a list by hand. Core and harness modules are not followed (specs, the registry,
the CLI do not shape numbers) except the ones that time and count, which every cell includes, and
the core's ND tree module (``SHAPING_CORE_MODULES``).

A plug-in's own files count byte for byte (any edit re-runs its cells); the modules it depends
on count by their syntax tree, so that a comment or layout change in a shared module (the
harness's child, ``orderings/amd.py`` that ``patch`` calls) does not re-run every cell, while
a change of code does.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
from pathlib import Path

#: Module names whose code is followed through imports: the plug-in folders.
PLUGIN_PACKAGES = ("permbench.orderings", "permbench.datasets", "permbench.harness.backends")
#: Core modules that shape the numbers of the plug-ins importing them (the ND tree layouts that
#: patch, homa and cuDSS hand over), followed like a plug-in folder's modules.
SHAPING_CORE_MODULES = ("permbench.core.ndtree",)

#: Modules that time and count every cell (the harness's child, the core's case and graph, the
#: phases of a numeric back-end, the symbolic analysis) and the one that gives a row its status.
HARNESS_MODULES = ("permbench.harness.child", "permbench.harness.rows", "permbench.core.case",
                   "permbench.harness.backends", "permbench.harness.backends.symbolic")


def _origin(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _followed(module: str) -> bool:
    in_plugin_folder = any(module == p or module.startswith(p + ".") for p in PLUGIN_PACKAGES)
    return in_plugin_folder or module in SHAPING_CORE_MODULES


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of the permbench modules ``path`` (module ``module``) imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from . import amd`: a submodule
    return {m for m in found if m.startswith("permbench")}


@functools.lru_cache(maxsize=None)
def module_files(module: str) -> tuple[Path, ...]:
    """The files of ``module`` and of the plug-in modules it imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _origin(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(m for m in _imports(path, name) if _followed(m) and m not in seen)
    return tuple(sorted(set(seen.values())))


def own_files(cls) -> tuple[Path, ...]:
    """A plug-in class's own source: its module's file, its whole folder when it is a package."""
    module = cls.__module__
    own = Path(inspect.getsourcefile(cls)).resolve()
    if own.name == "__init__.py" and module not in PLUGIN_PACKAGES:
        return tuple(sorted(own.parent.rglob("*.py")))
    return (own,)


def plugin_files(cls) -> tuple[Path, ...]:
    """A plug-in class's files: its module's closure, its whole folder when it is a package."""
    module = cls.__module__
    own = Path(inspect.getsourcefile(cls)).resolve()
    files = set(module_files(module)) if _origin(module) else set()
    files.add(own)
    if own.name == "__init__.py" and module not in PLUGIN_PACKAGES:
        files.update(own.parent.rglob("*.py"))
    # A plug-in loaded from a file (``--plugins x.py``) may import permbench modules absolutely.
    if not _followed(module):
        for name in _imports(own, module):
            if _followed(name):
                files.update(module_files(name))
    return tuple(sorted(files))


@functools.lru_cache(maxsize=1)
def harness_files() -> tuple[Path, ...]:
    return tuple(sorted(p for p in (_origin(m) for m in HARNESS_MODULES) if p is not None))


def hash_files(files, own=()) -> str:
    """Of the files' repository-relative names (the same in every clone) and contents: the bytes of
    ``own`` files, the syntax tree of the others."""
    own = set(own)
    digest = hashlib.sha256()
    for name, path in zip(display(files), sorted(files)):
        digest.update(name.encode() + b"\0" + (Path(path).read_bytes() if path in own else _syntax(path)) + b"\0")
    return digest.hexdigest()[:16]


def _syntax(path: Path) -> bytes:
    stat = Path(path).stat()
    return _syntax_of(Path(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _syntax_of(path: Path, _mtime_ns: int, _size: int) -> bytes:
    return ast.dump(ast.parse(path.read_text(), str(path))).encode()


def display(files) -> list[str]:
    """File names relative to the repository (or absolute for files outside it)."""
    root = Path(__file__).resolve().parents[1]
    return [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in sorted(files)]
