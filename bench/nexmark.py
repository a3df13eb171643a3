"""The Nexmark queries of queries/nexmark/ streaming through sqlml, against the same
computation as one batch DuckDB query over the whole data, in the same run.

    python bench/nexmark.py [--events 2000000] [--files 10] [--batch-size 100000]

Both sides read the same Parquet files (bench/nexmark_gen.py) on 2 threads. The batch side
loads them into a table and runs the query with the stream replaced by that table; the
streaming side runs the query file as written (micro-batches, watermarks, window state).
Their results must be equal, row for row. Reports events/s, events/s per core and the ratio
streaming / batch (target >= 0.5).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from nexmark_gen import write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["q3", "q4", "q5", "q6", "q7", "q8", "q9", "q11", "q15", "q16", "q17", "q18", "q19", "q20"]
FLINK_PER_CORE = {"q5": 22_000, "q7": 12_000, "q8": 146_000, "q11": 40_000}
CORES = 2


def statements(name: str) -> tuple[str, str, str]:
    """The query file's CREATE STREAM (reading nexmark/*.parquet, which nexmark_gen.py writes,
    instead of the file's own small sample), CREATE TABLE and INSERT statements."""
    from sqlml.dialect import parse

    texts = [s.text for s in parse((ROOT / "queries" / "nexmark" / f"{name}.sql").read_text())]

    def first(head: str) -> str:
        return next(t for t in texts if t.upper().startswith(head))

    create_stream = first("CREATE OR REPLACE STREAM").replace(
        "'queries/data/nexmark_sample.parquet'", "'nexmark/*.parquet'"
    )
    return create_stream, first("CREATE OR REPLACE TABLE"), first("INSERT INTO")


def batch_sql(name: str, insert: str) -> str:
    """The INSERT as one batch query over the table `nexmark_batch`, creating `<name>_batch`."""
    return re.sub(
        r"\bnexmark\b", "nexmark_batch", insert.replace(f"INSERT INTO {name}", f"CREATE TABLE {name}_batch AS")
    )


def rows(con: Any, table: str) -> Counter:
    """A table's rows, floats to 9 significant digits (an average summed in another order)."""
    return Counter(
        tuple(float(f"{v:.9g}") if isinstance(v, float) else v for v in row)
        for row in con.sql(f"SELECT * FROM {table}").fetchall()
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=500_000)
    parser.add_argument("--queries", default=",".join(QUERIES))
    args = parser.parse_args()

    import sqlml

    work = Path(tempfile.mkdtemp())
    write(work / "nexmark", args.events, args.files, 10_000, 1)
    print(f"events={args.events} files={args.files} batch_size={args.batch_size} threads={CORES}")
    print(
        f"{'query':6} {'stream s':>9} {'batch s':>8} {'stream ev/s':>12} {'per core':>9} {'batch ev/s':>11} {'ratio':>6} {'Flink/core':>10}"
    )
    for name in args.queries.split(","):
        create_stream, create_table, insert = statements(name)
        create_stream = create_stream.replace(
            "format = 'parquet')", f"format = 'parquet', batch_size = {args.batch_size})"
        )
        create_stream = create_stream.replace("'nexmark/*.parquet'", f"'{work}/nexmark/*.parquet'")
        con = sqlml.connect(catalog=work / "cat")
        con.execute("SET threads = 2")
        con.execute(create_stream)
        con.execute(create_table)
        start = time.perf_counter()
        con.execute(insert)
        stream_s = time.perf_counter() - start
        streamed = rows(con, name)

        start = time.perf_counter()
        con.execute(f"CREATE TABLE nexmark_batch AS SELECT * FROM read_parquet('{work}/nexmark/*.parquet')")
        con.execute(batch_sql(name, insert))
        batch_s = time.perf_counter() - start
        batched = rows(con, f"{name}_batch")
        assert streamed == batched, f"{name}: streaming and batch results differ"
        rate, batch_rate = args.events / stream_s, args.events / batch_s
        print(
            f"{name:6} {stream_s:9.2f} {batch_s:8.2f} {rate:12,.0f} {rate / CORES:9,.0f} {batch_rate:11,.0f} "
            f"{rate / batch_rate:6.2f} {FLINK_PER_CORE.get(name, '-'):>10}"
        )
        con.close()


if __name__ == "__main__":
    main()
