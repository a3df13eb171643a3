"""The trainer protocol and the data a trainer receives.

A trainer turns `TrainingData` into a `Model`; a `Model` scores a row-major feature
matrix and serialises itself to bytes in a portable, non-executable format (LightGBM's text
or ONNX; never pickle).

Tasks: binary, multiclass, regression and ranking (supervised); clustering (`predict` gives
an n x 2 matrix of cluster number from 1 and distance to its centre) and decomposition
(`predict` gives the n x k components), which train without a label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

# progress(round, total) is called after every boosting round
Progress = Callable[[int, int], None]


@dataclass
class TrainingData:
    """Encoded rows: the inputs (an Arrow table of DOUBLE columns, a row-major NumPy matrix
    or a SciPy CSR matrix), the label as float64 (class codes for classifiers), the group
    sizes for ranking, which inputs are categorical, the sample weights (None: all 1) and the
    input names (for a matrix; a table's own column names otherwise)."""

    features: pa.Table | np.ndarray | Any
    label: np.ndarray
    groups: np.ndarray | None = None
    categorical: tuple[str, ...] = ()
    weight: np.ndarray | None = None
    names: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return len(self.label)


class Model(Protocol):
    """A trained model."""

    def predict(self, matrix: np.ndarray | Any, threads: int = 0) -> np.ndarray:
        """Scores for a (rows x features) matrix (NumPy float64 or float32, or SciPy CSR):
        P(positive), an (n x k) probability matrix, a value or a ranking score, by task."""
        ...

    def to_bytes(self) -> bytes: ...

    def input_names(self) -> list[str] | None:
        """The input names the model file holds, or None when it holds only their number."""
        ...

    @property
    def width(self) -> int:
        """How many inputs (matrix columns) the model takes."""
        ...


@runtime_checkable
class TreeModel(Model, Protocol):
    """A model of trees, which EXPLAIN MODEL and feature selection can read."""

    def importance(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Feature names, total gain and number of splits."""
        ...


# the tasks (of `Trainer.task` and of a version) that learn without a label
UNSUPERVISED = ("clustering", "decomposition")


class Trainer(Protocol):
    """Makes models; `name` is the word after USING, `task` one of classification,
    regression, ranking (with a LABEL), clustering or decomposition (without). `boosting`
    says whether it trains in rounds (num_boost_round, early stopping, update = 'continue');
    `model_file` names its file in the catalog."""

    name: str
    task: str
    boosting: bool
    model_file: str

    def task_for(self, num_classes: int) -> str:
        """The concrete task: binary or multiclass for classifiers, else `task`."""
        ...

    def check_param(self, key: str, value: Any) -> tuple[str, Any]:
        """A WITH parameter's canonical name and value, checked when the statement is bound.
        The name may be one of sqlml's TRAIN options (`num_boost_round`, `early_stopping_rounds`,
        `seed`) that the trainer's own spelling stands for. Raises BindError (with a hint) for a
        parameter the trainer would not honour."""
        ...

    def params_for(self, params: dict[str, Any], num_classes: int) -> dict[str, Any]:
        """The parameters of one fit: the trainer's base parameters and the checked WITH
        parameters, once the number of classes is known (0 for other tasks). Raises
        ExecutionError where they contradict the data."""
        ...

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
        """A model and the parameters actually used (for DESCRIBE and reproduction); with
        `init_model` (a model's text), boosting continues from that model."""
        ...

    def load(self, data: bytes, meta: dict[str, Any]) -> Model:
        """A stored model from its file's bytes and its version's metadata; a ValueError for
        bytes that are not a whole model."""
        ...
