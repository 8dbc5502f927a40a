"""What the CLIP page needs at build time, without torch: limits, defaults and the shipped model's facts.

The hub imports every space's ``app.py`` and calls ``build()`` at start-up, so nothing here may import
torch, transformers or matplotlib (issue 14). ``compute.py`` imports its limits from here too, so the
page and the checks can never disagree. ``shipped_facts`` reads the model card's numbers from the files
beside the weights (config.json, metrics.json, and the logit scale straight from model.safetensors
through safetensors' numpy reader), so the page cannot state a stale size, count or temperature.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from shared.models import local_path, shipped_metrics

TASK = "zero-shot-image-classification"
DEFAULT_MODEL = "clip-tiny-shapes"
DEFAULT_TEMPLATE = "a photo of a {}"
MAX_LABELS = 256
MAX_TEMPLATES = 16
MAX_BATCH = 64
MAX_START = 1_000_000  # last first-index of the contrastive batch
DEFAULT_MAP_N = 16  # renders (and as many captions) on the embedding map
GALLERY_START = 5_000  # the search gallery: test-split renders GALLERY_START .. GALLERY_START + GALLERY_SIZE - 1
GALLERY_SIZE = 48
MAX_TOP_K = 12  # images the text -> image search returns at most
DEFAULT_TOP_K = 6
DEFAULT_QUERY = "a large red star"
MIN_TEMPERATURE = 0.001  # the contrastive-loss temperature knob's range
MAX_TEMPERATURE = 2.0
TEMPERATURE_GRID = 41  # temperatures on the loss curve, log-spaced over the knob's range
# Radford et al., 2021, §2.5: "The learnable temperature parameter τ was initialized to the equivalent of
# 0.07 [...] and clipped to prevent scaling the logits by more than 100".
PAPER_INIT_TEMPERATURE = 0.07
PAPER_MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class ShippedFacts:
    """The sizes, cost and learned temperature of an embedded CLIP, as its own files state them."""

    name: str
    image_size: int  # pixels a side, the image tower's input
    patch_size: int  # pixels a side
    vision_width: int
    vision_layers: int
    text_width: int
    text_layers: int
    context_length: int  # text tokens, start and end tokens included
    projection_dim: int  # the joint embedding
    parameters: int
    logit_scale: float  # exp of the learned log-scale in model.safetensors, = 1 / temperature
    train_wall_seconds: float | None
    shape_accuracy: float | None  # zero-shot "a photo of a {shape}" on held-out renders
    eval_images: int | None
    colors: int | None  # colours in the training captions

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def temperature(self) -> float:
        return 1.0 / self.logit_scale


def _safetensors_facts(path) -> tuple[int, float]:
    """(element count, exp(logit_scale)) of a CLIP checkpoint, read with numpy only."""
    import numpy as np
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        count = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
        scale = float(np.exp(f.get_tensor("logit_scale").astype(np.float64)).item())
    return count, scale


def shipped_facts(name: str = DEFAULT_MODEL) -> ShippedFacts | None:
    """Facts of an embedded CLIP from ``shared/weights/<name>/``; None when its files are not there."""
    folder = local_path(name)
    config_path, weights = folder / "config.json", folder / "model.safetensors"
    if not (config_path.is_file() and weights.is_file()):
        return None
    config = json.loads(config_path.read_text())
    vision, text = config["vision_config"], config["text_config"]
    metrics = shipped_metrics(name) or {}
    count, scale = _safetensors_facts(weights)
    return ShippedFacts(
        name=name, image_size=int(vision["image_size"]), patch_size=int(vision["patch_size"]),
        vision_width=int(vision["hidden_size"]), vision_layers=int(vision["num_hidden_layers"]),
        text_width=int(text["hidden_size"]), text_layers=int(text["num_hidden_layers"]),
        context_length=int(text["max_position_embeddings"]), projection_dim=int(config["projection_dim"]),
        parameters=int(metrics.get("parameters", count)), logit_scale=scale,
        train_wall_seconds=metrics.get("train_wall_seconds"), shape_accuracy=metrics.get("zero_shot_shape_accuracy"),
        eval_images=metrics.get("n"), colors=metrics.get("colors"),
    )
