#!/bin/bash
# In-process timing of patch at 16 threads, the tree of e4927b9 (.gpu-wheels/wt-e49) against this
# one, alternating processes: bash .gpu-wheels/meta/oldnew.sh DATASET ROUNDS
repo=$PWD
mk() {  # $1 = root of the sources, $2 = import root
  rm -rf $2 && mkdir -p $2/permbench && cp $1/permbench/*.py $2/permbench/
  ln -s $1/permbench/core $2/permbench/core
  for d in harness orderings datasets; do ln -s $1/$d $2/permbench/$d; done
}
mk $repo /tmp/pbnew; mk $repo/.gpu-wheels/wt-e49 /tmp/pbold
export LD_LIBRARY_PATH=/tmp/debroot/usr/lib/x86_64-linux-gnu PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=16 NUMBA_NUM_THREADS=16
for r in $(seq ${2:-2}); do
  for v in old new; do
    PYTHONPATH=/tmp/pb$v:/tmp/site python3 -P - "$1" $v <<'PY' 2>&1 | grep -v -i warn
import sys, time, numpy as np, scipy.sparse as sp
from permbench.datasets import load
from permbench.core.case import symmetric_graph, MatrixCase
from permbench.orderings import create
from permbench.harness.child import _warm_up
o = create("patch")
_warm_up(o, MatrixCase(name="x", A=sp.identity(3, format="csr"), meta={}), lambda *_: None, threads=16)
G = symmetric_graph(load(sys.argv[1]).A)
ts, dec = [], []
for rep in range(7):
    t = time.perf_counter(); r = o.compute(G, seed=rep % 5, threads=16); ts.append(time.perf_counter() - t); dec.append(r.stats["t_decompose_s"])
print(sys.argv[2], sys.argv[1], "median", round(np.median(ts) * 1e3, 1), "ms", [round(x * 1e3) for x in ts], "decompose", round(np.median(dec) * 1e3, 1))
PY
  done
done
