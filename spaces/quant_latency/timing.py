"""Timing one prepared variant, and checking its logits against fp32 on the same images."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from shared import timing as shared_timing

from .options import MAX_BATCH, WARMUP_RUNS
from .runners import Runner
from .stats import summarize

PROGRESS_EVERY_S = 1.0  # at most one progress update a second while timing

Progress = Callable[[float, str], None]


def time_forward(forward: Callable[[torch.Tensor], Any], x: torch.Tensor, runs: int,
                 warmup: int = WARMUP_RUNS, on_run: Callable[[int], None] | None = None) -> list[float]:
    """``shared.timing.time_forward`` with this space's warm-up count as the default."""
    return shared_timing.time_forward(forward, x, runs, warmup, on_run)


def logits_on(runner: Runner, pixels: torch.Tensor, batch: int = MAX_BATCH) -> torch.Tensor:
    """The runner's logits for every image, in batches: (N, 3, H, W) -> (N, classes)."""
    return torch.cat([runner.forward(pixels[i:i + batch]) for i in range(0, len(pixels), batch)])


def top1_agreement(reference: torch.Tensor, logits: torch.Tensor) -> float:
    """Share of images whose top-1 class is the same under both logits. (N, C), (N, C) -> float."""
    if reference.shape != logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(reference.shape)} vs {tuple(logits.shape)}")
    return (reference.argmax(-1) == logits.argmax(-1)).float().mean().item()


def max_abs_logit_diff(reference: torch.Tensor, logits: torch.Tensor) -> float:
    """Largest |logit - reference logit| over all images and classes."""
    return (reference.float() - logits.float()).abs().max().item()


def throttled(report: Progress, variant: str, runs: int, base: float, share: float) -> Callable[[int], None]:
    """A per-run callback that reports progress at most once every ``PROGRESS_EVERY_S``: an update wakes
    the server and the browser, which load the very CPU being timed (per-run updates slowed the fast
    variants here)."""
    last = [time.perf_counter()]

    def on_run(i: int) -> None:
        if time.perf_counter() - last[0] >= PROGRESS_EVERY_S:
            report(base + share * i / (runs + 1), f"{variant}: timed run {i}/{runs}")
            last[0] = time.perf_counter()

    return on_run


def measure(runner: Runner, x: torch.Tensor, runs: int, on_run: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Time ``runner`` on the batch ``x``: the row's timing fields (median, quartiles, throughput, samples,
    and ``measured_from``/``measured_to``, the ``time.time()`` around the timed runs)."""
    measured_from = time.time()
    samples = time_forward(runner.forward, x, runs, on_run=on_run)
    measured_to = time.time()
    summary = summarize(samples)
    return {"variant": runner.variant, "available": True, "reason": None, "backend": runner.backend,
            **{k: summary[k] for k in ("median_ms", "iqr_ms", "q1_ms", "q3_ms")},
            "throughput_ips": len(x) / (summary["median_ms"] / 1e3), "size_mb": runner.size_mb,
            "weight_storage": runner.weight_storage, "notes": runner.notes,
            "samples_ms": samples, "measured_from": measured_from, "measured_to": measured_to}


def quality(runner: Runner, pixels: torch.Tensor, reference: torch.Tensor,
            truth: torch.Tensor | None) -> dict[str, float | None]:
    """Top-1 agreement and max |Δlogit| against the fp32 ``reference`` logits on the same ``pixels``,
    and accuracy against ``truth`` (model class ids) where the model classifies shapes."""
    logits = logits_on(runner, pixels)  # (N, classes)
    accuracy = None if truth is None else (logits.argmax(-1) == truth).float().mean().item()
    return {"top1_agreement": top1_agreement(reference, logits),
            "max_abs_logit_diff": max_abs_logit_diff(reference, logits), "accuracy": accuracy}
