import sys, time, numpy as np, scipy.sparse as sp
from permbench.datasets import load
from permbench.core.case import symmetric_graph
from permbench.orderings import create
import permbench.orderings.patch.local as L
from permbench.harness.backends.symbolic import symbolic_factor
k = 256
T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
W = symmetric_graph((sp.kronsum(T, T) + sp.identity(k * k)).tocsr())
o = create("patch"); o.warm_up(W, threads=2)
vals = [int(v) for v in sys.argv[1].split(",")]
for name in sys.argv[2:]:
    G = symmetric_graph(load(name).A)
    res = {v: [] for v in vals}; loc = {v: [] for v in vals}; nn = {v: [] for v in vals}
    for rep in range(9):
        for v in vals:
            L.SUBTREE_MIN = v
            t = time.perf_counter(); r = o.compute(G, seed=rep % 5, threads=2); res[v].append(time.perf_counter() - t); loc[v].append(r.stats['t_local_s'])
            if rep < 5: nn[v].append(symbolic_factor(G, r.perm).nnz_L)
    b = np.median(nn[vals[0]])
    print(name, G.shape[0], " | ".join(f"{v}: {np.median(res[v])*1e3:.1f}ms local {np.median(loc[v])*1e3:.1f} nnz x{np.median(nn[v])/b:.4f}" for v in vals), flush=True)
