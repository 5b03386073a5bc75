"""``icosphere``: a subdivided icosahedron on the unit sphere (trimesh).

Level L has 10·4^L + 2 vertices, so ``n`` is rounded to the nearest level: n=10000 gives level 5
(10 242 vertices), n=10⁶ gives level 8 (655 362 vertices; level 9 has 2 621 442).
"""

from __future__ import annotations

import numpy as np

from . import register
from .meshes import MeshDataset


def icosphere_level(n: int) -> int:
    """The subdivision level whose vertex count 10·4^L + 2 is nearest to n (ties go down)."""
    counts = [10 * 4**level + 2 for level in range(16)]
    return int(np.argmin([abs(c - n) for c in counts]))


@register
class Icosphere(MeshDataset):
    name = "icosphere"
    version = "1"
    description = "subdivided icosahedron on the unit sphere; n rounds to 10*4^L+2 vertices"
    params = {**MeshDataset.params, "n": 10_000}
    min_n = 12

    def library_versions(self):
        import importlib.metadata

        return {**super().library_versions(), "trimesh": importlib.metadata.version("trimesh")}

    def mesh(self):
        import trimesh.creation

        sphere = trimesh.creation.icosphere(subdivisions=icosphere_level(self.p["n"]), radius=1.0)
        return np.asarray(sphere.vertices, dtype=np.float64), np.asarray(sphere.faces, dtype=np.int64)

    def mesh_meta(self):
        return {"requested_n": self.p["n"], "icosphere_level": icosphere_level(self.p["n"])}
