#!/bin/bash
# Issue 13, sixth session: H200 measurements, one device call per step: bash .gpu-wheels/meta/final6.sh STEP
set -u
step=$1; shift
case "$step" in
  a)  # (after base, cuDSS parts 4, 1, 2 installed) cuDSS part 3, then patch and AMD at 16 threads on the four inputs >= 1M, 5 repeats
     bash scripts/gpu_bench.sh install cudss-1.0-p3 2>&1 | tail -2
     nproc; cat /proc/loadavg
     CUDSS=1.0 STUDY_TIME_LIMIT=${LIMIT:-420} bash scripts/gpu_bench.sh study rerun \
        -d "grid[matrix=graph,n=1000000|2250000]" -d "icosphere[matrix=graph,n=2621442]" -d "mesh:bumpy-cube[matrix=graph,upsample=3]" \
        -o patch -o amd -b symbolic --repeat 5 2>&1 | grep -E "^results:|^cells:|rror"
     mv $OUT/cudss-h200-rerun.parquet $OUT/patch-h200-16threads-s6.parquet; rm -f $OUT/cells.tgz ;;
  a2)  # the same as a, again, on the same machine (no install), into a file of its own
     cat /proc/loadavg; rm -rf /tmp/gpurun/cudss-h200-rerun.parquet*
     CUDSS=1.0 STUDY_TIME_LIMIT=${LIMIT:-420} bash scripts/gpu_bench.sh study rerun \
        -d "grid[matrix=graph,n=1000000|2250000]" -d "icosphere[matrix=graph,n=2621442]" -d "mesh:bumpy-cube[matrix=graph,upsample=3]" \
        -o patch -o amd -b symbolic --repeat 5 2>&1 | grep -E "^results:|^cells:|rror"
     mv $OUT/cudss-h200-rerun.parquet $OUT/patch-h200-16threads-${TAG:-s6b}.parquet; rm -f $OUT/cells.tgz ;;
  cudss1m)  # patch + its ND tree vs cuDSS's default (MT layer on/off), k = 10, 3 repeats, on the 1M grid
     rm -rf /tmp/gpurun/cudss-h200-rerun.parquet*
     CUDSS=1.0 STUDY_TIME_LIMIT=${LIMIT:-300} bash scripts/gpu_bench.sh study rerun -d "grid[matrix=graph,n=1000000]" \
        -o native -o patch -b "cudss[k=10,mt=true|false]" --repeat 3 2>&1 | grep -E "^results:|^cells:|rror"
     mv $OUT/cudss-h200-rerun.parquet $OUT/patch-cudss-h200-1m-s6.parquet; rm -f $OUT/cells.tgz ;;
  scaling)
     CUDSS=1.0 STUDY_TIME_LIMIT=${LIMIT:-420} bash scripts/gpu_bench.sh study patch-scaling 2>&1 | grep -E "^results:|^cells:|rror"
     rm -f $OUT/cells.tgz ;;
esac
ls -la $OUT
