"""Time single-row and small-batch prediction: the library's fast path vs sklearn's predict.

Run: ``python packages/iris-model/benchmarks/fast_path.py`` (or ``nox -s bench`` for the
whole server). Prints the median of several timeit repeats per call, and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np

import iris_model


def _median_us(fn: object, number: int, repeat: int) -> float:
    times = timeit.repeat(fn, number=number, repeat=repeat)  # type: ignore[arg-type]
    return statistics.median(times) / number * 1e6


def main() -> None:
    """Print a table of per-call times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats (default: 7)")
    args = parser.parse_args()

    model, _ = iris_model.train()
    estimator = model.estimator
    row = [5.1, 3.5, 1.4, 0.2]
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 8, size=(100, 4)).round(1).tolist()

    cases = {
        "1 row, predict": (
            lambda: model.predict(row),
            lambda: estimator.predict(np.asarray(row, dtype=np.float64).reshape(1, -1)),
            5000,
        ),
        "1 row, predict_proba": (
            lambda: model.predict_proba(row),
            lambda: estimator.predict_proba(np.asarray(row, dtype=np.float64).reshape(1, -1)),
            5000,
        ),
        "100 rows, predict": (
            lambda: model.predict(batch),
            lambda: estimator.predict(np.asarray(batch, dtype=np.float64)),
            1000,
        ),
    }
    print(f"{'case':<22} {'iris_model µs':>14} {'sklearn µs':>11} {'speed-up':>9}")
    for name, (ours, theirs, number) in cases.items():
        ours_us = _median_us(ours, number, args.repeat)
        theirs_us = _median_us(theirs, number, args.repeat)
        print(f"{name:<22} {ours_us:14.1f} {theirs_us:11.1f} {theirs_us / ours_us:8.1f}x")
    print("iris_model times include its strict validation of Python lists.")


if __name__ == "__main__":
    main()
