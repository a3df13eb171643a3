"""A deterministic, seeded Nexmark event generator: one stream of persons (2%), auctions (6%)
and bids (92%) in event-time order, written as Parquet files.

    python bench/nexmark_gen.py OUT_DIR [--events 2000000] [--files 10] [--rate 10000] [--seed 1]
    python bench/nexmark_gen.py --sample queries/data/nexmark_sample.parquet

The second writes the small sample the files in queries/nexmark/ read when they run alone
(SAMPLE_SQL: 20,000 events, one a millisecond, 1 person, 3 auctions and 46 bids in every 50).

`rate` is events per second of event time. Bids go mostly to recent ("hot") auctions and come
from recent bidders, as in Nexmark's own generator. Columns (NULL where they do not apply):
event_type (0 person, 1 auction, 2 bid), person_id, name, city, state, auction_id, item_name,
seller, category, initial_bid, auction, bidder, price, date_time, expires (when an auction
ends: 1 to 20 seconds of event time after it opens), channel (where a bid came from).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = dt.datetime(2025, 1, 1)
CITIES = np.array(
    ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"]
)
STATES = np.array(["AZ", "CA", "CA", "ID", "OR", "OR", "WA", "WA", "WA", "WY"])
CHANNELS = np.array(["Google", "Facebook", "Baidu", "Apple"])


def generate(events: int, rate: int, seed: int) -> pa.Table:
    """`events` Nexmark events; in each block of 50: 1 person, 3 auctions, 46 bids."""
    rng = np.random.default_rng(seed)
    i = np.arange(events, dtype=np.int64)
    slot = i % 50
    kind = np.where(slot == 0, 0, np.where(slot <= 3, 1, 2)).astype(np.int8)
    persons_before = i // 50 + 1  # persons that exist once this event is generated
    auctions_before = (i // 50) * 3 + np.minimum(slot, 3)
    person = np.where(kind == 0, i // 50, -1)
    auction_id = np.where(kind == 1, (i // 50) * 3 + slot - 1, -1)
    # bids: half to one of the 10 newest auctions (hot), the rest anywhere; bidders mostly recent
    hot = rng.random(events) < 0.5
    newest = np.maximum(auctions_before - 1, 0)
    pick = np.where(
        hot,
        newest - rng.integers(0, 10, events),
        (rng.random(events) * np.maximum(auctions_before, 1)).astype(np.int64),
    )
    bid_auction = np.maximum(pick, 0)
    bidder = np.maximum(persons_before - 1 - rng.integers(0, 20, events), 0)
    seller = np.maximum(persons_before - 1 - rng.integers(0, 5, events), 0)
    micros = (i * 1_000_000) // rate
    date_time = pa.array(np.datetime64(START, "us") + micros.astype("timedelta64[us]"))
    city_idx = rng.integers(0, len(CITIES), events)
    lasts = rng.integers(1_000_000, 20_000_000, events)  # an auction's length, microseconds

    def where(mask: np.ndarray, values: np.ndarray, type_: pa.DataType) -> pa.Array:
        return pa.array(values, type_, mask=~mask)

    is_p, is_a, is_b = kind == 0, kind == 1, kind == 2
    return pa.table(
        {
            "event_type": pa.array(kind, pa.int8()),
            "person_id": where(is_p, person, pa.int64()),
            "name": where(is_p, np.char.add("person_", person.astype(str)), pa.string()),
            "city": where(is_p, CITIES[city_idx], pa.string()),
            "state": where(is_p, STATES[city_idx], pa.string()),
            "auction_id": where(is_a, auction_id, pa.int64()),
            "item_name": where(is_a, np.char.add("item_", auction_id.astype(str)), pa.string()),
            "seller": where(is_a, seller, pa.int64()),
            "category": where(is_a, 10 + auction_id % 5, pa.int64()),
            "initial_bid": where(is_a, 100 + rng.integers(0, 1000, events), pa.int64()),
            "auction": where(is_b, bid_auction, pa.int64()),
            "bidder": where(is_b, bidder, pa.int64()),
            "price": where(is_b, 100 + (rng.pareto(1.5, events) * 100).astype(np.int64), pa.int64()),
            "date_time": date_time,
            "expires": where(
                is_a, np.datetime64(START, "us") + (micros + lasts).astype("timedelta64[us]"), pa.timestamp("us")
            ),  # fmt: skip
            "channel": where(is_b, CHANNELS[rng.integers(0, len(CHANNELS), events)], pa.string()),
        }
    )


SAMPLE_SQL = """
    SELECT (CASE WHEN slot = 0 THEN 0 WHEN slot <= 3 THEN 1 ELSE 2 END)::TINYINT AS event_type,
           CASE WHEN slot = 0 THEN blk END AS person_id,
           CASE WHEN slot = 0 THEN 'person_' || blk END AS name,
           CASE WHEN slot = 0 THEN ['Phoenix', 'Los Angeles', 'San Francisco', 'Boise', 'Portland', 'Bend',
                                    'Redmond', 'Seattle', 'Kent', 'Cheyenne'][1 + (hash(i) % 10)::BIGINT] END AS city,
           CASE WHEN slot = 0 THEN ['AZ', 'CA', 'CA', 'ID', 'OR', 'OR', 'WA', 'WA', 'WA', 'WY'][1 + (hash(i) % 10)::BIGINT] END AS state,
           CASE WHEN slot BETWEEN 1 AND 3 THEN blk * 3 + slot - 1 END AS auction_id,
           CASE WHEN slot BETWEEN 1 AND 3 THEN 'item_' || (blk * 3 + slot - 1) END AS item_name,
           CASE WHEN slot BETWEEN 1 AND 3 THEN greatest(blk - (hash(i, 1) % 5)::BIGINT, 0) END AS seller,
           CASE WHEN slot BETWEEN 1 AND 3 THEN 10 + (blk * 3 + slot - 1) % 5 END AS category,
           CASE WHEN slot BETWEEN 1 AND 3 THEN 100 + (hash(i, 2) % 1000)::BIGINT END AS initial_bid,
           CASE WHEN slot > 3 THEN greatest(blk * 3 + 2 - (hash(i, 3) % 10)::BIGINT, 0) END AS auction,
           CASE WHEN slot > 3 THEN greatest(blk - (hash(i, 4) % 20)::BIGINT, 0) END AS bidder,
           CASE WHEN slot > 3 THEN 100 + ((hash(i, 5) % 1000)::BIGINT * (hash(i, 6) % 100)::BIGINT) // 10 END AS price,
           TIMESTAMP '2025-01-01' + to_milliseconds(i) AS date_time,
           CASE WHEN slot BETWEEN 1 AND 3 THEN TIMESTAMP '2025-01-01' + to_milliseconds(i + 1000 + (hash(i, 7) % 9000)::BIGINT) END AS expires,
           CASE WHEN slot > 3 THEN ['Google', 'Facebook', 'Baidu', 'Apple'][1 + (hash(i, 8) % 4)::BIGINT] END AS channel
    FROM (SELECT i, i % 50 AS slot, i // 50 AS blk FROM range(20000) AS t(i))
"""


def write_sample(path: Path) -> None:
    """The sample queries/nexmark/ reads, written by DuckDB from SAMPLE_SQL (deterministic)."""
    import duckdb

    duckdb.connect().execute(f"COPY ({SAMPLE_SQL}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")


def write(out: Path, events: int, files: int, rate: int, seed: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    table = generate(events, rate, seed)
    paths = []
    per_file = -(-events // files)
    for f in range(files):
        path = out / f"events-{f:04d}.parquet"
        pq.write_table(table.slice(f * per_file, per_file), path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--sample", action="store_true", help="write the small sample to OUT (a file)")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.sample:
        write_sample(Path(args.out))
        return
    paths = write(Path(args.out), args.events, args.files, args.rate, args.seed)
    print(f"wrote {args.events} events to {len(paths)} files in {args.out}")


if __name__ == "__main__":
    main()
