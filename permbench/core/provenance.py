"""Provenance stored with every result file: code, libraries, machine, threads, loaded BLAS."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import permbench

_PACKAGES = ["numpy", "scipy", "numba", "pandas", "pyarrow", "pymetis", "scikit-sparse", "threadpoolctl",
             "nvmath-python", "cupy-cuda12x", "cupy-cuda13x", "nvidia-cudss-cu12", "nvidia-cudss-cu13", "homapy",
             "mkl", "trimesh", "meshio"]


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (fetch verification, file datasets, figure sidecars)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def loaded_libraries(*needles: str) -> dict[str, str]:
    """Shared libraries mapped into this process whose file name contains a needle -> real path.

    Reading /proc/self/maps sees what the dynamic loader actually chose (e.g. which libblas.so.3
    Debian's alternatives resolved to), which threadpoolctl alone does not report for CHOLMOD.
    """
    found: dict[str, str] = {}
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split()
                if len(parts) < 6 or not parts[-1].startswith("/"):
                    continue
                name = os.path.basename(parts[-1])
                if any(n in name for n in needles) and ".so" in name:
                    found.setdefault(name, os.path.realpath(parts[-1]))
    except OSError:
        pass
    return found


def library_file_version(needle: str) -> str | None:
    """Version from the real file name of a loaded library: libcholmod.so.3.0.14 -> '3.0.14'."""
    for name, real in loaded_libraries(needle).items():
        base = os.path.basename(real)
        if ".so." in base:
            return base.split(".so.", 1)[1]
    return None


def blas_in_use() -> dict:
    """The BLAS/LAPACK libraries loaded in this process (real files), and threadpoolctl's view."""
    libs = loaded_libraries("blas", "lapack", "mkl_rt", "libgomp", "libiomp")
    info = {"loaded": sorted(set(libs.values()))}
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: (str(p.get(k)) if p.get(k) is not None else None)
             for k in ("internal_api", "filepath", "version", "num_threads", "threading_layer")}
            for p in threadpool_info() if p.get("user_api") in ("blas", "openmp")
        ]
    except Exception as err:  # threadpoolctl is optional here; provenance must never fail a run
        info["threadpools_error"] = repr(err)
    return info


#: A JSON file with the git state of the checkout a copied tree came from (``commit``, ``dirty``, ...),
#: for trees without ``.git`` (scripts/gpu_bench.sh writes one when it bundles the tree for the GPU host).
GIT_STATE_ENV = "PERMBENCH_GIT_STATE"


def git_state() -> dict:
    """The checkout's commit and whether tracked files differ from it; for a tree without ``.git``,
    the state recorded where it was copied from ($PERMBENCH_GIT_STATE), else None for both."""
    root = Path(permbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", None
    if commit or not os.environ.get(GIT_STATE_ENV):
        return {"commit": commit or None, "dirty": dirty if commit else None}
    recorded = os.environ[GIT_STATE_ENV]
    try:
        state = json.loads(Path(recorded).read_text())
    except (OSError, ValueError) as err:  # provenance never fails a run: the reason is stored instead
        return {"commit": None, "dirty": None, "error": f"{GIT_STATE_ENV}={recorded}: {type(err).__name__}: {err}"}
    return {**state, "commit": state.get("commit"), "dirty": state.get("dirty"),
            "source": f"{recorded} (recorded where this tree was copied from)"}


def gpus() -> list[dict]:
    """The machine's NVIDIA GPUs as nvidia-smi reports them (name, driver, memory); [] without it."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    fields = ("name", "driver_version", "memory.total")
    try:
        out = subprocess.run([smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return [{"error": f"nvidia-smi: {type(err).__name__}: {err}"}]
    if out.returncode != 0:
        return [{"error": f"nvidia-smi exited {out.returncode}: {out.stderr.strip()[:200]}"}]
    return [dict(zip(fields, (v.strip() for v in line.split(",")))) for line in out.stdout.splitlines() if line.strip()]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def collect() -> dict:
    """Everything about this process and machine that can shape a measurement."""
    import psutil

    env_threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                               "NUMBA_NUM_THREADS") if k in os.environ}
    return {
        "permbench": permbench.__version__,
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "gpus": gpus(),
        "packages": package_versions(),
        "thread_env": env_threads,
        "blas": blas_in_use(),
        "libraries": {n: library_file_version(n) for n in ("libcholmod", "libamd", "libmetis", "libcudss")
                      if library_file_version(n)},
    }
