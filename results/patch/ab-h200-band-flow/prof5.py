# medians of 5 of patch_order's phase times for variants: prof5.py SPEC|m THREADS "kw;switch" ...
import sys, time, numpy as np, scipy.sparse as sp
import permbench.orderings.patch.pipeline as P
def grid(m):
    n = m*m; i = np.arange(n).reshape(m, m)
    r = np.concatenate([i[:, :-1].ravel(), i[:-1, :].ravel()]); c = np.concatenate([i[:, 1:].ravel(), i[1:, :].ravel()])
    A = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)); A = (A + A.T).tocsr(); A.sort_indices(); return A
src = sys.argv[1]
if src.isdigit():
    A = grid(int(src))
else:
    from permbench.datasets import load
    from permbench.core.case import symmetric_graph
    A = symmetric_graph(load(src).A)
th = int(sys.argv[2])
P.patch_order(A, threads=th); P.patch_order(A, threads=th, subtree_tasks=True)
for v in sys.argv[3:]:
    kw, sw = v.split(";") if ";" in v else (v, "0.005")
    sys.setswitchinterval(float(sw)); kw = eval(kw)
    P.patch_order(A, threads=th, **kw)
    rows = []
    for rep in range(5):
        t = time.perf_counter(); o = P.patch_order(A, threads=th, seed=rep, **kw); w = time.perf_counter() - t
        rows.append([w] + [o.stats.get(k, 0) for k in ("t_patch_s", "t_quotient_s", "t_decompose_s", "t_top_s", "t_subtrees_s", "t_local_s", "t_assemble_s")])
    a = np.array(rows); med = np.median(a, axis=0)
    print(f"{src} th={th} {v:40s} total {med[0]:.3f} [{a[:,0].min():.3f}-{a[:,0].max():.3f}] patch {med[1]:.3f} quot {med[2]:.3f} dec {med[3]:.3f} (top {med[4]:.3f} sub {med[5]:.3f}) local {med[6]:.3f} asm {med[7]:.3f}", flush=True)
sys.setswitchinterval(0.005)
import numba; print("numba threading layer", numba.threading_layer())
