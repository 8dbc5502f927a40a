"""Robust summaries of timing samples (pure Python): a shared CPU makes the odd run slow, so the page
reports the median and the interquartile range rather than a mean and a standard deviation."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
