"""The DiT stepper's models, choices, limits and input checks, and the embedded model's shipped facts.

Torch-free on purpose: the hub imports every space's ``app.py`` and builds its page at start-up
(issue 14: start-up within 1.3x a bare gradio app), and ``shared/diffusion.py`` and diffusers take
seconds to import. ``compute.py`` imports from here, so each constant is defined once.
"""

from __future__ import annotations

import json

from shared import validate
from shared.models import local_path, shipped_metrics

TINY_MODEL = "dit-tiny-shapes"
XL_MODEL = "facebook/DiT-XL-2-256"
MODELS: tuple[str, ...] = (TINY_MODEL, XL_MODEL)

# The names, step limit and default of shared/diffusion.py's SCHEDULERS. That module imports torch at its
# top, so they are repeated here; tests/unit/test_dit_stepper.py fails if the two ever differ.
SCHEDULER_NAMES: tuple[str, ...] = ("DDPM", "DDIM", "DPM-Solver++", "Euler")
DEFAULT_SCHEDULER = "DPM-Solver++"
MAX_STEPS = 200

MAX_GUIDANCE = 20.0
MAX_SEED = 2**31 - 1
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 3.0


# --------------------------------------------------------------------------------------
#                                   Input checks (shared/validate.py)
# --------------------------------------------------------------------------------------

def check_steps(steps) -> int:
    return validate.integer(steps, "steps", 1, MAX_STEPS)


def check_guidance(guidance) -> float:
    """API clients send NaN and inf as text (JSON has neither); validate.number parses and refuses them."""
    return validate.number(guidance, "guidance scale", 0, MAX_GUIDANCE)


def check_seed(seed) -> int:
    return validate.integer(seed, "seed", 0, MAX_SEED)


def check_scheduler(name) -> str:
    return validate.choice(name, "scheduler", SCHEDULER_NAMES)


# --------------------------------------------------------------------------------------
#                                   What the shipped files say
# --------------------------------------------------------------------------------------

def shipped_json(relative: str, name: str = TINY_MODEL) -> dict:
    """A JSON file beside an embedded model's weights ({} when the model is not trained yet)."""
    path = local_path(name) / relative
    return json.loads(path.read_text()) if path.is_file() else {}


def tiny_facts() -> dict:
    """The embedded DiT as its files describe it: config.json (architecture), scheduler_config.json
    (what it predicts, the noise schedule) and metrics.json (size, training, measured quality).
    Read without torch, so the page can state them at build time; {} before the model is trained."""
    cfg = shipped_json("config.json")
    if not cfg:
        return {}
    sched = shipped_json("scheduler/scheduler_config.json")
    size, p = cfg["sample_size"], cfg["patch_size"]
    return {
        "size": size, "patch": p, "grid": size // p, "tokens": (size // p) ** 2, "channels": cfg["in_channels"],
        "width": cfg["num_attention_heads"] * cfg["attention_head_dim"], "blocks": cfg["num_layers"],
        "classes": cfg["num_embeds_ada_norm"],  # class ids 0..n-1; id n is the null class of guidance
        "prediction_type": sched.get("prediction_type"), "beta_schedule": sched.get("beta_schedule"),
        "train_timesteps": sched.get("num_train_timesteps", 1000),
        "metrics": shipped_metrics(TINY_MODEL) or {},
    }


# --------------------------------------------------------------------------------------
#                 The DiT family, conditioning, U-Net and flow matching (issue 23)
# --------------------------------------------------------------------------------------

# Peebles & Xie (2023), Table 1: depth N, width d, heads per configuration (patch p is the suffix)
DIT_SIZES: dict[str, tuple[int, int, int]] = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16),
                                              "XL": (28, 1152, 16)}
DIT_PATCHES: tuple[int, ...] = (2, 4, 8)
LATENT_SIZE, LATENT_CHANNELS, IMAGENET_CLASSES = 32, 4, 1000  # 256 px images through the SD VAE (f = 8)

# Peebles & Xie (2023), Table 4 (ImageNet 256x256, 400K steps, no guidance): Gflops (the paper counts a
# multiply-add as one flop, so these are GMACs), parameters in millions, FID-50K. Checked against three
# public transcriptions of the table and the authors' answers in github.com/facebookresearch/DiT issues
# 14 (flops = MACs), 47 and 72 (XL/4 29.05).
PAPER_TABLE4: dict[str, tuple[float, int, float]] = {
    "DiT-S/8": (0.36, 33, 153.60), "DiT-S/4": (1.41, 33, 100.41), "DiT-S/2": (6.06, 33, 68.40),
    "DiT-B/8": (1.42, 131, 122.74), "DiT-B/4": (5.56, 130, 68.38), "DiT-B/2": (23.01, 130, 43.47),
    "DiT-L/8": (5.01, 459, 118.87), "DiT-L/4": (19.70, 458, 45.64), "DiT-L/2": (80.71, 458, 23.33),
    "DiT-XL/8": (7.39, 676, 106.41), "DiT-XL/4": (29.05, 675, 43.01), "DiT-XL/2": (118.64, 675, 19.47),
}
# The same table's conditioning rows, all DiT-XL/2 (Sec. 3.2, Fig. 5): Gflops, parameters (M), FID-50K
PAPER_CONDITIONING: dict[str, tuple[float, int, float]] = {
    "in-context": (119.37, 449, 35.24), "cross-attention": (137.62, 598, 26.14),
    "adaLN": (118.56, 600, 25.21), "adaLN-Zero": (118.64, 675, 19.47),
}
CONDITIONING_BLOCKS: tuple[str, ...] = ("adaLN-Zero", "cross-attention", "in-context")

MAX_PATH_STEPS = 50
DEFAULT_PATH_STEPS = 10


def dit_name(size: str, patch: int) -> str:
    return f"DiT-{size}/{patch}"


def check_dit_size(size) -> str:
    return validate.choice(size, "DiT size", tuple(DIT_SIZES))


def check_dit_patch(patch) -> int:
    return validate.choice(validate.integer(patch, "patch size", min(DIT_PATCHES), max(DIT_PATCHES)),
                           "patch size", DIT_PATCHES)


def check_path_steps(steps) -> int:
    return validate.integer(steps, "path steps", 1, MAX_PATH_STEPS)


def check_flow_steps(steps) -> int:
    return validate.integer(steps, "flow steps", 1, MAX_PATH_STEPS)
