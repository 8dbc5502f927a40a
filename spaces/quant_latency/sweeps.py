"""Issue 23's measurements beside the variant table: latency against input resolution, efficient
architectures timed beside the ViT, and "meets the target control rate?".

Every timing here runs under ``MEASURE_LOCK`` with ``DEFAULT_THREADS`` threads, batch 1 (one frame, as a
robot's control loop sees it), after ``WARMUP_RUNS`` untimed passes: the median and the IQR of the timed
runs (``shared.timing``). MACs are ``torch.utils.flop_counter.FlopCounterMode``'s FLOPs / 2 for one forward
pass at batch 1, counted on a copy of the model on the ``meta`` device (matmuls and convolutions only:
softmax, norms and activations are not counted).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch

from shared.data.shapes import ShapesDataset
from shared.timing import MEASURE_LOCK, acquire_measure_lock, summarize, time_forward

from .options import (
    ARCHITECTURES,
    DEFAULT_THREADS,
    WARMUP_RUNS,
    check_architectures,
    check_control,
    check_sweep,
)
from .runners import VariantUnavailable
from .subjects import held_out_images, load_model
from .variants import prepare

Progress = Callable[[float, str], None]


def _quiet(fraction: float, message: str) -> None:
    return None


class _Measuring:
    """``with _Measuring(report) as wait_s:`` holds the lock and sets the thread count, restoring both."""

    def __init__(self, report: Progress):
        self.report = report

    def __enter__(self) -> float:
        waited = acquire_measure_lock(self.report)
        self.previous = torch.get_num_threads()
        torch.set_num_threads(DEFAULT_THREADS)
        return waited

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.previous)
        MEASURE_LOCK.release()


def count_macs(model: torch.nn.Module, pixels_shape: Sequence[int], **forward_kw: Any) -> int:
    """FlopCounterMode's FLOPs / 2 for one forward pass of a meta-device copy of ``model``."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        meta = type(model)(model.config).eval()
    x = torch.empty(*pixels_shape, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(pixel_values=x, **forward_kw)
    return counter.get_total_flops() // 2


def _timing(forward: Callable[[torch.Tensor], Any], x: torch.Tensor, runs: int) -> dict[str, Any]:
    samples = time_forward(forward, x, runs, WARMUP_RUNS)
    s = summarize(samples)
    return {**{k: s[k] for k in ("median_ms", "q1_ms", "q3_ms", "iqr_ms")}, "samples_ms": samples}


# --------------------------------------------------------------------------------------
#                         Latency against input resolution
# --------------------------------------------------------------------------------------

def resolutions(largest_side: int, count: int, patch: int) -> list[int]:
    """``count`` sides, multiples of ``patch``, evenly spaced in patches up to ``largest_side``: grid sizes
    floor(k * G / count) for k = 1..count, G = largest_side / patch (strictly increasing when G >= count)."""
    if largest_side % patch:
        raise ValueError(f"largest side (px) must be a multiple of the model's patch size {patch}, got {largest_side}")
    grid = largest_side // patch
    if grid < count:
        raise ValueError(f"largest side (px) must be at least {count * patch} ({count} patches of {patch} px) "
                         f"for {count} resolutions, got {largest_side}")
    return [patch * (k * grid // count) for k in range(1, count + 1)]


def _pixels(mut, side: int) -> torch.Tensor:
    """One held-out shape rendered at ``side`` px through the model's processor: (1, 3, side, side)."""
    images, _, _ = ShapesDataset("test", 1, size=side).arrays()  # (1, side, side, 3) uint8
    return mut.processor(images=list(images), size={"height": side, "width": side},
                         return_tensors="pt")["pixel_values"].float()


def resolution_sweep(model: Any, largest_side: Any, sizes: Any, runs: Any,
                     progress: Progress | None = None) -> dict[str, Any]:
    """fp32 latency of one ViT at several input sides (position embeddings interpolated bicubically by
    transformers' ``interpolate_pos_encoding=True``): one row per side with tokens, MACs, median and IQR."""
    name, largest_side, sizes, runs = check_sweep(model, largest_side, sizes, runs)
    report = progress or _quiet
    with _Measuring(report) as waited:
        mut = load_model(name)
        patch = mut.model.config.patch_size
        sides = resolutions(largest_side, sizes, patch)
        rows = []
        for i, side in enumerate(sides):
            report(i / len(sides), f"{side} px: {WARMUP_RUNS} warm-up + {runs} timed runs")
            x = _pixels(mut, side)

            def forward(pixels: torch.Tensor) -> torch.Tensor:
                with torch.inference_mode():
                    return mut.model(pixel_values=pixels, interpolate_pos_encoding=True).logits

            rows.append({"side": side, "grid": side // patch, "tokens": (side // patch) ** 2 + 1,
                         "macs": count_macs(mut.model, x.shape, interpolate_pos_encoding=True),
                         **_timing(forward, x, runs)})
    native = next((r for r in rows if r["side"] == mut.image_size), None)
    base = native or rows[0]
    for r in rows:
        r["latency_ratio"] = r["median_ms"] / base["median_ms"]
        r["ms_per_gmac"] = r["median_ms"] / (r["macs"] / 1e9)
    report(1.0, "done")
    return {"model": name, "native_side": mut.image_size, "patch": patch, "baseline_side": base["side"],
            "batch_size": 1, "runs": runs, "warmup": WARMUP_RUNS, "threads": DEFAULT_THREADS,
            "lock_wait_s": waited, "rows": rows}


# --------------------------------------------------------------------------------------
#                     Efficient architectures beside the ViT
# --------------------------------------------------------------------------------------

def build_architecture(name: str, side: int) -> torch.nn.Module:
    """The named architecture with random weights (seed 0), 1000 classes, for ``side`` px inputs."""
    spec = ARCHITECTURES[name]
    torch.manual_seed(0)
    if spec["family"] == "vit":
        from transformers import ViTConfig, ViTForImageClassification

        return ViTForImageClassification(ViTConfig(**spec["config"], image_size=side, num_labels=1000)).eval()
    from transformers import MobileViTConfig, MobileViTForImageClassification

    return MobileViTForImageClassification(MobileViTConfig(**spec["config"], image_size=side, num_labels=1000)).eval()


@functools.lru_cache(maxsize=2)
def _built(name: str, side: int) -> torch.nn.Module:
    return build_architecture(name, side)


def architectures(names: Any, side: Any, runs: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Params, MACs and batch-1 latency of each architecture at the same ``side`` px input."""
    chosen, side, runs = check_architectures(names, side, runs)
    report = progress or _quiet
    rows = []
    with _Measuring(report) as waited:
        images, _, _ = ShapesDataset("test", 1, size=side).arrays()
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1  # (1, 3, side, side) in [-1, 1]
        for i, name in enumerate(chosen):
            report(i / len(chosen), f"{name}: building, then {WARMUP_RUNS} warm-up + {runs} timed runs")
            model = _built(name, side)

            def forward(pixels: torch.Tensor, model: torch.nn.Module = model) -> torch.Tensor:
                with torch.inference_mode():
                    return model(pixel_values=pixels).logits

            rows.append({"architecture": name, "family": ARCHITECTURES[name]["family"],
                         "params": sum(p.numel() for p in model.parameters()),
                         "macs": count_macs(model, x.shape), **_timing(forward, x, runs)})
    fastest = min(r["median_ms"] for r in rows)
    for r in rows:
        r["vs_fastest"] = r["median_ms"] / fastest
    report(1.0, "done")
    return {"side": side, "batch_size": 1, "runs": runs, "warmup": WARMUP_RUNS, "threads": DEFAULT_THREADS,
            "lock_wait_s": waited, "rows": rows}


# --------------------------------------------------------------------------------------
#                     Meets the target control rate?
# --------------------------------------------------------------------------------------

def control_verdict(hz: float, median_ms: float, q3_ms: float) -> dict[str, Any]:
    """The per-frame budget 1000 / hz ms against the measured median (and upper quartile)."""
    budget = 1000.0 / hz
    return {"budget_ms": budget, "meets": median_ms <= budget, "meets_q3": q3_ms <= budget,
            "headroom_ms": budget - median_ms, "share_of_budget": median_ms / budget,
            "max_rate_hz": 1000.0 / median_ms}


def control_rate(model: Any, variant: Any, hz: Any, runs: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Time ``variant`` of ``model`` on one frame (batch 1) and say whether it keeps up with ``hz``."""
    name, variant, hz, runs = check_control(model, variant, hz, runs)
    report = progress or _quiet
    out: dict[str, Any] = {"model": name, "variant": variant, "hz": hz, "budget_ms": 1000.0 / hz,
                           "batch_size": 1, "runs": runs, "warmup": WARMUP_RUNS, "threads": DEFAULT_THREADS}
    with _Measuring(report) as waited:
        out["lock_wait_s"] = waited
        report(0.0, f"loading {name}")
        mut = load_model(name)
        x = held_out_images(mut, 1)[0][:1].contiguous()  # (1, 3, H, W)
        try:
            report(0.1, f"{variant}: preparing")
            runner = prepare(mut, variant)
            report(0.3, f"{variant}: {WARMUP_RUNS} warm-up + {runs} timed runs")
            out.update(available=True, reason=None, backend=runner.backend, **_timing(runner.forward, x, runs))
        except VariantUnavailable as err:
            out.update(available=False, reason=str(err))
        except Exception as err:  # a kernel missing on this CPU: the verdict says so
            out.update(available=False, reason=f"{variant} failed to run: {type(err).__name__}: {err}")
    if out["available"]:
        out.update(control_verdict(hz, out["median_ms"], out["q3_ms"]))
    report(1.0, "done")
    return out
