#!/bin/bash
# A/B/C in one call on the H200 host: bash .gpu-wheels/meta/ab2.sh M ROUNDS "name:variant-dir:ENV=..." ...
bash scripts/gpu_bench.sh install base-p1 > /tmp/inst.log 2>&1 || { tail -20 /tmp/inst.log; exit 1; }
export LD_LIBRARY_PATH=/tmp/debroot/usr/lib/x86_64-linux-gnu PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=16 NUMBA_NUM_THREADS=16
top=$PWD; m=$1; rounds=$2; shift 2
for round in $(seq $rounds); do for spec in "$@"; do
  IFS=: read name v envs <<< "$spec"
  repo=$top/.gpu-wheels/ab/$v; root=/tmp/pb-$v
  if [ ! -d $root ]; then mkdir -p $root/permbench && cp $repo/permbench/*.py $root/permbench/ && ln -s $repo/permbench/core $root/permbench/core
    for d in harness orderings datasets; do ln -s $repo/$d $root/permbench/$d; done; fi
  echo "=== $name round $round"
  env $envs PYTHONPATH=$root:/tmp/site NUMBA_CACHE_DIR=/tmp/nbc-$v timeout 200 python3 -P $top/.gpu-wheels/meta/prof5.py $m 16 "{}" 2>&1 | grep -E "th=|layer"
done; done
