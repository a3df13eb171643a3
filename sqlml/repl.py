"""The interactive prompt: multi-line statements ended by ';', history, completion of
keywords, tables, columns and models, SQL highlighting, Ctrl-C to cancel, and the
meta-commands of duckdb's CLI and psql."""

from __future__ import annotations

import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion, WordCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.lexers import PygmentsLexer
from pygments.lexers.sql import SqlLexer

from sqlml.api import Session
from sqlml.dialect import KEYWORDS
from sqlml.errors import SqlmlError
from sqlml.render import error_text, table_text

HELP = """\
Statements end with ';' and may span lines. Meta-commands:
  .help  \\?          this help
  .tables \\dt        list tables and views
  .models \\dm        list models (SHOW MODELS)
  .timer on|off \\timing   show how long each statement took
  .debug on|off      show the Python traceback of an internal error
  .quit .exit \\q     leave (or Ctrl-D)
Ctrl-C cancels the running statement or clears the input."""

EXTRA_KEYWORDS = ("LIMIT", "ORDER", "BY", "JOIN", "LEFT", "GROUP BY", "HAVING", "VALUES", "INTO", "DISTINCT",
                  "lightgbm_classifier", "lightgbm_regressor", "lightgbm_ranker")  # fmt: skip


class NameCompleter(Completer):
    """Completes keywords and the names the session knows right now."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self.names = names

    def get_completions(self, document: Document, complete_event: object) -> Iterable[Completion]:
        words = sorted({*KEYWORDS, *EXTRA_KEYWORDS, *self.names()})
        return WordCompleter(words, ignore_case=True).get_completions(document, complete_event)  # type: ignore[arg-type]


class Repl:
    def __init__(self, session: Session, history: str | None = None, debug: bool = False) -> None:
        self.session = session
        self.timer = False
        self.debug = debug
        path = history or os.environ.get("SQLML_HISTORY") or str(Path.home() / ".sqlml_history")
        self.prompt: PromptSession[str] = PromptSession(
            history=FileHistory(path),
            lexer=PygmentsLexer(SqlLexer),
            completer=NameCompleter(self.names),
            complete_while_typing=False,
        )

    def names(self) -> list[str]:
        con = self.session.connection
        try:
            rows = con.execute(
                "SELECT DISTINCT table_name FROM information_schema.tables "
                "UNION SELECT DISTINCT column_name FROM information_schema.columns"
            ).fetchall()
        except Exception:
            rows = []
        return [r[0] for r in rows] + self.session.catalog.names()

    def read_statement(self) -> str:
        lines: list[str] = []
        while True:
            text = self.prompt.prompt("sqlml> " if not lines else "   ...> ")
            lines.append(text)
            joined = "\n".join(lines).strip()
            if not joined:
                lines = []
                continue
            if joined.startswith((".", "\\")) or joined.endswith(";"):
                return joined

    def meta(self, command: str) -> bool:
        """Run a meta-command; False means leave."""
        word, _, arg = command.partition(" ")
        if word in (".quit", ".exit", "\\q"):
            return False
        if word in (".help", "\\?", "\\h"):
            print(HELP)
        elif word in (".tables", "\\dt"):
            self.run("SHOW TABLES;")
        elif word in (".models", "\\dm"):
            self.run("SHOW MODELS;")
        elif word in (".timer", "\\timing"):
            self.timer = {"on": True, "off": False}.get(arg.strip().lower(), not self.timer)
            print(f"Timer is {'on' if self.timer else 'off'}.")
        elif word == ".debug":
            self.debug = {"on": True, "off": False}.get(arg.strip().lower(), not self.debug)
            print(f"Debug is {'on' if self.debug else 'off'}.")
        else:
            print(f"Unknown meta-command {word}. Type .help for the list.")
        return True

    def run(self, script: str) -> None:
        """Run a script in a worker thread, so Ctrl-C here can interrupt DuckDB or LightGBM."""
        started = time.perf_counter()
        outcome: dict[str, Any] = {}
        self.session.engine.stop.clear()

        def work() -> None:
            try:  # results print as they come: a continuous SELECT prints as windows close
                for _, result in self.session.run(script):
                    if result is not None:
                        width = shutil.get_terminal_size().columns
                        print(table_text(result.arrow(), max(width, 60)), end="", flush=True)
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
            print(error_text(error, "<repl>", script))
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
        print("sqlml: DuckDB SQL with TRAIN, EVALUATE and PREDICT. Type .help for help, .quit to leave.")
        while True:
            try:
                text = self.read_statement()
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if text.startswith((".", "\\")):
                if not self.meta(text):
                    break
                continue
            try:
                self.run(text)
            except KeyboardInterrupt:
                print("Cancelled.")
