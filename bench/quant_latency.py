"""Benchmark of the quant_latency space: every variant of vit-tiny-shapes and of the ViT-B/16
architecture (random weights), timed the way the space times them, plus an honesty check.

The check times the same prepared variant again with ``torch.utils.benchmark.Timer`` (its own
warm-up and blocked timing, same thread count) and reports our median / Timer median. The two
are measured seconds apart on a shared CPU, so they are compared with a stated tolerance, not
asserted.

Issue 23 adds the int4 and CUDA rows (through ``compute.VARIANTS``), latency against resolution, efficient
architectures beside ViT-B/16, the 30 Hz control-rate verdict and memory by precision (``issue23()``).

Run: ``.venv/bin/python -m bench.quant_latency`` (prints JSON), or via ``bench/__main__.py``.
"""

from __future__ import annotations

import json
import time

import torch
import torch.utils.benchmark as benchmark

from spaces.quant_latency import compute, options, subjects

# (model, batch size, timed runs, variants cross-checked with torch.utils.benchmark)
CASES = (
    ("vit-tiny-shapes", 8, 20, ("fp32", "int8_dynamic", "onnx_int8")),
    (compute.VIT_B16_RANDOM, 1, 5, ("fp32", "int8_dynamic")),
)
TOLERANCE = 0.30  # |our median / Timer median - 1| within this passes (2 shared cores: timings drift)


def cross_check(model: str, variant: str, batch_size: int, threads: int, our_median_ms: float) -> dict:
    """Time the already prepared ``variant`` with torch.utils.benchmark.Timer and compare medians."""
    with compute.MEASURE_LOCK:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            mut = compute.load_model(model)
            runner = compute.prepare(mut, variant)
            x = subjects.held_out_images(mut, max(batch_size, 32))[0][:batch_size].contiguous()  # (B, 3, H, W)
            timer = benchmark.Timer(stmt="forward(x)", globals={"forward": runner.forward, "x": x},
                                    num_threads=threads, label=model, sub_label=variant)
            measurement = timer.blocked_autorange(min_run_time=1.0)
        finally:
            torch.set_num_threads(previous)
    timer_ms = measurement.median * 1e3
    ratio = our_median_ms / timer_ms
    return {"variant": variant, "ours_median_ms": round(our_median_ms, 3), "timer_median_ms": round(timer_ms, 3),
            "timer_iqr_ms": round(measurement.iqr * 1e3, 3), "timer_runs": measurement.number_per_run * len(measurement.times),
            "ratio": round(ratio, 3), "within_tolerance": abs(ratio - 1) <= TOLERANCE}


def _rounded(d: dict, keys: tuple[str, ...]) -> dict:
    return {k: (round(d[k], 4) if isinstance(d[k], float) else d[k]) for k in keys if k in d}


def issue23() -> dict:
    """The views issue 23 added: latency against resolution (ratio to the model's native side), efficient
    architectures (ratio to ViT-B/16, timed in the same run), the control-rate verdict at 30 Hz, and
    memory by precision (counts, no timing). Medians of several runs, batch 1."""
    out: dict = {}
    sweeps = {}
    for model, largest, sizes, runs in (("vit-tiny-shapes", 256, 4, 10), (compute.VIT_B16_RANDOM, 448, 4, 3)):
        result = compute.resolution_sweep(model, largest, sizes, runs)
        sweeps[model] = {"baseline_side": result["baseline_side"], "runs": runs,
                         "rows": [_rounded(r, ("side", "tokens", "macs", "median_ms", "iqr_ms", "latency_ratio",
                                               "ms_per_gmac")) for r in result["rows"]]}
    out["resolution_sweep"] = sweeps
    archs = compute.architectures(list(options.ARCHITECTURES), 224, 10)
    base = next(r for r in archs["rows"] if r["architecture"] == "ViT-B/16")["median_ms"]
    out["architectures_224px"] = [{**_rounded(r, ("architecture", "params", "macs", "median_ms", "iqr_ms")),
                                   "latency_vs_vit_b16": round(r["median_ms"] / base, 3)} for r in archs["rows"]]
    control = []
    for model, variant in (("vit-tiny-shapes", "fp32"), ("vit-tiny-shapes", "int8_dynamic"),
                           ("vit-tiny-shapes", "int4_weight_intx"), ("vit-tiny-shapes", "cuda_fp16"),
                           (compute.VIT_B16_RANDOM, "fp32"), (compute.VIT_B16_RANDOM, "int8_dynamic")):
        r = compute.control_rate(model, variant, 30, 10)
        control.append(_rounded(r, ("model", "variant", "available", "reason", "budget_ms", "median_ms", "q3_ms",
                                    "meets", "meets_q3", "max_rate_hz")))
    out["control_rate_30hz"] = control
    memory = compute.memory_table(24)
    out["memory_24gb"] = [_rounded(r, ("model", "params", "precision", "weights_gb", "fits")) for r in memory["rows"]]
    return out


def run() -> dict:
    started = time.perf_counter()
    threads = compute.DEFAULT_THREADS  # see options.DEFAULT_THREADS: steadiest on a shared CPU
    out: dict = {"threads": threads, "warmup_runs": compute.WARMUP_RUNS, "tolerance": TOLERANCE, "models": {}}
    for model, batch_size, runs, checked in CASES:
        t0 = time.perf_counter()
        rows = compute.compare(model, list(compute.VARIANTS), batch_size, runs, threads=threads)
        by = {r["variant"]: r for r in rows}
        table = {
            r["variant"]: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                           if k in ("available", "reason", "median_ms", "iqr_ms", "size_mb", "speedup_vs_fp32",
                                    "accuracy", "top1_agreement", "max_abs_logit_diff", "backend",
                                    "weight_storage")}
            for r in rows
        }
        ratios = {}
        for v in ("int8_dynamic", "int8_weight_only", "int8_dynamic_legacy", "bf16", "onnx_fp32", "onnx_int8"):
            if by[v]["available"] and by["fp32"]["available"]:
                ratios[f"{v}/fp32"] = round(by[v]["median_ms"] / by["fp32"]["median_ms"], 3)
        if by["onnx_int8"]["available"] and by["onnx_fp32"]["available"]:
            ratios["onnx_int8/onnx_fp32"] = round(by["onnx_int8"]["median_ms"] / by["onnx_fp32"]["median_ms"], 3)
        checks = [cross_check(model, v, batch_size, threads, by[v]["median_ms"]) for v in checked if by[v]["available"]]
        out["models"][model] = {"batch_size": batch_size, "runs": runs, "variants": table,
                                "latency_ratio_vs_fp32": ratios, "timer_cross_check": checks,
                                "seconds": round(time.perf_counter() - t0, 1)}
    out["issue23"] = issue23()
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
