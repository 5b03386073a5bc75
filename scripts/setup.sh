#!/usr/bin/env bash
# Set up permbench on a fresh Debian 12 / Ubuntu machine: system packages (only those missing),
# a virtual environment in .venv, pinned Python dependencies, and permbench itself (editable).
# Idempotent: re-running only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PYTHON" - <<'PY' || { echo "permbench needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# System packages. libsuitesparse-dev: CHOLMOD/AMD (SuiteSparse 5.12 on Debian 12) for
# scikit-sparse and the amd ordering. libopenblas0-pthread: CHOLMOD on Debian's default reference
# BLAS is several times slower, which would make every CPU timing meaningless.
need=(libsuitesparse-dev libopenblas0-pthread build-essential)
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
inc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$inc/Python.h" ] || need+=(python3-dev)
missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# chromium: tests/test_html_report.py renders report.html in headless chromium (it skips without
# one). Not fatal: on a system whose chromium comes only as a snap, the rest of the set-up still runs.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "installing system package: chromium (for the HTML report's browser test)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium; } \
    || echo "warning: chromium not installed; the HTML report's browser test will be skipped" >&2
fi
# Make sure the BLAS CHOLMOD links against resolves to OpenBLAS, not the reference BLAS.
if command -v update-alternatives >/dev/null; then
  blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')
  case "$blas" in
    *openblas*|"") ;;
    *) echo "libblas.so.3 points to $blas; switching to OpenBLAS"
       SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
       $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
       $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3 ;;
  esac
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Pinned dependencies (requirements.txt) first, then permbench itself without re-resolving them.
"$VENV/bin/python" -m pip install -q -r requirements.txt
"$VENV/bin/python" -m pip install -q --no-deps -e .
# Optional: MKL for the pardiso back-end (~280 MB of wheels); its tests skip without it.
if [ "${WITH_MKL:-0}" = 1 ]; then "$VENV/bin/python" -m pip install -q -r requirements-mkl.txt; fi
# Optional: homapy, the C++ reference (`homa` ordering), with the CUDA 12 runtime it links (~2 GB).
if [ "${WITH_REFERENCE:-0}" = 1 ]; then "$VENV/bin/python" -m pip install -q -r requirements-reference.txt; fi
"$VENV/bin/python" - <<'PY'
import sksparse.cholmod, numpy as np, scipy.sparse as sp
from permbench.core.provenance import blas_in_use
f = sksparse.cholmod.cholesky(sp.identity(64, format="csc") * 2.0)  # loads CHOLMOD and its BLAS
blas = [p for p in blas_in_use()["loaded"] if "blas" in p and "site-packages" not in p]
print("permbench ready; CHOLMOD's BLAS:", ", ".join(blas) or "unknown")
if blas and not any("openblas" in p for p in blas):
    print("WARNING: CHOLMOD is not using OpenBLAS; CPU timings will be slow")
PY
