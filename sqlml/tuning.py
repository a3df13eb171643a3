"""Hyperparameter search with optuna: search spaces written in SQL, trials stored in the catalog.

A TRAIN whose WITH gives a parameter a space (`num_leaves = HPARAM_RANGE(8, 128)`,
`learning_rate = HPARAM_RANGE(0.01, 0.3, 'log')`, `boosting = HPARAM_CANDIDATES(['gbdt', 'dart'])`)
searches it: `trials` fits (20 by default) within `tuning_seconds`, each scored by
`tuning_metric` (the task's headline metric by default) on the validation rows, or by
k-fold cross-validation on the training rows (`folds = k`). Trial 0 is the statement's own
parameters without the searched ones (the defaults), so the result is never worse than them
on the objective. The study lives in optuna's SQLite storage in the model's folder
(`tuning.db`): a search that is killed resumes where it stopped when the statement runs
again, and `TRIALS(MODEL m)` lists every trial.

>>> space_of("HPARAM_RANGE", [8, 128])
('int', (8, 128))
>>> space_of("HPARAM_RANGE", [0.01, 0.3, "log"])
('log', (0.01, 0.3))
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml import metrics, models
from sqlml.errors import ExecutionError
from sqlml.models import TrainingData

SPACES = ("HPARAM_RANGE", "HPARAM_CANDIDATES")
STORAGE = "tuning.db"
DEFAULT_TRIALS = 20


def space_of(function: str, args: list[Any]) -> tuple[str, tuple[Any, ...]] | None:
    """A search space from its SQL spelling: ('int' | 'float' | 'log', (low, high)) or
    ('choice', values); None when the arguments do not make one."""
    if function == "HPARAM_CANDIDATES":
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        ok = values and all(isinstance(v, (bool, int, float, str)) for v in values)
        return ("choice", tuple(values)) if ok else None
    if len(args) not in (2, 3) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args[:2]):
        return None
    low, high = args[0], args[1]
    if low >= high or (len(args) == 3 and args[2] not in ("log", "linear")):
        return None
    if len(args) == 3 and args[2] == "log":
        return ("log", (float(low), float(high))) if low > 0 else None
    if isinstance(low, int) and isinstance(high, int):
        return "int", (low, high)
    return "float", (float(low), float(high))


def describe_space(space: tuple[str, tuple[Any, ...]]) -> str:
    kind, values = space
    if kind == "choice":
        return "one of " + ", ".join(repr(v) for v in values)
    return f"{kind} {values[0]}..{values[1]}"


@dataclass
class Tuned:
    """A search's outcome: the best parameters, the model trained with them (None: refit),
    and what the version's metadata records of the study."""

    params: dict[str, Any]
    model: Any
    used: dict[str, Any] | None
    record: dict[str, Any]


def study_name(name: str, training_sql: str, params: dict[str, Any], search: dict[str, Any], options: Any) -> str:
    """The study a statement's search continues: the same statement finds it again."""
    key = json.dumps([training_sql, params, search, repr(options)], sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def _suggest(trial: Any, key: str, space: tuple[str, tuple[Any, ...]]) -> Any:
    kind, values = space
    if kind == "choice":
        return trial.suggest_categorical(key, list(values))
    if kind == "int":
        return trial.suggest_int(key, values[0], values[1])
    return trial.suggest_float(key, values[0], values[1], log=kind == "log")


def _folds(data: TrainingData, k: int, seed: int) -> list[tuple[TrainingData, TrainingData]]:
    """k random folds of the training rows: (fit on the others, score on this one)."""
    from sqlml.training import subset

    order = np.random.default_rng(seed).permutation(data.rows)
    pieces = []
    for part in np.array_split(order, k):
        mask = np.zeros(data.rows, dtype=bool)
        mask[part] = True
        pieces.append((subset(data, ~mask, None), subset(data, mask, None)))
    return pieces


def tune(
    plan: Any,
    folder: Path,
    train: TrainingData,
    valid: TrainingData | None,
    params: dict[str, Any],
    task: str,
    seed: int,
    progress: Callable[[int, int], None] | None,
    cluster: str | None = None,
) -> Tuned:
    """Search the plan's space; return the best parameters and, when the best trial ran in this
    search on the validation rows, its model. With a cluster address, the trials run on its
    workers (see `on_workers`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opts, trainer = plan.options, plan.trainer
    metric_name = opts.tuning_metric or metrics.HEADLINE[task]
    metric = next((m for m in metrics.for_task(task) if m.name == metric_name), None)
    if metric is None:
        raise ExecutionError(
            f"tuning_metric '{metric_name}' is not a {task} metric.",
            hint="Choose one of " + ", ".join(m.name for m in metrics.for_task(task)) + ".",
        )
    if valid is None and not opts.folds:
        raise ExecutionError(
            "Tuning scores each trial on validation rows, but this TRAIN keeps none.",
            hint="Set validation = 0.2, or folds = 3 for cross-validation on the training rows.",
        )
    if opts.folds and train.groups is not None:
        raise ExecutionError("folds cannot split ranking groups.", hint="Tune on the validation split instead.")
    folds = _folds(train, opts.folds, seed) if opts.folds else [(train, valid)] if valid is not None else []
    trials = opts.trials or DEFAULT_TRIALS
    folder.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / STORAGE}")
    name = study_name(plan.name, plan.training_sql, plan.params, plan.search, opts)
    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True,
        direction="maximize" if metric.bigger_is_better else "minimize",
    )  # fmt: skip
    # seeded by the trials so far, so that a resumed search does not repeat the first one's suggestions
    # (with trials in flight at once, the ones still running count as their worst, so that they are not repeated)
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), constant_liar=cluster is not None)
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # a trial that was running when a search was killed: failed, so the search goes on
        storage.set_trial_user_attr(stale._trial_id, "error", "interrupted")
        storage.set_trial_state_values(stale._trial_id, optuna.trial.TrialState.FAIL)
    best: dict[str, Any] = {}  # the best model trained in this run: value, model, used, number
    early = opts.early_stopping_rounds

    def evaluate(sampled: dict[str, Any]) -> tuple[float, Any, dict[str, Any]]:
        return score_trial(trainer.name, folds, task, metric.name, params, sampled, opts.num_boost_round, early)

    def keep(number: int, value: float, model: Any, used: dict[str, Any]) -> None:
        """Keep the best model trained on the whole training rows (not a fold's)."""
        better = not best or (value > best["value"] if metric.bigger_is_better else value < best["value"])
        if not opts.folds and better:
            best.update(value=value, model=model, used=used, number=number)

    started = time.perf_counter()
    if not study.trials:  # trial 0: the statement's own parameters (the trainer's defaults for the searched ones)
        value, model, used = evaluate({})
        study.add_trial(optuna.trial.create_trial(
            params={}, distributions={}, value=value,
            user_attrs={"defaults": True, "seconds": round(time.perf_counter() - started, 3)},
        ))  # fmt: skip
        keep(0, value, model, used)
    done = len([t for t in study.trials if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL])

    def objective(trial: Any) -> float:
        began = time.perf_counter()
        sampled = {key: _suggest(trial, key, space) for key, space in plan.search.items()}
        try:
            value, model, used = evaluate(dict(sampled))
        except ExecutionError as err:
            trial.set_user_attr("error", err.message)
            raise
        trial.set_user_attr("seconds", round(time.perf_counter() - began, 3))
        keep(trial.number, value, model, used)
        return value

    def report(study: Any, trial: Any) -> None:
        if progress is not None:
            progress(min(trials, len([t for t in study.trials if t.state.is_finished()])), trials)

    remaining = trials - done
    if remaining > 0 and cluster is not None:
        on_workers(cluster, study, plan, folds, task, metric.name, params, remaining, keep, report)
    elif remaining > 0:
        study.optimize(objective, n_trials=remaining, timeout=opts.tuning_seconds, catch=(ExecutionError,),
                       callbacks=[report])  # fmt: skip
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ExecutionError("Every tuning trial failed.", hint="See TRIALS(MODEL m) for their errors.")
    winner = study.best_trial
    chosen = dict(winner.params)
    rounds = chosen.pop("num_boost_round", None)
    record = {
        "study": name, "storage": STORAGE, "metric": metric.name, "best_trial": winner.number,
        "best_value": winner.value, "trials": len(study.trials), "folds": opts.folds,
        "num_boost_round": rounds,
    }  # fmt: skip
    same = best and best.get("number") == winner.number
    return Tuned(chosen, best["model"] if same else None, best["used"] if same else None, record)


def score_trial(
    trainer_name: str, folds: list[tuple[TrainingData, TrainingData]], task: str, metric_name: str,
    params: dict[str, Any], sampled: dict[str, Any], rounds: int, early_stopping: int | None,
) -> tuple[float, Any, dict[str, Any]]:  # fmt: skip
    """One trial: fit with the sampled parameters on each fold's rows and score its other rows;
    the mean metric, the last fold's model and the parameters it used. Runs here or on a worker."""
    from sqlml.features import to_matrix

    trainer = models.get(trainer_name)
    metric = next(m for m in metrics.for_task(task) if m.name == metric_name)
    assert trainer is not None
    sampled = dict(sampled)
    rounds = sampled.pop("num_boost_round", rounds)
    fit_params = {**params, **sampled}
    values, model, used = [], None, fit_params
    for fit_rows, score_rows in folds:
        model, used = trainer.fit(fit_rows, score_rows, dict(fit_params), rounds, early_stopping, None)
        matrix = score_rows.features
        if isinstance(matrix, pa.Table):
            matrix = to_matrix(matrix.columns, score_rows.rows)
        y = models.truth(task, model, matrix, score_rows.label)
        values.append(metric.compute(y, model.predict(matrix), score_rows.groups))
    value = float(np.mean(values))
    if not np.isfinite(value):
        raise ExecutionError(f"{metric.name} is not defined on the rows scored (NaN).")
    return value, model, used


def _on_worker(*args: Any) -> tuple[tuple[float, Any, dict[str, Any]], str, float, float]:
    """On a worker: a trial's outcome, the worker's address, and when it started (Unix time) and
    for how many seconds it ran."""
    from distributed import get_worker

    began, clock = time.time(), time.perf_counter()
    outcome = score_trial(*args)
    return outcome, get_worker().address, began, round(time.perf_counter() - clock, 3)


def on_workers(
    cluster: str, study: Any, plan: Any, folds: list[tuple[TrainingData, TrainingData]], task: str, metric_name: str,
    params: dict[str, Any], count: int, keep: Callable[[int, float, Any, dict[str, Any]], None],
    report: Callable[[Any, Any], None],
) -> None:  # fmt: skip
    """Run `count` trials on a Dask cluster's workers, `parallel_trials` at a time (by default one
    per worker), each fitting the whole training rows on one worker: optuna's ask-and-tell, a new
    trial asked for as each one ends. The rows are sent to every worker once."""
    import optuna
    from distributed import as_completed

    from sqlml import distributed

    opts = plan.options
    client = distributed.client_for(cluster)
    workers = distributed.workers(client)
    if not workers:
        raise ExecutionError("The Dask cluster has no workers.", hint="Start workers for the scheduler.")
    if plan.trainer.boosting and "num_threads" not in plan.params:  # each trial uses its worker's threads
        params = {**params, "num_threads": min(int(w.get("nthreads", 1)) for w in workers.values())}
    [rows] = client.scatter([folds], broadcast=True)
    deadline = time.monotonic() + opts.tuning_seconds if opts.tuning_seconds else None
    running: dict[Any, Any] = {}  # future -> trial

    def launch() -> Any:
        trial = study.ask()
        sampled = {key: _suggest(trial, key, space) for key, space in plan.search.items()}
        future = client.submit(_on_worker, plan.trainer.name, rows, task, metric_name, params, sampled,
                               opts.num_boost_round, opts.early_stopping_rounds, pure=False)  # fmt: skip
        running[future] = trial
        return future

    asked = min(count, opts.parallel_trials or len(workers))
    queue = as_completed([launch() for _ in range(asked)])
    for future in queue:
        trial = running.pop(future)
        try:
            (value, model, used), worker, began, seconds = future.result()
        except Exception as err:  # the trial's own error, or its worker lost more than Dask retries
            trial.set_user_attr("error", getattr(err, "message", None) or f"{type(err).__name__}: {err}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            for key, value_ in (("worker", worker), ("started", began), ("seconds", seconds)):
                trial.set_user_attr(key, value_)
            study.tell(trial, value)
            keep(trial.number, value, model, used)
        report(study, trial)
        if asked < count and (deadline is None or time.monotonic() < deadline):
            asked += 1
            queue.add(launch())
    client.cancel(rows)


def trials_table(folder: Path, study: str) -> pa.Table:
    """TRIALS(MODEL m): every trial of the study that trained the version."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = folder / STORAGE
    if not path.exists():
        raise ExecutionError(f"The tuning record {path} is missing.")
    loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{path}")
    best = loaded.best_trial.number if any(t.state.name == "COMPLETE" for t in loaded.trials) else None
    rows = []
    for t in loaded.trials:
        seconds = t.user_attrs.get("seconds")
        rows.append({
            "trial": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": json.dumps(t.params if not t.user_attrs.get("defaults") else {"defaults": True}, default=str),
            "seconds": seconds,
            "error": t.user_attrs.get("error") or t.system_attrs.get("fail_reason"),
            "is_best": t.number == best,
            "worker": t.user_attrs.get("worker"),
        })  # fmt: skip
    schema = pa.schema([("trial", pa.int64()), ("state", pa.string()), ("value", pa.float64()),
                        ("params", pa.string()), ("seconds", pa.float64()), ("error", pa.string()),
                        ("is_best", pa.bool_()), ("worker", pa.string())])  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schema)
