"""The shared base of every dataset that starts from a mesh (generators, mesh files, mesh corpora).

A subclass only produces the mesh, ``mesh() -> (V, F)`` with F triangles (m, 3) or tetrahedra
(m, 4); :meth:`MeshDataset.load` then optionally subdivides it (``upsample``), drops degenerate
elements, builds the matrix (``matrix=cotan|graph``, ``mass=consistent|lumped``, see
:mod:`.builders`) and records what it did in ``meta``.
"""

from __future__ import annotations

import importlib.metadata
from typing import ClassVar

import numpy as np

from ..core.case import InputError, MatrixCase
from ..core.specs import SpecError
from . import DatasetBase, matrix_case
from .builders import build_matrix, degenerate_elements, element_kind

#: Each step multiplies the faces by 4: 6 steps turn a 10k-face mesh into 41 M faces.
MAX_UPSAMPLE = 6
#: Graph indices are int32 downstream (core/case.py, symmetric_graph).
MAX_VERTICES = 2**31 - 1


class MeshDataset(DatasetBase):
    """A dataset whose matrix is built from a triangle or tetrahedral mesh."""

    params = {"matrix": "cotan", "mass": "consistent", "upsample": 0}
    choices = {"matrix": ("cotan", "graph"), "mass": ("consistent", "lumped")}
    #: "tri" or "tet": what ``mesh()`` returns (upsampling applies to triangles only).
    element: ClassVar[str] = "tri"
    #: Smallest accepted ``n`` for generators that take one.
    min_n: ClassVar[int] = 3

    def __init__(self, target: str | None = None, **params):
        super().__init__(target, **params)
        self.validate()

    def validate(self) -> None:
        """Check parameter values beyond their types; raise SpecError naming the problem."""
        steps = self.p["upsample"]
        if not 0 <= steps <= MAX_UPSAMPLE:
            raise SpecError(f"{self.name}: upsample={steps} is out of range (0..{MAX_UPSAMPLE} subdivision steps)")
        if self.p["matrix"] != "cotan" and self.p["mass"] != self.params["mass"]:
            raise SpecError(f"{self.name}: mass={self.p['mass']} applies to matrix=cotan only")
        if steps and self.element != "tri":
            raise SpecError(f"{self.name}: upsample applies to triangle meshes only ({self.name} has tetrahedra)")
        if "n" in self.p:
            n = self.p["n"]
            if not self.min_n <= n <= MAX_VERTICES:
                raise SpecError(f"{self.name}: n={n} is out of range (expected {self.min_n} <= n <= {MAX_VERTICES})")

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """(V, F): vertex coordinates (n, 2|3) and elements (m, 3|4), 0-based."""
        raise NotImplementedError

    def mesh_meta(self) -> dict:
        """What the generator wants recorded (derived sizes such as the grid side); override."""
        return {}

    def mesh_and_meta(self) -> tuple[np.ndarray, np.ndarray, dict]:
        """The mesh and its meta in one call; readers override it (cleaning counts come with the read)."""
        V, F = self.mesh()
        return V, F, self.mesh_meta()

    def source_label(self) -> str:
        """How error messages and ``meta['source']`` name where the mesh came from."""
        return self.spec.canonical()

    def library_versions(self) -> dict:
        # Only libraries whose output is the mesh itself: trimesh subdivides.
        return {"trimesh": importlib.metadata.version("trimesh")} if self.p["upsample"] else {}

    def load(self) -> MatrixCase:
        V, F, meta = self.mesh_and_meta()
        meta = dict(meta)
        V, F, mesh_notes = prepare_mesh(V, F, self.p["upsample"], self.source_label())
        meta.update(mesh_notes)
        A, matrix_notes = build_matrix(V, F, self.p["matrix"], self.p["mass"])
        meta.update(matrix_notes)
        return matrix_case(self.spec.canonical(), A, self.source_label(), coords=V, faces=F, meta=meta)


def upsample_mesh(V: np.ndarray, F: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint subdivision, 4× the triangles per step (trimesh), vertices not moved."""
    import trimesh.remesh

    for _ in range(steps):
        V, F = trimesh.remesh.subdivide(V, F)
    return V, F


def prepare_mesh(V, F, upsample: int, source: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Subdivide, drop degenerate elements, and describe the result for ``meta``."""
    V = np.asarray(V, dtype=np.float64)
    F = np.asarray(F, dtype=np.int64)
    kind = element_kind(F)
    if upsample:
        V, F = upsample_mesh(V, F, upsample)
    bad = degenerate_elements(V, F)
    if bad.any():
        # Zero-area elements have no cotangent weights; dropping them keeps cotan and graph
        # matrices on the same edge set.
        F = F[~bad]
    used = np.zeros(len(V), dtype=bool)
    used[F.ravel()] = True
    if len(F) == 0 or not used.all():
        raise InputError(
            f"{source}: {int((~used).sum())} of {len(V)} vertices are in no non-degenerate element "
            f"({int(bad.sum())} degenerate elements dropped); every vertex needs one for an SPD matrix"
        )
    notes = {
        "element": kind,
        "n_vertices": len(V),
        ("n_faces" if kind == "tri" else "n_cells"): len(F),
        "upsample": int(upsample),
        "derived": bool(upsample),
        "degenerate_elements_dropped": int(bad.sum()),
    }
    return V, F, notes
