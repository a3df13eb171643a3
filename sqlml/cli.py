"""The command line: `sqlml run`, `sqlml repl`. Parses arguments, calls the API, renders.

Heavy modules (duckdb, lightgbm, pyarrow) are imported inside the commands, so
`sqlml --help` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sqlml.api import Session

app = typer.Typer(
    help="sqlml: DuckDB SQL plus TRAIN, EVALUATE and PREDICT for LightGBM models.",
    no_args_is_help=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = typer.Option(":memory:", "--db", help="DuckDB database file (default: in memory).")
CatalogOption = typer.Option(
    None, "--catalog", envvar="SQLML_CATALOG", help="Model catalog folder (default: ./catalog)."
)


def open_session(db: str, catalog: Path | None) -> Session:
    from sqlml.api import connect

    session = connect(db, catalog)
    session.set_progress(progress_bar)
    session.engine.on_stream_done = stream_summary
    session.engine.on_window = window_line
    return session


def window_line(model: str, report: Any) -> None:
    """One line on stderr per window a continuous TRAIN closes."""
    trained = f"v{report.trained} trained" if report.trained else f"training failed ({report.error})"
    metric = f", {report.metric} {report.value:.4f} before training" if report.value is not None else ""
    serving = f"v{report.serving}" if report.serving else "none"
    typer.echo(
        f"{model}: window {report.window_start} - {report.window_end}: {trained}, serving {serving}{metric}", err=True
    )


def stop_cleanly_on_signals(session: Session) -> None:
    """SIGTERM (and a first Ctrl-C) end continuous queries at the next micro-batch: the
    checkpoint is committed and the run exits 0. A second Ctrl-C interrupts at once."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and (session.engine.stop.is_set() or not session.engine.streaming):
            raise KeyboardInterrupt
        session.engine.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def stream_summary(stream: str, done: Any) -> None:
    """One line on stderr when a continuous query ends: what it read, what it could not use."""
    typer.echo(
        f"{stream}: {done.events} events, {done.windows} windows closed, {done.late} late (in {stream}_late), "
        f"{done.malformed} malformed (in {stream}_errors)",
        err=True,
    )


def progress_bar(name: str) -> Callable[[int, int], None] | None:
    """A rich progress bar on stderr for boosting rounds, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[bold]training " + name, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task(name, total=total)
        bar.update(state["task"], completed=done)
        if done >= total:
            bar.stop()

    return update


_COMMANDS = ("CREATE", "INSERT", "UPDATE", "DELETE", "COPY", "DROP", "ALTER", "ATTACH", "DETACH", "SET", "USE",
             "LOAD", "INSTALL", "BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT", "EXPORT", "IMPORT")  # fmt: skip


def is_command(sql: str) -> bool:
    """Whether a statement is one whose row count DuckDB's own CLI does not print."""
    return sql.lstrip().split(None, 1)[0].upper() in _COMMANDS if sql.strip() else True


def run_script(session: Session, script: str, source: str, fmt: str, out: Callable[[str], None]) -> bool:
    """Run a script, printing results; on a user error print it and return False."""
    from sqlml.errors import SqlmlError
    from sqlml.render import FORMATS, error_text

    try:
        for statement, result in session.run(script):
            if result is not None and not (is_command(statement.text) and result.columns == ["Count"]):
                out(FORMATS[fmt](result.arrow()))
            if session.engine.stop.is_set():  # SIGTERM or Ctrl-C: stopped at a checkpoint
                return True
    except SqlmlError as err:
        typer.echo(error_text(err, source, script), err=True)
        return False
    return True


@app.command()
def run(
    files: list[str] = typer.Argument(None, help="SQL files to run in order; - reads standard input."),
    command: str | None = typer.Option(None, "-c", "--command", help="SQL text to run instead of files."),
    fmt: str = typer.Option("table", "--format", "-f", help="How to print results: table, csv or json."),
    db: str = DbOption,
    catalog: Path | None = CatalogOption,
) -> None:
    """Run SQL files (or -c SQL) statement by statement; stop at the first error (exit 1)."""
    if fmt not in ("table", "csv", "json"):
        typer.echo(f"error: unknown format '{fmt}' (use table, csv or json)", err=True)
        raise typer.Exit(2)
    scripts: list[tuple[str, str]] = []
    if command is not None:
        scripts.append(("<command>", command))
    for name in files or []:
        if name == "-":
            scripts.append(("<stdin>", sys.stdin.read()))
            continue
        try:
            scripts.append((name, Path(name).read_text()))
        except OSError as err:
            typer.echo(f"{name}: error: cannot read the file: {err.strerror}", err=True)
            raise typer.Exit(1) from err
    if not scripts:
        typer.echo("error: give SQL files, - for standard input, or -c 'SQL'", err=True)
        raise typer.Exit(2)
    session = open_session(db, catalog)
    stop_cleanly_on_signals(session)
    try:
        for source, script in scripts:
            if not run_script(session, script, source, fmt, lambda text: typer.echo(text, nl=False)):
                raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None
    finally:
        session.close()


@app.command()
def repl(db: str = DbOption, catalog: Path | None = CatalogOption) -> None:
    """An interactive SQL prompt: statements end with ';', .help lists the meta-commands."""
    from sqlml.repl import Repl

    Repl(open_session(db, catalog)).loop()


@app.callback(invoke_without_command=True)
def main_callback(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty():
            repl(":memory:", None)
        else:
            typer.echo(ctx.get_help())


def main() -> None:
    app()
