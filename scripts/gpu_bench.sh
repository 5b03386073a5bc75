#!/usr/bin/env bash
# The cudss study on the GPU host (H200, CPython 3.12, CUDA 13, offline). See DEVELOPERS.md,
# section "GPU runs (cuDSS on the H200)".
#
# Here, once:   bash scripts/gpu_bench.sh bundle        (.gpu-wheels/<group>-pK part folders, meta/, data/)
# On the host, one call of the device tool per part folder (carry it with meta and data), back to
# back while the machine is warm; a group installs when its last part has arrived:
#               bash scripts/gpu_bench.sh install base-p1
#               bash scripts/gpu_bench.sh install cudss-1.0-p1 ... cudss-1.0-p4
#               bash scripts/gpu_bench.sh install cudss-0.8-p1 cudss-0.8-p2     (optional, side by side)
#               CUDSS=1.0 bash scripts/gpu_bench.sh test
#               CUDSS=1.0 bash scripts/gpu_bench.sh study STEP   (STEP: reorder | orderings | native | user | patch |
#               patch-orderings | patch-scaling | patch-cudss | ...): `permbench run` with the host's settings
#               CUDSS=1.0 bash scripts/gpu_bench.sh explore [-d DATASET]   (`permbench study cudss-explore`)
# Each run records the GPU, driver, CUDA and cuDSS versions (rows' backend_provenance, the file's
# provenance) and the git state of the checkout the tree was copied from ($PERMBENCH_GIT_STATE).
# Here, afterwards: `permbench results combine STEP-FILES... --out results/gpu/NAME.parquet`.
# CUDSS=1.0|0.8 picks the cuDSS a command runs with (default 1.0): each is installed in its own
# folder /tmp/cudss-<version>, and $CUDSS_LIBRARY tells the back-end which file to load.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?usage: gpu_bench.sh bundle|install PART|test|explore|study STEP}
# The permbench command from the tree as copied (no install on the host; host_env sets the import root).
PERMBENCH=(python3 -P -c 'import sys; from permbench.harness.cli import main; sys.argv[0] = "permbench"; main()')
shift
OUT=${OUT:-/tmp/gpu-out}
RUN=/tmp/gpurun                    # results live outside the copied tree, across calls of one lease
CUDSS=${CUDSS:-1.0}
RESULT=$RUN/cudss-h200.parquet
mkdir -p "$OUT" "$RUN"

#: cuDSS wheels per group (CUDA 13 builds); nvmath-python 1.0.0 loads either through cuda-pathfinder
#: (libcudss.so.1 is known to it from 1.8.4 on).
declare -A CUDSS_WHEEL=([1.0]=nvidia-cudss-cu13==1.0.0.35 [0.8]=nvidia-cudss-cu13==0.8.0.10)
PART_MIB=46                        # a device call carries 64 MiB: a part, the tree (~5 MiB), meta, data

pin() {  # the version requirements.txt pins, as NAME==VERSION
  grep -i "^$1==" "$repo/requirements.txt" || { echo "no pin for $1 in requirements.txt" >&2; exit 2; }
}

bundle_group() {  # bundle_group NAME FILES_DIR: one tar of the group's files, cut into part folders
  local name=$1 dir=$2 w=$repo/.gpu-wheels
  tar -C "$dir" -cf "$w/$name.tar" .
  rm -rf "$w/$name"-p*
  split -b "${PART_MIB}M" -d -a 2 "$w/$name.tar" "$w/$name.tar."
  local pieces=("$w/$name.tar".??) k=1
  for piece in "${pieces[@]}"; do
    mkdir -p "$w/$name-p$k"; mv "$piece" "$w/$name-p$k/"
    (cd "$w" && sha256sum "$name.tar" | cut -d' ' -f1) > "$w/$name-p$k/$name.sha256"
    echo "${#pieces[@]}" > "$w/$name-p$k/$name.count"
    k=$((k + 1))
  done
  rm "$w/$name.tar"
  echo "$name: ${#pieces[@]} part(s)"; du -sh "$w/$name"-p*
}

install_group() {  # install_group NAME FILES_DIR
  local name=$1 dir=$2
  case "$name" in
    base)
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$dir"/*.whl
      # The host's own typer is the one the CLI was tested with; a newer one in /tmp/site needs pydantic.
      rm -rf /tmp/site/typer /tmp/site/typer-*.dist-info
      mkdir -p /tmp/debroot
      for d in "$dir"/*.deb; do dpkg -x "$d" /tmp/debroot; done
      local lib=/tmp/debroot/usr/lib/x86_64-linux-gnu
      # Debian puts BLAS/LAPACK behind alternatives: OpenBLAS under the plain sonames.
      ln -sf "$lib"/openblas-pthread/libblas.so.3 "$lib"/libblas.so.3
      ln -sf "$lib"/openblas-pthread/liblapack.so.3 "$lib"/liblapack.so.3
      for so in "$lib"/lib*.so.*; do b=$(basename "$so"); n=${b%%.so.*}; [ -e "$lib/$n.so" ] || ln -s "$b" "$lib/$n.so"; done
      if ! PYTHONPATH=/tmp/site LD_LIBRARY_PATH=$lib python3 -c 'import sksparse.cholmod' 2>/dev/null; then
        rm -rf /tmp/sksparse-src && mkdir -p /tmp/sksparse-src
        tar -xzf "$(ls "$dir"/scikit_sparse-*.tar.gz | head -1)" -C /tmp/sksparse-src
        (cd /tmp/sksparse-src/scikit_sparse-* && CFLAGS="-I/tmp/debroot/usr/include/suitesparse" \
           LDFLAGS="-L$lib -Wl,-rpath,$lib" python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .)
      fi ;;
    cudss-*)
      local version=${name#cudss-}
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "/tmp/$name" "$dir"/*.whl
      # Say now whether it loads with what it needs (cuBLAS; NVRTC for 1.0), as the back-end loads it
      # (needs the base group installed first, for cuda-pathfinder).
      (CUDSS=$version host_env && python3 -P -c "from permbench.harness.backends._cudss_session import preload_cudss
try: print('loads:', preload_cudss())
except OSError as e: print('DOES NOT LOAD:', e)") ;;
  esac
  echo "installed group $name"
}

host_env() {
  # The harness as the package `permbench` without installing it: the repository's folders under
  # one import root (pyproject.toml maps them the same way).
  rm -rf /tmp/pbroot && mkdir -p /tmp/pbroot/permbench
  cp "$repo"/permbench/*.py /tmp/pbroot/permbench/
  ln -s "$repo/permbench/core" /tmp/pbroot/permbench/core
  for d in harness orderings datasets; do ln -s "$repo/$d" "/tmp/pbroot/permbench/$d"; done
  local major=${CUDSS%%.*} cudss_lib=/tmp/cudss-$CUDSS/nvidia/cu13/lib
  [ -d "$cudss_lib" ] || { echo "cuDSS $CUDSS is not installed (bash scripts/gpu_bench.sh install cudss-$CUDSS-pK)" >&2; exit 2; }
  export PYTHONPATH=/tmp/pbroot:/tmp/cudss-$CUDSS:/tmp/site
  export LD_LIBRARY_PATH=/tmp/debroot/usr/lib/x86_64-linux-gnu:$cudss_lib:${LD_LIBRARY_PATH:-}
  # Exactly this cuDSS and its own threading layer (harness/backends/cudss.py loads them first).
  export CUDSS_LIBRARY=$cudss_lib/libcudss.so.$major CUDSS_THREADING_LIB=$cudss_lib/libcudss_mtlayer_gomp.so.$major
  export CUDSS_JIT_CACHE_DIR=/tmp/cudss-jit-$CUDSS   # cuDSS 1.0's compiled kernels, kept across cells
  mkdir -p "$CUDSS_JIT_CACHE_DIR"
  # All 16 host cores for cuDSS's threading layer (OpenMP) and for orderings that use threads.
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-$(nproc)}
  # The repository's own permbench/ folder (no harness/ beside its core/) must not shadow the import root:
  # no current directory on sys.path, here and in the harness's spawned children.
  export PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 PERMBENCH_SHARED_DATA=$repo/.gpu-wheels/data
  # mesh:NAME is served from the copy of the real mesh that travelled in .gpu-wheels/data.
  export PERMBENCH_DATA_DIR=$repo/.gpu-wheels/data PERMBENCH_OFFLINE=1
  # The copy has no .git: rows and provenance take the git state recorded by `bundle` (permbench/core/provenance.py).
  export PERMBENCH_GIT_STATE=$repo/.gpu-wheels/meta/git.json
}

# A study step stops after $limit seconds (a device call may run 600 s); finished groups are kept
# in $RESULT.parts and the same step, called again, resumes with the rest.
# SIGINT, not SIGTERM: the CLI then stops its children (they run in sessions of their own).
study_run() { timeout -s INT -k 60 "$limit" "${PERMBENCH[@]}" run "$@" || true; }

case "$cmd" in
  bundle)  # here: the wheels and Debian packages the host lacks, in part folders < 48 MiB, plus meta/ and data/
    cd "$repo"
    w=.gpu-wheels; rm -rf "$w"; mkdir -p "$w/dl/base" "$w/dl/cudss-1.0" "$w/dl/cudss-0.8"
    get=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
         --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    # nvmath-python's loader of cuDSS 1.0 needs cuda-pathfinder >= 1.8.4; scotchpy64 for `scotch`.
    "${get[@]}" -d "$w/dl/base" nvmath-python==1.0.0 cuda-pathfinder==1.9.1 "$(pin pymetis)" "$(pin scotchpy64)" \
      "$(pin platformdirs)" "$(pin pooch)" "$(pin threadpoolctl)" "$(pin meshio)" "$(pin trimesh)" "$(pin filelock)"
    python3 -m pip download -q --no-deps --no-binary=scikit-sparse -d "$w/dl/base" "$(pin scikit-sparse)"
    # Debian's SuiteSparse 5.12 / METIS 5.1 / OpenBLAS, runtime and headers, for scikit-sparse.
    debs=(libsuitesparse-dev libsuitesparseconfig5 libamd2 libcamd2 libccolamd2 libcolamd2 libcholmod3
          libmetis5 libopenblas0-pthread liblapack3 libblas3 libgfortran5)
    (cd "$w/dl/base" && apt-get download "${debs[@]}" >/dev/null 2>&1) || \
      { apt-get update -qq >/dev/null && (cd "$w/dl/base" && apt-get download "${debs[@]}" >/dev/null); }
    for v in 1.0 0.8; do "${get[@]}" -d "$w/dl/cudss-$v" "${CUDSS_WHEEL[$v]}"; done
    for g in base cudss-1.0 cudss-0.8; do bundle_group "$g" "$w/dl/$g"; done
    rm -rf "$w/dl"
    mkdir -p "$w/meta" "$w/data/meshes"
    python3 - > "$w/meta/git.json" <<'PY'
import glob, hashlib, json, subprocess
run = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()
# Uncommitted work travels too: a digest of the sources says which state of them ran.
digest = hashlib.sha256()
for path in sorted(glob.glob("permbench/**/*.py", recursive=True) + glob.glob("harness/**/*.py", recursive=True)
                   + glob.glob("orderings/**/*.py", recursive=True) + glob.glob("datasets/**/*.py", recursive=True)):
    digest.update(path.encode() + open(path, "rb").read())
print(json.dumps({"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain", "--untracked-files=no")),
                  "untracked": run("status", "--porcelain").count("??"), "sources_sha256": digest.hexdigest()}))
PY
    # The real mesh, upsampled on the host (../shared does not travel): a mirror of one file, with
    # the manifest that holds its sha256, so `mesh:bumpy-cube[upsample=3]` resolves offline there.
    cp /work/shared/data/meshes/bumpy-cube.obj "$w/data/meshes/"
    cp /work/shared/data/manifest.json "$w/data/"
    du -sh "$w"/* ;;
  install)  # on the host: stash one part folder; install its group once all its parts are there
    part=$repo/.gpu-wheels/${1:?part folder, e.g. base-p1}
    [ -d "$part" ] || { echo "no part folder $part (carry .gpu-wheels/${1})" >&2; exit 2; }
    name=$(basename "$part"); name=${name%-p*}
    stash=/tmp/gpu-stash/$name; mkdir -p "$stash"
    cp -n "$part/$name".tar.?? "$part/$name.sha256" "$part/$name.count" "$stash/"
    have=$(ls "$stash/$name".tar.?? | wc -l); want=$(cat "$stash/$name.count")
    if [ "$have" -lt "$want" ]; then echo "$name: $have of $want part(s) here; carry the next one"; exit 0; fi
    cat "$stash/$name".tar.?? > "$stash/$name.tar"
    echo "$(cat "$stash/$name.sha256")  $stash/$name.tar" | sha256sum -c --quiet
    rm -rf "$stash/files" && mkdir -p "$stash/files" && tar -xf "$stash/$name.tar" -C "$stash/files"
    rm "$stash/$name.tar"
    install_group "$name" "$stash/files" ;;
  test)
    host_env
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
    python3 -P -c 'import nvmath, cupy; from permbench.harness.backends.cudss import CuDSS; from permbench.harness.backends._cudss_session import cudss_version; print("nvmath", nvmath.__version__, "cupy", cupy.__version__, "cudss", cudss_version(), CuDSS.available())'
    cd "$repo" && python3 -P -m pytest -q -p no:cacheprovider tests/test_cudss.py "$@" ;;
  explore)
    host_env
    cd "$repo" && "${PERMBENCH[@]}" study cudss-explore "$@" ;;
  study)
    host_env
    cd "$repo"
    step=${1:?study step: reorder | orderings | native | user | patch | repeats | patch-orderings | patch-scaling | patch-cudss | rerun}
    shift
    limit=${STUDY_TIME_LIMIT:-540}  # a call of the device tool may run 600 s; unfinished groups resume
    # The mesh comes from the bundled mirror (.gpu-wheels/data: manifest.json + meshes/bumpy-cube.obj)
    # under its catalogue name, so result rows carry mesh:bumpy-cube, not this machine's path.
    common=(--out "$RESULT" --flop-limit 1e14 --mem-limit 60GiB --jobs 1 --threads "$(nproc)"
            --data-dir "$repo/.gpu-wheels/data" --offline)
    datasets=(-d "grid[matrix=graph,n=10000|100000|1000000|2250000]"
              -d "icosphere[matrix=graph,n=655362|2621442]"
              -d "mesh:bumpy-cube[matrix=graph,upsample=2|3]"
              -d "tetgrid[matrix=graph,n=125000]")
    # k=10 only: each run's first FACTORIZATION + SOLVE is exactly what a k=1 run measures
    # (t_total_s), the nine REFACTORIZATIONs that follow give t_total_k_s.
    # cuDSS 0.8 vs 1.0 (CUDSS=...), at 10^6 vertices and more: two grids and the real mesh upsampled
    # three times (bumpy-cube, 20k vertices -> 1.28 M); one file per cuDSS version and step.
    big=(-d "grid[matrix=graph,n=1000000|2250000]" -d "mesh:bumpy-cube[matrix=graph,upsample=3]")
    case "$step" in
      reorder)    # every reordering algorithm of cuDSS that applies to SPD, with and without the MT layer
              study_run "${big[@]}" -o native -b "cudss[k=10,reorder=default|nd|amd|colamd|btf_colamd,mt=true|false]" \
                --out "$RUN/cudss-$CUDSS-reorder.parquet" "${common[@]:2}" ;;
      orderings)  # scotch beside metis, amd and patch, all on the 16 host threads; cuDSS gets each one's tree
              study_run "${big[@]}" -o scotch -o metis -o amd -o patch -b symbolic -b "cudss[k=10,tree=derive]" \
                --out "$RUN/cudss-$CUDSS-orderings.parquet" "${common[@]:2}" ;;
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
      rerun)  # named cells again, into their own file (`permbench results combine`: a later file wins)
              RESULT=$RUN/cudss-h200-rerun.parquet
              study_run "$@" --out "$RESULT" "${common[@]:2}" ;;
      *) echo "unknown study step $step" >&2; exit 2 ;;
    esac
    cp "$RUN"/*.parquet "$OUT/" 2>/dev/null || true
    # The finished cells' fragments (not the dataset caches), to resume on another machine:
    # tar -xzf cells.tgz -C /tmp/gpurun before the next study step there.
    (cd "$RUN" && tar -czf "$OUT/cells.tgz" ./*.parquet.parts/*.parquet) || true ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
