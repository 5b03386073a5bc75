"""One self-contained HTML page from result files: a sortable table (median [min–max] per metric,
with units), status counts and every non-ok reason, the figures (inlined as base64 PNG), and the
provenance. Nothing is fetched when the page opens: no network, no external script or style.

The page's script sorts the table when a column header is clicked. When it has run, it writes the
number of table rows into ``<body data-rows=…>`` and the ``#js-status`` element; a JavaScript error
writes ``#js-error`` instead. The headless-browser test (tests/test_html_report.py) reads both.

Entry point: :func:`write_html_report`.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from .results import read_results

KEYS = ["dataset", "ordering", "backend"]

#: (column, header, unit) of the table, in order; columns absent from the results are left out.
METRICS = [
    ("n", "n", ""), ("nnz_L", "nnz(L)", ""), ("flops", "flops", "flop"), ("fill_ratio", "fill", "×"),
    ("t_graph_s", "graph", "s"), ("t_order_s", "order", "s"), ("t_tree_s", "tree", "s"),
    ("t_analyze_s", "analyze", "s"), ("t_factor_s", "factor", "s"), ("t_solve_s", "solve", "s"),
    ("t_total_s", "total", "s"), ("t_total_k_s", "total, k factorizations", "s"), ("residual", "residual", ""),
]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
table.sortable th { cursor: pointer; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
td.name { text-align: left; } td.bad { color: #b00; }
.range { color: #777; } img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 11px; }
#js-error { color: #b00; font-weight: bold; }
"""

#: Sorting by a header click; cells carry their sort key in data-v (numbers sort as numbers).
SCRIPT = """
window.addEventListener("error", function (e) {
  var p = document.createElement("p"); p.id = "js-error";
  p.textContent = "JavaScript error: " + e.message; document.body.prepend(p);
});
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("results");
  var body = table.tBodies[0];
  function key(row, i) {
    var v = row.cells[i].getAttribute("data-v");
    if (v === null || v === "") return null;
    var x = Number(v); return isNaN(x) ? v : x;
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, i), y = key(b, i);
        if (x === y) return 0; if (x === null) return 1; if (y === null) return -1;
        return (x < y ? -1 : 1) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.body.setAttribute("data-rows", String(body.rows.length));
  document.getElementById("js-status").textContent = "table ready: " + body.rows.length + " rows";
});
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float, unit: str, column: str) -> str:
    if column in ("n", "nnz_L"):
        return f"{int(round(value)):,}"
    return f"{value:.3g}"


def cell_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, ordering, back-end): statuses, repeats, and per metric the median, min
    and max over its ok repeats."""
    rows = []
    metrics = [m for m, _, _ in METRICS if m in frame.columns and pd.to_numeric(frame[m], errors="coerce").notna().any()]
    for key, cell in frame.groupby(KEYS, sort=True):
        ok = cell[cell["status"] == "ok"]
        row = dict(zip(KEYS, key), status=",".join(sorted(set(cell["status"]))), repeats=len(cell))
        for metric in metrics:
            values = pd.to_numeric(ok[metric], errors="coerce").dropna() if len(ok) else pd.Series(dtype=float)
            row[metric] = (float(values.median()), float(values.min()), float(values.max())) if len(values) else None
        rows.append(row)
    return pd.DataFrame(rows, columns=KEYS + ["status", "repeats"] + metrics)


def _table_html(cells: pd.DataFrame) -> str:
    metrics = [(m, h, u) for m, h, u in METRICS if m in cells.columns]
    head = ["dataset", "ordering", "back-end", "status", "repeats"] + [f"{h} [{u}]" if u else h for _, h, u in metrics]
    out = ['<table id="results" class="sortable"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in cells.to_dict("records"):
        out.append("<tr>")
        for key in KEYS:
            out.append(f'<td class="name" data-v="{_e(row[key])}">{_e(row[key])}</td>')
        bad = "" if row["status"] == "ok" else " bad"
        out.append(f'<td class="name{bad}" data-v="{_e(row["status"])}">{_e(row["status"])}</td>')
        out.append(f'<td data-v="{row["repeats"]}">{row["repeats"]}</td>')
        for metric, _, unit in metrics:
            value = row[metric]
            if value is None or (isinstance(value, float) and value != value):
                out.append('<td data-v="">–</td>')
                continue
            med, lo, hi = value
            spread = "" if lo == hi else f' <span class="range">[{_fmt(lo, unit, metric)}–{_fmt(hi, unit, metric)}]</span>'
            out.append(f'<td data-v="{med!r}">{_fmt(med, unit, metric)}{spread}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _status_html(frame: pd.DataFrame) -> str:
    counts = frame.groupby("status").agg(rows=("status", "size")).join(
        frame.drop_duplicates(KEYS + ["status"]).groupby("status").agg(cells=("status", "size")))
    out = ["<table><thead><tr><th>status</th><th>rows</th><th>cells</th></tr></thead><tbody>"]
    for status, r in counts.iterrows():
        out.append(f'<tr><td class="name">{_e(status)}</td><td>{r["rows"]}</td><td>{r["cells"]}</td></tr>')
    out.append("</tbody></table>")
    bad = frame[frame["status"] != "ok"]
    if len(bad):
        reasons = bad.assign(reason=bad["reason"].fillna("").astype(str)) \
            .groupby(KEYS + ["status", "reason"], sort=True).size().reset_index(name="rows")
        out.append(f"<h3>Every non-ok reason ({len(reasons)})</h3><table><thead><tr><th>dataset</th><th>ordering</th>"
                   "<th>back-end</th><th>status</th><th>rows</th><th>reason</th></tr></thead><tbody>")
        for r in reasons.to_dict("records"):
            out.append("<tr>" + "".join(f'<td class="name">{_e(r[k])}</td>' for k in KEYS + ["status"])
                       + f'<td>{r["rows"]}</td><td class="name" style="white-space:normal">{_e(r["reason"])}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append("<p>Every row is ok.</p>")
    return "".join(out)


def _distinct(frame: pd.DataFrame, column: str) -> str:
    if column not in frame.columns:
        return "–"
    values = sorted({str(v) for v in frame[column].dropna()})
    return ", ".join(values) if values else "–"


def _gpus(frame: pd.DataFrame) -> str:
    gpus = set()
    for text in frame["backend_extras"].dropna() if "backend_extras" in frame.columns else []:
        try:
            gpu = json.loads(text).get("gpu")
        except (ValueError, AttributeError):
            continue
        if gpu:
            gpus.add(str(gpu))
    return ", ".join(sorted(gpus)) or "none used"


def _blas(provenance: dict) -> str:
    pools = provenance.get("blas", {}).get("threadpools", [])
    seen = sorted({f"{p.get('internal_api')} {p.get('version', '')} ({p.get('threading_layer', '')})".strip()
                   for p in pools if p.get("internal_api") != "openmp"})
    return ", ".join(seen) or "–"


def _provenance_html(frame: pd.DataFrame, provenances: list[tuple[str, dict]]) -> str:
    out = []
    for path, prov in provenances:
        git = prov.get("git", {}) if isinstance(prov.get("git"), dict) else {}
        facts = [
            ("result file", path),
            ("permbench", prov.get("permbench", "–")),
            ("git commit", f"{git.get('commit', '–')}{' (uncommitted changes)' if git.get('dirty') else ''}"),
            ("per-row commits", _distinct(frame[frame["result_file"] == path], "git_commit")),
            ("python", prov.get("python", "–")), ("platform", prov.get("platform", "–")),
            ("CPU", f"{prov.get('cpu', '–')}, {prov.get('cpu_count', '–')} CPUs"),
            ("memory", f"{prov['memory_bytes'] / 2**30:.1f} GiB" if prov.get("memory_bytes") else "–"),
            ("GPU", _gpus(frame[frame["result_file"] == path])),
            ("threads per child", _distinct(frame[frame["result_file"] == path], "threads")),
            ("BLAS", _blas(prov)),
            ("packages", ", ".join(f"{k} {v}" for k, v in sorted(prov.get("packages", {}).items())) or "–"),
            ("libraries", ", ".join(f"{k} {v}" for k, v in sorted(prov.get("libraries", {}).items())) or "–"),
        ]
        if prov.get("relabelled"):
            facts.append(("relabelled", json.dumps(prov["relabelled"], sort_keys=True)))
        out.append(f"<h3>{_e(path)}</h3><table>")
        out += [f'<tr><th style="text-align:left">{_e(k)}</th><td class="name" style="white-space:normal">{_e(v)}</td></tr>'
                for k, v in facts]
        out.append("</table><details><summary>full provenance (JSON)</summary><pre>"
                   + _e(json.dumps(prov, indent=1, sort_keys=True, default=str)) + "</pre></details>")
    return "".join(out)


def _figure_html(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(path.stem)}</figcaption></figure>")


def write_html_report(results_files, out_path, figures: list[Path] = ()) -> Path:
    """Write ``out_path`` (report.html) from the result files and the PNG figures already drawn."""
    frames, provenances = [], []
    for path in results_files:
        frame, prov = read_results(path)
        frames.append(frame.assign(result_file=str(path)))
        provenances.append((str(path), prov))
    frame = pd.concat(frames, ignore_index=True)
    if "reason" not in frame.columns:  # tolerate files written without it
        frame["reason"] = ""
    cells = cell_table(frame)
    title = "permbench report: " + ", ".join(str(p) for p in results_files)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p id="js-status">table not ready (the page\'s script did not run)</p>',
        f"<p>{len(frame)} rows, {len(cells)} cells (dataset × ordering × back-end). Values: median over the ok "
        "repeats, [min–max] where they differ. Click a column header to sort.</p>",
        "<h2>Status</h2>", _status_html(frame),
        "<h2>Results</h2>", _table_html(cells),
        "<h2>Figures</h2>", "".join(_figure_html(Path(f)) for f in figures if str(f).endswith(".png"))
        or "<p>No figures (no ok rows to plot).</p>",
        "<h2>Provenance</h2>", _provenance_html(frame, provenances),
    ]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head>"
            f"<body>{''.join(body)}</body></html>\n")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path
