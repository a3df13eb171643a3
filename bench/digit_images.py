"""Write scikit-learn's handwritten digits (1,797 images of 8 x 8 pixels) as PNG files.

    python bench/digit_images.py OUT_FOLDER

Files are named `<digit>_<index>.png` (8-bit grayscale, the 0..16 intensities scaled to
0..255). `queries/data/digits/` is this script's output; `queries/image_digits.sql` reads it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def write(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        pixels = np.round(image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(out / f"{label}_{i:04d}.png", optimize=True)
    return len(digits.target)


if __name__ == "__main__":
    print(write(Path(sys.argv[1])), "images written")
