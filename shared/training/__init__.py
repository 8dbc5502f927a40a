"""Deterministic, CPU-friendly training of the embedded models.

``python -m shared.training NAME`` retrains one model into ``shared/weights/NAME/``.
Each recipe is one readable module with its config dataclass at the top (nanoGPT style)
and a ``train(out_dir, steps=None, seed=0) -> dict`` function that returns its metrics.
To add a model: write ``shared/training/<module>.py`` and add one line to ``RECIPES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

# name -> module under shared.training that defines train(); imported only when used.
RECIPES: dict[str, str] = {
    "dit-tiny-shapes": "dit_tiny_shapes",
    "vit-tiny-shapes": "vit_tiny_shapes",
    "fast-bpe-actions": "fast_bpe_actions",
    "clip-tiny-shapes": "clip_tiny_shapes",
    "cnn-tiny-shapes": "cnn_tiny_shapes",
    "mae-tiny-shapes": "mae_tiny_shapes",
    "vq-tiny-shapes": "vq_tiny_shapes",
    "ar-tiny-shapes": "ar_tiny_shapes",
    "video-vit-tiny-shapes": "video_vit_tiny_shapes",
    "vjepa-tiny-shapes": "vjepa_tiny_shapes",
    "vq-actions": "vq_actions",
    "vlm-tiny-shapes": "vlm_tiny_shapes",
}


def get_recipe(name: str) -> Callable[..., dict]:
    if name not in RECIPES:
        raise ValueError(f"no training recipe for {name!r}; choose one of {sorted(RECIPES)}")
    return importlib.import_module(f"shared.training.{RECIPES[name]}").train
