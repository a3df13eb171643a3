"""Images and sound in SQL: read_images, read_audio, mfcc, resize_image and media streams, on
real files written here (Pillow, the standard library's wave), against Pillow, SciPy and a
plain per-clip MFCC written below from its definition."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.fft import dct
from scipy.signal import resample_poly

import sqlml
from sqlml.errors import ExecutionError
from sqlml.media import mfcc_batch
from tests.conftest import ROOT

SPOKEN = ROOT / "queries" / "data" / "spoken_digits"


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    """samples: (frames, channels) in -1..1."""
    frames = np.atleast_2d(samples.T).T
    if width == 1:
        data = (np.clip(frames, -1, 1) * 127 + 128).astype(np.uint8)
    else:
        data = (np.clip(frames, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


@pytest.fixture
def con(tmp_path):
    session = sqlml.connect(catalog=tmp_path / "catalog")
    yield session
    session.close()


def test_read_images_gives_pillows_pixels(con, tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    rgb = rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "a.png")
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "b.png")
    rows = con.sql(f"SELECT filename, width, height, channels, pixels FROM read_images('{tmp_path}/*.png') "
                   "ORDER BY filename").fetchall()  # fmt: skip
    assert [r[1:4] for r in rows] == [(5, 6, 1), (3, 4, 3)]
    np.testing.assert_allclose(rows[0][4], gray.ravel() / 255, atol=1e-7)
    np.testing.assert_allclose(rows[1][4], rgb.transpose(2, 0, 1).ravel() / 255, atol=1e-7)  # channel-major
    small = con.sql(f"SELECT width, height, channels, pixels FROM read_images('{tmp_path}/b.png', size := [2, 2], "
                    "grayscale := true)").fetchone()  # fmt: skip
    expected = np.asarray(Image.fromarray(rgb).convert("L").resize((2, 2), Image.Resampling.BILINEAR)) / 255
    assert small[:3] == (2, 2, 1)
    np.testing.assert_allclose(small[3], expected.ravel(), atol=1e-7)
    resized = con.sql(
        f"SELECT resize_image(pixels, height, width, channels, 3, 4) FROM read_images('{tmp_path}/a.png')"
    ).fetchone()[0]
    plane = Image.fromarray((gray / 255).astype(np.float32), mode="F").resize((4, 3), Image.Resampling.BILINEAR)
    np.testing.assert_allclose(resized, np.asarray(plane).ravel(), atol=1e-6)


def test_read_audio_gives_the_samples_mixed_and_resampled(con, tmp_path):
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-0.9, 0.9, (800, 2))
    write_wav(tmp_path / "s.wav", stereo, 8000)
    row = con.sql(f"SELECT sample_rate, channels, duration, samples FROM read_audio('{tmp_path}/s.wav')").fetchone()
    assert row[:3] == (8000, 1, 0.1)
    exact = (stereo * 32767).astype(np.int16) / 32768  # as write_wav stores them
    np.testing.assert_allclose(row[3], exact.mean(axis=1), atol=1e-6)
    both = con.sql(f"SELECT channels, samples FROM read_audio('{tmp_path}/s.wav', mono := false)").fetchone()
    assert both[0] == 2
    np.testing.assert_allclose(both[1], exact.T.ravel(), atol=1e-6)  # each channel's samples in turn
    up = con.sql(
        f"SELECT sample_rate, duration, samples FROM read_audio('{tmp_path}/s.wav', sample_rate := 16000)"
    ).fetchone()
    assert up[:2] == (16000, 0.1)
    np.testing.assert_allclose(up[2], resample_poly(exact, 2, 1, axis=0).mean(axis=1), atol=1e-5)
    write_wav(tmp_path / "b.wav", stereo[:, 0], 8000, width=1)  # 8-bit unsigned PCM
    byte = con.sql(f"SELECT samples FROM read_audio('{tmp_path}/b.wav')").fetchone()[0]
    np.testing.assert_allclose(byte, ((stereo[:, 0] * 127 + 128).astype(np.uint8) - 128.0) / 128, atol=1e-6)


def test_bad_media_is_an_error_naming_the_file_or_a_row_of_nulls(con, tmp_path):
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "img" / "good.png")
    (tmp_path / "img" / "text.png").write_text("not an image")
    (tmp_path / "img" / "empty.png").write_bytes(b"")
    with pytest.raises(
        ExecutionError, match=r"Cannot decode image '.*(empty|text)\.png': (the file is empty|not an image)"
    ):
        con.sql(f"SELECT * FROM read_images('{tmp_path}/img/*.png')").fetchall()
    kept = con.sql(f"SELECT filename, width, pixels IS NULL FROM read_images('{tmp_path}/img/*.png', ignore_errors := true) "
                   "ORDER BY filename").fetchall()  # fmt: skip
    assert [(Path(r[0]).name, r[1], r[2]) for r in kept] == [("empty.png", None, True), ("good.png", 4, False),
                                                             ("text.png", None, True)]  # fmt: skip
    (tmp_path / "wav").mkdir()
    write_wav(tmp_path / "wav" / "ok.wav", np.zeros(160), 8000)
    whole = (tmp_path / "wav" / "ok.wav").read_bytes()
    (tmp_path / "wav" / "cut.wav").write_bytes(whole[: len(whole) - 100])
    with pytest.raises(
        ExecutionError,
        match=r"Cannot decode audio '.*cut\.wav': truncated: the header promises 160 frames, the file holds 110",
    ):
        con.sql(f"SELECT * FROM read_audio('{tmp_path}/wav/*.wav')").fetchall()
    (tmp_path / "wav" / "cut.wav").write_bytes(b"")
    with pytest.raises(ExecutionError, match="cut.wav': the file is empty"):
        con.sql(f"SELECT * FROM read_audio('{tmp_path}/wav/*.wav')").fetchall()
    with pytest.raises(sqlml.SqlmlError, match="No files found"):
        con.sql(f"SELECT * FROM read_audio('{tmp_path}/nothing/*.wav')").fetchall()
    # a file gone between the listing and the reading (the functions read each listed file by name)
    gone = f"'{tmp_path}/wav/gone.wav'"
    assert con.sql(f"SELECT __sqlml_decode_audio(NULL, {gone}, NULL, true, true).error").fetchone()[0] == (
        "cannot read the file (No such file or directory)")  # fmt: skip
    with pytest.raises(ExecutionError, match=r"Cannot decode audio '.*gone\.wav': cannot read the file"):
        con.sql(f"SELECT __sqlml_decode_audio(NULL, {gone}, NULL, true, false)").fetchall()
    # mixed rates: each file keeps its own; sample_rate := n resamples every one
    (tmp_path / "wav" / "cut.wav").unlink()
    write_wav(tmp_path / "wav" / "fast.wav", np.zeros(320), 16000)
    assert con.sql(f"SELECT sample_rate, len(samples) FROM read_audio('{tmp_path}/wav/*.wav') ORDER BY 1").fetchall() == [
        (8000, 160), (16000, 320)]  # fmt: skip
    assert con.sql(f"SELECT DISTINCT sample_rate, len(samples) FROM read_audio('{tmp_path}/wav/*.wav', sample_rate := 8000)").fetchall() == [
        (8000, 160)]  # fmt: skip
    # images of different sizes without size: read, then refused by TRAIN naming the lengths
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "img" / "other.png")
    with pytest.raises(sqlml.SqlmlError, match=r"pixels.*(16|20).*(16|20)"):
        con.sql(f"TRAIN MODEL m USING lightgbm_classifier LABEL y AS SELECT pixels, filename LIKE '%other%' AS y "
                f"FROM read_images('{tmp_path}/img/*.png', ignore_errors := true)")  # fmt: skip
    assert not con.sql("SELECT * FROM MODELS()").fetchall()


def test_paths_are_globs_lists_and_folders_in_name_order(con, tmp_path):
    for name in ("b.png", "a.png", "deep/x/c.png", ".hidden.png", "other.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / name, format="PNG")
    (tmp_path / "folder.png").mkdir()  # a folder whose name matches is not a file

    def names(path: str) -> list[str]:
        rows = con.sql(f"SELECT filename FROM read_images({path})").fetchall()
        return [os.path.relpath(r[0], tmp_path) for r in rows]

    assert names(f"'{tmp_path}/*.png'") == ["a.png", "b.png"]  # sorted; no hidden file, no folder
    assert names(f"'{tmp_path}/**/*.png'") == ["a.png", "b.png", "deep/x/c.png"]  # ** crosses folders
    assert names(f"['{tmp_path}/b.png', '{tmp_path}/*.jpg', '{tmp_path}/b.png']") == ["b.png", "other.jpg"]
    with pytest.raises(sqlml.SqlmlError, match=r"No files found that match the pattern .*\*\.gif"):
        names(f"'{tmp_path}/*.gif'")
    for bad in ("42", "NULL", f"['{tmp_path}/*.png', NULL]"):
        with pytest.raises(sqlml.SqlmlError, match="A media path is a file, a glob or a list of them, not"):
            names(bad)


def test_mfcc_on_several_threads_equals_one_thread(con, tmp_path):
    rng = np.random.default_rng(3)
    rates = [8000, 16000] * 45  # two rates, 45 clips each: two parts of each rate on two threads
    clips = [rng.normal(0, 0.1, rng.integers(400, 3000)).astype(np.float32) for _ in rates]
    one = mfcc_batch(clips, rates)
    np.testing.assert_array_equal(mfcc_batch(clips, rates, threads=2), one)
    np.testing.assert_array_equal(mfcc_batch(clips, rates, threads=3), one)
    for i in (0, 1, 88):  # and each row is the clip's own
        np.testing.assert_array_equal(mfcc_batch([clips[i]], [rates[i]])[0], one[i])
    for i, (x, rate) in enumerate(zip(clips[:70], rates)):
        write_wav(tmp_path / f"{i:03d}.wav", x, rate)
    query = f"SELECT mfcc(samples, sample_rate) FROM read_audio('{tmp_path}/*.wav')"
    con.execute("SET threads = 2")
    two = con.sql(query).fetchall()
    con.execute("SET threads = 1")
    assert con.sql(query).fetchall() == two


def _reference_mfcc(x: np.ndarray, rate: int, n: int = 13, bands: int = 26) -> np.ndarray:
    """MFCC pooled statistics from their definition, one clip, one frame at a time."""
    frame, hop = round(0.025 * rate), round(0.010 * rate)
    nfft = 1 << (frame - 1).bit_length()
    y = np.append(x[0], x[1:] - 0.97 * x[:-1])
    top = 2595 * np.log10(1 + min(rate / 2, 8000) / 700)
    hz = 700 * (10 ** (np.linspace(0, top, bands + 2) / 2595) - 1)
    freqs = np.arange(nfft // 2 + 1) * rate / nfft
    filters = np.array([np.clip(np.minimum((freqs - hz[b]) / (hz[b + 1] - hz[b]), (hz[b + 2] - freqs) / (hz[b + 2] - hz[b + 1])), 0, None)
                        for b in range(bands)])  # fmt: skip
    coeffs, loud = [], []
    for start in range(0, len(x) - frame + 1, hop):
        spectrum = np.abs(np.fft.rfft(y[start : start + frame] * np.hamming(frame), nfft)) ** 2 / nfft
        coeffs.append(dct(np.log(filters @ spectrum + 1e-10), type=2, norm="ortho")[:n])
        loud.append(np.log(spectrum.sum() + 1e-10))
    coeffs_, loud_ = np.array(coeffs), np.array(loud)
    voiced = np.flatnonzero(loud_ >= loud_.max() - np.log(1000))
    span = coeffs_[voiced[0] : voiced[-1] + 1]
    parts = [p.mean(axis=0) for p in np.array_split(span, 4)] if len(span) % 4 == 0 else None
    quarter = (np.arange(len(span)) * 4) // len(span)
    parts = [span[quarter == q].mean(axis=0) for q in range(4)]
    return np.concatenate([span.mean(axis=0), span.std(axis=0), *parts])


def test_mfcc_in_sql_equals_its_definition_clip_by_clip(con, tmp_path):
    rng = np.random.default_rng(2)
    t = np.arange(8000) / 8000
    clips = {
        "tone.wav": (0.1 * rng.normal(size=4000) * (np.arange(4000) > 1500), 8000),
        "chirp.wav": (0.5 * np.sin(2 * np.pi * (300 + 900 * t) * t), 8000),
        "wide.wav": (0.4 * np.sin(2 * np.pi * 2500 * np.arange(5000) / 16000) + 0.05 * rng.normal(size=5000), 16000),
    }
    for name, (x, rate) in clips.items():
        write_wav(tmp_path / name, x, rate)
    rows = con.sql(f"SELECT filename, samples, sample_rate, mfcc(samples, sample_rate) AS f, mfcc(samples, sample_rate, n_mfcc := 5) AS g "
                   f"FROM read_audio('{tmp_path}/*.wav')").fetchall()  # fmt: skip
    for filename, samples, rate, f, g in rows:
        reference = _reference_mfcc(np.asarray(samples, dtype=np.float64), rate)
        assert len(f) == 78 and len(g) == 30
        np.testing.assert_allclose(f, reference, rtol=1e-4, atol=1e-3), filename
    with pytest.raises(ExecutionError, match="n_mfcc must be a whole number from 1 to 26"):
        con.sql(f"SELECT mfcc(samples, sample_rate, n_mfcc := 40) FROM read_audio('{tmp_path}/*.wav')").fetchall()
    assert con.sql("SELECT mfcc(NULL, 8000) IS NULL").fetchone() == (True,)


def test_a_media_stream_is_one_event_per_file_at_its_modification_time(con, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    base = 1_750_000_000  # 2025-06-15 15:06:40 UTC
    for i in range(6):
        write_wav(folder / f"{i}.wav", np.full(80, 0.1 * i), 8000)
        os.utime(folder / f"{i}.wav", (base + 20 * i, base + 20 * i))
    (folder / "9.wav").write_bytes(b"RIFF")  # a broken file: an error row, not a lost one
    con.execute(f"""CREATE STREAM clips (filename VARCHAR, last_modified TIMESTAMP, samples FLOAT[],
        WATERMARK FOR last_modified AS last_modified) WITH (connector = 'files', path = '{folder}/*.wav',
        format = 'audio', batch_size = 4)""")
    con.execute("CREATE TABLE per_minute (window_start TIMESTAMP, clips BIGINT, loudness DOUBLE)")
    con.execute("INSERT INTO per_minute SELECT window_start, count(*), round(avg(list_avg(samples)), 3) "
                "FROM TABLE(TUMBLE(TABLE clips, DESCRIPTOR(last_modified), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end")  # fmt: skip
    windows = con.sql("SELECT strftime(window_start, '%H:%M'), clips, loudness FROM per_minute ORDER BY 1").fetchall()
    assert windows == [("15:06", 1, 0.0), ("15:07", 3, 0.2), ("15:08", 2, 0.45)]
    errors = con.sql("SELECT file, error FROM clips_errors").fetchall()
    assert len(errors) == 1 and errors[0][0].endswith("9.wav") and "not a PCM WAV file" in errors[0][1]
    with pytest.raises(sqlml.SqlmlError, match="has no column 'pixels'"):
        con.execute(f"CREATE STREAM bad (filename VARCHAR, last_modified TIMESTAMP, pixels FLOAT[], WATERMARK FOR "
                    f"last_modified AS last_modified) WITH (connector = 'files', path = '{folder}/*.wav', format = 'audio')")  # fmt: skip


@pytest.mark.slow
def test_spoken_digits_are_recognised_in_voices_never_heard(con):
    """Five folds of four held-out voices each (the pack's 20 voices): LightGBM on pooled MFCC."""
    con.execute(f"""CREATE TABLE clips AS SELECT regexp_extract(filename, '([0-9])_[^/]*$', 1)::INTEGER AS digit,
        regexp_extract(filename, '_([^_/]+)_[0-9]+\\.wav$', 1) AS voice, mfcc(samples, sample_rate) AS features
        FROM read_audio('{SPOKEN}/*.wav')""")
    voices = [r[0] for r in con.sql("SELECT DISTINCT voice FROM clips ORDER BY voice").fetchall()]
    assert len(voices) == 20 and con.sql("SELECT count(*) FROM clips").fetchone() == (1000,)
    accuracies = []
    for k in range(5):
        held = "(" + ", ".join(f"'{v}'" for v in voices[k::5]) + ")"
        con.sql(f"TRAIN MODEL d{k} USING lightgbm_classifier LABEL digit WITH (num_boost_round = 300, extra_trees = true, "
                f"feature_fraction = 0.5, seed = 1, num_threads = 1) AS SELECT features, digit FROM clips WHERE voice NOT IN {held}")  # fmt: skip
        accuracies.append(con.sql(f"SELECT accuracy FROM EVALUATE(MODEL d{k}, (SELECT features, digit FROM clips "
                                  f"WHERE voice IN {held}))").fetchone()[0])  # fmt: skip
    assert np.mean(accuracies) >= 0.90, accuracies
    assert min(accuracies) >= 0.85, accuracies


@pytest.mark.slow
def test_image_digits_reach_their_accuracy(tmp_path):
    from tests.conftest import run_cli

    (tmp_path / "queries").symlink_to(ROOT / "queries")
    proc = run_cli(
        "run", "queries/image_digits.sql", "--catalog", str(tmp_path / "cat"), "--format", "csv", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(",") for line in proc.stdout.splitlines() if line.startswith(('"cnn"', '"lightgbm on'))]
    accuracy = {name.strip('"'): float(value) for name, value, *_ in rows}
    assert accuracy["cnn"] >= 0.98 and accuracy["lightgbm on pixels"] >= 0.97, accuracy


@pytest.mark.slow
def test_the_generator_makes_the_committed_clips(tmp_path):
    """bench/spoken_digits.py is deterministic by seed: its first voice's clips are the committed ones,
    byte for byte, with the espeak-ng version that made them."""
    import shutil
    import subprocess
    import sys

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    code = ("import sys; sys.path.insert(0, 'bench'); import spoken_digits as s; s.VOICES = s.VOICES[:1]; "
            f"print(s.generate(__import__('pathlib').Path({str(tmp_path)!r}), per_voice=5))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "50"
    made = sorted(tmp_path.glob("*.wav"))
    assert len(made) == 50
    with wave.open(str(made[0])) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 1, 1)
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    if " 1.51 " in version:  # the version that made the pack (bench/spoken_digits.py's PACK_ESPEAK)
        assert all((SPOKEN / p.name).read_bytes() == p.read_bytes() for p in made)


@pytest.mark.slow
def test_continuous_training_on_a_stream_of_clips_labelled_by_their_names(con, tmp_path):
    """600 clips arriving over six minutes in a random order of digits and voices; a TRAIN over
    HOP windows learns window by window, each window first scored by the version before it."""
    import random
    import shutil

    folder = tmp_path / "clips"
    folder.mkdir()
    clips = sorted(SPOKEN.glob("*.wav"))
    random.Random(0).shuffle(clips)
    base = 1_750_000_000  # 15:06:40 UTC
    for i, clip in enumerate(clips[:600]):
        target = folder / f"{i:04d}_{clip.name}"  # name order is arrival order
        shutil.copy(clip, target)
        os.utime(target, (base + 0.6 * i, base + 0.6 * i))
    con.execute(f"""CREATE STREAM clips (filename VARCHAR, last_modified TIMESTAMP, sample_rate INTEGER, samples FLOAT[],
        WATERMARK FOR last_modified AS last_modified) WITH (connector = 'files', path = '{folder}/*.wav', format = 'audio',
        batch_size = 64)""")  # fmt: skip
    con.sql("""TRAIN MODEL live USING lightgbm_classifier LABEL digit WITH (update = 'retrain', num_threads = 1, seed = 1)
        AS SELECT mfcc(samples, sample_rate) AS features, regexp_extract(filename, '/[0-9]+_([0-9])_', 1)::INTEGER AS digit
        FROM TABLE(HOP(TABLE clips, DESCRIPTOR(last_modified), INTERVAL '1' MINUTE, INTERVAL '2' MINUTE))""")  # fmt: skip
    windows = con.sql(
        "SELECT strftime(window_end, '%H:%M'), version, accuracy FROM METRICS(MODEL live) ORDER BY window_end"
    ).fetchall()
    assert [w[0] for w in windows] == ["15:07", "15:08", "15:09", "15:10", "15:11", "15:12", "15:13"]
    assert windows[0][2] is None  # nothing served before the first window
    assert all(w[2] > 0.6 for w in windows[2:]), windows  # ten digits: chance is 0.1
    assert [w[1] for w in windows] == [None, 1, 2, 3, 4, 5, 6]  # each window scored by the version of the one before
