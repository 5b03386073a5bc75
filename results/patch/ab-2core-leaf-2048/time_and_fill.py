# median in-process time (2 threads, 7 reps, seeds vary) of variants, interleaved per input
import sys, time, numpy as np, scipy.sparse as sp
from permbench.datasets import load
from permbench.core.case import symmetric_graph
from permbench.orderings import create
from permbench.harness.backends.symbolic import symbolic_factor
import pandas as pd
d = pd.read_parquet("/work/main/results/patch/patch-2core.parquet"); d = d[d.status == "ok"]
met = d[d.ordering == "metis"].groupby("dataset")[["nnz_L", "flops","t_order_s"]].median()
k = 192
T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
W = symmetric_graph((sp.kronsum(T, T) + sp.identity(k * k)).tocsr())
variants = sys.argv[1].split(";")
os_ = [create(v) for v in variants]
for o in os_: o.warm_up(W, threads=2)
for name in sys.argv[2:]:
    G = symmetric_graph(load(name).A)
    ts = {v: [] for v in variants}; nn = {v: [] for v in variants}
    for rep in range(7):
        for v, o in zip(variants, os_):
            t = time.perf_counter(); r = o.compute(G, seed=rep % 5, threads=2); ts[v].append(time.perf_counter() - t)
            if rep < 3: nn[v].append(symbolic_factor(G, r.perm).nnz_L)
    print(name, G.shape[0], " | ".join(f"{v}: {np.median(ts[v])*1000:.1f}ms nnz {np.median(nn[v])/met.loc[name,'nnz_L']:.3f}" for v in variants), f"| metis {met.loc[name,'t_order_s']*1000:.0f}ms", flush=True)
