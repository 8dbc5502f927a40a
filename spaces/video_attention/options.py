"""Video transformers: modes, caps, defaults, input checks and the embedded model's shipped facts.

Torch-free on purpose: the hub builds every page at start-up. ``compute.py`` imports from here, so each
limit is defined once.
"""

from __future__ import annotations

import json

from shared import validate
from shared.models import local_path, shipped_metrics

MODEL = "video-vit-tiny-shapes"
HUB_MODEL = "MCG-NJU/videomae-base"

# mode -> (label, source)
MODES: dict[str, tuple[str, str]] = {
    "joint": ("joint space-time", "every token attends to every token (ViViT model 1; VideoMAE)"),
    "divided": ("divided: time then space", "TimeSformer, Bertasius et al., 2021"),
    "factorised": ("factorised encoder", "ViViT model 2, Arnab et al., 2021"),
}
MODE_NAMES: tuple[str, ...] = tuple(MODES)

# Caps (stated on the page)
CAPS: dict[str, tuple[int, int]] = {
    "frames": (1, 4096),
    "image_size": (1, 4096),
    "patch_size": (1, 4096),
    "tubelet": (1, 4096),
    "hidden_size": (1, 16_384),
    "layers": (1, 256),
}
MAX_TOKENS = 200_000  # tubelet tokens of one clip
MAX_MATRIX_BYTES = 16 * 2**30  # one layer's attention matrices for one head, fp32
BYTES_FP32 = 4

# Defaults: ViT-B width at 224 px, patch 16, 16 frames, tubelet 2 (the VideoMAE-B set-up)
DEFAULTS = {"frames": 16, "image_size": 224, "patch_size": 16, "tubelet": 2, "hidden_size": 768, "layers": 12,
            "mode": "joint"}
TABLE_FRAMES = (8, 16, 32)  # the cost table of the "Must show"

# Tokenisation tab: one clip of the moving-shapes data at the embedded model's size


def token_patches(image_size: int) -> tuple[int, ...]:
    """Patch sides offered on the tubelet tab: the divisors of the clip's side from 4 to half of it."""
    return tuple(p for p in range(4, image_size // 2 + 1) if image_size % p == 0)
TOKEN_TUBELETS = (1, 2, 4, 8, 16)
MAX_CLIP_INDEX = 99_999
ANY_DIRECTION = "any"


def caps_text() -> str:
    parts = [f"{k.replace('_', ' ')} {lo}–{hi:,}" for k, (lo, hi) in CAPS.items()]
    return (", ".join(parts) + f"; at most {MAX_TOKENS:,} tokens and {MAX_MATRIX_BYTES / 2**30:.0f} GiB of "
            "attention matrix per layer and head")


def check_clip_index(value) -> int:
    return validate.integer(value, "clip index", 0, MAX_CLIP_INDEX)


# --------------------------------------------------------------------------------------
#                                   What the shipped files say
# --------------------------------------------------------------------------------------

def model_facts() -> dict:
    """The embedded video ViT as its config.json and metrics.json describe it ({} before it is trained)."""
    path = local_path(MODEL) / "config.json"
    if not path.is_file():
        return {}
    c = json.loads(path.read_text())
    t, g = c["num_frames"] // c["tubelet_size"], c["image_size"] // c["patch_size"]
    return {"frames": c["num_frames"], "image": c["image_size"], "patch": c["patch_size"],
            "tubelet": c["tubelet_size"], "t": t, "grid": g, "tokens": t * g * g, "width": c["hidden_size"],
            "layers": c["num_hidden_layers"], "heads": c["num_attention_heads"], "mlp": c["intermediate_size"],
            "classes": [c["id2label"][str(i)] for i in range(len(c["id2label"]))],
            "metrics": shipped_metrics(MODEL) or {}}
