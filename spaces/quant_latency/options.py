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
    if EMBEDDED_MODEL in names:  # issue 23: the int4 and GPU rows
        rows.append([EMBEDDED_MODEL, ["fp32", "int8_dynamic", "int4_weight_only", "int4_weight_intx",
                                      "int8_act_int4_weight", "cuda_fp16", "cuda_bf16"], 8, 10, 1])
    return rows


# --------------------------------------------------------------------------------------
#   Issue 23: int4 and CUDA variants, memory by precision, resolution sweep, efficient
#   architectures, and the control-rate readout. Limits and names here; the code elsewhere.
# --------------------------------------------------------------------------------------

# More variants (names are API argument values too). int4: torchao 0.18's Int4WeightOnlyConfig, and its
# "intx" configs, whose IntxUnpackedToInt8Tensor keeps int4 values (-8..7) one per int8 byte with a scale
# per group of INT4_GROUP weights. CUDA: the model cast to fp16 / bf16 on the GPU, where one is present.
INT4_GROUP = 32  # weights per scale in the intx int4 variants (must divide each linear layer's input size)
VARIANTS.update({
    "int4_weight_only": "int4 weights in groups of 128 (torchao Int4WeightOnlyConfig, packed int4 kernels)",
    "int4_weight_intx": f"int4 weights (values -8..7, one scale per {INT4_GROUP} weights) kept one per int8 "
                        "byte, converted to fp32 for each matmul (torchao IntxWeightOnlyConfig)",
    "int8_act_int4_weight": f"int4 weights (one scale per {INT4_GROUP}) + int8 activations quantized on the "
                            "fly, a scale per token (torchao Int8DynamicActivationIntxWeightConfig)",
    "cuda_fp16": "PyTorch eager on the GPU (CUDA), float16 weights and activations",
    "cuda_bf16": "PyTorch eager on the GPU (CUDA), bfloat16 weights and activations",
})
GPU_VARIANTS: tuple[str, ...] = ("cuda_fp16", "cuda_bf16")
INT4_VARIANTS: tuple[str, ...] = ("int4_weight_only", "int4_weight_intx", "int8_act_int4_weight")

# Memory by precision: bytes per stored weight. fp32 is IEEE 754 binary32 (4 bytes), fp16 binary16 and
# bf16 (8 exponent bits, 7 mantissa bits) 2 bytes each; int8 1 byte; int4 half a byte when two values
# are packed in a byte (scales and zero points not counted: see text.MEMORY_HELP).
BYTES_PER_VALUE: dict[str, float] = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "int4": 0.5}
MAX_GPU_GB = 1024.0  # the "fits on N GB?" input, GB = 10^9 bytes
DEFAULT_GPU_GB = 24.0
# Large models, counted on the meta device from their transformers configs (no weights are downloaded).
# ViT sizes: Dosovitskiy et al. (2021), Table 1 (layers, width, MLP, heads); the paper's parameter counts
# are shown beside ours. LLaVA: transformers' LlavaConfig() defaults, "a llava-1.5-7b style configuration"
# in its docstring (CLIP ViT-L/14 at 336 px + a 2-layer MLP projector + a Llama 7B language model).
LARGE_VITS: dict[str, dict[str, int]] = {
    "ViT-B/16": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                 "patch_size": 16, "image_size": 224, "num_labels": 1000},
    "ViT-L/16": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
                 "patch_size": 16, "image_size": 224, "num_labels": 1000},
    "ViT-H/14": {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16, "intermediate_size": 5120,
                 "patch_size": 14, "image_size": 224, "num_labels": 1000},
}
LLAVA_7B = "LLaVA-1.5-7B"
LARGE_MODELS: tuple[str, ...] = (*LARGE_VITS, LLAVA_7B)
PAPER_PARAMS_M: dict[str, tuple[int, str]] = {  # millions, as printed
    "ViT-B/16": (86, "Dosovitskiy et al., 2021, Table 1"),
    "ViT-L/16": (307, "Dosovitskiy et al., 2021, Table 1"),
    "ViT-H/14": (632, "Dosovitskiy et al., 2021, Table 1"),
}

# Latency against input resolution: the same ViT at several sizes, position embeddings interpolated.
SWEEP_MODELS: tuple[str, ...] = (EMBEDDED_MODEL, VIT_B16_RANDOM)
MAX_SIDE = 512  # pixels, largest image side in the sweep
MIN_SIZES, MAX_SIZES = 2, 8  # resolutions in one sweep
DEFAULT_LARGEST_SIDE = 256
DEFAULT_SIZES = 4
MAX_SWEEP_RUNS = 20
DEFAULT_SWEEP_RUNS = 5

# Efficient architectures beside the ViT: random weights, same input, batch 1. MobileViT sizes: the
# apple/mobilevit-small (transformers' MobileViTConfig defaults), -x-small and -xx-small configs.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "ViT-Ti/16": {"family": "vit", "config": {"hidden_size": 192, "num_hidden_layers": 12, "num_attention_heads": 3,
                                              "intermediate_size": 768, "patch_size": 16}},
    "ViT-B/16": {"family": "vit", "config": {k: v for k, v in VIT_B16.items() if k not in ("image_size", "num_labels")}},
    "MobileViT-S": {"family": "mobilevit", "config": {}},
    "MobileViT-XS": {"family": "mobilevit", "config": {"hidden_sizes": [96, 120, 144],
                                                       "neck_hidden_sizes": [16, 32, 48, 64, 80, 96, 384]}},
    "MobileViT-XXS": {"family": "mobilevit", "config": {"hidden_sizes": [64, 80, 96], "expand_ratio": 2.0,
                                                        "neck_hidden_sizes": [16, 16, 24, 48, 64, 80, 320]}},
}
DEFAULT_ARCHITECTURES: tuple[str, ...] = ("ViT-Ti/16", "MobileViT-XS", "MobileViT-S")
ARCH_SIDE_MULTIPLE = 32  # MobileViT downsamples by 32; ViTs by their patch (16)
MIN_ARCH_SIDE, MAX_ARCH_SIDE, DEFAULT_ARCH_SIDE = 64, 512, 224
MAX_ARCH_RUNS, DEFAULT_ARCH_RUNS = 20, 5

# "Meets the target control rate?": budget per frame = 1000 / Hz ms, batch 1.
MAX_HZ = 1000.0
DEFAULT_HZ = 30.0
DEFAULT_CONTROL_VARIANT = "fp32"


def check_gpu_gb(value: Any) -> float:
    return validate.number(value, "GPU memory (GB)", 0, MAX_GPU_GB, above=True)


def check_precisions(values: Any) -> list[str]:
    return validate.choices(values, "precision", BYTES_PER_VALUE, at_least=1)


def check_sweep(model: Any, largest_side: Any, sizes: Any, runs: Any) -> tuple[str, int, int, int]:
    """Model, largest side, number of sizes and runs of a resolution sweep (the multiple-of-patch check
    needs the model's patch size: ``sweeps.resolutions``)."""
    return (validate.choice(model, "sweep model", list(SWEEP_MODELS)),
            validate.integer(largest_side, "largest side (px)", 1, MAX_SIDE),
            validate.integer(sizes, "number of resolutions", MIN_SIZES, MAX_SIZES),
            validate.integer(runs, "runs", 1, MAX_SWEEP_RUNS))


def check_architectures(names: Any, side: Any, runs: Any) -> tuple[list[str], int, int]:
    chosen = validate.choices(names, "architecture", ARCHITECTURES, at_least=1)
    side = validate.integer(side, "image side (px)", MIN_ARCH_SIDE, MAX_ARCH_SIDE)
    if side % ARCH_SIDE_MULTIPLE:
        raise ValueError(f"image side (px) must be a multiple of {ARCH_SIDE_MULTIPLE} (MobileViT downsamples "
                         f"by 32), got {side}")
    return chosen, side, validate.integer(runs, "runs", 1, MAX_ARCH_RUNS)


def check_control(model: Any, variant: Any, hz: Any, runs: Any) -> tuple[str, str, float, int]:
    return (check_model(model), validate.choice(variant, "variant", list(VARIANTS)),
            validate.number(hz, "control rate (Hz)", 0, MAX_HZ, above=True),
            validate.integer(runs, "runs", 1, MAX_RUNS))
