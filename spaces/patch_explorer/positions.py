"""Position codes: fixed sin-cos tables, the learned ViT table, how much 2-D layout each carries,
and how a learned table is resized to a new grid.

Attention is permutation-invariant, so each token gets a position code added:
- 1-D sin-cos over the raster index (Vaswani et al., 2017, arXiv:1706.03762, section 3.5);
- 2-D sin-cos, half the dimensions for the row and half for the column (MoCo v3, Chen et al., 2021,
  arXiv:2104.02057; MAE, He et al., 2022, arXiv:2111.06377);
- a learned table (ViT, Dosovitskiy et al., 2021, arXiv:2010.11929), which must discover the grid from
  data; its Figure 7 (centre, ViT-L/32) shows that it does, and ``neighbour_similarity`` measures it.

At a new resolution the grid changes, and ViT section 3.2 performs "2D interpolation" of the
learned table; the kernel is not named there, and ``interpolate_positions`` uses bicubic, the
default of timm's ``resample_abs_pos_embed`` (timm/layers/pos_embed.py) and what transformers'
``ViTEmbeddings.interpolate_pos_encoding`` does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from shared import validate

from .options import INTERP_MODES

# --------------------------------------------------------------------------------------
#                                   Tables and their similarity
# --------------------------------------------------------------------------------------


def sincos_1d(positions: np.ndarray | int, dim: int) -> np.ndarray:
    """Vaswani et al. (2017): PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(p / 10000^(2i/D))."""
    if dim < 2 or dim % 2:
        raise ValueError(f"a 1-D sin-cos encoding needs an even dimension >= 2, got {dim}")
    pos = np.arange(positions, dtype=np.float64) if np.isscalar(positions) else np.asarray(positions, np.float64)
    freq = 1.0 / 10000 ** (np.arange(0, dim, 2, dtype=np.float64) / dim)  # (D/2,)
    angles = pos[:, None] * freq[None, :]  # (N, D/2)
    table = np.empty((len(pos), dim))  # (N, D)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table


def sincos_2d(grid: int, dim: int) -> np.ndarray:
    """2-D sin-cos (MoCo v3, MAE): the first D/2 dims encode the row, the last D/2 the column.

    Rows of the result are positions in raster order (row * grid + col).
    """
    if dim < 4 or dim % 4:
        raise ValueError(f"a 2-D sin-cos encoding needs a dimension divisible by 4 (>= 4), got {dim}")
    rows, cols = np.divmod(np.arange(grid * grid), grid)  # (N,), (N,)
    return np.concatenate([sincos_1d(rows, dim // 2), sincos_1d(cols, dim // 2)], axis=1)  # (N, D)


def learned_positions(model) -> np.ndarray:
    """The learned patch-position table of a transformers ViT, [CLS] row removed: (N, D)."""
    table = model.vit.embeddings.position_embeddings.detach()[0, 1:]  # (N, D)
    return table.float().cpu().numpy()


def cosine_similarity_matrix(table: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, N) cosine similarities."""
    unit = table / np.linalg.norm(table, axis=1, keepdims=True).clip(min=1e-12)  # (N, D)
    return unit @ unit.T  # (N, N)


def similarity_map(table: np.ndarray, grid: int, index: int) -> np.ndarray:
    """Cosine similarity of position ``index`` against all positions, as a (grid, grid) map."""
    if table.shape[0] != grid * grid:
        raise ValueError(f"a table of {table.shape[0]} positions is not a {grid}x{grid} grid")
    index = validate.integer(index, "position", 0, grid * grid - 1)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True).clip(min=1e-12)
    return (unit @ unit[index]).reshape(grid, grid)  # (grid, grid)


def neighbour_similarity(table: np.ndarray, grid: int) -> dict:
    """Does the table know the 2-D layout? Mean cosine similarity of 4-connected grid
    neighbours against all other pairs of distinct positions, the mean by grid distance
    (Euclidean, rounded to whole patches), and the mean among border and among interior positions."""
    if table.shape[0] != grid * grid or grid < 3:
        raise ValueError(f"need a table of grid*grid positions with grid >= 3, got {table.shape[0]} for grid {grid}")
    sim = cosine_similarity_matrix(table)  # (N, N)
    r, c = np.divmod(np.arange(grid * grid), grid)
    manhattan = np.abs(r[:, None] - r[None, :]) + np.abs(c[:, None] - c[None, :])  # (N, N)
    euclid = np.sqrt((r[:, None] - r[None, :]) ** 2 + (c[:, None] - c[None, :]) ** 2)  # (N, N)
    neighbours = manhattan == 1
    others = manhattan > 1
    ring = np.rint(euclid)  # distance rounded to whole patches, so each point averages many pairs
    by_distance = [(float(d), float(sim[ring == d].mean())) for d in np.unique(ring[ring >= 1])]
    # Positions on the outer ring of the grid, against the inside: a learned table can give all
    # border positions one shared code (they mostly see background), which raises far-apart pairs.
    edge = (r == 0) | (r == grid - 1) | (c == 0) | (c == grid - 1)  # (N,)
    distinct = ~np.eye(grid * grid, dtype=bool)
    return {"neighbour_mean": float(sim[neighbours].mean()), "non_neighbour_mean": float(sim[others].mean()),
            "neighbour_pairs": int(neighbours.sum() // 2), "non_neighbour_pairs": int(others.sum() // 2),
            "by_distance": by_distance,
            "border_mean": float(sim[np.outer(edge, edge) & distinct].mean()),
            "interior_mean": float(sim[np.outer(~edge, ~edge) & distinct].mean())}


# --------------------------------------------------------------------------------------
#                                   Resizing a learned table (ViT section 3.2)
# --------------------------------------------------------------------------------------

def interpolate_positions(table: torch.Tensor, new_grid: int, num_prefix: int = 1, mode: str = "bicubic") -> torch.Tensor:
    """Resize a learned position table to a new square grid (ViT section 3.2's "2D interpolation";
    bicubic by default, as timm does; nearest or bilinear on request).

    (1, prefix + N, D) -> reshape the N patch rows to sqrt(N) x sqrt(N) x D -> ``mode`` to
    new_grid x new_grid -> flatten; the [CLS] (prefix) rows are kept as they are.
    """
    mode = validate.choice(mode, "interpolation mode", INTERP_MODES)
    if table.ndim != 3 or table.shape[0] != 1:
        raise ValueError(f"expected a table of shape (1, prefix + N, D), got {tuple(table.shape)}")
    new_grid = validate.integer(new_grid, "new grid", 1)
    prefix, grid_pos = table[:, :num_prefix], table[:, num_prefix:]  # (1, prefix, D), (1, N, D)
    n, d = grid_pos.shape[1], grid_pos.shape[2]
    g = math.isqrt(n)
    if g * g != n:
        raise ValueError(f"{n} patch positions do not form a square grid")
    x = grid_pos.reshape(1, g, g, d).permute(0, 3, 1, 2)  # (1, D, g, g)
    corners = {} if mode == "nearest" else {"align_corners": False}
    x = F.interpolate(x, size=(new_grid, new_grid), mode=mode, **corners)  # (1, D, g', g')
    x = x.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, d)  # (1, g'^2, D)
    return torch.cat([prefix, x], dim=1)  # (1, prefix + g'^2, D)
