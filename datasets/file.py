"""``file:PATH``: a mesh (.obj .off .ply .stl) or a Matrix Market matrix (.mtx .mtx.gz .tar.gz).

Mesh files take the mesh parameters (``matrix``, ``mass``, ``upsample``) and load like any mesh
dataset; see :mod:`.readers` for what reading and cleaning do. Matrix files load their values as
they are; mesh parameters make no sense for them and are rejected rather than silently ignored.
A ``pattern`` Matrix Market file has no values: it gets graph Laplacian + I of its pattern
(``meta['values'] = 'graph-laplacian+I'``). The file's size and sha256 are recorded in ``meta``,
since the spec names only the path.
"""

from __future__ import annotations

from pathlib import Path

from ..core.case import SYMMETRIZE, InputError, MatrixCase
from ..core.provenance import sha256_file
from ..core.specs import SpecError
from . import matrix_case, register
from .builders import graph_system_from_pattern
from .meshes import MeshDataset
from .readers import (
    MATRIX_SUFFIXES,
    MESH_SUFFIXES,
    is_matrix_file,
    is_mesh_file,
    read_matrix,
    read_matrix_header,
    read_mesh,
)


def file_digest(path: Path) -> dict:
    return {"file_bytes": path.stat().st_size, "file_sha256": sha256_file(path)}


@register
class File(MeshDataset):
    name = "file"
    version = "1"
    description = "a mesh (.obj .off .ply .stl) or Matrix Market (.mtx .mtx.gz .tar.gz) file"
    source = "file"
    takes_target = True
    # Matrix files only: how to make a non-symmetric matrix symmetric (default: refuse it).
    params = {**MeshDataset.params, "symmetrize": "none"}
    choices = {**MeshDataset.choices, "symmetrize": SYMMETRIZE}

    def validate(self):
        super().validate()
        path = self.path
        if is_matrix_file(path):
            mesh_only = sorted(k for k, v in self.p.items() if v != self.params[k] and k != "symmetrize")
            if mesh_only:
                raise SpecError(f"file:{self.target}: {', '.join(mesh_only)} apply to mesh files only, not to a matrix")
        elif self.p["symmetrize"] != "none":
            raise SpecError(f"file:{self.target}: symmetrize applies to matrix files only, not to a mesh")
        elif not is_mesh_file(path):
            raise SpecError(
                f"file:{self.target}: unknown file type; expected a mesh ({', '.join(MESH_SUFFIXES)}) "
                f"or a Matrix Market file ({', '.join(MATRIX_SUFFIXES)})"
            )

    @property
    def path(self) -> Path:
        return Path(self.target).expanduser()

    def source_label(self) -> str:
        return str(self.path)

    def library_versions(self):
        import importlib.metadata

        readers = ("scipy",) if is_matrix_file(self.path) else ("trimesh", "meshio")
        return {**super().library_versions(), **{name: importlib.metadata.version(name) for name in readers}}

    def mesh(self):
        V, F, _ = read_mesh(self.path)
        return V, F

    def mesh_and_meta(self):
        V, F, cleaning = read_mesh(self.path)
        return V, F, {**cleaning, **file_digest(self.path)}

    def load(self) -> MatrixCase:
        if is_mesh_file(self.path):
            return super().load()
        header = read_matrix_header(self.path)
        A = read_matrix(self.path)
        meta = {"mm_field": header.field, "mm_symmetry": header.symmetry, "mm_format": header.format,
                "values": "file", **file_digest(self.path)}
        if header.field == "pattern":
            if A.shape[0] != A.shape[1]:
                raise InputError(f"{self.path}: matrix is {A.shape[0]}x{A.shape[1]}; a square matrix is required")
            A = graph_system_from_pattern(A)
            meta["values"] = "graph-laplacian+I"
        return matrix_case(self.spec.canonical(), A, str(self.path), meta=meta, symmetrize=self.p["symmetrize"])
