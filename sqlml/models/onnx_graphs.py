"""ONNX graphs sqlml writes itself, where skl2onnx's graph for the same model runs several
times slower in ONNX Runtime: the numbers' preprocessing, and linear SVC's calibrated
probabilities. Each computes what scikit-learn computes, in float32 (the tests compare them
with scikit-learn's own predictions).

>>> import numpy as np
>>> graph = numbers_graph(np.array([1.0, 2.0]), np.array([0.5, 2.0]), np.array([2.0, 4.0]))
>>> [node.op_type for node in graph.graph.node]
['Imputer', 'Sub', 'Div']
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
    Imputer. Input `input`, output `variable`, both (rows, width)."""
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
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, width])],
        constants,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, 1)])


def calibrated_linear_graph(calibrated: Any, width: int | None) -> Any | None:
    """A CalibratedClassifierCV of linear models with sigmoid calibration (sqlml's linear_svc)
    as one Gemm of every fold's calibrated scores, a Sigmoid, and the folds' normalised mean:
    6-8 operators where skl2onnx writes 36 (1.5 ms a 2,048-row vector, as long as
    scikit-learn's whole predict_proba). None for a model this does not cover (another
    calibration, a fold that saw fewer classes): skl2onnx converts those.

    Per fold k and class c, scikit-learn's probability is expit(-(a * (w.x + b) + b')), with
    the calibrator's a and b' folded into the Gemm's weights: (-a w).x - (a b + b'). Binary:
    the mean over folds is class 1's probability. Multiclass: each fold's probabilities are
    divided by their sum (uniform when every one is 0: a tiny constant added to each gives
    that), then averaged. Outputs `label` (int64) and `probabilities` (rows, classes), as
    skl2onnx's classifiers."""
    from onnx import TensorProto, helper, numpy_helper

    folds = calibrated.calibrated_classifiers_
    classes = len(calibrated.classes_)
    if calibrated.method != "sigmoid" or any(
        not hasattr(f.estimator, "coef_") or len(f.estimator.classes_) != classes for f in folds
    ):
        return None
    weights, biases = [], []
    for fold in folds:
        coef = np.atleast_2d(fold.estimator.coef_)  # (1 or classes, width)
        intercept = np.broadcast_to(np.atleast_1d(fold.estimator.intercept_), (len(coef),))
        a = np.array([c.a_ for c in fold.calibrators])
        b = np.array([c.b_ for c in fold.calibrators])
        weights.append(-a[:, None] * coef)
        biases.append(-(a * intercept + b))
    per_fold = len(weights[0])  # 1 (binary) or classes
    constants: dict[str, np.ndarray] = {
        "weights": np.concatenate(weights).T.astype(np.float32),  # (width, folds x per_fold)
        "biases": np.concatenate(biases).astype(np.float32),
        "sum_axes": np.array([2], dtype=np.int64),
        "fold_axes": np.array([1], dtype=np.int64),
        "shape": np.array([0, len(folds), per_fold], dtype=np.int64),
        "one": np.ones((1, 1), dtype=np.float32),
        "tiny": np.array(1e-30, dtype=np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["x", "weights", "biases"], ["scores"]),
        helper.make_node("Sigmoid", ["scores"], ["calibrated"]),
    ]
    if classes == 2:
        nodes += [
            helper.make_node("ReduceMean", ["calibrated", "fold_axes"], ["positive"], keepdims=1),
            helper.make_node("Sub", ["one", "positive"], ["negative"]),
            helper.make_node("Concat", ["negative", "positive"], ["probabilities"], axis=1),
        ]
    else:
        nodes += [
            helper.make_node("Add", ["calibrated", "tiny"], ["lifted"]),
            helper.make_node("Reshape", ["lifted", "shape"], ["by_fold"]),
            helper.make_node("ReduceSum", ["by_fold", "sum_axes"], ["total"], keepdims=1),
            helper.make_node("Div", ["by_fold", "total"], ["normalised"]),
            helper.make_node("ReduceMean", ["normalised", "fold_axes"], ["probabilities"], keepdims=0),
        ]
    nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
    graph = helper.make_graph(
        nodes, "calibrated_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, classes])],
        [numpy_helper.from_array(v, name) for name, v in constants.items()],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
