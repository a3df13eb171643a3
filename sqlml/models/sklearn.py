"""The scikit-learn families: linear and logistic regression, linear SVC, naive Bayes, k-NN,
k-means and PCA, trained by scikit-learn and stored as ONNX (converted by skl2onnx).

Each model carries its own preprocessing, learnt on the training rows: numbers (and vector
elements) have NULLs replaced by the training mean and are standardised; categories are
one-hot encoded (NULL and unseen categories: all zeros). PREDICT runs the whole graph with
ONNX Runtime in float32, so predictions equal scikit-learn's within about 1e-5 (the tests
allow 1e-4); linear and logistic regression and PCA over numbers are scored from their terms
instead, in float64 (see sqlml.models.affine and sqlml.sql_scoring). WITH takes the
estimator's own parameter names, checked by scikit-learn's own validation when the statement
is bound. scikit-learn and skl2onnx are imported on first use.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml.errors import BindError, ExecutionError, did_you_mean
from sqlml.models import affine
from sqlml.models import onnx as onnx_models
from sqlml.models.base import UNSUPERVISED, Model, Progress, TrainingData
from sqlml.models.onnx_graphs import OPSET, estimator_graph, numbers_graph, serialised

# parameters no family takes, and what to write instead
_REFUSED = {
    "random_state": "Set the seed with seed = n.",
    "n_jobs": "sqlml chooses the threads.",
    "verbose": "sqlml keeps scikit-learn quiet.",
    "warm_start": "Each TRAIN fits anew.",
    "copy_X": "sqlml owns the copy it trains on.",
    "algorithm": "k-NN models search every training row (as ONNX stores them).",
    "leaf_size": "k-NN models search every training row (as ONNX stores them).",
    "metric_params": "k-NN models take metric = 'euclidean', 'manhattan' or 'minkowski' (with p) only.",
    "copy": "sqlml owns the copy it trains on.",
}


@dataclass(frozen=True)
class SklearnTrainer:
    """One scikit-learn estimator, registered under `name`; `defaults` are sqlml's own
    (differing from scikit-learn's where noted in the reference)."""

    name: str
    task: str
    estimator: str  # "module:Class"
    defaults: tuple[tuple[str, Any], ...] = ()
    calibrated: bool = False  # wrap in CalibratedClassifierCV for probabilities (linear SVC)
    keeps_rows: bool = False  # k-NN: the model is its training rows
    boosting: bool = False
    model_file: str = onnx_models.MODEL_FILE
    # for the contract checks (sqlml.models.contract)
    example: tuple[tuple[str, Any], ...] = ()
    randomised: tuple[tuple[str, Any], ...] = ()

    def _class(self) -> Any:
        module, _, name = self.estimator.partition(":")
        return getattr(importlib.import_module(module), name)

    def vocabulary(self) -> list[str]:
        """The parameter names WITH takes (the estimator's, less those sqlml sets itself)."""
        names = inspect.signature(self._class()).parameters
        return [n for n in names if n not in _REFUSED]

    def task_for(self, num_classes: int) -> str:
        if self.task == "classification":
            return "binary" if num_classes <= 2 else "multiclass"
        return self.task

    def check_param(self, key: str, value: Any) -> tuple[str, Any]:
        if key in _REFUSED:
            raise BindError(f"{self.name} does not take parameter '{key}'.", hint=_REFUSED[key])
        vocabulary = self.vocabulary()
        key = {n.lower(): n for n in vocabulary}.get(key.lower(), key)  # SQL names are case-insensitive: C is c
        if key not in vocabulary:
            raise BindError(
                f"Unknown parameter '{key}' for {self.name}.",
                hint=did_you_mean(key, vocabulary) or f"{self.name} takes {', '.join(vocabulary)}.",
            )
        if key == "penalty":
            raise BindError(
                f"{self.name} sets its penalty with l1_ratio (scikit-learn's spelling since 1.8).",
                hint="l1_ratio = 0 is L2, 1 is L1, between is elastic-net; C is the inverse strength.",
            )
        if key == "metric" and value not in ("euclidean", "manhattan", "minkowski"):
            raise BindError(
                f"Bad value {value!r} for metric.",
                hint="k-NN models take 'euclidean', 'manhattan' or 'minkowski' (with p).",
            )
        if isinstance(value, list):
            value = [tuple(v) if isinstance(v, list) else v for v in value]
        try:
            self._class()(**{key: value})._validate_params()
        except (TypeError, ValueError) as err:  # scikit-learn's InvalidParameterError is a ValueError
            raise BindError(f"Bad value {value!r} for {key}: {err}", hint=None) from err
        return key, value

    def params_for(self, params: dict[str, Any], num_classes: int) -> dict[str, Any]:
        out = {**dict(self.defaults), **params}
        if "random_state" in inspect.signature(self._class()).parameters:
            out.setdefault("seed", 0)  # deterministic unless the TRAIN sets another seed, as LightGBM
        if out.get("l1_ratio") and "solver" not in params and self.estimator.endswith(":LogisticRegression"):
            out["solver"] = "saga"  # the solver that fits L1 and elastic-net penalties
        return out

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
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        x, columns = _matrix(train)
        params = dict(params)
        seed = params.pop("seed", None)
        preprocess = preprocessing(x, columns, train.categorical)
        estimator = self._make(params, seed)
        neighbours = getattr(estimator, "n_neighbors", 0)
        if self.keeps_rows and neighbours > len(x):  # scikit-learn's fit takes it; every prediction would fail
            raise ExecutionError(
                f"{self.name} looks for {neighbours} neighbours among {len(x)} training rows.",
                hint=f"Set n_neighbors to at most {len(x)}, or train on more rows (validation rows are not searched).",
            )
        fit_params: dict[str, Any] = {}
        if train.weight is not None:
            if "sample_weight" not in inspect.signature(estimator.fit).parameters:
                raise ExecutionError(f"{self.name} cannot weigh rows.", hint="Leave WEIGHT out.")
            fit_params["sample_weight"] = train.weight
        try:
            with warnings.catch_warnings(record=True) as caught:  # kept in the version's metadata (DESCRIBE)
                warnings.simplefilter("always", ConvergenceWarning)
                xt = preprocess.fit_transform(x)
                if self.keeps_rows and isinstance(xt, np.ndarray):
                    # row-major float32, as its ONNX graph keeps them: scikit-learn would copy the column-major
                    # float64 matrix to row-major first (38 ms for 200,000 x 28), then sqlml to float32
                    xt = np.ascontiguousarray(xt, dtype=np.float32)
                # a linear model's inputs' mean (for its explanations), before a fit that may overwrite them
                mean = np.average(xt, axis=0, weights=train.weight) if hasattr(estimator, "fit_intercept") else None
                if self.task in UNSUPERVISED:
                    estimator.fit(xt, **fit_params)
                else:
                    estimator.fit(xt, train.label, **fit_params)
        except ValueError as err:
            raise ExecutionError(
                f"scikit-learn could not train {self.name}: {err}",
                hint=f"Check the WITH parameters against scikit-learn's {self.estimator.split(':')[1]} and the data.",
            ) from err
        if progress is not None:
            progress(1, 1)
        classes = getattr(estimator, "classes_", None)
        if classes is not None and not np.array_equal(classes, np.arange(len(classes))):
            raise ExecutionError(
                f"The training rows lack some of the label's classes (they have {len(classes)}).",
                hint="Train on more rows, or use a sequential split only when every class is in the first part.",
            )
        try:
            data, roles = to_onnx(preprocess, estimator, x.shape[1], self.task)  # checks a k-NN graph itself
            model = onnx_models.OnnxModel(data, self.task_for(len(classes) if classes is not None else 0), roles)
            if not self.keeps_rows:
                model.full_session  # noqa: B018 (made now: ONNX Runtime can run the graph)
        except ValueError as err:  # a graph skl2onnx wrote that ONNX Runtime cannot run
            raise ExecutionError(
                f"ONNX Runtime cannot run {self.name}'s converted model: {err}",
                hint="Try other parameters (metric = 'euclidean', say); nothing was stored.",
            ) from err
        model.info = {"onnx": {"outputs": model.outputs}, **_summary(estimator)}
        if mean is not None and hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
            model.info["linear"] = linear_terms(estimator, mean, preprocess, len(columns))
        if isinstance(preprocess, Standardiser):  # numbers only: scored from the affine terms (sqlml.models.affine)
            terms = affine.terms(estimator, preprocess.mean_, preprocess.scale_, preprocess.fill_)
            if terms is not None:
                model.info["affine"], model.affine = terms, affine.Affine(**terms)
        notes = sorted({str(w.message).split("\n")[0] for w in caught if issubclass(w.category, ConvergenceWarning)})
        if notes:
            model.info["warnings"] = notes
        used = {**params, **({"seed": seed} if seed is not None else {})}
        return model, used

    def _make(self, params: dict[str, Any], seed: int | None) -> Any:
        cls = self._class()
        if seed is not None and "random_state" in inspect.signature(cls).parameters:
            params = {**params, "random_state": seed}
        copies = {n: False for n in ("copy_X", "copy", "copy_x") if n in inspect.signature(cls).parameters}
        estimator = cls(**params, **copies)  # the matrix is the fit's own: no copy of it (46 MB for 200,000 x 28)
        if self.calibrated:
            from sklearn.calibration import CalibratedClassifierCV

            estimator = CalibratedClassifierCV(estimator, method="sigmoid", cv=3)
        return estimator

    def load(self, data: bytes, meta: dict[str, Any]) -> Model:
        return onnx_models.load(data, meta)


def _matrix(data: TrainingData) -> tuple[np.ndarray, list[str]]:
    """The training inputs as a column-major float64 matrix of their own (preprocessing writes
    in it) and their names."""
    from sqlml import features

    table = data.features
    if isinstance(table, pa.Table):
        return features.to_matrix(table.columns, table.num_rows, order="F"), table.column_names
    if not isinstance(table, np.ndarray):
        raise ExecutionError("Free text (TEXT) trains with the lightgbm_* trainers only.")
    return np.array(table, dtype=np.float64, order="F"), list(data.names)


class Standardiser:
    """The preprocessing of a model whose inputs are all numbers: NULL (NaN) becomes the
    column's training mean, then each column is centred and divided by its standard deviation.
    It learns what scikit-learn's SimpleImputer(keep_empty_features=True) and StandardScaler
    learn (an all-NULL column fills with 0; a column constant by scikit-learn's own test keeps
    scale 1), in a few NumPy passes per column over the training matrix, in place: 20 ms
    instead of scikit-learn's 140 on 200,000 x 28, whose checks and copies cost the rest.

    >>> x = np.array([[1.0, 5.0], [np.nan, 5.0], [3.0, 5.0]], order="F")
    >>> s = Standardiser(); s.fit_transform(x).round(3).tolist(), s.fill_.tolist(), s.scale_.tolist()
    ([[-1.225, 0.0], [0.0, 0.0], [1.225, 0.0]], [2.0, 5.0], [0.816496580927726, 1.0])
    """

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        rows, width = x.shape
        eps = np.finfo(np.float64).eps
        self.fill_, self.mean_, self.scale_ = np.zeros(width), np.zeros(width), np.ones(width)
        for j in range(width):  # a column at a time: contiguous in the column-major matrix
            column = x[:, j]
            missing = np.isnan(column)
            holes = int(np.count_nonzero(missing))
            if holes:
                self.fill_[j] = column[~missing].mean() if holes < rows else 0.0
                column[missing] = self.fill_[j]
                self.mean_[j] = column.mean()
            else:
                self.fill_[j] = self.mean_[j] = column.mean()
            column -= self.mean_[j]
            var = float(column @ column) / rows
            if var > rows * eps * var + (rows * self.mean_[j] * eps) ** 2:  # scikit-learn's _is_constant_feature
                self.scale_[j] = np.sqrt(var)
                column /= self.scale_[j]
        return x


def preprocessing(x: np.ndarray, columns: list[str], categorical: tuple[str, ...]) -> Any:
    """The unfitted preprocessing for these inputs: mean-imputed, standardised numbers and
    one-hot categories (codes 0..n-1 as training saw them; NULL and unseen: all zeros)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = [i for i, c in enumerate(columns) if c in set(categorical)]
    if not cats:
        return Standardiser()
    numbers = Pipeline([("impute", SimpleImputer(keep_empty_features=True)), ("scale", StandardScaler())])
    nums = [i for i in range(len(columns)) if i not in cats]
    known = [[float(c) for c in range(int(np.nanmax(x[:, i], initial=-1)) + 1)] or [0.0] for i in cats]
    onehot = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True)),
            ("onehot", OneHotEncoder(categories=known, handle_unknown="ignore", sparse_output=False)),
        ]
    )
    parts = [("numbers", numbers, nums)] if nums else []
    return ColumnTransformer([*parts, ("categories", onehot, cats)])


def to_onnx(preprocess: Any, estimator: Any, width: int, task: str) -> tuple[bytes, dict[str, str]]:
    """One ONNX graph of the fitted preprocessing and estimator, with the preprocessed inputs
    as an output too: (bytes, outputs by role). `task` is the trainer's. A k-NN graph is run
    once by ONNX Runtime before its training rows go in (a ValueError if it cannot be)."""
    from onnx import compose
    from skl2onnx import to_onnx as convert
    from skl2onnx.common.data_types import FloatTensorType

    try:
        mean = scale = None
        if isinstance(preprocess, Standardiser):  # numbers only: plain tensor operators, several times faster
            head = numbers_graph(preprocess.fill_, preprocess.mean_, preprocess.scale_)
            mean, scale = preprocess.mean_, preprocess.scale_
        else:
            head = convert(preprocess, initial_types=[("input", FloatTensorType([None, width]))], target_opset=OPSET)
        inner = head.graph.output[0]
        size = inner.type.tensor_type.shape.dim[1].dim_value or None
        options: dict[str, Any] = {"zipmap": False} if task == "classification" else {}
        if getattr(estimator, "effective_metric_", None) == "euclidean":  # k-NN (minkowski with p = 2 too)
            options["optim"] = "cdist"  # ONNX Runtime's CDist: 9x faster than the default; it has no other metric

        def tail_graph() -> Any:
            return convert(estimator, initial_types=[("x", FloatTensorType([None, size]))],
                           options={id(estimator): options} if options else None, target_opset=OPSET)  # fmt: skip

        rows: dict[str, np.ndarray] = {}
        # the estimator reads the standardised inputs, or the imputed ones when its graph folds the standardisation in
        tail = estimator_graph(estimator, size, mean, scale)
        feed = "filled" if tail is not None and mean is not None else inner.name
        if tail is None and hasattr(estimator, "_fit_X"):
            tail, rows = _few_training_rows(estimator, tail_graph)
            _unnegate_distances(tail)
        elif tail is None:
            tail = tail_graph()
    except Exception as err:  # skl2onnx raises many types for what it cannot convert
        raise ExecutionError(f"skl2onnx could not convert the model to ONNX: {err}") from err
    tail = compose.add_prefix(tail, "model_")
    head.ir_version = tail.ir_version
    versions = {o.domain: o.version for o in tail.opset_import}
    for opset in head.opset_import:  # one version per domain: the one the estimator's operators need
        opset.version = max(opset.version, versions.get(opset.domain, 0))
    names = [o.name for o in tail.graph.output]
    merged = compose.merge_models(head, tail, io_map=[(feed, "model_x")], outputs=[inner.name, *names])
    if hasattr(estimator, "_fit_X"):  # k-NN: ONNX Runtime can run the graph, checked before its rows go in
        onnx_models.session(merged.SerializeToString())
    roles = {"inputs": inner.name}
    if task == "clustering":
        roles |= {"label": names[0], "score": names[1]}
    else:
        roles["score"] = names[-1]
    return serialised(merged, rows), roles  # the rows go in after the merge, which serialises the graph to check it


def _few_training_rows(estimator: Any, convert: Callable[[], Any]) -> tuple[Any, dict[str, np.ndarray]]:
    """A k-NN model's graph converted with a few of its training rows, and all the rows for the
    constants that stand for them (named as in the merged graph, prefixed `model_`), to put in
    as raw bytes: skl2onnx writes the rows into the graph one number at a time (2.2 s for
    200,000 x 28). The plain conversion (and no swap) when the stand-ins are not found once each."""
    from onnx import numpy_helper

    x, y = estimator._fit_X, estimator._y
    few = int(estimator.n_neighbors) + 17  # an unlikely length, checked below
    if len(x) <= few:
        return convert(), {}
    try:
        estimator._fit_X, estimator._y = x[:few], y[:few]
        graph = convert()
    finally:
        estimator._fit_X, estimator._y = x, y
    stand_ins: dict[str, list[tuple[str, np.ndarray]]] = {}
    for init in graph.graph.initializer:
        value = numpy_helper.to_array(init)
        for name, whole in (("rows", x), ("labels", y)):
            if value.shape == whole[:few].shape and np.array_equal(value, whole[:few].astype(value.dtype)):
                stand_ins.setdefault(name, []).append(("model_" + init.name, whole.astype(value.dtype, copy=False)))
    if sorted(stand_ins) != ["labels", "rows"] or any(len(found) != 1 for found in stand_ins.values()):
        return convert(), {}
    return graph, dict(found for [found] in stand_ins.values())


def _unnegate_distances(graph: Any) -> None:
    """Mend skl2onnx's k-NN graphs with `weights = 'distance'`: they multiply the neighbours'
    distances by -1 before weighing by 1 / max(distance, 1e-6), so every weight is 1e6 and the
    vote is unweighted (onnx/sklearn-onnx#1214, open). The Mul is taken out, as the fix proposed
    there (#1212) does; predictions then equal scikit-learn's."""
    from onnx import numpy_helper

    nodes = graph.graph.node
    distances = {node.output[0] for node in nodes if node.op_type == "TopK"}
    constants = {init.name: init for init in graph.graph.initializer}
    for node in [n for n in nodes if n.op_type == "Mul" and n.input[0] in distances and n.input[1] in constants]:
        factor = numpy_helper.to_array(constants[node.input[1]])
        if factor.size != 1 or factor.item() != -1:
            continue
        for other in nodes:
            other.input[:] = [node.input[0] if name == node.output[0] else name for name in other.input]
        nodes.remove(node)
        if not any(node.input[1] in other.input for other in nodes):
            graph.graph.initializer.remove(constants[node.input[1]])


def linear_terms(estimator: Any, mean: np.ndarray, preprocess: Any, width: int) -> dict[str, Any]:
    """What explains a linear model's scores (see sqlml.diagnostics.linear_contributions): its
    coefficients and intercepts over the preprocessed inputs, their (weighted) `mean` on the
    training rows, and the model input each preprocessed column comes from."""
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    owners = list(range(width))
    if not isinstance(preprocess, Standardiser):  # a ColumnTransformer: numbers first, then each category's one-hot
        numbers: list[int] = next((cols for name, _, cols in preprocess.transformers_ if name == "numbers"), [])
        onehot = preprocess.named_transformers_["categories"].named_steps["onehot"]
        cats = next(cols for name, _, cols in preprocess.transformers_ if name == "categories")
        owners = [*numbers, *[c for c, known in zip(cats, onehot.categories_) for _ in known]]
    return {
        "coef": coef.tolist(),
        "intercept": np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64)).tolist(),
        "mean": mean.tolist(),
        "owners": [int(o) for o in owners],
    }


def _summary(estimator: Any) -> dict[str, Any]:
    """What DESCRIBE shows of a fitted estimator besides its parameters."""
    if hasattr(estimator, "explained_variance_ratio_"):
        ratios = [float(r) for r in estimator.explained_variance_ratio_]
        return {"components": len(ratios), "explained_variance_ratio": ratios}
    if hasattr(estimator, "cluster_centers_"):
        return {"clusters": int(len(estimator.cluster_centers_)), "iterations": int(estimator.n_iter_)}
    return {}


def register_builtins(register: Callable[[Any], Any]) -> None:
    lm, knn = "sklearn.linear_model", "sklearn.neighbors"
    register(SklearnTrainer("linear_regressor", "regression", f"{lm}:LinearRegression",
                            example=(("fit_intercept", False),)))  # fmt: skip
    register(SklearnTrainer("logistic_classifier", "classification", f"{lm}:LogisticRegression",
                            (("max_iter", 1000),), example=(("C", 0.05),)))  # fmt: skip
    register(SklearnTrainer("linear_svc", "classification", "sklearn.svm:LinearSVC", calibrated=True,
                            example=(("C", 0.05),)))  # fmt: skip
    register(SklearnTrainer("naive_bayes", "classification", "sklearn.naive_bayes:GaussianNB",
                            example=(("var_smoothing", 0.5),)))  # fmt: skip
    register(SklearnTrainer("knn_classifier", "classification", f"{knn}:KNeighborsClassifier", keeps_rows=True,
                            example=(("n_neighbors", 9),)))  # fmt: skip
    register(SklearnTrainer("knn_regressor", "regression", f"{knn}:KNeighborsRegressor", keeps_rows=True,
                            example=(("n_neighbors", 9),)))  # fmt: skip
    register(SklearnTrainer("kmeans", "clustering", "sklearn.cluster:KMeans", (("n_clusters", 8),),
                            example=(("n_clusters", 3),), randomised=(("init", "random"), ("n_init", 1))))  # fmt: skip
    register(SklearnTrainer("pca", "decomposition", "sklearn.decomposition:PCA", (("n_components", 2),),
                            example=(("whiten", True),)))  # fmt: skip
