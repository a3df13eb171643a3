"""Turning results and errors into text for the CLI and the REPL (the library never prints).

>>> from sqlml.errors import BindError, Span
>>> script = "SELECT 1;\\nEVALUATE MODEL churm;"
>>> print(error_text(BindError("Unknown model 'churm'.", Span.at(script, 25, 30), "Did you mean 'churn'?"), "q.sql", script))
q.sql:2:16: error: Unknown model 'churm'.
  EVALUATE MODEL churm;
                 ^^^^^
hint: Did you mean 'churn'?
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa

from sqlml.errors import SqlmlError

MAX_ROWS = 40

_COMMANDS = ("CREATE", "INSERT", "UPDATE", "DELETE", "COPY", "DROP", "ALTER", "ATTACH", "DETACH", "SET", "USE",
             "LOAD", "INSTALL", "BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT", "EXPORT", "IMPORT", "VACUUM",
             "RESET", "ABORT", "END", "START", "FORCE", "UPDATE_EXTENSIONS")  # fmt: skip


def is_status(sql: str, columns: list[str]) -> bool:
    """Whether a result is a command's status (a row count or 'Success'), which DuckDB's own
    CLI does not print."""
    words = sql.split(None, 1)
    return columns in (["Count"], ["Success"]) and (not words or words[0].upper() in _COMMANDS)


def error_text(err: SqlmlError, source: str, script: str | None) -> str:
    """`source:line:col: error: message`, the source line with a caret, and the hint."""
    span = err.span
    where = f"{source}:{span.line}:{span.col}" if span else source
    lines = [f"{where}: error: {err.message}"]
    if span and script is not None:
        text = script.split("\n")[span.line - 1] if span.line <= script.count("\n") + 1 else ""
        width = max(1, min(span.end - span.start, len(text) - span.col + 1))
        lines += [f"  {text}", "  " + " " * (span.col - 1) + "^" * width]
    if err.hint:
        lines.append(f"hint: {err.hint}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and value and isinstance(value[0], tuple):  # MAP
        return "{" + ", ".join(f"{k}: {_cell(v)}" for k, v in value) + "}"
    return str(value)


def _fit_columns(table: pa.Table, types: list[str], rows: list[dict[str, Any]], width: int) -> list[int]:
    """Which columns fit in `width`, as DuckDB's CLI chooses them: from both ends inward, the
    middle ones left out (shown as one '…' column)."""
    sizes = []
    for i, name in enumerate(table.column_names):
        cells = [len(_cell(r[name])) for r in rows[:50]] if rows else []
        sizes.append(min(max([len(name), len(types[i]) if i < len(types) else 0, *cells]), 40) + 3)
    if sum(sizes) + 1 <= width:
        return list(range(len(sizes)))
    left: list[int] = []
    right: list[int] = []
    used = 4  # the "…" column
    lo, hi = 0, len(sizes) - 1
    while lo <= hi:
        take = lo if len(left) <= len(right) else hi
        if used + sizes[take] > width:
            break
        used += sizes[take]
        if take == lo:
            left.append(lo)
            lo += 1
        else:
            right.insert(0, hi)
            hi -= 1
    return left + right or [0]


def table_text(table: pa.Table, console_width: int = 120, max_rows: int = MAX_ROWS) -> str:
    """A boxed table (rich) that fits `console_width`: columns that do not fit are left out
    from the middle, and beyond `max_rows` the first and last rows are shown, as DuckDB's CLI
    does; the footer counts what was hidden."""
    import duckdb
    from rich.console import Console
    from rich.table import Table

    types = [str(t) for t in duckdb.from_arrow(table).types] if table.num_columns else []
    if table.num_rows > max_rows:
        head, tail = (max_rows + 1) // 2, max_rows // 2
        shown = table.slice(0, head).to_pylist() + [None] + table.slice(table.num_rows - tail).to_pylist()
    else:
        shown = table.to_pylist()
    keep = _fit_columns(table, types, [r for r in shown if r is not None], console_width)
    names = table.column_names
    view = Table(show_lines=False, header_style="bold")
    for position, i in enumerate(keep):
        if position and keep[position - 1] != i - 1:
            view.add_column("…")
        view.add_column(f"{names[i]}\n[dim]{types[i]}[/dim]", overflow="fold")
    gap = len(keep) < len(names)
    for row in shown:
        cells = ["·" if row is None else _cell(row[names[i]]) for i in keep]
        if gap:
            at = next((p for p in range(1, len(keep)) if keep[p] != keep[p - 1] + 1), len(keep))
            cells.insert(at, "·" if row is None else "…")
        view.add_row(*cells)
    out = io.StringIO()
    Console(file=out, width=console_width, force_terminal=False, color_system=None).print(view)
    footer = f"{table.num_rows} row{'s' if table.num_rows != 1 else ''}"
    if table.num_rows > max_rows:
        footer += f" ({max_rows} shown)"
    if gap:
        footer += f", {len(names)} columns ({len(keep)} shown)"
    return out.getvalue() + footer + "\n"


def line_text(table: pa.Table) -> str:
    """One `column = value` line per value, a blank line between rows (DuckDB's line mode)."""
    if not table.num_columns:
        return ""
    pad = max(len(n) for n in table.column_names)
    rows = table.to_pylist()
    return "\n".join("".join(f"{n.rjust(pad)} = {_cell(v)}\n" for n, v in row.items()) for row in rows)


def markdown_text(table: pa.Table) -> str:
    """A Markdown table (DuckDB's markdown mode)."""
    if not table.num_columns:
        return ""

    def cells(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |\n"

    out = cells(table.column_names) + cells(["---"] * table.num_columns)
    return out + "".join(cells([_cell(v) for v in row.values()]) for row in table.to_pylist())


def unique_names(table: pa.Table) -> pa.Table:
    """The table with repeated column names made unique as DuckDB does (a, a_1, a_2)."""
    seen: dict[str, int] = {}
    names = []
    for name in table.column_names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}_{count}")
    return table.rename_columns(names) if names != table.column_names else table


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plain(table: pa.Table, nested_as_text: bool) -> str:
    """A select list over `t` for machine-readable output: NaN and infinities as NULL (strict
    JSON has no such numbers), and nested values as DuckDB's text for them if asked."""
    cols = []
    for field in table.schema:
        q = _quote(field.name)
        if pa.types.is_floating(field.type):
            cols.append(f"CASE WHEN isfinite({q}) THEN {q} END AS {q}")
        elif (pa.types.is_list(field.type) or pa.types.is_large_list(field.type)) and pa.types.is_floating(
            field.type.value_type
        ):
            cleaned = f"list_transform({q}, lambda x: CASE WHEN isfinite(x) THEN x END)"
            cols.append(f"CAST({cleaned} AS VARCHAR) AS {q}" if nested_as_text else f"{cleaned} AS {q}")
        elif nested_as_text and pa.types.is_nested(field.type):
            cols.append(f"CAST({q} AS VARCHAR) AS {q}")
        else:
            cols.append(q)
    return ", ".join(cols)


def csv_text(table: pa.Table) -> str:
    """CSV with a header; nested values (MAP, STRUCT, LIST) as DuckDB's text for them."""
    import duckdb
    import pyarrow.csv as pacsv

    table = unique_names(table)
    if not table.num_columns:
        return ""
    plain = duckdb.from_arrow(table).query("t", f"SELECT {_plain(table, True)} FROM t").to_arrow_table()  # type: ignore[union-attr]
    out = io.BytesIO()
    pacsv.write_csv(plain, out)
    return out.getvalue().decode()


def json_text(table: pa.Table) -> str:
    """JSON Lines: one strict JSON object per row (NaN and infinities as null), nothing for no rows."""
    import duckdb

    table = unique_names(table)
    if not table.num_columns or not table.num_rows:
        return ""
    sql = f"SELECT to_json(t) FROM (SELECT {_plain(table, False)} FROM __sqlml_out) AS t"
    lines = duckdb.from_arrow(table).query("__sqlml_out", sql).to_arrow_table().column(0)  # type: ignore[union-attr]
    return "".join(f"{line}\n" for line in lines.to_pylist())


FORMATS = {"table": table_text, "csv": csv_text, "json": json_text}
# the REPL's .mode names (box is the boxed table)
MODES = {"box": table_text, "csv": csv_text, "json": json_text, "line": line_text, "markdown": markdown_text}
