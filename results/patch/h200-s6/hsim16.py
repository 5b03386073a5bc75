# The harness's sequence in one process (its warm-up, then compute + symbolic per repeat) against
# compute alone, 16 threads
import sys, time, json, numpy as np, scipy.sparse as sp
from permbench.datasets import load
from permbench.core.case import symmetric_graph, MatrixCase
from permbench.orderings import create
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.harness.child import _warm_up
TH = 16
o = create("patch")
t = time.perf_counter()
_warm_up(o, MatrixCase(name="x", A=sp.identity(3, format="csr"), meta={}), lambda *_: None, threads=TH)
print("warm-up", round(time.perf_counter() - t, 2), flush=True)
for name in sys.argv[1:]:
    G = symmetric_graph(load(name).A)
    for mode in ("symb", "plain", "symb", "plain"):
        ts, ph = [], []
        for rep in range(5):
            t = time.perf_counter(); r = o.compute(G, seed=rep, threads=TH); ts.append(time.perf_counter() - t)
            ph.append((r.stats["t_decompose_s"], r.stats["t_local_s"]))
            if mode == "symb":
                symbolic_factor(G, r.perm)
        print(name, mode, [round(x * 1e3) for x in ts], "median", round(np.median(ts) * 1e3, 1), "dec/local",
              [round(float(np.median([p[i] for p in ph])) * 1e3, 1) for i in range(2)], flush=True)
