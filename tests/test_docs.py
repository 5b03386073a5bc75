"""Comments point inside the repository: no code cites the design notes that live outside it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("permbench", "harness", "orderings", "datasets", "benchmarks", "scripts", "tests")
OUTSIDE = re.compile(r"DESIGN \u00a7|DESIGN\.md")  # a section sign after the word, or the notes' file name


def test_no_python_file_cites_the_design_notes():
    files = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")]
    assert len(files) > 50
    cited = [f"{p.relative_to(ROOT)}:{i}" for p in files
             for i, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert cited == []


def test_the_architecture_page_names_files_that_exist():
    page = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:permbench|harness|orderings|datasets|tests)/[\w/]+\.py)`", page))
    assert len(named) > 15
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []


def test_every_script_named_anywhere_exists():
    """A removed script (the studies became `permbench study ...` and asv modules) is named nowhere."""
    texts = [ROOT / "README.md", ROOT / "DEVELOPERS.md", ROOT / "Makefile", *(ROOT / "docs").rglob("*.md"),
             *(ROOT / "results").rglob("*.md"), *(ROOT / "configs").glob("*.toml"), *(ROOT / "scripts").glob("*.sh"),
             *(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))]
    named = {(m, p.relative_to(ROOT)) for p in texts for m in re.findall(r"scripts/[\w.-]+\.(?:py|sh)", p.read_text())}
    assert len(named) > 5
    assert sorted((m, str(p)) for m, p in named if not (ROOT / m).is_file()) == []
