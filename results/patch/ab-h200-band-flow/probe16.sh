#!/bin/bash
# bash .gpu-wheels/meta/probe16.sh 'CMD1' 'CMD2' ... : install base, set the environment, run each python command line
bash scripts/gpu_bench.sh install base-p1 > /tmp/inst.log 2>&1 || { tail -20 /tmp/inst.log; exit 1; }
repo=$PWD
rm -rf /tmp/pbroot && mkdir -p /tmp/pbroot/permbench && cp $repo/permbench/*.py /tmp/pbroot/permbench/
ln -s $repo/permbench/core /tmp/pbroot/permbench/core
for d in harness orderings datasets; do ln -s $repo/$d /tmp/pbroot/permbench/$d; done
export PYTHONPATH=/tmp/pbroot:/tmp/site LD_LIBRARY_PATH=/tmp/debroot/usr/lib/x86_64-linux-gnu PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=16 NUMBA_NUM_THREADS=16 NUMBA_CACHE_DIR=/tmp/nbcache
for c in "$@"; do eval "python3 -P .gpu-wheels/meta/$c" 2>&1 | grep -v -i warn; done
