"""The interactive prompt: multi-line statements ended by ';', history, completion of
keywords, tables, columns and models, SQL highlighting, Ctrl-C to cancel, and the
meta-commands of duckdb's CLI and psql."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import has_completions
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.lexers import PygmentsLexer
from pygments.lexers.sql import SqlLexer
from sqlglot.tokens import TokenType

from sqlml.api import Session
from sqlml.dialect import KEYWORDS, SET_HEAD, tokenize
from sqlml.errors import SqlmlError
from sqlml.render import MAX_ROWS, MODES, error_text, is_status, table_text

HELP = """\
Statements end with ';' and may span lines (Up recalls a whole statement). Meta-commands:
  .help  \\?             this help; .ml for the ML statements, one example each
  .tables \\dt           list tables and views
  .models \\dm           list models (SHOW MODELS)
  .schema [TABLE]        the CREATE statements of tables and views
  \\d NAME               describe a table, view or model
  .read FILE  \\i FILE    run the statements in FILE
  .output [FILE]  \\o    send results to FILE (no FILE: back to the screen)
  .once FILE             send the next result to FILE
  .open DB               open another DuckDB database (same catalog)
  .mode MODE             box (default), csv, json, line or markdown
  .maxrows N             rows shown before the middle ones are left out (default 40)
  .timer on|off \\timing  show how long each statement took
  .debug on|off          show the Python traceback of an internal error
  .quit .exit \\q        leave (or Ctrl-D)
Ctrl-C cancels the running statement or clears the input."""

ML_HELP = """\
The ML statements, one example each (beside all of DuckDB's SQL; docs/reference.md has the rest):
  TRAIN MODEL churn USING lightgbm_classifier LABEL churned EXCLUDE (id) WITH (num_leaves = 31) AS SELECT * FROM customers;
  TRAIN MODEL spam USING lightgbm_classifier LABEL is_spam TEXT (body) AS SELECT is_spam, body FROM messages;
  TRAIN MODEL segments USING kmeans WITH (n_clusters = 4) AS SELECT tenure, spend FROM customers;   -- no LABEL
  IMPORT MODEL digits FROM 'cnn.onnx' WITH (classes = [0, 1, 2], inputs = 'pixels');
  EVALUATE MODEL churn;                                    -- metrics on the held-out rows
  EVALUATE MODEL churn ON (SELECT * FROM customers WHERE month = 6);
  SELECT id, prediction, probability FROM PREDICT(MODEL churn, TABLE customers);
  SHOW MODELS;  DESCRIBE MODEL churn;  EXPLAIN MODEL churn;  DROP MODEL churn VERSION 1;
  SELECT * FROM METRICS(MODEL churn);  SELECT * FROM FEATURE_RANKING(MODEL spam);
  TRAIN MODEL tuned USING lightgbm_classifier LABEL churned WITH (num_leaves = HPARAM_RANGE(8, 128), trials = 20) AS ...;
  SELECT * FROM TRIALS(MODEL tuned);  SELECT * FROM ROC_CURVE(MODEL churn);  SELECT * FROM MODELS();
  SELECT * FROM EVALUATE(MODEL churn, TABLE customers, threshold => 0.3);   -- results are tables: join, filter, store
  SELECT * FROM EXPLAIN_PREDICT(MODEL churn, TABLE customers, top_k => 3);  -- exact SHAP values (tree models)
  CREATE MODEL m OPTIONS (model_type = 'logistic_reg', input_label_cols = ['y']) AS SELECT ...;  -- BigQuery ML
  SET cluster = 'local:2';  TRAIN MODEL big USING lightgbm_classifier LABEL y WITH (distributed = true) AS ...;  -- Dask
  CREATE STREAM clicks (user_id BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
    WITH (connector = 'files', path = 'clicks/*.jsonl');
  SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY ALL;"""

BANNER = "sqlml: DuckDB SQL with TRAIN, EVALUATE and PREDICT. Type .help for help, .ml for the ML statements, .quit to leave."

EXTRA_KEYWORDS = ("LIMIT", "ORDER", "BY", "JOIN", "LEFT", "GROUP BY", "HAVING", "VALUES", "INTO", "DISTINCT")
TABLE_FUNCTIONS = ("PREDICT", "METRICS", "FEATURE_RANKING", "TABLE", "read_csv", "read_parquet", "read_json")
_AFTER_TABLE = {"FROM", "JOIN", "INTO", "TABLE", "UPDATE"}
_AFTER_COLUMN = {"SELECT", "WHERE", "BY", "AND", "OR", "ON", "HAVING", "LABEL", "GROUP", "WEIGHT", "FEATURES",
                 "EXCLUDE", "TEXT", ",", "(", "=", "<", ">"}  # fmt: skip


def is_complete(text: str) -> bool:
    """Whether the input is a whole statement: a meta-command, or SQL whose last token is ';'
    (a comment after it is fine; a string or comment left open is not). An EXECUTE
    STATEMENT SET runs when its END; arrives.

    >>> is_complete("SELECT 1; -- done"), is_complete("SELECT ';"), is_complete(".tables")
    (True, False, True)
    """
    stripped = text.strip()
    if stripped.startswith((".", "\\")):
        return True
    try:
        tokens = tokenize(stripped)
    except SqlmlError:
        return False
    if not tokens or tokens[-1].token_type != TokenType.SEMICOLON:
        return False
    words = [t.text.upper() for t in tokens]
    if words[:4] == SET_HEAD:
        return len(words) >= 2 and words[-2] == "END"
    return True


class SqlCompleter(Completer):
    """Completes by place: after FROM or JOIN tables, views, streams and table functions;
    after MODEL model names; after SELECT, WHERE and the like the columns of the statement's
    tables; keywords everywhere."""

    def __init__(self, names: Callable[[str], list[str]]) -> None:
        self.names = names  # names("tables" | "models" | "columns:t1,t2" | "trainers")

    def get_completions(self, document: Document, complete_event: object) -> Iterable[Completion]:
        before = document.text_before_cursor
        word = document.get_word_before_cursor(WORD=False)
        previous = re.findall(r"[A-Za-z_][\w]*|[,(=<>]", before[: len(before) - len(word)])
        last = previous[-1].upper() if previous else ""
        if last == "MODEL":
            choices = self.names("models")
        elif last == "USING":
            choices = self.names("trainers")
        elif last in _AFTER_TABLE:
            choices = [*self.names("tables"), *TABLE_FUNCTIONS]
        elif last in _AFTER_COLUMN:
            tables = re.findall(r"(?:FROM|JOIN|TABLE)\s+([\w.]+)", document.text, re.IGNORECASE)
            choices = [*self.names("columns:" + ",".join(tables)), *KEYWORDS, *EXTRA_KEYWORDS]
        else:
            choices = [*KEYWORDS, *EXTRA_KEYWORDS]
        lower = word.lower()
        for choice in sorted(set(choices), key=str.lower):
            if choice.lower().startswith(lower) and choice.lower() != lower:
                yield Completion(choice, start_position=-len(word))


class Repl:
    def __init__(
        self, session: Session, history: str | None = None, debug: bool = False,
        reopen: Callable[[str], Session] | None = None,
    ) -> None:  # fmt: skip
        self.session = session
        self.reopen = reopen  # opens another database with the same catalog (.open)
        self.timer = False
        self.debug = debug
        self.mode = "box"
        self.max_rows = MAX_ROWS
        self.output: str | None = None  # .output FILE
        self.once: str | None = None  # .once FILE
        path = history or os.environ.get("SQLML_HISTORY") or str(Path.home() / ".sqlml_history")
        bindings = KeyBindings()

        @bindings.add("enter", filter=~has_completions)
        def _(event: Any) -> None:  # Enter runs a whole statement and continues an unfinished one
            buffer = event.current_buffer
            if is_complete(buffer.text) or not buffer.text.strip():
                buffer.validate_and_handle()
            else:
                buffer.insert_text("\n")

        self.prompt: PromptSession[str] = PromptSession(
            history=FileHistory(path),
            lexer=PygmentsLexer(SqlLexer),
            completer=SqlCompleter(self.names),
            complete_while_typing=False,
            multiline=True,
            key_bindings=bindings,
            prompt_continuation=lambda width, line, wrap: "   ...> ".rjust(width),
        )

    def names(self, what: str) -> list[str]:
        """Names for completion, read from the session now."""
        con = self.session.connection
        try:
            if what == "models":
                return self.session.catalog.names()
            if what == "trainers":
                from sqlml import models

                return models.names()
            if what == "tables":
                rows = con.execute("SELECT DISTINCT table_name FROM information_schema.tables").fetchall()
                return [r[0] for r in rows] + list(self.session.engine.streams.names())
            tables = [t.split(".")[-1] for t in what.removeprefix("columns:").split(",") if t]
            rows = con.execute(
                "SELECT DISTINCT column_name FROM information_schema.columns WHERE ? = [] OR list_contains(?, table_name)",
                [tables, tables],
            ).fetchall()
            return [r[0] for r in rows]
        except Exception:  # completion must never break the prompt (e.g. in an aborted transaction)
            return []

    def read_statement(self) -> str:
        return self.prompt.prompt("sqlml> ").strip()

    def show(self, text: str) -> None:
        """Print a result, or write it to the .output / .once file."""
        target = self.once or self.output
        if target is None:
            print(text, end="", flush=True)
            return
        self.once = None
        try:
            with open(target, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as err:
            print(f"error: cannot write {target}: {err.strerror or err}")

    def render(self, table: pa.Table) -> str:
        if self.mode == "box":
            width = shutil.get_terminal_size().columns if (self.once or self.output) is None else 250
            return table_text(table, max(width, 40), self.max_rows)
        return MODES[self.mode](table)

    def meta(self, command: str) -> bool:
        """Run a meta-command; False means leave."""
        word, _, arg = command.partition(" ")
        word, arg = word.lower().rstrip(";"), arg.strip().rstrip(";").strip()
        if word in (".quit", ".exit", "\\q"):
            return False
        handler = self.commands().get(word)
        if handler is None:
            print(f"Unknown meta-command {word}. Type .help for the list.")
            return True
        try:
            handler(arg)
        except OSError as err:  # .output, .once: a file that cannot be written
            print(f"error: cannot write {err.filename or arg}: {err.strerror or err}")
        return True

    def commands(self) -> dict[str, Callable[[str], None]]:
        """Every meta-command (the reference documents each; tests/test_docs.py checks)."""
        return {
            ".help": lambda arg: print(ML_HELP if arg.lower() == "ml" else HELP),
            "\\?": lambda arg: print(HELP),
            "\\h": lambda arg: print(HELP),
            ".ml": lambda arg: print(ML_HELP),
            ".tables": lambda arg: self.run("SHOW TABLES;"),
            "\\dt": lambda arg: self.run("SHOW TABLES;"),
            ".models": lambda arg: self.run("SHOW MODELS;"),
            "\\dm": lambda arg: self.run("SHOW MODELS;"),
            ".schema": self.schema,
            "\\d": self.describe,
            ".read": self.read,
            "\\i": self.read,
            ".output": self.set_output,
            "\\o": self.set_output,
            ".once": self.set_once,
            ".open": self.open,
            ".mode": self.set_mode,
            ".maxrows": self.set_max_rows,
            ".timer": self.set_timer,
            "\\timing": self.set_timer,
            ".debug": self.set_debug,
        }

    def schema(self, arg: str) -> None:
        where = "WHERE lower(name) = lower($name)" if arg else ""
        sql = (
            "SELECT sql FROM (SELECT table_name AS name, sql FROM duckdb_tables() UNION ALL "
            f"SELECT view_name, sql FROM duckdb_views() WHERE NOT internal) {where} ORDER BY name"
        )
        try:
            rows = self.session.connection.execute(sql, {"name": arg} if arg else None).fetchall()
        except Exception as err:
            print(f"error: {err}")
            return
        self.show("".join(f"{r[0]}\n" for r in rows) or f"No table or view named {arg}.\n")

    def describe(self, arg: str) -> None:
        if not arg:
            self.run("SHOW TABLES;")
        elif arg.lower() in {m.lower() for m in self.session.catalog.names()}:
            self.run(f"DESCRIBE MODEL {arg};")
        else:
            self.run(f"DESCRIBE {arg};")

    def read(self, arg: str) -> None:
        try:
            script = Path(arg).read_text()
        except OSError as err:
            print(f"error: cannot read {arg or 'the file'}: {err.strerror}")
            return
        self.run(script, source=arg)

    def set_output(self, arg: str) -> None:
        if arg:
            Path(arg).write_text("")  # a file that cannot be written leaves the output where it was
        self.output = arg or None

    def set_once(self, arg: str) -> None:
        if not arg:
            print("Usage: .once FILE")
            return
        Path(arg).write_text("")
        self.once = arg

    def open(self, arg: str) -> None:
        if not arg or self.reopen is None:
            print("Usage: .open DATABASE_FILE")
            return
        try:
            session = self.reopen(arg)
        except SqlmlError as err:
            print(error_text(err, "<repl>", None))
            return
        self.session.close()
        self.session = session
        print(f"Opened {arg}.")

    def set_mode(self, arg: str) -> None:
        if arg.lower() not in MODES:
            print(f"Modes: {', '.join(MODES)}." + (f" ({arg!r} is not one.)" if arg else ""))
            return
        self.mode = arg.lower()

    def set_max_rows(self, arg: str) -> None:
        if not arg.isdigit() or int(arg) < 1:
            print(f"Usage: .maxrows N (now {self.max_rows})")
            return
        self.max_rows = int(arg)

    def set_timer(self, arg: str) -> None:
        self.timer = {"on": True, "off": False}.get(arg.lower(), not self.timer)
        print(f"Timer is {'on' if self.timer else 'off'}.")

    def set_debug(self, arg: str) -> None:
        self.debug = {"on": True, "off": False}.get(arg.lower(), not self.debug)
        print(f"Debug is {'on' if self.debug else 'off'}.")

    def run(self, script: str, source: str = "<repl>") -> None:
        """Run a script in a worker thread, so Ctrl-C here can interrupt DuckDB or LightGBM."""
        started = time.perf_counter()
        outcome: dict[str, Any] = {}
        self.session.engine.stop.clear()

        def work() -> None:
            try:  # results print as they come: a continuous SELECT prints as windows close
                for statement, result in self.session.run(script):
                    if result is None:
                        continue
                    table = result.arrow()
                    if (table.schema.metadata or {}).get(b"sqlml") == b"status":
                        self.show(f"{table.column(0)[0].as_py()}\n")  # a short confirmation
                    elif not is_status(statement.text, table.column_names):
                        self.show(self.render(table))
            except BaseException as err:  # handed to the main thread
                outcome["error"] = err

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        cancelled = False
        while worker.is_alive():
            try:
                worker.join(0.05)
            except KeyboardInterrupt:
                cancelled = True
                self.session.interrupt()
        error = outcome.get("error")
        if cancelled:
            print("Cancelled.")
        elif isinstance(error, SqlmlError):
            print(error_text(error, source, script))
        elif isinstance(error, KeyboardInterrupt):
            print("Cancelled.")
        elif error is not None:  # a bug: say so, and keep the session (and its tables) going
            if self.debug:
                traceback.print_exception(error)
            print(f"internal error: {type(error).__name__}: {error}")
            print("hint: this is a bug in sqlml; .debug on shows the traceback to report.")
        if self.timer:
            print(f"Run time: {time.perf_counter() - started:.3f} s")

    def loop(self) -> None:
        print(BANNER)
        while True:
            try:
                text = self.read_statement()
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if not text:
                continue
            if text.startswith((".", "\\")):
                if not self.meta(text):
                    break
                continue
            try:
                self.run(text)
            except KeyboardInterrupt:
                print("Cancelled.")
