"""IMPORT MODEL: an ONNX model trained elsewhere becomes a version in the catalog.

The file is read and checked when the statement is bound (nothing is written until it runs):
one input, a float or double tensor whose shape past the batch is known; the score output
found and run once on a row of zeros to learn its width; classes for a classifier. Weights
kept in files beside the model (ONNX external data) are read into the catalog's copy, and a
batch axis fixed at export is freed when rows score alike in a larger batch. The
model's features come from `inputs` (one numeric column per input, or one vector column
for all of them), so PREDICT checks its data against them before it runs.

    IMPORT MODEL digits FROM 'cnn.onnx'
    WITH (task = 'classification', classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], inputs = 'pixels',
          output = 'probabilities', embedding = 'embedding', label = 'digit')
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlglot import exp

from sqlml import ast
from sqlml.catalog import check_name
from sqlml.errors import SqlmlError, did_you_mean
from sqlml.features import FeatureSpec
from sqlml.literals import literal
from sqlml.models.onnx import IMPORTED, MODEL_FILE, session

if TYPE_CHECKING:
    from sqlml.plan import Binder

OPTIONS = ("task", "classes", "inputs", "output", "embedding", "label")
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class ImportModelPlan:
    name: str
    data: bytes
    meta: dict[str, Any]
    exists: bool  # IF NOT EXISTS


def _options(binder: Binder, node: ast.ImportModel) -> dict[str, tuple[Any, exp.Expr]]:
    options: dict[str, tuple[Any, exp.Expr]] = {}
    for prop in node.args.get("params") or []:
        key, value_node = prop.this.name.lower(), prop.expression
        if key not in OPTIONS:
            raise binder.error(
                f"Unknown IMPORT MODEL option '{key}'.", prop.this,
                did_you_mean(key, OPTIONS) or f"IMPORT MODEL takes {', '.join(OPTIONS)}.",
            )  # fmt: skip
        value = binder.params.get(value_node.name) if isinstance(value_node, exp.Placeholder) else literal(value_node)
        if value is None:
            raise binder.error(f"The value of {key} must be a literal.", value_node)
        options[key] = (value, value_node)
    return options


def _label_type(classes: list[Any]) -> str:
    if all(isinstance(c, bool) for c in classes):
        return "BOOLEAN"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "BIGINT"
    return "VARCHAR"


def bind_import(binder: Binder, node: ast.ImportModel) -> ImportModelPlan:
    """Read and check the ONNX file; the plan holds its bytes and the version's metadata."""
    try:
        name = check_name(node.this.name)
    except SqlmlError as err:
        raise err.located(binder.statement.span_of(node.this))
    path_node = node.args["path"]
    path = Path(path_node.name)
    options = _options(binder, node)

    def option(key: str, default: Any = None) -> Any:
        return options[key][0] if key in options else default

    def at(key: str) -> exp.Expr:
        return options[key][1] if key in options else path_node

    try:
        data = path.read_bytes()
    except OSError as err:
        raise binder.error(f"Cannot read model file '{path}': {err.strerror or err}.", path_node)
    try:
        data = self_contained(data, path)
    except OSError as err:
        raise binder.error(
            f"'{path}' keeps weights in a file beside it that cannot be read: {err.strerror or err}.", path_node,
            "Keep the .data file torch.onnx.export wrote next to the .onnx file, or export with external_data=False.",
        )  # fmt: skip
    except ValueError as err:
        raise binder.error(f"'{path}' {err}.", path_node, "Export it with its weights inside (external_data=False).")
    try:
        graph = session(data, 1)
    except ValueError as err:
        raise binder.error(f"'{path}' is not an ONNX model ONNX Runtime can run: {err}", path_node,
                           "Export it with torch.onnx.export or skl2onnx.")  # fmt: skip
    inputs = graph.get_inputs()
    if len(inputs) != 1:
        raise binder.error(
            f"'{path}' has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); sqlml feeds one.", path_node,
            "Export the model with one input tensor of shape (rows, features).",
        )  # fmt: skip
    graph_input = inputs[0]
    if graph_input.type not in ("tensor(float)", "tensor(double)"):
        raise binder.error(
            f"'{path}' takes {graph_input.type} input '{graph_input.name}'; sqlml feeds float or double.", path_node,
            "Export the model with a float32 (or float64) input.",
        )  # fmt: skip
    dims = graph_input.shape[1:]
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise binder.error(
            f"'{path}' takes input '{graph_input.name}' of shape {graph_input.shape}; sqlml needs (rows, n) or "
            "(rows, c, h, w) with every size past the rows known.", path_node,
            "Export with a dynamic batch axis only (dynamic_axes={'input': {0: 'rows'}}).",
        )  # fmt: skip
    batch = graph_input.shape[0]
    if isinstance(batch, int):  # torch.onnx.export without dynamic axes: the example's batch size
        relaxed = any_batch(data, graph, batch, dims)
        if relaxed is None:
            raise binder.error(
                f"'{path}' takes batches of exactly {batch} row{'s' if batch != 1 else ''} (input '{graph_input.name}' of shape "
                f"{graph_input.shape}) and does not score rows alike in larger ones; sqlml scores 2,048 at a time.",
                path_node, f"Export with a dynamic batch axis (dynamic_axes={{'{graph_input.name}': {{0: 'rows'}}}}).",
            )  # fmt: skip
        data, graph = relaxed
        graph_input = graph.get_inputs()[0]
    width = int(np.prod(dims))
    task = option("task", "classification" if "classes" in options else "regression")
    if task not in TASKS:
        raise binder.error(f"Bad value {task!r} for task.", at("task"), did_you_mean(str(task), TASKS)
                           or "task = 'classification' or 'regression'.")  # fmt: skip
    classes = option("classes")
    if task == "classification" and (not isinstance(classes, list) or len(classes) < 2):
        raise binder.error(
            "An imported classifier needs its classes, in the order of its probability columns.", at("task"),
            "Add classes = [0, 1] (or ['cat', 'dog', ...]) to WITH.",
        )  # fmt: skip
    outputs = {o.name: o for o in graph.get_outputs()}
    tensors = [o.name for o in outputs.values() if o.type in ("tensor(float)", "tensor(double)")]
    score = option("output", tensors[0] if tensors else None)
    for key, wanted in (("output", score), ("embedding", option("embedding"))):
        if wanted is not None and wanted not in tensors:
            what = "is not a float tensor (skl2onnx's ZipMap? convert with options={'zipmap': False})" \
                if wanted in outputs else "is not one of its outputs"  # fmt: skip
            raise binder.error(f"Output '{wanted}' of '{path}' {what}.", at(key),
                               did_you_mean(str(wanted), tensors) or f"Its float outputs: {', '.join(tensors)}.")  # fmt: skip
    zeros = np.zeros((1, *dims), dtype=np.float32 if graph_input.type == "tensor(float)" else np.float64)
    try:
        produced = dict(zip(outputs, graph.run(list(outputs), {graph_input.name: zeros})))
    except Exception as err:  # onnxruntime's own exception types
        raise binder.error(f"'{path}' fails on a row of zeros: {str(err).splitlines()[0]}", path_node)
    score_width = int(np.prod(np.shape(produced[score])[1:]))
    sigmoid = task == "classification" and score_width == 1 and len(classes) == 2  # P(the second class)
    if task == "classification" and score_width != len(classes) and not sigmoid:
        raise binder.error(
            f"Output '{score}' has {score_width} columns, but {len(classes)} classes were given.", at("classes"),
            "Give one class per probability column, in order (a binary classifier's one column: the second's).",
        )  # fmt: skip
    probabilities = np.asarray(produced[score], dtype=np.float64).reshape(-1)
    total = 1.0 if sigmoid else probabilities.sum()
    if task == "classification" and not (
        np.all((probabilities >= -1e-6) & (probabilities <= 1 + 1e-6)) and abs(total - 1) <= 1e-4
    ):
        shown = ", ".join(f"{p:.4g}" for p in probabilities[:10])
        raise binder.error(
            f"Output '{score}' of '{path}' does not hold probabilities: a row of zeros scores [{shown}]"
            f"{'' if sigmoid else f', which sum to {total:.4g}'}.", at("output"),
            "Export the classifier with its softmax (or sigmoid) at the end (logits are not probabilities), or name "
            "the output that holds them with output = '...'.",
        )  # fmt: skip
    if task == "regression" and score_width != 1 and "task" not in options:
        raise binder.error(
            f"Output '{score}' has {score_width} columns: a classifier needs its classes, in the order of its "
            "probability columns.", path_node, f"Add classes = [...] with {score_width} labels to WITH.",
        )  # fmt: skip
    if task == "regression" and score_width != 1:
        raise binder.error(f"Output '{score}' has {score_width} columns; a regressor's has one.", at("output"),
                           "Name the output that holds the value with output = '...'.")  # fmt: skip
    columns = option("inputs", graph_input.name)
    columns = [columns] if isinstance(columns, str) else columns
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise binder.error("inputs names the feature columns: 'col' or ['a', 'b', ...].", at("inputs"))
    if len(columns) == 1 and width > 1:
        features = [FeatureSpec(columns[0], f"FLOAT[{width}]", "vector", size=width)]
    elif len(columns) == width:
        features = [FeatureSpec(c, "DOUBLE", "numeric") for c in columns]
    else:
        raise binder.error(
            f"'{path}' takes {width} inputs, but inputs names {len(columns)} columns.", at("inputs"),
            f"Name {width} numeric columns, or one vector column of {width} numbers.",
        )  # fmt: skip
    embedding = option("embedding")
    roles = {"score": score, **({"embedding": embedding} if embedding else {})}
    meta = {
        "task": "regression" if task == "regression" else "binary" if len(classes) == 2 else "multiclass",
        "trainer": IMPORTED,
        "label": option("label"),
        "label_type": _label_type(classes) if classes else "DOUBLE",
        "classes": classes,
        "features": [f.to_json() for f in features],
        "inputs": width,
        "onnx": {"outputs": roles},
        **({"embedding": int(np.prod(np.shape(produced[embedding])[1:]))} if embedding else {}),
        "source": str(path.resolve()),
        "params": {},
        "metrics": {},
        "rows": 0,
        "train_rows": 0,
        "validation_rows": 0,
        "training_sql": None,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
        "duration_s": 0.0,
    }
    return ImportModelPlan(name, data, meta, bool(node.args.get("exists")))


def any_batch(data: bytes, graph: Any, batch: int, dims: list[int]) -> tuple[bytes, Any] | None:
    """The model with its batch axis made free (inputs' and outputs' first size; the inner
    shapes it recorded dropped) and its session, when it scores rows in one batch as it scored
    them in its own (two batches of random rows, within 1e-5); None when it does not, as a
    graph that reshapes to its batch size."""
    import onnx

    model = onnx.load_model_from_string(data)
    for value in [*model.graph.input, *model.graph.output]:
        shape = value.type.tensor_type.shape
        if len(shape.dim):
            shape.dim[0].dim_param = "rows"  # a oneof with dim_value: this clears the fixed size
    del model.graph.value_info[:]
    relaxed = bytes(model.SerializeToString())
    first = graph.get_inputs()[0]
    rows = np.random.default_rng(0).standard_normal((2 * batch, *dims))
    rows = rows.astype(np.float32 if first.type == "tensor(float)" else np.float64)
    try:
        free = session(relaxed, 1)
        together = free.run(None, {first.name: rows})
        alone = [graph.run(None, {first.name: part}) for part in (rows[:batch], rows[batch:])]
        expected = [np.concatenate([a, b]) for a, b in zip(*alone)]
        same = all(
            np.shape(o) == np.shape(e) and np.allclose(o, e, rtol=1e-5, atol=1e-5) for o, e in zip(together, expected)
        )
    except Exception:  # ONNX Runtime's own errors, and outputs that are not tensors (a ZipMap's)
        return None
    return (relaxed, free) if same else None


def self_contained(data: bytes, path: Path) -> bytes:
    """The model's bytes with the weights it keeps in files beside it (external data, as
    torch.onnx.export writes by default) read into them, so that the catalog's copy stands
    alone; the bytes as they are when it keeps none (or are not ONNX: ONNX Runtime says so).
    An OSError when a weights file cannot be read, a ValueError past protobuf's 2 GB."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf's DecodeError and onnx's own
        return data
    if all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return data
    try:
        load_external_data_for_model(model, str(path.parent))
    except (onnx.checker.ValidationError, ValueError) as err:  # missing, too short, or out of the model's directory
        raise OSError(str(err).rstrip(".")) from err
    if model.ByteSize() >= 2**31:
        raise ValueError("with its weights is over 2 GB, protobuf's limit for one ONNX file")
    return bytes(model.SerializeToString())


__all__ = ["MODEL_FILE", "ImportModelPlan", "bind_import"]
