# per-step wall time of the patch decomposition (main-thread calls), per level; variants
import sys, time, collections, numpy as np, scipy.sparse as sp
import permbench.orderings.patch.decompose as D
import permbench.orderings.patch.separators as S
import permbench.orderings.patch.pipeline as P
T = collections.defaultdict(float); cur = [0]
def wrap(mod, name, label=None):
    if not hasattr(mod, name): return
    f = getattr(mod, name)
    def g(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); T[(cur[0], label or name)] += time.perf_counter() - t; return r
    setattr(mod, name, g)
for name in ["_best_trial", "band_refine", "refine_level", "_group_by_node", "unique_vertices", "_node_weights", "min_vertex_cover", "cut_by_node"]:
    wrap(D, name)
wrap(S, "_level_graph", "lvlgraph")
wrap(D._State, "move_to_new_patches", "move"); wrap(D._State, "next_level", "next"); wrap(D._State, "cut_edges", "cutedges")
orig = D.bisect_patches
def cb(*a, **k):
    cur[0] = int(np.log2(a[6]))
    t = time.perf_counter(); r = orig(*a, **k); T[(cur[0], "bisect")] += time.perf_counter() - t; return r
D.bisect_patches = cb
m = int(sys.argv[1]); threads = int(sys.argv[2]); variants = sys.argv[3:] or ["{}"]
n = m*m
i = np.arange(n).reshape(m, m)
r = np.concatenate([i[:, :-1].ravel(), i[:-1, :].ravel()]); c = np.concatenate([i[:, 1:].ravel(), i[1:, :].ravel()])
A = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)); A = (A + A.T).tocsr(); A.sort_indices()
P.patch_order(A, threads=threads)
for v in variants:
    kw = eval(v)
    P.patch_order(A, threads=threads, **kw)
    tot, runs = [], []
    for rep in range(5):
        T.clear()
        t = time.perf_counter(); o = P.patch_order(A, threads=threads, seed=rep, **kw); tot.append(time.perf_counter() - t)
        runs.append((dict(T), o.stats))
    k = int(np.argsort(tot)[2]); TT, st = runs[k]
    print(f"m={m} threads {threads} {v} total median {np.median(tot):.3f} [{min(tot):.3f}-{max(tot):.3f}]", {kk: round(vv, 3) for kk, vv in st.items() if kk.startswith('t_')})
    names = sorted({kk[1] for kk in TT})
    print("level " + " ".join(f"{nm[:9]:>9}" for nm in names))
    for l in sorted({kk[0] for kk in TT}):
        print(f"{l:5d} " + " ".join(f"{TT.get((l,nm),0)*1000:9.1f}" for nm in names))
    print("sum   " + " ".join(f"{sum(vv for kk, vv in TT.items() if kk[1]==nm)*1000:9.1f}" for nm in names))
    sys.stdout.flush()
