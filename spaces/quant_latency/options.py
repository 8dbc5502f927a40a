"""What a user can ask the quant_latency space for: models, variants, limits, and their validation.

Torch-free on purpose: the hub imports ``app.py`` and calls ``build()`` at start-up, and the page needs
these names and limits before anyone measures (issue 14: start-up must stay close to a bare gradio app).
``compute.py`` and the modules under it import from here, so each limit is defined once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from shared import validate

MAX_BATCH = 64  # images per forward pass
MAX_RUNS = 50  # timed forward passes per variant
MAX_THREADS = os.cpu_count() or 1
# One thread unless the user asks for more: on a small shared CPU (2 vCPUs here, and on a free Space)
# every multi-threaded op waits for its slowest thread, which made PyTorch timings 4-18x slower and
# far noisier in our trials while another process was busy.
DEFAULT_THREADS = 1
DEFAULT_BATCH = 8
DEFAULT_RUNS = 20
WARMUP_RUNS = 3  # untimed passes first: allocator, oneDNN primitive and ORT arena set-up
EVAL_IMAGES_SMALL = 256  # held-out test images for accuracy/agreement, models up to 64 px
EVAL_IMAGES_LARGE = 32  # the same at 224 px (ViT-B size), where each pass costs ~100x more

EMBEDDED_MODEL = "vit-tiny-shapes"
VIT_B16_RANDOM = "vit-b16-random"
VIT_B16_RANDOM_LABEL = "ViT-B/16 architecture, random weights (latency only)"
# ViT-B/16 as published (Dosovitskiy et al., 2021, Table 1; the google/vit-base-patch16-224 config):
# the random model is built from this dict and the page describes it from the same dict.
VIT_B16: dict[str, int] = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                           "intermediate_size": 3072, "patch_size": 16, "image_size": 224, "num_labels": 1000}

# The names are a public contract (API argument values). Sources of each description:
# - torchao Int8DynamicActivationInt8WeightConfig docs: "int8 dynamic per-token activation and int8
#   per-channel weight quantization to linear layers" (docs.pytorch.org/ao, torchao 0.18).
# - PyTorch "Dynamic Quantization on BERT" tutorial, of torch.ao quantize_dynamic: "The activations are
#   quantized dynamically (per batch) to int8": one scale for the whole input tensor.
VARIANTS: dict[str, str] = {
    "fp32": "PyTorch eager, float32",
    "bf16": "PyTorch eager, bfloat16 weights and activations",
    "int8_dynamic": "int8 weights (a scale per output channel) + int8 activations quantized on the fly, "
                    "a scale per token (torchao quantize_)",
    "int8_weight_only": "int8 weights (a scale per output channel), converted to fp32 for each matmul "
                        "(torchao quantize_)",
    "onnx_fp32": "torch.onnx.export -> ONNX Runtime, float32",
    "onnx_int8": "ONNX Runtime dynamic int8 (onnxruntime.quantization.quantize_dynamic)",
    "int8_dynamic_legacy": "torch.ao.quantization.quantize_dynamic: int8 weights, activations quantized "
                           "with one scale per batch (deprecated API, for comparison)",
}
CONTRACT_VARIANTS: tuple[str, ...] = ("fp32", "bf16", "int8_dynamic", "int8_weight_only", "onnx_fp32", "onnx_int8")
# Variants that store linear weights in fewer bits than fp32 (their logits must differ from fp32's).
QUANTIZED: dict[str, str] = {"bf16": "bfloat16", "int8_dynamic": "int8", "int8_weight_only": "int8",
                             "onnx_int8": "int8", "int8_dynamic_legacy": "int8"}


def model_choices() -> list[tuple[str, str]]:
    """(label, name) pairs: the classifiers loadable offline, then the random ViT-B/16 architecture.
    Reads only config files and the Hugging Face cache index (no torch)."""
    from shared.models import offline_names, summary

    found = [(f"{n} ({summary(n)})", n) for n in offline_names("image-classification")]
    return found + [(VIT_B16_RANDOM_LABEL, VIT_B16_RANDOM)]


def check_model(name: Any) -> str:
    """The canonical model name (the random ViT-B's label is accepted too), or ValueError listing them."""
    if name == VIT_B16_RANDOM_LABEL:
        return VIT_B16_RANDOM
    return validate.choice(name, "model", [n for _, n in model_choices()])


def check_variants(variants: Any) -> list[str]:
    """Known variant names, duplicates removed, order kept; ValueError listing the valid ones."""
    return validate.choices(variants, "variant", VARIANTS, at_least=1)


def check_request(model: Any, variants: Any, batch_size: Any, runs: Any,
                  threads: Any = None) -> tuple[str, list[str], int, int, int]:
    """Every argument of a measurement, validated before torch is imported or the lock is taken."""
    threads = DEFAULT_THREADS if threads is None else threads
    return (check_model(model), check_variants(variants),
            validate.integer(batch_size, "batch size", 1, MAX_BATCH),
            validate.integer(runs, "runs", 1, MAX_RUNS),
            validate.integer(threads, "threads", 1, MAX_THREADS))


def examples(names: Sequence[str]) -> list[list[Any]]:
    """Rows for ``gr.Examples`` (model, variants, batch, runs, threads), from the models offered here."""
    rows = []
    if EMBEDDED_MODEL in names:
        rows.append([EMBEDDED_MODEL, list(CONTRACT_VARIANTS), DEFAULT_BATCH, DEFAULT_RUNS, DEFAULT_THREADS])
        rows.append([EMBEDDED_MODEL, ["fp32", "int8_dynamic", "int8_dynamic_legacy", "onnx_int8"], 64, 10, 1])
    rows.append([VIT_B16_RANDOM, ["fp32", "bf16", "int8_dynamic", "onnx_fp32", "onnx_int8"], 1, 5, DEFAULT_THREADS])
    return rows
