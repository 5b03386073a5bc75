"""``mesh:<name>``: the built-in catalogue (checked against ../shared/data when present), fetching
fixture meshes from a local HTTP server on 127.0.0.1 through an extra catalogue, bad meshes
(checksums, counts, non-triangular faces, NaN coordinates, zips), offline use, the local mirror,
upsampling, and ``permbench run --data-dir --offline`` end to end."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from permbench.datasets import fetch, load, meshcorpus
from permbench.core.case import InputError
from permbench.harness.cli import app
from permbench.core.specs import SpecError
from test_fetch import data_env, leftovers, server, sha256  # noqa: F401  (fixtures)


def grid_obj(k: int) -> str:
    """A k×k vertex grid of the unit square, 2(k−1)² triangles."""
    lines = [f"v {i / (k - 1)} {j / (k - 1)} 0" for j in range(k) for i in range(k)]
    for j in range(k - 1):
        for i in range(k - 1):
            a = j * k + i + 1
            lines += [f"f {a} {a + 1} {a + k + 1}", f"f {a} {a + k + 1} {a + k}"]
    return "\n".join(lines) + "\n"


QUADS_OBJ = "v 0 0 0\nv 1 0 0\nv 2 0 0\nv 0 1 0\nv 1 1 0\nv 2 1 0\nf 1 2 5 4\nf 2 3 6 5\n"
NAN_OBJ = "v 0 0 0\nv nan 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3\nf 1 3 4\n"
PLY = ("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
       "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
       "0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n")


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def zipped(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def corpus(server, data_env, tmp_path, monkeypatch):
    """Fixture meshes on the local server, listed in an extra catalogue (source "testsrv")."""
    files = {
        "grid5.obj": grid_obj(5).encode(),
        "quads.obj": QUADS_OBJ.encode(),
        "nan.obj": NAN_OBJ.encode(),
        "square.zip": zipped("inner/square.ply", PLY),
    }
    for name, data in files.items():
        server.files[f"/fixtures/{name}"] = data
    entries = {
        "grid5": dict(path="grid5.obj", sha256=sha256(files["grid5.obj"]), git_blob_sha1=git_blob(files["grid5.obj"]),
                      vertices=25, faces=32, licence="test fixture"),
        "quads": dict(path="quads.obj", sha256=sha256(files["quads.obj"]), vertices=6, faces=2),
        "nan": dict(path="nan.obj", sha256=sha256(files["nan.obj"])),
        "zipped": dict(path="square.zip", git_blob_sha1=git_blob(files["square.zip"]), member="inner/square.ply",
                       vertices=4, faces=2),
        "wrongblob": dict(path="grid5.obj", git_blob_sha1="0" * 40),
        "wrongcounts": dict(path="grid5.obj", sha256=sha256(files["grid5.obj"]), vertices=26, faces=32),
    }
    lines = []
    for name, entry in entries.items():
        lines.append(f"[meshes.{name}]\nsource = \"testsrv\"\nrepo = \"fixtures\"")
        lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
    catalog = tmp_path / "extra.toml"
    catalog.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv(fetch.ENV_CATALOGS, str(catalog))
    monkeypatch.setenv("PERMBENCH_SOURCE_TESTSRV_URL", server.url)
    return server


# ----------------------------------------------------------------------------------- catalogue


def test_builtin_catalogue_lists_the_shared_meshes_with_checksums():
    entries = meshcorpus.read_catalog(meshcorpus.CATALOG)
    assert len(entries) == 33 and {"ogre", "bunny", "horse", "armadillo", "skull"} <= set(entries)
    ogre = entries["ogre"]
    assert ogre.url == ("https://raw.githubusercontent.com/alecjacobson/common-3d-test-models/"
                        "8a4f8642acaf43f9cd7b67858a1502e1055ef202/data/ogre.obj")
    assert (ogre.vertices, ogre.faces) == (62194, 124008)
    assert all(e.git_blob_sha1 for e in entries.values())
    # A sha256 is claimed only for files the mirror holds verbatim.
    assert all((e.sha256 is None) == (e.mirror_conversion is not None) for e in entries.values())
    assert entries["horse"].member == "horse.ply"


def test_builtin_catalogue_checksums_match_the_shared_mirror(shared_data_dir):
    manifest = json.loads((shared_data_dir / "manifest.json").read_text())
    entries = meshcorpus.read_catalog(meshcorpus.CATALOG)
    assert sorted(entries) == sorted(Path(m["file"]).stem for m in manifest["meshes"])
    for m in manifest["meshes"]:
        entry = entries[Path(m["file"]).stem]
        assert (entry.repo, entry.commit, entry.path) == (m["repo"], m["commit"], m["path"])
        assert (entry.vertices, entry.faces) == (m["V"], m["F"])
        if entry.sha256:  # verbatim copy: the mirror file is the upstream file
            assert fetch.sha256_file(shared_data_dir / m["file"]) == entry.sha256
            assert fetch.git_blob_sha1(shared_data_dir / m["file"]) == entry.git_blob_sha1


@pytest.mark.parametrize("body, message", [
    ('[meshes.x]\npath = "x.obj"\n', r"\[meshes.x\]: needs a checksum"),
    ('[meshes.x]\npath = "x.obj"\nsha256 = "abc"\n', "sha256 must be 64 lowercase hex digits"),
    ('[meshes.x]\npath = "x.obj"\nsha256 = "' + "0" * 64 + '"\ncolour = 1\n', r"unknown key\(s\) colour"),
    ('[meshes.x]\npath = "x.zip"\nsha256 = "' + "0" * 64 + '"\n', "a .zip needs 'member'"),
    ('[meshes.x]\npath = "x.txt"\nsha256 = "' + "0" * 64 + '"\n', "is not a mesh file"),
    ("[meshes.x\n", "not a valid TOML mesh catalogue"),
])
def test_bad_catalogue_entries_are_named(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        meshcorpus.read_catalog(path)


def test_unknown_mesh_name_lists_the_known_ones(data_env):
    with pytest.raises(SpecError, match=r"mesh:ogree: unknown mesh; known: .*\bogre\b"):
        load("mesh:ogree")


# ------------------------------------------------------------------------------- fetch and load


def test_mesh_is_fetched_verified_and_loaded_through_the_local_server(corpus, data_env):
    case = load("mesh:grid5")
    assert case.n == 25 and case.meta["n_faces"] == 32 and case.coords.shape == (25, 3)
    assert case.meta["served_from"] == "cache" and case.meta["licence"] == "test fixture"
    assert case.meta["mesh_source_url"] == f"{corpus.url}/fixtures/grid5.obj"
    assert case.meta["file_sha256"] == sha256(corpus.files["/fixtures/grid5.obj"])
    assert not case.meta["derived"]
    load("mesh:grid5[matrix=graph]")
    assert corpus.hits["/fixtures/grid5.obj"] == 1
    assert leftovers(data_env) == ["meshes/grid5/grid5.obj"]


def test_upsample_subdivides_a_fetched_mesh_and_marks_it_derived(corpus):
    case = load("mesh:grid5[upsample=2]")
    assert case.n == 17 * 17 and case.meta["n_faces"] == 32 * 16  # 4 -> 16 intervals per side
    assert case.meta["derived"] and case.meta["upsample"] == 2


def test_non_triangular_faces_are_fan_triangulated_and_counted(corpus):
    case = load("mesh:quads")
    assert case.meta["polygon_fan_triangles_added"] == 2 and case.meta["n_faces"] == 4


def test_nan_coordinates_are_rejected_and_not_kept(corpus, data_env):
    with pytest.raises(fetch.FetchError, match=r"mesh:nan: the file downloaded from .*/fixtures/nan\.obj was rejected "
                                               r"and discarded: .*vertex 2 \(1-based\) has a non-finite coordinate"):
        load("mesh:nan")
    assert leftovers(data_env) == []


def test_git_blob_mismatch_is_a_checksum_error(corpus, data_env):
    with pytest.raises(fetch.ChecksumError, match=r"mesh:wrongblob: checksum mismatch for .*/fixtures/grid5\.obj: "
                                                  r"the download has git blob id \w{40}, expected 0{40}; it was discarded"):
        load("mesh:wrongblob")
    assert leftovers(data_env) == []


def test_counts_that_differ_from_the_catalogue_are_rejected(corpus, data_env):
    with pytest.raises(fetch.FetchError, match=r"grid5\.obj has 25 vertices and 32 faces; the catalogue says 26 and 32"):
        load("mesh:wrongcounts")
    assert leftovers(data_env) == []


def test_zip_member_is_extracted_and_read(corpus, data_env):
    case = load("mesh:zipped")
    assert case.n == 4 and case.meta["n_faces"] == 2
    assert case.meta["file_sha256"] == sha256(corpus.files["/fixtures/square.zip"])


def test_missing_upstream_file_names_the_url(corpus):
    del corpus.files["/fixtures/grid5.obj"]
    with pytest.raises(fetch.FetchError, match=r"mesh:grid5: download of http://127\.0\.0\.1:\d+/fixtures/grid5\.obj "
                                               r"failed: HTTP 404"):
        load("mesh:grid5")


# ----------------------------------------------------------------------------- offline and mirror


def test_offline_mesh_not_cached_fails_fast(corpus, monkeypatch):
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    with pytest.raises(fetch.NotCachedError) as err:
        load("mesh:grid5")
    assert str(err.value) == "not cached: mesh:grid5 (fetch it with: permbench datasets fetch mesh:grid5)"
    assert sum(corpus.hits.values()) == 0


def test_mirror_mesh_is_served_without_network(corpus, tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    (root / "meshes").mkdir(parents=True)
    data = grid_obj(4).encode()
    (root / "meshes" / "grid5.obj").write_bytes(data)  # the mirror wins over the catalogue's URL
    (root / "meshes" / "onlyhere.obj").write_bytes(data)
    manifest = {"meshes": [{"file": f"meshes/{n}.obj", "sha256": sha256(data), "V": 16, "F": 18}
                           for n in ("grid5", "onlyhere")], "suitesparse": []}
    (root / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv(fetch.ENV_MIRROR, str(root))
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    assert load("mesh:grid5").n == 16 and load("mesh:onlyhere").n == 16
    assert load("mesh:onlyhere").meta["served_from"] == f"mirror:{root}"
    assert sum(corpus.hits.values()) == 0


def test_shared_mesh_loads_offline_from_the_mirror(shared_data_dir, data_env, monkeypatch):
    monkeypatch.setenv(fetch.ENV_MIRROR, str(shared_data_dir))
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    case = load("mesh:decimated-max")
    assert case.n == 5272 and case.meta["served_from"] == f"mirror:{shared_data_dir}"
    assert case.meta["mesh_source_url"].endswith("/decimated-max.obj")


# -------------------------------------------------------------------------------------------- CLI


def test_cli_lists_the_catalogue_with_a_filter(data_env):
    result = CliRunner().invoke(app, ["datasets", "list", "--source", "mesh", "--filter", "vertices >= 40000"])
    assert result.exit_code == 0, result.output
    assert "6 match" in result.output
    for name in ("ogre", "skull", "nefertiti", "tower_holes", "horse", "armadillo"):
        assert name in result.output


def test_cli_fetch_and_info_of_a_mesh(corpus, data_env):
    runner = CliRunner()
    result = runner.invoke(app, ["datasets", "fetch", "mesh:grid5[upsample=2]"])
    assert result.exit_code == 0, result.output
    assert f"mesh:grid5  sha256 {sha256(corpus.files['/fixtures/grid5.obj'])}" in result.output
    info = json.loads(runner.invoke(app, ["datasets", "info", "mesh:grid5"]).output)
    assert info["cache"]["state"] == "ok" and info["catalogue"]["vertices"] == 25
    result = runner.invoke(app, ["datasets", "fetch", "grid[n=100]"])
    assert result.exit_code == 1 and "nothing to fetch" in result.output


@pytest.mark.slow
def test_run_with_data_dir_offline_end_to_end(shared_data_dir, data_env, tmp_path):
    out = tmp_path / "run.parquet"
    cli = Path(sys.executable).with_name("permbench")
    done = subprocess.run([str(cli), "run", "-d", "mesh:decimated-max", "-d", "ss:HB/494_bus", "-o", "amd",
                           "-b", "symbolic", "--out", str(out), "--data-dir", str(shared_data_dir), "--offline"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pd.read_parquet(out)
    assert sorted(frame["dataset"]) == ["mesh:decimated-max", "ss:HB/494_bus"]
    assert (frame["status"] == "ok").all() and sorted(frame["n"]) == [494, 5272]
    missing = subprocess.run([str(cli), "run", "-d", "ss:HB/bcsstk15", "-o", "amd", "-b", "symbolic",
                              "--out", str(tmp_path / "other.parquet"), "--offline"],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1
    [reason] = pd.read_parquet(tmp_path / "other.parquet")["reason"]
    assert "not cached: ss:HB/bcsstk15 (fetch it with: permbench datasets fetch ss:HB/bcsstk15)" in reason
