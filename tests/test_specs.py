from pathlib import Path

import pytest

from permbench import orderings
from permbench.core.plugins import Plugin
from permbench.core.specs import Spec, SpecError, parse_spec, parse_specs

ROOT = Path(__file__).resolve().parents[1]


def test_parse_name_params_and_target():
    s = parse_spec("patch[patch_size=256, patcher=bfs]")
    assert s == Spec("patch", {"patch_size": "256", "patcher": "bfs"})
    assert s.canonical() == "patch[patch_size=256,patcher=bfs]"
    f = parse_spec("file:/data/bunny.obj[upsample=2]")
    assert (f.name, f.target, f.params) == ("file", "/data/bunny.obj", {"upsample": "2"})
    assert parse_spec("ss:HB/bcsstk14").target == "HB/bcsstk14"


def test_values_stay_text_until_a_plugin_coerces_them():
    s = parse_spec("x[a=1e6,b=0.5,c=true,d=abc,e=3,f=off, g = no ]")
    assert s.params == {"a": "1e6", "b": "0.5", "c": "true", "d": "abc", "e": "3", "f": "off", "g": "no"}


def test_grid_expands_cartesian_product():
    specs = parse_specs("patch[patch_size=256|512,local=amd|identity]")
    assert len(specs) == 4
    assert {s.canonical() for s in specs} == {
        f"patch[local={loc},patch_size={p}]" for p in (256, 512) for loc in ("amd", "identity")}


@pytest.mark.parametrize("bad", ["", "grid[n=1", "grid]", "grid[n]", "grid[n=1,n=2]", "9grid", "grid[=3]"])
def test_malformed_names_raise_clear_errors(bad):
    with pytest.raises(SpecError):
        parse_specs(bad)


def test_parse_spec_rejects_grid():
    with pytest.raises(SpecError, match="expands to 2"):
        parse_spec("metis[seed=1|2]")


class _Demo(Plugin):
    name = "demo"
    params = {"size": 512, "mode": "a", "flag": False, "tol": 0.5}
    choices = {"mode": ("a", "b")}


def test_plugin_params_defaults_coercion_and_choices():
    p = _Demo(size="256", tol=1)
    assert p.p == {"size": 256, "mode": "a", "flag": False, "tol": 1.0}
    assert p.spec.canonical() == "demo[size=256,tol=1.0]"  # only non-defaults are named
    assert _Demo().spec.canonical() == "demo"
    with pytest.raises(SpecError, match="unknown parameter"):
        _Demo(colour=3)
    with pytest.raises(SpecError, match="not one of"):
        _Demo(mode="c")
    with pytest.raises(SpecError, match="demo: size='big' is not an integer"):
        _Demo(size="big")
    with pytest.raises(SpecError, match="demo: size='2.5' is not an integer"):
        _Demo(size="2.5")


@pytest.mark.parametrize("text, expected", [
    ("demo[size=1e3]", {"size": 1000}), ("demo[tol=1]", {"tol": 1.0}), ("demo[mode=b]", {"mode": "b"}),
    ("demo[flag=true]", {"flag": True}), ("demo[flag=yes]", {"flag": True}), ("demo[flag=ON]", {"flag": True}),
    ("demo[flag=false]", {"flag": False}), ("demo[flag=no]", {"flag": False}), ("demo[flag=off]", {"flag": False}),
])
def test_spec_text_is_coerced_by_the_declared_parameter(text, expected):
    spec = parse_spec(text)
    p = _Demo(target=spec.target, **spec.params)
    assert {k: p.p[k] for k in expected} == expected
    assert all(type(p.p[k]) is type(_Demo.params[k]) for k in expected)


def test_a_bad_boolean_names_the_parameter_and_the_words_it_takes():
    with pytest.raises(SpecError, match=r"demo: flag='maybe' is not a boolean \(true/yes/on or false/no/off\)"):
        _Demo(**parse_spec("demo[flag=maybe]").params)


def test_canonical_names_of_committed_results_do_not_change():
    """Cell ids hash the plug-ins' canonical names: every name stored in the committed result files
    must come back unchanged from its plug-in, now that spec values stay text until it coerces them."""
    import pyarrow.parquet as pq

    from permbench import datasets
    from permbench.harness import backends

    registries = {"dataset": datasets.registry, "ordering": orderings.registry, "backend": backends.registry}
    files = sorted((ROOT / "results").rglob("*.parquet"))
    assert files, "the repository's committed results are missing"
    names = {kind: set() for kind in registries}
    for path in files:
        columns = [kind for kind in registries if kind in pq.read_schema(path).names]
        frame = pq.read_table(path, columns=columns).to_pandas()
        for kind in columns:
            names[kind].update(frame[kind].dropna().unique())
    assert "cudss[k=10,mt=false,reorder=nd]" in names["backend"] and "patch" in names["ordering"]
    for kind, registry in registries.items():
        changed = {n: registry.create(n).spec.canonical() for n in names[kind]}
        assert {n: c for n, c in changed.items() if c != n} == {}
    # Other spellings of the same values keep their former canonical form.
    assert backends.registry.create("cudss[mt=no,k=1e1,tree=off]").spec.canonical() == "cudss[k=10,mt=false,tree=off]"
    assert datasets.registry.create("grid[n=4e4]").spec.canonical() == "grid[n=40000]"
    assert orderings.registry.create("patch[band=1]").spec.canonical() == "patch"  # 1 is the default 1.0


# -- the plug-in registries (lost with the spec-coercion change, restored) ------------------------

def test_unknown_registry_name_lists_valid_ones():
    with pytest.raises(SpecError) as err:
        orderings.create("nosuch")
    assert "unknown ordering 'nosuch'" in str(err.value)
    assert "amd" in str(err.value) and "metis" in str(err.value)


def test_registry_registers_every_public_module_of_its_package(tmp_path, monkeypatch):
    """A new file in a plug-in folder registers by existing; ``_*`` helpers are not imported."""
    pkg = tmp_path / "scanned_plugins"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from permbench.core.plugins import Plugin, Registry\n"
        "registry = Registry('thing', __name__)\n"
        "register = registry.register\n")
    plugin = "from . import Plugin, register\n@register\nclass P(Plugin):\n    name = {!r}\n"
    (pkg / "alpha.py").write_text(plugin.format("alpha"))
    (pkg / "sub" / "__init__.py").write_text(plugin.format("sub").replace("from . ", "from .. "))
    (pkg / "helper.py").write_text("X = 1\n")  # registers nothing
    (pkg / "_private.py").write_text("raise RuntimeError('a _ helper must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import scanned_plugins

    try:
        assert scanned_plugins.registry.modules() == ["alpha", "helper", "sub"]
        assert scanned_plugins.registry.names() == ["alpha", "sub"]
    finally:
        import sys
        for name in [m for m in sys.modules if m.split(".")[0] == "scanned_plugins"]:
            del sys.modules[name]


def test_shipped_plugin_folders_register_their_files():
    from permbench import datasets
    from permbench.harness import backends

    assert set(orderings.registry.modules()) >= {"amd", "metis", "patch", "scotch"}
    assert "_cholmod" not in orderings.registry.modules()
    assert {"amd", "cholmod-amd", "metis", "natural", "native", "patch", "rcm", "scotch"} <= set(orderings.registry.names())
    assert {"grid", "file", "ss", "mesh"} <= set(datasets.registry.names())
    assert set(backends.registry.names()) >= {"cholmod", "pardiso", "symbolic", "cudss"}
