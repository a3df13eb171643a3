"""The SQL that sqlml's table functions become: PREDICT's subquery and its output columns
(by task), METRICS(MODEL m) and FEATURE_RANKING(MODEL m).

>>> output_names({"task": "clustering"})
['cluster', 'distance', 'model_version']
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from sqlml import sql_scoring
from sqlml.catalog import Catalog, ModelVersion
from sqlml.dialect import Sqlml
from sqlml.features import FeatureSpec, quote
from sqlml.metrics import for_task as metrics_for_task
from sqlml.transform import expression


def metrics_log_columns(task: str) -> list[tuple[str, str]]:
    """The columns of METRICS(MODEL m) for a task, in order."""
    names = [("window_start", "TIMESTAMP"), ("window_end", "TIMESTAMP"), ("version", "BIGINT"), ("role", "VARCHAR"),
             ("rows", "BIGINT"), ("rows_unscored", "BIGINT")]  # fmt: skip
    names += [(m.name, "DOUBLE") for m in metrics_for_task(task)]
    return [*names, ("error", "VARCHAR"), ("created_at", "TIMESTAMP")]


def metrics_log_sql(catalog: Catalog, model: ModelVersion) -> str:
    """A query over the model's metrics log (JSON lines), in window order."""
    columns = metrics_log_columns(model.meta["task"])
    path = catalog.metrics_path(model.name)
    if not path.exists():
        return "SELECT " + ", ".join(f"NULL::{t} AS {n}" for n, t in columns) + " WHERE false"
    spec = "{" + ", ".join(f"{n}: '{t}'" for n, t in columns) + "}"
    where = str(path).replace("'", "''")
    names = ", ".join(n for n, _ in columns)
    # a restarted run may log a window again: the latest row per (window, role, version) stands
    return (
        f"SELECT {names} FROM read_json('{where}', format = 'newline_delimited', columns = {spec}) "
        "QUALIFY row_number() OVER (PARTITION BY window_start, window_end, role, version, "
        "CASE WHEN role = 'evaluate' THEN created_at END ORDER BY created_at DESC) = 1 "
        "ORDER BY window_end NULLS LAST, created_at"
    )


RANKING_COLUMNS = (("feature", "VARCHAR"), ("column", "VARCHAR"), ("method", "VARCHAR"), ("score", "DOUBLE"),
                   ("rank", "BIGINT"), ("kept", "BOOLEAN"))  # fmt: skip


def ranking_sql(model: ModelVersion) -> str:
    """FEATURE_RANKING(MODEL m): every input ranked by the TRAIN's feature_selection, best
    first; a model without it lists its text buckets ranked by the text featurizer's test
    (the kept ones only: the others were never stored). Scores are the method's own
    (chi2, F, or LightGBM gain)."""
    meta = model.meta
    rows: list[tuple[Any, ...]] = []
    selected = meta.get("selection")
    if selected:
        rows = [(r["feature"], r["column"], selected["method"], r["score"], r["rank"], r["kept"])
                for r in selected["ranking"]]  # fmt: skip
    else:
        for spec in (FeatureSpec(**f) for f in meta["features"]):
            if spec.kind == "text" and spec.text:
                rows += [
                    (n, spec.name, spec.text["method"], score, 0, True)
                    for n, score in zip(spec.inputs(), spec.text["scores"])
                ]
        order = sorted(range(len(rows)), key=lambda i: -(rows[i][3] if rows[i][3] is not None else -1.0))
        rows = [(*rows[i][:4], rank, True) for rank, i in enumerate(order, 1)]
    typed = ", ".join(f"CAST(NULL AS {t}) AS {quote(n)}" for n, t in RANKING_COLUMNS)
    if not rows:
        return f"SELECT {typed} WHERE false"
    values = ", ".join("(" + ", ".join("NULL" if v is None else sql_literal(v) for v in row) + ")" for row in rows)
    names = ", ".join(quote(n) for n, _ in RANKING_COLUMNS)
    casts = ", ".join(f"CAST({quote(n)} AS {t}) AS {quote(n)}" for n, t in RANKING_COLUMNS)
    return f'SELECT {casts} FROM (VALUES {values}) AS __sqlml_ranking({names}) ORDER BY "rank"'


def ctes_in_scope(node: exp.Expr) -> str:
    """The WITH clause of every query around `node`, outermost first, as one clause: the CTEs
    it can see (inside a CTE, only those before it)."""
    ctes: list[exp.Expr] = []
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            index = next(i for i, e in enumerate(parent.expressions) if e is child)
            ctes = list(parent.expressions[:index]) + ctes
        elif isinstance(parent.args.get("with_"), exp.With) and parent.args["with_"] is not child:
            ctes = list(parent.args["with_"].expressions) + ctes
        child, parent = parent, parent.parent
    return exp.With(expressions=ctes).sql(dialect=Sqlml) if ctes else ""


def sql_literal(value: Any) -> str:
    """A Python label value as a DuckDB literal."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def output_columns(meta: dict[str, Any], score: str, threshold: float | None = None) -> list[str]:
    """PREDICT's output columns as SQL over the scoring function's result `score`.

    Classes are attached here, in SQL, so DuckDB computes only the columns a query uses. A
    model with an embedding returns it after its scores, in one list.
    """
    task, width = meta["task"], score_width(meta)
    embedding = meta.get("embedding")
    columns = []
    if embedding:
        columns.append(
            f"CAST(list_slice({score}, {width + 1}, {width + embedding}) AS DOUBLE[{embedding}]) AS embedding"
        )
        score = f"{score}[1]" if width == 1 else f"list_slice({score}, 1, {width})"
    if task == "clustering":
        return [f"CAST({score}[1] AS INTEGER) AS cluster", f"{score}[2] AS distance", *columns]
    if task == "decomposition":
        return [f"CAST({score} AS DOUBLE[{width}]) AS components", *columns]
    if task not in ("binary", "multiclass"):
        return [f"{score} AS prediction", *columns]
    return _class_columns(meta, score, threshold) + columns


def _class_columns(meta: dict[str, Any], score: str, threshold: float | None) -> list[str]:
    label_type = meta["label_type"]
    classes = f"[{', '.join(sql_literal(c) for c in meta['classes'])}]::{label_type}[]"
    if meta["task"] == "binary":
        first, second = (sql_literal(c) for c in meta["classes"])
        cut = repr(float(0.5 if threshold is None else threshold))
        return [
            f"CAST(CASE WHEN {score} > {cut} THEN {second} ELSE {first} END AS {label_type}) AS prediction",
            f"{score} AS probability",
            f"MAP({classes}, [1 - {score}, {score}]) AS probabilities",
        ]
    return [
        f"list_extract({classes}, list_position({score}, list_max({score}))) AS prediction",
        f"list_max({score}) AS probability",
        f"MAP({classes}, {score}) AS probabilities",
    ]


def output_names(meta: dict[str, Any]) -> list[str]:
    """The columns PREDICT adds for this model."""
    names = {"clustering": ["cluster", "distance"], "decomposition": ["components"]}.get(
        meta["task"], ["prediction", "probability", "probabilities"] if meta["task"] in ("binary", "multiclass")
        else ["prediction"]
    )  # fmt: skip
    return [*names, *(["embedding"] if meta.get("embedding") else []), "model_version"]


THREADS = "CAST(current_setting('threads') AS INTEGER)"  # DuckDB's threads, for a scorer that splits its rows


def predict_sql(
    udf: str | None, model: ModelVersion, source_sql: str, inputs: list[str], time: str | None = None,
    threshold: float | None = None, explain: str | None = None, style: str = "sqlml",
) -> tuple[str, list[tuple[str, str]]]:  # fmt: skip
    """The subquery a PREDICT call becomes: input columns plus the model's output columns,
    which replace input columns of the same names (a table of earlier scores, say).
    Also returns each function call with a typed NULL of its result type, to describe the
    query before the functions exist.

    With `time` (a stream's event time), the function also takes each event's time and returns
    a STRUCT(score, version): the version that was serving at that time scores it. With
    `explain` (the explanation function's name), the rows also get their attributions;
    `style = "bigquery"` names and orders the columns as BigQuery ML's ML.PREDICT does.
    With no `udf`, the score is computed in SQL (see sqlml.sql_scoring).
    """
    args = ", ".join(
        f"{quote(f['name'])} := CAST({expression(model.meta, f['name'])} AS {FeatureSpec(**f).fetch_type})"
        for f in model.meta["features"]
    )
    call = f"{udf}(struct_pack({args}), {THREADS})"
    score, version, result_type = '"__sqlml_score"', str(model.version), output_type(model.meta)
    if time is not None:
        call = f"{udf}(struct_pack({args}), epoch_us({quote(time)}))"
        score, version = '"__sqlml_score".score', '"__sqlml_score".version'
        result_type = f"STRUCT(score {result_type}, version BIGINT)"
    added = [*output_columns(model.meta, score, threshold), f"{version} AS model_version"]
    names = output_names(model.meta)
    explained = '"__sqlml_explained"'
    if explain is not None:
        added += [f"{explained}.attributions AS attributions", f"{explained}.baseline AS baseline",
                  f"{explained}.raw_score AS raw_score"]  # fmt: skip
        names += ["attributions", "baseline", "raw_score"]
    if style == "bigquery":
        added, names = bigquery_columns(model.meta, score, threshold, explained if explain else None)
    outputs_ = {n.lower() for n in names} - {f["name"].lower() for f in model.meta["features"]}
    replaced = [quote(c) for c in inputs if c.lower() in outputs_]
    source = f"SELECT * EXCLUDE ({', '.join(replaced)}) FROM ({source_sql})" if replaced else source_sql
    hidden = '"__sqlml_score"' + (f", {explained}" if explain else "")
    stand_ins = [(call, f"CAST(NULL AS {result_type})")]
    explain_call = ""
    if explain:
        stand_ins.append((f"{explain}(struct_pack({args}))", f"CAST(NULL AS {EXPLANATION_TYPE})"))
        explain_call = f", {stand_ins[-1][0]} AS {explained}"
    inner = f'SELECT *, {call} AS "__sqlml_score"{explain_call} FROM ({source}) AS __sqlml_input'
    steps = sql_scoring.layers(model.meta) if udf is None else None
    if steps is not None:  # each step's columns read the ones before; all but the score are dropped with it
        inner, names = sql_scoring.scored_sql(steps, source)
        hidden, stand_ins = ", ".join(names), []
    if style == "bigquery":
        sql = f"(SELECT {', '.join(added)}, * EXCLUDE ({hidden}) FROM ({inner}))"
    else:
        sql = f"(SELECT * EXCLUDE ({hidden}), {', '.join(added)} FROM ({inner}))"
    return sql, stand_ins


EXPLANATION_TYPE = (
    "STRUCT(attributions STRUCT(feature VARCHAR, attribution DOUBLE)[], baseline DOUBLE, raw_score DOUBLE)"
)


def bigquery_columns(
    meta: dict[str, Any], score: str, threshold: float | None, explained: str | None
) -> tuple[list[str], list[str]]:
    """BigQuery ML's ML.PREDICT (or ML.EXPLAIN_PREDICT) output columns over the score, and their names."""
    task, label = meta["task"], meta.get("label") or "label"
    predicted = quote(f"predicted_{label}")
    if task == "clustering":
        columns = [f"CAST({score}[1] AS BIGINT) AS CENTROID_ID",
                   f"[{{'CENTROID_ID': CAST({score}[1] AS BIGINT), 'DISTANCE': {score}[2]}}] AS NEAREST_CENTROIDS_DISTANCE"]  # fmt: skip
    elif task == "decomposition":
        columns = [f"{score}[{i}] AS principal_component_{i}" for i in range(1, int(meta["components"]) + 1)]
    elif task in ("binary", "multiclass"):
        label_type = meta["label_type"]
        classes = f"[{', '.join(sql_literal(c) for c in meta['classes'])}]::{label_type}[]"
        probs = f"[1 - {score}, {score}]" if task == "binary" else score
        own = _class_columns(meta, score, threshold)
        columns = [
            own[0].replace(" AS prediction", f" AS {predicted}"),
            f"list_transform(list_zip({classes}, {probs}), lambda x: {{'label': x[1], 'prob': x[2]}}) AS {quote(f'predicted_{label}_probs')}",
        ]
        if explained is not None:
            columns = [columns[0], own[1].replace(" AS probability", " AS probability")]
            if task == "binary":  # the probability of the predicted class
                cut = repr(float(0.5 if threshold is None else threshold))
                columns[1] = f"CASE WHEN {score} > {cut} THEN {score} ELSE 1 - {score} END AS probability"
    else:
        columns = [f"{score} AS {predicted}"]
    if explained is not None:
        columns += [
            f"{explained}.attributions AS top_feature_attributions",
            f"{explained}.baseline AS baseline_prediction_value",
            f"{explained}.raw_score AS prediction_value",
            "0.0 AS approximation_error",
        ]
    names = [c.rsplit(" AS ", 1)[1].strip('"') for c in columns]
    return columns, names


def score_width(meta: dict[str, Any]) -> int:
    """How many numbers a model's score has per row: 1 (binary, regression, ranking), the
    classes (multiclass), 2 (clustering: cluster and distance) or the components."""
    task = meta["task"]
    if task == "multiclass":
        return len(meta["classes"])
    if task == "clustering":
        return 2
    if task == "decomposition":
        return int(meta["components"])
    return 1


def output_type(meta: dict[str, Any]) -> str:
    """The DuckDB type of the scoring function's result: the raw score, or a list (class
    probabilities, cluster and distance, components; an embedding after them). Classes are
    attached in SQL (see output_columns)."""
    listed = score_width(meta) > 1 or meta.get("task") in ("multiclass", "decomposition") or meta.get("embedding")
    return "DOUBLE[]" if listed else "DOUBLE"
