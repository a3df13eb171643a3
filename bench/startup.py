"""How long `sqlml --help` takes to start (target: under 0.3 s), against `python -c pass`; and
`import sqlml` and the first `sqlml.connect` (which load no model library: LightGBM, scikit-learn,
ONNX Runtime and PyTorch load when a statement needs them).

python bench/startup.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    sqlml = shutil.which("sqlml") or sys.exit("install sqlml first (pip install -e .)")
    python = wall([sys.executable, "-c", "pass"], args.repeats)
    help_ = wall([sqlml, "--help"], args.repeats)
    module = wall([sys.executable, "-c", "import sqlml"], args.repeats)
    api = wall([sys.executable, "-c", "import sqlml; sqlml.connect"], args.repeats)
    print(f"python -c pass : {python:.3f} s (median of {args.repeats})")
    print(f"sqlml --help   : {help_:.3f} s (median of {args.repeats})  (target < 0.3 s)")
    print(f"import sqlml   : {module:.3f} s (median of {args.repeats})")
    print(f"sqlml.connect  : {api:.3f} s (median of {args.repeats}; DuckDB, Arrow and the engine, no model library)")


if __name__ == "__main__":
    main()
