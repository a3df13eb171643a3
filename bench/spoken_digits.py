"""Generate the spoken-digits set with espeak-ng: deterministic by seed, nothing downloaded.

    python bench/spoken_digits.py OUT_FOLDER [--per-voice 5] [--seed 0] [--rate 8000]

Each clip is one digit word ("zero" .. "nine") said by one of VOICES (espeak-ng's English
accents with a voice variant), at a speed of 110-280 words per minute and a pitch of 20-80,
placed at a random offset in a 1 s window, with white background noise at 5-30 dB SNR, as
an 8-bit PCM WAV file named `<digit>_<voice>_<take>.wav`. The set committed in
`queries/data/spoken_digits/` is this script's output with its defaults (1,000 clips, about
6 MB); the tests read it and need neither espeak-ng nor a network. espeak-ng is a Debian
package: `apt-get install espeak-ng`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
# 20 voices, an accent and a variant each; tests hold some out whole to measure generalisation
VOICES = tuple(f"{ACCENTS[i % len(ACCENTS)]}+{VARIANTS[(5 * i) % len(VARIANTS)]}" for i in range(20))
PACK_ESPEAK = "1.51"  # the espeak-ng version that made the committed pack (Debian 12's)


def speak(word: str, voice: str, speed: int, pitch: int, rate: int) -> np.ndarray:
    """The word said by espeak-ng, at `rate` Hz, as floats, silence trimmed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "w.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
                       check=True, capture_output=True)  # fmt: skip
        with wave.open(str(path)) as w:
            source = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768
    g = np.gcd(rate, source)
    x = resample_poly(x, rate // g, source // g)
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    return x[loud[0] : loud[-1] + 1]


def clip(speech: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Speech at a random offset in a 1 s window (the window's end trimmed to the speech), with
    white noise at 5-30 dB SNR, as 8-bit unsigned PCM samples."""
    speech = 0.5 * speech / np.abs(speech).max()
    offset = int(rng.uniform(0, max(0.0, 1 - len(speech) / rate)) * rate)
    x = np.zeros(offset + len(speech) + rate // 20)
    x[offset : offset + len(speech)] = speech
    snr = rng.uniform(5, 30)
    x += rng.normal(0, np.sqrt(np.mean(speech**2) / 10 ** (snr / 10)), len(x))
    return (np.clip(x, -1, 1) * 127 + 128).astype(np.uint8)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(samples.dtype.itemsize)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def generate(out: Path, per_voice: int = 5, seed: int = 0, rate: int = 8000) -> int:
    """Write per_voice takes of every digit by every voice; the number of clips."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    count = 0
    for voice in VOICES:
        for digit, word in enumerate(WORDS):
            for take in range(per_voice):
                speed, pitch = int(rng.integers(110, 281)), int(rng.integers(20, 81))
                samples = clip(speak(word, voice, speed, pitch, rate), rate, rng)
                write_wav(out / f"{digit}_{voice}_{take}.wav", samples, rate)
                count += 1
    return count


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-voice", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=int, default=8000)
    args = parser.parse_args()
    n = generate(args.out, args.per_voice, args.seed, args.rate)
    size = sum(os.path.getsize(p) for p in args.out.glob("*.wav"))
    print(f"{n} clips, {size / 1e6:.1f} MB in {args.out}")
