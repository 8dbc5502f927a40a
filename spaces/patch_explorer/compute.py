"""Patch embeddings and positional encoding: how a Vision Transformer turns an image into tokens.

The tutorial follows the first step of ViT (Dosovitskiy et al., 2021, "An Image is Worth 16x16
Words", arXiv:2010.11929):

1. **Patchify.** An image of H x W pixels is cut into non-overlapping P x P patches,
   N = floor(H/P) * floor(W/P) of them, read in raster order (row by row). A learned [CLS]
   token is prepended, so the encoder sees N + 1 tokens.
2. **Linear projection.** Each patch is flattened to a vector of P^2 * C numbers and mapped to
   width D by one shared matrix: z_i = W x_i + b, with D * (P^2 * C + 1) parameters. In code
   this is ``Conv2d(C, D, kernel_size=P, stride=P)``; ``conv_vs_unfold`` checks numerically that
   it equals unfold + matmul.
3. **Position.** Attention is permutation-invariant, so a position code is added to each
   token: fixed 1-D sin-cos (Vaswani et al., 2017, arXiv:1706.03762), fixed 2-D sin-cos
   (half the dimensions encode the row, half the column, as in MoCo v3, Chen et al., 2021,
   arXiv:2104.02057, and MAE, He et al., 2022, arXiv:2111.06377), or a learned table (ViT).
   A learned table has to discover the 2-D layout from data; ViT's Figure 7 (centre) shows
   that it does, and ``neighbour_similarity`` measures it on the model trained here.
4. **Resolution transfer.** At a new resolution the grid changes, so the learned table is
   reshaped to its sqrt(N) x sqrt(N) grid, resized and flattened again (ViT section 3.2: "2D
   interpolation"; the kernel here is bicubic, timm's choice). ``transfer_accuracy`` runs the trained model that way on held-out shapes.

Everything here is pure (numpy, torch, PIL), with no UI code. Bad input raises ``ValueError`` whose
message says what is allowed.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

# --------------------------------------------------------------------------------------
#                                   Limits
# --------------------------------------------------------------------------------------

MIN_IMAGE_SIZE = 8  # pixels a side
MAX_IMAGE_SIZE = 1024  # pixels a side: 1024/2 already gives 262,144 patch tokens
MIN_PATCH_SIZE = 2
MAX_WIDTH = 8192  # the largest published ViT width is 1664 (ViT-G/14); 8192 leaves room
CHANNELS = 3  # RGB: every input is converted to RGB by shared.images
MAX_PROJECTION_WEIGHTS = 2**24  # D * P^2 * C floats materialised for the projection demo
MAX_PROJECTION_OUTPUTS = 2**24  # N * D floats materialised for the projection demo
MAX_STRIP_TOKENS = 256  # tokens drawn in the sequence strip
LEARNED_MODEL = "vit-tiny-shapes"
COMPARE_PATCH_SIZES = (8, 16, 32)


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_image_size(image_size: int) -> int:
    """The side of the square image fed to the model: an integer in [8, 1024]."""
    image_size = _check_int(image_size, "image size")
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image size must be an integer from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, "
                         f"got {image_size}")
    return image_size


def check_patch_size(patch_size: int, image_size: int) -> int:
    """A patch side from 2 up to the image size (then there is one patch)."""
    patch_size = _check_int(patch_size, "patch size")
    if not MIN_PATCH_SIZE <= patch_size <= image_size:
        raise ValueError(f"patch size must be an integer from {MIN_PATCH_SIZE} to the image size ({image_size}), "
                         f"got {patch_size}")
    return patch_size


def check_width(width: int) -> int:
    """The embedding width D, an integer in [1, 8192] (ViT-B uses 768)."""
    width = _check_int(width, "width D")
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width D must be an integer from 1 to {MAX_WIDTH}, got {width}")
    return width


# --------------------------------------------------------------------------------------
#                                   Patch-grid arithmetic
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatchGrid:
    """The numbers of a square image of side ``image_size`` cut into ``patch_size`` patches."""

    image_size: int
    patch_size: int
    channels: int = CHANNELS

    @property
    def rows(self) -> int:
        return self.image_size // self.patch_size  # floor: no fractional patches

    @property
    def cols(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.rows * self.cols  # N = floor(H/P) * floor(W/P)

    @property
    def seq_len(self) -> int:
        return self.num_patches + 1  # + [CLS]

    @property
    def patch_dim(self) -> int:
        return self.patch_size**2 * self.channels  # P^2 * C

    @property
    def covered(self) -> int:
        return self.rows * self.patch_size  # pixels a side that the patches cover

    @property
    def dropped(self) -> int:
        return self.image_size - self.covered  # bottom rows / right columns no patch covers

    def projection_params(self, width: int) -> int:
        """Weights plus bias of the patch projection: D * (P^2 * C + 1)."""
        return check_width(width) * (self.patch_dim + 1)

    def crop_note(self) -> str:
        s, p = self.image_size, self.patch_size
        if self.dropped == 0:
            return f"{p} divides {s}: {self.rows}x{self.cols} patches cover the whole image; nothing is cropped."
        return (f"{p} does not divide {s} ({s} = {self.rows}*{p} + {self.dropped}), and there are no fractional "
                f"patches: the {self.rows}x{self.cols} patches cover the top-left {self.covered}x{self.covered} "
                f"pixels, and the last {self.dropped} pixel rows (bottom) and {self.dropped} columns (right) are "
                f"dropped, exactly as Conv2d(kernel_size={p}, stride={p}) drops them. "
                f"{s * s - self.covered**2} of {s * s} pixels are cropped.")


def patch_grid(image_size: int, patch_size: int) -> PatchGrid:
    """Validated grid numbers; see ``PatchGrid``."""
    image_size = check_image_size(image_size)
    return PatchGrid(image_size, check_patch_size(patch_size, image_size))


def compare_patch_sizes(image_size: int, patch_sizes: tuple[int, ...] = COMPARE_PATCH_SIZES) -> list[dict]:
    """Tokens and attention-matrix cost for several patch sizes at one resolution.

    One attention matrix holds (N+1)^2 scores per head and layer; materialised it takes
    4 bytes a score in fp32 and 2 in bf16. (FlashAttention-style kernels never store it.)
    """
    image_size = check_image_size(image_size)
    rows = []
    for p in sorted(set(patch_sizes)):
        if not MIN_PATCH_SIZE <= p <= image_size:
            continue
        g = PatchGrid(image_size, p)
        entries = g.seq_len**2
        rows.append({
            "patch_size": p, "grid": f"{g.rows}x{g.cols}", "num_patches": g.num_patches, "tokens": g.seq_len,
            "attention_entries": entries, "fp32_bytes": 4 * entries, "bf16_bytes": 2 * entries,
        })
    return rows


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------
#                                   Image preparation
# --------------------------------------------------------------------------------------

def prepare(image: Image.Image, image_size: int) -> tuple[Image.Image, str]:
    """Centre-crop to a square, then resize (bicubic) to ``image_size`` x ``image_size``.

    Centre-cropping keeps the aspect ratio (a circle stays round) at the cost of the borders
    of the longer side; squashing would keep everything but distort shapes.
    """
    image_size = check_image_size(image_size)
    if not isinstance(image, Image.Image):
        raise ValueError("image must be a PIL image (use shared.images.load_image to open a file)")
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    if w != h:
        image = image.crop((left, top, left + side, top + side))
        lost = f"{w - side} columns" if w > h else f"{h - side} rows"
        note = f"The {w}x{h} image was centre-cropped to {side}x{side} ({lost} dropped, half on each side)"
    else:
        note = f"The {w}x{h} image is square"
    if side != image_size:
        image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
        note += f" and resized (bicubic) to {image_size}x{image_size}."
    else:
        note += f" and already {image_size}x{image_size}."
    return image, note


def crop_to_patches(image: Image.Image, patch_size: int) -> Image.Image:
    """Keep the top-left floor(S/P)*P pixels a side, the part the patches cover."""
    g = patch_grid(image.size[0], patch_size)
    return image.crop((0, 0, g.covered, g.covered))


@dataclass
class Patchified:
    image: Image.Image  # the prepared square image, image_size a side (before the remainder crop)
    grid: PatchGrid
    notes: list[str] = field(default_factory=list)

    def stats(self, width: int | None = None) -> dict:
        g = self.grid
        out = {
            "image_size": g.image_size, "patch_size": g.patch_size, "channels": g.channels,
            "grid_rows": g.rows, "grid_cols": g.cols, "num_patches": g.num_patches, "seq_len": g.seq_len,
            "patch_dim": g.patch_dim, "covered_pixels": g.covered, "cropped_pixels": g.dropped,
            "resize_note": self.notes[0], "crop_note": g.crop_note(),
        }
        if width is not None:
            out["width"] = width
            out["projection_params"] = g.projection_params(width)
        return out


def patchify(image: Image.Image, image_size: int, patch_size: int) -> Patchified:
    """Validate, prepare the square image and compute its patch grid."""
    grid = patch_grid(image_size, patch_size)
    prepared, note = prepare(image, grid.image_size)
    return Patchified(prepared, grid, [note, grid.crop_note()])


def patches(image: Image.Image, patch_size: int) -> np.ndarray:
    """All patches in raster order, uint8 (N, P, P, C): patch i is row i // cols, column i % cols."""
    g = patch_grid(image.size[0], patch_size)
    x = np.asarray(crop_to_patches(image, patch_size))  # (G*P, G*P, C)
    p, c = g.patch_size, x.shape[2]
    x = x.reshape(g.rows, p, g.cols, p, c)  # (rows, P, cols, P, C)
    return x.transpose(0, 2, 1, 3, 4).reshape(g.num_patches, p, p, c)  # (N, P, P, C)


def flatten_patch(patch: np.ndarray) -> np.ndarray:
    """(P, P, C) -> (C*P*P,), channel-major: the order ``Conv2d.weight.reshape(D, -1)`` uses."""
    return np.ascontiguousarray(patch.transpose(2, 0, 1)).reshape(-1)  # (C*P*P,)


# --------------------------------------------------------------------------------------
#                                   Drawing: overlay and token strip
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
        if not 0 <= highlight < g.num_patches:
            raise ValueError(f"patch index must be from 0 to {g.num_patches - 1}, got {highlight}")
        r, c = divmod(highlight, g.cols)
        draw.rectangle((c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1),
                       outline=(255, 40, 40), width=max(2, scale))
    return out, {"scale": scale, "line_step": line_step, "label_step": label_step}


def patch_at(x: float, y: float, image_size: int, patch_size: int, scale: int = 1) -> int:
    """The raster index of the patch under overlay pixel (x, y); ValueError in the dropped margin."""
    g = patch_grid(image_size, patch_size)
    col, row = int(x // (patch_size * scale)), int(y // (patch_size * scale))
    if not (0 <= row < g.rows and 0 <= col < g.cols):
        raise ValueError(f"pixel ({int(x)}, {int(y)}) lies in the cropped margin that no patch covers; "
                         f"click inside the top-left {g.covered * scale}x{g.covered * scale} area")
    return row * g.cols + col


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


# --------------------------------------------------------------------------------------
#                                   Linear projection
# --------------------------------------------------------------------------------------

def to_pixels(image: Image.Image) -> torch.Tensor:
    """RGB PIL -> float (1, C, H, W) in [-1, 1], the normalisation vit-tiny-shapes was trained with."""
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32))  # (H, W, C)
    return (x.permute(2, 0, 1) / 127.5 - 1.0).unsqueeze(0)  # (1, C, H, W)


def seeded_projection(patch_size: int, width: int, seed: int = 0, channels: int = CHANNELS) -> torch.nn.Conv2d:
    """An untrained patch projection with PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
    patch_size, width = _check_int(patch_size, "patch size"), check_width(width)
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
    index = _check_int(index, "patch index")
    if not 0 <= index < g.num_patches:
        raise ValueError(f"patch index must be from 0 to {g.num_patches - 1} (N = {g.num_patches}), got {index}")
    if conv.kernel_size[0] != patch_size or conv.in_channels != CHANNELS:
        raise ValueError(f"this projection takes {conv.kernel_size[0]}x{conv.kernel_size[0]} patches of "
                         f"{conv.in_channels} channels; the image is cut into {patch_size}x{patch_size} patches")
    pixels = to_pixels(crop_to_patches(image, patch_size))  # (1, C, G*P, G*P)
    check = conv_vs_unfold(pixels.to(conv.weight.device, conv.weight.dtype), conv)
    row, col = divmod(index, g.cols)
    return Projection(
        index=index, row=row, col=col,
        patch=patches(image, patch_size)[index],
        vector=check["columns"][index].float().cpu().numpy(),
        embedding=check["conv"][index].float().cpu().numpy(),
        max_abs_diff=check["max_abs_diff"],
    )


# --------------------------------------------------------------------------------------
#                                   Positional encodings
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
    if not 0 <= index < grid * grid:
        raise ValueError(f"position must be from 0 to {grid * grid - 1}, got {index}")
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


# --------------------------------------------------------------------------------------
#                                   Learned filters (ViT Figure 7, left)
# --------------------------------------------------------------------------------------

def filter_images(weight: torch.Tensor | np.ndarray, mode: str = "pca", count: int = 28) -> tuple[np.ndarray, np.ndarray | None]:
    """Patch-embedding filters as images, each min-max normalised to [0, 1]: (k, P, P, C).

    ``mode="filters"``: the first ``count`` rows of the weight. ``mode="pca"``: the top
    principal components of the D filters (ViT Figure 7 left shows the top 28), with the
    share of variance each explains.
    """
    w = np.asarray(weight.detach().cpu() if isinstance(weight, torch.Tensor) else weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"expected a Conv2d weight (D, C, P, P), got shape {w.shape}")
    d, c, p, _ = w.shape
    flat = w.reshape(d, -1)  # (D, C*P*P)
    explained = None
    if mode == "filters":
        picked = flat[: min(count, d)]
    elif mode == "pca":
        centred = flat - flat.mean(axis=0, keepdims=True)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (k, C*P*P)
        k = min(count, vt.shape[0])
        picked, explained = vt[:k], (s**2 / (s**2).sum())[:k]
    else:
        raise ValueError(f"mode must be 'filters' or 'pca', got {mode!r}")
    imgs = picked.reshape(-1, c, p, p).transpose(0, 2, 3, 1)  # (k, P, P, C)
    lo = imgs.min(axis=(1, 2, 3), keepdims=True)
    hi = imgs.max(axis=(1, 2, 3), keepdims=True)
    return (imgs - lo) / np.maximum(hi - lo, 1e-12), explained


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


# --------------------------------------------------------------------------------------
#                                   Resolution transfer
# --------------------------------------------------------------------------------------

def interpolate_positions(table: torch.Tensor, new_grid: int, num_prefix: int = 1) -> torch.Tensor:
    """Resize a learned position table to a new square grid (ViT section 3.2's "2D interpolation";
    bicubic, as timm does).

    (1, prefix + N, D) -> reshape the N patch rows to sqrt(N) x sqrt(N) x D -> bicubic to
    new_grid x new_grid -> flatten; the [CLS] (prefix) rows are kept as they are.
    """
    if table.ndim != 3 or table.shape[0] != 1:
        raise ValueError(f"expected a table of shape (1, prefix + N, D), got {tuple(table.shape)}")
    new_grid = _check_int(new_grid, "new grid")
    if new_grid < 1:
        raise ValueError(f"new grid must be at least 1, got {new_grid}")
    prefix, grid_pos = table[:, :num_prefix], table[:, num_prefix:]  # (1, prefix, D), (1, N, D)
    n, d = grid_pos.shape[1], grid_pos.shape[2]
    g = math.isqrt(n)
    if g * g != n:
        raise ValueError(f"{n} patch positions do not form a square grid")
    x = grid_pos.reshape(1, g, g, d).permute(0, 3, 1, 2)  # (1, D, g, g)
    x = F.interpolate(x, size=(new_grid, new_grid), mode="bicubic", align_corners=False)  # (1, D, g', g')
    x = x.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, d)  # (1, g'^2, D)
    return torch.cat([prefix, x], dim=1)  # (1, prefix + g'^2, D)


def model_at_resolution(model, image_size: int):
    """A copy of a transformers ViT classifier for ``image_size`` inputs, its position table
    interpolated by ``interpolate_positions`` (the same patch size, so the grid changes)."""
    from transformers import ViTForImageClassification

    patch = model.config.patch_size
    if image_size % patch or image_size < patch:
        raise ValueError(f"image size must be a positive multiple of the patch size {patch}, got {image_size}")
    config = copy.deepcopy(model.config)
    config.image_size = image_size
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    key = "vit.embeddings.position_embeddings"
    state[key] = interpolate_positions(state[key], image_size // patch)  # (1, 1 + g'^2, D)
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

    if not 1 <= n <= 5000:
        raise ValueError(f"number of test images must be from 1 to 5000, got {n}")
    images, labels, _ = ShapesDataset("test", n, render_size or image_size).arrays()  # (n, H, W, 3)
    if render_size and render_size != image_size:
        images = np.stack([np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.Resampling.BICUBIC))
                           for im in images])
    param = next(model.parameters())
    correct = 0
    for i in range(0, n, batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2).float() / 127.5 - 1  # (B, 3, S, S)
        logits = model(pixel_values=x.to(param.device, param.dtype)).logits  # (B, classes)
        correct += (logits.argmax(-1).cpu() == torch.from_numpy(labels[i:i + batch_size])).sum().item()
    return correct / n


def transfer_accuracy(model, sizes: list[int], n: int = 500, progress=None) -> list[dict]:
    """For each size: the model with its positions interpolated, on shapes rendered at that size,
    and, as a reference, the original model on the same shapes resized to its own resolution."""
    base = model.config.image_size
    patch = model.config.patch_size
    rows = []
    sizes = sorted(set(_check_int(s, "image size") for s in sizes))
    for k, size in enumerate(sizes):
        if not patch <= size <= 128 or size % patch:
            raise ValueError(f"transfer sizes must be multiples of {patch} from {patch} to 128, got {size}")
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
