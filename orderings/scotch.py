"""Scotch nested dissection (``SCOTCH_graphOrder``) through scotchpy, which bundles libscotch 7.

Scotch is the other nested-dissection library that direct solvers ship with (MUMPS, PaStiX). The
``scotchpy64`` wheel (64-bit integers) bundles its own ``libscotch.so.7.0.16``; the version in the
rows comes from that library (``SCOTCH_version``).

What was measured about the bundled build (scotchpy64 1.0.2, on this project's 2-core machine):

* It is built with POSIX threads: a Scotch context given N threads (``SCOTCH_contextThreadSpawn``)
  starts N - 1 worker threads, and a 300x300 grid orders in 0.27 s with 2 threads vs 0.38-0.53 s
  with 1. Without an explicit context Scotch picks its own count (``SCOTCH_PTHREAD_NUMBER`` or
  every core it may run on), so the ordering always binds the graph to a context with the cell's
  thread budget.
* With the context's ``deterministic`` option the permutation is the same from call to call for a
  given seed and thread count (it differs between 1 and 2 threads); without it, two calls with two
  threads gave different permutations. The option is always set here, hence ``deterministic``.
* The permutation is ``peritab`` (new -> old, the harness's convention); ``permtab`` is its inverse.
* ``Context.random_seed`` in the binding reads the return value of a C function declared ``void``
  (and raises at random), so the seed is set with a direct call.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata

import numpy as np

from ..core.case import Ordering
from . import OrderingBase, register

INSTALL_HINT = "pip install scotchpy64==1.0.2 (manylinux x86_64 wheels; a default dependency there)"
#: strategy parameter -> the SCOTCH_STRAT* flag of SCOTCH_stratGraphOrderBuild (scotch.h).
STRATEGY_FLAGS = {"default": 0x0, "quality": 0x1, "speed": 0x2, "balance": 0x4, "safety": 0x8}
_OPTION_DETERMINISTIC = 0  # SCOTCH_OPTIONNUMDETERMINISTIC in scotch.h


@functools.lru_cache(maxsize=1)
def import_scotchpy():
    """Import scotchpy, or raise ImportError saying what is missing (it raises plain Exceptions
    when its bundled libraries are absent and LibraryError when libscotch is too old)."""
    try:
        import scotchpy
    except ImportError as err:
        raise ImportError(f"scotchpy not installed ({INSTALL_HINT}): {err}") from err
    except Exception as err:  # noqa: BLE001 - scotchpy's own checks raise bare Exception
        raise ImportError(f"scotchpy installed but its Scotch library does not load: {err}") from err
    return scotchpy


def scotch_version() -> str:
    """Version of the libscotch that scotchpy loaded, from SCOTCH_version: '7.0.16'."""
    return ".".join(map(str, import_scotchpy().version()))


def _seed_context(scotchpy, context, seed: int) -> None:
    libscotch = scotchpy.common.libscotch
    libscotch.SCOTCH_contextRandomSeed.restype = None  # void in scotch.h
    libscotch.SCOTCH_contextRandomSeed(context._contextptr, scotchpy.common.proper_int(seed))


@register
class Scotch(OrderingBase):
    name = "scotch"
    version = "1"
    description = "Scotch 7 nested dissection (SCOTCH_graphOrder) via scotchpy"
    requires = ("scotchpy",)
    params = {
        # default: Scotch's own ordering strategy (an empty SCOTCH_Strat); quality, speed, balance,
        # safety: the strategy SCOTCH_stratGraphOrderBuild makes for that flag.
        "strategy": "default",
        # Imbalance ratio of the separators, for the built strategies (SCOTCH_stratGraphOrderBuild).
        "balance": 0.2,
        # Seed of the context's own random generator (the same permutation for the same seed and
        # thread count).
        "seed": 0,
    }
    choices = {"strategy": tuple(STRATEGY_FLAGS)}

    importer = staticmethod(import_scotchpy)  # its ImportError names what to install

    def library_versions(self):
        return {"scotchpy": importlib.metadata.version("scotchpy64"), "scotch": scotch_version()}

    def strat(self, scotchpy):
        strat = scotchpy.Strat()
        if self.p["strategy"] != "default":
            # levlnbr is only read with the LEVELMIN/LEVELMAX flags, which are not set.
            strat.graph_order_build(STRATEGY_FLAGS[self.p["strategy"]], 0, self.p["balance"])
        return strat

    def compute(self, graph, *, coords=None, seed=0, threads=1):
        scotchpy = import_scotchpy()
        n = graph.shape[0]
        if ctypes.sizeof(scotchpy.common.proper_int) != 8:
            raise RuntimeError("scotch: this scotchpy uses 32-bit integers; install scotchpy64")
        source = scotchpy.Graph()
        # The graph keeps pointers to these arrays: they must outlive the ordering call.
        verttab = np.ascontiguousarray(graph.indptr, dtype=np.int64)
        edgetab = np.ascontiguousarray(graph.indices, dtype=np.int64)
        source.build(verttab=verttab, edgetab=edgetab)  # base 0, from verttab[0]; no edge weights
        context = scotchpy.Context()
        context.option_set_num(_OPTION_DETERMINISTIC, 1)
        # A generator of its own: on the library's global one, each call continues where the
        # last stopped and the same graph gets another permutation (measured).
        context.random_clone()
        _seed_context(scotchpy, context, self.p["seed"])
        context.thread_spawn(max(1, threads), None)
        bound = scotchpy.Graph(init=False)
        context.bind_graph(source, bound)
        permtab = np.empty(n, dtype=np.int64)
        peritab = np.empty(n, dtype=np.int64)
        bound.order(strat=self.strat(scotchpy), permtab=permtab, peritab=peritab)
        bound.exit()
        context.exit()
        return Ordering(peritab, stats={"threads": max(1, threads), "strategy": self.p["strategy"]})
