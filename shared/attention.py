"""Attention of a ViT-family model, captured for one image, and what is computed from it.

One module for the attention-maps and attribution spaces. ``capture`` runs a model loaded by
``shared.models.load(name, attn="eager")`` (SDPA returns no attention maps) with
``output_attentions=True`` and keeps, for the single image, every layer's and head's attention
probabilities: ``maps[l, h, q, k]`` is how much query token ``q`` attends to key token ``k`` in layer
``l``, head ``h``. Tokens are ``prefix`` special tokens ([CLS], DeiT's distillation token) followed by
the patch tokens in row-major order.

Definitions (the issue's, each checked by an independent test):

- rollout (Abnar & Zuidema, 2020): per layer fuse the heads (mean, max or min); with discard ratio r
  zero the floor(r (N^2 - 1)) smallest entries of the fused N x N matrix, [CLS]->[CLS] excluded; then
  A~ = (A + I) / 2 with rows renormalised, R = A~_L ... A~_1, and the map is R's [CLS] row over the
  patch tokens, normalised to sum 1;
- mean attention distance of a head (ViT, Dosovitskiy et al., 2021, Figure 7 right): for each patch
  query, sum_k a_qk |centre_q - centre_k| over patch keys, weights renormalised over them, in pixels of
  the model input; averaged over the patch queries;
- entropy of a head: of the [CLS] query's attention over all tokens, in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared import validate

if TYPE_CHECKING:
    import torch

FUSIONS: tuple[str, ...] = ("mean", "max", "min")


@dataclass
class Attention:
    maps: torch.Tensor  # (L, H, N, N) attention probabilities, rows sum to 1; N = prefix + rows * cols
    prefix: int  # special tokens before the patches ([CLS] first)
    grid: tuple[int, int]  # (rows, cols) of patches
    patch_size: int  # pixels of the model input per patch side
    image_size: int  # pixels of the model input
    logits: torch.Tensor | None  # (C,) for a classifier, else None
    pixel_values: torch.Tensor  # (1, 3, S, S) what the model saw, after its processor

    @property
    def layers(self) -> int:
        return self.maps.shape[0]

    @property
    def heads(self) -> int:
        return self.maps.shape[1]


def _model_geometry(model) -> tuple[int, int]:
    config = getattr(model, "config", None)
    size, patch = getattr(config, "image_size", None), getattr(config, "patch_size", None)
    if not isinstance(size, int) or not isinstance(patch, int):
        raise ValueError(f"{type(model).__name__} is not a ViT-family model (its config has no image_size "
                         "and patch_size)")
    return size, patch


def capture(model, processor, image, grad: bool = False) -> Attention:
    """Run ``model`` on one PIL image and keep every layer's attention. With ``grad``, the maps and
    logits stay in the autograd graph (for gradient-weighted methods); otherwise no graph is built."""
    import torch

    size, patch = _model_geometry(model)
    device = next(model.parameters()).device
    pixel_values = processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"].to(device)
    with torch.set_grad_enabled(grad):
        out = model(pixel_values=pixel_values, output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if not attentions or attentions[0] is None:
        raise ValueError("the model returned no attention maps: load it with attn='eager' "
                         "(shared.models.load(name, attn='eager'))")
    maps = torch.stack([a[0] for a in attentions])  # (L, H, N, N)
    grid = (size // patch, size // patch)
    prefix = maps.shape[-1] - grid[0] * grid[1]
    if prefix < 1:
        raise ValueError(f"{maps.shape[-1]} tokens for a {grid[0]}x{grid[1]} grid: no [CLS] token")
    logits = out.logits[0] if hasattr(out, "logits") else None
    return Attention(maps, prefix, grid, patch, size, logits, pixel_values)


def fuse_heads(maps: torch.Tensor, fusion: str) -> torch.Tensor:
    """(L, H, N, N) -> (L, N, N): the heads' mean, max or min."""
    fusion = validate.choice(fusion, "head fusion", FUSIONS)
    if fusion == "mean":
        return maps.mean(dim=1)
    return maps.amax(dim=1) if fusion == "max" else maps.amin(dim=1)


def discard_smallest(a: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the floor(ratio * (N^2 - 1)) smallest entries of an (N, N) matrix, [CLS]->[CLS] excluded."""
    ratio = validate.number(ratio, "discard ratio", 0, 1)
    if ratio >= 1:
        raise ValueError(f"discard ratio must be a finite number from 0 to below 1, got {ratio:g}")
    n = a.shape[-1]
    k = math.floor(ratio * (n * n - 1))
    if k == 0:
        return a
    flat = a.flatten().clone()  # (N*N,)
    candidates = flat[1:]  # index 0 is [CLS]->[CLS]
    drop = candidates.topk(k, largest=False).indices + 1  # (k,)
    flat[drop] = 0
    return flat.view(n, n)


def rollout(att: Attention, fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020), as defined in the module docstring: (rows, cols), sums to 1."""
    import torch

    fused = fuse_heads(att.maps.detach().float(), fusion)  # (L, N, N)
    n = fused.shape[-1]
    eye = torch.eye(n)
    result = eye.clone()
    for layer in fused:  # first layer first: R = A~_L ... A~_1
        a = discard_smallest(layer.cpu(), discard_ratio)
        a = (a + eye) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        result = a @ result
    cls_row = result[0, att.prefix:]  # (rows * cols,)
    cls_row = cls_row / cls_row.sum()
    return cls_row.view(*att.grid).numpy()


def patch_centres(grid: tuple[int, int], patch_size: int) -> np.ndarray:
    """(rows * cols, 2) pixel centres (y, x) of the patches in row-major order."""
    rows, cols = grid
    ys, xs = np.meshgrid((np.arange(rows) + 0.5) * patch_size, (np.arange(cols) + 0.5) * patch_size, indexing="ij")
    return np.stack([ys.ravel(), xs.ravel()], axis=1)


def mean_distance(att: Attention) -> np.ndarray:
    """(L, H) mean attention distance in pixels (ViT Figure 7 right), as defined in the module docstring."""
    centres = patch_centres(att.grid, att.patch_size)  # (P, 2)
    dist = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)  # (P, P)
    a = att.maps.detach().float().cpu().numpy()[:, :, att.prefix:, att.prefix:]  # (L, H, P, P) patch -> patch
    a = a / a.sum(axis=-1, keepdims=True)  # renormalised over the patch keys
    return (a * dist).sum(axis=-1).mean(axis=-1)  # (L, H)


def cls_entropy(att: Attention) -> np.ndarray:
    """(L, H) entropy in nats of the [CLS] query's attention over all tokens."""
    p = att.maps.detach().float().cpu().numpy()[:, :, 0, :]  # (L, H, N)
    return -(p * np.log(np.clip(p, 1e-30, None))).sum(axis=-1)


def label_of(att: Attention, model) -> str | None:
    """The predicted class name, for a classifier."""
    if att.logits is None:
        return None
    id2label: dict[Any, str] = getattr(model.config, "id2label", {}) or {}
    index = int(att.logits.argmax())
    return str(id2label.get(index, id2label.get(str(index), index)))
