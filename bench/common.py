"""Shared by the benchmarks: the data set, generated in DuckDB, and small timing helpers."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

import duckdb

FEATURES = 28


def make_table(con: duckdb.DuckDBPyConnection, rows: int, name: str = "data") -> None:
    """`rows` x 28 DOUBLE features (HIGGS-sized) and a BOOLEAN label that depends on some of them."""
    cols = ", ".join(f"(hash(i * {FEATURES} + {j}) % 1000000) / 1000000.0 AS f{j}" for j in range(FEATURES))
    label = "(f0 + 0.5 * f1 * f2 - 0.7 * f3 + 0.3 * sin(6 * f4) + 0.4 * (hash(f5) % 1000) / 1000.0 > 0.8) AS y"
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT *, {label} FROM (SELECT {cols} FROM range({rows}) AS t(i))")


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """The median wall time of `repeats` calls, and all of them."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def alternating(ours: Callable[[], object], theirs: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The median wall times of `ours` and `theirs`, called in turn `repeats` times each, so that
    the machine's drift (frequency, neighbours) falls on both sides alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((ours, times[0]), (theirs, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over exec)."""
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
