"""Plug-ins and their registries, shared by orderings, back-ends and datasets.

A plug-in is one small class in one file (benchopt's lesson): it declares its ``name``, a
``version`` that changes whenever its results would, its parameters with defaults (``params``) and,
optionally, the allowed values (``choices``), and the modules it needs (``requires``).
A spec's values arrive as text (core/specs.py); each becomes the type of its parameter's default
here (``coerce``), then is checked against ``choices``. Whether it
can run is data, ``available() -> (ok, reason)``, never an exception, so an unavailable plug-in
shows up in the results with its reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import ClassVar

from .specs import Spec, SpecError, parse_spec


class Plugin:
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    params: ClassVar[dict] = {}
    choices: ClassVar[dict] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    takes_target: ClassVar[bool] = False  # `prefix:target` names (file:PATH, ss:Group/Name)

    def __init__(self, target: str | None = None, **params):
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            known = ", ".join(f"{k}={v}" for k, v in self.params.items()) or "none"
            raise SpecError(f"{self.name}: unknown parameter(s) {', '.join(unknown)} (known: {known})")
        if self.takes_target and not target:
            raise SpecError(f"{self.name}: needs a target, as in {self.name}:TARGET")
        if target and not self.takes_target:
            raise SpecError(f"{self.name} takes no ':target' part (got {target!r})")
        self.target = target
        self.p = {}
        for key, default in self.params.items():
            value = params.get(key, default)
            if value is not None and default is not None and not isinstance(value, type(default)):
                value = coerce(self.name, key, value, default)
            allowed = self.choices.get(key)
            if allowed is not None and value not in allowed:
                raise SpecError(f"{self.name}: {key}={value!r} is not one of {', '.join(map(str, allowed))}")
            self.p[key] = value

    @property
    def spec(self) -> Spec:
        """Canonical spec: only the parameters that differ from their defaults are named."""
        changed = {k: v for k, v in self.p.items() if v != self.params[k]}
        return Spec(self.name, changed, self.target)

    #: Optional: a function that imports the plug-in's library and raises ImportError with a
    #: message naming what to install (homapy, scotchpy): used instead of the generic
    #: ``requires`` check, whose "module not installed" says less.
    importer: ClassVar = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if cls.importer is not None:
            try:
                cls.importer()
            except ImportError as err:
                return False, str(err)
            return cls.check()
        for module in cls.requires:
            if importlib.util.find_spec(module) is None:
                return False, f"needs the Python module {module!r} (not installed)"
        return cls.check()

    @classmethod
    def check(cls) -> tuple[bool, str]:
        """Extra availability check beyond imports (a GPU, a shared library); override."""
        return True, ""

    def library_versions(self) -> dict:
        """Versions of the libraries that shape this plug-in's results (go into cell ids)."""
        return {}


#: How a boolean parameter may be written in a spec (any case).
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on"), ("false", "no", "off")


def coerce(plugin: str, key: str, value, default):
    """``value`` (a spec's text, or a Python value) as the type of the parameter's ``default``.

    Booleans: true/yes/on, false/no/off. Integers: ``3``, ``1e6`` (an integral float), never a
    fraction. Floats: any number. Raises SpecError naming the parameter and what it accepts.
    """
    kind = type(default)
    try:
        if kind is bool:
            word = value.strip().lower() if isinstance(value, str) else None
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError
        if kind is int and isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        if kind is int and not isinstance(value, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        accepted = {bool: f"a boolean ({'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)})",
                    int: "an integer", float: "a number"}.get(kind, f"a {kind.__name__}")
        raise SpecError(f"{plugin}: {key}={value!r} is not {accepted}") from None


class Registry:
    """Name -> plug-in class, filled by the ``register`` decorator as plug-in modules import.

    The plug-ins are found by scanning the package: the first lookup imports every module (or
    subpackage) in its folder whose name does not start with ``_``, so a new file registers by
    existing. Helper modules that register nothing (``datasets/fetch.py``) are imported too and
    cost nothing more, since the plug-ins import them anyway; a helper only plug-ins use may be
    named ``_x.py`` (``orderings/_cholmod.py``) to be skipped. Plug-ins outside the package come
    in through ``--plugins`` / ``$PERMBENCH_PLUGINS`` (``harness/runner.py``, ``load_plugins``).
    """

    def __init__(self, kind: str, package: str):
        self.kind = kind
        self._package = package
        self._classes: dict[str, type[Plugin]] = {}
        self._loaded = False

    def register(self, cls):
        if not cls.name:
            raise TypeError(f"{cls.__qualname__} has no name")
        if cls.name in self._classes and self._classes[cls.name] is not cls:
            raise ValueError(f"{self.kind} {cls.name!r} registered twice")
        self._classes[cls.name] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Remove an entry (tests register throw-away plug-ins)."""
        self._classes.pop(name, None)

    def _load(self):
        if not self._loaded:
            self._loaded = True  # set first: plug-in modules call register() while importing
            for module in self.modules():
                importlib.import_module(f"{self._package}.{module}")

    def modules(self) -> list[str]:
        """The package's plug-in modules: every module or subpackage not named ``_*``."""
        path = importlib.import_module(self._package).__path__
        return sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))

    def names(self) -> list[str]:
        self._load()
        return sorted(self._classes)

    def get(self, name: str) -> type[Plugin]:
        self._load()
        try:
            return self._classes[name]
        except KeyError:
            raise SpecError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}"
            ) from None

    def create(self, spec: Spec | str) -> Plugin:
        if isinstance(spec, str):
            spec = parse_spec(spec)
        cls = self.get(spec.name)
        return cls(target=spec.target, **spec.params)

    def classes(self) -> list[type[Plugin]]:
        return [self.get(n) for n in self.names()]
