"""The one timing rule of these benchmarks: median of timeit repeats, per call, in µs."""

from __future__ import annotations

import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any


def median_us(
    fn: Callable[[], Any], number: int, repeat: int, timer: Callable[[], float] = time.perf_counter
) -> float:
    """Median over ``repeat`` runs of ``number`` calls of ``fn``, per call, in microseconds."""
    times = timeit.repeat(fn, number=number, repeat=repeat, timer=timer)
    return statistics.median(times) / number * 1e6
