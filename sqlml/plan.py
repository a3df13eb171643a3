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

from sqlml import ast, models, text
from sqlml.catalog import Catalog, ModelVersion, check_name
from sqlml.dialect import WINDOW_KINDS, Sqlml, Statement, reparse
from sqlml.errors import BindError, SqlmlError, UnknownModelError, did_you_mean
from sqlml.features import FeatureSpec, kind_of, vector_size
from sqlml.importing import ImportModelPlan, bind_import
from sqlml.literals import interval_us, literal
from sqlml.models.base import UNSUPERVISED
from sqlml.models.onnx import IMPORTED
from sqlml.stream.binding import bind_continuous_source, bind_create_stream, bind_stream_query
from sqlml.stream.runner import StreamJob
from sqlml.stream.streams import StreamDef, StreamRegistry
from sqlml.stream.window import WindowSpec, window_sql
from sqlml.table_sql import ctes_in_scope, metrics_log_sql, predict_sql, ranking_sql
from sqlml.train_options import CHOICES, CONTINUOUS, OPTIONS, TEXT, ContinuousOptions, TrainOptions, check

Describe = Callable[[str], list[tuple[str, Any]]]

_CLASS_LABEL_TYPES = {
    "boolean", "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger",
    "ubigint", "varchar", "enum",
}  # fmt: skip


@dataclass(frozen=True)
class SqlPlan:
    """SQL that DuckDB runs as it is (or after PREDICT calls were rewritten)."""

    sql: str
    predicts: tuple[PredictCall, ...] = ()


@dataclass(frozen=True)
class PredictCall:
    """A model scoring function that the query calls, to register before it runs."""

    udf: str
    model: ModelVersion
    history: tuple[tuple[int, int], ...] = ()  # point in time: (serving from µs, version), for a stream


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
    params: dict[str, Any] = field(default_factory=dict)  # the statement's parameters, by name

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
        if source.args.get("table") or not any(tree.find_all(ast.Predict, ast.WindowTable, ast.Metrics)):
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

    def columns(self, sql: str, node: exp.Expr | None) -> dict[str, Any]:
        """The columns of a query, by name; two columns of one name are an error (a feature or
        label would be ambiguous)."""
        for call, stand_in in self.stand_ins:
            sql = sql.replace(call, stand_in)
        try:
            described = self.describe(sql)
        except SqlmlError as err:
            raise err.located(self.statement.span_of(node))
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
        needed = [f["name"] for f in meta["features"]]
        if with_label and meta.get("label"):
            needed += [meta["label"]] + ([meta["group"]] if meta.get("group") else [])
        missing = [name for name in needed if name.lower() not in lower]
        if missing:
            raise self.error(
                f"{what} lacks column(s) {', '.join(missing)} needed by model '{model.name}'.",
                node,
                f"Model '{model.name}' version {model.version} uses: {', '.join(needed)}.",
            )
        types = {c.lower(): t for c, t in columns.items()}
        for spec in (FeatureSpec(**f) for f in meta["features"]):
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
        """Check a PREDICT call and rewrite it into a subquery calling the model's UDF."""
        model = self.model(node.this)
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
        self.predicts.append(PredictCall(udf, model, history))
        sql, call, stand_in = predict_sql(udf, model, source_plan.sql, list(columns), time if history else None)
        self.stand_ins.append((call, stand_in))
        node.set("rewrite", sql)


def _train_options(binder: Binder, raw: dict[str, tuple[Any, exp.Expr]]) -> TrainOptions:
    for key, (value, node) in raw.items():
        wanted = check(key, value)
        if wanted is not None:
            choices = CHOICES.get(key)
            hint = did_you_mean(str(value), choices) if choices else None
            raise binder.error(f"Bad value {value!r} for {key}: expected {wanted}.", node, hint)
    values = {k: v for k, (v, _) in raw.items() if k in TrainOptions.__dataclass_fields__}
    if values.get("early_stopping_rounds") and values.get("validation") == 0:
        raise binder.error(
            "early_stopping_rounds needs a validation split, but validation = 0.",
            raw["validation"][1],
            "Set validation to a fraction such as 0.2, or drop early_stopping_rounds.",
        )
    return TrainOptions(**values)


def _selection(
    binder: Binder, raw: dict[str, tuple[Any, exp.Expr]], inputs: int | None, task: str
) -> tuple[str, int] | None:
    """(method, max_features) of a TRAIN's feature selection, or None; `inputs` is the number
    of model inputs when binding knows it (it does not for LIST vectors)."""
    if "max_features" not in raw:
        if "feature_selection" in raw:
            raise binder.error(
                "feature_selection needs max_features: how many inputs to keep.", raw["feature_selection"][1],
                "Add max_features = k to WITH.",
            )  # fmt: skip
        return None
    k, node = raw["max_features"]
    if inputs is not None and k > inputs:
        raise binder.error(
            f"max_features = {k} is more than the model's {inputs} inputs.", node,
            f"Set max_features to at most {inputs}, or drop feature_selection.",
        )  # fmt: skip
    method, method_node = raw.get("feature_selection", ("importance", node))
    if method == "chi2" and task not in ("classification",):
        raise binder.error(
            "feature_selection = 'chi2' ranks features for a classifier.", method_node,
            "Use 'f_test' or 'importance' for regression and ranking.",
        )  # fmt: skip
    return method, k


def bind_train(binder: Binder, node: ast.Train) -> TrainPlan | SkipPlan | ContinuousTrainPlan:
    ident = node.this
    try:
        name = check_name(ident.name)
    except SqlmlError as err:
        raise err.located(binder.statement.span_of(ident))
    if node.args.get("exists") and binder.catalog.versions(name):
        return SkipPlan(f"Model '{name}' exists; TRAIN skipped (IF NOT EXISTS).")
    trainer_ident = node.args["trainer"]
    trainer = models.get(trainer_ident.name)
    if trainer is None:
        raise binder.error(
            f"Unknown trainer '{trainer_ident.name}'.",
            trainer_ident,
            did_you_mean(trainer_ident.name.lower(), models.names()) or f"Trainers: {', '.join(models.names())}.",
        )
    missing = getattr(trainer, "missing", lambda: None)()
    if missing:
        raise binder.error(missing, trainer_ident, "Install the extra, then run the statement again.")
    raw_options: dict[str, tuple[Any, exp.Expr]] = {}
    params: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # canonical name -> how the statement spelled it
    for prop in node.args.get("params") or []:
        key, value_node = prop.this.name.lower(), prop.expression
        value = binder.params.get(value_node.name) if isinstance(value_node, exp.Placeholder) else literal(value_node)
        if value is None:
            raise binder.error(
                f"The value of {key} must be a literal.", value_node, "Write a number, 'text', TRUE or FALSE."
            )
        if key in OPTIONS:
            canonical = key
        else:
            try:
                canonical, value = trainer.check_param(key, value)
            except SqlmlError as err:
                if err.message.startswith("Unknown parameter"):
                    err.hint = did_you_mean(key, OPTIONS) or err.hint
                raise err.located(binder.statement.span_of(prop.this))
        if canonical in spelled:
            raise binder.error(
                f"Parameter '{key}' sets {canonical} again (as '{spelled[canonical]}' did).", prop.this,
                "Set each parameter once.",
            )  # fmt: skip
        spelled[canonical] = key
        if canonical in OPTIONS:
            raw_options[canonical] = (value, value_node)
        else:
            params[canonical] = value
    options = _train_options(binder, raw_options)
    _check_family(binder, node, trainer, raw_options)

    source = node.args["source"]
    job = None
    if any(source.this.find_all(ast.WindowTable)) or set(CONTINUOUS) & raw_options.keys():
        job, described = bind_continuous_source(binder, source)
        columns = {c: t for c, t in described.items() if not c.startswith("__sqlml_")}
        query = SqlPlan("")
    else:
        binder.refuse_streams(source.this, source.this)
        query, columns = binder.query(source, source.this)
    label_node = node.args.get("label")
    label = binder.column(label_node, columns, "label") if label_node is not None else None
    group = None
    if node.args.get("group") is not None:
        group = binder.column(node.args["group"], columns, "group")
    weight = None
    if node.args.get("weight") is not None:
        weight = binder.column(node.args["weight"], columns, "weight")
        if kind_of(columns[weight]) != "numeric":
            raise binder.error(
                f"Weight '{weight}' has type {columns[weight]}; sample weights are numbers.", node.args["weight"]
            )
    if trainer.task == "ranking" and group is None:
        raise binder.error(
            "lightgbm_ranker needs GROUP <query id column>.", trainer_ident, "Add GROUP session_id before AS."
        )
    reserved = {label, group, weight}
    text_columns = [binder.column(i, columns, "TEXT") for i in node.args.get("text") or []]
    for ident_, name_ in zip(node.args.get("text") or [], text_columns):
        if name_ in reserved:
            raise binder.error(f"'{name_}' is the label, group or weight and cannot be a feature.", ident_)
        if str(columns[name_]) != "VARCHAR":
            raise binder.error(
                f"TEXT column '{name_}' has type {columns[name_]}; free text is VARCHAR.", ident_,
                f"Cast it (CAST({name_} AS VARCHAR) AS {name_}) or leave it out of TEXT.",
            )  # fmt: skip
    text_options = {k: v for k, (v, _) in raw_options.items() if k in TEXT}
    if text_options and not text_columns:
        key = next(iter(text_options))
        raise binder.error(
            f"{key} configures free-text columns, but the TRAIN has no TEXT clause.", raw_options[key][1],
            "Name them after LABEL: TEXT (subject, body).",
        )  # fmt: skip
    if node.args.get("features"):
        names = [binder.column(i, columns, "feature") for i in node.args["features"]]
        for ident_, name_ in zip(node.args["features"], names):
            if name_ in reserved:
                raise binder.error(f"'{name_}' is the label, group or weight and cannot be a feature.", ident_)
        names += [c for c in text_columns if c not in names]
    else:
        excluded = {binder.column(i, columns, "EXCLUDE") for i in node.args.get("exclude") or []}
        for ident_, name_ in zip(node.args.get("text") or [], text_columns):
            if name_ in excluded:
                raise binder.error(f"'{name_}' is both in TEXT and in EXCLUDE.", ident_)
        names = [c for c in columns if c not in reserved | excluded]
    if not names:
        raise binder.error(
            "TRAIN has no feature columns left.", node.this, "The query must select columns besides LABEL and GROUP."
        )
    features = []
    for name_ in names:
        kind = "text" if name_ in text_columns else kind_of(columns[name_])
        if kind is None:
            raise binder.error(
                f"Feature '{name_}' has type {columns[name_]}, which a model cannot use.",
                _ident_for(node, name_) or source.this,
                "Derive a number from it (e.g. epoch(ts), hour(ts), len(list)) or leave it out with EXCLUDE; "
                "a list or array of numbers is a vector feature.",
            )
        if kind == "text":
            features.append(text.spec_for(name_, text_options))
        else:
            features.append(FeatureSpec(name_, str(columns[name_]), kind, size=vector_size(columns[name_])))
    widths = [len(f.inputs()) if f.kind != "text" else f.text["text_features"] for f in features]  # type: ignore[index]
    known = None if any(f.kind == "vector" and not f.size for f in features) else sum(widths)
    selection = _selection(binder, raw_options, known, trainer.task)
    label_type = columns[label] if label is not None else None
    type_id = getattr(label_type, "id", str(label_type).lower())
    if trainer.task == "classification" and type_id not in _CLASS_LABEL_TYPES:
        raise binder.error(
            f"Label '{label}' has type {label_type}; a classifier needs BOOLEAN, an integer or VARCHAR.",
            label_node,
            "Use lightgbm_regressor for numeric targets, or cast the label.",
        )
    if trainer.task in ("regression", "ranking") and kind_of(label_type) != "numeric":
        raise binder.error(f"Label '{label}' has type {label_type}; {trainer.name} needs a number.", label_node)
    plan = TrainPlan(
        name=name,
        trainer=trainer,
        label=label,
        label_type=None if label_type is None else "VARCHAR" if type_id == "enum" else str(label_type),
        group=group,
        weight=weight,
        features=tuple(features),
        params=params,
        options=options,
        query=SqlPlan(query.sql, tuple(binder.predicts)),
        training_sql=source.args["text"],
        selection=selection,
    )
    if job is None:
        return plan
    continuous = ContinuousOptions(**{k: v for k, (v, _) in raw_options.items() if k in CONTINUOUS})
    if options.early_stopping_rounds:
        raise binder.error(
            "A continuous TRAIN cannot use early_stopping_rounds: each window trains on all its rows.", node.this
        )
    return ContinuousTrainPlan(plan, job, continuous)


def _check_family(
    binder: Binder, node: ast.Train, trainer: models.Trainer, raw: dict[str, tuple[Any, exp.Expr]]
) -> None:
    """Refuse what the trainer's family cannot do: a label for kmeans and pca (and none for
    the others), boosting rounds, free text or feature selection where they do not apply,
    and training a model that holds an imported one."""
    label, trainer_ident = node.args.get("label"), node.args["trainer"]
    if trainer.task in UNSUPERVISED and label is not None:
        raise binder.error(
            f"{trainer.name} learns without a label.", label, f"Drop LABEL {label.name}: every column is a feature."
        )
    if trainer.task not in UNSUPERVISED and label is None:
        raise binder.error(
            f"{trainer.name} needs a label.", trainer_ident, f"Name it after the trainer: USING {trainer.name} LABEL y."
        )
    if not trainer.boosting:
        rounds = [k for k in ("num_boost_round", "early_stopping_rounds", "rounds_per_window") if k in raw]
        if rounds:
            raise binder.error(
                f"{trainer.name} does not train in rounds; {rounds[0]} is for the lightgbm_* and random_forest_* trainers.",
                raw[rounds[0]][1], "Leave it out.",
            )  # fmt: skip
        if "update" in raw and raw["update"][0] == "continue":
            raise binder.error(
                f"{trainer.name} cannot continue a model; update = 'continue' is for boosted trees.",
                raw["update"][1], "Use update = 'retrain'.",
            )  # fmt: skip
        if node.args.get("text"):
            raise binder.error(
                f"{trainer.name} does not take free text; TEXT (...) is for the lightgbm_* and random_forest_* trainers.",
                node.args["text"][0], "Use lightgbm_classifier, or turn the text into numbers or a vector first.",
            )  # fmt: skip
    if trainer.task in UNSUPERVISED and "max_features" in raw:
        raise binder.error(
            f"{trainer.name} has no label to rank features by.", raw["max_features"][1],
            "Choose the columns with FEATURES (...), or reduce them with pca.",
        )  # fmt: skip
    try:
        existing = binder.catalog.get(node.this.name) if binder.catalog.versions(node.this.name) else None
    except SqlmlError:
        existing = None
    if existing is not None and existing.meta.get("trainer") == IMPORTED:
        raise binder.error(
            f"Model '{existing.name}' holds an imported ONNX model, which sqlml cannot train.", node.this,
            f"Train under another name, or DROP MODEL {existing.name} first.",
        )  # fmt: skip


def _ident_for(node: ast.Train, name: str) -> exp.Identifier | None:
    for ident in node.args.get("features") or []:
        if ident.name.lower() == name.lower():
            return ident
    return None


def bind(
    statement: Statement,
    catalog: Catalog,
    describe: Describe,
    streams: StreamRegistry | None = None,
    params: dict[str, Any] | None = None,
) -> Plan:
    """The plan for one parsed statement. SQL left to DuckDB is parsed here after all when it
    names a stream (only binding knows which names are streams)."""
    if statement.children:
        return StatementSetPlan(statement.children)
    if streams is not None and statement.node is None:
        names = frozenset(streams.names())
        if names:
            statement = reparse(statement, names)
    binder = Binder(statement, catalog, describe, streams, params=params or {})
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
                return StreamPlan(job, tuple(binder.predicts))
        else:
            for table in node.find_all(exp.Table):
                if streams.get(table.name):
                    raise binder.error(
                        f"'{table.name}' is a stream, which cannot be used here.", table,
                        "Read a stream with SELECT, INSERT INTO ... SELECT or COPY (SELECT ...) TO.",
                    )  # fmt: skip
    if isinstance(node, ast.Train):
        return bind_train(binder, node)
    if isinstance(node, ast.ImportModel):
        return bind_import(binder, node)
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
            source = SqlPlan(source.sql, tuple(binder.predicts))
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
    if not any(node.find_all(ast.Predict, ast.WindowTable, ast.Metrics)):
        return SqlPlan(statement.text)  # DuckDB SQL that only looked as if it read a stream
    # a query that calls PREDICT or a window table function
    binder.rewrite_all(node)
    return SqlPlan(node.sql(dialect=Sqlml), tuple(binder.predicts))
