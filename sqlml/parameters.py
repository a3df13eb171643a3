"""Query parameters, as DuckDB has them: `?` (positional, given as a list) and `$name` or
`$1` (given as a dict, or a list for numbers).

A value is never pasted into SQL text: DuckDB receives it as a prepared parameter. DuckDB's
own statements take the parameters as they are. In sqlml's statements, each `?` becomes `$n`
(its position), so that every query sqlml derives from the statement (the training query, an
EVALUATE's ON query, a PREDICT's input) names the values it uses and DuckDB gets exactly
those; a parameter in WITH (...) is read as its Python value.

>>> values("SELECT ?, $2", [10, 20])
{'1': 10, '2': 20}
>>> numbered("EVALUATE MODEL m ON (SELECT * FROM t WHERE day = ? AND n > ?)")
'EVALUATE MODEL m ON (SELECT * FROM t WHERE day = $1 AND n > $2)'
>>> used("SELECT $1 + $12", {"1": 1, "2": 2, "12": 3})
{'1': 1, '12': 3}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot.tokens import TokenType

from sqlml.errors import BindError

Parameters = Sequence[object] | Mapping[str, object]


def numbered(text: str) -> str:
    """The statement with each positional `?` written `$n` (n counts from 1)."""
    from sqlml.dialect import tokenize

    out, last, n = [], 0, 0
    for token in tokenize(text):
        if token.token_type == TokenType.PLACEHOLDER and token.text == "?":
            n += 1
            out += [text[last : token.start], f"${n}"]
            last = token.end + 1
    return "".join(out) + text[last:]


def check_shape(params: object) -> None:
    """Parameters are a list (or tuple) of values, or a dict of them by name."""
    if isinstance(params, Mapping) or (isinstance(params, Sequence) and not isinstance(params, (str, bytes))):
        return
    raise BindError(
        f"Parameters are a list or a dict of values, not {type(params).__name__}.",
        hint="con.sql('... WHERE day = ?', params=[3]) or params={'day': 3} for $day.",
    )


def values(text: str, params: Parameters) -> dict[str, Any]:
    """The parameters by name (`1`, `2`, ... for positions) for a statement's text."""
    if isinstance(params, Mapping):
        return {str(k): v for k, v in params.items()}
    return {str(i): v for i, v in enumerate(params, 1)}


def check(names: set[str], given: dict[str, Any]) -> None:
    """Every placeholder has a value, and every value a placeholder (as DuckDB requires)."""
    missing = sorted(names - given.keys(), key=_order)
    if missing:
        raise BindError(
            f"No value for parameter {', '.join('$' + m for m in missing)}.",
            hint=f"The statement has {len(names)} parameter(s); {len(given)} value(s) were given.",
        )
    extra = sorted(given.keys() - names, key=_order)
    if extra:
        raise BindError(
            f"{len(given)} parameter value(s) given, but the statement has {len(names)} placeholder(s).",
            hint=f"Unused: {', '.join('$' + e for e in extra)}.",
        )


def used(sql: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters one query names, for DuckDB (which refuses values a query does not use)."""
    found = set(re.findall(r"\$(\w+)", sql))
    return {k: v for k, v in given.items() if k in found}


def _order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)
