"""Patch-grid arithmetic and patchify: how many patches, which pixels each holds, what is cropped.

ViT (Dosovitskiy et al., 2021, arXiv:2010.11929, section 3.1) reshapes an H x W x C image into
N = HW/P^2 flattened patches of P^2 * C values. With Conv2d(kernel_size=P, stride=P), as every
implementation writes it, a side that P does not divide keeps floor(S/P) patches and drops the
remainder; ``PatchGrid`` states that in numbers. numpy and PIL only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from shared import validate
from shared.images import centre_square

from .options import CHANNELS, COMPARE_PATCH_SIZES, MIN_PATCH_SIZE, check_image_size, check_patch_size, check_width

# --------------------------------------------------------------------------------------
#                                   Grid arithmetic
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
#                                   Image preparation and patches
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
    image = centre_square(image)
    side = image.size[0]
    if w != h:
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


def patch_at(x: float, y: float, image_size: int, patch_size: int, scale: int = 1) -> int:
    """The raster index of the patch under overlay pixel (x, y); ValueError in the dropped margin."""
    g = patch_grid(image_size, patch_size)
    scale = validate.integer(scale, "overlay scale", 1)
    x, y = validate.number(x, "x"), validate.number(y, "y")
    col, row = int(x // (g.patch_size * scale)), int(y // (g.patch_size * scale))
    if not (0 <= row < g.rows and 0 <= col < g.cols):
        raise ValueError(f"pixel ({int(x)}, {int(y)}) lies in the cropped margin that no patch covers; "
                         f"click inside the top-left {g.covered * scale}x{g.covered * scale} area")
    return row * g.cols + col
