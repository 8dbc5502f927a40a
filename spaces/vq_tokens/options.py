"""Autoregressive image generation: models, limits, defaults and input checks, and the shipped facts.

Torch-free on purpose: the hub imports every space's ``app.py`` and builds its page at start-up.
``compute.py`` imports from here, so each constant and check is defined once.
"""

from __future__ import annotations

import json
import math

from shared import validate
from shared.data.shapes import SHAPES
from shared.models import local_path, shipped_metrics
from shared.sampling_settings import sampling_settings

VQ_MODEL = "vq-tiny-shapes"
AR_MODEL = "ar-tiny-shapes"
CLASSES: tuple[str, ...] = SHAPES

MAX_SEED = 2**31 - 1
MAX_GUIDANCE = 10.0
MAX_TEMPERATURE = 5.0
DEFAULT_CLASS = "star"
USAGE_IMAGES = 200  # test-split images behind the codebook usage histogram and the nearest-code view
MAX_PATCHES_SHOWN = 48  # patches in the nearest-code mosaic
FALLBACK_CODEBOOK = 1024  # only until vq-tiny-shapes is trained; then read from its config.json


def shipped_json(name: str, relative: str = "config.json") -> dict:
    """A JSON file beside an embedded model's weights ({} when it is not trained yet)."""
    path = local_path(name) / relative
    return json.loads(path.read_text()) if path.is_file() else {}


def codebook_size() -> int:
    return int(shipped_json(VQ_MODEL).get("codebook_size", FALLBACK_CODEBOOK))


def vq_facts() -> dict:
    """The tokenizer as its files describe it (config.json, metrics.json); {} before it is trained."""
    cfg = shipped_json(VQ_MODEL)
    if not cfg:
        return {}
    return {**cfg, "metrics": shipped_metrics(VQ_MODEL) or {}}


def measured_sampling() -> dict:
    """``guidance_scale``, ``temperature`` and ``top_k`` that class accuracy was measured at, from ar-tiny-shapes'
    config.json: the page's defaults."""
    return sampling_settings(shipped_json(AR_MODEL))


def default_guidance() -> float:
    return float(measured_sampling()["guidance_scale"])


# transformers' config.json names the same facts differently per architecture: (name, layers, width, positions)
AR_CONFIG_KEYS = {"gpt2": ("GPT-2", "n_layer", "n_embd", "n_positions"),
                  "llama": ("Llama", "num_hidden_layers", "hidden_size", "max_position_embeddings")}


def ar_shape(config: dict) -> dict:
    """``architecture``, ``layers``, ``width`` and ``positions`` of a GPT-2 or Llama config.json, whatever it
    calls them."""
    if config.get("model_type") not in AR_CONFIG_KEYS:
        raise ValueError(f"unknown generator architecture {config.get('model_type')!r}; "
                         f"choose one of {list(AR_CONFIG_KEYS)}")
    name, layers, width, positions = AR_CONFIG_KEYS[config["model_type"]]
    return {"architecture": name, "layers": config[layers], "width": config[width], "positions": config[positions]}


def ar_facts() -> dict:
    """The generator as its files describe it (config.json, ``ar_shape``, metrics.json); {} before it is trained."""
    cfg = shipped_json(AR_MODEL)
    if not cfg:
        return {}
    return {**cfg, **ar_shape(cfg), "metrics": shipped_metrics(AR_MODEL) or {}}


# --------------------------------------------------------------------------------------
#                                   Input checks (shared/validate.py)
# --------------------------------------------------------------------------------------

def check_class(label) -> str:
    return validate.choice(label, "class", CLASSES)


def check_temperature(t) -> float:
    """0 is allowed and means greedy decoding (always the most likely code); negative and NaN are refused."""
    return validate.number(t, "temperature (0 = greedy)", 0, MAX_TEMPERATURE)


def check_top_k(k) -> int:
    return validate.integer(k, "top-k", 1, codebook_size())


def check_seed(seed) -> int:
    return validate.integer(seed, "seed", 0, MAX_SEED)


def check_guidance(scale) -> float:
    """0 samples the unconditional model, 1 the conditional one; above 1 pushes away from the unconditional."""
    return validate.number(scale, "guidance scale", 0, MAX_GUIDANCE)


def check_code(code) -> int:
    return validate.integer(code, "code", 0, codebook_size() - 1)


def bits_per_token(codebook: int) -> float:
    """log2(K): the information one token can carry."""
    return math.log2(codebook)
