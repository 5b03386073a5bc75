"""``torus``: a parametric (u, v) grid wrapped in both directions, radii R = 1 and r = 0.35.

2k×k vertices (aspect 2:1, k = round(√(n/2)), the long direction around the big circle), each
quad split by one diagonal, so n is rounded to 2k².
"""

from __future__ import annotations

import numpy as np

from . import register
from .grid import grid_faces
from .meshes import MeshDataset

MAJOR_RADIUS = 1.0
MINOR_RADIUS = 0.35


@register
class Torus(MeshDataset):
    name = "torus"
    version = "1"
    description = "torus (R=1, r=0.35), 2k x k parametric grid, n rounds to 2k^2 vertices"
    params = {**MeshDataset.params, "n": 10_000}
    min_n = 18  # k = 3: the smallest wrap without repeated edges

    def sides(self) -> tuple[int, int]:
        k = max(3, round((self.p["n"] / 2) ** 0.5))
        return 2 * k, k

    def mesh(self):
        n_u, n_v = self.sides()
        u = 2 * np.pi * np.arange(n_u) / n_u
        v = 2 * np.pi * np.arange(n_v) / n_v
        U, W = np.meshgrid(u, v, indexing="ij")
        ring = MAJOR_RADIUS + MINOR_RADIUS * np.cos(W)
        V = np.stack([ring * np.cos(U), ring * np.sin(U), MINOR_RADIUS * np.sin(W)], axis=-1).reshape(-1, 3)
        return V, grid_faces(n_u, n_v, wrap_rows=True, wrap_cols=True)

    def mesh_meta(self):
        n_u, n_v = self.sides()
        return {"requested_n": self.p["n"], "torus_u": n_u, "torus_v": n_v}
