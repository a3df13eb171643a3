"""LightGBM trainers: lightgbm_classifier, lightgbm_regressor, lightgbm_ranker.

`lightgbm` is imported on first use, so starting the CLI stays fast. Models predict with one
call into LightGBM's C API per batch (no per-call Python set-up, one LightGBM thread per
DuckDB thread when called from PREDICT); the contract tests check it against `Booster.predict`.
"""

from __future__ import annotations

import ctypes
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sqlml.errors import ExecutionError
from sqlml.models.base import Model, Progress, TrainingData

# LightGBM logs to stdout/stderr by default; the library itself must print nothing.
_QUIET = logging.getLogger("sqlml.lightgbm")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

_OBJECTIVES = {"classification": "binary", "regression": "regression", "ranking": "lambdarank"}


def known_params() -> set[str]:
    """Every LightGBM parameter name and alias."""
    from lightgbm.basic import _ConfigAliases

    names: set[str] = set()
    for main, aliases in _ConfigAliases._get_all_param_aliases().items():
        names.add(main)
        names.update(aliases)
    return names


class LightGBMModel:
    """A LightGBM booster with a lean predict: one C call, no per-call Python set-up."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.num_outputs = booster.num_model_per_iteration()

    def predict(self, matrix: np.ndarray, threads: int = 0) -> np.ndarray:
        from lightgbm.basic import _LIB, _c_str, _safe_call

        rows, features = matrix.shape
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        out = np.empty(rows * self.num_outputs, dtype=np.float64)
        written = ctypes.c_int64(0)
        params = f"num_threads={threads}" if threads else ""
        _safe_call(
            _LIB.LGBM_BoosterPredictForMat(
                self.booster._handle,
                matrix.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
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

    def to_text(self) -> str:
        return str(self.booster.model_to_string())

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

    def task_for(self, num_classes: int) -> str:
        if self.task == "classification":
            return "binary" if num_classes <= 2 else "multiclass"
        return self.task

    def check_params(self, params: dict[str, Any]) -> list[str]:
        known = known_params()
        return [key for key in params if key not in known]

    def base_params(self, num_classes: int) -> dict[str, Any]:
        """What sqlml sets before the user's WITH parameters (which win)."""
        params: dict[str, Any] = {"objective": _OBJECTIVES[self.task], "verbosity": -1}
        if self.task_for(num_classes) == "multiclass":
            params.update(objective="multiclass", num_class=num_classes)
        return params

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
                group=data.groups,
                categorical_feature=list(data.categorical) or "auto",
                reference=reference,
                free_raw_data=True,
            )

        train_set = dataset(train)
        callbacks: list[Callable[..., None]] = []
        valid_sets = []
        if early_stopping_rounds and valid is not None:
            valid_sets = [dataset(valid, train_set)]
            callbacks.append(lgb.early_stopping(early_stopping_rounds, verbose=False))
        if progress is not None:
            callbacks.append(lambda env: progress(env.iteration + 1, env.end_iteration))
        try:
            booster = lgb.train(
                params,
                train_set,
                num_boost_round,
                valid_sets=valid_sets,
                callbacks=callbacks,
                init_model=lgb.Booster(model_str=init_model) if init_model else None,
            )
        except lgb.basic.LightGBMError as err:
            reason = re.sub(r" at \S+, line \d+ \.?", "", str(err)).strip()
            raise ExecutionError(
                f"LightGBM could not train: {reason}",
                hint="Check the WITH parameters against LightGBM's documentation.",
            ) from err
        if valid_sets and booster.best_iteration > 0:
            booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
        return LightGBMModel(booster), params

    def load(self, text: str) -> Model:
        import lightgbm as lgb

        return LightGBMModel(lgb.Booster(model_str=text))


def register_builtins(register: Callable[[Any], Any]) -> None:
    register(LightGBMTrainer("lightgbm_classifier", "classification"))
    register(LightGBMTrainer("lightgbm_regressor", "regression"))
    register(LightGBMTrainer("lightgbm_ranker", "ranking"))
