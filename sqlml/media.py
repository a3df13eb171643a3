"""Images and sound in SQL: decoding files into vectors, and speech features.

Table functions (DuckDB table macros over a function listing the files, one row each, in
batches of DuckDB's vector size; a path that matches nothing is an error, as for `read_csv`):

- ``read_images(path [, size := [h, w]] [, grayscale := true] [, ignore_errors := true])`` ->
  ``filename, width, height, channels, pixels FLOAT[]``: pixels scaled to 0..1, channel-major
  (c, h, w) as `cnn_classifier`'s `image_shape` reads them; `width` and `height` are after `size`.
- ``read_audio(path [, sample_rate := hz] [, mono := false] [, ignore_errors := true])`` ->
  ``filename, sample_rate, channels, duration, samples FLOAT[]``: PCM WAV, samples in -1..1,
  the channels' mean (or, with ``mono := false``, each channel's samples one after the other),
  resampled to `sample_rate` when given.

A file that cannot be decoded (not an image, an empty file, a truncated WAV) is an error naming
it, and the statement changes nothing; with ``ignore_errors := true`` its row is kept with NULL
values (count them with ``WHERE pixels IS NULL``). Decoding is Pillow's and the standard
library's `wave`; resampling is SciPy's `resample_poly`.

Scalar functions, vectorised over DuckDB's batches (Arrow UDFs):

- ``mfcc(samples, sample_rate [, n_mfcc := 13])`` -> ``FLOAT[6 * n_mfcc]``: pooled MFCC statistics
  (see `mfcc_batch`), the features that recognise spoken words;
- ``resize_image(pixels, height, width, channels, new_height, new_width)`` -> ``FLOAT[]``.

>>> import numpy as np
>>> t = np.arange(8000) / 8000
>>> features = mfcc_batch([np.sin(2 * np.pi * 440 * t)], [8000], 13)
>>> features.shape
(1, 78)
"""

from __future__ import annotations

import glob
import io
import json
import os
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import duckdb.func
import numpy as np
import pyarrow as pa

from sqlml.errors import ExecutionError
from sqlml.functions import create_function
from sqlml.scoring import one_array, reported

_IMAGE = "STRUCT(width INTEGER, height INTEGER, channels INTEGER, pixels FLOAT[], error VARCHAR)"
_AUDIO = "STRUCT(sample_rate INTEGER, channels INTEGER, duration DOUBLE, samples FLOAT[], error VARCHAR)"
_DECODED = {
    "image": ("width", "height", "channels", "pixels"),
    "audio": ("sample_rate", "channels", "duration", "samples"),
}
# the columns a stream of media files has (`CREATE STREAM ... WITH (format = 'audio' | 'image')`)
MEDIA_COLUMNS = {kind: ("filename", "last_modified", *fields) for kind, fields in _DECODED.items()}
# the files of a path (a glob or a list of them) in name order, one row each; none matching is an error, as for
# read_csv. Listed and read by Python (the decode functions read a file when its content is NULL): 3-4x faster than
# read_blob, whose one file per chunk DuckDB must then gather into full chunks for the functions.
_FILES = "(SELECT unnest(__sqlml_files(to_json(path))) AS filename)"
_MACROS = (
    "CREATE OR REPLACE TEMP MACRO read_images(path, size := NULL, grayscale := false, ignore_errors := false) "
    "AS TABLE SELECT filename, d.width, d.height, d.channels, d.pixels FROM (SELECT filename, "
    f"__sqlml_decode_image(NULL, filename, CAST(size AS INTEGER[]), grayscale, ignore_errors) AS d FROM {_FILES})",
    "CREATE OR REPLACE TEMP MACRO read_audio(path, sample_rate := NULL, mono := true, ignore_errors := false) "
    "AS TABLE SELECT filename, d.sample_rate, d.channels, d.duration, d.samples FROM (SELECT filename, "
    f"__sqlml_decode_audio(NULL, filename, CAST(sample_rate AS INTEGER), mono, ignore_errors) AS d FROM {_FILES})",
    "CREATE OR REPLACE TEMP MACRO mfcc(samples, sample_rate, n_mfcc := 13) AS "
    "__sqlml_mfcc(samples, sample_rate, n_mfcc, CAST(current_setting('threads') AS INTEGER))",
)


def files(path: str | list[str] | None) -> list[str]:
    """The files a path names (a file, a glob or a list of them), sorted: `*`, `?` and `[...]`
    within a folder, `**` across folders, as DuckDB's glob; folders and hidden files are left out.

    >>> import sqlml.media
    >>> files(sqlml.media.__file__) == [sqlml.media.__file__]
    True
    """
    patterns = [path] if isinstance(path, str) else path
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ExecutionError(
            f"A media path is a file, a glob or a list of them, not {json.dumps(path)}.",
            hint="read_images('imgs/*.png') or read_audio(['a/*.wav', 'b/*.wav']).",
        )
    found = {f for pattern in patterns for f in glob.glob(os.path.expanduser(pattern), recursive=True)}
    names = sorted(f for f in found if os.path.isfile(f))
    if not names:
        shown = patterns[0] if len(patterns) == 1 else patterns
        remote = any("://" in pattern for pattern in patterns)
        raise ExecutionError(
            f"No files found that match the pattern {shown!r}.",
            hint="Media files are read from local folders: copy remote ones first." if remote
            else "Check the path; a relative path starts from the folder sqlml runs in.",
        )  # fmt: skip
    return names


def _files_udf(paths: pa.Array) -> pa.Array:
    return pa.array([files(None if p is None else json.loads(p)) for p in paths.to_pylist()], pa.list_(pa.string()))


# -- decoding ----------------------------------------------------------------------------
def decode_image(data: bytes, size: tuple[int, int] | None, grayscale: bool) -> tuple[int, int, int, np.ndarray]:
    """width, height, channels and the pixels (c, h, w) flattened, in 0..1, of an image file."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError("the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            mode = "L" if grayscale or opened.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
            image = opened.convert(mode)
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None
    except (OSError, SyntaxError) as err:  # truncated or corrupt image data
        raise ValueError(str(err)) from None
    height, width = array.shape[:2]
    pixels = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return width, height, pixels.shape[0], pixels.ravel()


def decode_wav(data: bytes, rate: int | None, mono: bool) -> tuple[int, int, float, np.ndarray]:
    """sample_rate, channels, duration (s) and the samples in -1..1 of a PCM WAV file."""
    if not data:
        raise ValueError("the file is empty")
    try:
        with wave.open(io.BytesIO(data)) as w:
            channels, width, source, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise ValueError(f"not a PCM WAV file ({err})") from None
    got = len(raw) // (width * channels)
    if got < frames:
        raise ValueError(f"truncated: the header promises {frames} frames, the file holds {got}")
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        x = (((b[:, 2] << 24) | (b[:, 1] << 16) | (b[:, 0] << 8)) >> 8).astype(np.float32) / 2**23
    else:
        x = np.frombuffer(raw, {2: np.int16, 4: np.int32}[width]).astype(np.float32) / 2 ** (8 * width - 1)
    x = x.reshape(-1, channels)
    if rate is not None and rate != source:
        from scipy.signal import resample_poly

        g = int(np.gcd(rate, source))
        x = resample_poly(x, rate // g, source // g, axis=0).astype(np.float32)
        source = rate
    out = x[:, 0] if channels == 1 else x.mean(axis=1) if mono else x.T.ravel()
    return source, 1 if mono else channels, len(x) / source, out


def _vectors(column: pa.Array | pa.ChunkedArray) -> list[np.ndarray | None]:
    """A LIST column's rows as float32 NumPy views of one buffer (None: NULL), not Python lists."""
    column = one_array(column)
    if column.type != pa.list_(pa.float32()):
        column = column.cast(pa.list_(pa.float32()))
    offsets = column.offsets.to_numpy()
    flat = column.values.to_numpy(zero_copy_only=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return [flat[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(column))]


def _list(chunks: list[np.ndarray | None]) -> pa.Array:
    """A LIST(FLOAT) array from NumPy vectors (None: NULL), without a loop over values."""
    lengths = np.array([0 if c is None else len(c) for c in chunks], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
    values = np.concatenate([c for c in chunks if c is not None] or [np.zeros(0, np.float32)]).astype(np.float32)
    mask = pa.array([c is None for c in chunks])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), mask=mask)


def media_relation(kind: str, paths: list[str]) -> str:
    """SQL reading media files into a stream's columns, with `__media_error` (the reason a file
    could not be decoded, its other columns then NULL)."""
    listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    decode = ("__sqlml_decode_image(content, filename, NULL, false, true)" if kind == "image"
              else "__sqlml_decode_audio(content, filename, NULL, true, true)")  # fmt: skip
    fields = ", ".join(f"d.{f} AS {f}" for f in _DECODED[kind])
    # (the sort gathers read_blob's chunks, one file each, into full ones for the decoding function)
    return (
        f"(SELECT filename, timezone('UTC', last_modified) AS last_modified, {fields}, d.error AS __media_error "
        f"FROM (SELECT filename, last_modified, {decode} AS d FROM (SELECT * FROM read_blob({listed}) "
        "ORDER BY filename)))"
    )


def _decoded(kind: str, contents: pa.Array, names: pa.Array, ignore: pa.Array, decode: Any) -> list[Any]:
    """Each file's decoded fields, or the reason (a str) for a file that cannot be decoded and may be kept.
    A NULL content is read from the file."""
    out: list[Any] = []
    for data, name, keep in zip(contents.to_pylist(), names.to_pylist(), ignore.to_pylist()):
        try:
            out.append(decode(_read(name) if data is None else data))
        except ValueError as err:
            if not keep:
                function = "read_images" if kind == "image" else "read_audio"
                raise ExecutionError(
                    f"Cannot decode {kind} '{name}': {err}.",
                    hint=f"Remove or fix the file, or keep a row of NULLs for it: {function}(..., ignore_errors := true).",
                ) from None
            out.append(str(err))
    return out


def _read(name: str) -> bytes:
    try:
        with open(name, "rb") as f:
            return f.read()
    except OSError as err:
        raise ValueError(f"cannot read the file ({err.strerror or err})") from None


def _struct(rows: list[Any], fields: tuple[str, ...], types: list[pa.DataType]) -> pa.StructArray:
    """Decoded rows (tuples; a str for a file that failed) as the decode functions' struct."""
    good = [None if isinstance(r, str) else r for r in rows]
    arrays = [pa.array([None if r is None else r[i] for r in good], t) for i, t in enumerate(types)]
    arrays.append(_list([None if r is None else r[len(types)] for r in good]))
    arrays.append(pa.array([r if isinstance(r, str) else None for r in rows], pa.string()))
    return pa.StructArray.from_arrays(arrays, names=[*fields, "error"])


def _image_udf(contents: pa.Array, names: pa.Array, size: pa.Array, gray: pa.Array, ignore: pa.Array) -> pa.Array:
    options = size[0].as_py() if len(size) else None
    if options is not None and (len(options) != 2 or not all(isinstance(v, int) and 0 < v <= 16384 for v in options)):
        raise ExecutionError(f"read_images' size must be [height, width] in pixels, not {options}.",
                             hint="read_images('imgs/*.png', size := [28, 28])")  # fmt: skip
    grayscale = bool(gray[0].as_py()) if len(gray) else False
    rows = _decoded("image", contents, names, ignore, lambda d: decode_image(d, options, grayscale))
    return _struct(rows, _DECODED["image"], [pa.int32()] * 3)


def _audio_udf(contents: pa.Array, names: pa.Array, rate: pa.Array, mono: pa.Array, ignore: pa.Array) -> pa.Array:
    target = rate[0].as_py() if len(rate) else None
    if target is not None and not 1000 <= target <= 384_000:
        raise ExecutionError(f"read_audio's sample_rate must be from 1000 to 384000 Hz, not {target}.")
    as_mono = bool(mono[0].as_py()) if len(mono) else True
    rows = _decoded("audio", contents, names, ignore, lambda d: decode_wav(d, target, as_mono))
    return _struct(rows, _DECODED["audio"], [pa.int32(), pa.int32(), pa.float64()])


# -- speech features -----------------------------------------------------------------------
def _mel_filters(rate: int, nfft: int, bands: int) -> np.ndarray:
    """Triangular mel filters (bands, nfft // 2 + 1) from 0 Hz to min(rate / 2, 8 kHz)."""

    def mel(f: Any) -> Any:
        return 2595 * np.log10(1 + np.asarray(f) / 700)

    edges = 700 * (10 ** (np.linspace(0, mel(min(rate / 2, 8000)), bands + 2) / 2595) - 1)
    freqs = np.arange(nfft // 2 + 1) * rate / nfft
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.maximum(0, np.minimum(rising, falling))


def _dct_matrix(bands: int, n: int) -> np.ndarray:
    """The orthonormal DCT-II's first n rows (bands inputs)."""
    k, i = np.arange(n)[:, None], np.arange(bands)[None, :]
    m = np.cos(np.pi * k * (2 * i + 1) / (2 * bands)) * np.sqrt(2 / bands)
    m[0] /= np.sqrt(2)
    return m


SEGMENTS = 4  # the voiced frames in four equal parts, each pooled by its mean


def mfcc_batch(
    clips: list[np.ndarray], rates: list[int], n_mfcc: int = 13, bands: int = 26, threads: int = 1
) -> np.ndarray:
    """Pooled MFCC statistics of each clip: (clips, 6 * n_mfcc) float32.

    Frames of 25 ms every 10 ms (pre-emphasis 0.97, Hamming window), log mel energies in
    `bands` bands up to min(rate / 2, 8 kHz), their DCT's first `n_mfcc` coefficients. The
    voiced frames are those from the first to the last frame within 30 dB of the clip's
    loudest; the features are their coefficients' mean, standard deviation and the means of
    their SEGMENTS (4) equal parts in time (the word's course). Clips of one rate are computed
    together, as padded matrices of at most 256 clips; a clip shorter than a frame gives zeros.
    With `threads` > 1 the matrices are computed on that many threads (NumPy's FFT and matrix
    products release the GIL); the numbers are the same.
    """
    out = np.zeros((len(clips), (2 + SEGMENTS) * n_mfcc), dtype=np.float32)
    parts = []
    for rate in sorted(set(rates)):
        rows = np.flatnonzero(np.asarray(rates) == rate)
        count = max(1, -(-len(rows) // 256), min(threads, len(rows) // 32))  # bounded memory; 32+ clips a thread
        parts += [(part, rate) for part in np.array_split(rows, count)]

    def compute(part: np.ndarray, rate: int) -> None:
        out[part] = _mfcc_same_rate([clips[i] for i in part], rate, n_mfcc, bands)

    if threads > 1 and len(parts) > 1:
        with ThreadPoolExecutor(min(threads, len(parts))) as pool:
            list(pool.map(lambda job: compute(*job), parts))  # list(): re-raises a worker's error
    else:
        for part, rate in parts:
            compute(part, rate)
    return out


def _mfcc_same_rate(clips: list[np.ndarray], rate: int, n_mfcc: int, bands: int) -> np.ndarray:
    frame, hop = int(round(0.025 * rate)), int(round(0.010 * rate))
    nfft = 1 << (frame - 1).bit_length()
    lengths = np.array([len(c) for c in clips])
    width = max(int(lengths.max()), frame)
    padded = np.zeros((len(clips), width), dtype=np.float64)
    for i, c in enumerate(clips):  # one copy per clip into the batch's matrix
        padded[i, : len(c)] = c
    emphasised = np.concatenate([padded[:, :1], padded[:, 1:] - 0.97 * padded[:, :-1]], axis=1)
    frames = np.lib.stride_tricks.sliding_window_view(emphasised, frame, axis=1)[:, ::hop] * np.hamming(frame)
    count = frames.shape[1]
    valid = np.arange(count)[None, :] * hop + frame <= lengths[:, None]  # frames inside each clip
    power = np.abs(np.fft.rfft(frames, nfft, axis=2)) ** 2 / nfft
    energy = np.log(power @ _mel_filters(rate, nfft, bands).T + 1e-10)
    coeffs = energy @ _dct_matrix(bands, n_mfcc).T  # (clips, frames, n_mfcc)
    loud = np.log(power.sum(axis=2) + 1e-10)
    loud = np.where(valid, loud, -np.inf)
    voiced = valid & (loud >= loud.max(axis=1, keepdims=True) - np.log(1000.0))  # within 30 dB of the loudest
    idx = np.arange(count)[None, :]
    first = np.where(voiced.any(axis=1), np.argmax(voiced, axis=1), 0)
    last = np.where(voiced.any(axis=1), count - 1 - np.argmax(voiced[:, ::-1], axis=1), -1)
    span = (idx >= first[:, None]) & (idx <= last[:, None])
    n = np.maximum(span.sum(axis=1, keepdims=True), 1)
    weights = span / n
    mean = np.einsum("cf,cfk->ck", weights, coeffs)
    std = np.sqrt(np.maximum(np.einsum("cf,cfk->ck", weights, coeffs**2) - mean**2, 0))
    part = np.clip(((idx - first[:, None]) * SEGMENTS) // np.maximum(last - first + 1, 1)[:, None], 0, SEGMENTS - 1)
    parts = []
    for s in range(SEGMENTS):
        member = span & (part == s)
        parts.append(np.einsum("cf,cfk->ck", member / np.maximum(member.sum(axis=1, keepdims=True), 1), coeffs))
    return np.concatenate([mean, std, *parts], axis=1).astype(np.float32)


def _mfcc_udf(samples: pa.Array, rates: pa.Array, n: pa.Array, threads: pa.Array) -> pa.Array:
    n_mfcc = n[0].as_py() if len(n) else 13
    if not isinstance(n_mfcc, int) or not 1 <= n_mfcc <= 26:
        raise ExecutionError(f"mfcc's n_mfcc must be a whole number from 1 to 26, not {n_mfcc}.")
    vectors = _vectors(samples)
    rates_valid = rates.is_valid().to_numpy(zero_copy_only=False)
    present = np.flatnonzero([v is not None and ok for v, ok in zip(vectors, rates_valid)])
    clips = [v for v in (vectors[i] for i in present) if v is not None]
    rate_values = rates.to_numpy(zero_copy_only=False)
    if len(present) and (rate_values[present] <= 0).any():
        raise ExecutionError("mfcc's sample_rate must be above 0 Hz.")
    workers = threads[0].as_py() if len(threads) else 1  # DuckDB's `threads` setting
    features = mfcc_batch(clips, [int(rate_values[i]) for i in present], n_mfcc, threads=max(1, workers or 1))
    out: list[np.ndarray | None] = [None] * len(samples)
    for row, vector in zip(present, features):
        out[row] = vector
    return _list(out)


def _resize_udf(pixels: pa.Array, h: pa.Array, w: pa.Array, c: pa.Array, nh: pa.Array, nw: pa.Array) -> pa.Array:
    from PIL import Image

    out: list[np.ndarray | None] = []
    for values, height, width, channels, new_h, new_w in zip(
        _vectors(pixels), h.to_pylist(), w.to_pylist(), c.to_pylist(), nh.to_pylist(), nw.to_pylist()
    ):  # fmt: skip
        if values is None or None in (height, width, channels, new_h, new_w):
            out.append(None)
            continue
        if not (0 < new_h <= 16384 and 0 < new_w <= 16384):
            raise ExecutionError(f"resize_image's new size must be 1 to 16384 pixels a side, not {new_h} x {new_w}.")
        if len(values) != height * width * channels:
            raise ExecutionError(
                f"resize_image got {len(values)} pixels for a {channels} x {height} x {width} image.",
                hint="Pass the image's own height, width and channels (read_images gives them).",
            )
        array = values.reshape(channels, height, width)
        planes = [np.asarray(Image.fromarray(p, mode="F").resize((new_w, new_h), Image.Resampling.BILINEAR))
                  for p in array]  # fmt: skip
        out.append(np.stack(planes).ravel())
    return _list(out)


def register(con: Any) -> None:
    """Create the media functions on a DuckDB connection (once per connection)."""
    udfs: list[tuple[str, Callable[..., pa.Array], list[str], str]] = [
        ("__sqlml_decode_image", _image_udf, ["BLOB", "VARCHAR", "INTEGER[]", "BOOLEAN", "BOOLEAN"], _IMAGE),
        ("__sqlml_decode_audio", _audio_udf, ["BLOB", "VARCHAR", "INTEGER", "BOOLEAN", "BOOLEAN"], _AUDIO),
        ("__sqlml_mfcc", _mfcc_udf, ["FLOAT[]", "INTEGER", "INTEGER", "INTEGER"], "FLOAT[]"),
        ("__sqlml_files", _files_udf, ["VARCHAR"], "VARCHAR[]"),
        ("resize_image", _resize_udf, ["FLOAT[]", *["INTEGER"] * 5], "FLOAT[]"),
    ]
    for name, fn, args, result in udfs:
        create_function(con, name, reported(fn), args, result, null_handling=duckdb.func.SPECIAL)
    for macro in _MACROS:
        con.execute(macro)
