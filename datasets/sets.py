"""Named dataset sets, the ``--filter`` language, and what ``permbench datasets fetch|verify|info`` do per name.

Named sets stand for several datasets wherever a dataset name is accepted by ``permbench run -d``
(expanded by :func:`expand`); parameters given to a set apply to each member
(``mesh-scans[upsample=2]`` is ``mesh:ogre[upsample=2]``, ...). A set is a fixed list of names or a
filter over the SuiteSparse index or the mesh catalogue; a filter set is resolved when a run is
planned (with the index as it is then; the expanded names are what the results record).

Filter expressions (``--filter``): comparisons (``<``, ``<=``, ``==``, ``!=``, ``>=``, ``>``, chained as in
``1e4 <= n <= 1e6``), ``and``, ``or``, ``not``, parentheses, and ``field ~ 'regex'`` (case-insensitive
search); a bare field is true when it is (``spd``). Fields of the SuiteSparse index: id, name
(Group/Name), group, n, rows, cols, nnz, real, binary, nd (2D/3D problem), posdef, spd (posdef, real,
square), pattern_symmetry, numerical_symmetry, kind. Fields of the mesh catalogue: name, n,
vertices, faces, repo, source, licence, verbatim_in_mirror.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

from ..core.case import InputError
from ..core.specs import Spec, SpecError, parse_specs


class FilterError(SpecError):
    """A ``--filter`` expression that does not parse or names an unknown field."""


# ------------------------------------------------------------------------------------- filters


_COMPARE = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Eq: lambda a, b: a == b,
            ast.NotEq: lambda a, b: a != b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


def compile_filter(expr: str):
    """Parse a filter expression into a predicate over a row (dict); a bad expression is a FilterError."""
    # `kind ~ 'x'` is not Python; rewrite the ~ operator token (never one inside a string) as @.
    try:
        tokens = [(tokenize.OP, "@") if tok.type == tokenize.OP and tok.string == "~" else (tok.type, tok.string)
                  for tok in tokenize.generate_tokens(io.StringIO(expr.strip()).readline)]
        tree = ast.parse(tokenize.untokenize(tokens).strip(), mode="eval")
    except (SyntaxError, tokenize.TokenError) as err:
        raise FilterError(f"filter {expr!r} does not parse ({err.msg if isinstance(err, SyntaxError) else err}); "
                          f"expected e.g. \"spd and 1e4 <= n <= 1e6 and kind ~ 'structural|2D/3D'\"") from None

    def evaluate(node, row):
        if isinstance(node, ast.Expression):
            return evaluate(node.body, row)
        if isinstance(node, ast.BoolOp):
            values = (evaluate(v, row) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not evaluate(node.operand, row)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -evaluate(node.operand, row)
        if isinstance(node, ast.Compare):
            left = evaluate(node.left, row)
            for op, right_node in zip(node.ops, node.comparators):
                right = evaluate(right_node, row)
                if type(op) not in _COMPARE:
                    raise FilterError(f"filter {expr!r}: operator {type(op).__name__} is not supported")
                if left is None or right is None or not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            pattern = evaluate(node.right, row)
            if not isinstance(pattern, str):
                raise FilterError(f"filter {expr!r}: the right side of ~ must be a quoted regular expression")
            try:
                return re.search(pattern, str(evaluate(node.left, row)), flags=re.IGNORECASE) is not None
            except re.error as err:
                raise FilterError(f"filter {expr!r}: bad regular expression {pattern!r} ({err})") from None
        if isinstance(node, ast.Name):
            if node.id not in row:
                raise FilterError(f"filter {expr!r}: unknown field {node.id!r}; fields: {', '.join(sorted(row))}")
            return row[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return node.value
        raise FilterError(f"filter {expr!r}: {ast.unparse(node)!r} is not supported (use comparisons, "
                          f"and/or/not, field ~ 'regex', numbers and quoted strings)")

    def predicate(row: dict) -> bool:
        return bool(evaluate(tree, row))

    return predicate


def select(rows: list[dict], expr: str | None) -> list[dict]:
    if not expr:
        return list(rows)
    predicate = compile_filter(expr)
    return [row for row in rows if predicate(row)]


# ------------------------------------------------------------------------------------- sources


def suitesparse_rows(*, refresh: bool = False) -> list[dict]:
    from . import suitesparse

    return [entry.fields() for entry in suitesparse.index(refresh=refresh).values()]


def mesh_rows() -> list[dict]:
    from . import meshcorpus

    return [entry.fields() for entry in meshcorpus.catalog().values()]


# ------------------------------------------------------------------------------------ named sets


@dataclass(frozen=True)
class NamedSet:
    name: str
    description: str
    names: tuple[str, ...] = ()
    source: str | None = None  # "suitesparse" or "mesh": the rows `filter` selects from
    filter: str | None = None

    def members(self) -> list[str]:
        if self.source is None:
            return list(self.names)
        if self.source == "suitesparse":
            return [f"ss:{row['name']}" for row in select(suitesparse_rows(), self.filter)]
        return [f"mesh:{row['name']}" for row in select(mesh_rows(), self.filter)]


#: The 22 SPD matrices of ../shared/data (n = 494 to 81,920; each checked numerically SPD there).
_SS_SMALL = (
    "HB/494_bus", "HB/nos6", "HB/nos7", "HB/gr_30_30", "HB/nos3", "Boeing/msc01050", "HB/bcsstk08",
    "HB/bcsstk09", "HB/bcsstk10", "HB/1138_bus", "HB/bcsstk27", "TKK/plbuckle", "Boeing/msc01440",
    "HB/bcsstk11", "FIDAP/ex33", "HB/bcsstk14", "FIDAP/ex3", "Nasa/nasa1824", "HB/bcsstk26",
    "HB/bcsstk13", "Norris/fv1", "MaxPlanck/shallow_water1",
)

SETS = {s.name: s for s in (
    NamedSet("ss-spd-small", "the 22 small SPD matrices of the shared data (n 494 to 81,920)",
             names=tuple(f"ss:{n}" for n in _SS_SMALL)),
    NamedSet("ss-spd-mesh", "SPD structural and 2D/3D matrices with 1e4 <= n <= 1e6 (from the index)",
             source="suitesparse", filter="spd and 1e4 <= n <= 1e6 and kind ~ 'structural|2D/3D'"),
    NamedSet("ss-spd-large", "SPD matrices with 1e6 < n <= 1e7 (from the index; large downloads)",
             source="suitesparse", filter="spd and 1e6 < n <= 1e7"),
    NamedSet("mesh-corpus", "every mesh of the catalogue", source="mesh"),
    NamedSet("mesh-scans", "the catalogue's meshes with at least 40,000 vertices", source="mesh",
             filter="vertices >= 40000"),
)}


def expand(names: list[str]) -> list[str]:
    """Dataset names with every named set replaced by its members (parameters passed on to each)."""
    out: list[str] = []
    for text in names:
        head = text.split("[", 1)[0].strip()
        if head not in SETS:
            out.append(text)
            continue
        try:
            members = SETS[head].members()
        except InputError as err:  # e.g. offline without a cached index: a planning error
            raise SpecError(f"named set {head}: {err}") from None
        for spec in parse_specs(text):
            for member in members:
                base = parse_specs(member)[0]
                out.append(Spec(base.name, {**base.params, **spec.params}, base.target).canonical())
    return out


# ----------------------------------------------------------------------------- CLI per name


@dataclass(frozen=True)
class Fetched:
    name: str
    path: str
    sha256: str
    served_from: str


def fetch_names(names: list[str], *, force: bool = False, progress=None) -> list[Fetched]:
    """Fetch and verify the files behind ``ss:``/``mesh:`` names, named sets and ``ss-index``."""
    from . import fetch, meshcorpus, suitesparse

    done = []
    for text in expand(names):
        if text == suitesparse.INDEX_NAME:
            suitesparse.index(refresh=force, progress=progress)
            rel = suitesparse.INDEX_RELPATH
            done.append(Fetched(text, str(fetch.settings().cache_dir / rel), fetch.read_registry()[rel]["sha256"], "cache"))
            continue
        spec = parse_specs(text)[0]
        label = f"{spec.name}:{spec.target}"
        mirror = fetch.mirror()
        if spec.name == "ss" and spec.target:
            entry = mirror.matrix_entry(spec.target) if mirror else None
            if entry is not None and not force:
                path, digest = mirror.verified_path(entry)
                done.append(Fetched(label, str(path), digest, f"mirror:{mirror.root}"))
                continue
            path = suitesparse.fetch_matrix(spec.target, force=force, progress=progress)
            rel = suitesparse.tarball_relpath(spec.target)
        elif spec.name == "mesh" and spec.target:
            entry = mirror.mesh_entry(spec.target) if mirror else None
            if entry is not None and not force:
                path, digest = mirror.verified_path(entry)
                done.append(Fetched(label, str(path), digest, f"mirror:{mirror.root}"))
                continue
            path = meshcorpus.fetch_mesh(spec.target, force=force, progress=progress)
            rel = meshcorpus.catalog_entry(spec.target).relpath
        else:
            raise InputError(f"{text}: nothing to fetch; fetched datasets are ss:<Group>/<Name>, mesh:<name>, "
                             f"{suitesparse.INDEX_NAME} and the named sets ({', '.join(SETS)})")
        done.append(Fetched(label, str(path), fetch.read_registry()[rel]["sha256"], "cache"))
    return done


def info(name: str) -> dict:
    """What is known about one fetched dataset: its catalogue/index entry, URL, mirror and cache state."""
    from . import fetch, meshcorpus, suitesparse

    spec = parse_specs(name)[0]
    mirror = fetch.mirror()
    out: dict = {"name": f"{spec.name}:{spec.target}" if spec.target else spec.name}
    if spec.name in SETS:
        named = SETS[spec.name]
        out.update(description=named.description, filter=named.filter, members=named.members())
        return out
    if spec.name == "ss" and spec.target:
        rel = suitesparse.tarball_relpath(spec.target)
        out.update(url=suitesparse.tarball_url(spec.target), cache_file=str(fetch.settings().cache_dir / rel))
        entry = mirror.matrix_entry(spec.target) if mirror else None
        if entry is not None:
            out["mirror"] = {k: entry.get(k) for k in ("file", "n", "nnz", "kind", "sha256_gz", "repo", "path", "commit")}
        if fetch.cached(suitesparse.INDEX_RELPATH) is not None:  # info never downloads
            out["index"] = suitesparse.index_entry(spec.target).fields()
        else:
            out["index"] = f"not cached (fetch it with: permbench datasets fetch {suitesparse.INDEX_NAME})"
    elif spec.name == "mesh" and spec.target:
        entry = meshcorpus.catalog().get(spec.target)
        if entry is not None:
            rel = entry.relpath
            out.update(url=entry.url, cache_file=str(fetch.settings().cache_dir / rel),
                       catalogue={k: v for k, v in vars(entry).items() if v is not None})
        mirror_entry = mirror.mesh_entry(spec.target) if mirror else None
        if mirror_entry is not None:
            out["mirror"] = {k: mirror_entry.get(k) for k in ("file", "V", "F", "sha256", "conversion", "licence")}
        if entry is None and mirror_entry is None:
            raise InputError(f"mesh:{spec.target}: neither in the catalogue nor in a mirror")
        if entry is None:
            return out
    else:
        raise InputError(f"{name}: not a fetched dataset (ss:<Group>/<Name>, mesh:<name>) or a named set")
    state, detail = fetch.cache_status(rel)
    out["cache"] = {"state": state, "detail": detail, "record": fetch.read_registry().get(rel)}
    return out


def verify(names: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(what, state, detail) for every cached and mirror file, or for those behind ``names``."""
    from . import fetch, meshcorpus, suitesparse

    mirror = fetch.mirror()
    if not names:
        rows = [(f"cache:{rel}", state, detail) for rel, state, detail in fetch.verify_cache()]
        entries = mirror.manifest.get("meshes", []) + mirror.manifest.get("suitesparse", []) if mirror else []
        return rows + [_verify_mirror(mirror, entry) for entry in entries]
    rows = []
    recorded = fetch.read_registry()
    for text in expand(names):
        spec = parse_specs(text)[0]
        mirror_entry = None
        if text == suitesparse.INDEX_NAME:
            rel = suitesparse.INDEX_RELPATH
        elif spec.name == "ss" and spec.target:
            rel = suitesparse.tarball_relpath(spec.target)
            mirror_entry = mirror.matrix_entry(spec.target) if mirror else None
        elif spec.name == "mesh" and spec.target:
            entry = meshcorpus.catalog().get(spec.target)
            rel = entry.relpath if entry else None
            mirror_entry = mirror.mesh_entry(spec.target) if mirror else None
        else:
            raise InputError(f"{text}: not a fetched dataset (ss:<Group>/<Name>, mesh:<name>, {suitesparse.INDEX_NAME})")
        if mirror_entry is not None:
            rows.append(_verify_mirror(mirror, mirror_entry))
        if rel is not None and (rel in recorded or mirror_entry is None):
            rows += [(f"cache:{r}", state, detail) for r, state, detail in fetch.verify_cache([rel])]
    return rows


def _verify_mirror(mirror, entry: dict) -> tuple[str, str, str]:
    from . import fetch

    try:
        path, _ = mirror.verified_path(entry)
        return f"mirror:{entry['file']}", "ok", str(path)
    except fetch.FetchError as err:
        return f"mirror:{entry['file']}", "corrupt", str(err)
