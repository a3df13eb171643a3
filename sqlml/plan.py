"""Binding: statements become plans, with every name and type checked against the catalog
and the data's schema before anything runs.

One frozen dataclass per statement kind. `bind(statement, catalog, describe)` needs only a
way to describe a query's columns (`describe(sql) -> [(name, duckdb_type)]`), so it runs
nothing and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from sqlml import ast, models, sql_scoring
from sqlml.bigquery import bind_create_model
from sqlml.catalog import Catalog, ModelVersion, check_name
from sqlml.dialect import WINDOW_KINDS, Sqlml, Statement, reparse
from sqlml.errors import BindError, SqlmlError, UnknownModelError, did_you_mean
from sqlml.features import FeatureSpec, kind_of, vector_size
from sqlml.importing import ImportModelPlan, bind_import
from sqlml.literals import interval_us
from sqlml.model_functions import ResultCall, arguments, bind_result, check_model
from sqlml.models.base import UNSUPERVISED
from sqlml.stream.binding import bind_create_stream, bind_stream_query
from sqlml.stream.runner import StreamJob
from sqlml.stream.streams import StreamDef, StreamRegistry
from sqlml.stream.window import WindowSpec, window_sql
from sqlml.table_sql import ctes_in_scope, metrics_log_sql, predict_sql, ranking_sql
from sqlml.train_options import ContinuousOptions, TrainOptions
from sqlml.transform import PREPROCESSING, Transform

Describe = Callable[[str], list[tuple[str, Any]]]
CALLS = (ast.Predict, ast.WindowTable, ast.Metrics, ast.ModelFunction)  # what binding rewrites in a query


@dataclass(frozen=True)
class SqlPlan:
    """SQL that DuckDB runs as it is (or after PREDICT calls were rewritten)."""

    sql: str
    predicts: tuple[PredictCall, ...] = ()
    results: tuple[ResultCall, ...] = ()  # result functions (EVALUATE(...), ROC_CURVE(...)) to compute first


@dataclass(frozen=True)
class PredictCall:
    """A model scoring function that the query calls, to register before it runs."""

    udf: str
    model: ModelVersion
    history: tuple[tuple[int, int], ...] = ()  # point in time: (serving from µs, version), for a stream
    explain: int | None = None  # an explanation function: the attributions kept per row


@dataclass(frozen=True)
class TrainPlan:
    name: str
    trainer: models.Trainer
    label: str | None  # None: a trainer that learns without one (kmeans, pca)
    label_type: str | None
    group: str | None
    weight: str | None
    features: tuple[FeatureSpec, ...]
    params: dict[str, Any]
    options: TrainOptions
    query: SqlPlan
    training_sql: str
    selection: tuple[str, int] | None = None  # (method, max_features): see sqlml.selection
    search: dict[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)  # tuning: see sqlml.tuning
    transform: Transform | None = None  # TRANSFORM (...): see sqlml.transform


@dataclass(frozen=True)
class ContinuousTrainPlan:
    """A TRAIN over a window function: learns window by window (see sqlml.continuous)."""

    train: TrainPlan
    job: StreamJob
    options: ContinuousOptions


@dataclass(frozen=True)
class StatementSetPlan:
    """EXECUTE STATEMENT SET: several continuous statements run together."""

    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class SkipPlan:
    """A statement with nothing to do (TRAIN IF NOT EXISTS on an existing model)."""

    message: str


@dataclass(frozen=True)
class EvaluatePlan:
    model: ModelVersion
    source: SqlPlan | None


@dataclass(frozen=True)
class ShowModelsPlan:
    pass


@dataclass(frozen=True)
class DescribeModelPlan:
    model: ModelVersion


@dataclass(frozen=True)
class ExplainModelPlan:
    model: ModelVersion


@dataclass(frozen=True)
class CreateStreamPlan:
    stream: StreamDef
    replace: bool
    exists: bool


@dataclass(frozen=True)
class DropStreamPlan:
    name: str
    exists: bool


@dataclass(frozen=True)
class StreamPlan:
    """A continuous query over a stream, and the scoring functions it calls."""

    job: StreamJob
    predicts: tuple[PredictCall, ...] = ()


@dataclass(frozen=True)
class DistributedPredictPlan:
    """COPY (SELECT * FROM PREDICT(MODEL m, 'files', distributed => true)) TO 'folder' (FORMAT parquet):
    each file scored on a worker of the session's Dask cluster into a Parquet file of the folder."""

    model: ModelVersion
    files: str
    target: str
    cluster: str


@dataclass(frozen=True)
class SetClusterPlan:
    """SET cluster / RESET cluster: the session's Dask cluster (None: none)."""

    address: str | None


@dataclass(frozen=True)
class DropModelPlan:
    name: str
    version: int | None
    exists: bool


Plan = (
    SqlPlan
    | StatementSetPlan
    | ContinuousTrainPlan
    | StreamPlan
    | CreateStreamPlan
    | DropStreamPlan
    | TrainPlan
    | SkipPlan
    | EvaluatePlan
    | ShowModelsPlan
    | DescribeModelPlan
    | ExplainModelPlan
    | DropModelPlan
    | ImportModelPlan
    | SetClusterPlan
    | DistributedPredictPlan
)


@dataclass
class Binder:
    """Binds one statement; carries what every check needs to name a position."""

    statement: Statement
    catalog: Catalog
    describe: Describe
    streams: StreamRegistry | None = None
    predicts: list[PredictCall] = field(default_factory=list)
    # scoring calls and the typed NULLs that stand in for them while a query is described,
    # since binding registers no function
    stand_ins: list[tuple[str, str]] = field(default_factory=list)
    results: list[ResultCall] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # the statement's parameters, by name
    cluster: str | None = None  # the session's Dask cluster, for TRAIN WITH (distributed = true)
    distributed: list[tuple[ast.Predict, ModelVersion]] = field(
        default_factory=list
    )  # PREDICT(..., distributed => true)

    def error(self, message: str, node: exp.Expr | None = None, hint: str | None = None) -> BindError:
        return BindError(message, self.statement.span_of(node), hint)

    # -- names --------------------------------------------------------------------
    def version(self, ref: ast.ModelRef) -> tuple[str, int | None]:
        """A model's name and the VERSION a reference names (None: none named), both checked
        against the catalog without reading the version's metadata."""
        version_node = ref.args.get("version")
        version = None
        if version_node is not None:
            given = version_node.name
            if isinstance(version_node, exp.Placeholder):
                given = str(self.params.get(version_node.name))
            if not re.fullmatch(r"[1-9][0-9]*", given):
                raise self.error(f"Bad VERSION {given}.", version_node, "Versions are whole numbers from 1.")
            version = int(given)
        try:
            name = check_name(ref.this.name)
            versions = self.catalog.versions(name)
            if not versions:
                raise UnknownModelError(f"Unknown model '{name}'.", hint=did_you_mean(name, self.catalog.names()))
            if version is not None and version not in versions:
                raise UnknownModelError(
                    f"Model '{name}' has no version {version}.",
                    hint=f"Its versions are {', '.join(map(str, versions))}.",
                )
        except SqlmlError as err:
            raise err.located(self.statement.span_of(version_node if version else ref.this))
        return name, version

    def model(self, ref: ast.ModelRef) -> ModelVersion:
        """The version a reference names: its VERSION, else the serving version of a continuously
        trained model, else the latest."""
        name, version = self.version(ref)
        named = version is not None
        try:
            if version is None:
                served = self.catalog.serving(name)
                version = served.version if served else None
            return self.catalog.get(name, version)
        except SqlmlError as err:
            raise err.located(self.statement.span_of(ref.args.get("version") if named else ref.this))

    def column(self, ident: exp.Identifier, columns: dict[str, Any], role: str) -> str:
        names = {c.lower(): c for c in columns}
        found = names.get(ident.name.lower())
        if found is None:
            hint = did_you_mean(ident.name, list(columns)) or f"The query's columns are: {', '.join(columns)}."
            raise self.error(f"Unknown {role} column '{ident.name}'.", ident, hint)
        return found

    # -- queries ------------------------------------------------------------------
    def query(self, source: ast.QuerySource, node: exp.Expr, ctes: str = "") -> tuple[SqlPlan, dict[str, Any]]:
        """The SQL to run for a query source (PREDICT calls rewritten) and its columns;
        `ctes` is a WITH clause in scope, needed to describe the source on its own."""
        tree = source.this
        if source.args.get("table") or not any(tree.find_all(*CALLS)):
            sql = source.args["text"]
        else:
            self.rewrite_all(tree)
            sql = tree.sql(dialect=Sqlml)
        return SqlPlan(sql), self.columns(f"{ctes} {sql}" if ctes else sql, node)

    def refuse_streams(self, tree: exp.Expr, node: exp.Expr) -> None:
        """A statement that reads tables (TRAIN, EVALUATE ... ON) names a stream outside a window function."""
        if self.streams is None:
            return
        for table in [tree] if isinstance(tree, exp.Table) else tree.find_all(exp.Table):
            stream = self.streams.get(table.name) if not isinstance(table.parent, ast.WindowTable) else None
            if stream is not None:
                raise self.error(
                    f"'{table.name}' is a stream: {self.statement.kind.upper()} reads it only through a window function.",
                    table,
                    f"Train window by window: ... FROM TABLE(TUMBLE(TABLE {stream.name}, DESCRIPTOR({stream.time}), "
                    "INTERVAL '1' HOUR)); or INSERT the stream INTO a table and read that.",
                )

    def described(self, sql: str, node: exp.Expr | None) -> list[tuple[str, Any]]:
        """The columns of a query, in order: (name, type)."""
        for call, stand_in in self.stand_ins:
            sql = sql.replace(call, stand_in)
        try:
            return self.describe(sql)
        except SqlmlError as err:
            raise err.located(self.statement.span_of(node))

    def columns(self, sql: str, node: exp.Expr | None) -> dict[str, Any]:
        """The columns of a query, by name; two columns of one name are an error (a feature or
        label would be ambiguous)."""
        described = self.described(sql, node)
        seen: dict[str, str] = {}
        for name, _ in described:
            if name.lower() in seen:
                raise self.error(
                    f"The query returns two columns named '{name}'.", node,
                    f"Give one of them another name: ... AS {name}_2.",
                )  # fmt: skip
            seen[name.lower()] = name
        return dict(described)

    def require_columns(
        self, model: ModelVersion, columns: dict[str, Any], node: exp.Expr, what: str, with_label: bool = False
    ) -> None:
        """Check that data has the model's features (and label, group) before it runs."""
        meta = model.meta
        lower = {c.lower() for c in columns}
        transform = meta.get("transform")
        needed = list(transform["inputs"]) if transform else [f["name"] for f in meta["features"]]
        if with_label and meta.get("label"):
            labels = [meta["label"]] + ([meta["group"]] if meta.get("group") else [])
            needed += [n for n in (transform["label_inputs"] if transform else labels) if n not in needed]
        missing = [name for name in needed if name.lower() not in lower]
        if missing:
            raise self.error(
                f"{what} lacks column(s) {', '.join(missing)} needed by model '{model.name}'.",
                node,
                f"Model '{model.name}' version {model.version} uses: {', '.join(needed)}.",
            )
        types = {c.lower(): t for c, t in columns.items()}
        for spec in (FeatureSpec(**f) for f in meta["features"] if not transform):
            given = types[spec.name.lower()]
            is_vector = kind_of(given) == "vector"
            if (spec.kind == "vector") != is_vector or (is_vector and vector_size(given) not in (0, spec.size)):
                wanted = f"a vector of {spec.size} numbers ({spec.type})" if spec.kind == "vector" else spec.type
                raise self.error(
                    f"{what} has column '{spec.name}' of type {given}, but model '{model.name}' needs {wanted}.",
                    node,
                    f"Model '{model.name}' version {model.version} was trained on {spec.name} {spec.type}.",
                )

    def rewrite_all(self, tree: exp.Expr) -> None:
        """Rewrite every window table function, then every PREDICT call, innermost first."""
        for window in reversed(list(tree.find_all(ast.WindowTable))):
            if not window.args.get("rewrite"):
                self.window(window)
        for predict in reversed(list(tree.find_all(ast.Predict))):
            if not predict.args.get("rewrite"):
                self.predict(predict)
        for log in tree.find_all(ast.Metrics):
            if not log.args.get("rewrite"):
                model = self.model(log.this)
                sql = (
                    ranking_sql(model) if isinstance(log, ast.FeatureRanking) else metrics_log_sql(self.catalog, model)
                )
                log.set("rewrite", f"({sql})")
        for call in reversed(list(tree.find_all(ast.ModelFunction))):
            if not call.args.get("rewrite"):
                bind_result(self, call)

    def sql_plan(self, sql: str) -> SqlPlan:
        """A SqlPlan for SQL this binder rewrote, with the calls to prepare before it runs."""
        return SqlPlan(sql, tuple(self.predicts), tuple(self.results))

    def window(self, node: ast.WindowTable) -> None:
        """Check a window table function over a table and rewrite it into DuckDB SQL."""
        table = node.args["table"]
        if self.streams is not None and self.streams.get(table.name):
            raise self.error(
                f"'{table.name}' is a stream, which cannot be read here.", table,
                "Read streams in SELECT, INSERT INTO ... SELECT or COPY (SELECT ...) TO statements.",
            )  # fmt: skip
        source_sql = f"SELECT * FROM {table.sql(dialect=Sqlml)}"
        spec = self.window_spec(node, self.columns(source_sql, table))
        node.set("rewrite", window_sql(spec, source_sql))

    def window_spec(self, node: ast.WindowTable, columns: dict[str, Any]) -> WindowSpec:
        """Check a window function's time column and sizes against the columns it reads."""
        kind = node.this
        time = self.column(node.args["time"], columns, "time")
        type_id = getattr(columns[time], "id", str(columns[time]).lower())
        if not type_id.startswith("timestamp"):
            raise self.error(
                f"The time column '{time}' of {kind} has type {columns[time]}; it must be a TIMESTAMP.",
                node.args["time"],
                f"Convert it in a view first, e.g. to_timestamp({time}) or make_timestamp({time} * 1000) for epoch milliseconds.",
            )
        partition = tuple(self.column(k, columns, "partition") for k in node.args.get("partition") or [])
        sizes = tuple(
            interval_us(self, size, f"{kind}'s {name}") for size, name in zip(node.args["sizes"], WINDOW_KINDS[kind])
        )
        if kind in ("HOP", "CUMULATE") and sizes[1] % sizes[0]:
            small, big = WINDOW_KINDS[kind]
            raise self.error(
                f"{kind}'s {big} must be a whole multiple of its {small}.", node.args["sizes"][1],
                f"For example {small} = INTERVAL '2' SECOND with {big} = INTERVAL '10' SECOND.",
            )  # fmt: skip
        return WindowSpec(kind, time, sizes, partition)

    def predict(self, node: ast.Predict) -> None:
        """Check a PREDICT call (or EXPLAIN_PREDICT, ML.PREDICT, ML.EXPLAIN_PREDICT) and rewrite it
        into a subquery calling the model's UDF."""
        word = node.args.get("kind") or "PREDICT"
        options = arguments(self, word, node.args.get("options"))
        model = self.model(node.this)
        check_model(self, word, model, node.this.this)
        threshold = options.get("threshold")
        if options.get("distributed"):
            from sqlml.distributed import missing

            absent = missing()
            if absent:
                raise self.error(absent, node.this.this, "Install the extra, then run the statement again.")
            source = node.args["source"]
            if not source.args.get("files"):
                raise self.error(
                    "PREDICT(..., distributed => true) scores files on the cluster's workers.", source.this,
                    "Give it the files: PREDICT(MODEL m, 'data/*.parquet', distributed => true).",
                )  # fmt: skip
            if self.cluster is None:
                raise self.error(
                    "distributed => true needs a Dask cluster, and this session has none.", node.this.this,
                    "SET cluster = 'local:2' or 'tcp://scheduler:8786'.",
                )  # fmt: skip
            self.distributed.append((node, model))
        if threshold is not None and model.meta["task"] != "binary":
            given = next(p for p in node.args["options"] if p.this.name.lower() == "threshold")
            raise self.error(
                f"threshold is for binary classifiers; model '{model.name}' is {model.meta['task']}.", given.this
            )
        source = node.args["source"]
        source_plan, columns = self.query(source, node, ctes_in_scope(node))
        self.require_columns(model, columns, node.this.this, "PREDICT's input")
        time = source.args.get("stream_time")
        history: tuple[tuple[int, int], ...] = ()
        if time is not None and not node.this.args.get("version"):
            # over a stream: each event scored by the newest version promoted at or before its time
            served = self.catalog.serving(model.name)
            kept = set(self.catalog.versions(model.name))  # a dropped version's time goes to the one before
            history = tuple((h.since_us or 0, h.version) for h in served.history if h.version in kept) if served else ()
        key = f"{model.path}:{model.meta.get('created_at')}:{history}"
        udf = f"sqlml_predict_{model.name}_{model.version}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
        explain = None
        if "EXPLAIN" in word:
            top_k = int(options.get("top_k", options.get("top_k_features", 5)))
            explain = (
                f"sqlml_explain_{model.name}_{model.version}_{top_k}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
            )
            self.predicts.append(PredictCall(explain, model, explain=top_k))
        in_sql = not history and explain is None and sql_scoring.applies(model.meta)  # no Python function
        if not in_sql:
            self.predicts.append(PredictCall(udf, model, history))
        style = "bigquery" if word.startswith("ML.") else "sqlml"
        sql, stand_ins = predict_sql(
            None if in_sql else udf, model, source_plan.sql, list(columns), time if history else None, threshold,
            explain, style,
        )  # fmt: skip
        self.stand_ins += stand_ins
        node.set("rewrite", sql)


def bind(
    statement: Statement,
    catalog: Catalog,
    describe: Describe,
    streams: StreamRegistry | None = None,
    params: dict[str, Any] | None = None,
    cluster: str | None = None,
) -> Plan:
    """The plan for one parsed statement. SQL left to DuckDB is parsed here after all when it
    names a stream (only binding knows which names are streams)."""
    if statement.children:
        return StatementSetPlan(statement.children)
    if streams is not None and statement.node is None:
        names = frozenset(streams.names())
        if names:
            statement = reparse(statement, names)
    binder = Binder(statement, catalog, describe, streams, params=params or {}, cluster=cluster)
    node = statement.node
    if node is None:
        return SqlPlan(statement.text)
    if isinstance(node, ast.CreateStream):
        return CreateStreamPlan(
            bind_create_stream(binder, node), bool(node.args.get("replace")), bool(node.args.get("exists"))
        )
    if isinstance(node, ast.DropStream):
        return DropStreamPlan(node.this.name.lower(), bool(node.args.get("exists")))
    if streams is not None and streams.names() and not isinstance(node, ast.STATEMENTS):
        if isinstance(node, (exp.Query, exp.Insert, exp.Copy)):
            job = bind_stream_query(binder, node)
            if job is not None:
                if binder.results:
                    raise binder.error(
                        f"{binder.results[0].function}(...) reads a model's results once; a continuous query cannot call it.",
                        node, "Store its rows in a table first (CREATE TABLE r AS SELECT * FROM ...), then join that.",
                    )  # fmt: skip
                return StreamPlan(job, tuple(binder.predicts))
        else:
            for table in node.find_all(exp.Table):
                if streams.get(table.name):
                    raise binder.error(
                        f"'{table.name}' is a stream, which cannot be used here.", table,
                        "Read a stream with SELECT, INSERT INTO ... SELECT or COPY (SELECT ...) TO.",
                    )  # fmt: skip
    if isinstance(node, ast.Train):
        from sqlml.train_binding import bind_train

        return bind_train(binder, node)
    if isinstance(node, ast.ImportModel):
        return bind_import(binder, node)
    if isinstance(node, ast.CreateModel):
        return bind_create_model(binder, node)
    if isinstance(node, ast.SetCluster):
        if node.this is None:
            return SetClusterPlan(None)
        from sqlml.distributed import check_address, missing

        absent = missing()
        if absent:
            raise binder.error(absent, node.this, "Install the extra, then set the cluster again.")
        try:
            return SetClusterPlan(check_address(node.this.name))
        except SqlmlError as err:
            raise err.located(statement.span_of(node.this))
    if isinstance(node, ast.Evaluate):
        model = binder.model(node.this)
        if model.meta["task"] not in UNSUPERVISED and not model.meta.get("label"):
            raise binder.error(
                f"Model '{model.name}' has no label column to be evaluated against.", node.this,
                f"It was imported without one: IMPORT MODEL {model.name} FROM '...' WITH (label = 'column', ...).",
            )  # fmt: skip
        source = None
        if node.args.get("source") is not None:
            source_node = node.args["source"]
            binder.refuse_streams(source_node.this, source_node.this)
            source, columns = binder.query(source_node, source_node.this)
            binder.require_columns(model, columns, source_node.this, "EVALUATE's ON data", with_label=True)
            source = binder.sql_plan(source.sql)
        return EvaluatePlan(model, source)
    if isinstance(node, ast.ShowModels):
        return ShowModelsPlan()
    if isinstance(node, ast.DescribeModel):
        return DescribeModelPlan(binder.model(node.this))
    if isinstance(node, ast.ExplainModel):
        return ExplainModelPlan(binder.model(node.this))
    if isinstance(node, ast.DropModel):
        ref = node.this
        exists = bool(node.args.get("exists"))
        if not exists or binder.catalog.versions(ref.name):
            name, version = binder.version(ref)  # its metadata is not read: a corrupt version drops too
            return DropModelPlan(name, version, exists)
        return DropModelPlan(ref.name, None, exists)
    for call in node.find_all(exp.Anonymous):
        if call.name.upper() in PREPROCESSING:
            raise binder.error(
                f"{call.name.upper()} is a preprocessing function of TRANSFORM (...).", call,
                "Use it in TRAIN MODEL ... TRANSFORM (...) or CREATE MODEL ... TRANSFORM (...): its statistics are "
                "learnt once and stored with the model.",
            )  # fmt: skip
    if not any(node.find_all(*CALLS)):
        return SqlPlan(statement.text)  # DuckDB SQL that only looked as if it read a stream
    # a query that calls PREDICT, a result function or a window table function
    binder.rewrite_all(node)
    if binder.distributed:
        return distributed_predict(binder, node)
    return binder.sql_plan(node.sql(dialect=Sqlml))


def distributed_predict(binder: Binder, node: exp.Expr) -> DistributedPredictPlan:
    """The one shape distributed PREDICT takes: COPY (SELECT * FROM PREDICT(...)) TO 'folder' (FORMAT parquet)."""
    predict, model = binder.distributed[0]
    query = node.this.this if isinstance(node, exp.Copy) and isinstance(node.this, exp.Subquery) else None
    params = {p.this.name.lower(): p.args.get("expression") for p in (node.args.get("params") or [])}
    fmt = params.get("format")
    shaped = (
        isinstance(query, exp.Select)
        and len(binder.distributed) == 1
        and [type(e) for e in query.expressions] == [exp.Star]
        and query.args.get("from_") is not None
        and query.args["from_"].this.this is predict
        and not any(query.args.get(k) for k in ("where", "joins", "group", "order", "limit", "having"))
        and len(node.args.get("files") or []) == 1
        and fmt is not None
        and fmt.name.lower() == "parquet"
    )
    if not shaped:
        raise binder.error(
            "PREDICT(..., distributed => true) runs as a COPY of all its rows to a folder of Parquet files.",
            predict.this.this,
            "COPY (SELECT * FROM PREDICT(MODEL m, 'data/*.parquet', distributed => true)) TO 'scored' (FORMAT parquet)",
        )  # fmt: skip
    assert binder.cluster is not None
    return DistributedPredictPlan(model, predict.args["source"].this.name, node.args["files"][0].name, binder.cluster)
