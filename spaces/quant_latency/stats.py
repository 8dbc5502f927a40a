"""Robust summaries of timing samples: the median and the interquartile range rather than a mean and a
standard deviation. The code lives in ``shared/timing.py`` (the serving planner times models the same way)."""

from __future__ import annotations

from shared.timing import quantile, summarize

__all__ = ["quantile", "summarize"]
