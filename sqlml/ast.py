"""Syntax tree nodes for sqlml's own statements, as sqlglot expressions.

Each node declares its arguments in `arg_types`, as sqlglot's own nodes do. Names are
`exp.Identifier`s whose `meta` carries their position; queries keep both their parsed tree
(`query`) and their exact source text (`text`), so DuckDB runs what the user wrote.
"""

from __future__ import annotations

from sqlglot import exp


class ModelRef(exp.Expression):
    """`MODEL name [VERSION n]`."""

    arg_types = {"this": True, "version": False}

    @property
    def name(self) -> str:
        return self.this.name.lower()


class QuerySource(exp.Expression):
    """A query or `TABLE name` that a statement reads; `text` is its DuckDB SQL."""

    arg_types = {"this": True, "text": True, "table": False, "files": False, "stream_time": False}


class Train(exp.Expression):
    """`TRAIN MODEL [IF NOT EXISTS] name USING trainer [LABEL col] [GROUP col] [WEIGHT col] [TEXT (col, ...)]
    [FEATURES (...) | EXCLUDE (...)] [WITH (...)] AS query`."""

    arg_types = {
        "this": True,
        "exists": False,
        "trainer": True,
        "label": False,
        "group": False,
        "weight": False,
        "text": False,
        "transform": False,
        "features": False,
        "exclude": False,
        "params": False,
        "source": True,
    }


class Evaluate(exp.Expression):
    """`EVALUATE MODEL name [VERSION n] [ON (query) | ON TABLE t]`."""

    arg_types = {"this": True, "source": False}


class ShowModels(exp.Expression):
    """`SHOW MODELS`."""

    arg_types: dict[str, bool] = {}


class DescribeModel(exp.Expression):
    """`DESCRIBE MODEL name [VERSION n]`."""

    arg_types = {"this": True}


class ExplainModel(exp.Expression):
    """`EXPLAIN MODEL name [VERSION n]`: feature importance."""

    arg_types = {"this": True}


class DropModel(exp.Expression):
    """`DROP MODEL [IF EXISTS] name [VERSION n]`."""

    arg_types = {"this": True, "exists": False}


class ImportModel(exp.Expression):
    """`IMPORT MODEL [IF NOT EXISTS] name FROM 'path.onnx' [WITH (...)]`: an ONNX model trained elsewhere."""

    arg_types = {"this": True, "path": True, "params": False, "exists": False}


class Predict(exp.Expression):
    """`PREDICT(MODEL name [VERSION n], (query) | TABLE t [, name => value ...])`, a table function;
    also `EXPLAIN_PREDICT(...)` and BigQuery ML's `ML.PREDICT` / `ML.EXPLAIN_PREDICT` (`kind`).

    `rewrite` is filled in by the planner: the DuckDB subquery that calls the scoring function.
    """

    arg_types = {"this": True, "source": True, "options": False, "kind": False, "rewrite": False}


class ModelFunction(exp.Expression):
    """A table function over a model's results: `EVALUATE(MODEL m [, TABLE t | (query)] [, name => value])`,
    `ROC_CURVE(...)`, `MODELS()`, BigQuery ML's `ML.EVALUATE(..., STRUCT(0.5 AS threshold))`, ...

    `this` is the function's name as written (upper case), `options` its named arguments
    (PropertyEQ), `values` a positional list of numbers (ML.ROC_CURVE's thresholds).
    """

    arg_types = {"this": True, "model": False, "source": False, "options": False, "values": False, "rewrite": False}


class CreateModel(exp.Expression):
    """BigQuery ML's `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name [TRANSFORM (...)] OPTIONS (...) [AS query]`."""

    arg_types = {"this": True, "replace": False, "exists": False, "transform": False, "options": True, "source": False}


class Metrics(exp.Expression):
    """`METRICS(MODEL name)`: the model's metrics log as a table."""

    arg_types = {"this": True, "rewrite": False}


class FeatureRanking(Metrics):
    """`FEATURE_RANKING(MODEL name)`: the model's inputs ranked by feature selection, as a table."""


class WindowTable(exp.Expression):
    """`TABLE(TUMBLE|HOP|CUMULATE|SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), size, ...)) [AS alias]`.

    `this` is the kind, `table` the source, `time` the time column, `sizes` the INTERVALs;
    `rewrite` is the DuckDB SQL the planner puts in its place.
    """

    arg_types = {
        "this": True,
        "table": True,
        "partition": False,
        "time": True,
        "sizes": True,
        "alias": False,
        "rewrite": False,
    }


class CreateStream(exp.Expression):
    """`CREATE [OR REPLACE] STREAM [IF NOT EXISTS] name (columns, WATERMARK FOR ts AS ts - delay) WITH (...)`."""

    arg_types = {
        "this": True,
        "columns": True,
        "time": True,
        "delay": False,
        "options": False,
        "replace": False,
        "exists": False,
    }


class SetCluster(exp.Expression):
    """`SET cluster = 'local:2' | 'tcp://host:8786'` (`this`, a string) or `RESET cluster` (no `this`)."""

    arg_types = {"this": False}


class DropStream(exp.Expression):
    """`DROP STREAM [IF EXISTS] name`."""

    arg_types = {"this": True, "exists": False}


STATEMENTS = (Train, CreateModel, SetCluster, Evaluate, ShowModels, DescribeModel, ExplainModel, DropModel, ImportModel)
