"""The page's prose. Model facts are read from the shipped weights' config.json and metrics.json (and the
random ViT-B's from ``options.VIT_B16``, which builds it), never typed, so they cannot go stale."""

from __future__ import annotations

from .options import EMBEDDED_MODEL, EVAL_IMAGES_SMALL, VIT_B16, VIT_B16_RANDOM, WARMUP_RUNS


def intro(emoji: str, title: str) -> str:
    return (
        f"## {emoji} {title}\nIs int8 faster than fp32? It depends on the CPU, the runtime and the model size, "
        "so this page measures it here instead of quoting a speed-up. Each variant gets "
        f"{WARMUP_RUNS} warm-up runs, then the timed runs; the table shows the **median** and the "
        "**interquartile range** (the middle half of the runs). Measurements run one at a time across the "
        "whole hub, so two users never time each other's load."
    )


def embedded_model_facts(name: str = EMBEDDED_MODEL) -> str | None:
    """One line on the shipped model from its config.json and metrics.json, or None if it is not shipped."""
    from shared.models import shipped_metrics, summary

    m = shipped_metrics(name)
    if m is None:
        return None
    return (f"`{name}`: {summary(name)}; {m['parameters']:,} parameters; accuracy {m['accuracy']:.2%} on "
            f"{m['n']:,} held-out test shapes, trained for {m['steps_trained']:,} steps in "
            f"{m['train_wall_seconds'] / 60:.0f} min (its model card). The accuracy column below is measured "
            f"again here, on {EVAL_IMAGES_SMALL} test shapes.")


def random_model_facts() -> str:
    c = VIT_B16
    grid = c["image_size"] // c["patch_size"]
    return (f"`{VIT_B16_RANDOM}`: the ViT-B/16 architecture (image {c['image_size']}, patch {c['patch_size']} "
            f"({grid}x{grid} grid), width {c['hidden_size']}, {c['num_hidden_layers']} layers, "
            f"{c['num_attention_heads']} heads, MLP {c['intermediate_size']}, {c['num_labels']} classes) with "
            "random weights: its latency is real, its accuracy is not reported.")


def models() -> str:
    lines = ["**Models.**", *(f"- {t}" for t in (embedded_model_facts(), random_model_facts()) if t),
             "- any other image classifier already in the local Hugging Face cache."]
    return "\n".join(lines)


VARIANTS_HELP = "**Variants:** how the weights and activations are stored and which runtime runs them."
CONTROLS_HELP = ("**Controls:** images per forward pass, CPU threads for every runtime (1 is the steadiest on a "
                 "small shared CPU: a multi-threaded op waits for its slowest thread), and timed runs.")
RESULTS_HELP = ("**Results:** speed-up is fp32 median / variant median. *Linear weights* counts the linear "
                "layers by the dtype their weights are stored in, read off the model (or the ONNX graph). "
                "Agreement and max |Δlogit| compare each variant's logits with fp32 on the same held-out "
                "images; accuracy is against the true shape labels.")
HARDWARE_PENDING = "Reading this machine's CPU and ISA flags..."


# Issue 23's views.
NEW_VARIANTS_HELP = (
    "**int4 and GPU rows.** `int4_weight_only` is torchao's `Int4WeightOnlyConfig` (packed int4 weights, groups of "
    "128); where its kernels are missing the row shows the exception torchao raised. `int4_weight_intx` and "
    "`int8_act_int4_weight` use torchao's int4 \"intx\" configs, which run on a CPU: int4 values (-8..7) with one "
    "scale per 32 weights, kept one per int8 byte (so the size is int8's, the rounding int4's). `cuda_fp16` and "
    "`cuda_bf16` run the model on the GPU when `torch.cuda.is_available()`; otherwise their rows are skipped with "
    "the reason. Tick them above (or use the last example) and press Measure.")
MEMORY_HELP = (
    "**Memory by precision.** *params* is counted on the model built from its `transformers` config on the "
    "`meta` device (shapes only, nothing downloaded): ViT-B/16, ViT-L/16 and ViT-H/14 with the sizes of "
    "Dosovitskiy et al. (2021), Table 1, whose parameter counts stand beside ours, and LLaVA-1.5-7B as "
    "`transformers.LlavaConfig()`'s defaults (\"a llava-1.5-7b style configuration\" in its docstring: a CLIP "
    "ViT-L/14 336 px vision tower, a 2-layer MLP projector, a Llama 7B language model). "
    "**weights = params x bytes per value**: fp32 4, bf16 2, fp16 2, int8 1, int4 0.5 (two values per byte). "
    "**Fits on N GB** means weights <= N x 10^9 bytes. Weights only: quantization scales (one 16-bit scale "
    "per 128 int4 weights adds 16/128 = 0.125 bit per weight), activations, a language model's KV cache and the "
    "runtime's own memory come on top, so treat \"fits\" as a lower bound on what you need.")
SWEEP_HELP = (
    "**Latency against input resolution.** The same ViT, fp32, batch 1, at several input sides (multiples "
    "of its patch size): transformers' `interpolate_pos_encoding=True` resizes the learned position embeddings "
    "bicubically to the new grid. Tokens = (side / patch)^2 + 1 (the class token). Attention costs grow with "
    "tokens^2 and the rest with tokens, so latency grows faster than the pixel count. GMACs = FLOPs / 2 from "
    "`torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions). Latency ratio = median / median at "
    "the model's native side (or the smallest side if the native one is not swept).")
ARCH_HELP = (
    "**An efficient architecture beside the ViT.** MobileViT (Mehta & Rastegari, 2022) mixes convolutions with "
    "small transformer blocks. Each model is built from its `transformers` config with random weights (seed 0; "
    "latency does not depend on the values) and 1000 classes, timed on the same input at batch 1. MobileViT "
    "sizes are the apple/mobilevit-small, -x-small and -xx-small configs; the timm model cards of the authors' "
    "weights list MobileViT-XS at 2.3M params / 1.1 GMACs and MobileViT-XXS at 1.3M / 0.4 GMACs (256 px). "
    "Fewer MACs need not mean less time: depthwise convolutions and reshapes do little work per byte moved.")
CONTROL_HELP = (
    "**Meets the target control rate?** A robot policy that runs at *f* Hz has **1000 / f ms** per frame. "
    "The chosen variant is timed on one frame (batch 1) and its median compared with that budget; the upper "
    "quartile says whether the slower quarter of frames also fits. The budget is for the model alone: "
    "camera capture, pre-processing and the rest of the loop need their share too.")
