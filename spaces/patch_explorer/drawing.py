"""Rendering: the patch grid over the image, the token strip, and mosaics of maps and filters.

Pictures only (PIL, numpy; matplotlib's colour maps imported where used): the numbers they show
come from grid.py, positions.py and projection.py. Every drawing is integer-upscaled with
nearest-neighbour sampling, so one image pixel stays one flat block and nothing is smoothed away.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from shared import validate

from .grid import patch_grid, patches
from .options import MAX_STRIP_TOKENS
from .positions import cosine_similarity_matrix

# --------------------------------------------------------------------------------------
#                                   The patch grid over the image
# --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


@functools.lru_cache(maxsize=4096)
def _label(text: str, size: int) -> Image.Image:
    """White text on a translucent dark box, rendered once and pasted many times."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    sprite = Image.new("RGBA", (right - left + 3, bottom - top + 3), (0, 0, 0, 150))
    ImageDraw.Draw(sprite).text((1 - left, 1 - top), text, fill=(255, 255, 255, 255), font=font)
    return sprite


def overlay_scale(image_size: int) -> int:
    """Integer upscaling of the overlay so small images still show legible indices."""
    return max(1, 448 // image_size)


def overlay(image: Image.Image, patch_size: int, highlight: int | None = None) -> tuple[Image.Image, dict]:
    """The prepared image with the patch grid, patch indices, dropped margin and an optional highlight.

    Returns the drawing and facts about it (``scale`` maps overlay pixels back to image pixels,
    ``label_step`` is 0 when the cells are too small to number).
    """
    g = patch_grid(image.size[0], patch_size)
    if highlight is not None:
        highlight = validate.integer(highlight, "patch index", 0, g.num_patches - 1)
    scale = overlay_scale(g.image_size)
    side = g.image_size * scale
    out = image.convert("RGB").resize((side, side), Image.Resampling.NEAREST)
    cell = g.patch_size * scale  # overlay pixels per patch
    covered = g.covered * scale

    if g.dropped:  # tint the remainder that no patch covers
        arr = np.array(out, dtype=np.float32)  # (side, side, 3)
        mask = np.zeros((side, side), dtype=bool)
        mask[covered:, :] = True
        mask[:, covered:] = True
        arr[mask] = 0.55 * arr[mask] + 0.45 * np.array([220.0, 30.0, 30.0])
        out = Image.fromarray(arr.round().astype(np.uint8))

    draw = ImageDraw.Draw(out)
    line_step = max(1, math.ceil(4 / cell))  # outline every patch only if cells are >= 4 px
    for k in range(0, g.rows + 1, line_step):
        xy = min(k * cell, side - 1)
        draw.line((xy, 0, xy, covered), fill=(255, 255, 255), width=1)
        draw.line((0, xy, covered, xy), fill=(255, 255, 255), width=1)

    label_step = 0
    font_size = int(min(14, cell * 0.38))
    if font_size >= 7 and _label(str(g.num_patches - 1), font_size).width + 3 <= cell:
        label_step = 1
        for i in range(g.num_patches):
            r, c = divmod(i, g.cols)
            sprite = _label(str(i), font_size)
            out.paste(sprite, (c * cell + 2, r * cell + 2), sprite)

    if highlight is not None:
        r, c = divmod(highlight, g.cols)
        draw.rectangle((c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1),
                       outline=(255, 40, 40), width=max(2, scale))
    return out, {"scale": scale, "line_step": line_step, "label_step": label_step}


# --------------------------------------------------------------------------------------
#                                   Token strip and mosaics
# --------------------------------------------------------------------------------------

def token_strip(image: Image.Image, patch_size: int, per_row: int = 16, tile: int = 32,
                max_tokens: int = MAX_STRIP_TOKENS) -> tuple[Image.Image, int]:
    """[CLS] then the patches in raster order, wrapped ``per_row`` tokens a line.

    Returns the strip and how many tokens it shows (at most ``max_tokens`` incl. [CLS]).
    """
    g = patch_grid(image.size[0], patch_size)
    shown = min(g.seq_len, max_tokens)
    tiles = patches(image, patch_size)[: shown - 1]  # (shown-1, P, P, C)
    gap, label_h = 4, 13
    n_rows = math.ceil(shown / per_row)
    strip = Image.new("RGB", (per_row * (tile + gap) + gap, n_rows * (tile + gap + label_h) + gap), (250, 250, 252))
    draw = ImageDraw.Draw(strip)
    font = _font(10)
    resample = Image.Resampling.NEAREST if patch_size <= tile else Image.Resampling.BOX
    for k in range(shown):
        r, c = divmod(k, per_row)
        x0, y0 = gap + c * (tile + gap), gap + r * (tile + gap + label_h)
        if k == 0:
            draw.rectangle((x0, y0 + label_h, x0 + tile - 1, y0 + label_h + tile - 1), fill=(79, 70, 229))
            draw.text((x0 + tile // 2, y0 + label_h + tile // 2), "CLS", fill="white", font=font, anchor="mm")
            draw.text((x0 + tile // 2, y0 + label_h // 2), "CLS", fill=(79, 70, 229), font=font, anchor="mm")
            continue
        strip.paste(Image.fromarray(tiles[k - 1]).resize((tile, tile), resample), (x0, y0 + label_h))
        draw.text((x0 + tile // 2, y0 + label_h // 2), str(k - 1), fill=(60, 60, 60), font=font, anchor="mm")
    return strip, shown


def similarity_mosaic(table: np.ndarray, grid: int, cell: int = 6, gap: int = 2, cmap: str = "viridis") -> Image.Image:
    """ViT Figure 7 (centre): for every position, its similarity map, tiled in grid order."""
    from matplotlib import colormaps

    sim = cosine_similarity_matrix(table).reshape(grid, grid, grid, grid)  # (r, c, r', c')
    tile = grid * cell
    side = grid * tile + (grid + 1) * gap
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    colour = colormaps[cmap]
    lo, hi = float(sim.min()), float(sim.max())
    for r in range(grid):
        for c in range(grid):
            m = (sim[r, c] - lo) / max(hi - lo, 1e-12)  # (grid, grid)
            rgb = (colour(m)[..., :3] * 255).astype(np.uint8).repeat(cell, 0).repeat(cell, 1)
            y0, x0 = gap + r * (tile + gap), gap + c * (tile + gap)
            canvas[y0:y0 + tile, x0:x0 + tile] = rgb
    return Image.fromarray(canvas)


def tile_images(images: np.ndarray, per_row: int = 7, cell: int = 48, gap: int = 4) -> Image.Image:
    """(k, P, P, C) floats in [0, 1] -> one mosaic, each upscaled (nearest) to ``cell`` pixels."""
    k = len(images)
    n_rows = math.ceil(k / per_row)
    canvas = Image.new("RGB", (per_row * (cell + gap) + gap, n_rows * (cell + gap) + gap), (255, 255, 255))
    for i, img in enumerate(images):
        r, c = divmod(i, per_row)
        tile = Image.fromarray((img * 255).round().astype(np.uint8)).resize((cell, cell), Image.Resampling.NEAREST)
        canvas.paste(tile, (gap + c * (cell + gap), gap + r * (cell + gap)))
    return canvas
