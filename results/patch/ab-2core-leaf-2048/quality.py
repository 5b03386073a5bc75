# nnz(L), flops of patch variants over the patch-2core inputs vs METIS (from the committed table)
import sys, json, numpy as np, pandas as pd
from permbench.datasets import load
from permbench.core.case import symmetric_graph
from permbench.orderings import registry
from permbench.harness.backends.symbolic import symbolic_factor
d = pd.read_parquet("/work/main/results/patch/patch-2core.parquet")
d = d[d.status == "ok"]
met = d[d.ordering == "metis"].groupby("dataset")[["nnz_L", "flops"]].median()
variants = sys.argv[1:]
rows = []
import os
sel = os.environ.get("DS")
for ds in [x for x in met.index if not sel or any(s in x for s in sel.split(","))]:
    G = symmetric_graph(load(ds).A)
    for v in variants:
        o = registry.create(v)
        nn, fl = [], []
        for seed in range(5):
            s = symbolic_factor(G, o.compute(G, seed=seed, threads=2).perm)
            nn.append(s.nnz_L); fl.append(s.flops)
        rows.append(dict(dataset=ds, variant=v, nnz=np.median(nn) / met.loc[ds, "nnz_L"], flops=np.median(fl) / met.loc[ds, "flops"]))
    print(ds, [(r["variant"], round(r["nnz"], 3), round(r["flops"], 3)) for r in rows[-len(variants):]], flush=True)
r = pd.DataFrame(rows)
g = r.groupby("variant").agg(nnz_geo=("nnz", lambda x: np.exp(np.log(x).mean())), nnz_max=("nnz", "max"),
                             fl_geo=("flops", lambda x: np.exp(np.log(x).mean())), fl_max=("flops", "max"))
print(g.round(3).to_string())
r.to_csv("/tmp/exp/quality.csv")
