"""Download, cache, verify and serve the files behind fetched datasets (``ss:``, ``mesh:``).

One place decides where a file comes from, in this order:

1. a **local mirror** (``--data-dir DIR`` / ``PERMBENCH_DATA_DIR`` / config ``data_dir``): a folder laid
   out like ``../shared/data`` with a ``manifest.json``. A file listed there is served from it,
   after checking its sha256 against the manifest; the network is never touched.
2. the **cache** (``PERMBENCH_CACHE_DIR`` / config ``cache_dir``, default the platform's user cache
   folder, ``~/.cache/permbench`` on Linux). A cached file is used only if ``registry.json`` in the
   cache lists it and its sha256 still matches; the registry records the sha256 of every file on its
   first fetch (checked against the catalogue's checksum where one is known).
3. the **network** (pooch's HTTP downloader, with an optional progress bar), unless offline
   (``--offline`` / ``PERMBENCH_OFFLINE=1`` / config ``offline``), which fails fast with
   ``not cached: <name> (fetch it with: permbench datasets fetch <name>)`` before any connection.

A download goes to ``<file>.part/`` beside its destination, is checked (sha256 against the
catalogue or the registry, then the caller's own check: the tarball parses, the counts match the
index, ...) and only then moved into place and recorded; on any failure the partial folder is
removed, so the cache never holds a truncated, corrupt or mismatching file, and a good cached
copy is never replaced by a bad download. A per-file lock (filelock) makes concurrent fetches of
the same file download it once: the second process waits and then finds it cached.

Base URLs are settings too (``PERMBENCH_SOURCE_<NAME>_URL`` or ``[data.sources]`` in the config
file), so tests point them at a server on 127.0.0.1 and a site at its own mirror. The config file
is ``PERMBENCH_CONFIG`` or ``config.toml`` in the platform's user config folder; environment
variables win over it::

    [data]
    cache_dir = "/scratch/permbench-cache"
    data_dir = "/shared/data"            # a local mirror with manifest.json
    offline = false
    timeout_s = 60
    mesh_catalogs = ["/site/meshes.toml"]  # extra mesh catalogue entries (same format as catalog.toml)
    [data.sources]
    suitesparse = "https://sparse.tamu.edu"
    github = "https://raw.githubusercontent.com"
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.case import InputError
from ..core.provenance import sha256_file

ENV_CACHE = "PERMBENCH_CACHE_DIR"
ENV_MIRROR = "PERMBENCH_DATA_DIR"
ENV_OFFLINE = "PERMBENCH_OFFLINE"
ENV_CONFIG = "PERMBENCH_CONFIG"
ENV_CATALOGS = "PERMBENCH_MESH_CATALOG"
ENV_TIMEOUT = "PERMBENCH_FETCH_TIMEOUT"

DEFAULT_SOURCES = {
    "suitesparse": "https://sparse.tamu.edu",
    "github": "https://raw.githubusercontent.com",
}
CONFIG_KEYS = {"cache_dir", "data_dir", "offline", "timeout_s", "mesh_catalogs", "sources", "lock_timeout_s"}
REGISTRY_FILE = "registry.json"


class FetchError(InputError):
    """A dataset file that could not be obtained: network failure, bad download, lock timeout."""


class ChecksumError(FetchError):
    """A file whose checksum differs from the catalogue, the registry or the mirror's manifest."""


class NotCachedError(FetchError):
    """Offline, and the file is neither in the mirror nor in the cache."""


def not_cached_message(name: str) -> str:
    return f"not cached: {name} (fetch it with: permbench datasets fetch {name})"


# ------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    mirror_dir: Path | None
    offline: bool
    sources: dict = field(default_factory=dict)
    mesh_catalogs: tuple[Path, ...] = ()
    timeout_s: float = 60.0
    lock_timeout_s: float = 3600.0
    config_file: Path | None = None


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def config_path() -> Path:
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("permbench")) / "config.toml"


def read_config(path: Path) -> dict:
    """The ``[data]`` table of a permbench config file ({} when the file does not exist)."""
    if not path.is_file():
        if os.environ.get(ENV_CONFIG):
            raise FetchError(f"{path}: config file not found ({ENV_CONFIG} names it)")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise FetchError(f"{path}: not a valid TOML config file ({err})") from None
    table = data.get("data", {})
    if not isinstance(table, dict):
        raise FetchError(f"{path}: 'data' must be a table ([data])")
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        raise FetchError(f"{path}: unknown key(s) in [data]: {', '.join(unknown)}; known: {', '.join(sorted(CONFIG_KEYS))}")
    return table


def source_env_var(source: str) -> str:
    """Source names are ``[a-z0-9_]+``, so each has exactly one variable: github -> PERMBENCH_SOURCE_GITHUB_URL."""
    return f"PERMBENCH_SOURCE_{source.upper()}_URL"


def settings() -> Settings:
    """The current settings: environment variables, then the config file, then the defaults.

    Read on every call (cheap), so a CLI option that sets an environment variable, a test's
    monkeypatch and a spawned child all see the same values.
    """
    import platformdirs

    cfg_path = config_path()
    cfg = read_config(cfg_path)
    env = os.environ
    cache = env.get(ENV_CACHE) or cfg.get("cache_dir") or platformdirs.user_cache_dir("permbench")
    mirror = env.get(ENV_MIRROR) or cfg.get("data_dir")
    offline = _truthy(env[ENV_OFFLINE]) if env.get(ENV_OFFLINE) else bool(cfg.get("offline", False))
    sources = dict(DEFAULT_SOURCES)
    sources.update({str(k): str(v) for k, v in cfg.get("sources", {}).items()})
    for key, value in env.items():
        match = re.fullmatch(r"PERMBENCH_SOURCE_([A-Z0-9_]+)_URL", key)
        if match and value:
            sources[match.group(1).lower()] = value
    catalogs = [Path(p).expanduser() for p in cfg.get("mesh_catalogs", [])]
    catalogs += [Path(p).expanduser() for p in env.get(ENV_CATALOGS, "").split(os.pathsep) if p]
    timeout = float(env.get(ENV_TIMEOUT) or cfg.get("timeout_s", 60.0))
    return Settings(
        cache_dir=Path(cache).expanduser(),
        mirror_dir=Path(mirror).expanduser() if mirror else None,
        offline=offline,
        sources={k: v.rstrip("/") for k, v in sources.items()},
        mesh_catalogs=tuple(catalogs),
        timeout_s=timeout,
        lock_timeout_s=float(cfg.get("lock_timeout_s", 3600.0)),
        config_file=cfg_path if cfg_path.is_file() else None,
    )


def source_url(source: str, *parts: str) -> str:
    """``<base URL of source>/<parts joined by />``; an unknown source is an error naming the known ones."""
    sources = settings().sources
    if source not in sources:
        raise FetchError(f"unknown data source {source!r}; known: {', '.join(sorted(sources))} "
                         f"(set its base URL with {source_env_var(source)} or [data.sources] in the config)")
    from urllib.parse import quote

    return "/".join([sources[source], *(quote(p.strip("/")) for p in parts if p)])


# ------------------------------------------------------------------------------------ checksums


def git_blob_sha1(path) -> str:
    """Git's id of the file's content: sha1 of ``blob <size>\\0`` + content (what ``git hash-object`` prints)."""
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------- registry


def registry_path(cache_dir: Path | None = None) -> Path:
    return (cache_dir or settings().cache_dir) / REGISTRY_FILE


def read_registry(cache_dir: Path | None = None) -> dict:
    """``{relpath: {sha256, bytes, url, name, fetched_utc}}`` of every file fetched into the cache."""
    path = registry_path(cache_dir)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return dict(data["files"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise FetchError(f"{path}: unreadable cache registry ({err}); delete it and fetch again") from None


def _record(cache_dir: Path, relpath: str, info: dict) -> None:
    """Add or replace one registry entry (read-modify-write under the registry's lock, atomic write)."""
    from filelock import FileLock

    path = registry_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=60):
        files = read_registry(cache_dir)
        files[relpath] = info
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True))
        os.replace(tmp, path)


def _cache_state(cache_dir: Path, relpath: str, sha256: str | None) -> tuple[str, str]:
    """('ok' | 'missing' | 'unrecorded' | 'corrupt' | 'stale', detail) of one cached file."""
    dest = cache_dir / relpath
    entry = read_registry(cache_dir).get(relpath)
    if not dest.is_file():
        return "missing", f"{dest}: not in the cache"
    if entry is None:
        return "unrecorded", f"{dest}: present but not in {registry_path(cache_dir)} (an interrupted fetch?)"
    if sha256 and entry["sha256"] != sha256:
        return "stale", f"{dest}: recorded sha256 {entry['sha256']} but the catalogue now says {sha256}"
    actual = sha256_file(dest)
    if actual != entry["sha256"]:
        return "corrupt", f"{dest}: sha256 {actual}, recorded {entry['sha256']} on {entry.get('fetched_utc', '?')}"
    return "ok", str(dest)


def cached(relpath: str, sha256: str | None = None) -> Path | None:
    """The cached, verified copy of ``relpath``, or None."""
    cache_dir = settings().cache_dir
    state, _ = _cache_state(cache_dir, relpath, sha256)
    return cache_dir / relpath if state == "ok" else None


def cache_status(relpath: str, sha256: str | None = None) -> tuple[str, str]:
    return _cache_state(settings().cache_dir, relpath, sha256)


def verify_cache(relpaths: list[str] | None = None) -> list[tuple[str, str, str]]:
    """Re-hash cached files against the registry: [(relpath, state, detail)], state 'ok' or the problem."""
    cache_dir = settings().cache_dir
    names = sorted(read_registry(cache_dir)) if relpaths is None else relpaths
    return [(rel, *_cache_state(cache_dir, rel, None)) for rel in names]


# ------------------------------------------------------------------------------------- download


Check = Callable[[Path, str], None]


def fetch(url: str, relpath: str, *, name: str, sha256: str | None = None, check: Check | None = None,
          force: bool = False, mutable: bool = False, progress=None) -> Path:
    """A verified local copy of ``url`` at ``<cache>/<relpath>``, downloading it if needed.

    ``name`` is the dataset name used in messages. ``sha256``: the catalogue's checksum, if known;
    otherwise the one recorded on the first fetch is the expectation for every later download.
    ``check(path, sha256)`` validates a fresh download (raise InputError to reject it). ``force``:
    download again even when cached (an upstream change then shows as a checksum mismatch, and the
    cached copy stays); ``mutable``: the upstream file legitimately changes (the SuiteSparse index),
    so a forced download replaces the recorded checksum instead of being held to it.
    ``progress``: True for a progress bar on stderr, or an object with pooch's progress-bar protocol.
    """
    cfg = settings()
    dest = cfg.cache_dir / relpath
    if not force and _cache_state(cfg.cache_dir, relpath, sha256)[0] == "ok":
        return dest
    if cfg.offline:
        if force:
            raise FetchError(f"{name}: cannot download again while offline ({ENV_OFFLINE} or --offline)")
        state, detail = _cache_state(cfg.cache_dir, relpath, sha256)
        if state in ("corrupt", "stale"):
            raise ChecksumError(f"cached copy of {name} does not verify ({detail}); "
                                f"fetch it again with: permbench datasets fetch --force {name}")
        raise NotCachedError(not_cached_message(name))
    from filelock import FileLock, Timeout

    dest.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(dest) + ".lock", timeout=cfg.lock_timeout_s)
    try:
        with lock:
            # Another process may have fetched it while we waited for the lock.
            if not force and _cache_state(cfg.cache_dir, relpath, sha256)[0] == "ok":
                return dest
            recorded = read_registry(cfg.cache_dir).get(relpath, {}).get("sha256")
            expected = sha256 or (None if mutable else recorded)
            _download(url, dest, relpath, name, expected, check, progress, cfg)
    except Timeout:
        raise FetchError(f"{name}: another process has held {lock.lock_file} for over {cfg.lock_timeout_s:.0f} s; "
                         f"remove the lock file if no fetch is running") from None
    return dest


def _download(url, dest: Path, relpath: str, name: str, expected: str | None, check: Check | None,
              progress, cfg: Settings) -> None:
    import pooch
    import requests

    staging = dest.with_name(dest.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)  # left by a process killed mid-download
    staging.mkdir(parents=True)
    tmp = staging / dest.name
    bar = DownloadBar(f"{name}") if progress is True else progress
    try:
        downloader = pooch.HTTPDownloader(progressbar=bar or False, timeout=cfg.timeout_s, chunk_size=1 << 16)
        try:
            downloader(url, str(tmp), None)
        except requests.HTTPError as err:
            status = err.response.status_code if err.response is not None else "?"
            reason = err.response.reason if err.response is not None else str(err)
            raise FetchError(f"{name}: download of {url} failed: HTTP {status} {reason}") from None
        except requests.RequestException as err:
            raise FetchError(f"{name}: download of {url} failed or was interrupted ({type(err).__name__}: {err}); "
                             f"nothing was kept, try again") from None
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()
        digest = sha256_file(tmp)
        if expected and digest != expected:
            kept = " (the cached copy is unchanged)" if dest.exists() else ""
            raise ChecksumError(f"{name}: checksum mismatch for {url}: the download has sha256 {digest}, "
                                f"expected {expected}; it was discarded{kept}")
        if check is not None:
            try:
                check(tmp, digest)
            except FetchError:
                raise
            except InputError as err:
                raise FetchError(f"{name}: the file downloaded from {url} was rejected and discarded: {err}") from None
        os.replace(tmp, dest)
        _record(cfg.cache_dir, relpath, {
            "sha256": digest, "bytes": dest.stat().st_size, "url": url, "name": name,
            "fetched_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class DownloadBar:
    """pooch's progress-bar protocol (``total``, ``update``, ``reset``, ``close``) drawn with rich."""

    def __init__(self, label: str, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), console=console or Console(stderr=True))
        self._label = label
        self._task = None
        self._total = None

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, value):
        # pooch sets the total (Content-Length, 0 if unknown) before the first chunk.
        self._total = value or None
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=self._total)
        else:
            self._progress.update(self._task, total=self._total)

    def update(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def reset(self) -> None:
        if self._task is not None:
            self._progress.reset(self._task, total=self._total)

    def close(self) -> None:
        self._progress.stop()


# --------------------------------------------------------------------------------------- mirror


@dataclass(frozen=True)
class Mirror:
    """A local folder laid out like ../shared/data: ``manifest.json`` lists its files with checksums."""

    root: Path
    manifest: dict

    def mesh_entry(self, name: str) -> dict | None:
        """The manifest entry of mesh ``name`` (its file's stem: ``meshes/ogre.obj`` is ``ogre``)."""
        return next((e for e in self.manifest.get("meshes", []) if Path(e["file"]).stem == name), None)

    def matrix_entry(self, full_name: str) -> dict | None:
        """The manifest entry of SuiteSparse matrix ``Group/Name``."""
        return next((e for e in self.manifest.get("suitesparse", []) if e.get("name") == full_name), None)

    def verified_path(self, entry: dict) -> tuple[Path, str]:
        """(path, sha256) of an entry's file after checking it against the manifest."""
        path = self.root / entry["file"]
        expected = entry.get("sha256") or entry.get("sha256_gz")
        if not path.is_file():
            raise FetchError(f"{path}: listed in {self.root / 'manifest.json'} but missing")
        actual = sha256_file(path)
        if expected and actual != expected:
            raise ChecksumError(f"{path}: sha256 {actual} differs from {expected} in {self.root / 'manifest.json'}")
        return path, actual


def mirror() -> Mirror | None:
    """The configured local mirror, or None; a mirror folder without a readable manifest is an error."""
    root = settings().mirror_dir
    if root is None:
        return None
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise FetchError(f"{root}: not a data mirror (no manifest.json); expected a folder laid out like "
                         f"../shared/data: manifest.json, meshes/, suitesparse/")
    try:
        return Mirror(root, json.loads(manifest.read_text()))
    except json.JSONDecodeError as err:
        raise FetchError(f"{manifest}: not valid JSON ({err})") from None
