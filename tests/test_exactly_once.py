"""Exactly once: a continuous INSERT killed with SIGKILL at random points and restarted
ends with the same table as an uninterrupted run, row for row: no duplicate, no gap.

Kills are placed by progress markers the process prints (a micro-batch or a window done),
never by sleeping, so the tests hold on a busy machine."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys

import duckdb
import pytest

from tests.test_stream import write_events

SCRIPT = """CREATE STREAM IF NOT EXISTS clicks (user_id BIGINT, item_id BIGINT, price DOUBLE, purchased BOOLEAN, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (connector = 'files', path = 'events/*.jsonl', format = 'jsonl', batch_size = 25);
CREATE TABLE IF NOT EXISTS per_minute (window_start TIMESTAMP, window_end TIMESTAMP, item_id BIGINT, clicks BIGINT, spend DOUBLE);
INSERT INTO per_minute SELECT window_start, window_end, item_id, count(*) AS clicks, sum(price) AS spend
FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '30' SECOND, INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, item_id;
"""


def start(folder, db: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sqlml", "run", "job.sql", "--db", db, "--catalog", "cat", "--progress"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(proc: subprocess.Popen, text: str) -> None:
    """Read the process's stderr up to a line containing `text`."""
    while True:
        line = proc.stderr.readline()
        assert line, f"the process ended before printing {text!r}"
        if text in line:
            return


def kill_after(proc: subprocess.Popen, marker: str, count: int) -> bool:
    """SIGKILL the process once it has printed `count` lines containing `marker`; False if it
    ended first (then it must have ended well)."""
    seen, lines = 0, []
    while seen < count:
        line = proc.stderr.readline()
        lines.append(line)
        if not line:
            assert proc.wait() == 0, "".join(lines)
            return False
        seen += marker in line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def table(folder, db: str) -> list[tuple]:
    con = duckdb.connect(str(folder / db), read_only=True)
    try:
        return sorted(con.sql("SELECT * FROM per_minute").fetchall())
    finally:
        con.close()


def checkpoint(folder, db: str) -> str | None:
    """Where the killed run's checkpoint stands (None before the first one)."""
    if not (folder / db).exists():
        return None
    con = duckdb.connect(str(folder / db), read_only=True)
    try:
        rows = con.sql("SELECT progress FROM sqlml_checkpoints").fetchall()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    return rows[0][0] if rows else None


@pytest.mark.slow
def test_sigkill_at_random_points_gives_the_uninterrupted_result(tmp_path):
    write_events(tmp_path / "events", files=30, per_file=600)
    (tmp_path / "job.sql").write_text(SCRIPT)
    clean = start(tmp_path, "clean.duckdb")
    out, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err
    batches = err.count("batch done")
    expected = table(tmp_path, "clean.duckdb")
    assert sum(r[3] for r in expected) == 2 * 18000  # every event in two hopping windows

    rng = random.Random(7)
    kills, offsets = 0, []
    while kills < 20:
        proc = start(tmp_path, "killed.duckdb")
        # a restarted run resumes: a few batches in, wherever that is in the whole job
        if not kill_after(proc, "batch done", rng.randint(1, max(1, batches // 20))):
            break
        kills += 1
        offsets.append(checkpoint(tmp_path, "killed.duckdb"))
    final = start(tmp_path, "killed.duckdb")
    assert final.wait(timeout=300) == 0, final.stderr.read()
    assert kills == 20, f"the job finished after {kills} kills; make it longer"
    assert len({o for o in offsets if o}) >= 10, f"too few kills landed mid-run: {offsets}"
    assert table(tmp_path, "killed.duckdb") == expected
    # and a rerun of a finished job adds nothing
    again = start(tmp_path, "killed.duckdb")
    assert again.wait(timeout=300) == 0
    assert table(tmp_path, "killed.duckdb") == expected


FOLLOW = """CREATE STREAM IF NOT EXISTS clicks (user_id BIGINT, item_id BIGINT, price DOUBLE, purchased BOOLEAN, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (connector = 'files', path = 'events/*.jsonl', format = 'jsonl', follow = true);
CREATE TABLE IF NOT EXISTS per_minute (window_start TIMESTAMP, window_end TIMESTAMP, item_id BIGINT, clicks BIGINT, spend DOUBLE);
INSERT INTO per_minute SELECT window_start, window_end, item_id, count(*) AS clicks, sum(price) AS spend
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, item_id;
"""


@pytest.mark.slow
def test_follow_picks_up_new_files_and_sigterm_stops_cleanly(tmp_path):
    import json as _json

    from tests.test_stream import T0

    events = tmp_path / "events"
    events.mkdir()

    def add_file(index: int, start_s: int, count: int) -> None:
        rows = [
            {
                "user_id": 1,
                "item_id": i % 3,
                "price": 1.0,
                "purchased": False,
                "ts": str(T0 + dt.timedelta(seconds=start_s + i)),
            }
            for i in range(count)
        ]
        tmp = events / f".part-{index}.tmp"
        tmp.write_text("".join(_json.dumps(r) + "\n" for r in rows))
        tmp.rename(events / f"part-{index:03d}.jsonl")

    add_file(0, 0, 90)  # 00:00 - 00:01:30: the first minute closes once the watermark passes 00:01
    (tmp_path / "job.sql").write_text(FOLLOW)
    proc = start(tmp_path, "f.duckdb")
    wait_for(proc, "90 events, 1 windows closed")
    add_file(1, 90, 60)  # to 00:02:30: the second minute closes
    wait_for(proc, "150 events, 2 windows closed")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143  # stopped, and says so: not a silent success
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr and "Stopped by SIGTERM at a checkpoint" in stderr
    assert sorted(r[0].minute for r in table(tmp_path, "f.duckdb")) == [0, 0, 0, 1, 1, 1]
    # restarted, it resumes: a third file closes the third minute, nothing is counted twice
    add_file(2, 150, 60)
    proc = start(tmp_path, "f.duckdb")
    wait_for(proc, "60 events, 1 windows closed")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    rows = table(tmp_path, "f.duckdb")
    assert sorted(r[0].minute for r in rows) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert sum(r[3] for r in rows) == 180


CONTINUOUS = """CREATE STREAM IF NOT EXISTS clicks (user_id BIGINT, item_id BIGINT, price DOUBLE, purchased BOOLEAN, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (connector = 'files', path = 'events/*.jsonl', format = 'jsonl', batch_size = 50);
CREATE TABLE IF NOT EXISTS scored (ts TIMESTAMP, item_id BIGINT, probability DOUBLE, model_version BIGINT);
EXECUTE STATEMENT SET BEGIN
  TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased
    WITH (update = 'retrain', rounds_per_window = 300, promote = 'always', min_data_in_leaf = 3, seed = 1)
  AS SELECT item_id, price, purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE));
  INSERT INTO scored SELECT ts, item_id, probability, model_version FROM PREDICT(MODEL cvr, TABLE clicks);
END;
"""


def model_state(folder) -> tuple:
    """Versions (model text), the metrics log as METRICS shows it, the serving history and the
    scored table."""
    import sqlml
    from sqlml.catalog import Catalog

    catalog = Catalog(folder / "cat")
    texts = [catalog.get("cvr", v).model_text() for v in catalog.versions("cvr")]
    con = sqlml.connect(catalog=folder / "cat")
    log = con.sql("SELECT * EXCLUDE (created_at) FROM METRICS(MODEL cvr)").fetchall()
    history = [(h.version, h.since_us) for h in catalog.serving("cvr").history]
    con.close()
    db = duckdb.connect(str(folder / "db.duckdb"), read_only=True)
    try:
        scored = sorted(db.sql("SELECT * FROM scored").fetchall(), key=lambda r: (r[0], r[1], r[3] or 0))
    finally:
        db.close()
    return texts, log, history, scored


@pytest.mark.slow
def test_continuous_training_survives_sigkill(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for folder in (clean, killed):
        folder.mkdir()
        write_events(folder / "events", files=12, per_file=300)
        (folder / "job.sql").write_text(CONTINUOUS)
    proc = start(clean, "db.duckdb")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    windows = err.count("cvr: window")
    expected = model_state(clean)
    assert len(expected[0]) >= 80 and len(expected[3]) == 12 * 300

    from sqlml.catalog import Catalog

    rng = random.Random(11)
    kills, progress = 0, []
    while kills < 10:
        proc = start(killed, "db.duckdb")
        if not kill_after(proc, "cvr: window", rng.randint(1, max(1, windows // 10))):
            break
        kills += 1
        progress.append(len(Catalog(killed / "cat").versions("cvr")) if (killed / "cat").exists() else 0)
    final = start(killed, "db.duckdb")
    assert final.wait(timeout=300) == 0, final.stderr.read()
    mid_run = {p for p in progress if 0 < p < len(expected[0])}
    assert len(mid_run) >= 4, f"too few kills landed while it trained: versions after each kill {progress}"
    assert model_state(killed) == expected
