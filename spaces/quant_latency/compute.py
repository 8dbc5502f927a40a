"""Quantization latency: fp32, bf16 and int8 variants of a ViT, timed on the machine that runs this.

What it teaches: quantization trades numeric precision for smaller weights and (sometimes) faster
matrix multiplies, and whether it is faster depends on the CPU. Published int8 speed-ups on CPUs
range from about 1.0x (no VNNI dot-product instructions) to about 1.9x:

- PyTorch tutorial "Dynamic quantization on BERT": 1.78x (1 thread) and 1.85x (4 threads), 438 -> 181 MB.
- microsoft/onnxruntime#6695, BERT-base seq 128: 1.59x on Cascade Lake (VNNI), 1.08x on Ryzen 3700X (no VNNI).
- pytorch/ao#4365: torchao's Int8DynamicActivationInt8Weight ran slower than torch.ao's quantize_dynamic on CPU.

So every number here is measured, never assumed: each variant gets warm-up runs, then ``runs`` timed
forward passes (``time.perf_counter`` around each), reported as the median and the interquartile
range. Size is the serialized model (``torch.save`` of the state dict, or the .onnx file). For trained
models, accuracy on held-out shapes and top-1 agreement / max |logit difference| against fp32 are
computed on the same images.

Variants (the names are a public contract):
  fp32              the model as trained
  bf16              weights and activations in bfloat16 (fast where the CPU has AVX-512 BF16 or AMX)
  int8_dynamic      int8 weights, activations quantized to int8 on the fly per batch (torchao
                    ``Int8DynamicActivationInt8WeightConfig``; falls back to torch.ao ``quantize_dynamic``)
  int8_weight_only  int8 weights, dequantized to fp32 for the matmul (torchao ``Int8WeightOnlyConfig``)
  onnx_fp32         exported with ``torch.onnx.export``, run by ONNX Runtime
  onnx_int8         that export quantized by ``onnxruntime.quantization.quantize_dynamic``
and one extra for comparison:
  int8_dynamic_legacy  torch.ao.quantization.quantize_dynamic (deprecated, still runs in torch 2.13)

Measurements are serialized process-wide by ``MEASURE_LOCK`` so two users never time each other's load.
"""

from __future__ import annotations

import copy
import io
import math
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shared.data.shapes import SHAPES, ShapesDataset

# --------------------------------------------------------------------------------------
#                                   Limits and names
# --------------------------------------------------------------------------------------

MAX_BATCH = 64  # images per forward pass
MAX_RUNS = 50  # timed forward passes per variant
MAX_THREADS = os.cpu_count() or 1
# One thread unless the user asks for more: on a small shared CPU (2 vCPUs here, and on a free Space)
# every multi-threaded op waits for its slowest thread, which made PyTorch timings 4-18x slower and
# far noisier in our trials while another process was busy.
DEFAULT_THREADS = 1
WARMUP_RUNS = 3  # untimed passes first: allocator, oneDNN primitive and ORT arena set-up
PROGRESS_EVERY_S = 1.0  # at most one progress update a second while timing
EVAL_IMAGES_SMALL = 256  # held-out test images for accuracy/agreement, models up to 64 px
EVAL_IMAGES_LARGE = 32  # the same at 224 px (ViT-B size), where each pass costs ~100x more

VIT_B16_RANDOM = "vit-b16-random"
VIT_B16_RANDOM_LABEL = "ViT-B/16 architecture, random weights (latency only)"

VARIANTS: dict[str, str] = {
    "fp32": "PyTorch eager, float32",
    "bf16": "PyTorch eager, bfloat16 weights and activations",
    "int8_dynamic": "int8 weights + int8 activations quantized per batch (torchao quantize_)",
    "int8_weight_only": "int8 weights dequantized for an fp32 matmul (torchao quantize_)",
    "onnx_fp32": "torch.onnx.export -> ONNX Runtime, float32",
    "onnx_int8": "ONNX Runtime dynamic int8 (onnxruntime.quantization.quantize_dynamic)",
    "int8_dynamic_legacy": "torch.ao.quantization.quantize_dynamic (deprecated API, for comparison)",
}
CONTRACT_VARIANTS: tuple[str, ...] = ("fp32", "bf16", "int8_dynamic", "int8_weight_only", "onnx_fp32", "onnx_int8")

# One measurement at a time in this process: the hub tab and the standalone mount are two Gradio
# apps with two queues, so a queue's concurrency limit alone would not stop them overlapping.
MEASURE_LOCK = threading.Lock()

Progress = Callable[[float, str], None]


class VariantUnavailable(Exception):
    """This variant cannot run here; the message says why (shown to the user, not hidden)."""


# --------------------------------------------------------------------------------------
#                                   Statistics
# --------------------------------------------------------------------------------------

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


def top1_agreement(reference: torch.Tensor, logits: torch.Tensor) -> float:
    """Share of images whose top-1 class is the same under both logits. (N, C), (N, C) -> float."""
    if reference.shape != logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(reference.shape)} vs {tuple(logits.shape)}")
    return (reference.argmax(-1) == logits.argmax(-1)).float().mean().item()


def max_abs_logit_diff(reference: torch.Tensor, logits: torch.Tensor) -> float:
    """Largest |logit - reference logit| over all images and classes."""
    return (reference.float() - logits.float()).abs().max().item()


# --------------------------------------------------------------------------------------
#                                   Models and inputs
# --------------------------------------------------------------------------------------

def model_choices() -> list[tuple[str, str]]:
    """(label, name) pairs: the classifiers loadable offline, then the random ViT-B/16 architecture."""
    from shared.models import offline_names, summary

    found = [(f"{n} ({summary(n)})", n) for n in offline_names("image-classification")]
    return found + [(VIT_B16_RANDOM_LABEL, VIT_B16_RANDOM)]


def check_model(name: str) -> str:
    """The canonical model name, or ValueError listing the valid ones."""
    if name == VIT_B16_RANDOM_LABEL:
        return VIT_B16_RANDOM
    valid = [n for _, n in model_choices()]
    if name not in valid:
        raise ValueError(f"unknown or unavailable model {name!r}; choose one of {valid}")
    return name


def check_variants(variants: Sequence[str]) -> list[str]:
    """Known variant names, duplicates removed, order kept; ValueError listing the valid ones."""
    if isinstance(variants, str) or not isinstance(variants, Sequence) or len(variants) == 0:
        raise ValueError(f"choose at least one variant from {list(VARIANTS)}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    return list(dict.fromkeys(variants))


def _check_int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be from {lo} to {hi}, got {value}")
    return value


@dataclass
class ModelUnderTest:
    name: str
    model: torch.nn.Module  # fp32, eval mode, on the CPU; never mutated (variants copy it)
    image_size: int
    trained: bool  # False for random weights: accuracy and agreement are then meaningless
    shape_labels: list[int] | None  # class index of each shape in SHAPES, if the model classifies shapes
    processor: Any


_RANDOM_VIT_B: torch.nn.Module | None = None


def random_vit_b16() -> torch.nn.Module:
    """ViT-B/16 as in google/vit-base-patch16-224 (transformers' ViTConfig defaults: width 768,
    12 layers, 12 heads, MLP 3072, patch 16, 224 px) with 1000 classes and random weights.
    Latency does not depend on the weight values, so no download is needed to time it."""
    global _RANDOM_VIT_B
    if _RANDOM_VIT_B is None:
        from transformers import ViTConfig, ViTForImageClassification

        torch.manual_seed(0)
        _RANDOM_VIT_B = ViTForImageClassification(ViTConfig(num_labels=1000)).eval()
    return _RANDOM_VIT_B


def load_model(name: str) -> ModelUnderTest:
    """The fp32 model on the CPU (the quantized kernels compared here are CPU kernels)."""
    name = check_model(name)
    if name == VIT_B16_RANDOM:
        from transformers import ViTImageProcessor

        model = random_vit_b16()
        return ModelUnderTest(name, model, 224, False, None, ViTImageProcessor())  # mean/std 0.5 as the real one
    from shared.models import load

    loaded = load(name, device="cpu")
    config = loaded.model.config
    by_name = {v: int(k) for k, v in config.id2label.items()}
    shape_labels = [by_name[s] for s in SHAPES] if set(SHAPES) <= set(by_name) else None
    size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
    return ModelUnderTest(name, loaded.model, size, True, shape_labels, loaded.processor)


_INPUTS: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}


def held_out_images(mut: ModelUnderTest, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test-split shapes through the model's own processor: pixels (n, 3, H, W), shape ids (n,)."""
    key = (mut.name, n)
    if key not in _INPUTS:
        images, labels, _ = ShapesDataset("test", n, size=mut.image_size).arrays()  # (n, H, W, 3) uint8
        pixels = mut.processor(images=list(images), return_tensors="pt")["pixel_values"]  # (n, 3, H, W)
        _INPUTS.clear()  # one model's inputs at a time
        _INPUTS[key] = (pixels.float(), torch.from_numpy(labels).long())
    return _INPUTS[key]


# --------------------------------------------------------------------------------------
#                                   Variants
# --------------------------------------------------------------------------------------

@dataclass
class Runner:
    """One prepared variant: what runs, its serialized size, and a forward pixels -> fp32 logits."""

    variant: str
    backend: str  # what actually runs, with library versions
    size_mb: float
    forward: Callable[[torch.Tensor], torch.Tensor]  # (B, 3, H, W) float32 -> (B, classes) float32
    notes: list[str] = field(default_factory=list)


def serialized_mb(module: torch.nn.Module) -> float:
    """Bytes of ``torch.save(state_dict)``: what a user would ship, packed int8 weights included."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell() / 1e6


def _torch_runner(variant: str, module: torch.nn.Module, backend: str, dtype: torch.dtype = torch.float32,
                  notes: list[str] | None = None) -> Runner:
    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(pixel_values=x.to(dtype)).logits.float()  # (B, classes)

    return Runner(variant, backend, serialized_mb(module), forward, notes or [])


def _torchao() -> Any:
    try:
        import torchao
        import torchao.quantization  # noqa: F401
    except Exception as err:  # ImportError, or a torchao build that does not match this torch
        raise VariantUnavailable(f"torchao is not usable here ({type(err).__name__}: {err})") from None
    return torchao


def _prepare_fp32(mut: ModelUnderTest, workdir: Path) -> Runner:
    return _torch_runner("fp32", mut.model, f"PyTorch {torch.__version__} eager, float32")


def _prepare_bf16(mut: ModelUnderTest, workdir: Path) -> Runner:
    model = copy.deepcopy(mut.model).to(torch.bfloat16)  # .to() on a module is in place: copy first
    return _torch_runner("bf16", model, f"PyTorch {torch.__version__} eager, bfloat16", dtype=torch.bfloat16)


def _prepare_int8_legacy(mut: ModelUnderTest, variant: str, notes: list[str]) -> Runner:
    model = copy.deepcopy(mut.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.ao.quantization is deprecated": stated in the notes instead
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    notes = notes + ["torch.ao.quantization is deprecated in favour of torchao; it still runs in torch "
                     f"{torch.__version__} with a deprecation warning"]
    return _torch_runner(variant, model, f"torch.ao.quantization.quantize_dynamic (torch {torch.__version__})",
                         notes=notes)


def _prepare_int8_dynamic(mut: ModelUnderTest, workdir: Path) -> Runner:
    try:
        torchao = _torchao()
    except VariantUnavailable as err:
        return _prepare_int8_legacy(mut, "int8_dynamic", [f"{err}; fell back to torch.ao quantize_dynamic"])
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    model = copy.deepcopy(mut.model)
    quantize_(model, Int8DynamicActivationInt8WeightConfig())  # every nn.Linear, in place
    return _torch_runner("int8_dynamic", model,
                         f"torchao {torchao.__version__} Int8DynamicActivationInt8WeightConfig, eager")


def _prepare_int8_weight_only(mut: ModelUnderTest, workdir: Path) -> Runner:
    torchao = _torchao()  # torch.ao has no int8 weight-only Linear for CPU: no honest fallback
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = copy.deepcopy(mut.model)
    quantize_(model, Int8WeightOnlyConfig())
    return _torch_runner("int8_weight_only", model, f"torchao {torchao.__version__} Int8WeightOnlyConfig, eager")


def _prepare_int8_dynamic_legacy(mut: ModelUnderTest, workdir: Path) -> Runner:
    return _prepare_int8_legacy(mut, "int8_dynamic_legacy", [])


class _Logits(torch.nn.Module):
    """Wraps a transformers classifier so the exported graph has one tensor in and one out."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits  # (B, classes)


def export_onnx(model: torch.nn.Module, image_size: int, path: Path) -> str:
    """Export with a dynamic batch axis; returns which exporter worked.

    torch 2.13's default is the torch.export-based exporter (``dynamo=True``, needs onnxscript);
    the TorchScript exporter (``dynamo=False``) is deprecated and only tried if the first fails.
    """
    wrapper = _Logits(model).eval()
    example = (torch.zeros(2, 3, image_size, image_size),)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
            torch.onnx.export(wrapper, example, str(path), input_names=["pixel_values"], output_names=["logits"],
                              dynamo=True, dynamic_shapes={"pixel_values": {0: batch}}, external_data=False,
                              verbose=False)
        return f"torch.onnx.export(dynamo=True), torch {torch.__version__}"
    except Exception as first:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, example, str(path), input_names=["pixel_values"], output_names=["logits"],
                                  dynamo=False, dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
        except Exception as second:
            raise VariantUnavailable(f"ONNX export failed: dynamo=True: {first}; dynamo=False: {second}") from None
        return f"torch.onnx.export(dynamo=False, deprecated TorchScript exporter; dynamo=True failed: {first})"


def _onnx_bytes(path: Path) -> int:
    extra = path.with_name(path.name + ".data")  # external weights, if the exporter wrote any
    return path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)


def _ort_runner(variant: str, path: Path, backend: str) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise VariantUnavailable(f"onnxruntime is not installed ({err})") from None
    sessions: dict[int, Any] = {}  # one session per thread count (fixed at session creation)

    def forward(x: torch.Tensor) -> torch.Tensor:
        threads = torch.get_num_threads()  # compare() sets this for every backend
        if threads not in sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            sessions[threads] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out = sessions[threads].run(None, {"pixel_values": x.numpy()})[0]  # (B, classes)
        return torch.from_numpy(out)

    return Runner(variant, f"{backend}; onnxruntime {ort.__version__} CPUExecutionProvider",
                  _onnx_bytes(path) / 1e6, forward)


def _onnx_fp32_path(mut: ModelUnderTest, workdir: Path) -> tuple[Path, str]:
    path = workdir / "model_fp32.onnx"
    exporter_file = workdir / "exporter.txt"
    if not path.exists():
        exporter_file.write_text(export_onnx(mut.model, mut.image_size, path))
    return path, exporter_file.read_text()


def _prepare_onnx_fp32(mut: ModelUnderTest, workdir: Path) -> Runner:
    path, exporter = _onnx_fp32_path(mut, workdir)
    return _ort_runner("onnx_fp32", path, exporter)


def _prepare_onnx_int8(mut: ModelUnderTest, workdir: Path) -> Runner:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, exporter = _onnx_fp32_path(mut, workdir)
    path = workdir / "model_int8.onnx"
    if not path.exists():
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a "consider pre-processing" hint on every call
        try:
            quantize_dynamic(str(src), str(path), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
    return _ort_runner("onnx_int8", path, f"{exporter}; onnxruntime.quantization.quantize_dynamic(QInt8 weights)")


_PREPARE: dict[str, Callable[[ModelUnderTest, Path], Runner]] = {
    "fp32": _prepare_fp32,
    "bf16": _prepare_bf16,
    "int8_dynamic": _prepare_int8_dynamic,
    "int8_weight_only": _prepare_int8_weight_only,
    "onnx_fp32": _prepare_onnx_fp32,
    "onnx_int8": _prepare_onnx_int8,
    "int8_dynamic_legacy": _prepare_int8_dynamic_legacy,
}

# Prepared variants of the most recent model only (a ViT-B/16 set is ~1 GB): (model, variant) -> Runner
# or the reason it is unavailable.
_PREPARED: dict[tuple[str, str], Runner | str] = {}
_WORKDIRS: dict[str, tempfile.TemporaryDirectory] = {}


def prepare(mut: ModelUnderTest, variant: str) -> Runner:
    """Build (once) the runner of ``variant``; VariantUnavailable with the reason if it cannot run here."""
    if any(name != mut.name for name, _ in _PREPARED) or any(name != mut.name for name in _WORKDIRS):
        _PREPARED.clear()
        for tmp in _WORKDIRS.values():
            tmp.cleanup()
        _WORKDIRS.clear()
    key = (mut.name, variant)
    if key not in _PREPARED:
        workdir = Path(_WORKDIRS.setdefault(mut.name, tempfile.TemporaryDirectory(prefix="quant_latency-")).name)
        try:
            _PREPARED[key] = _PREPARE[variant](mut, workdir)
        except VariantUnavailable as err:
            _PREPARED[key] = str(err)
        except Exception as err:  # a backend that fails on this model or CPU: say so, do not hide the row
            _PREPARED[key] = f"{variant} failed to prepare: {type(err).__name__}: {err}"
    prepared = _PREPARED[key]
    if isinstance(prepared, str):
        raise VariantUnavailable(prepared)
    return prepared


# --------------------------------------------------------------------------------------
#                                   Measurement
# --------------------------------------------------------------------------------------

def time_forward(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, runs: int,
                 warmup: int = WARMUP_RUNS, on_run: Callable[[int], None] | None = None) -> list[float]:
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


def logits_on(runner: Runner, pixels: torch.Tensor, batch: int = MAX_BATCH) -> torch.Tensor:
    """The runner's logits for every image, in batches: (N, 3, H, W) -> (N, classes)."""
    return torch.cat([runner.forward(pixels[i:i + batch]) for i in range(0, len(pixels), batch)])


def _unavailable_row(variant: str, reason: str) -> dict[str, Any]:
    return {"variant": variant, "available": False, "reason": reason, "backend": None,
            "median_ms": None, "iqr_ms": None, "q1_ms": None, "q3_ms": None, "throughput_ips": None,
            "size_mb": None, "accuracy": None, "top1_agreement": None, "max_abs_logit_diff": None,
            "speedup_vs_fp32": None, "samples_ms": [], "measured_from": None, "measured_to": None}


def compare(model: str, variants: Sequence[str], batch_size: int, runs: int, threads: int | None = None,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """Time each variant of ``model`` and check it against fp32; one dict per variant, in order.

    Holds ``MEASURE_LOCK`` for the whole call (preparation included, since exporting or quantizing
    a model also loads the CPU), and sets ``torch.set_num_threads(threads)`` only for its duration.
    ``measured_from``/``measured_to`` are ``time.time()`` around each variant's timed runs;
    ``lock_wait_s`` is how long this call waited for another measurement to finish.
    """
    name = check_model(model)
    chosen = check_variants(variants)
    batch_size = _check_int(batch_size, "batch size", 1, MAX_BATCH)
    runs = _check_int(runs, "runs", 1, MAX_RUNS)
    threads = _check_int(DEFAULT_THREADS if threads is None else threads, "threads", 1, MAX_THREADS)
    report = progress or (lambda fraction, message: None)

    asked = time.time()
    if not MEASURE_LOCK.acquire(blocking=False):
        report(0.0, "waiting for another measurement to finish (one at a time, so timings stay clean)")
        MEASURE_LOCK.acquire()
    lock_wait_s = time.time() - asked
    previous_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        report(0.0, f"loading {name}")
        mut = load_model(name)
        n_eval = 0 if not mut.trained else EVAL_IMAGES_SMALL if mut.image_size <= 64 else EVAL_IMAGES_LARGE
        pixels, shapes = held_out_images(mut, max(n_eval, batch_size))  # (N, 3, H, W), (N,)
        eval_pixels, eval_shapes = pixels[:n_eval], shapes[:n_eval]
        timing_x = pixels[:batch_size].contiguous()  # (B, 3, H, W): real test images, also for random weights

        # fp32 logits are the reference for agreement, so fp32 is prepared even if not shown.
        reference = logits_on(prepare(mut, "fp32"), eval_pixels) if mut.trained else None

        rows: list[dict[str, Any]] = []
        for k, variant in enumerate(chosen):
            base = k / len(chosen)
            report(base, f"{variant}: preparing")
            try:
                runner = prepare(mut, variant)
            except VariantUnavailable as err:
                rows.append(_unavailable_row(variant, str(err)))
                continue
            try:
                report(base, f"{variant}: {WARMUP_RUNS} warm-up runs")
                last_report = [time.perf_counter()]

                def on_run(i: int, base: float = base, variant: str = variant, last_report: list = last_report) -> None:
                    # A progress update wakes the server and the browser, which load the very CPU being
                    # timed (per-run updates slowed the fast variants here), so at most one a second.
                    if time.perf_counter() - last_report[0] >= PROGRESS_EVERY_S:
                        report(base + i / (runs + 1) / len(chosen), f"{variant}: timed run {i}/{runs}")
                        last_report[0] = time.perf_counter()

                measured_from = time.time()
                samples = time_forward(runner.forward, timing_x, runs, on_run=on_run)
                measured_to = time.time()
                report(base + runs / (runs + 1) / len(chosen), f"{variant}: checking against fp32")
                row = {"variant": variant, "available": True, "reason": None, "backend": runner.backend,
                       **{k2: v for k2, v in summarize(samples).items() if k2 in ("median_ms", "iqr_ms", "q1_ms", "q3_ms")},
                       "size_mb": runner.size_mb, "accuracy": None, "top1_agreement": None,
                       "max_abs_logit_diff": None, "notes": runner.notes}
                row["throughput_ips"] = batch_size / (row["median_ms"] / 1e3)
                if reference is not None:
                    logits = logits_on(runner, eval_pixels)  # (N, classes)
                    row["top1_agreement"] = top1_agreement(reference, logits)
                    row["max_abs_logit_diff"] = max_abs_logit_diff(reference, logits)
                    if mut.shape_labels is not None:
                        truth = torch.tensor(mut.shape_labels)[eval_shapes]  # shape id -> model class id
                        row["accuracy"] = (logits.argmax(-1) == truth).float().mean().item()
                row.update(samples_ms=samples, measured_from=measured_from, measured_to=measured_to)
                rows.append(row)
            except Exception as err:  # e.g. a kernel missing on this CPU: show the row with the reason
                rows.append(_unavailable_row(variant, f"{variant} failed to run: {type(err).__name__}: {err}"))

        fp32 = next((r for r in rows if r["variant"] == "fp32" and r["available"]), None)
        for r in rows:
            r.update(model=name, batch_size=batch_size, runs=runs, warmup=WARMUP_RUNS, threads=threads,
                     eval_images=n_eval, lock_wait_s=lock_wait_s)
            r.setdefault("speedup_vs_fp32", None)
            if fp32 is not None and r["available"]:
                r["speedup_vs_fp32"] = fp32["median_ms"] / r["median_ms"]
        report(1.0, "done")
        return rows
    finally:
        torch.set_num_threads(previous_threads)
        MEASURE_LOCK.release()


# --------------------------------------------------------------------------------------
#                                   What to expect on this CPU
# --------------------------------------------------------------------------------------

def int8_expectation(isa: dict[str, bool]) -> str:
    """Why int8 may or may not help on this CPU, from its ISA flags (see shared.device.ISA_FLAGS)."""
    vnni = isa.get("AVX-512 VNNI") or isa.get("AVX-VNNI")
    amx = isa.get("AMX int8")
    if amx:
        kind = ("this CPU has AMX int8 tiles and VNNI, the best case for int8 matmuls; whether a "
                "framework uses them depends on its kernels (oneDNN in PyTorch and ONNX Runtime can)")
    elif vnni:
        kind = "this CPU has VNNI (int8 dot products in one instruction), the case where int8 tends to pay off"
    elif isa.get("AVX2"):
        kind = ("this CPU has AVX2 but no VNNI: int8 multiplies need several instructions each, so "
                "int8 often gives about 1.0-1.1x")
    else:
        kind = "this CPU has neither AVX2 nor VNNI: expect little or no int8 gain"
    bf16 = isa.get("AVX-512 BF16") or isa.get("AMX bf16")
    bf16_text = ("it also has native bf16 instructions, so bf16 can beat fp32" if bf16 else
                 "it has no native bf16 instructions, so bf16 is emulated and usually slower than fp32")
    return f"{kind}; {bf16_text}."
