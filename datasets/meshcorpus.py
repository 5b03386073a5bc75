"""``mesh:<name>``: a public mesh from the catalogue, fetched, verified, cleaned and turned into a matrix.

The catalogue is ``catalog.toml`` beside this module (33 scanned and modelled meshes pinned to a
commit of alecjacobson/common-3d-test-models, odedstein/meshes, libigl's data repositories, ...;
see its header for what each checksum means), plus the files named by ``PERMBENCH_MESH_CATALOG``
(``os.pathsep``-separated) or ``mesh_catalogs`` in the config, whose entries win over the built-in
ones of the same name. An entry::

    [meshes.NAME]
    source = "github"          # a base URL setting (see fetch); the URL is source/repo/commit/path
    repo = "owner/name"        # optional
    commit = "<40 hex>"        # optional
    path = "data/ogre.obj"     # .obj .off .ply .stl, or a .zip holding `member`
    sha256 = "<hex>"           # of the upstream file; and/or
    git_blob_sha1 = "<hex>"    # its git blob id; at least one checksum is required
    member = "horse.ply"       # for a .zip
    vertices = 62194           # optional: vertex records and face records in the file, checked after reading
    faces = 124008
    licence = "..."

Where the file comes from (see :mod:`.fetch`): a local mirror's ``meshes/<name>.<ext>`` when its
manifest lists it (checked against the manifest's sha256; the mirror may hold a converted copy,
e.g. OBJ for an upstream OFF), else the cache, else the network (checked against the catalogue's
checksums, then read: a file that does not read as a mesh, or whose counts differ from the
catalogue's, is discarded). A name only the mirror lists is accepted too.

Reading and cleaning are :func:`.readers.read_mesh`'s: polygons are fan-triangulated (counted in
``polygon_fan_triangles_added``), degenerate and duplicate faces and unreferenced vertices are
removed (counted), a non-finite coordinate is an error naming the vertex. Then :class:`MeshDataset`
builds the matrix (``matrix``, ``mass``) and subdivides on request (``upsample=k``: 4× faces per
step; recorded as ``derived``).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..core.case import InputError
from ..core.specs import SpecError
from . import fetch, register
from .meshes import MeshDataset
from .readers import MESH_SUFFIXES, read_mesh

CATALOG = Path(__file__).with_name("catalog.toml")
_KEYS = {"source", "repo", "commit", "path", "sha256", "git_blob_sha1", "member", "vertices", "faces",
         "licence", "mirror_conversion"}
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    path: str
    source: str = "github"
    repo: str | None = None
    commit: str | None = None
    sha256: str | None = None
    git_blob_sha1: str | None = None
    member: str | None = None
    vertices: int | None = None
    faces: int | None = None
    licence: str = ""
    mirror_conversion: str | None = None
    catalog: str = ""

    @property
    def url(self) -> str:
        return fetch.source_url(self.source, self.repo or "", self.commit or "", self.path)

    @property
    def relpath(self) -> str:
        return f"meshes/{self.name}/{Path(self.path).name}"

    def fields(self) -> dict:
        """The columns a ``--filter`` expression can use."""
        return {"name": self.name, "n": self.vertices, "vertices": self.vertices, "faces": self.faces,
                "repo": self.repo or "", "source": self.source, "licence": self.licence,
                "verbatim_in_mirror": self.mirror_conversion is None}


def read_catalog(path) -> dict[str, CatalogEntry]:
    """The ``[meshes.NAME]`` entries of a catalogue file; a malformed entry is an error naming it."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: mesh catalogue not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a valid TOML mesh catalogue ({err})") from None
    entries = {}
    for name, raw in data.get("meshes", {}).items():
        where = f"{path}: [meshes.{name}]"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: expected a table of keys")
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
        if "path" not in raw:
            raise InputError(f"{where}: needs 'path'")
        if not (raw.get("sha256") or raw.get("git_blob_sha1")):
            raise InputError(f"{where}: needs a checksum, 'sha256' or 'git_blob_sha1'")
        for key, length in (("sha256", 64), ("git_blob_sha1", 40)):
            if key in raw and not (len(raw[key]) == length and _HEX.fullmatch(raw[key])):
                raise InputError(f"{where}: {key} must be {length} lowercase hex digits")
        suffix = Path(raw["path"]).suffix.lower()
        if suffix == ".zip" and not raw.get("member"):
            raise InputError(f"{where}: a .zip needs 'member', the mesh file inside it")
        if suffix != ".zip" and suffix not in MESH_SUFFIXES:
            raise InputError(f"{where}: path {raw['path']!r} is not a mesh file ({', '.join(MESH_SUFFIXES)}) or .zip")
        if not re.fullmatch(r"[a-z0-9_]+", raw.get("source", "github")):
            raise InputError(f"{where}: source must be a name of [a-z0-9_] (a base URL setting)")
        entries[name] = CatalogEntry(name=name, catalog=str(path), **raw)
    return entries


def catalog() -> dict[str, CatalogEntry]:
    """The built-in catalogue, then the configured extra catalogues (later entries win)."""
    entries = read_catalog(CATALOG)
    for extra in fetch.settings().mesh_catalogs:
        entries.update(read_catalog(extra))
    return entries


def names() -> list[str]:
    """Every name ``mesh:`` accepts: the catalogue's and the mirror's."""
    found = set(catalog())
    mirror = fetch.mirror()
    if mirror is not None:
        found |= {Path(e["file"]).stem for e in mirror.manifest.get("meshes", [])}
    return sorted(found)


# --------------------------------------------------------------------------------------- files


def _mesh_in(downloaded: Path, entry: CatalogEntry, into: Path) -> Path:
    """The mesh file itself, or the catalogue's member extracted from a zip into ``into``."""
    if not entry.member:
        return downloaded
    target = into / Path(entry.member).name
    if target.is_file():
        return target
    try:
        with zipfile.ZipFile(downloaded) as archive:
            if entry.member not in archive.namelist():
                raise InputError(f"{downloaded}: no {entry.member!r} in the zip (members: {', '.join(archive.namelist())})")
            into.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
            tmp.write_bytes(archive.read(entry.member))
            tmp.replace(target)
    except zipfile.BadZipFile as err:
        raise InputError(f"{downloaded}: not a readable zip archive ({err})") from None
    return target


def read_checked(path: Path, label: str, vertices: int | None, faces: int | None):
    """read_mesh, then the file's vertex and face records compared with the expected counts."""
    V, F, counts = read_mesh(path)
    found_v = len(V) + counts["unreferenced_vertices_removed"]
    found_f = (len(F) + counts["degenerate_faces_removed"] + counts["duplicate_faces_removed"]
               - counts["polygon_fan_triangles_added"])
    if vertices is not None and (found_v, found_f) != (vertices, faces if faces is not None else found_f):
        raise InputError(f"{label}: {path.name} has {found_v:,} vertices and {found_f:,} faces; "
                         f"the catalogue says {vertices:,} and {faces if faces is not None else '?'}")
    return V, F, counts


def fetch_mesh(name: str, *, force: bool = False, progress=None) -> Path:
    """The verified catalogue file of mesh ``name`` in the cache, downloading and checking it if needed."""
    label = f"mesh:{name}"
    entry = catalog_entry(name)

    def check(path: Path, digest: str) -> None:
        if entry.git_blob_sha1 and (blob := fetch.git_blob_sha1(path)) != entry.git_blob_sha1:
            raise fetch.ChecksumError(f"{label}: checksum mismatch for {entry.url}: the download has git blob id "
                                      f"{blob}, expected {entry.git_blob_sha1}; it was discarded")
        read_checked(_mesh_in(path, entry, path.parent / "member"), label, entry.vertices, entry.faces)

    return fetch.fetch(entry.url, entry.relpath, name=label, sha256=entry.sha256, check=check, force=force,
                       progress=progress)


def catalog_entry(name: str) -> CatalogEntry:
    entries = catalog()
    if name not in entries:
        raise InputError(f"mesh:{name}: not in the mesh catalogue ({', '.join(sorted(entries))})")
    return entries[name]


def mesh_file(name: str) -> tuple[Path, dict, tuple[int | None, int | None]]:
    """(mesh file to read, meta, expected (vertices, faces)) for ``mesh:name``: mirror, cache or network."""
    entries = catalog()
    entry = entries.get(name)
    mirror = fetch.mirror()
    mirror_entry = mirror.mesh_entry(name) if mirror is not None else None
    meta = {"mesh_name": name}
    if entry is not None:
        meta.update(mesh_source_url=entry.url, licence=entry.licence)
    if mirror_entry is not None:
        path, digest = mirror.verified_path(mirror_entry)
        meta.update(served_from=f"mirror:{mirror.root}", file=str(path), file_sha256=digest)
        expected = (mirror_entry.get("V"), mirror_entry.get("F"))
        return path, meta, expected
    downloaded = fetch_mesh(name)
    digest = fetch.read_registry()[entry.relpath]["sha256"]
    path = _mesh_in(downloaded, entry, downloaded.parent / f"member-{digest[:16]}")
    meta.update(served_from="cache", file=str(downloaded), file_sha256=digest)
    return path, meta, (entry.vertices, entry.faces)


# -------------------------------------------------------------------------------------- plug-in


@register
class MeshCorpus(MeshDataset):
    name = "mesh"
    version = "1"
    description = "a public mesh by name, mesh:<name> (catalogue or local mirror; fetched, verified, cached)"
    source = "mesh-corpus"
    takes_target = True

    def validate(self):
        super().validate()
        try:
            known = names()
        except InputError as err:  # a broken catalogue or mirror setting: a configuration error
            raise SpecError(str(err)) from None
        if self.target not in known:
            raise SpecError(f"mesh:{self.target}: unknown mesh; known: {', '.join(known)}")

    def source_label(self) -> str:
        return f"mesh:{self.target}"

    def library_versions(self):
        return {**super().library_versions(),
                **{lib: importlib.metadata.version(lib) for lib in ("trimesh", "meshio")}}

    def mesh(self):
        V, F, _ = self.mesh_and_meta()
        return V, F

    def mesh_and_meta(self):
        path, meta, (vertices, faces) = mesh_file(self.target)
        V, F, counts = read_checked(path, self.source_label(), vertices, faces)
        return V, F, {**counts, **meta}
