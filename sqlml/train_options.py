"""TRAIN's own options (beside the trainer's parameters): names, checks and defaults.

Options are checked when the statement is bound; a bad value is a BindError pointing at it.

>>> check("analyzer", "char")
>>> check("ngrams", [1, 3])
>>> check("validation", 1.5)
'a fraction from 0 up to (not including) 1'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlml.selection import METHODS
from sqlml.text import ANALYZERS
from sqlml.text import DEFAULTS as TEXT_DEFAULTS

CONTINUOUS = ("update", "rounds_per_window", "promote")  # these make a TRAIN continuous
TEXT = tuple(TEXT_DEFAULTS)  # these configure the TEXT (...) columns' featurizer
SELECTION = ("feature_selection", "max_features")
TUNING = (
    "trials",
    "tuning_seconds",
    "folds",
    "tuning_metric",
    "parallel_trials",
)  # a search over HPARAM_RANGE / HPARAM_CANDIDATES
DISTRIBUTED = ("distributed", "partitions")  # training on the session's Dask cluster (see sqlml.distributed)
OPTIONS = ("num_boost_round", "early_stopping_rounds", "validation", "split", "seed", *CONTINUOUS, *TEXT, *SELECTION,
           *TUNING, *DISTRIBUTED)  # fmt: skip
UPDATES = ("retrain", "continue")
PROMOTIONS = ("always", "if_better")
SPLITS = ("random", "sequential")
CHOICES = {
    "split": SPLITS, "update": UPDATES, "promote": PROMOTIONS, "analyzer": ANALYZERS,
    "text_selection": METHODS, "feature_selection": METHODS,
}  # fmt: skip


def _whole(low: int, high: int | None = None) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)

    return ok, f"a whole number above {low - 1}" + (f" and at most {high}" if high else "")


def _ngrams(v: Any) -> bool:
    if isinstance(v, int) and not isinstance(v, bool):
        return 1 <= v <= 10
    return (
        isinstance(v, list) and len(v) == 2 and all(isinstance(n, int) and not isinstance(n, bool) for n in v)
        and 1 <= v[0] <= v[1] <= 10
    )  # fmt: skip


def _one_of(choices: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"


_BOOLEAN: tuple[Callable[[Any], bool], str] = (lambda v: isinstance(v, bool), "TRUE or FALSE")
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "num_boost_round": _whole(1),
    "early_stopping_rounds": _whole(1),
    "validation": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
        "a fraction from 0 up to (not including) 1",
    ),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "rounds_per_window": _whole(1),
    "ngrams": (_ngrams, "a whole number n from 1 to 10 (n-grams of 1..n words) or a range [from, to]"),
    "lowercase": _BOOLEAN,
    "tfidf": _BOOLEAN,
    "text_dim": _whole(16, 2**24),
    "text_features": _whole(1),
    "max_features": _whole(1),
    "trials": _whole(1, 10_000),
    "tuning_seconds": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        "a number of seconds above 0",
    ),
    "folds": _whole(2, 20),
    "parallel_trials": _whole(1, 10_000),
    "tuning_metric": (lambda v: isinstance(v, str), "a metric's name (e.g. 'auc')"),
    "distributed": _BOOLEAN,
    "partitions": _whole(1, 100_000),
    **{key: _one_of(choices) for key, choices in CHOICES.items()},
}


def check(key: str, value: Any) -> str | None:
    """None when `value` suits option `key`, else what was expected."""
    ok, wanted = _CHECKS[key]
    return None if ok(value) else wanted


@dataclass(frozen=True)
class TrainOptions:
    num_boost_round: int = 100
    early_stopping_rounds: int | None = None
    validation: float | None = None  # None: chosen from the row count (see training.py)
    split: str = "random"
    seed: int | None = None  # LightGBM's own seeds when None; the split then uses 0
    trials: int | None = None  # tuning (see sqlml.tuning)
    tuning_seconds: float | None = None
    folds: int | None = None
    tuning_metric: str | None = None
    parallel_trials: int | None = None  # on a cluster's workers; None: one per worker
    distributed: bool = False
    partitions: int | None = None


@dataclass(frozen=True)
class ContinuousOptions:
    update: str = "retrain"
    rounds_per_window: int | None = None  # None: num_boost_round
    promote: str = "always"
