"""The error tree. Every user error is a SqlmlError carrying a message, a Span and a hint.

>>> err = UnknownModelError("Unknown model 'churn'.", hint="Did you mean 'churn_v2'?")
>>> str(err)
"Unknown model 'churn'. Did you mean 'churn_v2'?"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Where something is in a script: 1-based line and column, 0-based [start, end) offsets."""

    line: int
    col: int
    start: int
    end: int

    @classmethod
    def at(cls, text: str, start: int, end: int | None = None) -> Span:
        """The span of text[start:end], with line and column counted in text."""
        line = text.count("\n", 0, start) + 1
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        return cls(line, col, start, start + 1 if end is None else end)


class SqlmlError(Exception):
    """Base of every error a user can cause. `span` locates it in the script, `hint` says what to do."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def col(self) -> int | None:
        return self.span.col if self.span else None

    def located(self, span: Span | None) -> SqlmlError:
        """Set the span if none is known yet; returns self for `raise err.located(...)`."""
        if self.span is None:
            self.span = span
        return self

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class SqlmlSyntaxError(SqlmlError):
    """The text is not a statement sqlml or DuckDB can read."""


class BindError(SqlmlError):
    """The statement reads, but names something that does not exist or does not fit."""


class UnknownModelError(BindError):
    """A model (or a version of it) that the catalog does not have."""


class CatalogError(SqlmlError):
    """The catalog folder holds something unreadable, or cannot be written."""


class ExecutionError(SqlmlError):
    """DuckDB or LightGBM failed while running the statement, or the data does not fit it."""


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest choice, or None.

    >>> did_you_mean("churnn", ["churn", "sales"])
    "Did you mean 'churn'?"
    """
    spelled = {c.lower(): c for c in choices}  # compared without case, shown as spelled
    close = difflib.get_close_matches(name.lower(), list(spelled), n=1, cutoff=0.6)
    return f"Did you mean '{spelled[close[0]]}'?" if close else None
