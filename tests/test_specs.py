import pytest

from permbench import orderings
from permbench.core.plugins import Plugin
from permbench.core.specs import Spec, SpecError, parse_spec, parse_specs


def test_parse_name_params_and_target():
    s = parse_spec("patch[patch_size=256, patcher=bfs]")
    assert s == Spec("patch", {"patch_size": 256, "patcher": "bfs"})
    assert s.canonical() == "patch[patch_size=256,patcher=bfs]"
    f = parse_spec("file:/data/bunny.obj[upsample=2]")
    assert (f.name, f.target, f.params) == ("file", "/data/bunny.obj", {"upsample": 2})
    assert parse_spec("ss:HB/bcsstk14").target == "HB/bcsstk14"


def test_values_are_typed():
    s = parse_spec("x[a=1e6,b=0.5,c=true,d=abc,e=3]")
    assert s.params == {"a": 1000000, "b": 0.5, "c": True, "d": "abc", "e": 3}
    assert isinstance(s.params["a"], int)


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
    with pytest.raises(SpecError, match="not a valid int"):
        _Demo(size="big")


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
