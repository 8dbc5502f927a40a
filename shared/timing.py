"""Timing code shared by the spaces that measure latency on this machine (quant_latency, serving_planner).

- ``MEASURE_LOCK``: one measurement at a time in this process, so two users (or two spaces) never time
  each other's load. The hub tab and a space's standalone mount are two Gradio apps with two queues, so
  a queue's concurrency limit alone would not stop them overlapping.
- ``quantile`` / ``summarize``: the median and the interquartile range, robust to the odd slow run a
  shared CPU causes (rather than a mean and a standard deviation).
- ``time_forward``: warm-up calls, then ``time.perf_counter`` around each timed call.

Pure Python (no torch): the callers pass their own forward function.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

MEASURE_LOCK = threading.Lock()


def acquire_measure_lock(report: Callable[[float, str], None]) -> float:
    """Take ``MEASURE_LOCK`` (telling ``report`` when another measurement holds it); the seconds waited.
    The caller releases it with ``MEASURE_LOCK.release()`` in a ``finally``."""
    asked = time.time()
    if not MEASURE_LOCK.acquire(blocking=False):
        report(0.0, "waiting for another measurement to finish (one at a time, so timings stay clean)")
        MEASURE_LOCK.acquire()
    return time.time() - asked


def quantile(samples: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation between order statistics (Hyndman & Fan type 7,
    numpy's default): position q*(n-1) in the sorted samples."""
    if not samples:
        raise ValueError("quantile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    s = sorted(samples)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and interquartile range (robust to the odd slow run a shared CPU causes)."""
    q1, med, q3 = (quantile(samples_ms, q) for q in (0.25, 0.5, 0.75))
    return {"median_ms": med, "q1_ms": q1, "q3_ms": q3, "iqr_ms": q3 - q1,
            "min_ms": min(samples_ms), "max_ms": max(samples_ms), "n": len(samples_ms)}


def time_forward(forward: Callable[[Any], Any], x: Any, runs: int, warmup: int,
                 on_run: Callable[[int], None] | None = None) -> list[float]:
    """Milliseconds of each of ``runs`` timed calls of ``forward(x)``, after ``warmup`` untimed ones.

    Each variant is timed in its own block, warm, as a server would run it. Taking turns between
    variants (to spread load drift evenly) was tried and rejected: switching runtimes every call made
    the tiny model's ONNX Runtime passes 1.6x slower than an isolated torch.utils.benchmark timing.
    """
    for _ in range(warmup):
        forward(x)
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        forward(x)
        samples.append((time.perf_counter() - start) * 1e3)
        if on_run is not None:
            on_run(i + 1)
    return samples
