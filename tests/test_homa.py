"""The ``homa`` entry: the C++ reference ordering (homapy) behind the common ordering protocol.

Tests that call the reference skip cleanly where homapy cannot be imported; the availability
messages and the log parsing are tested everywhere.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

from permbench import orderings
from permbench.datasets.grid import grid_faces
from permbench.harness.backends.symbolic import symbolic_factor
from permbench.core.case import MatrixCase, inverse_perm, symmetric_graph, validate_perm
from permbench.orderings import homa


def tri_grid_graph(k: int) -> sp.csr_matrix:
    """Graph of a k×k triangulated grid (one diagonal per square), as the harness builds it."""
    F = grid_faces(k, k)
    rows = np.concatenate([F[:, 0], F[:, 1], F[:, 2]])
    cols = np.concatenate([F[:, 1], F[:, 2], F[:, 0]])
    A = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(k * k, k * k))
    return symmetric_graph(A)


def nd_violations(graph: sp.csr_matrix, perm: np.ndarray, sizes: np.ndarray) -> int:
    """Edges joining two ND-tree nodes of which neither is an ancestor of the other.

    ``sizes`` are node sizes in reverse breadth-first order (block b of ``perm`` is node
    len(sizes)-1-b of the complete binary tree whose node t has children 2t+1, 2t+2). In a valid
    nested dissection every edge stays within a node or between a node and one of its ancestors.
    """
    n_nodes = sizes.shape[0]
    node = np.empty(graph.shape[0], dtype=np.int64)
    node[perm] = np.repeat(n_nodes - 1 - np.arange(n_nodes), sizes)
    C = graph.tocoo()
    a, b = node[C.row], node[C.col]
    deep, shallow = np.maximum(a, b), np.minimum(a, b)  # a larger id is never shallower
    depth = lambda t: np.floor(np.log2(t + 1)).astype(np.int64)  # noqa: E731
    ancestor = ((deep + 1) >> (depth(deep) - depth(shallow))) - 1
    return int((ancestor != shallow).sum())


@pytest.fixture(scope="module")
def reference():
    ok, reason = homa.Homa.available()
    if not ok:
        pytest.skip(f"homa unavailable: {reason}")


@pytest.fixture(scope="module")
def grid60():
    return tri_grid_graph(60)


# --------------------------------------------------------------------------------------------------
# Without homapy
# --------------------------------------------------------------------------------------------------


def run_fresh(script: str) -> list[str]:
    """Run ``script`` in a fresh interpreter (nothing loaded yet) and return its output lines."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_registered_and_importable_without_homapy():
    lines = run_fresh("""
        import sys
        sys.modules["homapy"] = None  # `import homapy` now fails as if it were not installed
        from permbench import orderings
        print("homa" in orderings.registry.names())
        ok, reason = orderings.registry.get("homa").available()
        print(ok)
        print(reason)
    """)
    assert lines == ["True", "False", "homapy not installed (pip install 'permbench[reference]')"]


def test_reason_names_missing_cuda_runtime():
    """In a fresh interpreter where the nvidia-*-cu12 libraries cannot be found, the reason lists them."""
    if importlib.util.find_spec("homapy") is None:
        pytest.skip("homapy not installed")
    ok, reason = run_fresh("""
        from permbench.orderings import homa
        homa._find_lib = lambda package, soname: "/nonexistent/" + soname
        ok, reason = homa.Homa.available()
        print(ok)
        print(reason)
    """)
    if ok == "True":
        pytest.skip("a system-wide CUDA 12 runtime satisfies homapy here")
    assert reason.startswith("homapy installed but its CUDA 12 runtime libraries are missing: libcudart.so.12, ")
    assert "libcusolver.so.11" in reason and "permbench[reference]" in reason


def test_cholmod_and_threadpoolctl_still_work_after_importing_homapy():
    """homapy's own import puts its MKL in the global namespace, where CHOLMOD's BLAS calls reach it,
    and its MKL aborts the process at its first call once GNU OpenMP (CHOLMOD's) is loaded."""
    if importlib.util.find_spec("homapy") is None or importlib.util.find_spec("sksparse") is None:
        pytest.skip("needs homapy and scikit-sparse")
    lines = run_fresh("""
        import scipy.sparse as sp
        from permbench.orderings import homa
        print(homa.Homa.available()[0])
        from sksparse.cholmod import cholesky
        T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(60, 60))
        A = (sp.kronsum(T, T) + sp.identity(3600)).tocsc()
        factor = cholesky(A, mode="supernodal", ordering_method="natural")
        print(abs(factor(A @ (b := A[:, 0].toarray().ravel())) - b).max() < 1e-8)
        from threadpoolctl import threadpool_info
        blas = {p["internal_api"]: p["filepath"] for p in threadpool_info() if p["user_api"] == "blas"}
        print("mkl" in blas and "openblas" in blas)
    """)
    assert lines == ["True", "True", "True"]


REFERENCE_LOG = """\
[2026-11-21 04:52:21.934] [info] HOMA patcher: using GreedyPatcher
[2026-11-21 04:52:21.936] [info] GreedyPatcher: use_parallel= false, n=10000 patch_size=512 patches=20 time=2.006 ms
[2026-11-21 04:52:21.936] [info] The final number of levels is: 4
[2026-11-21 04:52:21.941] [info] HOMA CPU ordering timing: total=4.107 ms quotient=0.114 ms decompose=1.431 ms local=2.553 ms assemble=0.009 ms
[2026-11-21 04:52:21.941] [info] HOMA CPU ordering timing: quotient compact=0.007 ms patch_nodes=0.033 ms adjacency=0.072 ms csr=0.001 ms patches=20 q_edges=90
[2026-11-21 04:52:21.941] [info] HOMA CPU ordering timing: decompose partition_sum=0.742 ms separator_sum=0.538 ms bookkeeping_sum=0.134 ms nodes=31 separator_vertices=774
[2026-11-21 04:52:21.941] [info] HOMA CPU ordering timing: local subgraphs=0.296 ms local_order_sum=2.254 ms blocks=31
[2026-11-21 04:52:21.941] [info] HOMA CPU ordering timing: compute_ordering total=6.269 ms patcher=2.083 ms cpu_ordering=4.131 ms etree_reorder=0.000 ms
"""


def test_parse_log_reads_the_reference_statistics():
    stats = homa.parse_log(REFERENCE_LOG)
    assert stats == pytest.approx({
        "n_patches": 20, "parallel_patcher": False, "levels": 4, "separator_vertices": 774, "quotient_edges": 90,
        "t_patch_s": 2.083e-3, "t_quotient_s": 0.114e-3, "t_decompose_s": 1.431e-3, "t_local_s": 2.553e-3,
        "t_assemble_s": 0.009e-3, "t_etree_s": 0.0, "t_reference_total_s": 6.269e-3,
    })
    metis_patcher = "[info] MetisPatcher: n=10000 -> 20 patches, objval=123"
    assert homa.parse_log(metis_patcher) == {"n_patches": 20}
    assert homa.parse_log("") == {}


def test_supports_refuses_what_the_reference_cannot_do(monkeypatch):
    diagonal = MatrixCase("diag", sp.identity(5, format="csr"))
    ok, reason = orderings.create("homa").supports(diagonal)
    assert not ok and "without off-diagonal entries" in reason

    grid = MatrixCase("grid", tri_grid_graph(5) + sp.identity(25, format="csr"))
    assert orderings.create("homa").supports(grid) == (True, "")
    monkeypatch.setattr(homa, "cuda_device_count", lambda: 0)
    ok, reason = orderings.create("homa[patch_method=lloyd]").supports(grid)
    assert not ok and "GPU" in reason


# --------------------------------------------------------------------------------------------------
# With homapy
# --------------------------------------------------------------------------------------------------


def test_valid_perm_and_nd_tree_on_grid(reference, grid60):
    n = grid60.shape[0]
    result = orderings.create("homa").compute(grid60)
    validate_perm(result.perm, n, "homa")
    assert result.nd_tree is not None and result.nd_tree.layout == "reverse_bfs"
    tree = result.nd_tree.sizes
    assert tree.sum() == n and (tree >= 0).all()
    levels = result.nd_tree.levels
    assert tree.shape[0] == 2 ** (levels + 1) - 1 and levels >= 3  # 3600 vertices / 512 -> 8 patches -> 3 levels
    assert result.stats["levels"] == levels
    assert nd_violations(grid60, result.perm, tree) == 0
    assert tree[-1] > 0  # the root separator comes last


def test_permutation_is_new_to_old(reference, grid60):
    perm = orderings.create("homa").compute(grid60).perm
    nnz = symbolic_factor(grid60, perm).nnz_L
    assert nnz < symbolic_factor(grid60, inverse_perm(perm)).nnz_L / 2
    random = np.random.default_rng(0).permutation(grid60.shape[0])
    assert nnz < symbolic_factor(grid60, random).nnz_L / 4


def test_parameters_reach_the_reference(reference, grid60):
    base = orderings.create("homa").compute(grid60, threads=1)
    small = orderings.create("homa[patch_size=128]").compute(grid60, threads=1)
    assert small.stats["n_patches"] > base.stats["n_patches"]
    assert small.stats["levels"] > base.stats["levels"]

    identity_blocks = orderings.create("homa[local_method=none]").compute(grid60, threads=1)
    assert symbolic_factor(grid60, identity_blocks.perm).nnz_L > symbolic_factor(grid60, base.perm).nnz_L

    direct = orderings.create("homa[separator_method=direct]").compute(grid60, threads=1)
    assert not np.array_equal(direct.perm, base.perm)

    no_tree = orderings.create("homa[compute_etree=false]").compute(grid60, threads=1)
    assert no_tree.nd_tree is None
    # Same blocks in postorder instead of reverse-BFS order: a different perm, the same fill.
    assert not np.array_equal(no_tree.perm, base.perm)
    assert symbolic_factor(grid60, no_tree.perm).nnz_L == symbolic_factor(grid60, base.perm).nnz_L


def test_threads_are_set_for_the_call_and_restored(reference, grid60):
    import homapy

    omp = homa._openmp(homapy.__file__)
    before = omp.omp_get_max_threads()
    target = 1 if before != 1 else 2
    result = orderings.create("homa").compute(grid60, threads=target)
    assert result.stats["threads"] == target
    assert omp.omp_get_max_threads() == before
    assert orderings.create("homa").compute(grid60).stats["threads"] == 1  # the default budget


def test_one_thread_is_deterministic(reference):
    # 90k vertices: large enough that two threads switch the reference to its racy parallel patcher.
    graph = tri_grid_graph(300)
    first = orderings.create("homa").compute(graph, threads=1)
    second = orderings.create("homa").compute(graph, threads=1)
    assert first.stats["parallel_patcher"] is False
    assert np.array_equal(first.perm, second.perm) and np.array_equal(first.nd_tree.sizes, second.nd_tree.sizes)


def test_log_is_captured_not_printed(reference, grid60, capfd):
    print("before", flush=True)
    result = orderings.create("homa").compute(grid60)
    print("after", flush=True)
    out = capfd.readouterr().out
    assert out == "before\nafter\n"
    assert result.stats["n_patches"] >= 8 and result.stats["separator_vertices"] > 0


def test_graph_without_edges_raises(reference):
    with pytest.raises(ValueError, match="without off-diagonal entries"):
        orderings.create("homa").compute(sp.csr_matrix((4, 4)))


def test_small_graph_is_one_leaf(reference):
    graph = tri_grid_graph(10)  # 100 vertices < patch_size: one patch, no dissection
    result = orderings.create("homa").compute(graph)
    assert result.nd_tree.sizes.tolist() == [100] and result.stats["levels"] == 0
    validate_perm(result.perm, 100)


def test_disconnected_mesh_from_shared_data(reference, shared_data_dir):
    from permbench.datasets import load

    path = shared_data_dir / "meshes" / "ogre.obj"  # 62,194 vertices in 44 components
    if not path.exists():
        pytest.skip(f"{path} is not present")
    graph = symmetric_graph(load(f"file:{path}[matrix=graph]").A)
    result = orderings.create("homa").compute(graph)
    n = graph.shape[0]
    validate_perm(result.perm, n, "homa")
    assert result.nd_tree.sizes.sum() == n
    assert nd_violations(graph, result.perm, result.nd_tree.sizes) == 0
    assert symbolic_factor(graph, result.perm).nnz_L < symbolic_factor(graph, inverse_perm(result.perm)).nnz_L
