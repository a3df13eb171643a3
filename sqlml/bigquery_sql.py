"""BigQuery ML's side of the dialect: its function names, `ML.NAME(` read as one name, and
BigQuery's SQL (backquoted paths, `* EXCEPT`, `IF`, `SAFE_CAST`, ...) translated to DuckDB's.

>>> print(bigquery_sql("SELECT * EXCEPT(w) FROM `proj.data.t` WHERE split = 'train'"))
SELECT * EXCLUDE (w) FROM "data"."t" WHERE split = 'train'
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

# table functions over a model's results (sqlml's names, then BigQuery ML's), and the
# PREDICT-like ones that score rows inside DuckDB's pipeline
MODEL_FUNCTIONS = (
    "EVALUATE", "MODELS", "DESCRIBE_MODEL", "FEATURE_IMPORTANCE", "ROC_CURVE", "PR_CURVE", "CONFUSION_MATRIX",
    "CALIBRATION", "TRAINING_CURVE", "GLOBAL_EXPLAIN", "TRIALS",
    "ML.EVALUATE", "ML.FEATURE_IMPORTANCE", "ML.GLOBAL_EXPLAIN", "ML.TRAINING_INFO", "ML.CONFUSION_MATRIX",
    "ML.ROC_CURVE", "ML.TRIAL_INFO",
)  # fmt: skip
PREDICT_FUNCTIONS = ("PREDICT", "EXPLAIN_PREDICT", "ML.PREDICT", "ML.EXPLAIN_PREDICT")
# BigQuery ML functions sqlml does not have: named in an error rather than left to DuckDB
BIGQUERY_ML_MISSING = (
    "ML.WEIGHTS", "ML.ADVANCED_WEIGHTS", "ML.CENTROIDS", "ML.PRINCIPAL_COMPONENTS",
    "ML.PRINCIPAL_COMPONENT_INFO", "ML.FORECAST", "ML.EXPLAIN_FORECAST", "ML.ARIMA_EVALUATE", "ML.ARIMA_COEFFICIENTS",
    "ML.DETECT_ANOMALIES", "ML.RECOMMEND", "ML.GENERATE_TEXT", "ML.GENERATE_EMBEDDING", "ML.TRANSFORM",
    "ML.RECONSTRUCTION_LOSS", "ML.FEATURE_INFO", "ML.GET_INSIGHTS", "ML.VALIDATE_DATA_SKEW",
    "ML.VALIDATE_DATA_DRIFT", "ML.TFDV_DESCRIBE", "ML.TFDV_VALIDATE",
    "ML.MAX_ABS_SCALER", "ML.ROBUST_SCALER", "ML.NORMALIZER", "ML.ONE_HOT_ENCODER", "ML.MULTI_HOT_ENCODER", "ML.LABEL_ENCODER", "ML.HASH_BUCKETIZE", "ML.IMPUTER", "ML.DISTANCE", "ML.LP_NORM",
    "ML.METRICS",
)  # fmt: skip
# TRANSFORM's preprocessing functions: parsed as plain calls, rewritten by sqlml.transform
PREPROCESSING = ("ML.STANDARD_SCALER", "ML.MIN_MAX_SCALER", "ML.QUANTILE_BUCKETIZE", "ML.BAG_OF_WORDS", "ML.TF_IDF",
                 "ML.BUCKETIZE", "ML.FEATURE_CROSS", "ML.POLYNOMIAL_EXPAND", "ML.NGRAMS")  # fmt: skip
_ML_NAMES = frozenset(n.removeprefix("ML.") for n in (*MODEL_FUNCTIONS, *PREDICT_FUNCTIONS, *BIGQUERY_ML_MISSING,
                      *PREPROCESSING) if n.startswith("ML."))  # fmt: skip


def unquote_path(table: exp.Expr) -> exp.Expr:
    """A BigQuery table path quoted whole (`dataset.table`, `project.dataset.table`) as
    DuckDB's schema.table (a project has no counterpart: it is dropped)."""
    if not isinstance(table, exp.Table) or table.args.get("db") or "." not in table.name or not table.this.quoted:
        return table
    parts = table.name.split(".")[-2:]
    return exp.table_(parts[-1], db=parts[0] if len(parts) == 2 else None, quoted=True)


def bigquery_sql(text: str, bigquery: bool = False) -> str:
    """A query as DuckDB SQL: BigQuery's SQL (`bigquery`: the query of CREATE MODEL or of an
    ML.* function; or any query that quotes names with backquotes) is translated by sqlglot,
    its tables' project parts dropped; any other is DuckDB's own, left as written, as is
    text sqlglot cannot read as BigQuery's.

    """
    if not bigquery and "`" not in text:
        return text
    import sqlglot

    try:
        tree = sqlglot.parse_one(text, read="bigquery")
    except (ParseError, TokenError):
        return text  # DuckDB reports what is wrong with it
    for table in tree.find_all(exp.Table):
        table.set("catalog", None)
    return tree.sql(dialect="duckdb")


def merge_ml_names(tokens: list[Token]) -> list[Token]:
    """BigQuery ML's `ML.NAME(` as one function-name token `ML.NAME`, so that the parser
    finds its function parser by name (sqlglot would read `ML` as a table or column)."""
    merged: list[Token] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if (
            t.text.upper() == "ML"
            and i + 3 < len(tokens)
            and tokens[i + 1].token_type == TokenType.DOT
            and tokens[i + 2].text.upper() in _ML_NAMES
            and tokens[i + 3].token_type == TokenType.L_PAREN
        ):
            name = tokens[i + 2]
            merged.append(
                Token(TokenType.VAR, f"ML.{name.text.upper()}", t.line, name.col, t.start, name.end, t.comments)
            )
            i += 3
            continue
        merged.append(t)
        i += 1
    return merged
