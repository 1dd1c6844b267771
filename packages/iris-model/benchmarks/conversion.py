"""Time the strict list-to-matrix conversion of a 1,000-row batch against references.

Run: ``python packages/iris-model/benchmarks/conversion.py``. Prints the median CPU time of
several timeit repeats per call for the library's ``to_matrix`` and, in the same run:

- "np.array + 0/1 rows": a measured alternative, not adopted: NumPy's own type inference as
  the bulk check, and the value types of only the rows holding an exact 0 or 1 (the one
  coercion inference makes is bool -> 0/1);
- "np.array, unchecked": NumPy's own conversion with no checks at all (the floor).

Rows are real iris measurements as a JSON decoder returns them, and a worst case where every
row holds a 0 or 1 (each such row has its value types checked in Python).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from timing import median_us  # beside this script: the one timing rule

from iris_model.validation import to_matrix

_N_FEATURES = 4


def _numpy_inference(batch: Sequence[Any]) -> Any:
    if not set(map(type, batch)) <= {list, tuple}:
        return None
    try:
        values = np.array(batch)
    except (ValueError, OverflowError):
        return None
    if values.dtype.kind not in "iuf" or values.shape != (len(batch), _N_FEATURES):
        return None
    matrix = values.astype(np.float64, copy=False)
    if not np.abs(matrix).max() <= 1e6:
        return None
    for i in np.flatnonzero((np.abs(matrix - 0.5) == 0.5).any(axis=1)).tolist():
        if not set(map(type, batch[i])) <= {int, float}:
            return None
    return matrix


def main() -> None:
    """Print a table of per-call times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9, help="timeit repeats (default: 9)")
    parser.add_argument("--number", type=int, default=100, help="calls per repeat")
    args = parser.parse_args()

    data = load_iris().data.tolist()
    real = json.loads(json.dumps([data[(i * 37) % len(data)] for i in range(1000)]))
    ones = json.loads(json.dumps([[1.0, 0.0, 5.1, 1.0]] * 1000))
    timing = (args.number, args.repeat, time.process_time)
    print(f"{'1,000 rows':<22}{'to_matrix µs':>14}{'np.array+0/1 µs':>18}{'unchecked µs':>14}")
    for name, rows in (("iris rows", real), ("every row has 0/1", ones)):
        ours = median_us(partial(to_matrix, rows, n_features=4, max_rows=10_000), *timing)
        other = median_us(partial(_numpy_inference, rows), *timing)
        floor = median_us(partial(np.array, rows), *timing)
        print(
            f"{name:<22}{ours:>14.1f}{other:>18.1f}{floor:>14.1f}"
            f"   (alternative / to_matrix: {other / ours:.2f}x)"
        )


if __name__ == "__main__":
    main()
