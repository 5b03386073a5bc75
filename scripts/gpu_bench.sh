#!/usr/bin/env bash
# The cudss study on the GPU host (H200, CPython 3.12, CUDA 13, offline). See DEVELOPERS.md,
# section "GPU runs (cuDSS on the H200)".
#
# Here, once:   bash scripts/gpu_bench.sh bundle        (.gpu-wheels/p1, p2 and meta/: wheels, debs, git state)
# On the host, each call of the device tool carrying one part folder, back to back while it is warm:
#               bash scripts/gpu_bench.sh install p1
#               bash scripts/gpu_bench.sh install p2 && bash scripts/gpu_bench.sh test
#               bash scripts/gpu_bench.sh explore [gpu_bench.py explore options]
#               bash scripts/gpu_bench.sh study STEP    (STEP = native | user | patch | finalize, and for
#               issue 13: patch-orderings | patch-scaling | patch-cudss)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?usage: gpu_bench.sh bundle|install PART|test|explore|study STEP}
shift
OUT=${OUT:-/tmp/gpu-out}
RUN=/tmp/gpurun                    # results live outside the copied tree, across calls of one lease
RESULT=$RUN/cudss-h200.parquet
mkdir -p "$OUT" "$RUN"

host_env() {
  # The harness as the package `permbench` without installing it: the repository's folders under
  # one import root (pyproject.toml maps them the same way).
  rm -rf /tmp/pbroot && mkdir -p /tmp/pbroot/permbench
  cp "$repo"/permbench/*.py /tmp/pbroot/permbench/
  for d in harness orderings datasets; do ln -s "$repo/$d" "/tmp/pbroot/permbench/$d"; done
  export PYTHONPATH=/tmp/pbroot:/tmp/site
  export LD_LIBRARY_PATH=/tmp/debroot/usr/lib/x86_64-linux-gnu:/tmp/site/nvidia/cu13/lib:${LD_LIBRARY_PATH:-}
  export CUDSS_THREADING_LIB=/tmp/site/nvidia/cu13/lib/libcudss_mtlayer_gomp.so.0
  # All 16 host cores for cuDSS's threading layer (OpenMP) and for orderings that use threads.
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-$(nproc)}
  # The repository's own permbench/ folder (only __init__.py) must not shadow the import root:
  # no current directory on sys.path, here and in the harness's spawned children.
  export PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 PERMBENCH_SHARED_DATA=$repo/.gpu-wheels/data
  # mesh:bumpy-cube from the bundled mirror (its manifest lists it with its sha256), never the network.
  export PERMBENCH_DATA_DIR=$repo/.gpu-wheels/data PERMBENCH_OFFLINE=1
}

# A study step stops after $limit seconds (a device call may run 600 s); finished groups are kept
# in $RESULT.parts and the same step, called again, resumes with the rest.
# SIGINT, not SIGTERM: the CLI then stops its children (they run in sessions of their own).
study_run() { timeout -s INT -k 60 "$limit" python3 -P -c 'import sys; from permbench.harness.cli import main; sys.argv[0] = "permbench"; main()' run "$@" || true; }

case "$cmd" in
  bundle)  # here: wheels + Debian packages in two part folders (each < 50 MB), plus meta/
    cd "$repo"
    bash /work/shared/gpu/prepare-wheels.sh .gpu-wheels platformdirs pooch threadpoolctl meshio trimesh
    # Repack prepare-wheels' parts into two: the device tool carries at most 64 MiB per call.
    mkdir -p .gpu-wheels/q1 .gpu-wheels/q2
    for f in .gpu-wheels/p*/*; do
      b=$(basename "$f"); case "$b" in install.sh|MANIFEST) continue;; esac
      case "$b" in *part01|libopenblas*|liblapack*|libgfortran*|libsuitesparse-dev*) mv "$f" .gpu-wheels/q2/;;
                   *) mv "$f" .gpu-wheels/q1/;; esac
    done
    for q in q1 q2; do cp .gpu-wheels/p1/MANIFEST .gpu-wheels/p1/install.sh .gpu-wheels/$q/; done
    rm -rf .gpu-wheels/p*; mv .gpu-wheels/q1 .gpu-wheels/p1; mv .gpu-wheels/q2 .gpu-wheels/p2
    mkdir -p .gpu-wheels/meta .gpu-wheels/data/meshes
    python3 - > .gpu-wheels/meta/git.json <<'PY'
import glob, hashlib, json, subprocess
run = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()
# Uncommitted work travels too: a digest of the sources says which state of them ran.
digest = hashlib.sha256()
for path in sorted(glob.glob("harness/**/*.py", recursive=True) + glob.glob("orderings/**/*.py", recursive=True)
                   + glob.glob("datasets/**/*.py", recursive=True)):
    digest.update(path.encode() + open(path, "rb").read())
print(json.dumps({"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain", "--untracked-files=no")),
                  "untracked": run("status", "--porcelain").count("??"), "sources_sha256": digest.hexdigest()}))
PY
    # The real mesh upsampled on the host (shared/data does not travel with the tree).
    cp /work/shared/data/meshes/bumpy-cube.obj .gpu-wheels/data/meshes/
    cp /work/shared/data/manifest.json .gpu-wheels/data/
    du -sh .gpu-wheels/p1 .gpu-wheels/p2 .gpu-wheels/meta .gpu-wheels/data ;;
  install)
    bash "$repo/.gpu-wheels/${1:?part}/install.sh"
    # The host's own typer is the one the CLI was tested with; a newer one in /tmp/site needs pydantic.
    rm -rf /tmp/site/typer /tmp/site/typer-*.dist-info ;;
  test)
    host_env
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
    python3 -P -c 'import nvmath, cupy; from permbench.harness.backends.cudss import CuDSS, cudss_version; print("nvmath", nvmath.__version__, "cupy", cupy.__version__, "cudss", cudss_version(), CuDSS.available())'
    cd "$repo" && python3 -P -m pytest -q -p no:cacheprovider tests/test_cudss.py "$@" ;;
  explore)
    host_env
    cd "$repo" && python3 -P scripts/gpu_bench.py explore "$@" ;;
  study)
    host_env
    cd "$repo"
    step=${1:?study step: native | user | patch | finalize}
    shift
    limit=${STUDY_TIME_LIMIT:-540}  # a call of the device tool may run 600 s; unfinished groups resume
    common=(--out "$RESULT" --flop-limit 1e14 --mem-limit 60GiB --jobs 1 --threads "$(nproc)")
    datasets=(-d "grid[matrix=graph,n=10000|100000|1000000|2250000]"
              -d "icosphere[matrix=graph,n=655362|2621442]"
              -d "file:.gpu-wheels/data/meshes/bumpy-cube.obj[matrix=graph,upsample=2|3]"
              -d "tetgrid[matrix=graph,n=125000]")
    # k=10 only: each run's first FACTORIZATION + SOLVE is exactly what a k=1 run measures
    # (t_total_s), the nine REFACTORIZATIONs that follow give t_total_k_s.
    case "$step" in
      native) study_run "${datasets[@]}" -o native \
                -b "cudss[k=10,mt=true|false]" -b "cudss[k=10,reorder=amd|nd]" "${common[@]}" ;;
      user)   study_run "${datasets[@]}" -o metis -o amd \
                -b "cudss[k=10,tree=off|derive]" "${common[@]}" ;;
      patch)  study_run "${datasets[@]}" -o patch \
                -b "cudss[k=10,tree=auto|off]" "${common[@]}" ;;
      repeats|repeats-native|repeats-patch)
              # the headline comparison three times on the meshes of 10^6 vertices and more
              big=(-d "grid[matrix=graph,n=1000000|2250000]" -d "icosphere[matrix=graph,n=2621442]"
                   -d "file:.gpu-wheels/data/meshes/bumpy-cube.obj[matrix=graph,upsample=3]")
              [ "$step" = repeats-patch ] || study_run "${big[@]}" -o native -b "cudss[k=10]" \
                --out "$RUN/cudss-h200-repeats-native.parquet" "${common[@]:2}" --repeat 3
              [ "$step" = repeats-native ] || study_run "${big[@]}" -o patch -b "cudss[k=10]" \
                --out "$RUN/cudss-h200-repeats-patch.parquet" "${common[@]:2}" --repeat 3 ;;
      patch-orderings)  # issue 13: every ordering at 16 threads on the inputs >= 1M (configs/patch-h200.toml)
              study_run -c configs/patch-h200.toml --out "$RUN/patch-h200.parquet" --jobs 1 ;;
      patch-scaling)  # issue 13: patch alone at 1, 2, 4, 8, 16 threads, one result file each
              for t in 1 2 4 8 16; do
                study_run -c configs/patch-h200-scaling.toml --threads "$t" --jobs 1 \
                  --out "$RUN/patch-h200-scaling-t$t.parquet"
              done ;;
      patch-cudss)  # issue 13: patch + its ND tree vs cuDSS's own default, MT layer on and off, 3 repeats
              big=(-d "grid[matrix=graph,n=1000000|2250000]" -d "icosphere[matrix=graph,n=2621442]"
                   -d "mesh:bumpy-cube[matrix=graph,upsample=3]")
              study_run "${big[@]}" -o native -o patch -b "cudss[k=10,mt=true|false]" \
                --out "$RUN/patch-cudss-h200.parquet" "${common[@]:2}" --repeat 3 ;;
      rerun)  # named cells again, into their own file (gpu_bench.py combine: a later file wins)
              RESULT=$RUN/cudss-h200-rerun.parquet
              study_run "$@" --out "$RESULT" "${common[@]:2}" ;;
      finalize) for f in "$RUN"/*.parquet; do  # every result file of this machine
                  python3 -P scripts/gpu_bench.py finalize "$f" --git .gpu-wheels/meta/git.json \
                    --commands scripts/gpu_bench.sh; done ;;
      *) echo "unknown study step $step" >&2; exit 2 ;;
    esac
    cp "$RUN"/*.parquet "$OUT/" 2>/dev/null || true
    # The finished cells' fragments (not the dataset caches), to resume on another machine:
    # tar -xzf cells.tgz -C /tmp/gpurun before the next study step there.
    (cd "$RUN" && tar -czf "$OUT/cells.tgz" ./*.parquet.parts/*.parquet) || true ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
