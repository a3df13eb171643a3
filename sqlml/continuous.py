"""Continuous training: a TRAIN over a window function learns window by window.

When windows close, for each in order of its end:
1. test: the serving version (and a challenger, if one waits) scores the window's rows that no
   version has trained on yet, rows with event time in [end of the previous training window,
   end of this one); the metrics go to the model's metrics log;
2. train: a new version on the window's rows (`retrain`), or the serving version boosted on
   (`continue`); a failure (one class in the window, say) is logged and the serving version stays;
3. version: saved with its lineage (window, rows, the version it continued);
4. promote: `always` serves the new version from the window's end on; `if_better` makes it a
   challenger, promoted only if it beats the serving version on the next window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sqlml import metrics, scoring, training
from sqlml.catalog import Catalog, Learning, ModelVersion
from sqlml.errors import SqlmlError
from sqlml.plan import ContinuousTrainPlan, SqlPlan, TrainOptions

HIDDEN = ("__sqlml_ws", "__sqlml_we", "__sqlml_t")


@dataclass
class WindowReport:
    """What happened when one window closed, for progress output."""

    window_start: Any
    window_end: Any
    trained: int | None
    serving: int | None
    metric: str
    value: float | None
    error: str | None = None


class Learner:
    """Receives the rows of closed windows and runs test, train, version, promote on each."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        catalog: Catalog,
        plan: ContinuousTrainPlan,
        now: Callable[[], str],
        report: Callable[[WindowReport], None] = lambda r: None,
        durable: bool = False,
    ) -> None:
        self.con = con
        self.catalog = catalog
        self.plan = plan
        self.now = now
        self.report = report
        self.name = plan.train.name
        self.task = ""
        self.serving: ModelVersion | None = None
        served = catalog.serving(self.name) if catalog.versions(self.name) else None
        if served is not None:
            self.serving = catalog.get(self.name, served.version)
        self.challenger: ModelVersion | None = None
        self.trained_up_to: Any = None  # end of the last training window
        self.windows = self.versions = self.failures = 0
        # a version serves from its window's end plus the labels' horizon, when it was trained
        self.horizon = dt.timedelta(microseconds=plan.job.inputs[0].fire_delay)
        # a durable run resumes: windows up to the saved one were done before a restart
        self.durable = durable
        self.progress_key = plan.job.query_id if durable else None
        saved = catalog.learning(self.name) if self.progress_key and catalog.versions(self.name) else None
        if saved is not None and saved.query_id == self.progress_key:
            self.trained_up_to = pa.scalar(dt.datetime.fromisoformat(saved.window_end), pa.timestamp("us"))
            # what served and waited then, not what a killed run promoted after it
            self.serving = catalog.get(self.name, saved.serving) if saved.serving else None
            if saved.challenger:
                self.challenger = catalog.get(self.name, saved.challenger)
        options = plan.train.options
        rounds = plan.options.rounds_per_window or options.num_boost_round
        self.window_plan = dataclasses.replace(
            plan.train,
            query=SqlPlan(""),  # each window's rows arrive in Arrow (see __call__)
            options=TrainOptions(num_boost_round=rounds, validation=0, seed=options.seed),
        )

    def fetch(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def __call__(self, rows: pa.Table) -> None:
        """The rows of every window that just closed, with __sqlml_ws/__sqlml_we/__sqlml_t."""
        bounds = rows.select(["__sqlml_ws", "__sqlml_we"]).group_by(["__sqlml_ws", "__sqlml_we"]).aggregate([])
        # rows in a fixed order (event time, then every column), so a window trains the same model every time
        sortable = [f.name for f in rows.schema if f.name not in HIDDEN and not pa.types.is_nested(f.type)]
        order = [("__sqlml_t", "ascending"), *((c, "ascending") for c in sortable)]
        rows = rows.take(pc.sort_indices(rows, order))
        for index in pc.sort_indices(bounds, [("__sqlml_we", "ascending"), ("__sqlml_ws", "ascending")]).to_pylist():
            start, end = bounds["__sqlml_ws"][index], bounds["__sqlml_we"][index]
            if self.trained_up_to is not None and end.as_py() <= self.trained_up_to.as_py():
                continue  # done before a restart
            window = rows.filter(pc.and_(pc.equal(rows["__sqlml_ws"], start), pc.equal(rows["__sqlml_we"], end)))
            fresh = (
                window
                if self.trained_up_to is None
                else window.filter(pc.greater_equal(window["__sqlml_t"], self.trained_up_to))
            )
            self.windows += 1
            value = self._test(start.as_py(), end.as_py(), fresh)
            trained, error = self._train(start.as_py(), end.as_py(), window)
            self.trained_up_to = end
            if self.progress_key:
                self.catalog.set_learning(self.name, Learning(
                    self.progress_key, end.as_py().isoformat(), self.serving.version if self.serving else None,
                    self.challenger.version if self.challenger else None,
                ))  # fmt: skip
            headline = metrics.HEADLINE.get(self.task, "")
            self.report(
                WindowReport(
                    start.as_py(),
                    end.as_py(),
                    trained,
                    self.serving.version if self.serving else None,
                    headline,
                    value,
                    error,
                )
            )

    # -- test -----------------------------------------------------------------------
    def _score(self, model: ModelVersion, rows: pa.Table) -> tuple[dict[str, Any], str | None]:
        try:
            return scoring.evaluate(self.fetch, model, None, rows=rows), None
        except SqlmlError as err:
            return {}, err.message

    def _log(
        self,
        start: Any,
        end: Any,
        model: ModelVersion | None,
        role: str,
        rows: int,
        scores: dict[str, Any],
        error: str | None,
    ) -> None:
        task = (model.meta["task"] if model else None) or self.task
        row = {"window_start": start, "window_end": end, "version": model.version if model else None, "role": role,
               "rows": rows, "rows_unscored": 0 if model and not error else rows, "error": error, "created_at": self.now()}  # fmt: skip
        row.update({m.name: scores.get(m.name) for m in metrics.for_task(task)} if task else {})
        self.catalog.append_metrics(self.name, row, sync=self.durable)

    def _test(self, start: Any, end: Any, rows: pa.Table) -> float | None:
        """Score the fresh rows with the serving version (and the challenger); maybe promote."""
        if rows.num_rows == 0:
            return None
        if self.serving is None:  # nothing serves yet: the rows are counted, not scored
            self._log(start, end, None, "serving", rows.num_rows, {}, None)
            return None
        self.task = self.serving.meta["task"]
        headline = metrics.headline(self.task)
        scores, error = self._score(self.serving, rows)
        self._log(start, end, self.serving, "serving", rows.num_rows, scores, error)
        champion = scores.get(headline.name)
        if self.challenger is not None:
            challenger = self.challenger
            theirs, error = self._score(challenger, rows)
            self._log(start, end, challenger, "challenger", rows.num_rows, theirs, error)
            value = theirs.get(headline.name)
            if _better(value, champion, headline.bigger_is_better):
                reason = (
                    f"challenger v{challenger.version} beat v{self.serving.version} on window {start} - {end}: "
                    f"{headline.name} {value:.4f} vs {champion:.4f}"
                )
                self._promote(challenger, reason, end + self.horizon)
                champion = value
            self.challenger = None
        return champion

    # -- train, version, promote ------------------------------------------------------
    def _train(self, start: Any, end: Any, rows: pa.Table) -> tuple[int | None, str | None]:
        update = self.plan.options.update
        base = self.serving if update == "continue" else None
        lineage = {
            "window_start": str(start), "window_end": str(end), "window_rows": rows.num_rows, "update": update,
            "continued_from": base.version if base else None, "promote": self.plan.options.promote,
        }  # fmt: skip
        try:
            version = self._trained_before(lineage) or training.train(
                self.fetch, self.window_plan, self.catalog, base=base, lineage=lineage, rows=rows
            )
        except SqlmlError as err:
            self.failures += 1
            self._log(start, end, None, "training_failed", rows.num_rows, {}, err.message)
            return None, err.message
        self.versions += 1
        self.task = version.meta["task"]
        if self.plan.options.promote == "always" or self.serving is None:
            why = "first version" if self.serving is None else f"promote = 'always': trained on window {start} - {end}"
            self._promote(version, why, end + self.horizon)
        else:
            self.challenger = version
        return version.version, None

    def _trained_before(self, lineage: dict[str, Any]) -> ModelVersion | None:
        """The version a run killed after training this window saved (so a restart reuses it)."""
        if not self.progress_key:
            return None
        for number in reversed(self.catalog.versions(self.name)):
            found = self.catalog.get(self.name, number)
            if found.meta.get("window_end") == lineage["window_end"] and found.meta.get("update") == lineage["update"]:
                return found
            if self.serving is not None and number <= self.serving.version:
                return None
        return None

    def _promote(self, version: ModelVersion, reason: str, since: Any) -> None:
        self.serving = version
        since_us = (
            (since - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
            if isinstance(since, dt.datetime)
            else None
        )
        self.catalog.set_serving(self.name, version.version, reason, since_us)


def _better(value: float | None, champion: float | None, bigger_is_better: bool) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if champion is None or (isinstance(champion, float) and math.isnan(champion)):
        return True
    return value > champion if bigger_is_better else value < champion
