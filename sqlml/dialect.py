"""The sqlml dialect: DuckDB's SQL plus TRAIN, EVALUATE, PREDICT and the model statements.

This is the one module that subclasses sqlglot. `parse(script)` splits a script into
statements; statements of our own become `sqlml.ast` nodes, statements that call PREDICT
become sqlglot trees, and every other statement is left as text for DuckDB to run unchanged.

>>> [s.kind for s in parse("SELECT 1; SHOW MODELS;")]
['sql', 'ShowModels']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from sqlml import ast
from sqlml.bigquery_sql import (
    BIGQUERY_ML_MISSING,
    MODEL_FUNCTIONS,
    PREDICT_FUNCTIONS,
    bigquery_sql,
    merge_ml_names,
    unquote_path,
)
from sqlml.errors import Span, SqlmlSyntaxError, did_you_mean
from sqlml.generator import (
    create_model_sql,
    create_stream_sql,
    import_sql,
    model_function_sql,
    options_sql,
    set_cluster_sql,
    train_sql,
    window_table_sql,
)

KEYWORDS = (
    "TRAIN", "EVALUATE", "PREDICT", "MODEL", "MODELS", "USING", "LABEL", "GROUP", "WEIGHT", "TEXT", "FEATURES",
    "EXCLUDE", "WITH", "AS", "VERSION", "ON", "TABLE", "SHOW", "DESCRIBE", "EXPLAIN", "DROP",
    "SELECT", "FROM", "WHERE", "INSERT", "CREATE", "COPY", "UPDATE", "DELETE", "IF", "EXISTS", "METRICS",
    "FEATURE_RANKING", "IMPORT", "OPTIONS",
)  # fmt: skip

WINDOW_KINDS = {"TUMBLE": ("size",), "HOP": ("slide", "size"), "CUMULATE": ("step", "max_size"), "SESSION": ("gap",)}

# (first word, second word) of each statement of our own
_HEADS = {
    ("TRAIN", "MODEL"): "_parse_train",
    ("EVALUATE", "MODEL"): "_parse_evaluate",
    ("SHOW", "MODELS"): "_parse_show_models",
    ("DESCRIBE", "MODEL"): "_parse_describe_model",
    ("EXPLAIN", "MODEL"): "_parse_explain_model",
    ("DROP", "MODEL"): "_parse_drop_model",
    ("DROP", "STREAM"): "_parse_drop_stream",
    ("IMPORT", "MODEL"): "_parse_import_model",
    ("SET", "CLUSTER"): "_parse_set_cluster",
    ("RESET", "CLUSTER"): "_parse_reset_cluster",
}


def _create_model_ahead(tokens: list[Token]) -> bool:
    words = [t.text.upper() for t in tokens[:4]]
    return words[:2] == ["CREATE", "MODEL"] or words[:4] == ["CREATE", "OR", "REPLACE", "MODEL"]


def _create_stream_ahead(tokens: list[Token]) -> bool:
    words = [t.text.upper() for t in tokens[:4]]
    return words[:2] == ["CREATE", "STREAM"] or words[:4] == ["CREATE", "OR", "REPLACE", "STREAM"]


class Sqlml(DuckDB):
    """DuckDB's dialect with sqlml's statements."""

    class Tokenizer(DuckDB.Tokenizer):
        # EXPLAIN is a COMMAND token in DuckDB's tokenizer, which swallows the rest of the
        # statement into a string; we need to see `EXPLAIN MODEL name`.
        KEYWORDS = {k: v for k, v in DuckDB.Tokenizer.KEYWORDS.items() if k != "EXPLAIN"}
        COMMANDS = DuckDB.Tokenizer.COMMANDS - {TokenType.COMMAND, TokenType.EXECUTE}
        # BigQuery's `project.dataset.model` names (DuckDB itself never sees a backquote)
        IDENTIFIERS = ['"', "`"]

    class Parser(DuckDB.Parser):
        FUNCTION_PARSERS = {
            **DuckDB.Parser.FUNCTION_PARSERS,
            "PREDICT": lambda self: self._parse_predict(),
            "METRICS": lambda self: self._parse_metrics(),
            "FEATURE_RANKING": lambda self: self._parse_metrics(ast.FeatureRanking),
            **{name: lambda self: self._parse_model_function() for name in MODEL_FUNCTIONS},
            **{name: lambda self: self._parse_predict() for name in PREDICT_FUNCTIONS if name != "PREDICT"},
            **{name: lambda self: self._parse_missing_ml() for name in BIGQUERY_ML_MISSING},
        }

        error_token: Token | None = None
        error_hint: str | None = None

        def raise_error(self, message: str, token: Any = None) -> None:
            self.error_token = token or self._curr or self._prev
            super().raise_error(message, token or self._curr or self._prev)

        def _fail(self, message: str, hint: str | None = None) -> None:
            self.error_hint = hint
            self.raise_error(message)

        def _parse_statement(self) -> exp.Expr | None:
            if self._curr and self._next:
                method = _HEADS.get((self._curr.text.upper(), self._next.text.upper()))
                if method:
                    self._advance(2)
                    node: exp.Expr = getattr(self, method)()
                    if self._curr:
                        self._fail(f"Unexpected '{self._curr.text}' after the statement")
                    return node
            if (
                self._curr
                and self._curr.token_type == TokenType.CREATE
                and _create_stream_ahead(self._tokens[self._index :])
            ):
                self._advance()
                return self._parse_create_stream()
            if self._curr and _create_model_ahead(self._tokens[self._index :]):
                self._advance()
                created = self._parse_create_model()
                if self._curr:
                    self._fail(f"Unexpected '{self._curr.text}' after the statement")
                return created
            if self._curr and self._curr.text.upper() == "EXPLAIN":
                self._advance()
                return self._parse_as_command(self._prev)
            return super()._parse_statement()

        # -- pieces ---------------------------------------------------------------
        def _expect(self, word: str, what: str) -> None:
            if not self._match_text_seq(word):
                found = self._curr.text if self._curr else "the end of the statement"
                hint = did_you_mean(found.upper(), [word]) if self._curr else None
                self._fail(f"Expected {word} {what}, found '{found}'", hint)

        def _name(self, what: str) -> exp.Identifier:
            token = self._curr
            if token is None or token.token_type not in (TokenType.VAR, *self.ID_VAR_TOKENS):
                found = token.text if token else "the end of the statement"
                self._fail(f"Expected {what}, found '{found}'")
            ident = exp.to_identifier(token.text, quoted=token.token_type == TokenType.IDENTIFIER)  # type: ignore[union-attr]
            ident.meta.update(start=token.start, end=token.end)  # type: ignore[union-attr]
            self._advance()
            return ident

        def _model_name(self, what: str) -> exp.Identifier:
            """A model's name; BigQuery's `dataset.model` and `project.dataset.model` (quoted
            with backquotes or not) name the model by their last part, as the catalog has no datasets."""
            ident = self._name(what)
            while self._curr and self._curr.token_type == TokenType.DOT and self._next:
                self._advance()
                ident = self._name(what)
            if ident.quoted and "." in ident.name:
                start = ident.meta["end"] - len(ident.name.rsplit(".", 1)[1])
                part = exp.to_identifier(ident.name.rsplit(".", 1)[1], quoted=True)
                part.meta.update(start=start, end=ident.meta["end"])
                ident = part
            return ident

        def _model_ref(self, what: str = "a model name") -> ast.ModelRef:
            ref = ast.ModelRef(this=self._model_name(what))
            if self._match_text_seq("VERSION"):
                token = self._curr
                number = self._parse_placeholder() or self._parse_number()  # VERSION ? takes a parameter
                if not isinstance(number, (exp.Literal, exp.Placeholder)) or token is None:
                    self._fail("Expected a version number after VERSION", "Write VERSION 2.")
                else:
                    number.meta.update(start=token.start, end=token.end)
                    ref.set("version", number)
            return ref

        def _exists(self, words: tuple[str, ...]) -> bool:
            return self._match_text_seq(*words)

        def _source(self, what: str, bigquery: bool = False) -> ast.QuerySource:
            """`(query)`, `TABLE name` or `'files'` (a path or glob DuckDB reads: Parquet, CSV, JSON);
            a BigQuery ML function's query is BigQuery's SQL (`bigquery`)."""
            if self._match(TokenType.TABLE):
                table = unquote_path(self._parse_table_parts())
                return ast.QuerySource(this=table, text=f"SELECT * FROM {table.sql('duckdb')}", table=True)
            if self._curr and self._curr.token_type == TokenType.STRING:
                token = self._curr
                files = self._parse_primary()
                files.meta.update(start=token.start, end=token.end)  # type: ignore[union-attr]
                return ast.QuerySource(this=files, text=f"SELECT * FROM {files.sql('duckdb')}", files=True)  # type: ignore[union-attr]
            if not self._match(TokenType.L_PAREN):
                self._fail(f"Expected (SELECT ...), TABLE name or 'files' {what}")
            start = self._curr.start if self._curr else 0
            query = self._parse_statement()
            if not isinstance(query, exp.Query):
                self._fail(f"Expected a query {what}", "Write (SELECT ...) or TABLE name.")
            text = bigquery_sql(self.sql[start : self._prev.end + 1], bigquery)
            query.meta.update(start=start, end=self._prev.end)  # type: ignore[union-attr]
            self._match_r_paren()
            return ast.QuerySource(this=query, text=text)

        def _stream_param(self) -> exp.Expr:
            """A stream option: `name = value`, with Flink's spellings too: a quoted name
            (`'scan.startup.mode' = ...`) or a dotted one (`properties.session.timeout.ms = ...`)."""
            token = self._curr
            if token is None or token.token_type != TokenType.STRING:
                return self._param(dotted=True)
            key = exp.to_identifier(token.text)
            key.meta.update(start=token.start, end=token.end)
            self._advance()
            return self._param(key)

        def _param(self, key: exp.Identifier | None = None, dotted: bool = False) -> exp.Expr:
            key = key or self._name("a parameter name")
            start = key.meta.get("start", 0)
            while dotted and self._match(TokenType.DOT):
                part = self._curr  # any word, keywords too (properties.fetch.wait.max.ms)
                if part is None or not part.text.replace("-", "_").isidentifier():
                    self._fail(f"Expected a name after '{key.name}.'")
                self._advance()
                key = exp.to_identifier(f"{key.name}.{part.text}")  # type: ignore[union-attr]
                key.meta.update(start=start, end=part.end)  # type: ignore[union-attr]
            if not self._match(TokenType.EQ):
                self._fail(f"Expected = after parameter '{key.name}'", f"Write {key.name} = value.")
            start = self._curr.start if self._curr else 0
            value = self._parse_bitwise()
            if value is None:
                self._fail(f"Expected a value for parameter '{key.name}'")
            value.meta.update(start=start, end=self._prev.end)  # type: ignore[union-attr]
            return exp.PropertyEQ(this=key, expression=value)

        # -- statements -------------------------------------------------------------
        def _parse_train(self) -> ast.Train:
            exists = self._exists(("IF", "NOT", "EXISTS"))
            name = self._name("a model name after TRAIN MODEL")
            self._expect("USING", "and a trainer after the model name")
            trainer = self._name("a trainer name after USING (e.g. lightgbm_classifier)")
            node = ast.Train(this=name, exists=exists, trainer=trainer)
            if self._match_text_seq("LABEL"):
                node.set("label", self._name("the label column after LABEL"))
            if self._match_text_seq("GROUP"):
                node.set("group", self._name("the group column after GROUP"))
            if self._match_text_seq("WEIGHT"):
                node.set("weight", self._name("the weight column after WEIGHT"))
            if self._match_text_seq("TEXT"):
                node.set("text", self._parse_wrapped_csv(lambda: self._name("a free-text column name")))
            if self._match_text_seq("TRANSFORM"):
                node.set("transform", self._transform_list())
            if self._match_text_seq("FEATURES"):
                node.set("features", self._parse_wrapped_csv(lambda: self._name("a column name")))
            elif self._match_text_seq("EXCLUDE"):
                node.set("exclude", self._parse_wrapped_csv(lambda: self._name("a column name")))
            if self._match(TokenType.WITH):
                node.set("params", self._parse_wrapped_csv(self._param))
            if not self._match(TokenType.ALIAS):
                found = self._curr.text if self._curr else "the end of the statement"
                expected = ["AS", "WITH", "FEATURES", "EXCLUDE", "LABEL", "GROUP", "WEIGHT", "TEXT", "TRANSFORM"]
                self._fail(
                    f"Expected AS SELECT ... to end TRAIN MODEL, found '{found}'",
                    did_you_mean(found.upper(), expected) or "TRAIN MODEL ... AS SELECT ...",
                )
            start = self._curr.start if self._curr else len(self.sql)
            query = self._parse_statement()
            if not isinstance(query, exp.Query):
                self._fail("Expected a query after AS", "TRAIN MODEL ... AS SELECT ...")
            query.meta.update(start=start, end=self._prev.end)  # type: ignore[union-attr]
            node.set("source", ast.QuerySource(this=query, text=self.sql[start : self._prev.end + 1]))
            return node

        def _parse_evaluate(self) -> ast.Evaluate:
            node = ast.Evaluate(this=self._model_ref())
            if self._match(TokenType.ON):
                node.set("source", self._source("after ON"))
            return node

        def _parse_create_stream(self) -> ast.CreateStream:
            replace = self._match_text_seq("OR", "REPLACE")
            self._expect("STREAM", "after CREATE")
            exists = self._exists(("IF", "NOT", "EXISTS"))
            node = ast.CreateStream(this=self._name("a stream name"), replace=replace, exists=exists)
            if not self._match(TokenType.L_PAREN):
                self._fail(
                    "Expected ( and the stream's columns",
                    "CREATE STREAM s (ts TIMESTAMP, ..., WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)",
                )
            columns = []
            while True:
                if self._match_text_seq("WATERMARK"):
                    self._expect("FOR", "after WATERMARK")
                    node.set("time", self._name("the time column after WATERMARK FOR"))
                    self._expect("AS", "after WATERMARK FOR column")
                    start = self._curr.start if self._curr else 0
                    delay = self._parse_bitwise()
                    if delay is not None:
                        delay.meta.update(start=start, end=self._prev.end)
                    node.set("delay", delay)
                else:
                    name = self._name("a column name")
                    type_token = self._curr
                    dtype = self._parse_types(check_func=False, schema=True)
                    if dtype is None:
                        self._fail(f"Expected a type for column '{name.name}'", "e.g. user_id BIGINT, ts TIMESTAMP")
                    else:
                        dtype.meta.update(start=type_token.start, end=self._prev.end)  # type: ignore[union-attr]
                    columns.append(exp.ColumnDef(this=name, kind=dtype))
                if not self._match(TokenType.COMMA):
                    break
            if not self._match(TokenType.R_PAREN):
                self._fail("Expected , or ) in the stream's columns")
            if node.args.get("time") is None:
                self._fail(
                    "A stream needs a WATERMARK clause",
                    "Add WATERMARK FOR ts AS ts - INTERVAL '5' SECOND after the columns.",
                )
            node.set("columns", columns)
            if self._match(TokenType.WITH):
                node.set("options", self._parse_wrapped_csv(self._stream_param))
            return node

        def _parse_import_model(self) -> ast.ImportModel:
            exists = self._exists(("IF", "NOT", "EXISTS"))
            name = self._name("a model name after IMPORT MODEL")
            self._expect("FROM", "and the model file after the model name")
            token = self._curr
            path = self._parse_primary()
            if not isinstance(path, exp.Literal) or not path.is_string or token is None:
                self._fail("Expected the model file as a string after FROM", "IMPORT MODEL m FROM 'model.onnx'")
            else:
                path.meta.update(start=token.start, end=token.end)
            node = ast.ImportModel(this=name, path=path, exists=exists)
            if self._match(TokenType.WITH):
                node.set("params", self._parse_wrapped_csv(self._param))
            return node

        def _parse_set_cluster(self) -> ast.SetCluster:
            if not (self._match(TokenType.EQ) or self._match_text_seq("TO")):
                self._fail("Expected = after SET cluster", "SET cluster = 'local:2'")
            token = self._curr
            value = self._parse_primary()
            if not isinstance(value, exp.Literal) or not value.is_string or token is None:
                self._fail("Expected the cluster's address as a string", "SET cluster = 'tcp://scheduler:8786'")
            else:
                value.meta.update(start=token.start, end=token.end)
            return ast.SetCluster(this=value)

        def _parse_reset_cluster(self) -> ast.SetCluster:
            return ast.SetCluster()

        def _parse_drop_stream(self) -> ast.DropStream:
            exists = self._exists(("IF", "EXISTS"))
            return ast.DropStream(this=self._name("a stream name"), exists=exists)

        def _parse_show_models(self) -> ast.ShowModels:
            return ast.ShowModels()

        def _parse_describe_model(self) -> ast.DescribeModel:
            return ast.DescribeModel(this=self._model_ref())

        def _parse_explain_model(self) -> ast.ExplainModel:
            return ast.ExplainModel(this=self._model_ref())

        def _parse_drop_model(self) -> ast.DropModel:
            exists = self._exists(("IF", "EXISTS"))
            return ast.DropModel(this=self._model_ref(), exists=exists)

        def _parse_table(self, *args: Any, **kwargs: Any) -> exp.Expr | None:
            if (
                self._curr
                and self._curr.token_type == TokenType.TABLE
                and self._next
                and self._next.token_type == TokenType.L_PAREN
                and self._index + 2 < len(self._tokens)
                and self._tokens[self._index + 2].text.upper() in WINDOW_KINDS
            ):
                return self._parse_window_table()
            return super()._parse_table(*args, **kwargs)

        def _parse_window_table(self) -> ast.WindowTable:
            self._advance(2)
            kind = self._curr.text.upper()  # type: ignore[union-attr]
            kind_token = self._curr
            self._advance()
            usage = f"{kind}(TABLE t, DESCRIPTOR(time_column), " + ", ".join(WINDOW_KINDS[kind]) + ")"
            if not self._match(TokenType.L_PAREN) or not self._match(TokenType.TABLE):
                self._fail(f"Expected TABLE name as {kind}'s first argument", usage)
            node = ast.WindowTable(this=kind, table=self._parse_table_parts())
            node.meta.update(start=kind_token.start, end=kind_token.end)  # type: ignore[union-attr]
            if self._match(TokenType.PARTITION_BY) or self._match_text_seq("PARTITION", "BY"):
                if kind != "SESSION":
                    self._fail(f"{kind} takes no PARTITION BY", usage)
                keys = [self._name("a partition column")]
                while (
                    self._curr
                    and self._curr.token_type == TokenType.COMMA
                    and self._next
                    and self._next.text.upper() != "DESCRIPTOR"
                ):
                    self._advance()
                    keys.append(self._name("a partition column"))
                node.set("partition", keys)
            if not self._match(TokenType.COMMA) or not self._match_text_seq("DESCRIPTOR"):
                self._fail(f"Expected DESCRIPTOR(time_column) as {kind}'s second argument", usage)
            self._match(TokenType.L_PAREN)
            node.set("time", self._name("the time column in DESCRIPTOR(...)"))
            self._match_r_paren()
            sizes = []
            for _ in WINDOW_KINDS[kind]:
                if not self._match(TokenType.COMMA):
                    self._fail(f"{kind} needs {len(WINDOW_KINDS[kind])} size argument(s)", usage)
                start = self._curr.start if self._curr else 0
                size = self._parse_bitwise()
                if size is None:
                    self._fail(f"Expected an INTERVAL in {kind}", usage)
                size.meta.update(start=start, end=self._prev.end)  # type: ignore[union-attr]
                sizes.append(size)
            node.set("sizes", sizes)
            if not self._match(TokenType.R_PAREN):
                self._fail(f"Expected ) to close {kind}(...)", usage)
            if not self._match(TokenType.R_PAREN):
                self._fail("Expected ) to close TABLE(...)")
            node.set("alias", self._parse_table_alias())
            return node

        def _closing(self, what: str, usage: str) -> None:
            """Require the ) that closes a table function, leaving it for sqlglot to consume."""
            if not self._curr or self._curr.token_type != TokenType.R_PAREN:
                found = self._curr.text if self._curr else "the end of the statement"
                self._fail(f"Expected ) to close {what}, found '{found}'", usage)

        def _parse_metrics(self, kind: type[ast.Metrics] = ast.Metrics) -> ast.Metrics:
            word = "METRICS" if kind is ast.Metrics else "FEATURE_RANKING"
            self._expect("MODEL", f"as {word}'s argument: {word}(MODEL name)")
            node = kind(this=self._model_ref())
            self._closing(f"{word}(...)", f"{word}(MODEL m)")
            return node

        def _parse_predict(self) -> ast.Predict:
            word = self._prev.text.upper() if self._prev and self._prev.token_type != TokenType.L_PAREN else ""
            word = word or self._tokens[self._index - 2].text.upper()
            self._expect("MODEL", f"as {word}'s first argument: {word}(MODEL name, ...)")
            ref = self._model_ref()
            if not self._match(TokenType.COMMA):
                self._fail(f"Expected a comma and the input after {word}'s model", f"{word}(MODEL m, TABLE t)")
            node = ast.Predict(this=ref, source=self._source(f"as {word}'s input", word.startswith("ML.")), kind=word)
            options, _ = self._function_options(word)
            if options:
                node.set("options", options)
            self._closing(f"{word}(...)", f"{word}(MODEL m, TABLE t) or {word}(MODEL m, (SELECT ...))")
            return node

        def _function_options(self, word: str) -> tuple[list[exp.Expr], list[exp.Expr]]:
            """A table function's named arguments after its model and input: `name => value`
            (sqlml), `STRUCT(value AS name, ...)` (BigQuery ML); and positional values
            (ML.ROC_CURVE's GENERATE_ARRAY(...) or [...] of thresholds)."""
            options: list[exp.Expr] = []
            values: list[exp.Expr] = []
            while self._match(TokenType.COMMA):
                start = self._curr.start if self._curr else 0
                if self._curr and self._next and self._next.token_type in (TokenType.FARROW, TokenType.COLON_EQ):
                    key = self._name("an argument name")
                    self._advance()
                    value = self._parse_bitwise()
                    if value is None:
                        self._fail(f"Expected a value for {word}'s argument '{key.name}'")
                    value.meta.update(start=self._tokens[self._index - 1].start, end=self._prev.end)  # type: ignore[union-attr]
                    options.append(exp.PropertyEQ(this=key, expression=value))
                    continue
                value = self._parse_bitwise()
                if isinstance(value, exp.Struct):
                    for prop in value.expressions:
                        if not isinstance(prop, exp.PropertyEQ):
                            self._fail(f"Name each field of {word}'s STRUCT", "STRUCT(0.5 AS threshold)")
                        options.append(prop)
                elif value is not None:
                    value.meta.update(start=start, end=self._prev.end)
                    values.append(value)
                else:
                    self._fail(f"Expected an argument for {word}", "name => value, or STRUCT(value AS name)")
            return options, values

        def _transform_list(self) -> list[exp.Expr]:
            """TRANSFORM's (expr AS name, column, *, ...), each positioned for errors."""

            def item() -> exp.Expr:
                start = self._curr.start if self._curr else 0
                node = self._parse_expression()
                if node is None:
                    self._fail(
                        "Expected an expression in TRANSFORM (...)", "TRANSFORM (ML.STANDARD_SCALER(x) OVER () AS x, y)"
                    )
                node.meta.update(start=start, end=self._prev.end)  # type: ignore[union-attr]
                return node  # type: ignore[return-value]

            return self._parse_wrapped_csv(item)

        def _parse_model_function(self) -> ast.ModelFunction:
            word = self._tokens[self._index - 2].text.upper()
            node = ast.ModelFunction(this=word)
            node.meta.update(start=self._tokens[self._index - 2].start, end=self._tokens[self._index - 2].end)
            if word == "MODELS":
                if self._curr and self._curr.token_type != TokenType.R_PAREN:
                    self._fail("MODELS() takes no arguments", "SELECT * FROM MODELS()")
                return node
            self._expect("MODEL", f"as {word}'s first argument: {word}(MODEL name, ...)")
            node.set("model", self._model_ref())
            if (
                self._curr
                and self._curr.token_type == TokenType.COMMA
                and self._next
                and self._next.token_type in (TokenType.TABLE, TokenType.L_PAREN, TokenType.STRING)
            ):
                self._advance()
                node.set("source", self._source(f"as {word}'s input", word.startswith("ML.")))
            options, values = self._function_options(word)
            node.set("options", options or None)
            node.set("values", values or None)
            self._closing(f"{word}(...)", f"{word}(MODEL m[, TABLE t])")
            return node

        def _parse_missing_ml(self) -> exp.Expr:
            word = self._tokens[self._index - 2].text.upper()
            self.error_token = self._tokens[self._index - 2]
            self.error_hint = (
                "sqlml has ML.PREDICT, ML.EVALUATE, ML.FEATURE_IMPORTANCE, ML.GLOBAL_EXPLAIN, ML.EXPLAIN_PREDICT, "
                "ML.TRAINING_INFO, ML.CONFUSION_MATRIX, ML.ROC_CURVE and ML.TRIAL_INFO; see docs/bigquery-ml.md."
            )
            super().raise_error(f"sqlml does not have BigQuery ML's {word}.", self.error_token)
            raise AssertionError  # raise_error raises at ErrorLevel.IMMEDIATE

        def _parse_create_model(self) -> ast.CreateModel:
            replace = self._match_text_seq("OR", "REPLACE")
            self._expect("MODEL", "after CREATE")
            exists = self._exists(("IF", "NOT", "EXISTS"))
            node = ast.CreateModel(this=self._model_name("a model name"), replace=replace, exists=exists)
            if self._match_text_seq("TRANSFORM"):
                node.set("transform", self._transform_list())
            if not self._match_text_seq("OPTIONS"):
                found = self._curr.text if self._curr else "the end of the statement"
                self._fail(
                    f"Expected OPTIONS (...) after CREATE MODEL's name, found '{found}'",
                    "CREATE MODEL m OPTIONS (model_type = 'logistic_reg', input_label_cols = ['y']) AS SELECT ...",
                )
            node.set("options", self._parse_wrapped_csv(self._param))
            if self._match(TokenType.ALIAS):
                wrapped = self._curr is not None and self._curr.token_type == TokenType.L_PAREN
                start = self._curr.start if self._curr else len(self.sql)
                query = self._parse_statement() if not wrapped else None
                if wrapped:
                    self._advance()
                    start = self._curr.start if self._curr else start
                    query = self._parse_statement()
                if not isinstance(query, exp.Query):
                    self._fail("Expected a query after AS", "CREATE MODEL ... OPTIONS (...) AS SELECT ...")
                end = self._prev.end
                if wrapped:
                    self._match_r_paren()
                query.meta.update(start=start, end=end)  # type: ignore[union-attr]
                node.set("source", ast.QuerySource(this=query, text=bigquery_sql(self.sql[start : end + 1], True)))
            return node

    class Generator(DuckDB.Generator):
        TRANSFORMS: dict[type[exp.Expr], Callable[..., str]] = {
            **DuckDB.Generator.TRANSFORMS,
            ast.ModelRef: lambda self, e: (
                f"MODEL {self.sql(e, 'this')}" + (f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else "")
            ),
            ast.QuerySource: lambda self, e: (
                f"TABLE {self.sql(e, 'this')}"
                if e.args.get("table")
                else self.sql(e, "this")
                if e.args.get("files")
                else f"({e.args['text']})"
            ),
            ast.Metrics: lambda self, e: e.args.get("rewrite") or f"METRICS({self.sql(e, 'this')})",
            ast.FeatureRanking: lambda self, e: e.args.get("rewrite") or f"FEATURE_RANKING({self.sql(e, 'this')})",
            ast.Predict: lambda self, e: (
                e.args["rewrite"]
                if e.args.get("rewrite")
                else f"{e.args.get('kind') or 'PREDICT'}({self.sql(e, 'this')}, {self.sql(e, 'source')}"
                + options_sql(self, e.args.get("options"))
                + ")"
            ),
            ast.ModelFunction: lambda self, e: e.args.get("rewrite") or model_function_sql(self, e),
            ast.CreateModel: lambda self, e: create_model_sql(self, e),
            ast.SetCluster: lambda self, e: set_cluster_sql(self, e),
            ast.Train: lambda self, e: train_sql(self, e),
            ast.WindowTable: lambda self, e: window_table_sql(self, e),
            ast.Evaluate: lambda self, e: (
                f"EVALUATE {self.sql(e, 'this')}" + (f" ON {self.sql(e, 'source')}" if e.args.get("source") else "")
            ),
            ast.ShowModels: lambda self, e: "SHOW MODELS",
            ast.ImportModel: lambda self, e: import_sql(self, e),
            ast.DropStream: lambda self, e: (
                "DROP STREAM " + ("IF EXISTS " if e.args.get("exists") else "") + self.sql(e, "this")
            ),
            ast.CreateStream: lambda self, e: create_stream_sql(self, e),
            ast.DescribeModel: lambda self, e: f"DESCRIBE {self.sql(e, 'this')}",
            ast.ExplainModel: lambda self, e: f"EXPLAIN {self.sql(e, 'this')}",
            ast.DropModel: lambda self, e: (
                "DROP MODEL "
                + ("IF EXISTS " if e.args.get("exists") else "")
                + self.sql(e, "this").removeprefix("MODEL ")
            ),
        }


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text, where it starts, and its tree.

    `node` is an `sqlml.ast` node for our statements, a sqlglot tree for SQL that calls
    PREDICT, and None for any other SQL, which DuckDB runs as written.
    """

    text: str
    span: Span
    node: exp.Expr | None
    script: str
    tokens: list[Token] = field(default_factory=list, repr=False, compare=False)
    children: tuple[Statement, ...] = ()  # the statements of an EXECUTE STATEMENT SET

    @property
    def kind(self) -> str:
        if self.children:
            return "StatementSet"
        return "sql" if self.node is None else type(self.node).__name__

    def span_of(self, node: exp.Expr | None) -> Span:
        """The position of a parsed node (from its meta, else from the first of its parts, or
        of its parent's, that has one), or the statement's own."""
        while node is not None:
            for part in node.walk():
                meta = part.meta if isinstance(part, exp.Expr) else {}
                if "start" in meta:
                    return Span.at(self.script, meta["start"], meta["end"] + 1)
            node = node.parent
        return self.span


_MISSING_ARG = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]+\.(\w+)'>")
_MISSING = re.compile(r"Missing (\S+) from \d+:(\d+)")
_TOKEN_REPR = re.compile(
    r"<Token token_type: [^,]+, text: (.*?), line: \d+, col: \d+, start: \d+, end: \d+, comments: \[.*?\]>"
)


def tokenize(script: str) -> list[Token]:
    """Tokens of a whole script, with a positioned error for text that is not SQL.

    >>> tokenize("SELECT 1;\\nSELECT 'abc")
    Traceback (most recent call last):
    sqlml.errors.SqlmlSyntaxError: Unterminated string: ' opened here is never closed. Close it with '.
    """
    try:
        return merge_ml_names(Sqlml().tokenize(script))
    except TokenError as err:
        missing = _MISSING.search(str(err.__cause__ or ""))
        if missing:
            quote, start = missing.group(1), int(missing.group(2))
            raise SqlmlSyntaxError(
                f"Unterminated string: {quote} opened here is never closed.", Span.at(script, start),
                f"Close it with {quote}.",
            ) from err  # fmt: skip
        comment = script.rfind("/*")
        if comment >= 0 and script.find("*/", comment) < 0:
            raise SqlmlSyntaxError(
                "Unterminated comment: /* opened here is never closed.", Span.at(script, comment, comment + 2),
                "Close it with */.",
            ) from err  # fmt: skip
        at = min(err.end if isinstance(err.end, int) else 0, max(len(script) - 1, 0))
        raise SqlmlSyntaxError("Cannot read the SQL here.", Span.at(script, at)) from err


def readable(message: str) -> str:
    """A parser message with sqlglot's token reprs replaced by the token's text.

    >>> readable("Expected table name but got <Token token_type: TokenType.R_PAREN, text: ), line: 1, col: 38, start: 37, end: 37, comments: []>")
    "Expected table name but got ')'"
    """
    message = _TOKEN_REPR.sub(lambda m: f"'{m.group(1)}'", message)
    missing = _MISSING_ARG.search(message)
    if missing:  # sqlglot's check of a node it built: say which clause is incomplete
        return f"Incomplete {missing.group(2).upper()}: its {'condition' if missing.group(1) == 'this' else missing.group(1)} is missing."
    return message


def parse(script: str) -> list[Statement]:
    """Split a script into statements and parse those that sqlml handles itself."""
    tokens = tokenize(script)
    chunks: list[list[Token]] = []
    chunk: list[Token] = []
    for token in [*tokens, None]:
        if token is not None and token.token_type != TokenType.SEMICOLON:
            chunk.append(token)
            continue
        if chunk:
            chunks.append(chunk)
        chunk = []
    statements: list[Statement] = []
    while chunks:
        chunk = chunks.pop(0)
        if [t.text.upper() for t in chunk[:4]] == SET_HEAD and len(chunk) > 4:
            statements.append(_statement_set(script, chunk, chunks))
        else:
            statements.append(_parse_chunk(script, chunk))
    return statements


SET_HEAD = ["EXECUTE", "STATEMENT", "SET", "BEGIN"]


def _statement_set(script: str, first: list[Token], rest: list[list[Token]]) -> Statement:
    """`EXECUTE STATEMENT SET BEGIN stmt; ...; END`: its statements, as children."""
    members = [first[4:]]
    while rest and [t.text.upper() for t in rest[0]] != ["END"]:
        members.append(rest.pop(0))
    if not rest:
        raise SqlmlSyntaxError(
            "EXECUTE STATEMENT SET has no END.", Span.at(script, first[0].start, first[3].end + 1), "Close it with END;"
        )
    end = rest.pop(0)[0]
    start = first[0].start
    children = tuple(_parse_chunk(script, m) for m in members)
    return Statement(script[start : end.end + 1], Span.at(script, start, end.end + 1), None, script, first, children)


def _is_ours(chunk: list[Token], names: frozenset[str] = frozenset()) -> bool:
    if len(chunk) > 1 and (chunk[0].text.upper(), chunk[1].text.upper()) in _HEADS:
        return True
    if (
        _create_stream_ahead(chunk)
        or _create_model_ahead(chunk)
        or (names and any(t.text.lower() in names for t in chunk))
    ):
        return True
    return any(
        (a.text.upper() in ("PREDICT", "METRICS", "FEATURE_RANKING") and b.token_type == TokenType.L_PAREN)
        or (a.text.startswith("ML.") and a.token_type == TokenType.VAR and b.token_type == TokenType.L_PAREN)
        or (
            a.text.upper() in _OWN_FUNCTIONS
            and b.token_type == TokenType.L_PAREN
            and (c.text.upper() == "MODEL" or a.text.upper() == "MODELS")
        )
        or (a.token_type == TokenType.TABLE and b.token_type == TokenType.L_PAREN and c.text.upper() in WINDOW_KINDS)
        for a, b, c in zip(chunk, chunk[1:], chunk[2:] + [chunk[-1]])
    )


_OWN_FUNCTIONS = frozenset(n for n in (*MODEL_FUNCTIONS, *PREDICT_FUNCTIONS) if not n.startswith("ML."))


def reparse(statement: Statement, names: frozenset[str]) -> Statement:
    """Parse a statement left to DuckDB again if it names one of the given streams."""
    if statement.node is not None or not _is_ours(statement.tokens, names):
        return statement
    return _parse_chunk(statement.script, statement.tokens, force=True)


def _parse_chunk(script: str, chunk: list[Token], force: bool = False) -> Statement:
    start, end = chunk[0].start, chunk[-1].end + 1
    text, span = script[start:end], Span.at(script, start, end)
    if not force and not _is_ours(chunk):
        if any(t.token_type == TokenType.IDENTIFIER and script[t.start] == "`" for t in chunk):
            text = bigquery_sql(text)  # BigQuery's SQL in a BigQuery ML script
        return Statement(text, span, None, script, chunk)
    parser: Any = Sqlml().parser(error_level=ErrorLevel.IMMEDIATE)
    try:
        trees = parser.parse(chunk, script)
    except ParseError as err:
        token = parser.error_token or chunk[-1]
        description = readable(err.errors[0]["description"] if err.errors else str(err))
        raise SqlmlSyntaxError(description, Span.at(script, token.start, token.end + 1), parser.error_hint) from err
    return Statement(text, span, trees[0], script, chunk)
