"""Resolution transfer: the trained ViT run at a new resolution, its position table interpolated.

With the patch size fixed, a new resolution changes the grid, so the learned table is resized
(positions.interpolate_positions, ViT section 3.2) and the model classifies held-out shapes rendered
at that resolution, with no fine-tuning. As a reference the unchanged model sees the same shapes
resized to its own resolution. ViT fine-tunes after the resize, at a higher resolution than
pre-training (section 3.2, citing Touvron et al., 2019, arXiv:1906.06423); this measures the gap.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from PIL import Image

from shared import validate
from shared.images import to_tensor

from .options import INTERP_MODES, MAX_TRANSFER_SIZE
from .positions import interpolate_positions


def model_at_resolution(model, image_size: int, mode: str = "bicubic"):
    """A copy of a transformers ViT classifier for ``image_size`` inputs, its position table
    interpolated by ``interpolate_positions`` with ``mode`` (the same patch size, so the grid changes)."""
    from transformers import ViTForImageClassification

    patch = model.config.patch_size
    image_size = validate.integer(image_size, "image size", 1)
    if image_size % patch or image_size < patch:
        raise ValueError(f"image size must be a positive multiple of the patch size {patch}, got {image_size}")
    config = copy.deepcopy(model.config)
    config.image_size = image_size
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    key = "vit.embeddings.position_embeddings"
    state[key] = interpolate_positions(state[key], image_size // patch, mode=mode)  # (1, 1 + g'^2, D)
    new = ViTForImageClassification(config)
    new.load_state_dict(state)
    param = next(model.parameters())
    return new.to(param.device, param.dtype).eval()


@torch.no_grad()
def shapes_accuracy(model, image_size: int, n: int = 500, render_size: int | None = None,
                    batch_size: int = 100) -> float:
    """Top-1 accuracy on the first ``n`` held-out (test split) shapes.

    They are rendered natively at ``render_size`` (default ``image_size``) and, when that
    differs, resized (bicubic) to ``image_size``.
    """
    from shared.data.shapes import ShapesDataset

    n = validate.integer(n, "number of test images", 1, 5000)
    images, labels, _ = ShapesDataset("test", n, render_size or image_size).arrays()  # (n, H, W, 3)
    if render_size and render_size != image_size:
        images = np.stack([np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.Resampling.BICUBIC))
                           for im in images])
    param = next(model.parameters())
    correct = 0
    for i in range(0, n, batch_size):
        x = to_tensor(images[i:i + batch_size])  # (B, 3, S, S) in [-1, 1]
        logits = model(pixel_values=x.to(param.device, param.dtype)).logits  # (B, classes)
        correct += (logits.argmax(-1).cpu() == torch.from_numpy(labels[i:i + batch_size])).sum().item()
    return correct / n


def transfer_accuracy(model, sizes: list[int], n: int = 500, progress=None) -> list[dict]:
    """For each size: the model with its positions interpolated, on shapes rendered at that size,
    and, as a reference, the original model on the same shapes resized to its own resolution."""
    base = model.config.image_size
    patch = model.config.patch_size
    rows = []
    sizes = sorted({validate.integer(s, "image size", patch, MAX_TRANSFER_SIZE) for s in sizes})
    bad = [s for s in sizes if s % patch]
    if bad:
        raise ValueError(f"transfer sizes must be multiples of {patch} from {patch} to {MAX_TRANSFER_SIZE}, got {bad}")
    for k, size in enumerate(sizes):
        if progress is not None:
            progress(k / len(sizes), f"{size} px")
        tokens = (size // patch) ** 2 + 1
        batch = max(10, min(250, 2_000_000 // tokens**2))  # keeps the attention maps under ~100 MB
        moved = model if size == base else model_at_resolution(model, size)
        rows.append({
            "image_size": size, "grid": f"{size // patch}x{size // patch}", "tokens": tokens,
            "accuracy_interpolated": shapes_accuracy(moved, size, n, batch_size=batch),
            "accuracy_resized_to_base": shapes_accuracy(model, base, n, render_size=size, batch_size=250),
        })
    return rows


def interpolation_accuracy(model, image_size: int, modes: list[str], n: int) -> list[dict]:
    """Accuracy at ``image_size`` on the first ``n`` held-out shapes rendered at that size, the position
    table resized with each interpolation mode (nearest, bilinear, bicubic: ``torch.nn.functional.interpolate``)."""
    patch, base = model.config.patch_size, model.config.image_size
    size = validate.integer(image_size, "image size", patch, MAX_TRANSFER_SIZE)
    if size % patch:
        raise ValueError(f"image size must be a multiple of the patch size {patch} up to {MAX_TRANSFER_SIZE}, got {size}")
    modes = validate.choices(modes, "interpolation modes", INTERP_MODES)
    batch = max(10, min(250, 2_000_000 // ((size // patch) ** 2 + 1) ** 2))
    rows = []
    for mode in modes:
        moved = model if size == base else model_at_resolution(model, size, mode)
        rows.append({"mode": mode, "image_size": size, "grid": size // patch, "n": n,
                     "accuracy": shapes_accuracy(moved, size, n, batch_size=batch)})
    return rows
