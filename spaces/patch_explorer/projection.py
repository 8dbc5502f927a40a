"""The linear patch projection and what it learns: z = W x + b, written as Conv2d and as unfold + matmul.

ViT (Dosovitskiy et al., 2021, arXiv:2010.11929, eq. 1) maps each flattened patch x in R^(P^2 C) to
width D with one matrix E shared by all patches; code writes it ``Conv2d(C, D, kernel_size=P,
stride=P)``, and ``conv_vs_unfold`` shows numerically that the two are the same linear map.
``filter_images`` draws the rows of W (or their principal components) as P x P RGB images, as
Figure 7 (left) of the paper does for ViT-L/32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from shared import validate
from shared.images import to_tensor

from .grid import crop_to_patches, patch_grid, patches
from .options import CHANNELS, MAX_PROJECTION_OUTPUTS, MAX_PROJECTION_WEIGHTS, check_width

# --------------------------------------------------------------------------------------
#                                   Projections
# --------------------------------------------------------------------------------------


def to_pixels(image: Image.Image) -> torch.Tensor:
    """RGB PIL -> float (1, C, H, W) in [-1, 1], the normalisation vit-tiny-shapes was trained with."""
    return to_tensor(np.array(image.convert("RGB")))  # (1, C, H, W); a writable copy, as torch wants


def seeded_projection(patch_size: int, width: int, seed: int = 0, channels: int = CHANNELS) -> torch.nn.Conv2d:
    """An untrained patch projection with PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
    patch_size, width = validate.integer(patch_size, "patch size", 1), check_width(width)
    weights = width * channels * patch_size**2
    if weights > MAX_PROJECTION_WEIGHTS:
        raise ValueError(f"the projection demo materialises D*P^2*C = {weights:,} weights; the limit is "
                         f"{MAX_PROJECTION_WEIGHTS:,}. Lower the patch size or the width D.")
    conv = torch.nn.Conv2d(channels, width, kernel_size=patch_size, stride=patch_size)
    gen = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(channels * patch_size**2)
    with torch.no_grad():
        conv.weight.copy_(torch.empty_like(conv.weight).uniform_(-bound, bound, generator=gen))  # (D, C, P, P)
        conv.bias.copy_(torch.empty_like(conv.bias).uniform_(-bound, bound, generator=gen))  # (D,)
    return conv


def trained_projection(model) -> torch.nn.Conv2d:
    """The patch projection of a transformers ViT: Conv2d(3, D, kernel_size=P, stride=P)."""
    return model.vit.embeddings.patch_embeddings.projection


@dataclass
class Projection:
    index: int
    row: int
    col: int
    patch: np.ndarray  # uint8 (P, P, C)
    vector: np.ndarray  # (C*P*P,) the flattened normalised patch, channel-major
    embedding: np.ndarray  # (D,) = W x + b
    max_abs_diff: float  # Conv2d against unfold + matmul, over all patches


def conv_vs_unfold(pixels: torch.Tensor, conv: torch.nn.Conv2d) -> dict:
    """Run the projection two ways and return both outputs and their largest difference.

    Conv2d(kernel=P, stride=P) slides a D-filter bank over non-overlapping windows; unfold
    lists those windows as columns, so one matrix product does the same work.
    """
    p = conv.kernel_size[0]
    n = (pixels.shape[-2] // p) * (pixels.shape[-1] // p)
    d = conv.out_channels
    if n * d > MAX_PROJECTION_OUTPUTS:
        raise ValueError(f"the projection demo materialises N*D = {n:,}*{d:,} outputs; the limit is "
                         f"{MAX_PROJECTION_OUTPUTS:,}. Use a larger patch size, a smaller image or a smaller D.")
    with torch.no_grad():
        by_conv = conv(pixels)  # (1, D, rows, cols)
        by_conv = by_conv.flatten(2).transpose(1, 2)[0]  # (N, D), raster order
        columns = F.unfold(pixels, kernel_size=p, stride=p)[0].T  # (N, C*P*P), channel-major like the weight
        by_matmul = columns @ conv.weight.reshape(d, -1).T + conv.bias  # (N, D)
    return {"conv": by_conv, "matmul": by_matmul, "columns": columns,
            "max_abs_diff": float((by_conv - by_matmul).abs().max())}


def project_patch(image: Image.Image, patch_size: int, index: int, conv: torch.nn.Conv2d) -> Projection:
    """Flatten patch ``index`` and embed it; also check Conv2d == unfold + matmul on the whole image."""
    g = patch_grid(image.size[0], patch_size)
    index = validate.integer(index, "patch index", 0, g.num_patches - 1)
    if conv.kernel_size[0] != g.patch_size or conv.in_channels != CHANNELS:
        raise ValueError(f"this projection takes {conv.kernel_size[0]}x{conv.kernel_size[0]} patches of "
                         f"{conv.in_channels} channels; the image is cut into {g.patch_size}x{g.patch_size} patches")
    pixels = to_pixels(crop_to_patches(image, g.patch_size))  # (1, C, G*P, G*P)
    check = conv_vs_unfold(pixels.to(conv.weight.device, conv.weight.dtype), conv)
    row, col = divmod(index, g.cols)
    return Projection(
        index=index, row=row, col=col,
        patch=patches(image, g.patch_size)[index],
        vector=check["columns"][index].float().cpu().numpy(),
        embedding=check["conv"][index].float().cpu().numpy(),
        max_abs_diff=check["max_abs_diff"],
    )


# --------------------------------------------------------------------------------------
#                                   Learned filters (ViT Figure 7, left)
# --------------------------------------------------------------------------------------

def filter_images(weight: torch.Tensor | np.ndarray, mode: str = "pca",
                  count: int = 28) -> tuple[np.ndarray, np.ndarray | None]:
    """Patch-embedding filters as images, each min-max normalised to [0, 1]: (k, P, P, C).

    ``mode="filters"``: the first ``count`` rows of the weight. ``mode="pca"``: the top
    principal components of the D filters (ViT Figure 7 left shows the top 28), with the
    share of variance each explains.
    """
    mode = validate.choice(mode, "mode", ("pca", "filters"))
    count = validate.integer(count, "count", 1)
    w = np.asarray(weight.detach().cpu() if isinstance(weight, torch.Tensor) else weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"expected a Conv2d weight (D, C, P, P), got shape {w.shape}")
    d, c, p, _ = w.shape
    flat = w.reshape(d, -1)  # (D, C*P*P)
    explained = None
    if mode == "filters":
        picked = flat[: min(count, d)]
    else:
        centred = flat - flat.mean(axis=0, keepdims=True)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (k, C*P*P)
        k = min(count, vt.shape[0])
        picked, explained = vt[:k], (s**2 / (s**2).sum())[:k]
    imgs = picked.reshape(-1, c, p, p).transpose(0, 2, 3, 1)  # (k, P, P, C)
    lo = imgs.min(axis=(1, 2, 3), keepdims=True)
    hi = imgs.max(axis=(1, 2, 3), keepdims=True)
    return (imgs - lo) / np.maximum(hi - lo, 1e-12), explained
