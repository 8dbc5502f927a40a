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
