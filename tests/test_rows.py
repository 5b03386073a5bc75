"""Rows with a status are built in one module (harness/rows.py), and only with known statuses."""

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from permbench.harness import rows

ROOT = Path(__file__).resolve().parents[1]


def status_rows_built(source: str) -> list[int]:
    """Lines that build a row with a status by hand: ``dict(..., status=...)``, ``{"status": ...}``
    or ``row["status"] = ...``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict" and \
                any(k.arg == "status" for k in node.keywords):
            lines.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "status" for k in node.keys):
            lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Constant) and sub.slice.value == "status":
                        lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("line", ['dict(row, status="ok")', 'x = {"status": "ok", "reason": ""}',
                                  'row["status"] = "ok"', 'row["status"], row["reason"] = "ok", ""'])
def test_the_scan_sees_a_hand_built_row(line):
    assert status_rows_built(line)


#: Modules that only read stored rows (their tables have a summary ``status`` column of their own).
READERS = {"report.py", "figures.py", "html_report.py", "compare.py", "diff.py"}


def test_only_rows_py_builds_rows_with_a_status():
    files = [p for p in sorted((ROOT / "harness").rglob("*.py")) if p.name != "rows.py" and p.name not in READERS]
    assert len(files) > 15
    found = {str(p.relative_to(ROOT)): status_rows_built(p.read_text()) for p in files}
    assert {k: v for k, v in found.items() if v} == {}


UNIT = SimpleNamespace(keys={"symbolic": {"cell_id": "c1", "backend": "symbolic"}}, fields={"n": 4})


def test_cell_rows_carry_identity_fields_and_status():
    out = rows.cell_rows(UNIT, "symbolic", range(2), "skipped", "why", t_graph_s=0.5)
    assert out == [{"cell_id": "c1", "backend": "symbolic", "repeat": r, "n": 4, "t_graph_s": 0.5,
                    "status": "skipped", "reason": "why"} for r in range(2)]


def test_an_unknown_status_is_refused_by_name():
    with pytest.raises(ValueError, match="'crashed'.*ok, skipped"):
        rows.with_status({}, "crashed", "")


def test_a_failure_row_names_the_step_and_keeps_the_traceback():
    for err, status in ((MemoryError("no room"), "oom"), (RuntimeError("bad"), "error")):
        try:
            raise err
        except Exception as caught:
            row = rows.failed({"repeat": 0}, caught, "back-end cholmod", "backend_extras")
        assert row["status"] == status
        assert row["reason"] == f"back-end cholmod: {type(err).__name__}: {err}"
        assert "Traceback" in row["backend_extras"] and type(err).__name__ in row["backend_extras"]
