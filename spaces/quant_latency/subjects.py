"""The models being timed and the images they are timed and checked on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from shared.data.shapes import SHAPES, ShapesDataset

from .options import VIT_B16, VIT_B16_RANDOM, check_model


@dataclass
class ModelUnderTest:
    name: str
    model: torch.nn.Module  # fp32, eval mode, on the CPU; never mutated (variants copy it)
    image_size: int
    trained: bool  # False for random weights: accuracy and agreement are then meaningless
    shape_labels: list[int] | None  # class index of each shape in SHAPES, if the model classifies shapes
    processor: Any


_RANDOM_VIT_B: torch.nn.Module | None = None


def random_vit_b16() -> torch.nn.Module:
    """ViT-B/16 (``options.VIT_B16``: the google/vit-base-patch16-224 sizes) with random weights.
    Latency does not depend on the weight values, so no download is needed to time it."""
    global _RANDOM_VIT_B
    if _RANDOM_VIT_B is None:
        from transformers import ViTConfig, ViTForImageClassification

        torch.manual_seed(0)
        _RANDOM_VIT_B = ViTForImageClassification(ViTConfig(**VIT_B16)).eval()
    return _RANDOM_VIT_B


def load_model(name: str) -> ModelUnderTest:
    """The fp32 model on the CPU (the quantized kernels compared here are CPU kernels)."""
    name = check_model(name)
    if name == VIT_B16_RANDOM:
        from transformers import ViTImageProcessor

        model = random_vit_b16()  # ViTImageProcessor's defaults (mean/std 0.5) are the real model's
        return ModelUnderTest(name, model, VIT_B16["image_size"], False, None, ViTImageProcessor())
    from shared.models import load

    loaded = load(name, device="cpu")
    config = loaded.model.config
    by_name = {v: int(k) for k, v in config.id2label.items()}
    shape_labels = [by_name[s] for s in SHAPES] if set(SHAPES) <= set(by_name) else None
    size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
    return ModelUnderTest(name, loaded.model, size, True, shape_labels, loaded.processor)


_INPUTS: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}


def held_out_images(mut: ModelUnderTest, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test-split shapes through the model's own processor: pixels (n, 3, H, W), shape ids (n,)."""
    key = (mut.name, n)
    if key not in _INPUTS:
        images, labels, _ = ShapesDataset("test", n, size=mut.image_size).arrays()  # (n, H, W, 3) uint8
        pixels = mut.processor(images=list(images), return_tensors="pt")["pixel_values"]  # (n, 3, H, W)
        _INPUTS.clear()  # one model's inputs at a time
        _INPUTS[key] = (pixels.float(), torch.from_numpy(labels).long())
    return _INPUTS[key]
