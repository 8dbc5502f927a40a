"""Quantization latency: fp32, bf16 and int8 variants of a ViT, timed on the machine that runs this.

What it teaches: quantization trades numeric precision for smaller weights and (sometimes) faster
matrix multiplies, and whether it is faster depends on the CPU, the runtime and the model. PyTorch's
quantization docs state that int8 computations are "typically 2 to 4 times faster compared to FP32
compute"; whole models measured in public reports gain less (``sources.py`` quotes each source):

- PyTorch tutorial "Dynamic quantization on BERT": 160 s -> 90 s (1 thread), 85 s -> 46 s (4 threads)
  on a MacBook Pro; 438 -> 181 MB.
- microsoft/onnxruntime#6695, bert-base-uncased, batch 1, sequence 128: fp32 31.46 / int8 19.76 on a
  Cascade Lake (VNNI), 38.05 / 35.08 on a Ryzen 3700X (no VNNI).
- pytorch/ao#4365: torchao's Int8DynamicActivationInt8WeightConfig "noticeably slower than torch.ao's
  quantize_dynamic()" (an open CPU performance report).

So every number here is measured, never assumed: each variant gets warm-up runs, then ``runs`` timed
forward passes (``time.perf_counter`` around each), reported as the median and the interquartile
range. Size is the serialized model (``torch.save`` of the state dict, or the .onnx file), and each row
says how the linear layers' weights are stored (read off the model or the ONNX graph). For trained
models, accuracy on held-out shapes and top-1 agreement / max |logit difference| against fp32 are
computed on the same images.

The modules: ``options`` (names, limits, validation; torch-free), ``subjects`` (models and images),
``torch_variants`` and ``onnx_variants`` (how each variant is built), ``variants`` (the cache),
``timing`` (timing and the fp32 comparison), ``stats``, ``hardware`` and ``sources`` (text).
Variant names (a public contract) and what each does: ``options.VARIANTS``.

Measurements are serialized process-wide by ``MEASURE_LOCK`` so two users never time each other's load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

# One measurement at a time in this process, shared with the serving planner: the hub tab and the standalone
# mount are two UI apps with two queues, so a queue's concurrency limit alone would not stop them overlapping.
from shared.timing import MEASURE_LOCK, acquire_measure_lock

# Issue 23: memory by precision, latency against resolution, efficient architectures, control rate.
from .memory import memory_table, parameter_count  # noqa: E402
from .options import (
    CONTRACT_VARIANTS,
    DEFAULT_THREADS,
    EVAL_IMAGES_LARGE,
    EVAL_IMAGES_SMALL,
    MAX_BATCH,
    MAX_RUNS,
    MAX_THREADS,
    VARIANTS,
    VIT_B16_RANDOM,
    VIT_B16_RANDOM_LABEL,
    WARMUP_RUNS,
    check_model,
    check_request,
    check_variants,
)
from .runners import Runner, VariantUnavailable
from .subjects import ModelUnderTest, held_out_images, load_model, random_vit_b16
from .sweeps import (  # noqa: E402
    architectures,
    control_rate,
    control_verdict,
    count_macs,
    resolution_sweep,
    resolutions,
)
from .timing import Progress, logits_on, max_abs_logit_diff, measure, quality, throttled, top1_agreement
from .variants import prepare

__all__ = [
    "CONTRACT_VARIANTS", "DEFAULT_THREADS", "EVAL_IMAGES_LARGE", "EVAL_IMAGES_SMALL", "MAX_BATCH", "MAX_RUNS",
    "MAX_THREADS", "MEASURE_LOCK", "VARIANTS", "VIT_B16_RANDOM", "VIT_B16_RANDOM_LABEL", "WARMUP_RUNS",
    "ModelUnderTest", "Runner", "VariantUnavailable", "check_model", "check_variants", "compare",
    "held_out_images", "load_model", "logits_on", "max_abs_logit_diff", "prepare", "random_vit_b16",
    "top1_agreement", "unavailable_row",
    "architectures", "control_rate", "control_verdict", "count_macs", "memory_table", "parameter_count",
    "resolution_sweep", "resolutions",
]

_EMPTY = ("backend", "median_ms", "iqr_ms", "q1_ms", "q3_ms", "throughput_ips", "size_mb", "accuracy",
          "top1_agreement", "max_abs_logit_diff", "speedup_vs_fp32", "measured_from", "measured_to")


def unavailable_row(variant: str, reason: str) -> dict[str, Any]:
    """The row of a variant that could not be prepared or run: every measurement empty, the reason kept."""
    return {"variant": variant, "available": False, "reason": reason, **dict.fromkeys(_EMPTY),
            "weight_storage": {}, "notes": [], "samples_ms": []}


def _eval_images(mut: ModelUnderTest) -> int:
    return 0 if not mut.trained else EVAL_IMAGES_SMALL if mut.image_size <= 64 else EVAL_IMAGES_LARGE


def _variant_row(mut: ModelUnderTest, variant: str, x: torch.Tensor, runs: int, eval_pixels: torch.Tensor,
                 reference: torch.Tensor | None, truth: torch.Tensor | None, report: Progress,
                 base: float, share: float) -> dict[str, Any]:
    """Prepare, time and check one variant; a row with the reason if it cannot run here."""
    report(base, f"{variant}: preparing")
    try:
        runner = prepare(mut, variant)
    except VariantUnavailable as err:
        return unavailable_row(variant, str(err))
    try:
        report(base, f"{variant}: {WARMUP_RUNS} warm-up runs")
        row = measure(runner, x, runs, on_run=throttled(report, variant, runs, base, share))
        row.update(accuracy=None, top1_agreement=None, max_abs_logit_diff=None)
        if reference is not None:
            report(base + share * runs / (runs + 1), f"{variant}: checking against fp32")
            row.update(quality(runner, eval_pixels, reference, truth))
        return row
    except Exception as err:  # e.g. a kernel missing on this CPU: show the row with the reason
        return unavailable_row(variant, f"{variant} failed to run: {type(err).__name__}: {err}")


def compare(model: str, variants: Sequence[str], batch_size: int, runs: int, threads: int | None = None,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """Time each variant of ``model`` and check it against fp32; one dict per variant, in order.

    Holds ``MEASURE_LOCK`` for the whole call (preparation included, since exporting or quantizing
    a model also loads the CPU), and sets ``torch.set_num_threads(threads)`` only for its duration.
    ``lock_wait_s`` is how long this call waited for another measurement to finish.
    """
    name, chosen, batch_size, runs, threads = check_request(model, variants, batch_size, runs, threads)
    report = progress or (lambda fraction, message: None)

    lock_wait_s = acquire_measure_lock(report)
    previous_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        report(0.0, f"loading {name}")
        mut = load_model(name)
        n_eval = _eval_images(mut)
        pixels, shapes = held_out_images(mut, max(n_eval, batch_size))  # (N, 3, H, W), (N,)
        eval_pixels = pixels[:n_eval]
        x = pixels[:batch_size].contiguous()  # (B, 3, H, W): real test images, also for random weights
        # fp32 logits are the reference for agreement, so fp32 is prepared even if not shown.
        reference = logits_on(prepare(mut, "fp32"), eval_pixels) if mut.trained else None
        truth = (torch.tensor(mut.shape_labels)[shapes[:n_eval]]  # shape id -> model class id
                 if mut.shape_labels is not None and mut.trained else None)

        share = 1 / len(chosen)
        rows = [_variant_row(mut, v, x, runs, eval_pixels, reference, truth, report, k * share, share)
                for k, v in enumerate(chosen)]
        fp32 = next((r for r in rows if r["variant"] == "fp32" and r["available"]), None)
        for r in rows:
            r.update(model=name, batch_size=batch_size, runs=runs, warmup=WARMUP_RUNS, threads=threads,
                     eval_images=n_eval, lock_wait_s=lock_wait_s)
            r["speedup_vs_fp32"] = fp32["median_ms"] / r["median_ms"] if fp32 and r["available"] else None
        report(1.0, "done")
        return rows
    finally:
        torch.set_num_threads(previous_threads)
        MEASURE_LOCK.release()
