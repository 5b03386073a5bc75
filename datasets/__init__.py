"""Datasets: generators, file readers and fetchers, each a plug-in that loads to a MatrixCase.

Names follow the one grammar (``grid[n=1000000]``, ``delaunay[n=50000,seed=3]``,
``file:path.obj[matrix=graph]``). Mesh datasets share the parameters of :class:`MeshDataset`:
``matrix`` (which matrix is built from the mesh) and ``upsample`` (subdivision steps).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..core.case import MatrixCase, prepare_matrix
from ..core.plugins import Plugin, Registry

#: Every module of this folder not named ``_*`` is imported on first lookup (core/plugins.py);
#: the helpers (builders, fetch, meshes, readers, sets) register nothing.
registry = Registry("dataset", __name__)
register = registry.register


class DatasetBase(Plugin):
    #: "generator" (built-in, offline), "file", "suitesparse", "mesh-corpus"
    source: ClassVar[str] = "generator"

    def load(self) -> MatrixCase:
        raise NotImplementedError


def create(spec) -> DatasetBase:
    return registry.create(spec)


def load(spec) -> MatrixCase:
    """Load a dataset by name (``grid[n=10000]``) into a checked MatrixCase."""
    dataset = create(spec)
    case = dataset.load()
    case.name = dataset.spec.canonical()
    return case


def matrix_case(name: str, A, source: str, coords=None, faces=None, meta=None, symmetrize: str = "none") -> MatrixCase:
    """Wrap a matrix read or built from ``source`` after checking it (see prepare_matrix)."""
    A, notes = prepare_matrix(A, source, symmetrize)
    meta = dict(meta or {})
    meta.update(notes)
    meta.setdefault("source", source)
    return MatrixCase(name=name, A=A, coords=None if coords is None else np.asarray(coords, dtype=np.float64),
                      faces=faces, meta=meta)
