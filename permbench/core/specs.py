"""One grammar names every dataset, ordering and back-end: ``NAME[key=value,...]``.

Examples: ``grid[n=1000000]``, ``patch[patch_size=256]``, ``cholmod[k=10]``, ``file:mesh.obj``,
``ss:HB/bcsstk14``, ``mesh:ogre[upsample=3]``. A ``prefix:target`` name keeps the part after the
colon as the spec's ``target``. A value written ``a|b|c`` expands into one spec per value (a grid).
Values stay the text they were written as: the plug-in that takes them coerces each to the type of
its parameter's default (``Plugin`` in core/plugins.py), so ``tree=off`` stays the word ``off``
where ``tree`` is a choice and becomes false where a parameter is a boolean.
The canonical text (sorted keys) is what result rows store and what cell ids hash: the plug-in's
(``Plugin.spec``), from the coerced values.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

_PREFIX = re.compile(r"^([a-z][a-z0-9_-]*):(.+)$")


class SpecError(ValueError):
    """A name that does not parse, or a parameter a plug-in does not have."""


@dataclass(frozen=True)
class Spec:
    name: str
    params: dict = field(default_factory=dict)
    target: str | None = None

    def canonical(self) -> str:
        head = f"{self.name}:{self.target}" if self.target is not None else self.name
        if not self.params:
            return head
        body = ",".join(f"{k}={format_value(v)}" for k, v in sorted(self.params.items()))
        return f"{head}[{body}]"

    def __str__(self) -> str:
        return self.canonical()

    def __hash__(self) -> int:
        return hash(self.canonical())


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return str(value)


def read_formatted_value(text: str):
    """The value ``format_value`` wrote, typed again: ``true``/``false`` a boolean, a number an int
    or float, anything else the text (for stored canonical names, where no plug-in is at hand to
    coerce it; a plug-in coerces spec text itself, ``core/plugins.py``)."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _split_params(body: str, text: str) -> list[tuple[str, list]]:
    items = []
    for part in filter(None, (p.strip() for p in body.split(","))):
        if "=" not in part:
            raise SpecError(f"{text!r}: parameter {part!r} is not of the form key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        if not key:
            raise SpecError(f"{text!r}: empty parameter name in {part!r}")
        items.append((key, [v.strip() for v in value.split("|")]))
    return items


def parse_specs(text: str) -> list[Spec]:
    """Parse one name; a ``|`` in a value expands it into several specs (cartesian product)."""
    text = text.strip()
    if not text:
        raise SpecError("empty name")
    body = ""
    head = text
    if text.endswith("]"):
        open_at = text.rfind("[")
        if open_at <= 0:
            raise SpecError(f"{text!r}: unbalanced brackets (expected NAME[key=value,...])")
        head, body = text[:open_at], text[open_at + 1 : -1]
    elif "[" in text or "]" in text:
        raise SpecError(f"{text!r}: unbalanced brackets (expected NAME[key=value,...])")
    target = None
    match = _PREFIX.match(head)
    if match:
        head, target = match.group(1), match.group(2)
    if not re.match(r"^[A-Za-z][A-Za-z0-9_.-]*$", head):
        raise SpecError(f"{text!r}: bad name {head!r} (letters, digits, '_', '-', '.')")
    items = _split_params(body, text)
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise SpecError(f"{text!r}: a parameter is given twice")
    combos = itertools.product(*(values for _, values in items)) if items else [()]
    return [Spec(head, dict(zip(keys, combo)), target) for combo in combos]


def parse_spec(text: str) -> Spec:
    """Parse a name that must denote exactly one spec (no ``|`` grid)."""
    specs = parse_specs(text)
    if len(specs) != 1:
        raise SpecError(f"{text!r} expands to {len(specs)} specs; expected one")
    return specs[0]
