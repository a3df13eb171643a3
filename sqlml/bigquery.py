"""BigQuery ML's CREATE MODEL, bound as sqlml's TRAIN MODEL or IMPORT MODEL.

`CREATE [OR REPLACE] MODEL [IF NOT EXISTS] m OPTIONS (...) AS SELECT ...` becomes a TRAIN
with the trainer, label, split and parameters its OPTIONS name; every option is either
mapped or refused by name (never ignored). The mapping is in docs/bigquery-ml.md.

>>> sorted(MODEL_TYPES)[:3]
['boosted_tree_classifier', 'boosted_tree_regressor', 'kmeans']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlml import ast
from sqlml.dialect import Sqlml
from sqlml.errors import SqlmlError, did_you_mean
from sqlml.features import quote
from sqlml.literals import literal

if TYPE_CHECKING:
    from sqlml.plan import Binder, Plan

MODEL_TYPES = {
    "linear_reg": "linear_regressor",
    "logistic_reg": "logistic_classifier",
    "boosted_tree_classifier": "lightgbm_classifier",
    "boosted_tree_regressor": "lightgbm_regressor",
    "random_forest_classifier": "random_forest_classifier",
    "random_forest_regressor": "random_forest_regressor",
    "kmeans": "kmeans",
    "pca": "pca",
}
_NOT_HERE = {
    "dnn_classifier": "a DNN: use lightgbm_classifier, or train a network elsewhere and IMPORT MODEL its ONNX file",
    "dnn_regressor": "a DNN: use lightgbm_regressor, or IMPORT MODEL an ONNX file",
    "dnn_linear_combined_classifier": "wide-and-deep: use lightgbm_classifier",
    "dnn_linear_combined_regressor": "wide-and-deep: use lightgbm_regressor",
    "matrix_factorization": "matrix factorisation: not in sqlml yet",
    "autoencoder": "an autoencoder: use pca for feature reduction",
    "arima_plus": "time-series forecasting: not in sqlml",
    "arima_plus_xreg": "time-series forecasting: not in sqlml",
    "tensorflow": "a TensorFlow SavedModel: convert it to ONNX (tf2onnx) and use model_type = 'onnx'",
    "tensorflow_lite": "a TensorFlow Lite model: convert it to ONNX and use model_type = 'onnx'",
    "xgboost": "an XGBoost model: convert it to ONNX (onnxmltools) and use model_type = 'onnx'",
    "automl_classifier": "AutoML: use lightgbm_classifier",
    "automl_regressor": "AutoML: use lightgbm_regressor",
    "transform_only": "a TRANSFORM-only model: not in sqlml",
    "contribution_analysis": "contribution analysis: not in sqlml",
}
_BOOSTED = ("lightgbm_classifier", "lightgbm_regressor")
_FORESTS = ("random_forest_classifier", "random_forest_regressor")
# options with one meaning in sqlml for the trainers listed (None: all), as a WITH parameter
_PARAMETERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "learn_rate": ("learning_rate", _BOOSTED),
    "l1_reg": ("lambda_l1", _BOOSTED + _FORESTS),
    "l2_reg": ("lambda_l2", _BOOSTED + _FORESTS),
    "max_tree_depth": ("max_depth", _BOOSTED + _FORESTS),
    "min_tree_child_weight": ("min_sum_hessian_in_leaf", _BOOSTED + _FORESTS),
    "colsample_bytree": ("feature_fraction", _BOOSTED + _FORESTS),
    "colsample_bynode": ("feature_fraction_bynode", _BOOSTED + _FORESTS),
    "min_split_loss": ("min_gain_to_split", _BOOSTED + _FORESTS),
    "num_clusters": ("n_clusters", ("kmeans",)),
    "num_principal_components": ("n_components", ("pca",)),
    "pca_explained_variance_ratio": ("n_components", ("pca",)),
}
# options accepted when they ask for what sqlml does anyway: (accepted values, what sqlml does)
_AS_SQLML = {
    "optimize_strategy": (("auto_strategy", "normal_equation"), "linear_regressor solves exactly (least squares)"),
    "tree_method": (("auto", "hist"), "LightGBM grows trees on histograms"),
    "booster_type": (("gbtree",), "LightGBM boosts trees"),
    "distance_type": (("euclidean",), "kmeans measures Euclidean distance"),
    "standardize_features": ((True,), "kmeans standardises its inputs"),
    "category_encoding_method": (("one_hot_encoding",), "linear models one-hot encode categories"),
    "enable_global_explain": ((True, False), "GLOBAL_EXPLAIN explains any tree model on demand"),
    "kmeans_init_method": (("kmeans++", "random"), "passed to scikit-learn's init"),
    "data_split_method": (("auto_split", "random", "no_split", "seq"), "see docs/bigquery-ml.md"),
    "hparam_tuning_algorithm": (("vizier_default",), "sqlml searches with optuna's TPE sampler"),
}
# hparam_tuning_objectives' names for sqlml's metrics (mean_squared_error is minimised through rmse, its root)
_OBJECTIVES = {
    "roc_auc": "auc", "log_loss": "logloss", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
    "f1_score": "f1", "mean_absolute_error": "mae", "mean_squared_error": "rmse", "r2_score": "r2",
    "davies_bouldin_index": "davies_bouldin", "explained_variance": "explained_variance",
}  # fmt: skip
_LOG_SCALE = ("learn_rate", "l1_reg", "l2_reg")  # searched on a log scale, as BigQuery ML does
_REFUSED = {
    "warm_start": "sqlml keeps every version; continue boosting with TRAIN ... WITH (update = 'continue') over a window",
    "calculate_p_values": "sqlml's linear models report no p-values",
    "model_registry": "sqlml's catalog is a folder on disk; there is no Vertex AI registry",
    "vertex_ai_model_id": "sqlml's catalog is a folder on disk; there is no Vertex AI registry",
    "vertex_ai_model_version_aliases": "sqlml's catalog is a folder on disk",
    "kms_key_name": "sqlml stores models unencrypted on disk",
    "budget_hours": "AutoML is not in sqlml",
    "min_rel_progress": "sqlml stops early on no improvement for early_stopping_rounds rounds (early_stop = TRUE: 1 round)",
    "ls_init_learn_rate": "linear models are solved by scikit-learn, without a line search",
    "learn_rate_strategy": "linear models are solved by scikit-learn, without a learning rate",
    "dart_normalize_type": "write sqlml's TRAIN ... USING lightgbm_* WITH (boosting = 'dart', ...)",
    "input_label_cols_type": "the label's type is the column's",
}
KNOWN = sorted({"model_type", "input_label_cols", "data_split_method", "data_split_eval_fraction", "data_split_col",
                "max_iterations", "early_stop", "num_parallel_tree", "subsample", "auto_class_weights",
                "class_weights", "model_path", "num_trials", "max_parallel_trials", "hparam_tuning_objectives", *_PARAMETERS, *_AS_SQLML,
                *_REFUSED})  # fmt: skip


def bind_create_model(binder: Binder, node: ast.CreateModel) -> Plan:
    """The TRAIN (or IMPORT) a CREATE MODEL stands for."""
    from sqlml.importing import bind_import
    from sqlml.plan import SkipPlan
    from sqlml.train_binding import bind_train

    options: dict[str, tuple[Any, exp.Expr]] = {}
    for prop in node.args["options"]:
        key = prop.this.name.lower()
        value = _value(prop.expression)
        if isinstance(prop.expression, exp.Anonymous) and prop.expression.name.upper() in (
            "HPARAM_RANGE",
            "HPARAM_CANDIDATES",
        ):
            value = _space(prop.expression, key)
        if key not in KNOWN:
            raise binder.error(
                f"Unknown CREATE MODEL option '{key}'.", prop.this,
                did_you_mean(key, KNOWN) or "See docs/bigquery-ml.md for the options sqlml maps.",
            )  # fmt: skip
        if value is None:
            raise binder.error(f"The value of option {key} must be a literal.", prop.expression)
        if key in _REFUSED:
            raise binder.error(f"sqlml cannot honour CREATE MODEL option '{key}'.", prop.this, _REFUSED[key] + ".")
        options[key] = (value, prop)
    if "model_type" not in options:
        raise binder.error(
            "CREATE MODEL needs OPTIONS (model_type = ...).", node.this,
            "e.g. model_type = 'logistic_reg', 'boosted_tree_classifier', 'kmeans'.",
        )  # fmt: skip
    model_type, type_prop = options.pop("model_type")
    model_type = str(model_type).lower()
    name = node.this
    if binder.catalog.versions(name.name) and not node.args.get("replace") and not node.args.get("exists"):
        raise binder.error(
            f"Model '{name.name.lower()}' already exists.", name,
            "Write CREATE OR REPLACE MODEL (sqlml then adds a version and keeps the old ones) or IF NOT EXISTS.",
        )  # fmt: skip
    if node.args.get("exists") and binder.catalog.versions(name.name):
        return SkipPlan(f"Model '{name.name.lower()}' exists; CREATE MODEL skipped (IF NOT EXISTS).")
    if model_type == "onnx":
        return _import(binder, node, options, type_prop, bind_import)
    trainer = MODEL_TYPES.get(model_type)
    if trainer is None:
        what = _NOT_HERE.get(model_type)
        raise binder.error(
            f"sqlml has no model_type '{model_type}'" + (f": {what}." if what else "."), type_prop.expression,
            None if what else did_you_mean(model_type, [*MODEL_TYPES, "onnx"]) or f"Model types: {', '.join(MODEL_TYPES)}, onnx.",
        )  # fmt: skip
    if node.args.get("source") is None:
        raise binder.error(f"CREATE MODEL of model_type '{model_type}' needs AS SELECT ...", name)
    source: ast.QuerySource = node.args["source"]
    params: list[exp.Expr] = []
    train = ast.Train(this=name, trainer=exp.to_identifier(trainer), params=params)
    train.args["trainer"].meta.update(type_prop.expression.meta)
    label = _label(binder, trainer, options, type_prop)
    if label is not None:
        train.set("label", label)
    wrap: list[str] = []  # SQL around the query: weights and order
    exclude: list[exp.Identifier] = []

    def param(key: str, value: Any, prop: exp.Expr) -> None:
        params.append(exp.PropertyEQ(this=exp.to_identifier(key), expression=_literal_node(value, prop)))

    fraction = options.pop("data_split_eval_fraction", None)
    split_col = options.pop("data_split_col", None)
    if "data_split_method" in options:
        method, prop = options.pop("data_split_method")
        method = str(method).lower()
        if method not in _AS_SQLML["data_split_method"][0]:
            raise binder.error(
                f"sqlml cannot honour data_split_method = '{method}'.", prop.expression,
                "sqlml splits by AUTO_SPLIT, RANDOM, SEQ or NO_SPLIT; for CUSTOM, train on the training rows and "
                "EVALUATE ... ON the others.",
            )  # fmt: skip
        if method == "no_split":
            param("validation", 0, prop)
        elif method in ("random", "seq"):
            param("validation", fraction[0] if fraction else 0.2, fraction[1] if fraction else prop)
            fraction = None
            if method == "seq":
                if split_col is None:
                    raise binder.error("data_split_method = 'SEQ' needs data_split_col: the column to order by.", prop)
                column = exp.to_identifier(str(split_col[0]))
                column.meta.update(split_col[1].expression.meta)
                exclude.append(column)
                wrap.append(f"ORDER BY {quote(str(split_col[0]))}")
                param("split", "sequential", prop)
                split_col = None
    elif trainer in ("kmeans", "pca"):
        param("validation", 0, type_prop)  # as BigQuery ML: unsupervised models learn from every row
    if fraction is not None:
        raise binder.error(
            "data_split_eval_fraction needs data_split_method = 'RANDOM' or 'SEQ'.", fraction[1].this,
            "Add data_split_method = 'RANDOM'.",
        )  # fmt: skip
    if split_col is not None:
        raise binder.error("data_split_col needs data_split_method = 'SEQ'.", split_col[1].this)
    if "num_trials" in options:
        value, prop = options.pop("num_trials")
        param("trials", value, prop)
    if "max_parallel_trials" in options:  # side by side on the session's Dask cluster; one at a time without one
        value, prop = options.pop("max_parallel_trials")
        if value != 1 and binder.cluster is None:
            raise binder.error(
                f"max_parallel_trials = {value} runs trials side by side on a Dask cluster; this session has none.",
                prop.expression, "SET cluster = 'local:2' (or 'tcp://scheduler:8786'), or leave the option out.",
            )  # fmt: skip
        if value != 1:
            param("parallel_trials", value, prop)
            param("distributed", True, prop)
    if "hparam_tuning_objectives" in options:
        value, prop = options.pop("hparam_tuning_objectives")
        names = value if isinstance(value, list) else [value]
        objective = _OBJECTIVES.get(str(names[0]).lower()) if len(names) == 1 else None
        if objective is None:
            raise binder.error(
                f"sqlml cannot honour hparam_tuning_objectives = {value!r}.", prop.expression,
                f"sqlml tunes one objective, one of {', '.join(_OBJECTIVES)}.",
            )  # fmt: skip
        param("tuning_metric", objective, prop)
    if "max_iterations" in options:
        value, prop = options.pop("max_iterations")
        if trainer in _BOOSTED:
            param("num_boost_round", value, prop)
        elif trainer in ("logistic_classifier", "kmeans"):
            param("max_iter", value, prop)
        else:
            raise binder.error(f"max_iterations does not apply to {model_type} in sqlml.", prop.this,
                               "linear_reg is solved exactly; a random forest grows num_parallel_tree trees.")  # fmt: skip
    if "num_parallel_tree" in options:
        value, prop = options.pop("num_parallel_tree")
        if trainer in _BOOSTED and value == 1:
            pass  # one tree per round: what boosting does
        elif trainer not in _FORESTS:
            raise binder.error(
                "num_parallel_tree sets a random forest's trees; sqlml's boosted trees grow one tree per round.",
                prop.this, "Use model_type = 'random_forest_classifier' or 'random_forest_regressor'.",
            )  # fmt: skip
        else:
            param("num_boost_round", value, prop)
    if "early_stop" in options:
        value, prop = options.pop("early_stop")
        if value is True and trainer in _BOOSTED:
            param("early_stopping_rounds", 1, prop)
        elif value is True:
            raise binder.error(f"early_stop does not apply to {model_type} in sqlml.", prop.this)
    if "subsample" in options:
        value, prop = options.pop("subsample")
        if trainer not in _BOOSTED + _FORESTS:
            raise binder.error(f"subsample does not apply to {model_type}.", prop.this)
        param("bagging_fraction", value, prop)
        param("bagging_freq", 1, prop)
    for key in ("auto_class_weights", "class_weights"):
        if key in options:
            value, prop = options.pop(key)
            weight = _class_weight_sql(binder, key, value, prop, label)
            if weight is not None:
                if label is None:
                    raise binder.error(f"{key} needs a label.", prop.this)
                wrap.insert(0, weight)
                train.set("weight", exp.to_identifier("__sqlml_class_weight"))
    for key, (value, prop) in options.items():
        if key in _PARAMETERS:
            target, trainers = _PARAMETERS[key]
            if trainer not in trainers:
                hint = f"It maps to {target} of {', '.join(trainers)}; write other parameters in sqlml's TRAIN ... WITH (...)."
                if key in ("l1_reg", "l2_reg") and trainer == "logistic_classifier":
                    hint = ("scikit-learn's logistic regression weighs regularisation differently: write TRAIN MODEL ... "
                            "USING logistic_classifier WITH (C = 1 / strength, l1_ratio = 0..1).")  # fmt: skip
                raise binder.error(f"Option {key} does not apply to {model_type} in sqlml.", prop.this, hint)
            param(target, value, prop)
        elif key in _AS_SQLML:
            accepted, what = _AS_SQLML[key]
            given = value.lower() if isinstance(value, str) else value
            if given not in accepted:
                raise binder.error(f"sqlml cannot honour {key} = {value!r}: {what}.", prop.expression)
            if key == "kmeans_init_method":
                param("init", "k-means++" if given == "kmeans++" else "random", prop)
        elif key == "input_label_cols":
            pass
        else:
            raise binder.error(f"sqlml cannot honour CREATE MODEL option '{key}' for {model_type}.", prop.this)
    if node.args.get("transform"):
        train.set("transform", node.args["transform"])  # its columns are the features: nothing to exclude
    elif exclude:
        train.set("exclude", exclude)
    if wrap:
        weight_sql = wrap[0] if wrap[0].startswith(",") else ""
        order = next((w for w in wrap if w.startswith("ORDER BY")), "")
        text = f"SELECT *{weight_sql} FROM ({source.args['text']}) AS __sqlml_source {order}".strip()
        query = _parse_query(text)
        query.meta.update(source.this.meta)
        source = ast.QuerySource(this=query, text=text)
    train.set("source", source)
    train.set("exists", bool(node.args.get("exists")))
    try:
        return bind_train(binder, train)
    except SqlmlError as err:
        if "input_label_cols" not in options and err.message == "Unknown label column 'label'.":
            err.hint = "BigQuery ML's label is the column named label unless OPTIONS name it: input_label_cols = ['y']."
        raise


def _parse_query(text: str) -> exp.Expr:
    """The tree of a query sqlml wrote around the user's (class weights, an order)."""
    tree = Sqlml().parse(text)[0]
    assert tree is not None
    return tree


def _label(
    binder: Binder, trainer: str, options: dict[str, tuple[Any, exp.Expr]], type_prop: exp.Expr
) -> exp.Identifier | None:
    """input_label_cols' one column; BigQuery ML's default is the column named `label`."""
    unsupervised = trainer in ("kmeans", "pca")
    if "input_label_cols" not in options:
        if unsupervised:
            return None
        default = exp.to_identifier("label")
        default.meta.update(type_prop.this.meta)  # errors about it point at the model_type
        return default
    value, prop = options["input_label_cols"]
    if unsupervised:
        raise binder.error(f"{trainer} learns without a label.", prop.this, "Leave input_label_cols out.")
    names = value if isinstance(value, list) else [value]
    if len(names) != 1 or not isinstance(names[0], str):
        raise binder.error("input_label_cols names one label column.", prop.expression, "input_label_cols = ['y']")
    ident = exp.to_identifier(names[0])
    ident.meta.update(prop.expression.meta)
    return ident


def _class_weight_sql(binder: Binder, key: str, value: Any, prop: exp.Expr, label: exp.Identifier | None) -> str | None:
    """A weight column computed by DuckDB: balanced class weights (n / (classes x rows of the
    class)), as auto_class_weights; or class_weights' own."""
    if label is None:
        raise binder.error(f"{key} needs a label.", prop.this)
    column = quote(label.name)
    if key == "auto_class_weights":
        if value is not True:
            return None
        return (f", count(*) OVER () / (count(DISTINCT {column}) OVER () * count(*) OVER (PARTITION BY {column}))::DOUBLE "
                "AS __sqlml_class_weight")  # fmt: skip
    pairs = value if isinstance(value, list) else None
    if not pairs or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[1], (int, float)) for p in pairs):
        raise binder.error(
            "class_weights is a list of (label, weight) pairs.", prop.expression,
            "class_weights = [STRUCT('yes', 0.7), STRUCT('no', 0.3)]",
        )  # fmt: skip
    cases = " ".join(f"WHEN CAST({column} AS VARCHAR) = '{str(k).replace(chr(39), chr(39) * 2)}' THEN {float(w)!r}"
                     for k, w in pairs)  # fmt: skip
    return f", CASE {cases} ELSE 0.0 END AS __sqlml_class_weight"


def _value(node: exp.Expr) -> Any:
    """An option's value: a literal, a list, or STRUCT(label, weight) pairs (class_weights)."""
    if isinstance(node, exp.Struct):
        values = [literal(e.expression if isinstance(e, exp.PropertyEQ) else e) for e in node.expressions]
        return None if None in values else values
    if isinstance(node, exp.Array):
        values = [_value(e) for e in node.expressions]
        return None if None in values else values
    return literal(node)


def _space(node: exp.Anonymous, key: str) -> exp.Expr:
    """A search space option, on a log scale for the options BigQuery ML searches so."""
    if key in _LOG_SCALE and node.name.upper() == "HPARAM_RANGE" and len(node.expressions) == 2:
        node = node.copy()
        node.append("expressions", exp.Literal.string("log"))
    return node


def _literal_node(value: Any, prop: exp.Expr) -> exp.Expr:
    node: exp.Expr
    if isinstance(value, exp.Expr):
        return value
    if isinstance(value, bool):
        node = exp.Boolean(this=value)
    elif isinstance(value, (int, float)):
        node = exp.Literal.number(value)
    else:
        node = exp.Literal.string(str(value))
    node.meta.update((prop.expression if isinstance(prop, exp.PropertyEQ) else prop).meta)
    return node


def _import(binder: Binder, node: ast.CreateModel, options: dict[str, tuple[Any, exp.Expr]], type_prop: exp.Expr,
            bind_import: Any) -> Plan:  # fmt: skip
    """model_type = 'onnx' with model_path: IMPORT MODEL."""
    if "model_path" not in options:
        raise binder.error("model_type = 'onnx' needs model_path = 'file.onnx'.", type_prop.this)
    path, prop = options.pop("model_path")
    if node.args.get("source") is not None:
        raise binder.error("An imported ONNX model takes no AS SELECT.", node.args["source"].this)
    extra = sorted(set(options) - {"input_label_cols"})
    if extra:
        raise binder.error(f"sqlml cannot honour option '{extra[0]}' for an imported model.", options[extra[0]][1].this)
    params = []
    if "input_label_cols" in options:
        label = options["input_label_cols"][0]
        label = label[0] if isinstance(label, list) else label
        params.append(exp.PropertyEQ(this=exp.to_identifier("label"), expression=exp.Literal.string(label)))
    path_node = exp.Literal.string(str(path))
    path_node.meta.update(prop.expression.meta)
    imported = ast.ImportModel(
        this=node.this, path=path_node, params=params or None, exists=bool(node.args.get("exists"))
    )
    return bind_import(binder, imported)  # type: ignore[no-any-return]
