"""The one timer every bench uses: wall-clock milliseconds of a call, and the median of several."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def ms(fn: Callable[[], object]) -> float:
    """Milliseconds one call of ``fn`` took."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def median_ms(fn: Callable[[], object], runs: int, warmup: int = 0) -> float:
    """Median milliseconds of ``runs`` calls after ``warmup`` untimed ones (these machines are noisy:
    a median, beside a baseline measured in the same run, is what travels)."""
    for _ in range(warmup):
        fn()
    return statistics.median(ms(fn) for _ in range(runs))
