"""ViT anatomy: presets, caps, input checks and the embedded model's shipped facts.

Torch-free on purpose: the hub imports every space's ``app.py`` and builds its page at start-up, so
nothing here may import torch, transformers or matplotlib. ``compute.py`` imports from here, so each
limit is defined once.
"""

from __future__ import annotations

import json

from shared import validate
from shared.models import local_path, shipped_metrics
from shared.vit_cost import CAPS, CHANNELS, MAX_PARAMS, MAX_TOKENS, check_config  # noqa: F401 (shared with patch_explorer)

TINY_MODEL = "vit-tiny-shapes"

# --------------------------------------------------------------------------------------
#                                   Presets (with where each number comes from)
# --------------------------------------------------------------------------------------
# Ti and S: Touvron et al. (2021), DeiT Table 1 (also the authors' big_vision/vit.py, which cites
# Zhai et al. 2022 Table 2); B, L, H: Dosovitskiy et al. (2021) Table 1; g: Zhai et al. (2022) Table 2.
# Patch sizes are those of the models the papers report at 224 px: /16 for Ti..L, /14 for H and g.
PRESETS: dict[str, dict] = {
    "ViT-Ti/16": {"hidden_size": 192, "num_layers": 12, "num_heads": 3, "mlp_dim": 768, "patch_size": 16,
                  "source": "Touvron et al., 2021 (DeiT-Ti), Table 1"},
    "ViT-S/16": {"hidden_size": 384, "num_layers": 12, "num_heads": 6, "mlp_dim": 1536, "patch_size": 16,
                 "source": "Touvron et al., 2021 (DeiT-S), Table 1"},
    "ViT-B/16": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072, "patch_size": 16,
                 "source": "Dosovitskiy et al., 2021, Table 1"},
    "ViT-L/16": {"hidden_size": 1024, "num_layers": 24, "num_heads": 16, "mlp_dim": 4096, "patch_size": 16,
                 "source": "Dosovitskiy et al., 2021, Table 1"},
    "ViT-H/14": {"hidden_size": 1280, "num_layers": 32, "num_heads": 16, "mlp_dim": 5120, "patch_size": 14,
                 "source": "Dosovitskiy et al., 2021, Table 1"},
    "ViT-g/14": {"hidden_size": 1408, "num_layers": 40, "num_heads": 16, "mlp_dim": 6144, "patch_size": 14,
                 "source": "Zhai et al., 2022, Table 2"},
}
# Parameter counts as the papers print them (millions, rounded by the authors). Only those checked
# against the source text are here; ViT-g's is left out (not verified from the paper's text).
PAPER_PARAMS_M: dict[str, tuple[float, str]] = {
    "ViT-Ti/16": (5, "Touvron et al., 2021 (DeiT-Ti)"),
    "ViT-S/16": (22, "Touvron et al., 2021 (DeiT-S)"),
    "ViT-B/16": (86, "Dosovitskiy et al., 2021, Table 1"),
    "ViT-L/16": (307, "Dosovitskiy et al., 2021, Table 1"),
    "ViT-H/14": (632, "Dosovitskiy et al., 2021, Table 1"),
}
CUSTOM = "custom"
PRESET_NAMES: tuple[str, ...] = (*PRESETS, CUSTOM)
DEFAULT_PRESET = "ViT-B/16"
DEFAULT_IMAGE = 224
DEFAULT_CLASSES = 1000

# --------------------------------------------------------------------------------------
#                                   Caps (stated on the page; defined in shared/vit_cost.py)
# --------------------------------------------------------------------------------------
BATCHES = (1, 64)

# Pre-norm against post-norm
MAX_DEPTH = 24
MAX_SEED = 2**31 - 1
DEFAULT_SEED = 0
GRAD_BATCH = 32  # shapes images per gradient measurement


def caps_text() -> str:
    parts = [f"{k.replace('_', ' ')} {lo}–{hi:,}" for k, (lo, hi) in CAPS.items()]
    return "; ".join(parts) + f"; at most {MAX_TOKENS:,} tokens and {MAX_PARAMS / 1e9:.0f} B parameters"


def check_preset(name) -> str:
    return validate.choice(name, "preset", PRESET_NAMES)


def check_depth(depth) -> int:
    return validate.integer(depth, "depth", 1, MAX_DEPTH)


def check_seed(seed) -> int:
    return validate.integer(seed, "seed", 0, MAX_SEED)


# --------------------------------------------------------------------------------------
#                                   What the shipped files say
# --------------------------------------------------------------------------------------

def tiny_config() -> dict:
    path = local_path(TINY_MODEL) / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def tiny_facts() -> dict:
    """The embedded ViT as its config.json and metrics.json describe it ({} before it is trained)."""
    c = tiny_config()
    if not c:
        return {}
    g = c["image_size"] // c["patch_size"]
    return {"image": c["image_size"], "patch": c["patch_size"], "grid": g, "tokens": g * g + 1,
            "width": c["hidden_size"], "layers": c["num_hidden_layers"], "heads": c["num_attention_heads"],
            "mlp": c["intermediate_size"], "classes": [c["id2label"][str(i)] for i in range(len(c["id2label"]))],
            "metrics": shipped_metrics(TINY_MODEL) or {}}
