"""The one definition of a row's totals, used by the child that measures them, by the upgrade of
stored result files, and described in README ("What a total counts"). Plain Python: the child
imports it without pandas."""

from __future__ import annotations


def totals(row: dict, native: bool) -> dict:
    """The one definition of a total (README, "What a total counts"): everything a user pays from
    the matrix as given. For a user ordering: graph build + ordering + what the back-end derives
    from it (t_tree_s) + analysis + factorization + solve. For a solver's own ordering (native)
    its phases only: it builds its graph inside them (t_graph_s is then recorded, not added).
    A phase that did not happen counts 0; a native reordering inside the analysis is NaN.
    ``t_total_k_s`` is the same with all k factorizations and solves. ``cpu_util`` is the CPU
    time of the counted phases over their wall time (a native back-end's CPU time of its
    reordering is inside that of its analysis call)."""

    def value(name):
        v = row.get(name)
        return 0.0 if v is None or v != v else float(v)

    once = ("order", "tree", "analyze") if native else ("graph", "order", "tree", "analyze")
    head = sum(value(f"t_{p}_s") for p in once)
    wall = head + value("t_factor_s") + value("t_solve_s")
    timed = [p for p in once + ("factor", "solve") if value(f"t_{p}_s") > 0 and not (native and p == "order")]
    cpu = [row.get(f"t_{p}_cpu_s") for p in timed]
    known = all(c is not None and c == c for c in cpu)
    return {"t_total_s": wall,
            "t_total_k_s": head + row.get("t_factor_sum_s", value("t_factor_s")) + row.get("t_solve_sum_s", value("t_solve_s")),
            "cpu_util": sum(cpu) / wall if wall > 0 and known else float("nan")}
