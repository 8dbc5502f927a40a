"""Serving planner: measured batch latency, a dynamic-batching queue simulation, a capacity plan, monitoring.

The question: how many requests per second can a model serve on this hardware, at what p95 latency, with
what batching, at what cost? Answered from measurements and a simulation, never from assumptions:

- ``measure``: median latency (and IQR) of a forward pass per batch size on this CPU, with
  ``shared.timing`` (the quantization space's timing code and its exclusive lock), and the least-squares
  fit s(b) = a + c*b with its residuals and r2.
- ``simulate``: a seeded discrete-event simulation, in simulated time, of a dynamic batcher as NVIDIA
  Triton's dynamic batcher (``max_batch_size``, ``max_queue_delay_microseconds``) or TorchServe's
  ``batch_size`` / ``max_batch_delay`` run it: requests arrive as a Poisson process of rate lambda; when the
  server is free it starts a batch of up to ``max_batch`` waiting requests as soon as the batch is full or
  the oldest waiting request has waited ``max_wait_ms``. A batch of b takes s1 + per_item*(b - 1) ms
  (deterministic, or exponential with that mean). With ``max_batch`` = 1 this is the M/D/1 (M/M/1) queue,
  whose mean wait is known in closed form (``md1_wait_ms``, ``mm1_wait_ms``): the tests check the
  simulation against both.
- ``sweep``: latency percentiles and throughput against lambda for several batcher settings.
- ``plan``: replicas and batcher settings that meet a p95 target at a peak rate, and the cost per million
  images from an hourly price (CPU: the fit measured here; GPU: cited figures, not measured here).
- ``monitor``: vit-tiny-shapes on the test split, the shifted split and an independent renderer: its
  confidence histogram and accuracy, and how far each moves from the test split.
"""

from __future__ import annotations

import bisect
import copy
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared import validate

from . import options as o

Progress = Callable[[float, str], None]


def _quiet(fraction: float, message: str) -> None:
    return None


# =====================================================================================================
#                                         queueing theory
# =====================================================================================================

def md1_wait_ms(rate_rps: float, service_ms: float) -> float:
    """Mean time in queue (before service) of M/D/1: Wq = rho / (2 mu (1 - rho)), rho = lambda/mu
    (the Pollaczek-Khinchine mean-value formula with zero service variance;
    Kleinrock, 1975, Queueing Systems Vol. I, ch. 5)."""
    mu = 1000.0 / service_ms  # services per second
    rho = rate_rps / mu
    if rho >= 1:
        raise ValueError(f"M/D/1 has no steady state at rho = {rho:.3f} >= 1")
    return 1000.0 * rho / (2 * mu * (1 - rho))


def mm1_wait_ms(rate_rps: float, mean_service_ms: float) -> float:
    """Mean time in queue of M/M/1: Wq = rho / (mu (1 - rho)) (Kleinrock, 1975, Queueing Systems Vol. I, ch. 3)."""
    mu = 1000.0 / mean_service_ms
    rho = rate_rps / mu
    if rho >= 1:
        raise ValueError(f"M/M/1 has no steady state at rho = {rho:.3f} >= 1")
    return 1000.0 * rho / (mu * (1 - rho))


def batch_service_ms(service_ms_at_batch1: float, per_item_ms: float, b: int) -> float:
    """Service time of a batch of ``b``: s(b) = s1 + per_item * (b - 1) (the issue's definition)."""
    return service_ms_at_batch1 + per_item_ms * (b - 1)


def capacity_rps(service_ms_at_batch1: float, per_item_ms: float, max_batch: int) -> float:
    """Most requests a second the batcher can serve: full batches back to back, max_batch / s(max_batch).
    Load rho = lambda / capacity; the queue is stable only for rho < 1."""
    return 1000.0 * max_batch / batch_service_ms(service_ms_at_batch1, per_item_ms, max_batch)


# =====================================================================================================
#                                      dynamic-batching simulation
# =====================================================================================================

@dataclass
class Simulation:
    stats: dict[str, Any]
    arrivals_ms: np.ndarray  # (N,) arrival times
    batch_starts_ms: np.ndarray  # (K,) start of each batch
    batch_sizes: np.ndarray  # (K,)
    sojourn_ms: np.ndarray  # (completed,) arrival to completion of the requests completed in the horizon
    horizon_ms: float
    queue: dict[str, list[float]] = field(default_factory=dict)  # {"t_s": [...], "waiting": [...]}


def check_simulation(arrival_rate_rps: Any, service_ms_at_batch1: Any, per_item_ms: Any, max_batch: Any,
                     max_wait_ms: Any, seconds: Any, seed: Any, service: Any = "deterministic") -> tuple:
    """Every simulation argument, validated; the event cap is checked here, before any work."""
    rate = validate.number(arrival_rate_rps, "arrival rate (requests/s)", 0, o.MAX_RATE_RPS, above=True)
    s1 = validate.number(service_ms_at_batch1, "service time at batch 1 (ms)", 0, o.MAX_SERVICE_MS, above=True)
    per_item = validate.number(per_item_ms, "per-item service time (ms)", 0, o.MAX_SERVICE_MS)
    max_batch = validate.integer(max_batch, "max_batch", 1, o.MAX_SIM_BATCH)
    max_wait = validate.number(max_wait_ms, "max_wait_ms", 0, o.MAX_WAIT_MS)
    seconds = validate.number(seconds, "simulated seconds", 0, o.MAX_SECONDS, above=True)
    seed = validate.integer(seed, "seed", 0, 2**32 - 1)
    service = validate.choice(service, "service-time distribution", o.SERVICE_KINDS)
    expected = rate * seconds
    if expected > o.MAX_REQUESTS:
        raise ValueError(
            f"rate x seconds = {expected:,.0f} expected requests exceeds the cap of {o.MAX_REQUESTS:,} requests per "
            f"simulation; at {rate:g} requests/s simulate at most {o.MAX_REQUESTS / rate:,.1f} seconds")
    return rate, s1, per_item, max_batch, max_wait, seconds, seed, service


def poisson_arrivals_ms(rate_rps: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (ms) of a Poisson process of rate ``rate_rps`` on [0, seconds): cumulative sums of
    exponential gaps of mean 1/rate."""
    mean_gap_ms = 1000.0 / rate_rps
    horizon = seconds * 1000.0
    expected = rate_rps * seconds
    chunk = int(expected + 6 * math.sqrt(expected) + 16)
    times = np.cumsum(rng.exponential(mean_gap_ms, chunk))
    while times[-1] < horizon:  # rare: more arrivals than 6 standard deviations above the mean
        times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(mean_gap_ms, chunk))])
    return times[times < horizon]


def _run_batcher(t: list[float], s1: float, per_item: float, max_batch: int, max_wait: float,
                 horizon: float, multipliers: list[float] | None) -> tuple[list[float], list[float], list[int]]:
    """The event loop. Each step is the next batch: with the oldest waiting request i, the batch is ready at
    min(t[i] + max_wait, arrival of the max_batch-th waiting request) and starts at max(ready, server free).
    It takes every request that has arrived by then, up to max_batch. Returns batch starts, ends, first
    request index of each batch (the last entry is the index after the last batch)."""
    n = len(t)
    starts: list[float] = []
    ends: list[float] = []
    firsts: list[int] = []
    free = 0.0
    i = 0
    k = 0
    while i < n:
        deadline = t[i] + max_wait
        full = i + max_batch - 1
        ready = t[full] if full < n and t[full] < deadline else deadline
        start = free if free > ready else ready
        if start >= horizon:
            break
        j = bisect.bisect_right(t, start, i, min(i + max_batch, n))
        service = s1 + per_item * (j - i - 1)
        if multipliers is not None:
            service *= multipliers[k]
        free = start + service
        starts.append(start)
        ends.append(free)
        firsts.append(i)
        i = j
        k += 1
    firsts.append(i)
    return starts, ends, firsts


def simulate(arrival_rate_rps: Any, service_ms_at_batch1: Any, per_item_ms: Any, max_batch: Any,
             max_wait_ms: Any, seconds: Any, seed: Any, service: Any = "deterministic") -> Simulation:
    """Simulate the dynamic batcher for ``seconds`` of simulated time; deterministic per ``seed``.

    Stats are over the requests completed within the horizon (sojourn = arrival to completion):
    ``mean_ms``, ``p50_ms``, ``p95_ms``, ``p99_ms``, ``throughput_rps`` (completed / seconds), ``utilization``
    (busy share of the horizon), ``mean_batch``, ``completed``; also the mean wait in queue, the load
    ``rho`` = lambda / capacity, and, when rho >= 1, ``overloaded`` with the queue's growth (requests/s):
    measured over the second half of the run, and lambda - capacity.
    """
    rate, s1, per_item, max_batch, max_wait, seconds, seed, service = check_simulation(
        arrival_rate_rps, service_ms_at_batch1, per_item_ms, max_batch, max_wait_ms, seconds, seed, service)
    rng = np.random.default_rng(seed)
    arrivals = poisson_arrivals_ms(rate, seconds, rng)
    horizon = seconds * 1000.0
    n = len(arrivals)
    multipliers = (np.random.default_rng([seed, 1]).exponential(1.0, max(n, 1)).tolist()
                   if service == "exponential" else None)
    started = time.perf_counter()
    starts_l, ends_l, firsts = _run_batcher(arrivals.tolist(), s1, per_item, max_batch, max_wait, horizon, multipliers)
    loop_s = time.perf_counter() - started
    starts, ends = np.asarray(starts_l), np.asarray(ends_l)
    firsts_a = np.asarray(firsts)
    sizes = np.diff(firsts_a)  # (K,)
    served = firsts_a[-1]  # requests that started service
    req_start = np.repeat(starts, sizes)  # (served,)
    req_end = np.repeat(ends, sizes)
    done = req_end <= horizon
    sojourn = (req_end - arrivals[:served])[done]
    wait = (req_start - arrivals[:served])[done]
    busy = float(np.sum(np.minimum(ends, horizon) - starts))
    capacity = capacity_rps(s1, per_item, max_batch)
    rho = rate / capacity
    completed = int(done.sum())

    def pct(q: float) -> float | None:
        return float(np.percentile(sojourn, q)) if completed else None

    grid = np.linspace(0.0, horizon, o.QUEUE_SAMPLES)
    arrived = np.searchsorted(arrivals, grid, side="right")
    cum = np.concatenate([[0], np.cumsum(sizes)])
    begun = cum[np.searchsorted(starts, grid, side="right")]
    waiting = arrived - begun  # requests arrived and not yet in service, at each grid time
    half = len(grid) // 2
    growth = float((waiting[-1] - waiting[half]) / ((grid[-1] - grid[half]) / 1000.0))
    stats: dict[str, Any] = {
        "mean_ms": float(sojourn.mean()) if completed else None,
        "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
        "throughput_rps": completed / seconds,
        "utilization": busy / horizon,
        "mean_batch": float(sizes.mean()) if len(sizes) else 0.0,
        "completed": completed,
        "arrivals": n,
        "mean_wait_ms": float(wait.mean()) if completed else None,
        "rho": rho,
        "capacity_rps": capacity,
        "overloaded": rho >= 1,
        "in_queue_at_end": int(n - served),
        "settings": {"arrival_rate_rps": rate, "service_ms_at_batch1": s1, "per_item_ms": per_item,
                     "max_batch": max_batch, "max_wait_ms": max_wait, "seconds": seconds, "seed": seed,
                     "service": service},
        "event_cap_requests": o.MAX_REQUESTS,
        "simulation_loop_s": round(loop_s, 3),
    }
    if rho >= 1:
        stats["queue_growth_rps"] = growth
        stats["queue_growth_theory_rps"] = rate - capacity
        stats["message"] = (f"overloaded: lambda = {rate:g}/s >= capacity {capacity:.1f}/s (rho = {rho:.2f}); the queue "
                            f"grows by about {growth:.1f} requests/s, so latency grows without bound with run length")
    elif max_batch == 1 and completed:
        theory = md1_wait_ms(rate, s1) if service == "deterministic" else mm1_wait_ms(rate, s1)
        stats["theory"] = {"queue": "M/D/1" if service == "deterministic" else "M/M/1",
                           "mean_wait_ms": theory, "simulated_mean_wait_ms": stats["mean_wait_ms"],
                           "relative_error": (stats["mean_wait_ms"] - theory) / theory if theory > 0 else None}
    return Simulation(stats, arrivals, starts, sizes, sojourn, horizon,
                      {"t_s": (grid / 1000.0).tolist(), "waiting": waiting.astype(int).tolist()})


# =====================================================================================================
#                                  sweep: latency against arrival rate
# =====================================================================================================

def parse_configs(text: Any) -> list[tuple[int, float]]:
    """"1/0, 8/5, 32/20" -> [(1, 0.0), (8, 5.0), (32, 20.0)]: max_batch/max_wait_ms pairs."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"batcher settings must be text like {o.DEFAULT_CONFIGS!r} (max_batch/max_wait_ms pairs), got {text!r}")
    out = []
    for part in [p for p in re.split(r"[,;]", text) if p.strip()]:
        bits = part.strip().split("/")
        if len(bits) != 2:
            raise ValueError(f"each batcher setting is max_batch/max_wait_ms, like 8/5; got {part.strip()!r}")
        out.append((validate.integer(bits[0].strip(), "max_batch", 1, o.MAX_SIM_BATCH),
                    validate.number(bits[1].strip(), "max_wait_ms", 0, o.MAX_WAIT_MS)))
    out = list(dict.fromkeys(out))
    if not 1 <= len(out) <= o.MAX_CONFIGS:
        raise ValueError(f"give 1 to {o.MAX_CONFIGS} batcher settings, got {len(out)}")
    return out


def sweep(service_ms_at_batch1: Any, per_item_ms: Any, configs: Any, seed: Any = 0,
          progress: Progress | None = None) -> dict[str, Any]:
    """For each max_batch/max_wait setting: ``SWEEP_POINTS`` arrival rates from 10% to 110% of its capacity,
    each simulated for ``SWEEP_REQUESTS`` expected requests; p50/p95/p99, throughput and utilisation."""
    report = progress or _quiet
    pairs = parse_configs(configs)
    check_simulation(1.0, service_ms_at_batch1, per_item_ms, 1, 0.0, 1.0, seed)
    s1, per_item, seed = float(service_ms_at_batch1), float(per_item_ms), int(seed)
    rows = []
    for c, (b, w) in enumerate(pairs):
        cap = capacity_rps(s1, per_item, b)
        for p, load in enumerate(np.linspace(0.1, o.SWEEP_MAX_LOAD, o.SWEEP_POINTS)):
            report((c * o.SWEEP_POINTS + p) / (len(pairs) * o.SWEEP_POINTS), f"max_batch {b}, max_wait {w:g} ms: rho {load:.2f}")
            rate = float(load * cap)
            st = simulate(rate, s1, per_item, b, w, min(o.SWEEP_REQUESTS / rate, o.MAX_SECONDS), seed).stats
            rows.append({"max_batch": b, "max_wait_ms": w, "capacity_rps": cap, "arrival_rate_rps": rate,
                         "rho": st["rho"], "p50_ms": st["p50_ms"], "p95_ms": st["p95_ms"], "p99_ms": st["p99_ms"],
                         "throughput_rps": st["throughput_rps"], "utilization": st["utilization"],
                         "mean_batch": st["mean_batch"], "overloaded": st["overloaded"]})
    report(1.0, "done")
    return {"service_ms_at_batch1": s1, "per_item_ms": per_item, "seed": seed, "requests_per_point": o.SWEEP_REQUESTS,
            "saturation_rps": {f"{b}/{w:g}": capacity_rps(s1, per_item, b) for b, w in pairs}, "rows": rows}


# =====================================================================================================
#                                      measurement and fit
# =====================================================================================================

def fit_linear(batch_sizes: Sequence[float], times_ms: Sequence[float]) -> dict[str, Any]:
    """Least-squares fit s(b) = a + c*b (ordinary least squares on the design matrix [1, b]); the
    residuals s_i - (a + c b_i) and r2 = 1 - SS_res / SS_tot."""
    b = np.asarray(batch_sizes, dtype=float)
    y = np.asarray(times_ms, dtype=float)
    if b.shape != y.shape or len(np.unique(b)) < 2:
        raise ValueError(f"the fit needs at least two different batch sizes, got {list(batch_sizes)}")
    design = np.stack([np.ones_like(b), b], axis=1)  # (n, 2)
    (a, c), *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - (a + c * b)
    ss_res = float(residuals @ residuals)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"a_ms": float(a), "c_ms_per_item": float(c), "r2": r2, "residuals_ms": residuals.tolist()}


def check_measure(model: Any, precision: Any, batch_sizes: Any, runs: Any) -> tuple[str, str, list[int], int]:
    """Every measurement argument, validated before torch is imported or the lock is taken."""
    if model == o.VIT_B16_RANDOM_LABEL:
        model = o.VIT_B16_RANDOM
    model = validate.choice(model, "model", list(o.MODELS))
    precision = validate.choice(precision, "precision", list(o.PRECISIONS))
    if isinstance(batch_sizes, str) or not isinstance(batch_sizes, Sequence):
        raise ValueError(f"batch sizes must be a list of integers from 1 to {o.MAX_MEASURE_BATCH}, got {batch_sizes!r}")
    sizes = sorted({validate.integer(b, "batch size", 1, o.MAX_MEASURE_BATCH) for b in batch_sizes})
    if len(sizes) < 2:
        raise ValueError(f"choose at least two different batch sizes (the fit has two parameters), got {sizes}")
    runs = validate.integer(runs, "runs", 1, o.MAX_RUNS)
    passes = (runs + o.WARMUP_RUNS) * sum(sizes)
    if model == o.VIT_B16_RANDOM and passes > o.MAX_VIT_B16_IMAGE_PASSES:
        raise ValueError(
            f"ViT-B/16 on one CPU core takes up to a second per image: ({runs} runs + {o.WARMUP_RUNS} warm-up) x "
            f"{sum(sizes)} images = {passes} image passes exceeds the cap of {o.MAX_VIT_B16_IMAGE_PASSES}; "
            "choose fewer runs or smaller batch sizes")
    return model, precision, sizes, runs


_SUBJECT: dict[tuple[str, str], tuple[Any, Any]] = {}  # the most recent (model, precision): (module, pixels)


def _subject(model: str, precision: str) -> tuple[Any, Any]:
    """The model in eval mode at ``precision`` and MAX_MEASURE_BATCH test-split shapes through its processor."""
    import torch

    from shared.data.shapes import ShapesDataset

    key = (model, precision)
    if key not in _SUBJECT:
        _SUBJECT.clear()  # one model at a time (a ViT-B/16 is ~350 MB)
        if model == o.VIT_B16_RANDOM:
            from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

            torch.manual_seed(0)
            module = ViTForImageClassification(ViTConfig(**o.VIT_B16)).eval()
            processor, size = ViTImageProcessor(), o.VIT_B16["image_size"]
        else:
            from shared.models import load

            loaded = load(model, device="cpu")
            module, processor = loaded.model, loaded.processor
            size = module.config.image_size
        images, _, _ = ShapesDataset("test", o.MAX_MEASURE_BATCH, size=size).arrays()  # (B, H, W, 3)
        pixels = processor(images=list(images), return_tensors="pt")["pixel_values"].float()  # (B, 3, H, W)
        if precision == "bf16":
            module, pixels = copy.deepcopy(module).to(torch.bfloat16), pixels.to(torch.bfloat16)
        _SUBJECT[key] = (module, pixels)
    return _SUBJECT[key]


def measure(model: Any, precision: Any, batch_sizes: Any, runs: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Median and IQR of ``runs`` timed forward passes (after ``WARMUP_RUNS``) per batch size, one thread,
    under ``shared.timing.MEASURE_LOCK``; then the fit s(b) = a + c*b of the medians."""
    import torch

    from shared.timing import MEASURE_LOCK, acquire_measure_lock, summarize, time_forward

    name, precision, sizes, runs = check_measure(model, precision, batch_sizes, runs)
    report = progress or _quiet
    lock_wait_s = acquire_measure_lock(report)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(o.THREADS)
        report(0.0, f"loading {name}")
        module, pixels = _subject(name, precision)

        def forward(x):
            with torch.inference_mode():
                return module(pixel_values=x).logits

        rows = []
        total = sum(sizes)
        done = 0
        for b in sizes:
            report(done / total, f"batch {b}: {o.WARMUP_RUNS} warm-up + {runs} timed runs")
            s = summarize(time_forward(forward, pixels[:b].contiguous(), runs, o.WARMUP_RUNS))
            rows.append({"batch_size": b, "median_ms": s["median_ms"], "iqr_ms": s["iqr_ms"],
                         "q1_ms": s["q1_ms"], "q3_ms": s["q3_ms"], "per_image_ms": s["median_ms"] / b,
                         "images_per_s": 1000.0 * b / s["median_ms"]})
            done += b
        report(1.0, "fitting s(b) = a + c*b")
        load_1min = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other processes share this CPU
    finally:
        torch.set_num_threads(previous)
        MEASURE_LOCK.release()
    fit = fit_linear([r["batch_size"] for r in rows], [r["median_ms"] for r in rows])
    for r, res in zip(rows, fit["residuals_ms"], strict=True):
        r["fit_ms"] = r["median_ms"] - res
        r["residual_ms"] = res
    return {"model": name, "weights": "random (latency only)" if name == o.VIT_B16_RANDOM else "trained here",
            "precision": precision, "threads": o.THREADS, "runs": runs, "warmup": o.WARMUP_RUNS,
            "lock_wait_s": lock_wait_s, "load_average_1min": load_1min, "rows": rows, "fit": fit,
            **simulator_service(rows, fit)}


def simulator_service(rows: Sequence[dict], fit: dict) -> dict[str, Any]:
    """The simulator's s(1) and per-item cost from a measurement: per item = the fitted slope c (at least 0);
    s(1) = the measured batch-1 median when batch 1 was timed (the fit's intercept can be off, even negative,
    when latency is not linear in b), else the fit at b = 1, else the cheapest measured time per image."""
    by = {r["batch_size"]: r["median_ms"] for r in rows}
    fitted = fit["a_ms"] + fit["c_ms_per_item"]
    if 1 in by:
        s1, source = by[1], "measured median at batch 1"
    elif fitted > 0:
        s1, source = fitted, "fit at batch 1 (a + c)"
    else:
        s1, source = min(m / b for b, m in by.items()), "cheapest measured ms per image"
    return {"service_ms_at_batch1": s1, "per_item_ms": max(fit["c_ms_per_item"], 0.0), "service_ms_at_batch1_from": source}


# =====================================================================================================
#                                               plan
# =====================================================================================================

def check_plan(target_p95_ms: Any, peak_rps: Any, service_ms_at_batch1: Any, per_item_ms: Any,
               cpu_price: Any, gpu_price: Any) -> tuple[float, ...]:
    return (validate.number(target_p95_ms, "target p95 (ms)", 0, o.MAX_SERVICE_MS, above=True),
            validate.number(peak_rps, "peak rate (requests/s)", 0, o.MAX_RATE_RPS, above=True),
            validate.number(service_ms_at_batch1, "service time at batch 1 (ms)", 0, o.MAX_SERVICE_MS, above=True),
            validate.number(per_item_ms, "per-item service time (ms)", 0, o.MAX_SERVICE_MS),
            validate.number(cpu_price, "CPU price ($ per replica-hour)", 0, 1e6),
            validate.number(gpu_price, "GPU price ($ per GPU-hour)", 0, 1e6))


def cost_per_million(replicas: int, price_per_hour: float, rate_rps: float) -> float:
    """Dollars per million images with ``replicas`` busy all hour at ``rate_rps``: replicas*price / (rate*3600) * 1e6."""
    return replicas * price_per_hour / (rate_rps * 3600.0) * 1e6


def plan_replicas(target_p95_ms: float, peak_rps: float, s1: float, per_item: float, batches: Sequence[int],
                  price: float, seed: int = 0, max_search: int = 48) -> dict[str, Any]:
    """The fewest replicas (each gets Poisson lambda/N: random routing splits a Poisson stream into Poisson
    streams) for which some max_batch/max_wait setting has simulated p95 <= target; among those settings,
    the lowest p95. Settings above 95% load are skipped (no stable estimate near saturation)."""
    if s1 > target_p95_ms:
        return {"feasible": False, "reason": f"one request alone takes {s1:.1f} ms > target {target_p95_ms:g} ms"}
    best_cap = max(capacity_rps(s1, per_item, b) for b in batches)
    first = max(1, math.ceil(peak_rps / (0.95 * best_cap)))
    for n in range(first, min(first + max_search, o.MAX_REPLICAS) + 1):
        lam = peak_rps / n
        candidates = []
        for b in batches:
            if lam >= 0.95 * capacity_rps(s1, per_item, b):
                continue
            for w in (o.PLAN_WAITS_MS if b > 1 else (0.0,)):
                st = simulate(lam, s1, per_item, b, w, min(o.PLAN_REQUESTS / lam, o.MAX_SECONDS), seed).stats
                if st["p95_ms"] is not None and st["p95_ms"] <= target_p95_ms:
                    candidates.append({"max_batch": b, "max_wait_ms": w, "p95_ms": st["p95_ms"], "p99_ms": st["p99_ms"],
                                       "utilization": st["utilization"], "mean_batch": st["mean_batch"]})
        if candidates:
            best = min(candidates, key=lambda c: (c["p95_ms"], c["max_batch"], c["max_wait_ms"]))
            return {"feasible": True, "replicas": n, "rate_per_replica_rps": lam, **best,
                    "cost_per_million_usd": cost_per_million(n, price, peak_rps), "candidates": len(candidates)}
    return {"feasible": False, "reason": f"no setting met p95 <= {target_p95_ms:g} ms with up to {n} replicas"}


def plan(target_p95_ms: Any, peak_rps: Any, service_ms_at_batch1: Any, per_item_ms: Any, cpu_price: Any,
         gpu_price: Any, seed: int = 0, progress: Progress | None = None) -> dict[str, Any]:
    """CPU: replicas (one core each) from the service time measured here; GPU: the same from cited V100
    figures (``options.GPU_CITED``, not measured here), batches limited to the cited range."""
    target, peak, s1, per_item, cpu, gpu = check_plan(target_p95_ms, peak_rps, service_ms_at_batch1, per_item_ms,
                                                     cpu_price, gpu_price)
    report = progress or _quiet
    report(0.0, "CPU: searching replicas and batcher settings")
    entries = [{"hardware": "this CPU, one core per replica (s(1) and per-item from Measure, or typed)", "measured_here": True,
                "service_ms_at_batch1": s1, "per_item_ms": per_item, "price_per_hour": cpu,
                **plan_replicas(target, peak, s1, per_item, o.PLAN_BATCHES, cpu, seed)}]
    for i, (name, cited) in enumerate(o.GPU_CITED.items()):
        report(0.5 + 0.5 * i / len(o.GPU_CITED), f"GPU (cited): {name}")
        bs = sorted(cited["batch_ms"])
        fit = fit_linear(bs, [cited["batch_ms"][b] for b in bs])
        g1, gper = fit["a_ms"] + fit["c_ms_per_item"], fit["c_ms_per_item"]
        entries.append({"hardware": f"{name}: NOT measured here", "measured_here": False, "source": cited["source"],
                        "service_ms_at_batch1": g1, "per_item_ms": gper, "price_per_hour": gpu,
                        **plan_replicas(target, peak, g1, gper, [b for b in o.PLAN_BATCHES if b <= max(bs)], gpu, seed)})
    report(1.0, "done")
    return {"target_p95_ms": target, "peak_rps": peak, "seed": seed, "entries": entries,
            "assumptions": "each replica gets lambda/N Poisson arrivals (random routing); cost assumes the replicas "
                           "run all hour at the peak rate; prices are inputs, not facts"}


# =====================================================================================================
#                                             monitoring
# =====================================================================================================

def ks_statistic(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs
    (Kolmogorov, 1933; Smirnov, 1948)."""
    x, y = np.sort(np.asarray(x, float)), np.sort(np.asarray(y, float))
    if not len(x) or not len(y):
        raise ValueError("KS statistic of an empty sample")
    grid = np.concatenate([x, y])
    return float(np.max(np.abs(np.searchsorted(x, grid, side="right") / len(x)
                               - np.searchsorted(y, grid, side="right") / len(y))))


def _monitor_set(name: str, n: int, size: int) -> tuple[list, list[str]]:
    """Images and true shape names of one monitored set."""
    if name == "matplotlib":
        from shared.data import matplotlib_shapes

        images, labels = matplotlib_shapes.dataset(n, size=size)
        return images, [matplotlib_shapes.SHAPES[int(y)] for y in labels]
    from shared.data.shapes import ShapesDataset

    ds = ShapesDataset(name, n, size=size)
    return [ds[i][0] for i in range(n)], [ds.spec(i).shape for i in range(n)]


def monitor(n_images: Any, progress: Progress | None = None) -> dict[str, Any]:
    """vit-tiny-shapes on ``n_images`` of each set (test split; shifted split: colour x background pairs
    never trained on; shapes drawn by matplotlib): accuracy, the max-softmax confidence of each image, the
    share below 0.9, the mean input RGB, and the KS distance of each set's confidences from the test split's."""
    import torch

    from shared.models import load

    n = validate.integer(n_images, "images per set", 10, o.MAX_MONITOR_IMAGES)
    report = progress or _quiet
    loaded = load(o.EMBEDDED_MODEL, device="cpu")
    model, processor = loaded.model, loaded.processor
    to_name = {int(k): v for k, v in model.config.id2label.items()}
    sets: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(o.MONITOR_SETS):
        report(k / len(o.MONITOR_SETS), f"{name}: rendering and classifying {n} images")
        images, truth = _monitor_set(name, n, model.config.image_size)
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]  # (n, 3, H, W)
        with torch.inference_mode():
            probs = torch.cat([model(pixel_values=pixels[i:i + 100]).logits.softmax(-1)
                               for i in range(0, n, 100)])  # (n, classes)
        conf, pred = probs.max(-1)
        rgb = np.stack([np.asarray(im.convert("RGB"), dtype=float).reshape(-1, 3).mean(0) for im in images])
        sets[name] = {"n": n, "accuracy": float(np.mean([to_name[int(p)] == t for p, t in zip(pred, truth, strict=True)])),
                      "mean_confidence": float(conf.mean()), "low_confidence_share": float((conf < 0.9).float().mean()),
                      "mean_rgb": rgb.mean(0).round(2).tolist(), "confidences": conf.tolist()}
    for s in sets.values():
        s["ks_vs_test"] = ks_statistic(s["confidences"], sets["test"]["confidences"])
    report(1.0, "done")
    return {"model": o.EMBEDDED_MODEL, "sets": sets}
