"""TRANSFORM: feature SQL written once, stored with the model and applied at PREDICT and EVALUATE.

`TRAIN MODEL m ... TRANSFORM (expr AS name, ...) AS SELECT ...` (and BigQuery ML's
`CREATE MODEL m TRANSFORM (...) OPTIONS (...) AS SELECT ...`) trains on the TRANSFORM's
columns computed over the query's rows. BigQuery ML's preprocessing functions are
rewritten into plain DuckDB SQL; the analytic ones (`... OVER ()`) learn their statistics
from the training query's rows when TRAIN runs, and those statistics become literals in the
stored expressions, so PREDICT computes exactly what training saw.

>>> standard_scaler("x", 2.0, 0.5)
'((CAST(x AS DOUBLE) - 2.0) / 0.5)'
>>> bucketize("x", [1, 5])
"CASE WHEN x IS NULL THEN NULL WHEN x < 1 THEN 'bin_1' WHEN x < 5 THEN 'bin_2' ELSE 'bin_3' END"
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from sqlml.errors import ExecutionError
from sqlml.features import quote
from sqlml.literals import literal

if TYPE_CHECKING:
    from sqlml.plan import Binder

from sqlml.bigquery_sql import PREPROCESSING  # noqa: E402

ANALYTIC = PREPROCESSING[:5]  # learn statistics from the training rows: written ... OVER ()
PLAIN = PREPROCESSING[5:]
MAX_VOCABULARY = 1000  # bag-of-words and tf-idf vectors are dense here: their top_k is capped
Fetch = Callable[[str], pa.Table]


@dataclass(frozen=True)
class Transform:
    """A TRANSFORM's columns: (name, expression as written in DuckDB SQL) and the query columns they read."""

    items: tuple[tuple[str, str], ...]
    inputs: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.items]


def _sql(node: exp.Expr) -> str:
    from sqlml.dialect import Sqlml

    return node.sql(dialect=Sqlml)


def _parse(sql: str) -> exp.Expr:
    """An expression from its SQL, with BigQuery ML's ML.NAME(...) calls as single function names."""
    from sqlml.dialect import Sqlml, tokenize

    text = f"SELECT {sql}"
    tree = Sqlml().parser().parse(tokenize(text), text)[0]
    assert tree is not None
    return tree.expressions[0]  # type: ignore[no-any-return]


def _fields(node: exp.Expr) -> list[exp.Expr]:
    """STRUCT(a, b)'s values (written back as {'a': a, 'b': b})."""
    return [e.expression if isinstance(e, exp.PropertyEQ) else e for e in node.expressions]


def bind_transform(binder: Binder, nodes: list[exp.Expr], columns: dict[str, Any]) -> Transform:
    """Check a TRANSFORM list against the query's columns: names, preprocessing calls and their arguments."""
    items: list[tuple[str, str]] = []
    for node in nodes:
        if isinstance(node, exp.Star):
            items += [(c, quote(c)) for c in columns]
            continue
        name = node.alias_or_name
        if not name or (not isinstance(node, (exp.Alias, exp.Column)) and not node.alias):
            raise binder.error("Name each TRANSFORM expression: expr AS name.", node)
        expression = node.this if isinstance(node, exp.Alias) else node
        for call in expression.find_all(exp.Anonymous):
            function = call.name.upper()
            if function.startswith("ML.") and function not in PREPROCESSING:
                raise binder.error(f"sqlml has no preprocessing function {function}.", call,
                                   f"TRANSFORM takes {', '.join(PREPROCESSING)}.")  # fmt: skip
            window = call.parent if isinstance(call.parent, exp.Window) else None
            if function in ANALYTIC and window is None:
                raise binder.error(f"{function} learns from the training rows: write {function}(...) OVER ().", call)
            if function in PLAIN and window is not None:
                raise binder.error(f"{function} takes no OVER clause.", call)
            if window is not None and (window.args.get("partition_by") or window.args.get("order")):
                raise binder.error(f"{function} learns over all training rows: write OVER ().", window)
            _check_arguments(binder, function, call)
        items.append((name, _sql(expression)))
    seen: set[str] = set()
    for name, _ in items:
        if name.lower() in seen:
            raise binder.error(f"TRANSFORM names '{name}' twice.", nodes[0], "Give each column its own name.")
        seen.add(name.lower())
    lower = {c.lower(): c for c in columns}
    inputs: list[str] = []
    for _, sql in items:
        for column in _parse(sql).find_all(exp.Column):
            if isinstance(column.parent, exp.Lambda) or column.name.lower() not in lower:
                continue
            if lower[column.name.lower()] not in inputs:
                inputs.append(lower[column.name.lower()])
    return Transform(tuple(items), tuple(inputs))


_ARITY = {"ML.STANDARD_SCALER": (1, 1), "ML.MIN_MAX_SCALER": (1, 1), "ML.QUANTILE_BUCKETIZE": (2, 2),
          "ML.BUCKETIZE": (2, 3), "ML.FEATURE_CROSS": (1, 2), "ML.POLYNOMIAL_EXPAND": (1, 2), "ML.NGRAMS": (2, 3),
          "ML.BAG_OF_WORDS": (1, 3), "ML.TF_IDF": (1, 3)}  # fmt: skip


def _check_arguments(binder: Binder, function: str, call: exp.Anonymous) -> None:
    low, high = _ARITY[function]
    args = call.expressions
    if not low <= len(args) <= high:
        raise binder.error(f"{function} takes {low}{'' if low == high else f' to {high}'} arguments.", call)
    constants = [literal(a) for a in args[1:]]
    if function in ("ML.FEATURE_CROSS", "ML.POLYNOMIAL_EXPAND"):
        if not isinstance(args[0], exp.Struct) or len(args[0].expressions) < 2:
            raise binder.error(f"{function} takes STRUCT(a, b, ...) of two columns or more.", args[0])
        if function == "ML.FEATURE_CROSS" and (len(args[0].expressions) != 2 or len(args) > 1):
            raise binder.error("sqlml's ML.FEATURE_CROSS crosses two columns.", call,
                               "Write one cross per pair: ML.FEATURE_CROSS(STRUCT(a, b)) AS a_b.")  # fmt: skip
        if len(args) == 2 and constants[0] not in (2, 3, 4):
            raise binder.error("ML.POLYNOMIAL_EXPAND's degree is 2, 3 or 4.", args[1])
    if function == "ML.QUANTILE_BUCKETIZE" and not (isinstance(constants[0], int) and 2 <= constants[0] <= 1000):
        raise binder.error("ML.QUANTILE_BUCKETIZE's number of buckets is a whole number from 2 to 1000.", args[1])
    if function == "ML.BUCKETIZE":
        splits = constants[0]
        if not (isinstance(splits, list) and splits and all(isinstance(v, (int, float)) for v in splits)
                and splits == sorted(splits)):  # fmt: skip
            raise binder.error("ML.BUCKETIZE's split points are a rising list of numbers.", args[1])
        if len(constants) > 1 and constants[1] is not False:
            raise binder.error("sqlml's ML.BUCKETIZE keeps its boundaries (exclude_boundaries = FALSE).", args[2])
    if function == "ML.NGRAMS":
        span = constants[0]
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)
                and 1 <= span[0] <= span[1] <= 10):  # fmt: skip
            raise binder.error("ML.NGRAMS' range is [min, max] with 1 <= min <= max <= 10.", args[1])
        if len(constants) > 1 and not isinstance(constants[1], str):
            raise binder.error("ML.NGRAMS' separator is a string.", args[2])
    if function in ("ML.BAG_OF_WORDS", "ML.TF_IDF"):
        if constants and not (isinstance(constants[0], int) and 1 <= constants[0] <= MAX_VOCABULARY):
            raise binder.error(f"{function}'s top_k is a whole number from 1 to {MAX_VOCABULARY} here "
                               "(sqlml's vectors are dense).", args[1])  # fmt: skip
        if len(constants) > 1 and not (isinstance(constants[1], int) and constants[1] >= 1):
            raise binder.error(f"{function}'s frequency_threshold is a whole number from 1.", args[2])


# -- rewrites into plain SQL --------------------------------------------------------------
def standard_scaler(x: str, mean: float, std: float) -> str:
    return f"((CAST({x} AS DOUBLE) - {mean!r}) / {std!r})" if std > 0 else f"(CAST({x} AS DOUBLE) * 0.0)"


def min_max_scaler(x: str, low: float, high: float) -> str:
    if high <= low:
        return f"(CAST({x} AS DOUBLE) * 0.0)"
    return f"greatest(0.0, least(1.0, (CAST({x} AS DOUBLE) - {low!r}) / {high - low!r}))"


def bucketize(x: str, splits: list[float]) -> str:
    cases = " ".join(f"WHEN {x} < {s!r} THEN 'bin_{i}'" for i, s in enumerate(splits, 1))
    return f"CASE WHEN {x} IS NULL THEN NULL {cases} ELSE 'bin_{len(splits) + 1}' END"


def feature_cross(a: str, b: str) -> str:
    return f"(CAST({a} AS VARCHAR) || '_' || CAST({b} AS VARCHAR))"


def polynomial_expand(columns: list[str], degree: int) -> str:
    terms = [" * ".join(f"CAST({c} AS DOUBLE)" for c in combo)
             for d in range(1, degree + 1) for combo in itertools.combinations_with_replacement(columns, d)]  # fmt: skip
    return f"CAST([{', '.join(terms)}] AS DOUBLE[{len(terms)}])"


def ngrams(tokens: str, low: int, high: int, separator: str) -> str:
    sep = "'" + separator.replace("'", "''") + "'"
    parts = [f"list_transform(range(1, len({tokens}) - {n} + 2), lambda i: array_to_string(list_slice({tokens}, i, i + {n - 1}), {sep}))"
             for n in range(low, high + 1)]  # fmt: skip
    return parts[0] if len(parts) == 1 else f"list_concat({', '.join(parts)})"


def _strings(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::VARCHAR[]"


def bag_of_words(tokens: str, vocabulary: list[str]) -> str:
    return f"CAST(list_transform({_strings(vocabulary)}, lambda v: len(list_filter({tokens}, lambda w: w = v))) AS DOUBLE[])"


def tf_idf(tokens: str, vocabulary: list[str], idf: list[float]) -> str:
    weights = "[" + ", ".join(repr(w) for w in idf) + "]::DOUBLE[]"
    return (f"CAST(list_transform(list_zip({_strings(vocabulary)}, {weights}), lambda p: "
            f"len(list_filter({tokens}, lambda w: w = p[1])) / greatest(len({tokens}), 1) * p[2]) AS DOUBLE[])")  # fmt: skip


# -- learning and applying ------------------------------------------------------------------
def _rewrite(sql: str, stats: Callable[[str, list[str], list[Any]], list[Any]] | None) -> str:
    """An item's SQL with every preprocessing call rewritten, innermost first; `stats` learns an
    analytic call's statistics (None: stand-ins of the right types, to describe the query)."""
    tree = _parse(sql)
    for call in reversed(list(tree.find_all(exp.Anonymous))):
        function = call.name.upper()
        if function not in PREPROCESSING:
            continue
        args = [_sql(a) for a in call.expressions]
        constants = [literal(a) for a in call.expressions[1:]]
        if function == "ML.BUCKETIZE":
            new = bucketize(args[0], constants[0])
        elif function == "ML.FEATURE_CROSS":
            a, b = (_sql(e) for e in _fields(call.expressions[0]))
            new = feature_cross(a, b)
        elif function == "ML.POLYNOMIAL_EXPAND":
            new = polynomial_expand([_sql(e) for e in _fields(call.expressions[0])], constants[0] if constants else 2)
        elif function == "ML.NGRAMS":
            new = ngrams(args[0], constants[0][0], constants[0][1], constants[1] if len(constants) > 1 else " ")
        else:
            learnt = stats(function, args, constants) if stats is not None else None
            new = _analytic(function, args, constants, learnt)
        target = call.parent if isinstance(call.parent, exp.Window) else call
        replacement = _parse(new)
        if target is tree:
            tree = replacement
        else:
            target.replace(replacement)
    return _sql(tree)


def _analytic(function: str, args: list[str], constants: list[Any], learnt: list[Any] | None) -> str:
    x = args[0]
    if function == "ML.STANDARD_SCALER":
        mean, std = learnt or (0.0, 1.0)
        return standard_scaler(x, mean, std)
    if function == "ML.MIN_MAX_SCALER":
        low, high = learnt or (0.0, 1.0)
        return min_max_scaler(x, low, high)
    if function == "ML.QUANTILE_BUCKETIZE":
        splits = learnt or [float(i) for i in range(constants[0] - 1)]
        return bucketize(x, splits)
    vocabulary, idf = learnt or (["_"], [1.0])
    return bag_of_words(x, vocabulary) if function == "ML.BAG_OF_WORDS" else tf_idf(x, vocabulary, idf)


def stand_in_sql(transform: Transform, source_sql: str, keep: list[str]) -> str:
    """The transformed query with stand-in statistics: its columns and types, without running it."""
    return select_sql([(n, _rewrite(s, None)) for n, s in transform.items], source_sql, keep)


def stored(transform: Transform, items: Any, labels: list[str | None]) -> dict[str, Any]:
    """What a version keeps of its TRANSFORM: the learnt items, the query columns its features
    read (`inputs`) and those its label, group and weight read (`label_inputs`)."""
    names = {n.lower() for n in labels if n}
    produced = {n.lower() for n, _ in items}
    label_inputs = _inputs(transform, [i for i in items if i[0].lower() in names])
    label_inputs += [n for n in labels if n and n.lower() not in produced and n not in label_inputs]
    return {"items": [list(i) for i in items], "inputs": _inputs(transform, [i for i in items if i[0].lower() not in names]),
            "label_inputs": label_inputs}  # fmt: skip


def _inputs(transform: Transform, items: Any) -> list[str]:
    used: list[str] = []
    for _, sql in items:
        for column in _parse(sql).find_all(exp.Column):
            match = next((c for c in transform.inputs if c.lower() == column.name.lower()), None)
            if match is not None and match not in used:
                used.append(match)
    return used


def applied_sql(meta: dict[str, Any], source_sql: str, labels: bool = True) -> str:
    """A model's input query with its stored TRANSFORM applied (the query itself when it has
    none), passing its label and group through when `labels`."""
    stored = meta.get("transform")
    if not stored:
        return source_sql
    keep = [meta.get("label") or "", meta.get("group") or ""] if labels else []
    return select_sql([(n, s) for n, s in stored["items"]], source_sql, keep)


def expression(meta: dict[str, Any], name: str) -> str:
    """The SQL a model computes its input column `name` with: its TRANSFORM expression, or the column."""
    for item, sql in (meta.get("transform") or {}).get("items", []):
        if item == name:
            return f"({sql})"
    return quote(name)


def select_sql(items: Any, source_sql: str, keep: list[str]) -> str:
    """SELECT the TRANSFORM's columns (and `keep`: a label or group it does not name) from a query."""
    names = {n.lower() for n, _ in items}
    columns = [f"{sql} AS {quote(name)}" for name, sql in items]
    columns += [quote(k) for k in keep if k and k.lower() not in names]
    return f"SELECT {', '.join(columns)} FROM ({source_sql}) AS __sqlml_raw"


def learn(transform: Transform, source_sql: str, fetch: Fetch) -> tuple[tuple[str, str], ...]:
    """The TRANSFORM's items with every analytic call's statistics learnt from the query's rows."""

    def stats(function: str, args: list[str], constants: list[Any]) -> list[Any]:
        x = args[0]
        if function in ("ML.STANDARD_SCALER", "ML.MIN_MAX_SCALER"):
            aggregate = "avg(v), stddev_samp(v)" if function == "ML.STANDARD_SCALER" else "min(v), max(v)"
            row = fetch(f"SELECT {aggregate} FROM (SELECT CAST({x} AS DOUBLE) AS v FROM ({source_sql}) AS __sqlml_raw)")
            values = [row.column(i)[0].as_py() for i in range(2)]
            if values[0] is None:
                raise ExecutionError(f"{function}({x}) has no values to learn from: every row is NULL.")
            return [float(values[0]), float(values[1] or 0.0)]
        if function == "ML.QUANTILE_BUCKETIZE":
            n = constants[0]
            points = "[" + ", ".join(repr(i / n) for i in range(1, n)) + "]"
            row = fetch(f"SELECT quantile_disc(CAST({x} AS DOUBLE), {points}) FROM ({source_sql}) AS __sqlml_raw")
            splits = row.column(0)[0].as_py()
            if splits is None:
                raise ExecutionError(f"ML.QUANTILE_BUCKETIZE({x}) has no values to learn from: every row is NULL.")
            return [float(s) for s in splits]
        top_k = constants[0] if constants else MAX_VOCABULARY
        threshold = constants[1] if len(constants) > 1 else 5
        table = fetch(
            f"WITH docs AS (SELECT row_number() OVER () AS d, CAST({x} AS VARCHAR[]) AS t FROM ({source_sql}) AS __sqlml_raw), "
            "words AS (SELECT d, unnest(t) AS w FROM docs) "
            f"SELECT w, count(DISTINCT d) AS df, (SELECT count(*) FROM docs) AS n FROM words WHERE w IS NOT NULL "
            f"GROUP BY w HAVING count(*) >= {int(threshold)} ORDER BY count(*) DESC, w LIMIT {int(top_k)}"
        )  # fmt: skip
        if table.num_rows == 0:
            raise ExecutionError(f"{function}({x}) found no token at least {threshold} times in the training rows.")
        words = [str(w) for w in table.column("w").to_pylist()]
        n = table.column("n")[0].as_py()
        idf = [math.log((1 + n) / (1 + df)) + 1 for df in table.column("df").to_pylist()]
        return [words, idf]

    return tuple((name, _rewrite(sql, stats)) for name, sql in transform.items)
