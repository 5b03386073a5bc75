"""``patch``: the patch-based nested-dissection ordering, the project's centrepiece.

Split the vertices into small connected patches, bisect the quotient graph of patches level by
level with METIS, shrink every cut to a minimum vertex cover on the fine graph (optionally refined
by the smallest separator of a band around it, found by maximum flow, and by FM moves), and order
the tree's nodes with CAMD. Kernels, one
file per step:

* :mod:`.patcher` — step 0, patches (``bfs`` sweep, ``lloyd`` compact cells, ``spatial`` Morton
  runs, ``metis`` k-way);
* :mod:`.quotient` — step 1, the quotient graph and the inter-patch fine edges;
* :mod:`.decompose`, :mod:`.subtrees`, :mod:`.separators`, :mod:`.matching`, :mod:`.refine`,
  :mod:`.band`, :mod:`.flow`, :mod:`.metis_sep` — step 2, the tree: top levels level by level, then one task
  per subtree;
* :mod:`.local`, :mod:`.camd`, :mod:`.blocks` — step 3, orderings inside the tree nodes;
* :mod:`.assembly` — step 4, the postorder / reverse-BFS layouts and the ND tree (``Ordering.nd_tree``);
* :mod:`.pipeline` — :func:`patch_order`, all of it timed phase by phase.

Threads. ``compute(..., threads=N)`` runs the independent work on N threads (:mod:`.pool`): the
inter-patch edges of the quotient graph (pieces of the vertices), the METIS bisections and the FM passes
of one tree level (runs of nodes, each run one compiled loop that holds no GIL: METIS is called
through each library instance's function pointer), the band separators of one level (one compiled
maximum-flow call per node, which holds no GIL), the level's per-edge passes (runs of edges, as
numba ``parallel`` kernels over fixed pieces; see :meth:`.pool.Pool.compiled` for the threading
layer) and the local step (one CAMD call per subtree). Every parallel step hands out calls that
depend only on their own inputs and reads the results in a fixed order, and METIS calls running at
once each use their own instance of the library (METIS draws from libc's ``rand()``; see
:mod:`.metis_sep`), so the permutation for a given seed is the same for every N (the per-edge
kernels cut the edges into the same 64 pieces for any N and write each piece's results at offsets
fixed before they run). Patch growth and the rest of the per-level bookkeeping (compiled, linear in
the level's patches and edges) stay serial, as do the METIS calls of the top levels (one node, two
nodes, ...).

``subtree_tasks=true`` (off by default) builds only the top levels (down to nodes of about 64k
vertices: 4 levels at 1M) level by level and decomposes every subtree below them as one task of
its own on the pool, bookkeeping included (:mod:`.subtrees`; same permutation for any N, fill
within 0.002 %). Measured on the H200 host at 16 threads, same process, two alternating rounds of
medians of 5 (results/patch/ab-h200-subtree-tasks.txt): 1M grid 0.652/0.626 s against 0.600/0.608 s level by
level, 2.25M grid 1.318/1.265 s against 1.058/1.026 s — slower, because each task's level loop is
Python holding the GIL; on 2 cores at 2 threads it was 5-16 % faster. Hence off.

``Ordering.stats`` has ``threads_used``, the phase times ``t_patch_s``, ``t_quotient_s``,
``t_decompose_s``, ``t_local_s``, ``t_assemble_s``, and inside the decomposition ``t_top_s``,
``t_subtrees_s``, ``split_level`` and ``subtree_tasks``.

Adaptive rule (no fixed cost on small inputs), from n and the mean degree d = nnz(graph) / n:

* tree depth L = min(nd_levels, floor(log2 #patches), floor(log2(n / leaf))) with
  leaf = leaf_size * clamp(6 / d, 1/4, 1), leaf_size halved on the direct route (inputs up to
  4096 vertices, below): leaves of about 2048 vertices on a triangle mesh (d = 6), about 945 on a
  tetrahedral grid (d = 13), so 250k vertices get 6 levels, 50k get 4, 3k get 1 (leaves of
  1024), and a graph of fewer than 2 * leaf vertices none (then the ordering is one CAMD call with
  one set, i.e. minimum degree: the cost of AMD). Fewer levels cost fewer METIS calls and FM
  passes, and CAMD on mid-sized leaves nearly matches what deeper dissection would give; the
  small dense matrices of the direct route keep leaves of 1024 (the measurements for both are at
  :data:`.pipeline.DIRECT_LEAF_DIVISOR`). The cap
  nd_levels = 8 (``quality``: 9) stops the depth at 8 from about 500k vertices on (leaves of 4k
  at 1M): each level costs about 20 ms at 16 threads whatever its size (1M grid, H200 host, one
  call: 0.214-0.252 s with 8 levels or fewer against 0.259-0.278 s with 9), for +1.2 % nnz(L) and
  +1.3 % flops at 1M (2-core machine);
* the local step (``camd-subtrees``) orders the subtrees below level
  s = min(local_split, L, floor(log2(n / 8192))) one CAMD call each (32 subtrees at 1M, 16 at
  250k, 2 at 16k-32k, 1 call — the whole graph — below 16k vertices, where more calls only add
  fixed cost);
* separators (``separator=auto``, the default): METIS's vertex separator on each node's real
  subgraph up to 4096 vertices (:data:`.pipeline.AUTO_DIRECT_MAX_N`), the quotient separator
  with band refinement above. The small SuiteSparse matrices are dense (mean degree 10-45, against
  6-14 on meshes), so a band of a patch radius covers the whole graph and refining it cost more
  than METIS's own nested dissection (bcsstk27: 18 ms against 5 ms); the direct call changes
  nnz(L) there by -2 % to +7 % (msc01440: 0.98x -> 1.04x METIS), within the quality targets. Inputs above 4096 vertices get the same permutation as before;
* threads: a tree of fewer than 3 levels (:data:`.pipeline.POOL_MIN_LEVELS`; at most 3 METIS
  calls of about 1 ms) is built without a thread pool, since starting the threads cost more than
  they saved; ``threads_used`` is then 1;
* refinement: band refinement on the top ``band_levels`` levels and ``refine`` FM passes on the
  levels below, both scaled by the patch radius in hops (:func:`.band.patch_radius`), so their
  cost follows the separators' size, not n. The band's separator is the smallest one in the band
  (``band_method=flow``: a maximum flow, exact; ``metis``: METIS's separator of the band graph, the
  former default, kept to measure the trade-off). FM after a flow separator is skipped: it is
  already the band's smallest, and the fill was the same without it.

``local=camd`` keeps the former single whole-graph CAMD call (serial; never cheaper than AMD) so
the trade-off stays measurable; on the inputs measured the two give the same fill.

Presets name whole settings (``patch[preset=fast]``); a parameter given explicitly overrides its
preset's value. See :data:`PRESETS`.
"""

from __future__ import annotations

from ...core.case import MatrixCase, Ordering
from ...core.provenance import library_file_version
from ...core.libversions import pymetis_metis_version, suitesparse_library_version
from .. import OrderingBase, register
from .assembly import LAYOUTS
from .local import LOCAL_METHODS
from .band import BAND_METHODS
from .pipeline import AUTO_DIRECT_MAX_N, BISECTIONS, PATCHERS, SEPARATORS, patch_order
from .pool import every_pass_in_pieces

#: Settings behind each preset; ``default`` is the class defaults below.
#:
#: * ``fast``: 512-vertex patches, no fine-level refinement, AMD inside each block.
#: * ``default``: 64-vertex patches, the smallest separator of a band around the separators of the
#:   top 4 levels, one FM pass on the levels below, at most 8 levels, CAMD per subtree.
#: * ``quality``: default with band refinement on every level, up to 9 levels and leaves of 1024.
#:
#: Each preset's time and fill, measured in one run with every peer: results/patch/README.md.
PRESETS: dict[str, dict] = {
    "default": {},
    "fast": {"patch_size": 512, "band": 0.0, "refine": 0, "local": "amd"},
    "quality": {"band_levels": 99, "nd_levels": 9, "leaf_size": 1024},
}


@register
class Patch(OrderingBase):
    name = "patch"
    version = "1"
    description = "patch-based nested dissection: METIS on a quotient graph of patches, CAMD per subtree, parallel"
    requires = ("pymetis", "numba")
    provides_nd_tree = True
    # 65,536 vertices: the quotient route with 5 levels (the band levels and one FM level below
    # them; leaves of 2048) on the thread pool, so the warm-up runs the kernels a large input runs;
    # at 48 x 48 they compiled or loaded inside the first timed repeat (0.1-0.2 s at 1M on the H200
    # host; 20 s on a machine with no numba cache yet). See warm_up for the rest.
    warmup_grid = 256
    params = {
        "preset": "default",
        "patch_size": 64,  # vertices per patch (at most, for bfs)
        "nd_levels": 8,  # tree depth L = min(nd_levels, floor(log2 #patches), floor(log2(n / leaf_size)))
        "leaf_size": 2048,  # smallest average leaf (half on the direct route): fewer levels on small inputs
        "patcher": "bfs",
        "separator": "auto",  # direct METIS separators up to AUTO_DIRECT_MAX_N vertices, quotient above
        "bisection": "rb",
        "trials": 1,  # METIS bisections per node on the root level (halved per level)
        "band": 1.0,  # band half-width in patch radii (0: no band refinement)
        "band_levels": 4,  # levels (from the root) that get band refinement
        "band_method": "flow",  # the band's smallest separator by maximum flow, or METIS's (metis)
        "refine": 1,  # FM passes per level
        "local": "camd-subtrees",
        "local_split": 5,  # camd-subtrees: subtrees below this level are ordered one per call
        "amd_threshold": 1024,  # for local=amd-threshold
        "layout": "postorder",
        "subtree_tasks": False,  # subtrees below ~64k-vertex nodes as independent tasks (orderings/patch/subtrees.py)
    }
    choices = {
        "preset": tuple(PRESETS),
        "patcher": PATCHERS,
        "separator": SEPARATORS,
        "bisection": tuple(BISECTIONS),
        "band_method": BAND_METHODS,
        "local": LOCAL_METHODS,
        "layout": LAYOUTS,
    }

    def __init__(self, target: str | None = None, **params):
        super().__init__(target, **params)
        self._given = set(params) - {"preset"}

    def settings(self) -> dict:
        """The effective settings: class defaults, then the preset, then explicit parameters."""
        out = {k: v for k, v in self.params.items() if k != "preset"}
        out.update(PRESETS[self.p["preset"]])
        out.update({k: self.p[k] for k in self._given})
        return out

    @property
    def spec(self):
        """Canonical spec: the preset (if not default) plus the settings that differ from it."""
        from ...core.specs import Spec

        base = {k: v for k, v in self.params.items() if k != "preset"}
        base.update(PRESETS[self.p["preset"]])
        changed = {k: v for k, v in self.settings().items() if v != base[k]}
        if self.p["preset"] != "default":
            changed["preset"] = self.p["preset"]
        return Spec(self.name, changed, self.target)

    @classmethod
    def check(cls):
        from ...core.native_io import library_status
        from ..amd import _libamd
        from .camd import _libcamd
        from .metis_sep import _libmetis

        for loader in (_libamd, _libcamd, _libmetis):
            ok, reason = library_status(loader)
            if not ok:
                return False, reason
        return True, ""

    def supports(self, case: MatrixCase) -> tuple[bool, str]:
        if self.settings()["patcher"] == "spatial":
            if case.coords is None:
                return False, "patcher=spatial needs vertex coordinates; this dataset has none"
            if len(case.coords) != case.n:
                return False, (f"patcher=spatial needs one coordinate row per unknown; the dataset has "
                               f"{len(case.coords)} rows for {case.n} unknowns")
        return True, ""

    def library_versions(self):
        import pymetis

        from .camd import _libcamd
        from .metis_sep import _libmetis
        from ..amd import _libamd

        _libamd(), _libcamd(), _libmetis()
        return {
            "pymetis": pymetis.version,
            "metis": pymetis_metis_version(),
            "metis_system": library_file_version("libmetis") or "unknown",  # METIS has no version call
            "amd": suitesparse_library_version("amd"),
            "camd": suitesparse_library_version("camd"),
        }

    def warm_up(self, graph, *, coords=None, threads=1) -> Ordering:
        # Passes below PASS_MIN_SIZE run serially (each kernel's serial entry point), larger ones
        # in pieces (its parallel one): the grid is ordered both ways, or the other entry point
        # would first load or compile inside a timed repeat (orderings/patch/pool.py; 12 ms each
        # for two passes on a 30k mesh). Then a corner of the grid small enough for the direct
        # route (METIS's separators on the real graph, the route up to AUTO_DIRECT_MAX_N vertices).
        ordering = super().warm_up(graph, coords=coords, threads=threads)
        with every_pass_in_pieces():
            super().warm_up(graph, coords=coords, threads=threads)
        k = min(graph.shape[0], AUTO_DIRECT_MAX_N // 2)
        super().warm_up(graph[:k, :k], coords=None if coords is None else coords[:k], threads=threads)
        return ordering

    def compute(self, graph, *, coords=None, seed=0, threads=1) -> Ordering:
        s = self.settings()
        return patch_order(
            graph, coords,
            patch_size=s["patch_size"], nd_levels=s["nd_levels"], leaf_size=s["leaf_size"], patcher=s["patcher"],
            separator=s["separator"], bisection=s["bisection"], trials=s["trials"], band=s["band"],
            band_levels=s["band_levels"], band_method=s["band_method"], refine=s["refine"], local=s["local"],
            local_split=s["local_split"], amd_threshold=s["amd_threshold"], layout=s["layout"], seed=seed,
            threads=threads, subtree_tasks=s["subtree_tasks"],
        )
