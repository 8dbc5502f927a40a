"""Relative position codes beside the absolute tables: Swin's relative position bias and 2-D RoPE.

- Swin (Liu et al., 2021, "Swin Transformer", section 3.2, eq. 4): inside an M x M window, attention
  adds a bias B to QKᵀ/√d. Relative offsets along each axis lie in [-M+1, M-1], so every block learns a
  table B̂ of (2M-1)² x heads values, and B[i, j] = B̂[index(i - j)]. The table is read here from a
  ``transformers.SwinModel`` instantiated with Swin-T's configuration (initial values: no trained Swin is
  shipped), its parameters counted on the ``meta`` device.
- 2-D RoPE, axial (Heo et al., 2024, "Rotary Position Embedding for Vision Transformer"): each head's
  d dimensions are d/2 pairs; the first d/4 pairs are rotated by x·θ_k and the last d/4 by y·θ_k, with
  θ_k = 1 / base^(4k/d), k = 0 … d/4-1 (base 100, the authors' code, naver-ai/rope-vit). Rotations make
  q(p)·k(p') depend on p - p' only, and add no parameters.
- Absolute: a learned table has (N + 1)·D parameters (ViT, Dosovitskiy et al., 2021); sin-cos ones
  (Vaswani et al., 2017) have none.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from shared import validate

from .options import SWIN_T_DEPTHS, SWIN_T_HEADS, check_rope, check_window


def swin_config(window: int, embed_dim: int = 96, image_size: int = 224, patch_size: int = 4):
    """Swin-T (Liu et al., 2021): C = 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24); the window yours."""
    from transformers import SwinConfig

    return SwinConfig(image_size=image_size, patch_size=patch_size, embed_dim=embed_dim, depths=list(SWIN_T_DEPTHS),
                      num_heads=list(SWIN_T_HEADS), window_size=window)


def swin_bias_params(window) -> dict:
    """Relative-position-bias parameters of every block of a meta-device Swin-T with an M x M window."""
    from transformers import SwinModel

    m = check_window(window)
    with torch.device("meta"):
        model = SwinModel(swin_config(m))
    blocks = [(name, tuple(p.shape)) for name, p in model.named_parameters()
              if name.endswith("relative_position_bias_table")]
    return {"window": m, "blocks": blocks, "total": int(sum(int(np.prod(s)) for _, s in blocks)),
            "model_params": int(sum(p.numel() for p in model.parameters()))}


@functools.lru_cache(maxsize=4)
def _swin_block(window: int, seed: int = 0):
    """The first block's relative-position-bias module of a Swin-T (window M), instantiated on the CPU.

    transformers starts the table at zero (``SwinPreTrainedModel._init_weights``); it is filled here as Liu et
    al.'s code (microsoft/Swin-Transformer, ``WindowAttention``) initialises it, ``trunc_normal_(std=.02)``,
    seeded, so that the gather is visible. No trained Swin is shipped: these are initial values, not learned ones.
    """
    from transformers import SwinModel

    model = SwinModel(swin_config(window))
    module = model.encoder.layers[0].blocks[0].attention.relative_position_bias
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.relative_position_bias_table.copy_(
            torch.nn.init.trunc_normal_(torch.empty_like(module.relative_position_bias_table), std=0.02,
                                        generator=generator))
    return module


def swin_bias(window, head) -> dict:
    """Block 1's bias table for one head, (2M-1) x (2M-1) by offset (Δy, Δx), and the M² x M² bias the
    module's own forward adds to QKᵀ (query i, key j)."""
    m = check_window(window)
    head = validate.integer(head, "head", 0, SWIN_T_HEADS[0] - 1)
    module = _swin_block(m)
    table = module.relative_position_bias_table.detach()  # ((2M-1)², heads)
    with torch.no_grad():
        bias = module()[0, head]  # (M², M²)
    return {"table": table[:, head].reshape(2 * m - 1, 2 * m - 1).numpy(), "bias": bias.numpy(),
            "full_table": table.numpy(), "index": module.relative_position_index.reshape(m * m, m * m).numpy(),
            "table_shape": tuple(table.shape), "window": m, "head": head}


def rope_frequencies(head_dim: int, theta: float) -> np.ndarray:
    """θ_k = 1 / theta^(4k / d), k = 0 … d/4 - 1: one frequency per rotated pair and axis."""
    return 1.0 / theta ** (np.arange(0, head_dim, 4)[: head_dim // 4] / head_dim)


def rope_rotate(x: np.ndarray, px: float, py: float, theta: float) -> np.ndarray:
    """Rotate a (d,) vector as axial 2-D RoPE does at position (px, py): pair j = (x[2j], x[2j+1]) turns by
    px·θ_j for the first d/4 pairs and by py·θ_(j - d/4) for the last d/4."""
    d = x.shape[-1]
    f = rope_frequencies(d, theta)
    angles = np.concatenate([px * f, py * f])  # (d/2,)
    out = np.empty_like(x, dtype=np.float64)
    c, s = np.cos(angles), np.sin(angles)
    out[0::2] = c * x[0::2] - s * x[1::2]
    out[1::2] = s * x[0::2] + c * x[1::2]
    return out


def rope_similarity(head_dim, grid, theta) -> dict:
    """Score of a rotated query against rotated keys at every offset of a grid, for q = k = a fixed unit
    vector (all pairs (1, 1)/√d): (2g-1) x (2g-1) by offset (Δy, Δx), from two different query positions
    to show that only the offset matters."""
    d, g, theta = check_rope(head_dim, grid, theta)
    q = np.ones(d) / np.sqrt(d)
    offsets = np.arange(-(g - 1), g)
    maps = []
    for origin in ((0.0, 0.0), (g - 1.0, 3.0)):
        rq = rope_rotate(q, *origin, theta)
        maps.append(np.array([[rq @ rope_rotate(q, origin[0] + dx, origin[1] + dy, theta) for dx in offsets]
                              for dy in offsets]))
    return {"map": maps[0], "max_origin_difference": float(np.abs(maps[0] - maps[1]).max()),
            "offsets": offsets, "head_dim": d, "grid": g, "theta": theta,
            "frequencies": rope_frequencies(d, theta)}


def sincos_offset_similarity(dim: int, grid: int) -> np.ndarray:
    """Cosine similarity of the 2-D sin-cos code at the grid centre against every position, by offset."""
    from .positions import sincos_2d

    table = sincos_2d(grid, dim)  # (g², D)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    centre = (grid // 2) * grid + grid // 2
    return (unit @ unit[centre]).reshape(grid, grid)
