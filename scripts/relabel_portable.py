"""Relabel stored result rows named by a machine path to the catalogue's portable name.

    .venv/bin/python scripts/relabel_portable.py results/gpu/cudss-h200.parquet results/pardiso/pardiso-vs-cholmod.parquet

A ``file:`` dataset named by an absolute path or one under a hidden or temporary folder becomes
``mesh:NAME[…]`` when its file's sha256 (recorded in the row) is the catalogue's for NAME; nothing
else in the file changes, and its provenance records the mapping (harness/portable.py).
"""

import sys

from permbench.harness.portable import relabel_file

NOTE = ("dataset renamed from a machine path to the catalogue mesh with the same sha256 and the same "
        "parameters; every other value (cell_id, dataset_meta.source, measurements) is as measured")

for path in sys.argv[1:]:
    mapping = relabel_file(path, NOTE)
    for old, new in mapping.items():
        print(f"{path}: {old} -> {new}")
    if not mapping:
        print(f"{path}: nothing to relabel")
