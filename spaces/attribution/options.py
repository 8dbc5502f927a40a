"""Interpretability page: limits, defaults and the shipped model's facts, with no heavy import (the hub
builds every page when it starts, so nothing here may import torch, transformers, matplotlib or scipy).
``compute.py`` imports its limits from here, so the page and the checks cannot disagree."""

from __future__ import annotations

from shared.models import ViTFacts as ShippedFacts
from shared.models import names, vit_facts

TASK = "image-classification"
DEFAULT_MODEL = "vit-tiny-shapes"
MODELS: tuple[str, ...] = tuple(names(TASK))

# Attribution methods: API value -> what the page calls it.
METHODS: dict[str, str] = {
    "rollout": "Attention rollout (Abnar & Zuidema, 2020)",
    "grad_rollout": "Gradient-weighted rollout (Chefer et al., 2021)",
    "gradcam": "Grad-CAM on the last block's tokens (Selvaraju et al., 2017)",
    "integrated_gradients": "Integrated gradients (Sundararajan et al., 2017)",
}
DEFAULT_METHOD = "grad_rollout"

# Integrated gradients: midpoint Riemann sum with this many points on the straight path from the
# all-black baseline (zeros in [0, 1] pixel space, before the processor's normalisation) to the image.
IG_STEPS = 64
# Sundararajan et al. (2017, section 3) suggest checking completeness and adding points when the sum is off:
# the page doubles the points while the gap is above IG_TOLERANCE, up to IG_MAX_STEPS. On 100 held-out
# shapes 64 points left a median gap of 0.3% but one image at 22.6%; 256 points closed it to 0.05%.
IG_TOLERANCE = 0.05
IG_MAX_STEPS = 512
IG_BATCH = 16  # path points per forward/backward pass

# Sanity check (Adebayo et al., 2018): which weights are re-initialised.
RANDOMISATIONS: dict[str, str] = {
    "cascade": "cascading: the classifier head, then every block from the top down to the patch embedding "
               "(all weights random)",
    "classifier": "the classifier head only (the first step of the cascade)",
}
DEFAULT_RANDOMISATION = "cascade"
RANDOM_SEED = 0  # the re-initialisation is seeded, so the page and the tests see the same random model

# FGSM (Goodfellow et al., 2015): epsilon in pixel units on [0, 1] at the model's input resolution.
MAX_EPSILON = 0.25
DEFAULT_EPSILON = 8 / 255
# The flip search tries every 8-bit step k/255 up to MAX_EPSILON: k = 1 .. 63.
FLIP_GRID_STEPS = int(MAX_EPSILON * 255)


def shipped_facts(name: str = DEFAULT_MODEL) -> ShippedFacts | None:
    """The embedded ViT as its files state it (``shared.models.vit_facts``)."""
    return vit_facts(name)
