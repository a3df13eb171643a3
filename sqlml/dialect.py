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
from sqlml.errors import Span, SqlmlSyntaxError, did_you_mean

KEYWORDS = (
    "TRAIN", "EVALUATE", "PREDICT", "MODEL", "MODELS", "USING", "LABEL", "GROUP", "WEIGHT", "TEXT", "FEATURES",
    "EXCLUDE", "WITH", "AS", "VERSION", "ON", "TABLE", "SHOW", "DESCRIBE", "EXPLAIN", "DROP",
    "SELECT", "FROM", "WHERE", "INSERT", "CREATE", "COPY", "UPDATE", "DELETE", "IF", "EXISTS", "METRICS",
    "FEATURE_RANKING", "IMPORT",
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
}


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

    class Parser(DuckDB.Parser):
        FUNCTION_PARSERS = {
            **DuckDB.Parser.FUNCTION_PARSERS,
            "PREDICT": lambda self: self._parse_predict(),
            "METRICS": lambda self: self._parse_metrics(),
            "FEATURE_RANKING": lambda self: self._parse_metrics(ast.FeatureRanking),
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

        def _model_ref(self, what: str = "a model name") -> ast.ModelRef:
            ref = ast.ModelRef(this=self._name(what))
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

        def _source(self, what: str) -> ast.QuerySource:
            """`(query)` or `TABLE name`."""
            if self._match(TokenType.TABLE):
                table = self._parse_table_parts()
                return ast.QuerySource(this=table, text=f"SELECT * FROM {table.sql('duckdb')}", table=True)
            if not self._match(TokenType.L_PAREN):
                self._fail(f"Expected (SELECT ...) or TABLE name {what}")
            start = self._curr.start if self._curr else 0
            query = self._parse_statement()
            if not isinstance(query, exp.Query):
                self._fail(f"Expected a query {what}", "Write (SELECT ...) or TABLE name.")
            text = self.sql[start : self._prev.end + 1]
            query.meta.update(start=start, end=self._prev.end)  # type: ignore[union-attr]
            self._match_r_paren()
            return ast.QuerySource(this=query, text=text)

        def _param(self) -> exp.Expr:
            key = self._name("a parameter name")
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
            if self._match_text_seq("FEATURES"):
                node.set("features", self._parse_wrapped_csv(lambda: self._name("a column name")))
            elif self._match_text_seq("EXCLUDE"):
                node.set("exclude", self._parse_wrapped_csv(lambda: self._name("a column name")))
            if self._match(TokenType.WITH):
                node.set("params", self._parse_wrapped_csv(self._param))
            if not self._match(TokenType.ALIAS):
                found = self._curr.text if self._curr else "the end of the statement"
                expected = ["AS", "WITH", "FEATURES", "EXCLUDE", "LABEL", "GROUP", "WEIGHT", "TEXT"]
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
                node.set("options", self._parse_wrapped_csv(self._param))
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
            self._expect("MODEL", "as PREDICT's first argument: PREDICT(MODEL name, ...)")
            ref = self._model_ref()
            if not self._match(TokenType.COMMA):
                self._fail("Expected a comma and the input after PREDICT's model", "PREDICT(MODEL m, TABLE t)")
            node = ast.Predict(this=ref, source=self._source("as PREDICT's input"))
            self._closing("PREDICT(...)", "PREDICT(MODEL m, TABLE t) or PREDICT(MODEL m, (SELECT ...))")
            return node

    class Generator(DuckDB.Generator):
        TRANSFORMS: dict[type[exp.Expr], Callable[..., str]] = {
            **DuckDB.Generator.TRANSFORMS,
            ast.ModelRef: lambda self, e: (
                f"MODEL {self.sql(e, 'this')}" + (f" VERSION {self.sql(e, 'version')}" if e.args.get("version") else "")
            ),
            ast.QuerySource: lambda self, e: (
                f"TABLE {self.sql(e, 'this')}" if e.args.get("table") else f"({e.args['text']})"
            ),
            ast.Metrics: lambda self, e: e.args.get("rewrite") or f"METRICS({self.sql(e, 'this')})",
            ast.FeatureRanking: lambda self, e: e.args.get("rewrite") or f"FEATURE_RANKING({self.sql(e, 'this')})",
            ast.Predict: lambda self, e: (
                e.args["rewrite"]
                if e.args.get("rewrite")
                else f"PREDICT({self.sql(e, 'this')}, {self.sql(e, 'source')})"
            ),
            ast.Train: lambda self, e: _train_sql(self, e),
            ast.WindowTable: lambda self, e: _window_table_sql(self, e),
            ast.Evaluate: lambda self, e: (
                f"EVALUATE {self.sql(e, 'this')}" + (f" ON {self.sql(e, 'source')}" if e.args.get("source") else "")
            ),
            ast.ShowModels: lambda self, e: "SHOW MODELS",
            ast.ImportModel: lambda self, e: _import_sql(self, e),
            ast.DropStream: lambda self, e: (
                "DROP STREAM " + ("IF EXISTS " if e.args.get("exists") else "") + self.sql(e, "this")
            ),
            ast.CreateStream: lambda self, e: _create_stream_sql(self, e),
            ast.DescribeModel: lambda self, e: f"DESCRIBE {self.sql(e, 'this')}",
            ast.ExplainModel: lambda self, e: f"EXPLAIN {self.sql(e, 'this')}",
            ast.DropModel: lambda self, e: (
                "DROP MODEL "
                + ("IF EXISTS " if e.args.get("exists") else "")
                + self.sql(e, "this").removeprefix("MODEL ")
            ),
        }


def _train_sql(gen: Any, e: ast.Train) -> str:
    parts = ["TRAIN MODEL", "IF NOT EXISTS" if e.args.get("exists") else "", gen.sql(e, "this")]
    parts += ["USING", gen.sql(e, "trainer")]
    for key in ("label", "group", "weight"):
        if e.args.get(key):
            parts += [key.upper(), gen.sql(e, key)]
    for key in ("text", "features", "exclude"):
        if e.args.get(key):
            parts += [key.upper(), f"({gen.expressions(e, key, flat=True)})"]
    if e.args.get("params"):
        params = ", ".join(f"{p.this.sql()} = {gen.sql(p, 'expression')}" for p in e.args["params"])
        parts += ["WITH", f"({params})"]
    parts += ["AS", e.args["source"].args["text"]]
    return " ".join(p for p in parts if p)


def _with_sql(gen: Any, params: list[exp.Expr] | None) -> str:
    if not params:
        return ""
    return " WITH (" + ", ".join(p.this.sql() + " = " + gen.sql(p, "expression") for p in params) + ")"


def _import_sql(gen: Any, e: ast.ImportModel) -> str:
    exists = "IF NOT EXISTS " if e.args.get("exists") else ""
    return f"IMPORT MODEL {exists}{gen.sql(e, 'this')} FROM {gen.sql(e, 'path')}" + _with_sql(gen, e.args.get("params"))


def _create_stream_sql(gen: Any, e: ast.CreateStream) -> str:
    head = (
        "CREATE "
        + ("OR REPLACE " if e.args.get("replace") else "")
        + "STREAM "
        + ("IF NOT EXISTS " if e.args.get("exists") else "")
    )
    cols = [f"{gen.sql(c, 'this')} {gen.sql(c, 'kind')}" for c in e.args["columns"]]
    delay = gen.sql(e, "delay")
    cols.append(f"WATERMARK FOR {gen.sql(e, 'time')} AS {delay}")
    options = ", ".join(f"{p.this.sql()} = {gen.sql(p, 'expression')}" for p in e.args.get("options") or [])
    return f"{head}{gen.sql(e, 'this')} ({', '.join(cols)})" + (f" WITH ({options})" if options else "")


def _window_table_sql(gen: Any, e: ast.WindowTable) -> str:
    alias = f" AS {gen.sql(e, 'alias')}" if e.args.get("alias") else ""
    if e.args.get("rewrite"):
        return f"({e.args['rewrite']}){alias}"
    partition = f" PARTITION BY {gen.expressions(e, 'partition', flat=True)}" if e.args.get("partition") else ""
    sizes = ", ".join(gen.sql(s) for s in e.args["sizes"])
    return f"TABLE({e.this}(TABLE {gen.sql(e, 'table')}{partition}, DESCRIPTOR({gen.sql(e, 'time')}), {sizes})){alias}"


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
        return Sqlml().tokenize(script)
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
    if _create_stream_ahead(chunk) or (names and any(t.text.lower() in names for t in chunk)):
        return True
    return any(
        (a.text.upper() in ("PREDICT", "METRICS", "FEATURE_RANKING") and b.token_type == TokenType.L_PAREN)
        or (a.token_type == TokenType.TABLE and b.token_type == TokenType.L_PAREN and c.text.upper() in WINDOW_KINDS)
        for a, b, c in zip(chunk, chunk[1:], chunk[2:] + [chunk[-1]])
    )


def reparse(statement: Statement, names: frozenset[str]) -> Statement:
    """Parse a statement left to DuckDB again if it names one of the given streams."""
    if statement.node is not None or not _is_ours(statement.tokens, names):
        return statement
    return _parse_chunk(statement.script, statement.tokens, force=True)


def _parse_chunk(script: str, chunk: list[Token], force: bool = False) -> Statement:
    start, end = chunk[0].start, chunk[-1].end + 1
    text, span = script[start:end], Span.at(script, start, end)
    if not force and not _is_ours(chunk):
        return Statement(text, span, None, script, chunk)
    parser: Any = Sqlml().parser(error_level=ErrorLevel.IMMEDIATE)
    try:
        trees = parser.parse(chunk, script)
    except ParseError as err:
        token = parser.error_token or chunk[-1]
        description = readable(err.errors[0]["description"] if err.errors else str(err))
        raise SqlmlSyntaxError(description, Span.at(script, token.start, token.end + 1), parser.error_hint) from err
    return Statement(text, span, trees[0], script, chunk)
