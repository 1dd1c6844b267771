"""Time prediction: the library's scorer vs scikit-learn's predict, and DataFrame input overhead.

Run: ``python packages/iris-model/benchmarks/scoring.py`` (needs pandas for the DataFrame
rows; ``nox -s bench`` measures the whole server). Prints the median of several timeit
repeats per call, and ratios against references timed in the same run:

- arrays and lists: iris_model vs the estimator's own ``predict``/``predict_proba`` (target:
  single-row ``predict`` at least 10x faster);
- DataFrames: iris_model with a DataFrame (columns matched by name) vs iris_model with the
  same rows as an array, i.e. the cost of name matching.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from timing import median_us  # beside this script: the one timing rule

import iris_model


def main() -> None:
    """Print a table of per-call times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats (default: 7)")
    args = parser.parse_args()

    model, _ = iris_model.train()
    estimator = model.estimator
    row = [5.1, 3.5, 1.4, 0.2]
    one = np.asarray([row], dtype=np.float64)
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 8, size=(100, 4)).round(1)
    batch_list = batch.tolist()

    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any], int]] = {
        "1 row array, predict": (lambda: model.predict(one), lambda: estimator.predict(one), 5000),
        "1 row list, predict": (
            lambda: model.predict(row),
            lambda: estimator.predict(np.asarray(row, dtype=np.float64).reshape(1, -1)),
            5000,
        ),
        "1 row, predict_proba": (
            lambda: model.predict_proba(one),
            lambda: estimator.predict_proba(one),
            5000,
        ),
        "100 rows list, predict": (
            lambda: model.predict(batch_list),
            lambda: estimator.predict(np.asarray(batch_list, dtype=np.float64)),
            1000,
        ),
    }
    print(f"{'case':<28} {'iris_model µs':>14} {'sklearn µs':>11} {'speed-up':>9}")
    for name, (ours, theirs, number) in cases.items():
        ours_us = median_us(ours, number, args.repeat)
        theirs_us = median_us(theirs, number, args.repeat)
        print(f"{name:<28} {ours_us:14.1f} {theirs_us:11.1f} {theirs_us / ours_us:8.1f}x")
    print("iris_model times include its strict validation of the input.")

    try:
        import pandas as pd  # noqa: PLC0415 - optional: only the DataFrame rows need it
    except ImportError:
        print("\npandas is not installed: DataFrame overhead not measured")
        return
    names = list(model.feature_names)
    frames = {
        "1 row": (pd.DataFrame(one, columns=names), one, 2000),
        "100 rows": (pd.DataFrame(batch, columns=names), batch, 1000),
        "100 rows, columns reversed": (
            pd.DataFrame(batch, columns=names)[names[::-1]],
            batch,
            1000,
        ),
    }
    print(f"\n{'DataFrame input, predict':<28} {'frame µs':>14} {'array µs':>11} {'overhead':>9}")
    for name, (frame, array, number) in frames.items():
        frame_us = median_us(lambda f=frame: model.predict(f), number, args.repeat)
        array_us = median_us(lambda a=array: model.predict(a), number, args.repeat)
        sklearn_us = median_us(lambda a=array: estimator.predict(a), number, args.repeat)
        print(
            f"{name:<28} {frame_us:14.1f} {array_us:11.1f} {frame_us / array_us:8.1f}x"
            f"  (sklearn on the array: {sklearn_us:.1f} µs)"
        )


if __name__ == "__main__":
    main()
