"""``tetgrid``: the unit cube, k×k×k vertices (k = round(n^(1/3))), each cube split into 6 tetrahedra.

The Kuhn (Freudenthal) split: every cube's 6 tetrahedra share its main diagonal, one per order
in which the path from corner (0,0,0) to (1,1,1) steps along x, y and z. Every vertex then has
14 neighbours (interior), and all tetrahedra are positively oriented.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import register
from .meshes import MeshDataset


def kuhn_tetrahedra(k: int) -> np.ndarray:
    """The (6·(k−1)³, 4) tetrahedra of a k×k×k lattice (vertex id = (i·k + j)·k + l)."""
    stride = np.array([k * k, k, 1])
    local = []  # per tetrahedron of the unit cube: its 4 corners as offsets from corner (0,0,0)
    for axes in itertools.permutations(range(3)):
        step = np.zeros(3, dtype=np.int64)
        path = [0]
        for axis in axes:
            step[axis] = 1
            path.append(int(step @ stride))
        # Odd permutations of the axes give negatively oriented paths: swap two vertices.
        if sum(a > b for a, b in itertools.combinations(axes, 2)) % 2:
            path[2], path[3] = path[3], path[2]
        local.append(path)
    origin = np.arange(k**3, dtype=np.int64).reshape(k, k, k)[:-1, :-1, :-1].ravel()
    # Cube-major order: the 6 tetrahedra of one cube are adjacent in memory.
    return (origin[:, None, None] + np.array(local, dtype=np.int64)[None]).reshape(-1, 4)


@register
class TetGrid(MeshDataset):
    name = "tetgrid"
    version = "1"
    description = "unit-cube tetrahedral grid (Kuhn split), k = round(n^(1/3)) vertices per side"
    params = {**MeshDataset.params, "n": 10_000}
    element = "tet"
    min_n = 8

    def side(self) -> int:
        return max(2, round(self.p["n"] ** (1.0 / 3.0)))

    def mesh(self):
        k = self.side()
        x = np.linspace(0.0, 1.0, k)
        V = np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1).reshape(-1, 3)
        return V, kuhn_tetrahedra(k)

    def mesh_meta(self):
        return {"requested_n": self.p["n"], "grid_side": self.side()}
