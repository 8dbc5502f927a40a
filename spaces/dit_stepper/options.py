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
