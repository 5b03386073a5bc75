"""The fetch machinery (datasets/fetch.py) against a local HTTP server on 127.0.0.1 that the tests start:
settings, the sha256 registry, checksum mismatches, interrupted downloads, HTTP and connection
errors, offline mode, concurrent fetches, the local mirror, and the filter language of named sets.

``LocalServer`` and the ``data_env``/``server`` fixtures are shared with test_suitesparse.py and
test_meshcorpus.py (imported from here)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from permbench.datasets import fetch, sets
from permbench.core.specs import SpecError

# ------------------------------------------------------------------------------- local server


class LocalServer:
    """Static files over HTTP on 127.0.0.1, with counted requests and injectable faults.

    ``files[path] = bytes``; ``faults[path]`` = "truncate" (announce the full Content-Length, send
    half, close) or "slow" (send in 8 pieces, 0.1 s apart). Unknown paths get a 404.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.hits: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] += 1
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "File not found")
                    return
                fault = server.faults.get(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault == "truncate":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif fault == "slow":
                    step = max(1, len(data) // 8)
                    for start in range(0, len(data), step):
                        self.wfile.write(data[start:start + step])
                        self.wfile.flush()
                        time.sleep(0.1)
                else:
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Path:
    """Isolated settings: a fresh cache, an empty config file, no mirror, online, a 5 s timeout."""
    for key in list(os.environ):
        if key in (fetch.ENV_MIRROR, fetch.ENV_OFFLINE, fetch.ENV_CATALOGS) or (
                key.startswith("PERMBENCH_SOURCE_") and key.endswith("_URL")):
            monkeypatch.delenv(key)
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv(fetch.ENV_CONFIG, str(config))
    monkeypatch.setenv(fetch.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setenv(fetch.ENV_TIMEOUT, "5")
    return tmp_path / "cache"


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(cache: Path) -> list[str]:
    """Files in the cache other than the registry and lock files: partial downloads would show here."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")
                  if p.is_file() and not p.name.endswith(".lock") and p.name != fetch.REGISTRY_FILE)


PAYLOAD = bytes(range(256)) * 400  # 100 KiB


# ------------------------------------------------------------------------------------ settings


def test_settings_come_from_env_then_config_then_defaults(data_env, tmp_path, monkeypatch):
    config = tmp_path / "site.toml"
    config.write_text('[data]\ncache_dir = "/from/config"\noffline = true\n'
                      '[data.sources]\nsuitesparse = "http://mirror.example/ss"\n')
    monkeypatch.setenv(fetch.ENV_CONFIG, str(config))
    monkeypatch.delenv(fetch.ENV_CACHE)
    s = fetch.settings()
    assert s.cache_dir == Path("/from/config") and s.offline
    assert s.sources["suitesparse"] == "http://mirror.example/ss"
    assert s.sources["github"] == "https://raw.githubusercontent.com"
    monkeypatch.setenv(fetch.ENV_CACHE, "/from/env")
    monkeypatch.setenv(fetch.ENV_OFFLINE, "0")
    monkeypatch.setenv("PERMBENCH_SOURCE_SUITESPARSE_URL", "http://127.0.0.1:9/ss/")
    s = fetch.settings()
    assert s.cache_dir == Path("/from/env") and not s.offline
    assert fetch.source_url("suitesparse", "MM", "HB", "x.tar.gz") == "http://127.0.0.1:9/ss/MM/HB/x.tar.gz"


def test_default_cache_is_the_platform_user_cache(data_env, monkeypatch):
    import platformdirs

    monkeypatch.delenv(fetch.ENV_CACHE)
    assert fetch.settings().cache_dir == Path(platformdirs.user_cache_dir("permbench"))


def test_bad_config_and_unknown_source_are_named(data_env, tmp_path, monkeypatch):
    config = tmp_path / "bad.toml"
    config.write_text("[data]\ncache_directory = 1\n")
    monkeypatch.setenv(fetch.ENV_CONFIG, str(config))
    with pytest.raises(fetch.FetchError, match=r"bad.toml: unknown key\(s\) in \[data\]: cache_directory"):
        fetch.settings()
    monkeypatch.setenv(fetch.ENV_CONFIG, str(tmp_path / "missing.toml"))
    with pytest.raises(fetch.FetchError, match="missing.toml: config file not found"):
        fetch.settings()
    config.write_text("")
    monkeypatch.setenv(fetch.ENV_CONFIG, str(config))
    with pytest.raises(fetch.FetchError, match="unknown data source 'nowhere'.*PERMBENCH_SOURCE_NOWHERE_URL"):
        fetch.source_url("nowhere", "x")


# ------------------------------------------------------------------------ registry and checksums


def test_first_fetch_records_sha256_and_later_fetches_use_the_cache(data_env, server):
    server.files["/f/blob.bin"] = PAYLOAD
    path = fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob")
    assert path.read_bytes() == PAYLOAD
    record = fetch.read_registry()["x/blob.bin"]
    assert record["sha256"] == sha256(PAYLOAD) and record["bytes"] == len(PAYLOAD)
    assert record["url"] == f"{server.url}/f/blob.bin"
    assert fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob") == path
    assert server.hits["/f/blob.bin"] == 1
    assert fetch.verify_cache() == [("x/blob.bin", "ok", str(path))]


def test_checksum_mismatch_is_an_error_and_keeps_nothing(data_env, server):
    server.files["/f/blob.bin"] = PAYLOAD
    with pytest.raises(fetch.ChecksumError, match=r"blob: checksum mismatch for http://127\.0\.0\.1:\d+/f/blob\.bin: "
                                                   rf"the download has sha256 {sha256(PAYLOAD)}, expected 0+; "
                                                   r"it was discarded"):
        fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob", sha256="0" * 64)
    assert leftovers(data_env) == []
    assert fetch.read_registry() == {}


def test_upstream_change_on_forced_fetch_leaves_the_good_cache_untouched(data_env, server):
    server.files["/f/blob.bin"] = PAYLOAD
    path = fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob")
    before = fetch.read_registry()
    server.files["/f/blob.bin"] = PAYLOAD[::-1]
    with pytest.raises(fetch.ChecksumError, match=r"expected .*discarded \(the cached copy is unchanged\)"):
        fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob", force=True)
    assert path.read_bytes() == PAYLOAD and fetch.read_registry() == before
    assert leftovers(data_env) == ["x/blob.bin"]
    # A file that legitimately changes upstream (the SuiteSparse index) is replaced instead.
    fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob", force=True, mutable=True)
    assert path.read_bytes() == PAYLOAD[::-1]
    assert fetch.read_registry()["x/blob.bin"]["sha256"] == sha256(PAYLOAD[::-1])


def test_corrupted_cache_is_reported_and_refetched(data_env, server):
    server.files["/f/blob.bin"] = PAYLOAD
    path = fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob")
    path.write_bytes(b"bit rot")
    [(rel, state, detail)] = fetch.verify_cache()
    assert (rel, state) == ("x/blob.bin", "corrupt") and f"recorded {sha256(PAYLOAD)}" in detail
    assert fetch.cached("x/blob.bin") is None
    assert fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob").read_bytes() == PAYLOAD
    assert server.hits["/f/blob.bin"] == 2


def test_a_rejected_download_is_discarded(data_env, server):
    server.files["/f/blob.bin"] = PAYLOAD

    def check(path, digest):
        assert digest == sha256(PAYLOAD) and path.read_bytes() == PAYLOAD
        raise fetch.InputError(f"{path.name}: not what was expected")

    with pytest.raises(fetch.FetchError, match=r"blob: the file downloaded from http://127\.0\.0\.1:\d+/f/blob\.bin "
                                               r"was rejected and discarded: blob\.bin: not what was expected"):
        fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob", check=check)
    assert leftovers(data_env) == [] and fetch.read_registry() == {}


# --------------------------------------------------------------------------------- transport faults


def test_interrupted_download_leaves_no_partial_file_and_a_retry_works(data_env, server):
    server.files["/f/blob.bin"] = PAYLOAD
    server.faults["/f/blob.bin"] = "truncate"
    with pytest.raises(fetch.FetchError, match=r"blob: download of http://127\.0\.0\.1:\d+/f/blob\.bin failed or "
                                               r"was interrupted .*nothing was kept"):
        fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob")
    assert leftovers(data_env) == [] and fetch.read_registry() == {}
    del server.faults["/f/blob.bin"]
    assert fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob").read_bytes() == PAYLOAD


def test_http_404_names_the_url(data_env, server):
    with pytest.raises(fetch.FetchError, match=r"blob: download of http://127\.0\.0\.1:\d+/f/missing\.bin failed: "
                                               r"HTTP 404"):
        fetch.fetch(f"{server.url}/f/missing.bin", "x/blob.bin", name="blob")
    assert leftovers(data_env) == []


def test_connection_refused_names_the_url(data_env):
    url = f"http://127.0.0.1:{free_port()}/f/blob.bin"
    with pytest.raises(fetch.FetchError, match=rf"blob: download of {url} failed or was interrupted "
                                               rf"\(ConnectionError: "):
        fetch.fetch(url, "x/blob.bin", name="blob")
    assert leftovers(data_env) == []


def test_partial_folder_of_a_killed_fetch_is_cleaned_up(data_env, server):
    stale = data_env / "x" / "blob.bin.part" / "blob.bin"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PAYLOAD[:10])
    (data_env / "x" / "blob.bin").write_bytes(PAYLOAD[:10])  # moved in, but never recorded
    server.files["/f/blob.bin"] = PAYLOAD
    assert fetch.cache_status("x/blob.bin")[0] == "unrecorded"
    assert fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob").read_bytes() == PAYLOAD
    assert leftovers(data_env) == ["x/blob.bin"]


# ----------------------------------------------------------------------------------- offline


def test_offline_fails_fast_without_touching_the_network(data_env, server, monkeypatch):
    server.files["/f/blob.bin"] = PAYLOAD
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    with pytest.raises(fetch.NotCachedError) as err:
        fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="ss:HB/blob")
    assert str(err.value) == "not cached: ss:HB/blob (fetch it with: permbench datasets fetch ss:HB/blob)"
    assert sum(server.hits.values()) == 0
    monkeypatch.setenv(fetch.ENV_OFFLINE, "0")
    path = fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="ss:HB/blob")
    monkeypatch.setenv(fetch.ENV_OFFLINE, "1")
    assert fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="ss:HB/blob") == path
    path.write_bytes(b"bit rot")
    with pytest.raises(fetch.ChecksumError, match=r"cached copy of ss:HB/blob does not verify .*"
                                                  r"permbench datasets fetch --force ss:HB/blob"):
        fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="ss:HB/blob")
    assert server.hits["/f/blob.bin"] == 1


# ---------------------------------------------------------------------------------- concurrency


_FETCH_IN_CHILD = """
import sys, time
from pathlib import Path
from permbench.datasets import fetch
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
path = fetch.fetch(url, "x/blob.bin", name="blob", sha256=sys.argv[4])
print(path.stat().st_size)
"""


def test_two_processes_fetching_at_once_download_once(data_env, server, tmp_path):
    server.files["/f/blob.bin"] = PAYLOAD
    server.faults["/f/blob.bin"] = "slow"  # ~0.8 s: the second process must wait on the lock
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", _FETCH_IN_CHILD, f"{server.url}/f/blob.bin",
                                  str(tmp_path / f"ready{i}"), str(go), sha256(PAYLOAD)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [str(len(PAYLOAD))] * 2
    assert server.hits["/f/blob.bin"] == 1
    assert leftovers(data_env) == ["x/blob.bin"]


# ------------------------------------------------------------------------------- progress bar


def test_download_progress_bar_reaches_the_file_size(data_env, server):
    from rich.console import Console

    server.files["/f/blob.bin"] = PAYLOAD
    out = io.StringIO()
    bar = fetch.DownloadBar("blob", console=Console(file=out, width=100))
    fetch.fetch(f"{server.url}/f/blob.bin", "x/blob.bin", name="blob", progress=bar)
    assert bar.total == len(PAYLOAD)
    text = out.getvalue()
    assert "blob" in text and "102.4/102.4 kB" in text


# -------------------------------------------------------------------------------------- mirror


def test_mirror_serves_listed_files_after_checking_their_sha256(data_env, tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    (root / "meshes").mkdir(parents=True)
    (root / "meshes" / "m.obj").write_bytes(b"v 0 0 0\n")
    entry = {"file": "meshes/m.obj", "sha256": sha256(b"v 0 0 0\n")}
    (root / "manifest.json").write_text(json.dumps({"meshes": [entry], "suitesparse": []}))
    monkeypatch.setenv(fetch.ENV_MIRROR, str(root))
    mirror = fetch.mirror()
    assert mirror.mesh_entry("m") == entry and mirror.mesh_entry("other") is None
    assert mirror.verified_path(entry) == (root / "meshes" / "m.obj", entry["sha256"])
    (root / "meshes" / "m.obj").write_bytes(b"v 1 0 0\n")
    with pytest.raises(fetch.ChecksumError, match=r"m\.obj: sha256 \w+ differs from \w+ in .*manifest\.json"):
        mirror.verified_path(entry)
    monkeypatch.setenv(fetch.ENV_MIRROR, str(tmp_path))
    with pytest.raises(fetch.FetchError, match="not a data mirror \\(no manifest.json\\)"):
        fetch.mirror()


def test_git_blob_sha1_matches_git(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert fetch.git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


# ------------------------------------------------------------------------------------- filters


ROWS = [
    {"name": "HB/bcsstk14", "n": 1806, "spd": True, "kind": "structural problem"},
    {"name": "Norris/fv1", "n": 9604, "spd": True, "kind": "2D/3D problem"},
    {"name": "GHS_psdef/big", "n": 200000, "spd": True, "kind": "2D/3D Problem"},
    {"name": "X/unsym", "n": 50000, "spd": False, "kind": "structural problem"},
]


@pytest.mark.parametrize("expr, names", [
    ("spd and 1e4 <= n <= 1e6 and kind ~ 'structural|2D/3D'", ["GHS_psdef/big"]),
    ("kind ~ 'structural'", ["HB/bcsstk14", "X/unsym"]),
    ("not spd or n < 2000", ["HB/bcsstk14", "X/unsym"]),
    ("(n > 5000 and n < 100000) or name == 'HB/bcsstk14'", ["HB/bcsstk14", "Norris/fv1", "X/unsym"]),
    ("name ~ '^GHS_'", ["GHS_psdef/big"]),
    ("kind ~ '~'", []),
    (None, ["HB/bcsstk14", "Norris/fv1", "GHS_psdef/big", "X/unsym"]),
])
def test_filter_selects_rows(expr, names):
    assert [row["name"] for row in sets.select(ROWS, expr)] == names


@pytest.mark.parametrize("expr, message", [
    ("n >", "does not parse"),
    ("rows > 3", "unknown field 'rows'; fields: kind, n, name, spd"),
    ("__import__('os').system('true')", "is not supported"),
    ("n ~ 3", "right side of ~ must be a quoted regular expression"),
    ("kind ~ '('", "bad regular expression"),
])
def test_bad_filters_are_errors_naming_the_problem(expr, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sets.select(ROWS, expr)


def test_named_sets_expand_with_their_parameters():
    assert sets.expand(["grid[n=100]", "ss-spd-small"])[:3] == ["grid[n=100]", "ss:HB/494_bus", "ss:HB/nos6"]
    assert len(sets.expand(["ss-spd-small"])) == 22
    scans = sets.expand(["mesh-scans[upsample=1|2]"])
    assert "mesh:ogre[upsample=1]" in scans and "mesh:ogre[upsample=2]" in scans
    assert all(name.startswith("mesh:") for name in scans) and len(scans) == 2 * 6
