"""PREDICT's scores computed by DuckDB itself, for the models whose score is one sum of
products over numeric features: linear regression, and binary logistic regression (its
sigmoid). TRAIN keeps their terms in the version's metadata (`meta["affine"]`, see
sqlml.models.affine); PREDICT becomes SQL that DuckDB runs in its own threads, with
no Python call per vector. Measured on 200,000 rows x 28: DuckDB's Python functions cost 60-70
ms before a model does any work; this whole score costs about 25.

Only there: a model with several outputs (PCA's components, the classes' softmax, k-means'
distances) costs a sum or a distance per output in SQL, and measured as fast as ONNX Runtime
(PCA with 5 components, k-means with 8 centres) or 3.5x slower (8 classes' softmax); PCA and
the softmax are scored from the same terms in NumPy, inside PREDICT's Python function.

The arithmetic is scikit-learn's, in float64: a NULL or NaN input is its training mean, the
standardisation is folded into the weights, then the sum and the link. EVALUATE, TRAIN's
validation metrics and scoring by event time compute the same terms in NumPy
(sqlml.models.affine), equal to the SQL's within float64's rounding.

>>> meta = {"task": "regression", "features": [{"name": "x", "type": "DOUBLE", "kind": "numeric"}],
...         "affine": {"link": "identity", "fill": [0.5], "weights": [[2.0]], "bias": [1.0]}}
>>> for step in layers(meta): print(step)
[('"__sqlml_raw0"', 'CAST("x" AS DOUBLE)')]
[('"__sqlml_x0"', 'CASE WHEN isnan("__sqlml_raw0") IS NOT FALSE THEN 0.5e0 ELSE "__sqlml_raw0" END')]
[('"__sqlml_score"', '(2.0e0 * "__sqlml_x0" + 1.0e0)')]
"""

from __future__ import annotations

from typing import Any

from sqlml.transform import expression

SCORE = '"__sqlml_score"'
SQL_INPUTS = 256  # the most inputs a score is computed from in SQL


def applies(meta: dict[str, Any]) -> bool:
    """Whether the version is scored in SQL: a linear regression or binary logistic regression
    whose affine terms TRAIN kept (see sqlml.models.affine), every input a number."""
    terms, specs = meta.get("affine"), meta["features"]
    return (
        terms is not None
        and meta["task"] in ("regression", "binary")
        and terms["link"] in ("identity", "sigmoid")
        and len(terms["bias"]) == 1
        and len(specs) == len(terms["fill"]) <= SQL_INPUTS
        and all(f["kind"] == "numeric" for f in specs)
    )


def layers(meta: dict[str, Any]) -> list[list[tuple[str, str]]] | None:
    """The score as SQL: lists of (column, expression), each list reading the columns of the
    ones before it, the last one the score alone. None when the model is scored by its own
    runtime (see `applies`).

    The inputs are cast once and imputed once, as columns the sum reads: DuckDB computes a sum
    of products over columns several times faster than `array_inner_product` over an array it
    builds first (the array costs more than the products).
    """
    if not applies(meta):
        return None
    terms, specs = meta["affine"], meta["features"]
    weights = [row[0] for row in terms["weights"]]
    raw = [f'"__sqlml_raw{i}"' for i in range(len(specs))]
    x = [f'"__sqlml_x{i}"' for i in range(len(specs))]
    # w . x + b, leaving out the inputs of weight 0 (an L1 penalty's)
    products = [f"{_number(w)} * {xi}" for xi, w in zip(x, weights) if w != 0]
    value = f"({' + '.join([*products, _number(terms['bias'][0])])})"
    return [
        [(r, f"CAST({expression(meta, f['name'])} AS DOUBLE)") for r, f in zip(raw, specs)],
        # NULL or NaN: the training mean (isnan(NULL) is NULL)
        [(xi, f"CASE WHEN isnan({r}) IS NOT FALSE THEN {_number(v)} ELSE {r} END") for xi, r, v in zip(x, raw, terms["fill"])],
        [(SCORE, f"1 / (1 + exp(-{value}))" if terms["link"] == "sigmoid" else value)],
    ]  # fmt: skip


def _number(value: float) -> str:
    """A float64 literal DuckDB reads as DOUBLE, exactly (a plain decimal would be a DECIMAL)."""
    text = repr(float(value))
    return text if "e" in text else text + "e0"


def scored_sql(steps: list[list[tuple[str, str]]], source_sql: str) -> tuple[str, list[str]]:
    """`source_sql`'s rows with the steps' columns after them, and those columns' names (the
    last one the score).

    >>> scored_sql([[("s", "x + 1")]], "SELECT 1 AS x")
    ('SELECT *, x + 1 AS s FROM (SELECT * FROM (SELECT 1 AS x) AS __sqlml_input)', ['s'])
    """
    sql = f"SELECT * FROM ({source_sql}) AS __sqlml_input"
    for step in steps:
        sql = f"SELECT *, {', '.join(f'{expr} AS {name}' for name, expr in step)} FROM ({sql})"
    return sql, [name for step in steps for name, _ in step]
