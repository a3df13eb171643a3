"""`sqlml report MODEL`: one self-contained HTML page about a model version.

The page holds the metrics, ROC and precision-recall curves, the confusion matrix, feature
importance, the training curve, a search's trials, and for a continuously trained model its
metrics per window and its promotions. Every number comes from sqlml's own table functions
(EVALUATE(...), ROC_CURVE(...), ...). Charts are SVG written here: a few line and bar charts
need no plotting library, and the file loads nothing from the network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from sqlml.errors import SqlmlError

COLORS = ("#2563eb", "#ea580c", "#16a34a", "#9333ea")
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937; margin: 2rem auto;
       max-width: 1040px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #e5e7eb; }
.sub { color: #6b7280; } .charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .25rem .6rem; border: 1px solid #e5e7eb; text-align: right; }
th { background: #f9fafb; } td.l, th.l { text-align: left; } .note { color: #6b7280; font-style: italic; }
svg text { font: 11px system-ui, sans-serif; fill: #374151; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def number(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    return esc(value)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{esc(c)}</th>' for i, c in enumerate(columns))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{number(v)}</td>' for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    start = math.ceil(low / step) * step
    return [start + i * step for i in range(int((high - start) / step + 1e-9) + 1)]


def line_chart(
    title: str, series: Sequence[tuple[str, Sequence[float], Sequence[float]]], x_label: str, y_label: str,
    diagonal: bool = False, unit_square: bool = False,
) -> str:  # fmt: skip
    """An SVG line chart of (name, xs, ys) series; `unit_square` fixes both axes to 0..1."""
    width, height, left, right, top, bottom = 440, 300, 52, 12, 28, 40
    points = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
    if not points:
        return f'<p class="note">{esc(title)}: no points.</p>'
    if unit_square:
        x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
    else:
        x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
        y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
        pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
        x1 = x1 if x1 > x0 else x0 + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{esc(title)}"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-weight="600">{esc(title)}</text>']  # fmt: skip
    for t in _ticks(x0, x1):
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{height - bottom}" stroke="#f3f4f6"/>'
                     f'<text x="{sx(t):.1f}" y="{height - bottom + 14}" text-anchor="middle">{t:.4g}</text>')  # fmt: skip
    for t in _ticks(y0, y1):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#f3f4f6"/>'
                     f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:.4g}</text>')  # fmt: skip
    parts.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
                 'fill="none" stroke="#9ca3af"/>')  # fmt: skip
    if diagonal:
        parts.append(
            f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#9ca3af" stroke-dasharray="4 4"/>'
        )
    for i, (name, xs, ys) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys) if _finite(x) and _finite(y))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<rect x="{left + 10}" y="{top + 8 + 16 * i}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + 24}" y="{top + 17 + 16 * i}">{esc(name)}</text>')  # fmt: skip
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">{esc(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle">'
                 f"{esc(y_label)}</text></svg>")  # fmt: skip
    return "".join(parts)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """An SVG horizontal bar chart (feature importance)."""
    width, row, left = 520, 20, 170
    height = 36 + row * len(labels)
    top = max(values) if values and max(values) > 0 else 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{esc(title)}"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-weight="600">{esc(title)}</text>']  # fmt: skip
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 28 + i * row
        length = max(0.0, value) / top * (width - left - 70)
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{esc(label[:28])}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" fill="{COLORS[0]}"/>'
                     f'<text x="{left + length + 4:.1f}" y="{y + 13}">{value:.3g}</text>')  # fmt: skip
    return "".join(parts) + "</svg>"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _rows(con: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    result = con.sql(sql)
    return result.columns, result.fetchall()


def _try(con: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """A result function's rows, or None when it does not apply to this model (no validation rows, ...)."""
    try:
        return _rows(con, sql)
    except SqlmlError:
        return None


def build(con: Any, name: str, version: int | None = None) -> str:
    """The report's HTML for a model version (the serving or latest one when `version` is None)."""
    ref = f"MODEL {name}" + (f" VERSION {version}" if version else "")
    details = dict(((s, n), v) for s, n, v in con.sql(f"SELECT * FROM DESCRIBE_MODEL({ref})").fetchall())
    task = details[("model", "task")]
    trainer = details[("model", "trainer")]
    number_ = details[("model", "version")]
    sections = [
        f"<h1>Model {esc(name)} <span class='sub'>version {esc(number_)}</span></h1>",
        f"<p class='sub'>{esc(trainer)} · {esc(task)} · label {esc(details.get(('model', 'label'), '-'))} · "
        f"{esc(details.get(('model', 'rows'), '?'))} rows · trained {esc(details.get(('model', 'created_at'), ''))}</p>",
    ]
    evaluation = _try(con, f"SELECT * FROM EVALUATE({ref})")
    sections.append("<h2>Metrics</h2>")
    if evaluation:
        columns, rows = evaluation
        sections.append(table(columns, rows, left=1))
        sections.append("<p class='sub'>On the validation rows TRAIN kept.</p>")
    else:
        metric_rows = [(n, v) for (s, n), v in details.items() if s == "metric"]
        sections.append(table(["metric", "value"], metric_rows) if metric_rows
                        else "<p class='note'>No validation rows were kept: evaluate on data with EVALUATE.</p>")  # fmt: skip
    charts = []
    roc = _try(con, f"SELECT false_positive_rate, recall FROM ROC_CURVE({ref}) ORDER BY 1, 2")
    if roc:
        xs, ys = zip(*roc[1])
        charts.append(line_chart("ROC curve", [("model", xs, ys)], "false positive rate", "true positive rate",
                                 diagonal=True, unit_square=True))  # fmt: skip
    pr = _try(con, f"SELECT recall, precision FROM PR_CURVE({ref}) ORDER BY 1 DESC, 2")
    if pr:
        xs, ys = zip(*pr[1])
        charts.append(
            line_chart("Precision-recall curve", [("model", xs, ys)], "recall", "precision", unit_square=True)
        )
    calibration = _try(con, f"SELECT predicted, observed FROM CALIBRATION({ref}) ORDER BY bin")
    if calibration:
        xs, ys = zip(*calibration[1])
        charts.append(line_chart("Calibration", [("model", xs, ys)], "mean predicted probability",
                                 "share of positives", diagonal=True, unit_square=True))  # fmt: skip
    if charts:
        sections += ["<h2>Curves (validation rows)</h2>", f"<div class='charts'>{''.join(charts)}</div>"]
    confusion = _try(con, f"SELECT actual, predicted, count FROM CONFUSION_MATRIX({ref})")
    if confusion:
        sections += ["<h2>Confusion matrix (validation rows)</h2>", _confusion(confusion[1])]
    importance = _try(con, f"SELECT feature, share FROM FEATURE_IMPORTANCE({ref}) WHERE level = 'column' LIMIT 20")
    if importance and importance[1]:
        labels, values = zip(*importance[1])
        sections += ["<h2>Feature importance</h2>", bar_chart("Share of gain", labels, values)]
    curve = _try(con, f"SELECT iteration, training, validation, metric FROM TRAINING_CURVE({ref}) ORDER BY iteration")
    if curve and curve[1]:
        its = [r[0] for r in curve[1]]
        series = [("training", its, [r[1] for r in curve[1]])]
        if any(r[2] is not None for r in curve[1]):
            series.append(("validation", its, [r[2] for r in curve[1]]))
        sections += [
            "<h2>Training curve</h2>",
            line_chart(f"{curve[1][0][3]} per round", series, "round", curve[1][0][3]),
        ]
    trials = _try(con, f"SELECT trial, state, value, params, seconds, is_best FROM TRIALS({ref}) ORDER BY trial")
    if trials:
        done = [r for r in trials[1] if r[2] is not None]
        chart = line_chart("Objective per trial", [("trial", [r[0] for r in done], [r[2] for r in done])], "trial",
                           "objective") if done else ""  # fmt: skip
        sections += ["<h2>Tuning trials</h2>", chart, table(trials[0], trials[1], left=2)]
    sections += _continuous(con, name)
    body = "\n".join(sections)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sqlml report: {esc(name)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")  # fmt: skip


def _confusion(rows: Sequence[tuple[Any, ...]]) -> str:
    classes = list(dict.fromkeys(r[0] for r in rows))
    counts = {(r[0], r[1]): r[2] for r in rows}
    top = max(counts.values()) or 1
    head = "<tr><th class='l'>actual \\ predicted</th>" + "".join(f"<th>{esc(c)}</th>" for c in classes) + "</tr>"
    body = ""
    for a in classes:
        cells = "".join(
            f"<td style='background: rgba(37, 99, 235, {0.08 + 0.6 * counts[(a, p)] / top:.2f})'>{counts[(a, p)]}</td>"
            for p in classes
        )
        body += f"<tr><th class='l'>{esc(a)}</th>{cells}</tr>"
    return f"<table>{head}{body}</table>"


def _continuous(con: Any, name: str) -> list[str]:
    """Metrics per window and promotions, for a continuously trained model."""
    log = _try(con, f"SELECT * FROM METRICS(MODEL {name}) WHERE window_end IS NOT NULL ORDER BY window_end")
    if not log or not log[1]:
        return []
    columns, rows = log
    metric = next((c for c in ("auc", "macro_f1", "rmse", "ndcg_at_10") if c in columns), None)
    out = ["<h2>Continuous training</h2>"]
    if metric is not None:
        i, role, end = columns.index(metric), columns.index("role"), columns.index("window_end")
        series = []
        for name_ in dict.fromkeys(r[role] for r in rows):
            points = [(r[end].timestamp(), r[i]) for r in rows if r[role] == name_ and r[i] is not None]
            if points:
                series.append((name_, [p[0] for p in points], [p[1] for p in points]))
        out.append(line_chart(f"{metric} per window", series, "window end (epoch seconds)", metric))
    serving = con.engine.catalog.serving(name)
    if serving is not None:
        out.append("<h2>Promotions</h2>")
        out.append(table(["version", "reason", "serving from (event time, µs)"],
                         [(p.version, p.reason, p.since_us) for p in serving.history]))  # fmt: skip
    keep = [c for c in ("window_start", "window_end", "version", "role", "rows", metric, "error") if c in columns]
    out.append(table(keep, [[r[columns.index(c)] for c in keep] for r in rows[-50:]], left=4))
    return out
