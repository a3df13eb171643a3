"""`cnn_classifier`: a small convolutional network for image-shaped vector features, trained
with PyTorch (the optional extra `pip install 'sqlml[torch]'`) and stored as ONNX.

The inputs (one `FLOAT[h*w]` or `FLOAT[c*h*w]` column, or as many numeric columns) are an
image of `image_shape = [c, h, w]` (default: one square channel). The network: two 3x3
convolutions (32 and 64 channels, ReLU), 2x2 max-pooling, a dense layer of
`embedding_size` (ReLU: the embedding PREDICT can return) and the class layer. Missing
values are 0 and the pixels are standardised with the training rows' mean and deviation,
inside the exported graph, so PREDICT repeats them exactly. Training is deterministic for a
seed on `num_threads` CPU threads (1 by default).
"""

from __future__ import annotations

import importlib.util
import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from sqlml.errors import BindError, ExecutionError, did_you_mean
from sqlml.models import onnx as onnx_models
from sqlml.models.base import Model, Progress, TrainingData

EXTRA = "pip install 'sqlml[torch]'"
PARAMS: dict[str, tuple[Any, str]] = {
    "image_shape": (None, "[c, h, w] or [h, w] whose product is the number of inputs"),
    "epochs": (15, "a whole number from 1"),
    "batch_size": (64, "a whole number from 1"),
    "learning_rate": (1e-3, "a number above 0"),
    "weight_decay": (0.0, "a number from 0"),
    "embedding_size": (128, "a whole number from 1"),
    "num_threads": (1, "a whole number from 1"),
}


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


_CHECKS = {
    "image_shape": lambda v: isinstance(v, list) and len(v) in (2, 3) and all(_whole(d) for d in v),
    "epochs": _whole,
    "batch_size": _whole,
    "embedding_size": _whole,
    "num_threads": _whole,
    "learning_rate": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
    "weight_decay": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0,
}


def image_shape(shape: list[int] | None, width: int) -> tuple[int, int, int]:
    """(channels, height, width) for `width` inputs: the given shape, or one square channel."""
    if shape is None:
        side = math.isqrt(width)
        if side * side != width:
            raise ExecutionError(
                f"cnn_classifier cannot tell the image shape of {width} inputs (not a square).",
                hint="Set image_shape = [channels, height, width] in WITH.",
            )
        return 1, side, side
    c, h, w = shape if len(shape) == 3 else [1, *shape]
    if c * h * w != width:
        raise ExecutionError(
            f"image_shape {shape} holds {c * h * w} values, but the model has {width} inputs.",
            hint="Make channels x height x width equal the vector's length.",
        )
    return c, h, w


def network(shape: tuple[int, int, int], classes: int, embedding: int, mean: float, scale: float) -> Any:
    """The untrained network: flat rows in, (probabilities, embedding) out."""
    import torch
    from torch import nn

    c, h, w = shape
    pool = h >= 2 and w >= 2

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2) if pool else nn.Identity(), nn.Flatten(),
                nn.Linear(64 * (h // 2 if pool else h) * (w // 2 if pool else w), embedding), nn.ReLU(),
            )  # fmt: skip
            self.head = nn.Linear(embedding, classes)

        def forward(self, x: Any) -> tuple[Any, Any]:
            x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
            x = ((x - mean) / scale).reshape(-1, c, h, w)
            e = self.body(x)
            return torch.softmax(self.head(e), dim=1), e

    return Net()


def fit_network(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None, classes: int, params: dict[str, Any],
                progress: Progress | None = None) -> Any:  # fmt: skip
    """Train the network on (rows x inputs) float32 pixels and class codes; PyTorch's module."""
    import torch

    torch.set_num_threads(int(params["num_threads"]))
    torch.manual_seed(int(params.get("seed", 0)))
    generator = torch.Generator().manual_seed(int(params.get("seed", 0)))
    shape = image_shape(params.get("image_shape"), x.shape[1])
    finite = x[np.isfinite(x)]
    mean, scale = float(finite.mean()) if finite.size else 0.0, float(finite.std()) if finite.size else 1.0
    net = network(shape, classes, int(params["embedding_size"]), mean, scale or 1.0)
    optimiser = torch.optim.Adam(net.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"])
    xs, ys = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))
    ws = torch.from_numpy(weight.astype(np.float32)) if weight is not None else None
    epochs, size = int(params["epochs"]), int(params["batch_size"])
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(ys), generator=generator)
        for start in range(0, len(ys), size):
            batch = order[start : start + size]
            optimiser.zero_grad()
            probabilities, _ = net(xs[batch])
            loss = torch.nn.functional.nll_loss(torch.log(probabilities + 1e-12), ys[batch], reduction="none")
            loss = (loss * ws[batch]).sum() / ws[batch].sum() if ws is not None else loss.mean()
            loss.backward()
            optimiser.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    return net.eval()


def export(net: Any, width: int) -> bytes:
    """The network as ONNX (TorchScript exporter), with a dynamic batch axis."""
    import torch

    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros(1, width),), out,  # type: ignore[arg-type]
            input_names=["input"], output_names=["probabilities", "embedding"],
            dynamic_axes={"input": {0: "rows"}, "probabilities": {0: "rows"}, "embedding": {0: "rows"}},
            dynamo=False, opset_version=18,
        )  # fmt: skip
    return out.getvalue()


@dataclass(frozen=True)
class CnnTrainer:
    name: str = "cnn_classifier"
    task: str = "classification"
    boosting: bool = False
    model_file: str = onnx_models.MODEL_FILE
    # for the contract checks (sqlml.models.contract)
    example: tuple[tuple[str, Any], ...] = (("embedding_size", 8), ("epochs", 2))
    randomised: tuple[tuple[str, Any], ...] = (("epochs", 1),)

    def missing(self) -> str | None:
        """What to install before this trainer can run (None: nothing)."""
        return None if importlib.util.find_spec("torch") else f"cnn_classifier needs PyTorch: {EXTRA}."

    def task_for(self, num_classes: int) -> str:
        return "binary" if num_classes <= 2 else "multiclass"

    def check_param(self, key: str, value: Any) -> tuple[str, Any]:
        if key not in PARAMS:
            raise BindError(
                f"Unknown parameter '{key}' for {self.name}.",
                hint=did_you_mean(key, PARAMS) or f"{self.name} takes {', '.join(PARAMS)}.",
            )
        if not _CHECKS[key](value):
            raise BindError(f"Bad value {value!r} for {key}: expected {PARAMS[key][1]}.")
        return key, value

    def params_for(self, params: dict[str, Any], num_classes: int) -> dict[str, Any]:
        defaults = {k: v for k, (v, _) in PARAMS.items() if v is not None}
        return {**defaults, "seed": 0, **params}

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
        from sqlml.models.sklearn import _matrix

        problem = self.missing()
        if problem:
            raise ExecutionError(problem)
        x, _ = _matrix(train)
        classes = int(train.label.max()) + 1
        shape = image_shape(params.get("image_shape"), x.shape[1])
        net = fit_network(x, train.label, train.weight, max(classes, 2), params, progress)
        model = onnx_models.OnnxModel(export(net, x.shape[1]), self.task_for(classes),
                                      {"score": "probabilities", "embedding": "embedding"})  # fmt: skip
        model.info = {"onnx": {"outputs": model.outputs}, "embedding": int(params["embedding_size"]),
                      "image_shape": list(shape)}  # fmt: skip
        return model, dict(params)

    def load(self, data: bytes, meta: dict[str, Any]) -> Model:
        return onnx_models.load(data, meta)


def register_builtins(register: Any) -> None:
    register(CnnTrainer())
