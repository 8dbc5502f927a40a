"""Validation of every image input, and the sample images used in examples.

``load_image`` accepts a path, bytes, a PIL image or a numpy array and returns an RGB PIL
image, or raises ``ValueError`` with a message a user can act on. It reads the header
before decoding, so a file that claims 30000x30000 pixels is refused without allocating it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

MAX_SIDE = 8192  # pixels, either side
MAX_PIXELS = 40_000_000  # 40 megapixels
MIN_SIDE = 2

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def _check_size(width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ValueError(
            f"image is {width}x{height} pixels; the limit is {MAX_SIDE} pixels a side and "
            f"{MAX_PIXELS // 1_000_000} megapixels in all. Downscale it first."
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ValueError(f"image is {width}x{height} pixels; it needs at least {MIN_SIDE} pixels a side.")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (RGBA, LA, P, L, I;16, I, F, CMYK, YCbCr...) to 8-bit RGB.

    Transparency is composited on white. 16-bit and float images are rescaled from their own
    min..max range, since a plain ``convert("RGB")`` clips I;16 to white.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.round().astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")


def load_image(value: object) -> Image.Image:
    """Open and validate an image from a path, bytes, PIL image or (H, W[, C]) array."""
    if value is None:
        raise ValueError("no image given: upload an image or pick a sample.")
    if isinstance(value, Image.Image):
        _check_size(*value.size)
        return to_rgb(value)
    if isinstance(value, np.ndarray):
        if value.ndim not in (2, 3) or (value.ndim == 3 and value.shape[2] not in (1, 3, 4)):
            raise ValueError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {value.shape}")
        _check_size(value.shape[1], value.shape[0])
        arr = value if value.dtype == np.uint8 else np.clip(value, 0, 255).astype(np.uint8)
        return to_rgb(Image.fromarray(arr.squeeze()))
    if isinstance(value, dict) and "path" in value:  # a gradio FileData payload
        value = value["path"]
    if isinstance(value, (bytes, bytearray)):
        source: object = io.BytesIO(value)
        label = "the uploaded data"
    elif isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"no such image file: {path.name}")
        if path.stat().st_size == 0:
            raise ValueError(f"{path.name} is empty (0 bytes); it is not an image.")
        source, label = path, path.name
    else:
        raise ValueError(f"cannot read an image from a {type(value).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:  # reads only the header
                _check_size(*img.size)
                img.load()  # decodes; raises on truncated data
                return to_rgb(img)
    except ValueError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        if isinstance(err, UnidentifiedImageError):
            raise ValueError(f"{label} is not an image PIL can read (PNG, JPEG, WebP, GIF, BMP, TIFF...).") from err
        raise ValueError(f"{label} claims too many pixels to decode safely (decompression-bomb guard).") from err
    except (OSError, SyntaxError) as err:  # truncated or corrupt data
        raise ValueError(f"{label} is damaged or truncated and cannot be decoded ({err}).") from err


def pixels_key(image: Image.Image) -> tuple:
    """A hashable key for an image's pixels (size, mode and a SHA-1 of the bytes), for caches of deterministic
    results: two uploads of the same picture share it, any changed pixel does not."""
    return image.size, image.mode, hashlib.sha1(image.tobytes()).hexdigest()


def centre_square(image: Image.Image) -> Image.Image:
    """The largest centred square: what CLIP's and ViT's processors keep after resizing the short side,
    and what keeps a circle round where squashing to a square would not."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image if w == h else image.crop((left, top, left + side, top + side))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) -> float (N, 3, H, W) in [-1, 1]: the mean 0.5, std 0.5
    normalisation of every model trained here (their preprocessor_config.json says so)."""
    import torch

    x = torch.from_numpy(np.require(images, np.uint8, requirements=['C', 'W']))  # copies only if it must
    if x.ndim == 3:
        x = x.unsqueeze(0)  # (1, H, W, 3)
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (N, 3, H, W)


def sample_paths() -> list[Path]:
    """Paths of the shipped sample images (PNG renders of the shapes dataset, 224 px)."""
    return sorted(SAMPLES_DIR.glob("*.png"))


def write_samples(directory: Path = SAMPLES_DIR) -> list[Path]:
    """(Re)render the sample images: one per shape, in varied colours."""
    from shared.data.shapes import COLORS, SHAPES, sample_image

    directory.mkdir(parents=True, exist_ok=True)
    colors = list(COLORS)
    paths = []
    for i, shape in enumerate(SHAPES):
        color = colors[i % len(colors)]
        img, _ = sample_image(shape, color, size=224, seed=i)
        path = directory / f"{color}_{shape}.png"
        img.save(path, optimize=True)
        paths.append(path)
    return paths
