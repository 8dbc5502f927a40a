"""Visual attention: limits, defaults and the shipped model's facts, with no heavy import (the hub builds
every page at start-up, so nothing here may import torch, transformers or matplotlib).

``shipped_facts`` reads the embedded ViT's sizes from its ``config.json`` and its parameter count and
held-out accuracy from ``metrics.json``, so the page cannot state a stale number.
"""

from __future__ import annotations

from shared.models import ViTFacts as ShippedFacts
from shared.models import names, vit_facts

DEFAULT_MODEL = "vit-tiny-shapes"
# The registry's ViT-family classifiers, then its image backbones (DINO: attention but no label).
MODELS: tuple[str, ...] = tuple(names("image-classification")) + tuple(names("image-features"))
FUSIONS: tuple[str, ...] = ("mean", "max", "min")  # = shared.attention.FUSIONS (checked in a test)
DEFAULT_FUSION = "mean"
DEFAULT_DISCARD = 0.0
MAX_LAYER_INDEX = 95  # page controls are clamped to the model's own depth and width; these only bound the API
MAX_HEAD_INDEX = 63
MAX_GRID_INDEX = 63
ALL_HEADS = "mean of heads"
OVERLAY_PX = 256  # the overlays and the clickable query map are drawn at this size (model input, enlarged)
BYTES_FP32 = 4


def shipped_facts(name: str = DEFAULT_MODEL) -> ShippedFacts | None:
    """The embedded ViT as its files state it (``shared.models.vit_facts``)."""
    return vit_facts(name)
