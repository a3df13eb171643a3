"""Binding TRAIN MODEL: the trainer, its parameters and search spaces, TRAIN's options, the
label, features, TRANSFORM and feature selection, all checked before anything runs.

>>> from sqlml.train_options import TrainOptions
>>> TrainOptions().num_boost_round
100
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from sqlml import ast, models, text
from sqlml.catalog import check_name
from sqlml.errors import SqlmlError, did_you_mean
from sqlml.features import FeatureSpec, kind_of, vector_size
from sqlml.literals import literal
from sqlml.models.base import UNSUPERVISED
from sqlml.models.onnx import IMPORTED
from sqlml.plan import Binder, ContinuousTrainPlan, SkipPlan, SqlPlan, TrainPlan
from sqlml.stream.binding import bind_continuous_source
from sqlml.train_options import CHOICES, CONTINUOUS, OPTIONS, TEXT, TUNING, ContinuousOptions, TrainOptions, check
from sqlml.transform import bind_transform, stand_in_sql
from sqlml.tuning import SPACES, space_of

_CLASS_LABEL_TYPES = {
    "boolean", "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger",
    "ubigint", "varchar", "enum",
}  # fmt: skip


def _train_options(binder: Binder, raw: dict[str, tuple[Any, exp.Expr]]) -> TrainOptions:
    for key, (value, node) in raw.items():
        wanted = check(key, value)
        if wanted is not None:
            choices = CHOICES.get(key)
            hint = did_you_mean(str(value), choices) if choices else None
            raise binder.error(f"Bad value {value!r} for {key}: expected {wanted}.", node, hint)
    values = {k: v for k, (v, _) in raw.items() if k in TrainOptions.__dataclass_fields__}
    if values.get("early_stopping_rounds") and values.get("validation") == 0:
        raise binder.error(
            "early_stopping_rounds needs a validation split, but validation = 0.",
            raw["validation"][1],
            "Set validation to a fraction such as 0.2, or drop early_stopping_rounds.",
        )
    return TrainOptions(**values)


def _selection(
    binder: Binder, raw: dict[str, tuple[Any, exp.Expr]], inputs: int | None, task: str
) -> tuple[str, int] | None:
    """(method, max_features) of a TRAIN's feature selection, or None; `inputs` is the number
    of model inputs when binding knows it (it does not for LIST vectors)."""
    if "max_features" not in raw:
        if "feature_selection" in raw:
            raise binder.error(
                "feature_selection needs max_features: how many inputs to keep.", raw["feature_selection"][1],
                "Add max_features = k to WITH.",
            )  # fmt: skip
        return None
    k, node = raw["max_features"]
    if inputs is not None and k > inputs:
        raise binder.error(
            f"max_features = {k} is more than the model's {inputs} inputs.", node,
            f"Set max_features to at most {inputs}, or drop feature_selection.",
        )  # fmt: skip
    method, method_node = raw.get("feature_selection", ("importance", node))
    if method == "chi2" and task not in ("classification",):
        raise binder.error(
            "feature_selection = 'chi2' ranks features for a classifier.", method_node,
            "Use 'f_test' or 'importance' for regression and ranking.",
        )  # fmt: skip
    return method, k


def bind_train(binder: Binder, node: ast.Train) -> TrainPlan | SkipPlan | ContinuousTrainPlan:
    ident = node.this
    try:
        name = check_name(ident.name)
    except SqlmlError as err:
        raise err.located(binder.statement.span_of(ident))
    if node.args.get("exists") and binder.catalog.versions(name):
        return SkipPlan(f"Model '{name}' exists; TRAIN skipped (IF NOT EXISTS).")
    trainer_ident = node.args["trainer"]
    trainer = models.get(trainer_ident.name)
    if trainer is None:
        raise binder.error(
            f"Unknown trainer '{trainer_ident.name}'.",
            trainer_ident,
            did_you_mean(trainer_ident.name.lower(), models.names()) or f"Trainers: {', '.join(models.names())}.",
        )
    missing = getattr(trainer, "missing", lambda: None)()
    if missing:
        raise binder.error(missing, trainer_ident, "Install the extra, then run the statement again.")
    raw_options: dict[str, tuple[Any, exp.Expr]] = {}
    params: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # canonical name -> how the statement spelled it
    search: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for prop in node.args.get("params") or []:
        key, value_node = prop.this.name.lower(), prop.expression
        space = None
        value = binder.params.get(value_node.name) if isinstance(value_node, exp.Placeholder) else literal(value_node)
        if isinstance(value_node, exp.Anonymous) and value_node.name.upper() in SPACES:
            canonical, space = _search_space(binder, trainer, key, value_node)
        elif value is None:
            raise binder.error(
                f"The value of {key} must be a literal.", value_node, "Write a number, 'text', TRUE or FALSE."
            )
        elif key in OPTIONS:
            canonical = key
        else:
            try:
                canonical, value = trainer.check_param(key, value)
            except SqlmlError as err:
                if err.message.startswith("Unknown parameter"):
                    err.hint = did_you_mean(key, OPTIONS) or err.hint
                raise err.located(binder.statement.span_of(prop.this))
        if canonical in spelled:
            raise binder.error(
                f"Parameter '{key}' sets {canonical} again (as '{spelled[canonical]}' did).", prop.this,
                "Set each parameter once.",
            )  # fmt: skip
        spelled[canonical] = key
        if space is not None:
            search[canonical] = space
        elif canonical in OPTIONS:
            raw_options[canonical] = (value, value_node)
        else:
            params[canonical] = value
    options = _train_options(binder, raw_options)
    _check_family(binder, node, trainer, raw_options)
    _check_tuning(binder, node, search, raw_options)

    source = node.args["source"]
    job = None
    if any(source.this.find_all(ast.WindowTable)) or set(CONTINUOUS) & raw_options.keys():
        job, described = bind_continuous_source(binder, source)
        columns = {c: t for c, t in described.items() if not c.startswith("__sqlml_")}
        query = SqlPlan("")
    else:
        binder.refuse_streams(source.this, source.this)
        query, columns = binder.query(source, source.this)
    transform = None
    if node.args.get("transform"):
        if job is not None:
            raise binder.error("A continuous TRAIN cannot take TRANSFORM.", node.args["transform"][0],
                               "Compute the features in the window query's SELECT.")  # fmt: skip
        transform = bind_transform(binder, node.args["transform"], columns)
        keep = [binder.column(i, columns, role) for i, role in ((node.args.get("label"), "label"),
                (node.args.get("group"), "group"), (node.args.get("weight"), "weight"))
                if i is not None and i.name.lower() not in {n.lower() for n in transform.names}]  # fmt: skip
        columns = binder.columns(stand_in_sql(transform, query.sql, keep), node.args["transform"][0])
    label_node = node.args.get("label")
    label = binder.column(label_node, columns, "label") if label_node is not None else None
    group = None
    if node.args.get("group") is not None:
        group = binder.column(node.args["group"], columns, "group")
    weight = None
    if node.args.get("weight") is not None:
        weight = binder.column(node.args["weight"], columns, "weight")
        if kind_of(columns[weight]) != "numeric":
            raise binder.error(
                f"Weight '{weight}' has type {columns[weight]}; sample weights are numbers.", node.args["weight"]
            )
    if trainer.task == "ranking" and group is None:
        raise binder.error(
            "lightgbm_ranker needs GROUP <query id column>.", trainer_ident, "Add GROUP session_id before AS."
        )
    reserved = {label, group, weight}
    text_columns = [binder.column(i, columns, "TEXT") for i in node.args.get("text") or []]
    for ident_, name_ in zip(node.args.get("text") or [], text_columns):
        if name_ in reserved:
            raise binder.error(f"'{name_}' is the label, group or weight and cannot be a feature.", ident_)
        if str(columns[name_]) != "VARCHAR":
            raise binder.error(
                f"TEXT column '{name_}' has type {columns[name_]}; free text is VARCHAR.", ident_,
                f"Cast it (CAST({name_} AS VARCHAR) AS {name_}) or leave it out of TEXT.",
            )  # fmt: skip
    text_options = {k: v for k, (v, _) in raw_options.items() if k in TEXT}
    if text_options and not text_columns:
        key = next(iter(text_options))
        raise binder.error(
            f"{key} configures free-text columns, but the TRAIN has no TEXT clause.", raw_options[key][1],
            "Name them after LABEL: TEXT (subject, body).",
        )  # fmt: skip
    if node.args.get("features"):
        names = [binder.column(i, columns, "feature") for i in node.args["features"]]
        for ident_, name_ in zip(node.args["features"], names):
            if name_ in reserved:
                raise binder.error(f"'{name_}' is the label, group or weight and cannot be a feature.", ident_)
        names += [c for c in text_columns if c not in names]
    else:
        excluded = {binder.column(i, columns, "EXCLUDE") for i in node.args.get("exclude") or []}
        for ident_, name_ in zip(node.args.get("text") or [], text_columns):
            if name_ in excluded:
                raise binder.error(f"'{name_}' is both in TEXT and in EXCLUDE.", ident_)
        names = [c for c in columns if c not in reserved | excluded]
    if not names:
        raise binder.error(
            "TRAIN has no feature columns left.", node.this, "The query must select columns besides LABEL and GROUP."
        )
    features = []
    for name_ in names:
        kind = "text" if name_ in text_columns else kind_of(columns[name_])
        if kind is None:
            raise binder.error(
                f"Feature '{name_}' has type {columns[name_]}, which a model cannot use.",
                _ident_for(node, name_) or source.this,
                "Derive a number from it (e.g. epoch(ts), hour(ts), len(list)) or leave it out with EXCLUDE; "
                "a list or array of numbers is a vector feature.",
            )
        if kind == "text":
            features.append(text.spec_for(name_, text_options))
        else:
            features.append(FeatureSpec(name_, str(columns[name_]), kind, size=vector_size(columns[name_])))
    widths = [len(f.inputs()) if f.kind != "text" else f.text["text_features"] for f in features]  # type: ignore[index]
    known = None if any(f.kind == "vector" and not f.size for f in features) else sum(widths)
    selection = _selection(binder, raw_options, known, trainer.task)
    label_type = columns[label] if label is not None else None
    type_id = getattr(label_type, "id", str(label_type).lower())
    if trainer.task == "classification" and type_id not in _CLASS_LABEL_TYPES:
        raise binder.error(
            f"Label '{label}' has type {label_type}; a classifier needs BOOLEAN, an integer or VARCHAR.",
            label_node,
            "Use lightgbm_regressor for numeric targets, or cast the label.",
        )
    if trainer.task in ("regression", "ranking") and kind_of(label_type) != "numeric":
        raise binder.error(f"Label '{label}' has type {label_type}; {trainer.name} needs a number.", label_node)
    plan = TrainPlan(
        name=name,
        trainer=trainer,
        label=label,
        label_type=None if label_type is None else "VARCHAR" if type_id == "enum" else str(label_type),
        group=group,
        weight=weight,
        features=tuple(features),
        params=params,
        options=options,
        query=binder.sql_plan(query.sql),
        training_sql=source.args["text"],
        selection=selection,
        search=search,
        transform=transform,
    )
    if options.distributed:
        _check_distributed(binder, node, trainer, raw_options, plan, job is not None)
    if job is None:
        return plan
    if search:
        raise binder.error(
            "A continuous TRAIN cannot tune: each window trains once.", node.this,
            "Tune a batch TRAIN on a window's worth of rows, then train continuously with the best parameters.",
        )  # fmt: skip
    continuous = ContinuousOptions(**{k: v for k, (v, _) in raw_options.items() if k in CONTINUOUS})
    if options.early_stopping_rounds:
        raise binder.error(
            "A continuous TRAIN cannot use early_stopping_rounds: each window trains on all its rows.", node.this
        )
    return ContinuousTrainPlan(plan, job, continuous)


def _check_family(
    binder: Binder, node: ast.Train, trainer: models.Trainer, raw: dict[str, tuple[Any, exp.Expr]]
) -> None:
    """Refuse what the trainer's family cannot do: a label for kmeans and pca (and none for
    the others), boosting rounds, free text or feature selection where they do not apply,
    and training a model that holds an imported one."""
    label, trainer_ident = node.args.get("label"), node.args["trainer"]
    if trainer.task in UNSUPERVISED and label is not None:
        raise binder.error(
            f"{trainer.name} learns without a label.", label, f"Drop LABEL {label.name}: every column is a feature."
        )
    if trainer.task not in UNSUPERVISED and label is None:
        raise binder.error(
            f"{trainer.name} needs a label.", trainer_ident, f"Name it after the trainer: USING {trainer.name} LABEL y."
        )
    if not trainer.boosting:
        rounds = [k for k in ("num_boost_round", "early_stopping_rounds", "rounds_per_window") if k in raw]
        if rounds:
            raise binder.error(
                f"{trainer.name} does not train in rounds; {rounds[0]} is for the lightgbm_* and random_forest_* trainers.",
                raw[rounds[0]][1], "Leave it out.",
            )  # fmt: skip
        if "update" in raw and raw["update"][0] == "continue":
            raise binder.error(
                f"{trainer.name} cannot continue a model; update = 'continue' is for boosted trees.",
                raw["update"][1], "Use update = 'retrain'.",
            )  # fmt: skip
        if node.args.get("text"):
            raise binder.error(
                f"{trainer.name} does not take free text; TEXT (...) is for the lightgbm_* and random_forest_* trainers.",
                node.args["text"][0], "Use lightgbm_classifier, or turn the text into numbers or a vector first.",
            )  # fmt: skip
    if trainer.task in UNSUPERVISED and "max_features" in raw:
        raise binder.error(
            f"{trainer.name} has no label to rank features by.", raw["max_features"][1],
            "Choose the columns with FEATURES (...), or reduce them with pca.",
        )  # fmt: skip
    try:
        existing = binder.catalog.get(node.this.name) if binder.catalog.versions(node.this.name) else None
    except SqlmlError:
        existing = None
    if existing is not None and existing.meta.get("trainer") == IMPORTED:
        raise binder.error(
            f"Model '{existing.name}' holds an imported ONNX model, which sqlml cannot train.", node.this,
            f"Train under another name, or DROP MODEL {existing.name} first.",
        )  # fmt: skip


def _search_space(
    binder: Binder, trainer: models.Trainer, key: str, node: exp.Anonymous
) -> tuple[str, tuple[str, tuple[Any, ...]]]:
    """A parameter's search space (HPARAM_RANGE, HPARAM_CANDIDATES), each end or candidate
    checked as a value of the parameter."""
    function = node.name.upper()
    args = [literal(a) for a in node.expressions]
    space = space_of(function, args) if None not in args else None
    if space is None:
        raise binder.error(
            f"Bad search space for {key}.", node,
            "Write HPARAM_RANGE(low, high), HPARAM_RANGE(low, high, 'log') or HPARAM_CANDIDATES([a, b, c]).",
        )  # fmt: skip
    if key == "num_boost_round":
        if space[0] not in ("int", "choice") or any(not isinstance(v, int) or v < 1 for v in space[1]):
            raise binder.error("num_boost_round searches whole numbers above 0.", node)
        return key, space
    if key in OPTIONS:
        raise binder.error(
            f"{key} is an option of TRAIN; only trainer parameters and num_boost_round are searched.", node
        )
    canonical = key
    for value in space[1]:
        try:
            canonical, _ = trainer.check_param(key, value)
        except SqlmlError as err:
            raise err.located(binder.statement.span_of(node))
    return canonical, space


def _check_distributed(
    binder: Binder, node: ast.Train, trainer: models.Trainer, raw: dict[str, tuple[Any, exp.Expr]], plan: TrainPlan,
    continuous: bool,
) -> None:  # fmt: skip
    """What distributed training takes: a session cluster; then a search (its trials run on the
    workers) with any trainer, or else a LightGBM trainer on numeric and categorical features
    without selection, TRANSFORM or early stopping (one model over the workers' partitions)."""
    from sqlml.distributed import missing

    where = raw["distributed"][1]
    absent = missing()
    if absent:
        raise binder.error(absent, where, "Install the extra, then run the statement again.")
    if binder.cluster is None:
        raise binder.error(
            "distributed = true needs a Dask cluster, and this session has none.", where,
            "SET cluster = 'local:2' (two worker processes here) or 'tcp://scheduler:8786'; or sqlml run --cluster.",
        )  # fmt: skip
    if continuous:
        raise binder.error("A continuous TRAIN trains window by window on one machine.", where)
    if plan.search:  # the trials run on the workers, each on the whole training rows: any trainer, any features
        return
    refusals = [
        (not trainer.boosting, f"{trainer.name} trains on one machine; distributed training is for the lightgbm_* trainers."),
        (plan.selection is not None, "A distributed TRAIN takes no feature selection: choose the columns with FEATURES (...)."),
        (plan.transform is not None, "A distributed TRAIN takes no TRANSFORM: compute the features in its query."),
        (plan.options.early_stopping_rounds is not None, "A distributed TRAIN trains every round: leave out early_stopping_rounds."),
    ]  # fmt: skip
    for refused, message in refusals:
        if refused:
            raise binder.error(message, where)
    for spec in plan.features:
        if spec.kind not in ("numeric", "categorical"):
            raise binder.error(
                f"Feature '{spec.name}' is a {spec.kind} column; distributed training takes numbers and categories.",
                where, "Train on one machine, or leave the column out with EXCLUDE.",
            )  # fmt: skip


def _check_tuning(
    binder: Binder, node: ast.Train, search: dict[str, Any], raw: dict[str, tuple[Any, exp.Expr]]
) -> None:
    given = [k for k in TUNING if k in raw]
    if given and not search:
        raise binder.error(
            f"{given[0]} configures a search, but no parameter has a search space.", raw[given[0]][1],
            "Give one: WITH (num_leaves = HPARAM_RANGE(8, 128), trials = 20).",
        )  # fmt: skip
    if "parallel_trials" in raw and not (raw.get("distributed") or (False,))[0]:
        raise binder.error(
            "parallel_trials runs trials side by side on a Dask cluster's workers; this TRAIN is not distributed.",
            raw["parallel_trials"][1], "Add distributed = true (with SET cluster = 'local:2' or 'tcp://...').",
        )  # fmt: skip


def _ident_for(node: ast.Train, name: str) -> exp.Identifier | None:
    for ident in node.args.get("features") or []:
        if ident.name.lower() == name.lower():
            return ident
    return None
