# A/B: old pool (all calls on workers, caller waits) vs new (caller takes items), alternating
import sys, time, numpy as np, scipy.sparse as sp
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from permbench.datasets import load
from permbench.core.case import symmetric_graph
from permbench.orderings import create
import permbench.orderings.patch.pool as PL
import permbench.orderings.patch.pipeline as PP
class OldPool(PL.Pool):
    def __call__(self, fn, items):
        return map(fn, items) if self.executor is None else self.executor.map(fn, items)
@contextmanager
def old_thread_pool(threads):
    if threads <= 1:
        yield PL.SERIAL; return
    with ThreadPoolExecutor(max_workers=threads) as ex:
        yield OldPool(ex, threads)
new_thread_pool = PP.thread_pool
TH = int(__import__("os").environ.get("TH", "2"))  # threads; REPS: repeats (9)
k = 192
T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
W = symmetric_graph((sp.kronsum(T, T) + sp.identity(k * k)).tocsr())
o = create("patch"); o.warm_up(W, threads=TH)
PP.thread_pool = old_thread_pool; o.warm_up(W, threads=TH)
for name in sys.argv[1:]:
    G = symmetric_graph(load(name).A)
    res = {"old": [], "new": []}; dec = {"old": [], "new": []}
    for rep in range(int(__import__("os").environ.get("REPS", "9"))):
        for v, tp in (("old", old_thread_pool), ("new", new_thread_pool)):
            PP.thread_pool = tp
            t = time.perf_counter(); r = o.compute(G, seed=rep % 5, threads=TH); res[v].append(time.perf_counter() - t)
            dec[v].append(r.stats.get('t_decompose_s', 0) + r.stats.get('t_local_s', 0))
    mo, mn = np.median(res["old"]), np.median(res["new"])
    print(f"{name} n={G.shape[0]} old {mo*1e3:.1f} ms new {mn*1e3:.1f} ms ratio {mn/mo:.3f} | decomp+local old {np.median(dec['old'])*1e3:.1f} new {np.median(dec['new'])*1e3:.1f}", flush=True)
