"""PBO speed: `pbo_cscv` on 500 tests × 60 configs with S = 16 (12,870 combinations).

    .venv/bin/python benchmarks/bench_overfit.py [--tests 500] [--configs 60] [--splits 16] [--runs 7]

The matrix is seeded iid normal noise (the speed does not depend on the values); timed is
one `pbo_cscv` call, median and best of `--runs` after a warm-up call. Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine.overfit import pbo_cscv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=500)
    ap.add_argument("--configs", type=int, default=60)
    ap.add_argument("--splits", type=int, default=16)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    perf = np.random.default_rng(args.seed).normal(0.0, 0.01, size=(args.tests, args.configs))
    result = pbo_cscv(perf, n_splits=args.splits)
    seconds = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        pbo_cscv(perf, n_splits=args.splits)
        seconds.append(time.perf_counter() - t0)
    print(f"pbo_cscv, {args.tests} tests x {args.configs} configs, S={result.n_splits} "
          f"({result.combinations:,} combinations): median {statistics.median(seconds) * 1000:.1f} ms, "
          f"best {min(seconds) * 1000:.1f} ms over {args.runs} runs (PBO of noise: {result.pbo:.3f})")


if __name__ == "__main__":
    main()
