"""TRANSFORM: the same model as one trained on the features computed by hand (NumPy), with the
statistics learnt from the training rows and applied unchanged to new rows at PREDICT."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

import sqlml

RNG = np.random.default_rng(7)
WORDS = ["red", "green", "blue", "cyan", "gold", "pink"]


def raw(n: int, shift: float = 0.0) -> pa.Table:
    x = RNG.normal(10 + shift, 3, n)
    z = RNG.uniform(0, 5, n)
    c = RNG.choice(["a", "b"], n)
    d = RNG.choice(["u", "v", "w"], n)
    txt = [" ".join(RNG.choice(WORDS, RNG.integers(1, 6))) for _ in range(n)]
    y = ((x - 10) / 3 + (c == "a") + 0.3 * z + RNG.normal(0, 0.5, n) > 1.2).astype(int)
    return pa.table({"x": x, "z": z, "c": c, "d": d, "txt": txt, "y": y})


TRANSFORM = """TRANSFORM (ML.STANDARD_SCALER(x) OVER () AS xs, ML.MIN_MAX_SCALER(z) OVER () AS zm,
    ML.BUCKETIZE(x, [8, 10, 12]) AS xb, ML.QUANTILE_BUCKETIZE(z, 4) OVER () AS zq,
    ML.FEATURE_CROSS(STRUCT(c, d)) AS cd, ML.POLYNOMIAL_EXPAND(STRUCT(x, z)) AS poly,
    ML.BAG_OF_WORDS(string_split(txt, ' '), 4, 2) OVER () AS bow,
    ML.TF_IDF(ML.NGRAMS(string_split(txt, ' '), [1, 2]), 5, 2) OVER () AS tfidf, y)"""


class ByHand:
    """The same features computed with NumPy from the training rows' statistics."""

    def __init__(self, train: pa.Table) -> None:
        x, z = train.column("x").to_numpy(), train.column("z").to_numpy()
        self.mean, self.std = x.mean(), x.std(ddof=1)
        self.low, self.high = z.min(), z.max()
        self.quantiles = np.quantile(z, [0.25, 0.5, 0.75], method="inverted_cdf")
        tokens = [t.split(" ") for t in train.column("txt").to_pylist()]
        counts = Counter(w for t in tokens for w in t)
        self.bow = [w for w, k in sorted(counts.items(), key=lambda p: (-p[1], p[0])) if k >= 2][:4]
        grams = [self.ngrams(t) for t in tokens]
        gram_counts = Counter(g for t in grams for g in t)
        self.tf = [w for w, k in sorted(gram_counts.items(), key=lambda p: (-p[1], p[0])) if k >= 2][:5]
        df = {w: sum(w in set(t) for t in grams) for w in self.tf}
        self.idf = [math.log((1 + len(grams)) / (1 + df[w])) + 1 for w in self.tf]

    @staticmethod
    def ngrams(tokens: list[str]) -> list[str]:
        return tokens + [" ".join(tokens[i : i + 2]) for i in range(len(tokens) - 1)]

    @staticmethod
    def buckets(v: np.ndarray, splits: list[float]) -> list[str]:
        return [f"bin_{int(np.searchsorted(splits, e, side='right')) + 1}" for e in v]

    def features(self, t: pa.Table) -> pa.Table:
        x, z = t.column("x").to_numpy(), t.column("z").to_numpy()
        tokens = [s.split(" ") for s in t.column("txt").to_pylist()]
        poly = [[a, b, a * a, a * b, b * b] for a, b in zip(x, z)]
        tfidf = []
        for toks in tokens:
            grams = self.ngrams(toks)
            tfidf.append([grams.count(w) / max(len(grams), 1) * idf for w, idf in zip(self.tf, self.idf)])
        cross = [f"{a}_{b}" for a, b in zip(t.column("c").to_pylist(), t.column("d").to_pylist())]
        return pa.table({
            "xs": (x - self.mean) / self.std,
            "zm": np.clip((z - self.low) / (self.high - self.low), 0, 1),
            "xb": self.buckets(x, [8, 10, 12]), "zq": self.buckets(z, list(self.quantiles)), "cd": cross,
            "poly": pa.array(poly, pa.list_(pa.float64(), 5)),
            "bow": pa.array([[float(toks.count(w)) for w in self.bow] for toks in tokens], pa.list_(pa.float64())),
            "tfidf": pa.array(tfidf, pa.list_(pa.float64())), "y": t.column("y"),
        })  # fmt: skip


def test_transform_equals_features_computed_by_hand(con):
    train, new = raw(1500), raw(300, shift=4.0)  # new rows from another distribution: statistics must not move
    hand = ByHand(train)
    by_hand = hand.features(train)  # noqa: F841 (read by name)
    params = "WITH (num_threads = 1, validation = 0, num_boost_round = 30, seed = 1, min_data_in_leaf = 5)"
    con.sql(f"TRAIN MODEL tr USING lightgbm_classifier LABEL y {TRANSFORM} {params} AS SELECT * FROM train")
    con.sql(f"TRAIN MODEL hand USING lightgbm_classifier LABEL y {params} AS SELECT * FROM by_hand")
    new_by_hand = hand.features(new)  # noqa: F841
    got = [r[0] for r in con.sql("SELECT probability FROM PREDICT(MODEL tr, TABLE new)").fetchall()]
    expected = [r[0] for r in con.sql("SELECT probability FROM PREDICT(MODEL hand, TABLE new_by_hand)").fetchall()]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # EVALUATE applies it too, and the raw columns are what the model asks for
    auc = con.sql("SELECT auc FROM EVALUATE(MODEL tr, TABLE new)").fetchall()[0][0]
    assert auc == pytest.approx(con.sql("SELECT auc FROM EVALUATE(MODEL hand, TABLE new_by_hand)").fetchall()[0][0])
    stored = dict(con.sql("SELECT name, value FROM DESCRIBE_MODEL(MODEL tr) WHERE section = 'transform'").fetchall())
    mean, std = (float(v) for v in re.findall(r"\d[\d.]*(?:e-?\d+)?", stored["xs"].split("AS DOUBLE")[1]))
    assert (mean, std) == (pytest.approx(hand.mean, rel=1e-12), pytest.approx(hand.std, rel=1e-12))
    with pytest.raises(sqlml.SqlmlError, match="lacks column"):
        con.sql("SELECT * FROM PREDICT(MODEL tr, (SELECT x, z, c, d FROM new))")


def test_bigquery_ml_transform_with_a_renamed_label(con):
    src = raw(800)  # noqa: F841
    con.sql("CREATE MODEL b TRANSFORM (ML.STANDARD_SCALER(x) OVER () AS x, c, y AS label) "
            "OPTIONS (model_type = 'logistic_reg') AS SELECT * FROM src")  # fmt: skip
    row = con.sql("SELECT * FROM ML.EVALUATE(MODEL b, (SELECT * FROM src))").fetchall()[0]
    assert 0.5 < row[-1] <= 1  # roc_auc on the raw rows: the label came through the TRANSFORM
    columns = con.sql("SELECT * FROM ML.PREDICT(MODEL b, (SELECT x, c FROM src))").columns
    assert columns[:2] == ["predicted_label", "predicted_label_probs"]


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ("ML.STANDARD_SCALER(x) AS xs, y", "write ML.STANDARD_SCALER(...) OVER ()"),
        ("ML.BUCKETIZE(x, [1, 2]) OVER () AS xb, y", "takes no OVER clause"),
        ("ML.STANDARD_SCALER(x) OVER (PARTITION BY c) AS xs, y", "learns over all training rows"),
        ("ML.BUCKETIZE(x, [5, 1]) AS xb, y", "rising list"),
        ("ML.FEATURE_CROSS(STRUCT(c, d, c)) AS cd, y", "crosses two columns"),
        ("ML.BAG_OF_WORDS(string_split(txt, ' '), 5000) OVER () AS b, y", "top_k"),
        ("ML.ROBUST_SCALER(x) OVER () AS r, y", "ML.ROBUST_SCALER"),
        ("x + 1, y", "Name each TRANSFORM expression"),
        ("x AS a, z AS a, y", "names 'a' twice"),
        ("nope AS a, y", "nope"),
    ],
)
def test_bad_transforms_are_errors_that_change_nothing(con, transform, message):
    src = raw(100)  # noqa: F841
    with pytest.raises(sqlml.SqlmlError) as err:
        con.sql(f"TRAIN MODEL bad USING lightgbm_classifier LABEL y TRANSFORM ({transform}) AS SELECT * FROM src")
    assert message in f"{err.value.message} {err.value.hint}"
    assert not con.sql("SELECT * FROM MODELS()").fetchall()


def test_preprocessing_outside_transform_is_refused(con):
    with pytest.raises(sqlml.SqlmlError, match="preprocessing function of TRANSFORM"):
        con.sql("SELECT ML.STANDARD_SCALER(x) OVER () FROM (SELECT 1.0 AS x)")


def test_polynomial_terms_are_every_product_up_to_the_degree(con):
    src = pa.table({"a": [2.0], "b": [3.0], "y": [1.0]})  # noqa: F841
    con.sql("TRAIN MODEL p USING linear_regressor LABEL y TRANSFORM (ML.POLYNOMIAL_EXPAND(STRUCT(a, b), 3) AS p, y) "
            "AS SELECT * FROM src")  # fmt: skip
    sql = con.sql("SELECT value FROM DESCRIBE_MODEL(MODEL p) WHERE section = 'transform'").fetchall()[0][0]
    values = con.sql(f"SELECT {sql} FROM src").fetchall()[0][0]
    expected = [math.prod(c) for d in (1, 2, 3) for c in itertools.combinations_with_replacement([2.0, 3.0], d)]
    assert list(values) == expected
