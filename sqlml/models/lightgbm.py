"""LightGBM trainers: lightgbm_classifier, lightgbm_regressor, lightgbm_ranker, and the
random forests random_forest_classifier and random_forest_regressor (LightGBM's
`boosting = 'rf'`: bagged trees averaged, each grown on 63.2% of the rows).

`lightgbm` is imported on first use, so starting the CLI stays fast. Models predict with one
call into LightGBM's C API per batch (no per-call Python set-up, one LightGBM thread per
DuckDB thread when called from PREDICT); the contract tests check it against `Booster.predict`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml.errors import BindError, ExecutionError, did_you_mean
from sqlml.models.base import Model, Progress, TrainingData

# LightGBM logs to stdout/stderr by default; the library itself must print nothing.
_QUIET = logging.getLogger("sqlml.lightgbm")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

# the objectives each trainer accepts (LightGBM's names and aliases), by the task they serve
_OBJECTIVES: dict[str, dict[str, tuple[str, ...]]] = {
    "binary": {"binary": (), "cross_entropy": ("xentropy",)},
    "multiclass": {"multiclass": ("softmax",), "multiclassova": ("multiclass_ova", "ova", "ovr")},
    "regression": {
        "regression": ("regression_l2", "l2", "mean_squared_error", "mse", "l2_root", "root_mean_squared_error", "rmse"),
        "regression_l1": ("l1", "mean_absolute_error", "mae"), "huber": (), "fair": (), "poisson": (), "quantile": (),
        "mape": ("mean_absolute_percentage_error",), "gamma": (), "tweedie": (),
    },
    "ranking": {"lambdarank": (), "rank_xendcg": ("xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart")},
}  # fmt: skip
_DEFAULT_OBJECTIVE = {
    "binary": "binary",
    "multiclass": "multiclass",
    "regression": "regression",
    "ranking": "lambdarank",
}

# LightGBM parameters that sqlml's own options stand for
SQLML_OPTIONS = {"num_iterations": "num_boost_round", "early_stopping_round": "early_stopping_rounds", "seed": "seed"}

# LightGBM parameters a TRAIN cannot take, and what to write instead
_REFUSED = {
    "label_column": "Name the label with LABEL column.",
    "weight_column": "Name sample weights with WEIGHT column (after LABEL).",
    "group_column": "Name query groups with GROUP column.",
    "ignore_column": "Leave columns out with EXCLUDE (column, ...).",
    "categorical_feature": "VARCHAR and ENUM columns are categorical; cast a column to VARCHAR to make it one.",
    "num_class": "The number of classes comes from the label's values.",
    "verbosity": "sqlml keeps LightGBM quiet and reports errors itself.",
    "metric_freq": "sqlml computes its own metrics (EVALUATE, METRICS).",
    "is_provide_training_metric": "sqlml computes its own metrics (EVALUATE, METRICS).",
    **dict.fromkeys(
        ("task", "config", "data", "valid", "input_model", "output_model", "save_binary", "output_result",
         "convert_model", "convert_model_language", "snapshot_freq", "header", "two_round", "forcedsplits_filename",
         "forcedbins_filename", "parser_config_file", "precise_float_parser", "saved_feature_importance_type"),
        "It belongs to LightGBM's command-line program: sqlml reads data with SQL and stores models in its catalog.",
    ),
    **dict.fromkeys(
        ("machine_list_filename", "machines", "num_machines", "local_listen_port", "time_out", "pre_partition"),
        "Distributed LightGBM is not available in sqlml.",
    ),
    **dict.fromkeys(
        ("predict_raw_score", "predict_leaf_index", "predict_contrib", "predict_disable_shape_check",
         "start_iteration_predict", "num_iteration_predict", "pred_early_stop", "pred_early_stop_freq",
         "pred_early_stop_margin"),
        "It is a prediction setting; PREDICT chooses its own.",
    ),
}  # fmt: skip


def _aliases() -> dict[str, str]:
    """Every LightGBM parameter name and alias -> its main name."""
    from lightgbm.basic import _ConfigAliases

    names: dict[str, str] = {}
    for main, aliases in _ConfigAliases._get_all_param_aliases().items():
        names.update(dict.fromkeys(aliases, main))
        names[main] = main
    return names


def _objective(name: str) -> tuple[str, str] | None:
    """(task, main objective name) for an objective name or alias."""
    for task, objectives in _OBJECTIVES.items():
        for main, aliases in objectives.items():
            if name == main or name in aliases:
                return task, main
    return None


_stderr_lock = threading.Lock()
_stderr_users = 0
_stderr_saved = -1


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to nowhere while LightGBM's C++ core runs: it writes
    "[LightGBM] [Fatal] ..." there before it throws, and the library prints nothing (the
    message reaches the user in the error). Nested and concurrent uses share one redirect."""
    global _stderr_users, _stderr_saved
    with _stderr_lock:
        if _stderr_users == 0:
            sys.stderr.flush()
            _stderr_saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _stderr_users += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_users -= 1
            if _stderr_users == 0:
                os.dup2(_stderr_saved, 2)
                os.close(_stderr_saved)


CURVE_ROWS = 10_000  # the training curve's training metric is measured on at most this many training rows


def _curve_rows(train: TrainingData, train_set: Any, dataset: Callable[..., Any]) -> Any:
    """The training rows the curve's training metric is measured on: all of them up to
    CURVE_ROWS (and for rankers, whose groups must stay whole), else a fixed random sample,
    which LightGBM scores incrementally like a validation set (measuring every training row
    each round cost 7% of a 1,000,000-row TRAIN)."""
    if train.groups is not None or train.rows <= CURVE_ROWS:
        return train_set
    picked = np.sort(np.random.default_rng(0).choice(train.rows, CURVE_ROWS, replace=False))
    features = train.features.take(pa.array(picked)) if isinstance(train.features, pa.Table) else train.features[picked]
    weight = train.weight[picked] if train.weight is not None else None
    sample = TrainingData(features, train.label[picked], None, train.categorical, weight, train.names)
    return dataset(sample, train_set)


def training_curve(curve: dict[str, Any], seconds: list[float], best: int | None) -> dict[str, Any]:
    """The metric per boosting round (the objective's first) on the training and validation
    rows, with the seconds since training began, as JSON for the model's metadata."""
    first = next(iter(curve.get("training", {})), None)
    return {
        "metric": first,
        "training": [float(v) for v in curve.get("training", {}).get(first, [])],
        "validation": [float(v) for v in curve.get("validation", {}).get(first, [])] or None,
        "seconds": [round(s, 6) for s in seconds],
        "best_iteration": best,
    }


class LightGBMModel:
    """A LightGBM booster with a lean predict: one C call, no per-call Python set-up."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.num_outputs = booster.num_model_per_iteration()
        self.info: dict[str, Any] = {}

    def contributions(self, matrix: np.ndarray | Any) -> np.ndarray:
        """Exact SHAP values per input (LightGBM's pred_contrib), then the expected value, per
        row: rows x (inputs + 1), or rows x classes x (inputs + 1) for a multiclass model.
        Each row's values add up to its raw score."""
        with quiet_stderr():
            out = self.booster.predict(matrix, pred_contrib=True, num_threads=1)
        if isinstance(out, list):  # SciPy input gives one sparse matrix per class
            out = np.stack([np.asarray(o.todense()) for o in out], axis=1)
        elif not isinstance(out, np.ndarray):
            out = np.asarray(out.todense())
        out = np.asarray(out, dtype=np.float64)
        if self.num_outputs > 1 and out.ndim == 2:
            out = out.reshape(out.shape[0], self.num_outputs, -1)
        return out

    def raw_score(self, matrix: np.ndarray | Any) -> np.ndarray:
        with quiet_stderr():
            return np.asarray(self.booster.predict(matrix, raw_score=True, num_threads=1), dtype=np.float64)

    def predict(self, matrix: np.ndarray | Any, threads: int = 0) -> np.ndarray:
        from lightgbm.basic import _LIB, _c_str, _safe_call

        rows, features = matrix.shape
        if not isinstance(matrix, np.ndarray):  # a SciPy CSR matrix (text features)
            with quiet_stderr():
                out = self.booster.predict(matrix, num_threads=threads or 0)
            return np.asarray(out, dtype=np.float64)
        if matrix.dtype != np.float32:
            matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        else:
            matrix = np.ascontiguousarray(matrix)
        out = np.empty(rows * self.num_outputs, dtype=np.float64)
        written = ctypes.c_int64(0)
        params = f"num_threads={threads}" if threads else ""
        _safe_call(
            _LIB.LGBM_BoosterPredictForMat(
                self.booster._handle,
                matrix.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int(0 if matrix.dtype == np.float32 else 1),  # C_API_DTYPE_FLOAT32 / FLOAT64
                ctypes.c_int32(rows),
                ctypes.c_int32(features),
                ctypes.c_int(1),  # row-major
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL
                ctypes.c_int(0),
                ctypes.c_int(-1),
                _c_str(params),
                ctypes.byref(written),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        return out.reshape(rows, self.num_outputs) if self.num_outputs > 1 else out

    def to_bytes(self) -> bytes:
        return str(self.booster.model_to_string()).encode()

    def input_names(self) -> list[str]:
        return list(self.booster.feature_name())

    @property
    def width(self) -> int:
        return int(self.booster.num_feature())

    def importance(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        return (
            list(self.booster.feature_name()),
            self.booster.feature_importance("gain"),
            self.booster.feature_importance("split"),
        )


@dataclass(frozen=True)
class LightGBMTrainer:
    """One LightGBM objective family, registered under `name`."""

    name: str
    task: str
    defaults: tuple[tuple[str, Any], ...] = ()  # sqlml's own defaults for this trainer
    boosting: bool = True
    model_file: str = "model.txt"
    # for the contract checks (sqlml.models.contract)
    example: tuple[tuple[str, Any], ...] = (("num_leaves", 7), ("learning_rate", 0.2))
    randomised: tuple[tuple[str, Any], ...] = (
        ("bagging_fraction", 0.6),
        ("bagging_freq", 1),
        ("feature_fraction", 0.7),
    )

    def task_for(self, num_classes: int) -> str:
        if self.task == "classification":
            return "binary" if num_classes <= 2 else "multiclass"
        return self.task

    def check_param(self, key: str, value: Any) -> tuple[str, Any]:
        """The parameter's main name (or the sqlml option it stands for) and its value;
        a BindError for a parameter sqlml would not honour."""
        aliases = _aliases()
        main = aliases.get(key)
        if main is None:
            raise BindError(
                f"Unknown parameter '{key}' for {self.name}.",
                hint=did_you_mean(key, [*aliases, *SQLML_OPTIONS.values()])
                or "WITH takes LightGBM's parameter names and sqlml's options (see docs/reference.md).",
            )
        if main in _REFUSED:
            raise BindError(f"{self.name} does not take parameter '{key}'.", hint=_REFUSED[main])
        if main == "boosting" and "boosting" in dict(self.defaults):
            raise BindError(
                f"{self.name} is LightGBM with boosting = 'rf'; it takes no other boosting.",
                hint="Use lightgbm_classifier or lightgbm_regressor for gradient boosting.",
            )
        if isinstance(value, str) and (not value or any(c.isspace() or c in "=," for c in value)):
            raise BindError(
                f"Bad value {value!r} for {key}: a LightGBM parameter value is one word.",
                hint="Set each parameter on its own: WITH (a = 1, b = 'x'); write lists as [1, 2].",
            )
        if main == "objective":
            found = _objective(str(value))
            families = ("binary", "multiclass") if self.task == "classification" else (self.task,)
            if found is None or found[0] not in families:
                choices = [o for f in families for o in _OBJECTIVES[f]]
                raise BindError(
                    f"Objective {value!r} does not fit {self.name}.",
                    hint=f"{self.name} takes objective = {' | '.join(repr(c) for c in choices)}.",
                )
            value = found[1]
        return SQLML_OPTIONS.get(main, main), value

    def params_for(self, params: dict[str, Any], num_classes: int) -> dict[str, Any]:
        """LightGBM's parameters for a fit: sqlml's base (objective, quiet) and the user's checked
        WITH parameters, whose objective must fit the number of classes found."""
        task = self.task_for(num_classes)
        objective = params.get("objective", _DEFAULT_OBJECTIVE[task])
        if objective not in _OBJECTIVES[task]:
            raise ExecutionError(
                f"Objective '{objective}' needs a {'binary' if task == 'multiclass' else 'multiclass'} label, "
                f"but the label has {num_classes} classes.",
                hint=f"Use objective = {' or '.join(repr(o) for o in _OBJECTIVES[task])}, or leave it out.",
            )
        base: dict[str, Any] = {"objective": objective, "verbosity": -1}
        if task == "multiclass":
            base["num_class"] = num_classes
        return {**dict(self.defaults), **params, **base}

    def fit(
        self,
        train: TrainingData,
        valid: TrainingData | None,
        params: dict[str, Any],
        num_boost_round: int,
        early_stopping_rounds: int | None,
        progress: Progress | None,
        init_model: str | None = None,
    ) -> tuple[Model, dict[str, Any]]:
        import lightgbm as lgb

        lgb.register_logger(_QUIET)

        def dataset(data: TrainingData, reference: Any = None) -> Any:
            return lgb.Dataset(
                data.features,
                label=data.label,
                feature_name=list(data.names) if data.names and not isinstance(data.features, pa.Table) else "auto",
                weight=data.weight,
                group=data.groups,
                categorical_feature=list(data.categorical) or "auto",
                reference=reference,
                free_raw_data=True,
            )

        callbacks: list[Callable[..., None]] = []
        valid_sets = []
        stopping: dict[str, Any] = {
            k: params.pop(k) for k in ("early_stopping_min_delta", "first_metric_only") if k in params
        }
        curve: dict[str, Any] = {}
        ticks: list[float] = []
        try:
            with quiet_stderr():
                train_set = dataset(train)
                # the training curve: the objective's metric per round on (a sample of) the training rows
                # and on the validation rows, and the time
                valid_sets, names = [_curve_rows(train, train_set, dataset)], ["training"]
                if valid is not None:
                    valid_sets, names = [valid_sets[0], dataset(valid, train_set)], ["training", "validation"]
                callbacks.append(lgb.record_evaluation(curve))
                started = time.perf_counter()
                callbacks.append(lambda env: ticks.append(time.perf_counter() - started))
                if early_stopping_rounds and valid is not None:
                    callbacks.append(
                        lgb.early_stopping(
                            early_stopping_rounds, first_metric_only=bool(stopping.get("first_metric_only", False)),
                            verbose=False, min_delta=float(stopping.get("early_stopping_min_delta", 0.0)),
                        )
                    )  # fmt: skip
                if progress is not None:
                    callbacks.append(lambda env: progress(env.iteration + 1, env.end_iteration))
                booster = lgb.train(
                    params,
                    train_set,
                    num_boost_round,
                    valid_sets=valid_sets,
                    valid_names=names,
                    callbacks=callbacks,
                    init_model=lgb.Booster(model_str=init_model) if init_model else None,
                )
        except (lgb.basic.LightGBMError, ValueError) as err:  # ValueError: from LightGBM's Python side
            reason = re.sub(r" at \S+, line \d+ \.?", "", str(err)).strip()
            raise ExecutionError(
                f"LightGBM could not train: {reason}",
                hint="Check the WITH parameters against LightGBM's documentation.",
            ) from err
        if early_stopping_rounds and valid is not None and booster.best_iteration > 0:
            booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
        model = LightGBMModel(booster)
        model.info = {"training_curve": training_curve(curve, ticks, booster.best_iteration or None)}
        return model, {**params, **stopping}

    def load(self, data: bytes, meta: dict[str, Any] | None = None) -> Model:
        """A model from its text; a ValueError for text that is not a whole LightGBM model
        (LightGBM aborts the process on some truncated files, so they never reach it)."""
        import lightgbm as lgb

        try:
            text = data.decode()
        except UnicodeDecodeError as err:
            raise ValueError("not text") from err
        if (
            not text.startswith("tree\n")
            or "\nend of trees\n" not in text
            or not text.rstrip().endswith("pandas_categorical:null")
        ):
            raise ValueError("not a complete LightGBM model text")
        try:
            with quiet_stderr():
                return LightGBMModel(lgb.Booster(model_str=text))
        except lgb.basic.LightGBMError as err:
            raise ValueError(str(err)) from err


def register_builtins(register: Callable[[Any], Any]) -> None:
    register(LightGBMTrainer("lightgbm_classifier", "classification"))
    register(LightGBMTrainer("lightgbm_regressor", "regression"))
    register(LightGBMTrainer("lightgbm_ranker", "ranking"))
    forest = (("boosting", "rf"), ("bagging_fraction", 0.632), ("bagging_freq", 1), ("feature_fraction_bynode", 0.6),
              ("num_leaves", 127), ("min_data_in_leaf", 5))  # fmt: skip
    register(LightGBMTrainer("random_forest_classifier", "classification", forest))
    register(LightGBMTrainer("random_forest_regressor", "regression", forest))
