"""ONNX graphs sqlml writes itself, where skl2onnx's graph for the same model runs several
times slower in ONNX Runtime: the numbers' preprocessing, and the models that are one affine
map and a link (linear and logistic regression, linear SVC's calibrated probabilities, PCA).
Each computes what scikit-learn computes, in float32 (the tests compare them with
scikit-learn's own predictions).

The standardisation of numbers is folded into the affine map's weights, (x - m) / s . w + b =
x . (w / s) + (b - (m / s) . w): ONNX Runtime spends 145 µs a 2,048-row vector on the Sub and
Div of 28 columns (they broadcast), three times what the whole Gemm costs. The rounding this adds is
of the order of float32's rounding of the inputs, which both ways have.

>>> import numpy as np
>>> graph = numbers_graph(np.array([1.0, 2.0]), np.array([0.5, 2.0]), np.array([2.0, 4.0]))
>>> [node.op_type for node in graph.graph.node], [o.name for o in graph.graph.output]
(['Imputer', 'Sub', 'Div'], ['variable', 'filled'])
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPSET = 18
ML_DOMAIN = "ai.onnx.ml"


def numbers_graph(fill: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> Any:
    """NULL (NaN) as `fill`, then (x - mean) / scale, with ONNX-ML's Imputer and standard Sub
    and Div: the float32 arithmetic of skl2onnx's Imputer and Scaler. ONNX-ML's Scaler runs
    several times slower than Sub and Div, and IsNaN + Where (a broadcast) 10x slower than the
    Imputer. Input `input`, outputs `variable` and the imputed inputs `filled`, all (rows, width)."""
    from onnx import TensorProto, helper, numpy_helper

    width = len(fill)
    constants = [numpy_helper.from_array(np.asarray(v, dtype=np.float32).reshape(1, width), name)
                 for name, v in (("mean", mean), ("scale", scale))]  # fmt: skip
    nodes = [
        helper.make_node(
            "Imputer",
            ["input"],
            ["filled"],
            domain=ML_DOMAIN,
            imputed_value_floats=np.asarray(fill, dtype=np.float32).tolist(),
            replaced_value_float=float("nan"),
        ),
        helper.make_node("Sub", ["filled", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["variable"]),
    ]
    graph = helper.make_graph(
        nodes, "preprocessing",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, width]) for name in ("variable", "filled")],
        constants,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, 1)])


def estimator_graph(estimator: Any, width: int | None, mean: np.ndarray | None = None,
                    scale: np.ndarray | None = None) -> Any | None:  # fmt: skip
    """sqlml's graph for a fitted scikit-learn estimator that is an affine map and a link, on
    inputs of `width` columns (standardised by `mean` and `scale` first, folded into the
    weights, when given); None for another estimator, which skl2onnx converts. Input `x`;
    outputs as skl2onnx names them: `variable` (a regression's value, PCA's components), or
    `label` (int64) and `probabilities` (rows, classes).

    - LinearRegression: x . w + b.
    - LogisticRegression: binary, [1 - p, p] with p = sigmoid(x . w + b); multiclass, the
      softmax of x . W + b (scikit-learn's predict_proba).
    - PCA: (x - mean) . components' / sqrt(explained variance) when whitened (its transform).
    - KMeans: `label`, the nearest centre, and `scores`, its distance (rows, 1), as
      skl2onnx does (the squared distances are |x|^2 - 2 x . c + |c|^2, the last two one
      Gemm), but the minimum's square root only and the standardisation as a Gemm with a
      diagonal matrix: 170 µs a vector where skl2onnx's graph takes 270.
    - CalibratedClassifierCV of a linear model, sigmoid calibration (sqlml's linear_svc): per
      fold k and class c scikit-learn's probability is expit(-(a (w . x + b) + b')), so the
      calibrator's a and b' fold into the weights, (-a w) . x - (a b + b'). Binary: the folds'
      mean is class 1's probability. Multiclass: each fold's probabilities are divided by
      their sum (uniform when every one is 0: a tiny constant added to each gives that), then
      averaged. 11 operators where skl2onnx writes 36 (1.5 ms a vector).
    """
    kind = type(estimator).__name__
    if kind == "CalibratedClassifierCV":
        return _calibrated(estimator, width, mean, scale)
    if kind == "KMeans":
        return _nearest_centre(np.asarray(estimator.cluster_centers_, dtype=np.float64), width, mean, scale)
    terms = affine_terms(estimator)
    if terms is None:
        return None
    weights, biases, link = terms
    if link == "identity":
        return _affine_graph(
            weights, biases, mean, scale, width, [], {"variable": [None, len(biases)]}, scores="variable"
        )
    if link == "sigmoid":
        nodes = [_node("Sigmoid", ["scores"], ["positive"]), *_labelled("positive")]
    else:
        nodes = [_node("Softmax", ["scores"], ["probabilities"], axis=1), *_labelled(None)]
    return _affine_graph(weights, biases, mean, scale, width, nodes, _classified(len(estimator.classes_)))


def affine_terms(estimator: Any) -> tuple[np.ndarray, np.ndarray, str] | None:
    """A fitted estimator that is an affine map and a link as (weights (inputs, outputs),
    biases (outputs), link: "identity", "sigmoid" or "softmax"), in float64; None for another.

    >>> from sklearn.linear_model import LinearRegression
    >>> w, b, link = affine_terms(LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0]))
    >>> w.round(6).tolist(), b.round(6).tolist(), link
    ([[2.0]], [1.0], 'identity')
    """
    kind = type(estimator).__name__
    if kind == "LinearRegression" and np.ndim(estimator.coef_) == 1:
        return estimator.coef_[:, None], np.atleast_1d(estimator.intercept_), "identity"
    if kind == "LogisticRegression":
        link = "sigmoid" if len(estimator.classes_) == 2 else "softmax"
        return estimator.coef_.T, np.asarray(estimator.intercept_), link
    if kind == "PCA":
        whiten = np.sqrt(estimator.explained_variance_) if estimator.whiten else np.ones(estimator.n_components_)
        whiten = np.maximum(whiten, np.finfo(np.float64).eps)
        weights = estimator.components_.T / whiten
        return weights, -(estimator.mean_ @ estimator.components_.T) / whiten, "identity"
    return None


def folded(
    weights: np.ndarray, biases: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The affine map on raw inputs that equals (weights, biases) on standardised ones:
    (x - mean) / scale . w + b = x . (w / scale) + (b - (mean / scale) . w)."""
    weights = weights / scale[:, None]
    return weights, biases - mean @ weights


def _calibrated(calibrated: Any, width: int | None, mean: np.ndarray | None, scale: np.ndarray | None) -> Any | None:
    folds = calibrated.calibrated_classifiers_
    classes = len(calibrated.classes_)
    if calibrated.method != "sigmoid" or any(
        not hasattr(f.estimator, "coef_") or len(f.estimator.classes_) != classes for f in folds
    ):
        return None  # another calibration, or a fold that saw fewer classes
    weights, biases = [], []
    for fold in folds:
        coef = np.atleast_2d(fold.estimator.coef_)  # (1 or classes, width)
        intercept = np.broadcast_to(np.atleast_1d(fold.estimator.intercept_), (len(coef),))
        a = np.array([c.a_ for c in fold.calibrators])
        b = np.array([c.b_ for c in fold.calibrators])
        weights.append(-a[:, None] * coef)
        biases.append(-(a * intercept + b))
    per_fold = len(weights[0])  # 1 (binary) or classes
    nodes = [_node("Sigmoid", ["scores"], ["calibrated"])]
    if classes == 2:
        nodes += [_node("ReduceMean", ["calibrated", "fold_axes"], ["positive"], keepdims=1), *_labelled("positive")]
    else:
        nodes += [
            _node("Add", ["calibrated", "tiny"], ["lifted"]),
            _node("Reshape", ["lifted", "shape"], ["by_fold"]),
            _node("ReduceSum", ["by_fold", "sum_axes"], ["total"], keepdims=1),
            _node("Div", ["by_fold", "total"], ["normalised"]),
            _node("ReduceMean", ["normalised", "fold_axes"], ["probabilities"], keepdims=0),
            *_labelled(None),
        ]
    constants: dict[str, np.ndarray] = {
        "sum_axes": np.array([2], dtype=np.int64),
        "fold_axes": np.array([1], dtype=np.int64),
        "shape": np.array([0, len(folds), per_fold], dtype=np.int64),
        "tiny": np.array(1e-30, dtype=np.float32),
    }
    weights_, biases_ = np.concatenate(weights).T, np.concatenate(biases)  # (width, folds x per_fold)
    return _affine_graph(weights_, biases_, mean, scale, width, nodes, _classified(classes), constants)


def _nearest_centre(centres: np.ndarray, width: int | None, mean: np.ndarray | None,
                    scale: np.ndarray | None) -> Any:  # fmt: skip
    from onnx import TensorProto, helper, numpy_helper

    nodes, standardised = [], "x"
    constants: dict[str, np.ndarray] = {
        "cross_weights": -2 * centres.T,
        "centres_squared": (centres * centres).sum(axis=1),
        "axis": np.array([1], dtype=np.int64),
        "zero": np.zeros(1),
    }
    if mean is not None and scale is not None:  # (x - mean) / scale as x . diag(1 / scale) - mean / scale
        nodes.append(_node("Gemm", ["x", "diagonal", "offset"], ["standardised"]))
        constants |= {"diagonal": np.diag(1 / scale), "offset": -mean / scale}
        standardised = "standardised"
    nodes += [
        _node("Gemm", [standardised, "cross_weights", "centres_squared"], ["cross"]),
        _node("ReduceSumSquare", [standardised, "axis"], ["norm"], keepdims=1),
        _node("ArgMin", ["cross"], ["label"], axis=1, keepdims=0),
        _node("ReduceMin", ["cross", "axis"], ["least"], keepdims=1),
        _node("Add", ["least", "norm"], ["squared"]),
        _node("Max", ["squared", "zero"], ["clipped"]),  # rounding may leave a tiny negative
        _node("Sqrt", ["clipped"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "nearest_centre",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if v.dtype.kind == "f" else v.dtype), name)
         for name, v in constants.items()],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _node(op: str, inputs: list[str], outputs: list[str], **attributes: Any) -> Any:
    from onnx import helper

    return helper.make_node(op, inputs, outputs, **attributes)


def _labelled(positive: str | None) -> list[Any]:
    """The probabilities [1 - p, p] from class 1's probability `positive` (None: they are
    computed already), and the label: the first class of the highest probability."""
    nodes = []
    if positive is not None:
        nodes = [
            _node("Sub", ["one", positive], ["negative"]),
            _node("Concat", ["negative", positive], ["probabilities"], axis=1),
        ]
    return [*nodes, _node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0)]


def _classified(classes: int) -> dict[str, list[int | None]]:
    return {"label": [None], "probabilities": [None, classes]}


def _affine_graph(
    weights: np.ndarray, biases: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None, width: int | None,
    nodes: list[Any], outputs: dict[str, list[int | None]], constants: dict[str, np.ndarray] | None = None,
    scores: str = "scores",
) -> Any:  # fmt: skip
    """Gemm(x, weights, biases) as `scores` (the standardisation folded in when `mean` and
    `scale` are given), then `nodes`, with `outputs` (name: shape) as the graph's outputs."""
    from onnx import TensorProto, helper, numpy_helper

    if mean is not None and scale is not None:
        weights, biases = folded(weights, biases, mean, scale)
    constants = {**(constants or {}), "weights": weights, "biases": biases, "one": np.ones((1, 1))}
    nodes = [_node("Gemm", ["x", "weights", "biases"], [scores]), *nodes]
    used = {name for node in nodes for name in node.input}
    types = {"label": TensorProto.INT64}
    graph = helper.make_graph(
        nodes, "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info(name, types.get(name, TensorProto.FLOAT), shape) for name, shape in outputs.items()],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if v.dtype.kind == "f" else v.dtype), name)
         for name, v in constants.items() if name in used],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def serialised(model: Any, values: dict[str, np.ndarray]) -> bytes:
    """The model's bytes, its initializers named in `values` holding those arrays instead (same
    type, any shape). They are written after the rest as raw bytes: protobuf merges a message
    field that comes twice, so a second `graph` that holds only these initializers adds them to
    the first. Each array is copied once, into the bytes; putting it in the message and then
    serialising that copies it three times (a k-NN model's 200,000 training rows: 22 MB). The
    model loses those initializers.

    >>> from onnx import helper, load_model_from_string, numpy_helper
    >>> small = numpy_helper.from_array(np.zeros((2, 3), dtype=np.float32), "rows")
    >>> model = helper.make_model(helper.make_graph([], "g", [], [], [small]))
    >>> rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    >>> again = load_model_from_string(serialised(model, {"rows": rows}))
    >>> numpy_helper.to_array(again.graph.initializer[0]).tolist()[3]
    [9.0, 10.0, 11.0]
    """
    from onnx import TensorProto

    entries: list[Any] = []
    for init in [i for i in model.graph.initializer if i.name in values]:
        value = np.ascontiguousarray(values[init.name], dtype=values[init.name].dtype.newbyteorder("<"))  # ONNX's order
        header = TensorProto(name=init.name, data_type=init.data_type, dims=value.shape).SerializeToString()
        raw = _key(9) + _varint(value.nbytes)  # TensorProto.raw_data
        entries += [_key(5) + _varint(len(header) + len(raw) + value.nbytes), header, raw, value.data.cast("B")]
        model.graph.initializer.remove(init)
    if not entries:
        return bytes(model.SerializeToString())
    graph = sum(len(e) for e in entries)  # GraphProto.initializer entries; ModelProto.graph below
    return b"".join([model.SerializeToString(), _key(7) + _varint(graph), *entries])


def _key(field: int) -> bytes:
    """A protobuf field's key for a length-delimited value (wire type 2)."""
    return _varint(field << 3 | 2)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
