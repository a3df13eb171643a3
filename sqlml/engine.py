"""Executes plans on one DuckDB connection: a table of handlers, one per plan type.

A handler returns a DuckDB relation (lazy query results), an Arrow table (our statements'
results) or None. DuckDB failures are wrapped as positioned ExecutionErrors.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import duckdb
import duckdb.func
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from sqlml import functions, media, metrics, parameters, plan, results, scoring, training
from sqlml.catalog import Catalog
from sqlml.continuous import Learner, WindowReport
from sqlml.dialect import KEYWORDS, Statement
from sqlml.errors import BindError, CatalogError, ExecutionError, Span, SqlmlError, SqlmlSyntaxError, did_you_mean
from sqlml.features import FeatureSpec
from sqlml.importing import MODEL_FILE, ImportModelPlan
from sqlml.models.base import Progress as TrainProgress
from sqlml.models.base import TreeModel
from sqlml.stream.runner import Progress, Runner, Sink, StreamJob
from sqlml.stream.source import PythonSource
from sqlml.stream.streams import StreamRegistry

Output: TypeAlias = duckdb.DuckDBPyRelation | pa.Table | None
_QUOTED = re.compile(r'(?:at or near|name|column|Table with name|function) "?([^"\s!]+)"?')


def duckdb_error(err: Exception, statement: Statement | None) -> SqlmlError:
    """A DuckDB exception as a SqlmlError located in the statement where possible."""
    lines = str(err).split("\n")
    message = lines[0]
    failed = scoring.failure() if "while executing the UDF" in message else None
    if failed is not None:  # a scoring function's own error, which DuckDB passed on as text
        return ExecutionError(failed.message, statement.span if statement else None, failed.hint)
    hints = [line for line in lines[1:] if line and not line.startswith("LINE ") and set(line.strip()) != {"^"}]
    # DuckDB's own suggestions can name its system tables (pg_enum for a missing 'nope'): drop those
    hints = [h for h in hints if not re.search(r'Did you mean "(pg_|duckdb_|sqlite_|information_schema)', h)]
    hint = " ".join(hints) or None
    span = statement.span if statement else None
    if statement is not None:
        match = _QUOTED.search(message)
        if match:
            word = match.group(1)
            pattern = rf"(?<![\w]){re.escape(word)}(?![\w])"
            # the word as written (a table `train` rather than the keyword TRAIN), else its last use
            found = re.search(pattern, statement.text) or next(
                reversed(list(re.finditer(pattern, statement.text, re.IGNORECASE))), None
            )
            if found:
                span = Span.at(
                    statement.script, statement.span.start + found.start(), statement.span.start + found.end()
                )
            if "syntax error" in message:
                hint = syntax_hint(word, statement.text) or hint
    if type(err).__name__ == "ResourceInUseException":
        message, hint = (
            "The DuckDB connection is busy with a statement in another thread.",
            ("Give each thread its own session: cur = con.cursor(), as with DuckDB."),
        )
    cls = SqlmlSyntaxError if isinstance(err, duckdb.ParserException) else ExecutionError
    return cls(message, span, hint)


# statements of other ML dialects, and what sqlml writes instead
_FOREIGN = {
    ("CREATE", "MODEL"): "sqlml trains with TRAIN MODEL name USING lightgbm_classifier LABEL column AS SELECT ...",
    ("CREATE", "OR"): "sqlml trains with TRAIN MODEL name USING lightgbm_classifier LABEL column AS SELECT ...",
}


def syntax_hint(word: str, text: str) -> str | None:
    """A hint for a DuckDB syntax error at `word`: the statement sqlml has for a foreign one,
    or the keyword the word misspells (never the word itself)."""
    words = text.split(None, 2)
    if len(words) >= 2 and (words[0].upper(), words[1].upper()) in _FOREIGN and "MODEL" in text.upper().split():
        return _FOREIGN[(words[0].upper(), words[1].upper())]
    if word.upper() in KEYWORDS:
        return None
    return did_you_mean(word.upper(), KEYWORDS)


_REGISTERING = threading.Lock()


def status(message: str) -> pa.Table:
    """A one-row `message` result that reports on a statement rather than returning data
    (marked in the schema, so machine-readable output can leave it out)."""
    return pa.table({"message": [message]}).replace_schema_metadata({"sqlml": "status"})


def describe_feature(spec: FeatureSpec) -> str:
    """A feature's line in DESCRIBE MODEL: its type and what training learnt of it."""
    if spec.kind == "categorical":
        return f"{spec.type} (categorical, {len(spec.categories)} categories)"
    if spec.kind == "vector":
        kept = f", {len(spec.keep)} kept" if spec.keep is not None else ""
        return f"{spec.type} (vector of {spec.size}{kept})"
    if spec.kind == "text" and spec.text:
        t = spec.text
        weighting = "tf-idf" if t.get("idf") is not None else "counts"
        ngrams = "-".join(str(n) for n in t["ngrams"])
        return (f"VARCHAR (text: {t['analyzer']} {ngrams}-grams hashed into {t['text_dim']} buckets, "
                f"{len(spec.keep or [])} kept by {t.get('method')}, {weighting})")  # fmt: skip
    return spec.type


def now() -> str:
    """The current UTC time as text, for logs."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


class StreamOutput:
    """The results of a continuous SELECT: Arrow tables, one as each set of windows closes."""

    def __init__(self, runner: Runner, done: Callable[[str, Progress], None], engine: Engine) -> None:
        self.runner = runner
        self.done = done
        self.engine = engine

    def __iter__(self) -> Iterator[pa.Table]:
        self.engine.streaming = True
        try:
            yield from self.runner.run()
        finally:
            self.engine.streaming = False
        self.done(self.runner.job.name, self.runner.progress)


class Engine:
    """Runs plans against a DuckDB connection and a catalog."""

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
        self.con = con
        self.catalog = catalog
        self.progress: Callable[[str], TrainProgress | None] = lambda name: None
        self._udfs: set[str] = set()
        self._results: list[str] = []  # the result tables registered, oldest first
        self.cancelled = False
        self.statement: Statement | None = None
        # the running statement's parameters: as given (DuckDB's own statements) and by name (sqlml's)
        self.params: parameters.Parameters | None = None
        self.named: dict[str, Any] | None = None
        self.handlers: dict[type, Callable[[Any], Output]] = {
            plan.SqlPlan: self.run_sql,
            plan.TrainPlan: self.run_train,
            plan.SkipPlan: lambda p: status(p.message),
            plan.EvaluatePlan: self.run_evaluate,
            plan.ShowModelsPlan: self.show_models,
            plan.DescribeModelPlan: self.describe_model,
            plan.ExplainModelPlan: self.explain_model,
            plan.DropModelPlan: self.drop_model,
            ImportModelPlan: self.import_model,
            plan.CreateStreamPlan: self.create_stream,
            plan.DropStreamPlan: self.drop_stream,
            plan.StreamPlan: self.run_stream,
            plan.ContinuousTrainPlan: self.run_continuous,
            plan.StatementSetPlan: self.run_statement_set,
            plan.SetClusterPlan: self.set_cluster,
            plan.DistributedPredictPlan: self.distributed_predict,
        }
        self.cluster: str | None = None  # the Dask cluster of TRAIN WITH (distributed = true)
        self.streams = StreamRegistry(con)
        with _REGISTERING:
            functions.register(con)
            media.register(con)
        self.python_sources: dict[str, PythonSource] = {}
        self.stop = threading.Event()  # set to end continuous queries cleanly (SIGTERM, Ctrl-C)
        self.streaming = False  # whether a continuous query is running
        self.on_stream_done: Callable[[str, Progress], None] = lambda name, progress: None
        self.on_window: Callable[[str, WindowReport], None] = lambda name, report: None
        self.on_batch: Callable[[str, Progress], None] = lambda name, progress: None

    # -- DuckDB access --------------------------------------------------------------
    def query(self, sql: str) -> Any:
        """A DuckDB relation for `sql`, given the statement's parameters that it names."""
        if self.params is None:
            return self.con.sql(sql)
        if self.named is None:  # DuckDB's own statement: its parameters as given
            return self.con.sql(sql, params=self.params)
        params = parameters.used(sql, self.named)
        return self.con.sql(sql, params=params) if params else self.con.sql(sql)

    def describe(self, sql: str) -> list[tuple[str, Any]]:
        try:
            rel = self.query(sql)
        except duckdb.Error as err:
            raise duckdb_error(err, self.statement) from err
        if rel is None:
            raise ExecutionError("Expected a query that returns rows.", self.statement.span if self.statement else None)
        return list(zip(rel.columns, rel.types))

    def fetch(self, sql: str) -> pa.Table:
        try:
            return self.query(sql).to_arrow_table()  # type: ignore[no-any-return]
        except duckdb.Error as err:
            raise duckdb_error(err, self.statement) from err

    def register(self, calls: tuple[plan.PredictCall, ...]) -> None:
        for call in calls:
            if call.udf in self._udfs:
                continue
            with _REGISTERING:  # cursors of one database share its functions: check and create as one
                if not self._function_exists(call.udf):
                    fn: Callable[..., Any]
                    if call.explain is not None:
                        fn, arg_type, out_type = scoring.explanation_function(call.model, call.explain)
                        arg_types = [arg_type]
                    elif call.history:
                        fn, arg_types, out_type = scoring.point_in_time_function(self.catalog, call.model, call.history)
                    else:
                        fn, arg_type, out_type = scoring.scoring_function(call.model)
                        arg_types = [arg_type, "INTEGER"]
                    self.con.create_function(
                        call.udf,
                        fn,
                        [duckdb.sqltype(t) for t in arg_types],
                        duckdb.sqltype(out_type),
                        type=duckdb.func.ARROW,
                        null_handling=duckdb.func.SPECIAL,
                    )
            self._udfs.add(call.udf)

    def prepare(self, p: plan.SqlPlan) -> None:
        """Register the scoring functions a query calls and compute the result functions it
        reads (each into an Arrow table registered on the connection under its own name)."""
        self.register(p.predicts)
        for call in p.results:
            table = results.compute(call, self.fetch, self)
            self.con.register(call.table, table)
            self._results.append(call.table)
        while len(self._results) > 64:  # a lazy relation may still read recent ones
            self.con.unregister(self._results.pop(0))

    def _function_exists(self, name: str) -> bool:
        found = self.con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [name])
        return bool(found.fetchall()[0][0])

    # -- handlers -------------------------------------------------------------------
    def execute(self, statement: Statement, bound: plan.Plan) -> Output:
        self.statement = statement
        self.cancelled = False
        try:
            return self.handlers[type(bound)](bound)
        except SqlmlError as err:
            raise err.located(statement.span)
        except duckdb.Error as err:
            raise duckdb_error(err, statement) from err

    def bind(self, statement: Statement) -> plan.Plan:
        """The statement's plan (binding runs no user SQL: it only describes queries)."""
        self.statement = statement
        if self.named is not None and statement.node is not None:
            try:
                parameters.check({p.name for p in statement.node.find_all(exp.Placeholder)}, self.named)
            except SqlmlError as err:
                raise err.located(statement.span)
        try:
            bound = plan.bind(statement, self.catalog, self.describe, self.streams, self.named or {}, self.cluster)
        except duckdb.Error as err:  # sqlml's own probes (streams, functions), e.g. in an aborted transaction
            raise duckdb_error(err, statement) from err
        if self.params is not None:
            if isinstance(bound, (plan.StreamPlan, plan.ContinuousTrainPlan, plan.StatementSetPlan)):
                raise BindError(
                    "A continuous query cannot take parameters.",
                    statement.span,
                    "Write the values in the query, or filter the stream with a table of values.",
                )
        return bound

    def push(self, stream: str, data: Any) -> None:
        """Queue events for a stream with connector = 'python' (checked now: a bad push changes nothing)."""
        definition = self.streams.require(stream)
        if definition.connector != "python":
            raise BindError(
                f"Stream '{definition.name}' reads from its {definition.connector} connector; it takes no pushes.",
                hint="Push to a stream created WITH (connector = 'python').",
            )
        self.python_sources.setdefault(definition.name, PythonSource(self.con, definition)).push(data)

    def run_sql(self, p: plan.SqlPlan) -> Output:
        self.prepare(p)
        return self.query(p.sql)  # type: ignore[no-any-return]

    def run_train(self, p: plan.TrainPlan) -> Output:
        self.prepare(p.query)
        shown = self.progress(p.name)

        def progress(done: int, total: int) -> None:
            if self.cancelled:
                raise ExecutionError("Training cancelled; the catalog is unchanged.")
            if shown is not None:
                shown(done, total)

        try:
            # the values of the training query's parameters, so that its stored text can be run again
            values = parameters.used(p.training_sql, self.named) if self.named else {}
            lineage = {"parameters": {k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v)
                                      for k, v in values.items()}} if values else None  # fmt: skip
            if p.options.distributed and not p.search:
                assert self.cluster is not None  # binding checked it
                version = training.train_distributed(self.con, p, self.catalog, self.cluster)
            else:  # a distributed search runs its trials on the cluster's workers
                cluster = self.cluster if p.options.distributed else None
                version = training.train(self.fetch, p, self.catalog, progress, lineage=lineage, cluster=cluster)
        finally:
            close = getattr(shown, "close", None)
            if close is not None:  # the bar ends however training ends: done, early stop, error, cancel
                close()
        if self.catalog.serving(p.name) is not None:  # a continuously trained model: the new version serves
            self.catalog.set_serving(p.name, version.version, "batch TRAIN", None)
        meta = version.meta
        headline = metrics.HEADLINE[meta["task"]]
        return pa.table(
            {
                "model": [version.name],
                "version": [version.version],
                "task": [meta["task"]],
                "rows": [meta["rows"]],
                "validation_rows": [meta["validation_rows"]],
                "metric": [headline],
                "value": pa.array([meta["metrics"].get(headline)], pa.float64()),
                "seconds": [meta["duration_s"]],
            }
        )

    def run_evaluate(self, p: plan.EvaluatePlan) -> Output:
        if p.source is not None:
            self.prepare(p.source)
        row = scoring.evaluate(self.fetch, p.model, p.source.sql if p.source else None)
        log = {"window_start": None, "window_end": None, "version": p.model.version, "role": "evaluate",
               "rows": row["rows"], "rows_unscored": 0,
               **{m.name: row[m.name] for m in metrics.for_task(p.model.meta["task"])}, "error": None,
               "created_at": now()}  # fmt: skip
        try:
            self.catalog.append_metrics(p.model.name, log)
        except CatalogError:
            pass  # a shared registry mounted read-only: EVALUATE answers, its run is not logged
        return pa.Table.from_pylist([row])

    def show_models(self, p: plan.ShowModelsPlan) -> Output:
        rows: list[dict[str, Any]] = []
        for name in self.catalog.names():
            try:
                meta = self.catalog.get(name).meta
            except CatalogError as err:  # listed with its error, so that the others still show
                rows.append({"name": name, "version": self.catalog.versions(name)[-1], "error": err.message})
                continue
            headline = metrics.HEADLINE[meta["task"]]
            rows.append(
                {
                    "name": name,
                    "version": meta["version"],
                    "trainer": meta["trainer"],
                    "task": meta["task"],
                    "label": meta["label"],
                    "rows": meta["rows"],
                    "metric": headline,
                    "value": meta["metrics"].get(headline),
                    "created_at": dt.datetime.fromisoformat(meta["created_at"]),
                    "error": None,
                }
            )
        schema = pa.schema(
            [("name", pa.string()), ("version", pa.int64()), ("trainer", pa.string()), ("task", pa.string()),
             ("label", pa.string()), ("rows", pa.int64()), ("metric", pa.string()), ("value", pa.float64()),
             ("created_at", pa.timestamp("us", tz="UTC")), ("error", pa.string())]
        )  # fmt: skip
        return pa.Table.from_pylist(rows, schema=schema)

    def describe_model(self, p: plan.DescribeModelPlan) -> Output:
        meta = p.model.meta
        rows: list[tuple[str, str, str]] = [("model", "name", p.model.name), ("model", "version", str(p.model.version))]
        # the metrics right after the name, so that no long section pushes them out of sight
        rows += [("metric", k, repr(v)) for k, v in meta["metrics"].items()]
        for key in ("trainer", "task", "label", "label_type", "classes", "group", "weight", "rows",
                    "train_rows", "validation_rows", "validation", "split", "seed", "num_boost_round",
                    "early_stopping_rounds", "components", "explained_variance_ratio", "clusters", "iterations",
                    "embedding", "image_shape", "source", "distributed", "warnings", "created_at", "duration_s", "fingerprint", "training_sql", "parameters"):  # fmt: skip
            if meta.get(key) is not None:
                rows.append(("model", key, str(meta[key])))
        serving = self.catalog.serving(p.model.name)
        if serving is not None:
            rows.append(("serving", "version", f"{serving.version}: {serving.reason}"))
        rows += [("param", k, str(v)) for k, v in meta["params"].items()]
        selected = meta.get("selection")
        if selected:
            kept = [r["feature"] for r in selected["ranking"] if r["kept"]]
            rows.append(("selection", "method", f"{selected['method']}, max_features = {selected['max_features']}"))
            rows.append(("selection", "kept", ", ".join(kept)))
            rows.append(("selection", "ranking", ", ".join(r["feature"] for r in selected["ranking"])))
        for spec in (FeatureSpec(**f) for f in meta["features"]):
            rows.append(("feature", spec.name, describe_feature(spec)))
        for name, sql in (meta.get("transform") or {}).get("items", []):
            rows.append(("transform", name, sql))
        for version in self.catalog.versions(p.model.name):
            try:
                other = self.catalog.get(p.model.name, version).meta
            except CatalogError as err:
                rows.append(("version", str(version), f"error: {err.message}"))
                continue
            headline = metrics.HEADLINE[other["task"]]
            value = other["metrics"].get(headline)
            rows.append(("version", str(version), f"{other['created_at']} rows={other['rows']} {headline}={value}"))
        section, name, value = zip(*rows)
        return pa.table({"section": list(section), "name": list(name), "value": list(value)})

    def explain_model(self, p: plan.ExplainModelPlan) -> Output:
        """Gain and splits per input, and per column (the sum of its inputs) for vectors and text."""
        model, specs = scoring.load(p.model)
        if not isinstance(model, TreeModel):
            raise ExecutionError(
                f"EXPLAIN MODEL reads the splits of trees; '{p.model.name}' is a {p.model.meta['trainer']} model.",
                hint="DESCRIBE MODEL shows what it learnt; EVALUATE measures it.",
            )
        _, gain, splits = model.importance()
        names = [n for s in specs for n in s.inputs()]
        columns = [s.name for s in specs for _ in s.inputs()]
        levels = ["column" if s.kind in ("numeric", "categorical") else "element" for s in specs for _ in s.inputs()]
        total = float(gain.sum()) or 1.0
        table = pa.table({"feature": names, "column": columns, "level": levels, "gain": gain,
                          "splits": splits.astype("int64"), "share": gain / total})  # fmt: skip
        if "element" in levels:
            sums = (
                table.filter(pc.equal(table.column("level"), "element"))
                .group_by("column", use_threads=False)
                .aggregate([("gain", "sum"), ("splits", "sum"), ("share", "sum")])
            )
            table = pa.concat_tables([table, pa.table({
                "feature": sums.column("column"), "column": sums.column("column"),
                "level": pa.array(["column"] * sums.num_rows), "gain": sums.column("gain_sum"),
                "splits": sums.column("splits_sum"), "share": sums.column("share_sum"),
            })])  # fmt: skip
        return table.sort_by([("gain", "descending"), ("splits", "descending"), ("feature", "ascending")])

    def create_stream(self, p: plan.CreateStreamPlan) -> Output:
        if p.exists and self.streams.get(p.stream.name):
            return status(f"Stream '{p.stream.name}' exists; nothing created (IF NOT EXISTS).")
        if not p.replace and self.streams.get(p.stream.name):
            raise ExecutionError(
                f"Stream '{p.stream.name}' already exists.", hint="Use CREATE OR REPLACE STREAM or DROP STREAM first."
            )
        self.streams.create(p.stream, p.replace)
        return None

    def drop_stream(self, p: plan.DropStreamPlan) -> Output:
        if p.exists and not self.streams.get(p.name):
            return None
        self.streams.drop(p.name)
        return None

    def is_durable(self) -> bool:
        """Whether the database is a file (so stream state and checkpoints survive a restart)."""
        rows = self.con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()
        return bool(rows and rows[0][0])

    def run_stream(self, p: plan.StreamPlan) -> Output:
        self.register(p.predicts)
        job = p.job
        durable = job.sink in (Sink.INSERT, Sink.COPY, Sink.KAFKA) and self.is_durable()
        if job.sink == Sink.COPY:
            os.makedirs(job.target, exist_ok=True)
        runner = Runner(self.con, job, self.python_sources, self.stop, self._batch_done(job), durable)
        if job.sink == Sink.SELECT:
            return StreamOutput(runner, self.on_stream_done, self)
        done = self.drain(runner)
        return pa.table(
            {"stream": [job.name], "events": [done.events], "late": [done.late], "malformed": [done.malformed],
             "windows": [done.windows], "rows_written": [done.emitted]}
        )  # fmt: skip

    def _batch_done(self, job: StreamJob) -> Callable[[Progress], None]:
        return lambda progress: self.on_batch(job.name, progress)

    def drain(self, runner: Runner) -> Progress:
        """Run a continuous query whose output goes to a sink, to its end (or a clean stop)."""
        self.streaming = True
        try:
            for _ in runner.run():
                pass
        finally:
            self.streaming = False
        self.on_stream_done(runner.job.name, runner.progress)
        return runner.progress

    def run_statement_set(self, p: plan.StatementSetPlan) -> Output:
        """Run the set's statements: continuous TRAINs first, so that every PREDICT over the same
        stream sees the whole promotion history. Scoring is point in time, so the results are
        those one pass would give; each statement reads its sources once."""
        for child in p.statements:
            if child.kind != "Train" and child.text.split(None, 1)[0].upper() not in ("INSERT", "COPY"):
                raise SqlmlSyntaxError(
                    "EXECUTE STATEMENT SET holds TRAIN, INSERT INTO and COPY statements.", child.span,
                    "Run queries that print rows outside the set.",
                )  # fmt: skip
        ordered = sorted(p.statements, key=lambda s: 0 if s.kind == "Train" else 1)
        summaries = []
        for child in ordered:
            output = self.execute(child, self.bind(child))
            rows = output.to_pylist() if isinstance(output, pa.Table) else []
            summaries.append(json.dumps(rows[0] if len(rows) == 1 else {"rows": len(rows)}, default=str))
        return pa.table({"statement": [" ".join(c.text.split()[:3]) for c in ordered], "result": summaries})

    def run_continuous(self, p: plan.ContinuousTrainPlan) -> Output:
        """TRAIN over a window function: test, train, version and promote as windows close."""
        durable = self.is_durable()
        learner = Learner(self.con, self.catalog, p, now, lambda report: self.on_window(p.train.name, report), durable)
        runner = Runner(self.con, p.job, self.python_sources, self.stop, self._batch_done(p.job), durable, learner)
        done = self.drain(runner)
        serving = self.catalog.serving(p.train.name) if self.catalog.versions(p.train.name) else None
        return pa.table(
            {"model": [p.train.name], "windows": [learner.windows], "versions_trained": [learner.versions],
             "training_failures": [learner.failures], "serving_version": pa.array([serving.version if serving else None], pa.int64()),
             "events": [done.events], "late": [done.late]}
        )  # fmt: skip

    def set_cluster(self, p: plan.SetClusterPlan) -> Output:
        self.cluster = p.address
        return status(f"Cluster: {p.address}." if p.address else "No cluster: TRAIN runs on this machine.")

    def distributed_predict(self, p: plan.DistributedPredictPlan) -> Output:
        from sqlml import distributed

        scored = distributed.predict_files(p.cluster, self.catalog.root, p.model, p.files, p.target)
        return pa.table({"files": [len(scored)], "rows": [sum(scored.values())], "target": [p.target]})

    def import_model(self, p: ImportModelPlan) -> Output:
        if p.exists and self.catalog.versions(p.name):
            return status(f"Model '{p.name}' exists; nothing imported (IF NOT EXISTS).")
        if self.catalog.versions(p.name) and self.catalog.get(p.name).meta["task"] != p.meta["task"]:
            raise ExecutionError(
                f"Model '{p.name}' is a {self.catalog.get(p.name).meta['task']} model; the import is {p.meta['task']}.",
                hint="Import it under another name.",
            )
        version = self.catalog.save(p.name, p.data, p.meta, MODEL_FILE)
        return status(f"Imported model '{p.name}' version {version.version} from {p.meta['source']}.")

    def drop_model(self, p: plan.DropModelPlan) -> Output:
        if not self.catalog.versions(p.name):
            return status(f"Model '{p.name}' does not exist; nothing dropped (IF EXISTS).")
        serving = self.catalog.serving(p.name)
        removed = self.catalog.drop(p.name, p.version)
        notes: list[str | None] = [None] * len(removed)
        left = self.catalog.versions(p.name)
        if serving is not None and serving.version in removed and left:
            # the serving version went: the newest version before it serves from now on
            older = [v for v in left if v < serving.version]
            successor = max(older) if older else max(left)
            reason = f"version {serving.version} was dropped"
            self.catalog.set_serving(p.name, successor, reason, int(time.time() * 1_000_000))
            notes[removed.index(serving.version)] = f"{reason}; version {successor} serves now"
        return pa.table(
            {"model": [p.name] * len(removed), "dropped_version": removed, "note": pa.array(notes, pa.string())}
        )
