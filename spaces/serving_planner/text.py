"""The page's prose (torch-free): what each section computes and where each formula and figure comes from."""

from __future__ import annotations

from . import options as o

TRITON = "https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/batcher.html"
TORCHSERVE = "https://pytorch.org/serve/batch_inference_with_ts.html"
PADDLECLAS = "https://github.com/PaddlePaddle/PaddleClas/blob/develop/docs/zh_CN/models/ImageNet1k/ViT_and_DeiT.md"


def _cited_ms() -> str:
    """The cited V100 latencies, from options.GPU_CITED (typed once, there)."""
    (entry,) = o.GPU_CITED.values()
    return ", ".join(f"{ms:g}" for ms in entry["batch_ms"].values())


def intro(emoji: str, title: str, summary: str) -> str:
    return (f"## {emoji} {title}\n{summary}\n\n"
            "How many requests per second can a model serve on this hardware, at what p95 latency, with what "
            "batching, at what cost? This page answers from **measurements on this machine** and a **seeded "
            "queueing simulation** checked against queueing theory: (1) measure latency against batch size and fit "
            "s(b) = a + c·b; (2) simulate a dynamic batcher; (3) plan replicas and cost; (4) watch the model in "
            "production.")


MEASURE_HELP = (
    "### 1. Measure\n"
    f"Median and interquartile range of timed forward passes (after {o.WARMUP_RUNS} warm-up passes) per batch size, "
    f"{o.THREADS} thread (one core per replica), with the quantization space's timing code (`shared/timing.py`) "
    "under its exclusive lock, so two measurements never overlap. The inputs are test-split shapes through the "
    f"model's own processor. **{o.VIT_B16_RANDOM_LABEL}**: ViT-B/16 sizes (Dosovitskiy et al., 2021, Table 1) with "
    "random weights, because google/vit-base-patch16-224 cannot be downloaded here; latency does not depend on "
    "the weight values. The line is the ordinary least-squares fit s(b) = a + c·b; the residuals show where the "
    "line is wrong (cache effects, thread start-up). Measuring fills the simulation and plan inputs below: s(1) = "
    "the measured batch-1 median (the intercept a can be off, even negative, when latency is not linear in b) "
    "and the per-item cost c.")

SIMULATE_HELP = (
    "### 2. Simulate dynamic batching\n"
    f"Like NVIDIA Triton's [dynamic batcher]({TRITON}) (`max_batch_size`, `max_queue_delay_microseconds`) or "
    f"TorchServe's [`batch_size` and `max_batch_delay`]({TORCHSERVE}): Poisson arrivals at rate λ; when the server "
    "is free it starts a batch of up to `max_batch` waiting requests as soon as the batch is full or the oldest has "
    "waited `max_wait_ms`. A batch of b takes s(1) + per_item·(b − 1) ms. A discrete-event simulation in simulated "
    f"time, deterministic per seed; at most {o.MAX_REQUESTS:,} expected requests (λ × seconds) per run, refused "
    "at once above that. Capacity = max_batch / s(max_batch); load ρ = λ / capacity; ρ ≥ 1 is reported as "
    "overload with the queue's growth. With max_batch = 1 it is the M/D/1 queue (M/M/1 with exponential service), "
    "whose mean wait ρ / (2μ(1 − ρ)) (ρ / (μ(1 − ρ))) the page and the tests compare with the simulation "
    "(Pollaczek-Khinchine; Kleinrock, 1975, *Queueing Systems* Vol. I).")

SWEEP_HELP = (
    "### Latency and throughput against load\n"
    f"For each `max_batch/max_wait_ms` setting: {o.SWEEP_POINTS} arrival rates from 10% to "
    f"{o.SWEEP_MAX_LOAD:.0%} of its capacity, {o.SWEEP_REQUESTS:,} requests each. The dash-dot line is the "
    "saturation point λ* = max_batch / s(max_batch): beyond it throughput stops growing and latency only grows "
    "with run length.")

PLAN_HELP = (
    "### 3. Plan\n"
    "The fewest replicas N (each gets λ/N: random routing splits a Poisson stream into Poisson streams) for which "
    "some batcher setting (max_batch "
    f"{', '.join(map(str, o.PLAN_BATCHES))}; max_wait {', '.join(f'{w:g}' for w in o.PLAN_WAITS_MS)} ms) has a "
    "simulated p95 within the target, skipping settings above 95% load; cost per million images = "
    "N × price per hour / (λ × 3600) × 10⁶, with every replica busy all hour at the peak rate. **CPU**: the "
    "service time measured here (section 1). **GPU: not measured here**: ViT-B/16 FP32 on a V100 at batch 1, 4 and "
    f"8 as printed in the [PaddleClas model docs]({PADDLECLAS}) ({_cited_ms()} ms), fitted the same way and "
    "used only up to batch 8. Prices are inputs, not facts: type yours.")

MONITOR_HELP = (
    "### 4. Monitoring\n"
    "In production watch the latency percentiles (p95/p99, not the mean), the queue depth (a queue that keeps "
    "growing means ρ ≥ 1), and drift in the inputs: the model's confidence and the input statistics move before "
    "anyone measures accuracy. Here `vit-tiny-shapes` classifies the test split, the **shifted** split (colour × "
    "background pairs it never saw) and shapes drawn by an **independent renderer** (matplotlib); the KS column is "
    "the two-sample Kolmogorov-Smirnov distance of each set's confidences from the test split's (Kolmogorov, 1933; "
    "Smirnov, 1948).")


def shipped_facts(metrics: dict | None) -> str:
    """What training measured on the same sets (metrics.json beside the weights), next to the live numbers."""
    if not metrics:
        return "The model's metrics.json is missing."
    return (f"Shipped metrics (`shared/weights/{o.EMBEDDED_MODEL}/metrics.json`): test accuracy "
            f"**{metrics['accuracy']:.4f}** on {metrics['n']} images, shifted split **{metrics['shifted_accuracy']:.4f}** "
            f"on {metrics['n_shifted']}, independent renderer **{metrics['independent_renderer_accuracy']:.4f}** on "
            f"{metrics['n_independent']}.")
