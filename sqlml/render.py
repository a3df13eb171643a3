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


def table_text(table: pa.Table, console_width: int = 120) -> str:
    """A boxed table (rich), at most MAX_ROWS rows, with the row count beneath."""
    import duckdb
    from rich.console import Console
    from rich.table import Table

    view = Table(show_lines=False, header_style="bold")
    types = duckdb.from_arrow(table).types if table.num_columns else []
    for name, type_ in zip(table.column_names, types):
        view.add_column(f"{name}\n[dim]{type_}[/dim]", overflow="fold")
    shown = table.slice(0, MAX_ROWS).to_pylist()
    for row in shown:
        view.add_row(*(_cell(v) for v in row.values()))
    out = io.StringIO()
    Console(file=out, width=console_width, force_terminal=False, color_system=None).print(view)
    footer = f"{table.num_rows} row{'s' if table.num_rows != 1 else ''}"
    if table.num_rows > MAX_ROWS:
        footer += f" ({MAX_ROWS} shown)"
    return out.getvalue() + footer + "\n"


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
