"""``grid``: the unit square, k×k vertices (k = round(√n)), each square split by one diagonal.

``jitter`` moves interior vertices by a seeded uniform offset of up to ``jitter`` × the spacing
in x and y; below 1/6 every triangle keeps its orientation (the doubled area of a right triangle
with legs h changes by at most 6·h·δ for offsets δ), so the mesh stays a valid triangulation.
"""

from __future__ import annotations

import numpy as np

from ..core.specs import SpecError
from . import register
from .meshes import MeshDataset

MAX_JITTER = 1.0 / 6.0


def grid_faces(rows: int, cols: int, wrap_rows: bool = False, wrap_cols: bool = False) -> np.ndarray:
    """Triangles of a rows×cols vertex lattice (vertex id = i·cols + j), one diagonal per cell.

    With ``wrap_*`` the last row/column connects back to the first (a cylinder or torus).
    """
    ids = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    if wrap_rows:
        ids = np.vstack([ids, ids[:1]])
    if wrap_cols:
        ids = np.hstack([ids, ids[:, :1]])
    a, b = ids[:-1, :-1].ravel(), ids[1:, :-1].ravel()
    c, d = ids[1:, 1:].ravel(), ids[:-1, 1:].ravel()
    # Interleave the two triangles of each cell so neighbouring faces stay close in memory.
    return np.stack([np.stack([a, b, c], 1), np.stack([a, c, d], 1)], 1).reshape(-1, 3)


@register
class Grid(MeshDataset):
    name = "grid"
    version = "1"
    description = "unit-square triangulated grid, k = round(sqrt(n)) vertices per side"
    params = {**MeshDataset.params, "n": 10_000, "jitter": 0.0, "seed": 0}
    min_n = 4

    def validate(self):
        super().validate()
        if not 0.0 <= self.p["jitter"] < MAX_JITTER:
            raise SpecError(f"grid: jitter={self.p['jitter']} is out of range (0 <= jitter < 1/6 of the spacing)")

    def side(self) -> int:
        return max(2, round(self.p["n"] ** 0.5))

    def mesh(self):
        k = self.side()
        x = np.linspace(0.0, 1.0, k)
        X, Y = np.meshgrid(x, x, indexing="ij")
        V = np.stack([X.ravel(), Y.ravel()], axis=1)
        if self.p["jitter"]:
            rng = np.random.default_rng(self.p["seed"])
            offsets = rng.uniform(-1.0, 1.0, size=V.shape) * (self.p["jitter"] / (k - 1))
            interior = ((X > 0) & (X < 1) & (Y > 0) & (Y < 1)).ravel()
            V[interior] += offsets[interior]
        return V, grid_faces(k, k)

    def mesh_meta(self):
        return {"requested_n": self.p["n"], "grid_side": self.side()}
