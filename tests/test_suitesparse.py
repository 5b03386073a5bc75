"""``ss:<Group>/<Name>`` against a local HTTP server on 127.0.0.1 serving a fake ssstats.csv and small
Matrix Market tarballs the tests make: index parsing, fetch + verify + parsed cache, every bad-input
case of the issue, offline use, the local mirror (a tiny one, and ../shared/data when present), named
sets from the index, and the ``datasets`` CLI."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import numpy as np
import pytest
from typer.testing import CliRunner

from permbench.datasets import fetch, load, sets, suitesparse
from permbench.core.case import InputError
from permbench.harness.cli import app
from permbench.core.specs import SpecError
from test_fetch import data_env, leftovers, server, sha256  # noqa: F401  (fixtures)

SPD_MTX = "%%MatrixMarket matrix coordinate real symmetric\n3 3 5\n1 1 4.0\n2 1 -1.0\n2 2 4.0\n3 2 -1.0\n3 3 4.0\n"
SPD_DENSE = np.array([[4.0, -1, 0], [-1, 4, -1], [0, -1, 4]])
PATTERN_MTX = "%%MatrixMarket matrix coordinate pattern symmetric\n3 3 3\n2 1\n3 2\n3 1\n"
RECT_MTX = "%%MatrixMarket matrix coordinate real general\n3 2 2\n1 1 1.0\n3 2 1.0\n"


def tarball(name: str, members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for path, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(path.format(name=name))
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def index_csv(rows: list[str]) -> bytes:
    return (f"{len(rows)}\n05-Jan-2025 10:00:00\n" + "\n".join(rows) + "\n").encode()


INDEX_ROWS = [
    "Test,tiny,3,3,7,1,0,1,1,1,1,2D/3D problem,7",
    "Test,pattern,3,3,6,0,1,1,0,1,1,structural problem,6",
    "Test,rect,3,2,2,1,0,0,0,0,0,least squares problem,2",
    "Test,bigger,20000,20000,99000,1,0,1,1,1,1,structural problem,99000",
    "Other,unsym,50000,50000,250000,1,0,0,0,0.5,0.1,circuit simulation problem,250000",
]


@pytest.fixture
def ss(server, data_env, monkeypatch):
    """The local server as the SuiteSparse collection: /ss/files/ssstats.csv and /ss/MM/<G>/<N>.tar.gz."""
    monkeypatch.setenv("PERMBENCH_SOURCE_SUITESPARSE_URL", f"{server.url}/ss")
    server.files["/ss/files/ssstats.csv"] = index_csv(INDEX_ROWS)
    server.files["/ss/MM/Test/tiny.tar.gz"] = tarball("tiny", {"{name}/{name}.mtx": SPD_MTX,
                                                               "{name}/{name}_b.mtx": SPD_MTX})
    server.files["/ss/MM/Test/pattern.tar.gz"] = tarball("pattern", {"{name}/{name}.mtx": PATTERN_MTX})
    return server


# ---------------------------------------------------------------------------------------- index


def test_index_is_parsed_cached_and_filtered(ss):
    entries = suitesparse.index()
    assert list(entries) == ["Test/tiny", "Test/pattern", "Test/rect", "Test/bigger", "Other/unsym"]
    tiny = entries["Test/tiny"]
    assert (tiny.id, tiny.rows, tiny.nnz, tiny.posdef, tiny.nd, tiny.kind) == (1, 3, 7, True, True, "2D/3D problem")
    assert not entries["Test/pattern"].fields()["spd"]  # posdef 0; real 0
    suitesparse.index()
    assert ss.hits["/ss/files/ssstats.csv"] == 1
    picked = sets.select(sets.suitesparse_rows(), "spd and 1e4 <= n <= 1e6 and kind ~ 'structural|2D/3D'")
    assert [row["name"] for row in picked] == ["Test/bigger"]
    assert sets.expand(["ss-spd-mesh"]) == ["ss:Test/bigger"]


def test_index_refresh_replaces_the_recorded_index(ss):
    suitesparse.index()
    ss.files["/ss/files/ssstats.csv"] = index_csv(INDEX_ROWS[:2])
    assert len(suitesparse.index()) == 5  # cached
    assert len(suitesparse.index(refresh=True)) == 2
    assert ss.hits["/ss/files/ssstats.csv"] == 2


@pytest.mark.parametrize("text, message", [
    (b"2\ndate\nTest,tiny,3,3,7,1,0,1,1,1,1,2D/3D problem\n", "line 1 declares 2 matrices but 1 are listed"),
    (b"1\ndate\nTest,tiny,3,3\n", "line 3: 4 fields; expected at least 12"),
    (b"1\ndate\nTest,tiny,3,x,7,1,0,1,1,1,1,kind\n", "line 3: invalid literal"),
    (b"<html>not found</html>", "line 1: expected the number of matrices"),
])
def test_malformed_index_is_rejected_naming_the_line(ss, text, message):
    ss.files["/ss/files/ssstats.csv"] = text
    with pytest.raises(fetch.FetchError, match=message):
        suitesparse.index()
    assert fetch.read_registry() == {}


# ------------------------------------------------------------------------------ fetch and load


def test_fetch_verify_and_load_through_the_local_server(ss, data_env):
    case = load("ss:Test/tiny")
    np.testing.assert_array_equal(case.A.toarray(), SPD_DENSE)
    assert case.name == "ss:Test/tiny"
    tar_sha = sha256(ss.files["/ss/MM/Test/tiny.tar.gz"])
    assert case.meta["file_sha256"] == tar_sha and case.meta["served_from"] == "cache"
    assert (case.meta["ss_id"], case.meta["ss_kind"], case.meta["values"]) == (1, "2D/3D problem", "file")
    assert fetch.read_registry()["suitesparse/MM/Test/tiny.tar.gz"]["sha256"] == tar_sha
    assert (data_env / "suitesparse" / "parsed" / f"{tar_sha}-v{suitesparse.PARSED_VERSION}.npz").is_file()
    # Second load: no request, no Matrix Market parse (the parsed cache is used).
    (data_env / suitesparse.INDEX_RELPATH).unlink()
    again = load("ss:Test/tiny")
    np.testing.assert_array_equal(again.A.toarray(), SPD_DENSE)
    assert ss.hits["/ss/MM/Test/tiny.tar.gz"] == 1 and ss.hits["/ss/files/ssstats.csv"] == 1


def test_pattern_only_matrix_gets_graph_laplacian_plus_identity(ss):
    case = load("ss:Test/pattern")
    assert case.meta["values"] == "graph-laplacian+I" and case.meta["mm_field"] == "pattern"
    np.testing.assert_array_equal(case.A.toarray(), [[3.0, -1, -1], [-1, 3, -1], [-1, -1, 3]])


def test_unknown_name_is_rejected_with_suggestions_before_any_download(ss):
    with pytest.raises(InputError, match=r"ss:Test/tinny: not in the SuiteSparse index \(5 matrices\); "
                                         r"did you mean Test/tiny"):
        load("ss:Test/tinny")
    assert not any(path.startswith("/ss/MM") for path in ss.hits)


def test_rectangular_matrix_is_rejected_from_the_index_before_download(ss):
    with pytest.raises(InputError, match=r"ss:Test/rect is 3x2 \(per the SuiteSparse index\); a square matrix"):
        load("ss:Test/rect")
    assert ss.hits["/ss/MM/Test/rect.tar.gz"] == 0


@pytest.mark.parametrize("content, message", [
    (b"\x1f\x8b\x08\x00garbage-not-a-tarball", "not a readable tar.gz bundle|truncated or corrupt gzip"),
    (tarball("tiny", {"{name}/README.txt": "no matrix here"}), r"expected one matrix 'tiny.mtx' in the bundle, "
                                                                r"found \.mtx members: none"),
    (tarball("tiny", {"{name}/{name}.mtx": SPD_MTX.replace("coordinate real", "cordinate real")}),
     "not a valid Matrix Market file"),
    (tarball("tiny", {"{name}/{name}.mtx": SPD_MTX.replace("3 3 5", "3 3 6")}), "not a valid Matrix Market file"),
    (tarball("tiny", {"{name}/{name}.mtx": SPD_MTX.replace("2 1 -1.0\n", "2 1 0.0\n")}),
     r"holds a 3x3 matrix with 5 nonzeros; the index says 3x3 with 7"),
    (tarball("tiny", {"{name}/{name}.mtx": RECT_MTX}), r"holds a 3x2 matrix with 2 nonzeros; the index says 3x3"),
])
def test_bad_tarballs_are_rejected_and_not_kept(ss, data_env, content, message):
    ss.files["/ss/MM/Test/tiny.tar.gz"] = content
    with pytest.raises(fetch.FetchError, match=r"ss:Test/tiny: the file downloaded from http://127\.0\.0\.1:\d+"
                                               r"/ss/MM/Test/tiny\.tar\.gz was rejected and discarded: .*" + message):
        load("ss:Test/tiny")
    assert leftovers(data_env) == [suitesparse.INDEX_RELPATH]
    assert list(fetch.read_registry()) == [suitesparse.INDEX_RELPATH]


def test_bad_names_are_spec_errors():
    with pytest.raises(SpecError, match=r"expected ss:<Group>/<Name>, as in ss:HB/bcsstk14"):
        load("ss:bcsstk14")


# -------------------------------------------------------------------------------- offline, mirror


def test_offline_load_of_an_uncached_matrix_fails_fast(ss, monkeypatch):
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    with pytest.raises(fetch.NotCachedError) as err:
        load("ss:Test/tiny")
    assert str(err.value) == "not cached: ss:Test/tiny (fetch it with: permbench datasets fetch ss:Test/tiny)"
    assert sum(ss.hits.values()) == 0
    monkeypatch.setenv(fetch.ENV_OFFLINE, "0")
    load("ss:Test/tiny")
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    np.testing.assert_array_equal(load("ss:Test/tiny").A.toarray(), SPD_DENSE)
    assert sum(ss.hits.values()) == 2  # the index and the tarball, once each


def make_mirror(root, mtx_text: str, n: int, nnz: int, name="Test/mirrored"):
    (root / "suitesparse").mkdir(parents=True)
    data = gzip.compress(mtx_text.encode())
    (root / "suitesparse" / "m.mtx.gz").write_bytes(data)
    entry = {"file": "suitesparse/m.mtx.gz", "name": name, "n": n, "nnz": nnz, "kind": "2D/3D problem",
             "ss_positive_definite": "yes", "id": 42, "sha256_gz": sha256(data)}
    (root / "manifest.json").write_text(json.dumps({"meshes": [], "suitesparse": [entry]}))
    return root


def test_mirror_serves_offline_without_index_or_network(ss, tmp_path, monkeypatch):
    make_mirror(tmp_path / "mirror", SPD_MTX, 3, 7)
    monkeypatch.setenv(fetch.ENV_MIRROR, str(tmp_path / "mirror"))
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    case = load("ss:Test/mirrored")
    np.testing.assert_array_equal(case.A.toarray(), SPD_DENSE)
    assert case.meta["served_from"] == f"mirror:{tmp_path / 'mirror'}" and case.meta["ss_id"] == 42
    assert sum(ss.hits.values()) == 0


def test_mirror_file_with_wrong_counts_is_an_error(ss, tmp_path, monkeypatch):
    make_mirror(tmp_path / "mirror", SPD_MTX, 3, 9)
    monkeypatch.setenv(fetch.ENV_MIRROR, str(tmp_path / "mirror"))
    with pytest.raises(InputError, match=r"ss:Test/mirrored: m\.mtx\.gz holds a 3x3 matrix with 7 nonzeros; "
                                         r"the index says 3x3 with 9"):
        load("ss:Test/mirrored")


def test_shared_data_matrix_loads_offline_from_the_mirror(shared_data_dir, data_env, monkeypatch):
    monkeypatch.setenv(fetch.ENV_MIRROR, str(shared_data_dir))
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    case = load("ss:HB/bcsstk14")
    assert case.A.shape == (1806, 1806) and case.A.nnz == 63454
    assert case.meta["ss_kind"] == "structural problem" and case.meta["ss_posdef"]


# ------------------------------------------------------------------------------------------ CLI


def test_cli_list_fetch_verify_info(ss, data_env):
    runner = CliRunner()
    listed = runner.invoke(app, ["datasets", "list", "--source", "suitesparse", "--filter", "spd and n < 10"])
    assert listed.exit_code == 0, listed.output
    assert "Test/tiny" in listed.output and "Test/bigger" not in listed.output and "1 match" in listed.output
    fetched = runner.invoke(app, ["datasets", "fetch", "ss:Test/tiny"])
    assert fetched.exit_code == 0, fetched.output
    assert f"sha256 {sha256(ss.files['/ss/MM/Test/tiny.tar.gz'])}" in fetched.output
    verified = runner.invoke(app, ["datasets", "verify"])
    assert verified.exit_code == 0 and "2 of 2 files verified" in verified.output
    info = json.loads(runner.invoke(app, ["datasets", "info", "ss:Test/tiny"]).output)
    assert info["cache"]["state"] == "ok" and info["index"]["nnz"] == 7
    assert info["url"].endswith("/ss/MM/Test/tiny.tar.gz")
    (data_env / suitesparse.tarball_relpath("Test/tiny")).write_bytes(b"bit rot")
    verified = runner.invoke(app, ["datasets", "verify"])
    assert verified.exit_code == 1 and "corrupt" in verified.output
    bad = runner.invoke(app, ["datasets", "list", "--source", "suitesparse", "--filter", "colour == 'red'"])
    assert bad.exit_code == 2 and "unknown field 'colour'" in bad.output


def test_cli_fetch_errors_name_the_url(ss):
    result = CliRunner().invoke(app, ["datasets", "fetch", "ss:Test/bigger"])
    assert result.exit_code == 1
    assert "download of" in result.output and "/ss/MM/Test/bigger.tar.gz failed: HTTP 404" in result.output


def test_filter_set_offline_without_an_index_is_a_planning_error(ss, monkeypatch):
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    with pytest.raises(SpecError, match=r"named set ss-spd-mesh: not cached: ss-index \(fetch it with: "
                                        r"permbench datasets fetch ss-index\)"):
        sets.expand(["ss-spd-mesh"])
    assert sum(ss.hits.values()) == 0
