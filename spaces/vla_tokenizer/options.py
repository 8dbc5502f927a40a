"""What the page needs at build time, with no heavy import: limits, choices, and the shipped BPE's facts.

The hub imports every ``app.py`` and calls ``build()`` at start-up (issue 14: start-up within 1.3x a bare
gradio app), so this module imports json and ``shared.models``' torch-free helpers only. ``compute.py``
imports its constants from here, so the page and the computation cannot disagree.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from shared.models import local_path, shipped_metrics

TOKENIZER = "fast-bpe-actions"  # the registry name of the BPE (shared/weights/fast-bpe-actions)
N_BINS = 256  # RT-2 / OpenVLA: 256 bins per dimension, one vocabulary of 256 tokens shared by all dimensions
MAX_SCALE = 1000.0
METHODS: tuple[str, ...] = ("bin256", "fast")
BOUNDS: tuple[str, ...] = ("chunk", "dataset")
BOUNDS_CHOICES = [("per-chunk bounds", "chunk"), ("dataset bounds", "dataset")]
SOURCES: tuple[str, ...] = ("generate", "the box (pasted or uploaded)")
SWEEP_SCALES: tuple[float, ...] = (1, 2, 3, 5, 10, 20, 50, 100, 200)
NOISE_LEVELS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
RATES_HZ: tuple[float, ...] = (5, 10, 15, 20, 30, 50, 100, 200)  # the control-frequency sweep
TABLE_HEADERS = ["dim", "range", "bin width", "bin256 max |err| inside", "bin256 mean |err|", "clipped",
                 "clipped max |err|", "FAST max |err|", "FAST mean |err|", "FAST non-zero coefs"]


@dataclass(frozen=True)
class Tokenizer:
    """Facts about the shipped BPE, read from the files its recipe wrote (fast_config.json, metrics.json)."""

    vocab_size: int
    scale: float  # the scale its training text was made at: the page's default
    quantile: float  # normalisation bounds: the (q, 1 - q) quantiles
    corpus_chunks: int  # shared.actions.corpus(corpus_chunks, seed 0): also the dataset for "dataset bounds"
    metrics: dict  # held-out token counts against bin256 (metrics.json)

    @property
    def percentiles(self) -> str:  # 0.01 -> "1st/99th"
        lo, hi = round(100 * self.quantile), round(100 * (1 - self.quantile))
        return f"{_ordinal(lo)}/{_ordinal(hi)}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@functools.cache
def tokenizer() -> Tokenizer:
    config = json.loads((local_path(TOKENIZER) / "fast_config.json").read_text())
    metrics = shipped_metrics(TOKENIZER) or {}
    return Tokenizer(int(config["vocab_size"]), float(config["scale"]), float(config["quantile"]),
                     int(metrics["corpus_chunks"]), metrics)
