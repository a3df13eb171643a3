"""The command line: `sqlml run`, `sqlml repl`. Parses arguments, calls the API, renders.

Heavy modules (duckdb, lightgbm, pyarrow) are imported inside the commands, so
`sqlml --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

if TYPE_CHECKING:
    from sqlml.api import Session

app = typer.Typer(
    help="sqlml: DuckDB SQL plus TRAIN, EVALUATE and PREDICT for LightGBM models.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rich's markdown renderer alone costs 0.15 s at start-up
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = typer.Option(":memory:", "--db", help="DuckDB database file (default: in memory).")
CatalogOption = typer.Option(
    None, "--catalog", envvar="SQLML_CATALOG", help="Model catalog folder (default: ./catalog)."
)


DebugOption = typer.Option(False, "--debug", help="Show the Python traceback of an internal error.")
ClusterOption = typer.Option(
    None, "--cluster", envvar="SQLML_CLUSTER",
    help="Dask cluster for TRAIN ... WITH (distributed = true): local:N or tcp://scheduler:8786.",
)  # fmt: skip
ProgressOption = typer.Option(
    False, "--progress", help="Print a line on stderr as each micro-batch of a continuous query is done."
)


def open_session(db: str, catalog: Path | None, cluster: str | None = None) -> Session:
    from sqlml.api import connect

    session = connect(db, catalog, cluster=cluster)
    session.python_scope = False  # no Python variables are tables here
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


class Stopped(KeyboardInterrupt):
    """The run was stopped by a signal: `code` is the exit status (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code = 128 + signum


def stop_on_signals(session: Session) -> dict[str, int]:
    """SIGTERM and Ctrl-C stop the run: a continuous query at its next micro-batch (its
    checkpoint committed), any other statement at once (it changes nothing). The run then says
    so and exits 128 + the signal's number. A second signal during a clean stop interrupts at once.
    Returns the record of which signal arrived."""
    import signal

    received: dict[str, int] = {}

    def stop(signum: int, frame: Any) -> None:
        received["signal"] = signum
        if session.engine.streaming and not session.engine.stop.is_set():
            session.engine.stop.set()
            return
        raise Stopped(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return received


def stopped_message(signum: int, clean: bool) -> str:
    import signal

    name = signal.Signals(signum).name
    if clean:
        return f"Stopped by {name} at a checkpoint; run it again to resume. Later statements did not run."
    return f"Stopped by {name}: the running statement was cancelled and changed nothing; later statements did not run."


def batch_line(stream: str, done: Any) -> None:
    """One line on stderr per micro-batch done (with --progress)."""
    typer.echo(f"{stream}: batch done, {done.events} events, {done.windows} windows closed", err=True)


def stream_summary(stream: str, done: Any) -> None:
    """One line on stderr when a continuous query ends: what it read, what it could not use."""
    typer.echo(
        f"{stream}: {done.events} events, {done.windows} windows closed, {done.late} late (in {stream}_late), "
        f"{done.malformed} malformed (in {stream}_errors)",
        err=True,
    )


_terminal: TextIO | None = None


def terminal() -> TextIO:
    """The terminal's stderr, kept apart from file descriptor 2 (which the library silences
    while LightGBM runs)."""
    global _terminal
    if _terminal is None:
        _terminal = os.fdopen(os.dup(2), "w")
    return _terminal


class ProgressBar:
    """A rich progress bar for boosting rounds; `close()` ends it (done, cancelled, failed or
    stopped early)."""

    def __init__(self, name: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        console = Console(file=terminal())
        self.bar = Progress(
            "[bold]training " + name, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
            console=console,
        )  # fmt: skip
        self.name = name
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task(self.name, total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()
            self.task = None


def progress_bar(name: str) -> ProgressBar | None:
    """A progress bar on stderr for boosting rounds, when stderr is a terminal."""
    return ProgressBar(name) if sys.stderr.isatty() else None


def width() -> int:
    """Table width: the terminal's, or wide enough not to fold when output goes to a file."""
    import shutil

    return max(shutil.get_terminal_size().columns, 60) if sys.stdout.isatty() else 250


def run_script(session: Session, script: str, source: str, fmt: str, out: Callable[[str], None]) -> bool:
    """Run a script, printing results; on a user error print it and return False. A stream
    stopped at a checkpoint by a signal raises Stopped once its results are out."""
    from sqlml.errors import SqlmlError
    from sqlml.render import FORMATS, error_text, is_status, table_text

    try:
        for statement, result in session.run(script):
            if result is None:
                continue
            table = result.arrow()
            if is_status(statement.text, table.column_names):
                continue
            if fmt != "table" and (table.schema.metadata or {}).get(b"sqlml") == b"status":
                typer.echo(table.column(0)[0].as_py(), err=True)  # a note, not data
                continue
            out(table_text(table, width()) if fmt == "table" else FORMATS[fmt](table))
    except SqlmlError as err:
        typer.echo(error_text(err, source, script), err=True)
        return False
    return True


@app.command()
def run(
    ctx: typer.Context,
    files: list[str] = typer.Argument(None, help="SQL files to run in order; - reads standard input."),
    command: str | None = typer.Option(None, "-c", "--command", help="SQL text to run instead of files."),
    fmt: str = typer.Option("table", "--format", "-f", help="How to print results: table, csv or json."),
    db: str = DbOption,
    catalog: Path | None = CatalogOption,
    debug: bool = DebugOption,
    progress: bool = ProgressOption,
    cluster: str | None = ClusterOption,
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
    db, catalog = defaults(ctx, db, catalog)
    session = guarded(lambda: open_session(db, catalog, cluster), debug)
    if progress:
        session.engine.on_batch = batch_line
    received = stop_on_signals(session)
    echo: Callable[[str], None] = lambda text: typer.echo(text, nl=False)  # noqa: E731
    try:
        for source, script in scripts:
            ok = guarded(lambda s=script, n=source: run_script(session, s, n, fmt, echo), debug)
            if "signal" in received:  # a stream stopped cleanly at a checkpoint
                raise Stopped(received["signal"])
            if not ok:
                raise typer.Exit(1)
    except Stopped as stop:
        typer.echo(stopped_message(stop.code - 128, session.engine.stop.is_set()), err=True)
        raise typer.Exit(stop.code) from None
    finally:
        session.close()


@app.command()
def report(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The model to report on."),
    output: Path | None = typer.Option(None, "-o", "--output", help="The HTML file to write (default: MODEL.html)."),
    version: int | None = typer.Option(None, "--version", help="The version (default: the serving or latest one)."),
    db: str = DbOption,
    catalog: Path | None = CatalogOption,
    debug: bool = DebugOption,
) -> None:
    """Write one self-contained HTML page about a model: metrics, curves, importance, training."""
    from sqlml.report import build

    db, catalog = defaults(ctx, db, catalog)
    session = guarded(lambda: open_session(db, catalog), debug)
    target = output or Path(f"{model}.html")
    try:
        page = guarded(lambda: build(session, model, version), debug)  # a user error: printed, exit 1
    finally:
        session.close()
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(page)
        tmp.replace(target)
    except OSError as err:
        typer.echo(f"{target}: error: cannot write the report: {err.strerror}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"Wrote {target} ({len(page) // 1024} KiB).")


def guarded(work: Callable[[], Any], debug: bool) -> Any:
    """Run CLI work; an unexpected exception (a bug, not a user error) is one line on stderr
    and exit 1, with the traceback only under --debug."""
    from sqlml.errors import SqlmlError
    from sqlml.render import error_text

    try:
        return work()
    except (KeyboardInterrupt, typer.Exit):
        raise
    except SqlmlError as err:  # opening the session: a database file that is locked, say
        typer.echo(error_text(err, "sqlml", None), err=True)
        raise typer.Exit(1) from None
    except Exception as err:
        if debug:
            import traceback

            traceback.print_exc()
        typer.echo(f"internal error: {type(err).__name__}: {err}", err=True)
        typer.echo("hint: this is a bug in sqlml; --debug shows the traceback to report.", err=True)
        raise typer.Exit(1) from None


@app.command()
def repl(
    ctx: typer.Context, db: str = DbOption, catalog: Path | None = CatalogOption, debug: bool = DebugOption
) -> None:
    """An interactive SQL prompt: statements end with ';', .help lists the meta-commands."""
    from sqlml.repl import Repl

    db, catalog = defaults(ctx, db, catalog)
    session = guarded(lambda: open_session(db, catalog), debug)
    Repl(session, debug=debug, reopen=lambda path: open_session(path, catalog)).loop()


def defaults(ctx: typer.Context, db: str, catalog: Path | None) -> tuple[str, Path | None]:
    """--db and --catalog given before the subcommand (`sqlml --db app.duckdb repl`) apply to it."""
    given = ctx.obj or {}
    return (given.get("db") or db) if db == ":memory:" else db, catalog or given.get("catalog")


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    db: str = typer.Option(None, "--db", help="DuckDB database file for the REPL or the subcommand."),
    catalog: Path | None = typer.Option(None, "--catalog", help="Model catalog folder for the REPL or the subcommand."),
) -> None:
    """sqlml: DuckDB SQL plus TRAIN, EVALUATE and PREDICT. With no subcommand on a terminal
    (or with --db), an interactive prompt."""
    ctx.obj = {"db": db, "catalog": catalog}
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() or db is not None:
            repl(ctx, db or ":memory:", catalog, False)
        else:
            typer.echo(ctx.get_help())


def main() -> None:
    # LightGBM's OpenMP threads spin while they wait, which starves a busy machine; this must
    # be set before LightGBM loads (a user's own setting wins)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()
