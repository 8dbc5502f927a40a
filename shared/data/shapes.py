"""The procedural "shapes" dataset that every embedded model learns from.

Each sample is one coloured geometric shape on a plain, noisy or striped background,
with a class label and a caption such as "a small red star in the top left".

Everything is a pure function of (split, index): sample ``i`` of a split is drawn from
``numpy.random.default_rng((SPLIT_SEEDS[split], i))``, so any sample can be re-rendered
alone, at any resolution, on any machine, and the splits never overlap.

Shapes are drawn with PIL at 4x the target size and box-filtered down (anti-aliasing),
then the background noise is added at the target size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------------------
#                                   Vocabulary
# --------------------------------------------------------------------------------------

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Saturated colours that stay distinct from the low-saturation backgrounds below.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}

# Radius as a fraction of the image side, per size word.
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.15, 0.20),
    "medium": (0.20, 0.26),
    "large": (0.26, 0.33),
}

# Position words for the 3x3 thirds of the image, row-major.
POSITIONS: tuple[str, ...] = (
    "top left", "top middle", "top right",
    "middle left", "center", "middle right",
    "bottom left", "bottom middle", "bottom right",
)

BACKGROUNDS: tuple[str, ...] = ("plain", "noise", "stripes")

SPLIT_SEEDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

DEFAULT_SIZE = 32
_SUPERSAMPLE = 4


# --------------------------------------------------------------------------------------
#                                   Sampling
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShapeSpec:
    """Everything needed to render one sample; resolution-independent."""

    shape: str
    color: str
    size: str
    radius: float  # fraction of the image side
    cx: float  # centre, fraction of the width
    cy: float  # centre, fraction of the height
    angle: float  # degrees
    background: str
    bg_rgb: tuple[int, int, int]
    noise_seed: int

    @property
    def label(self) -> int:
        return SHAPES.index(self.shape)

    @property
    def position(self) -> str:
        col = min(int(self.cx * 3), 2)
        row = min(int(self.cy * 3), 2)
        return POSITIONS[row * 3 + col]

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.color} {self.shape} in the {self.position}"


def sample_spec(rng: np.random.Generator, shape: str | None = None, color: str | None = None) -> ShapeSpec:
    """Draw one random spec; ``shape``/``color`` pin those attributes (for UI samples)."""
    shape = shape if shape is not None else SHAPES[rng.integers(len(SHAPES))]
    color = color if color is not None else list(COLORS)[rng.integers(len(COLORS))]
    size = list(SIZES)[rng.integers(len(SIZES))]
    lo, hi = SIZES[size]
    radius = float(rng.uniform(lo, hi))
    margin = radius * 1.02
    cx, cy = (float(v) for v in rng.uniform(margin, 1 - margin, size=2))
    angle = float(rng.uniform(0, 360))
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    # Low-saturation background: a grey level plus a small tint, so the shape colour is
    # always the most saturated thing in the image.
    grey = rng.uniform(30, 225)
    tint = rng.uniform(-18, 18, size=3)
    bg_rgb = tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
    return ShapeSpec(shape, color, size, radius, cx, cy, angle, background, bg_rgb,
                     int(rng.integers(2**31)))


def _check_split(split: str) -> None:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SEEDS)}")


def spec_at(split: str, index: int) -> ShapeSpec:
    """The spec of sample ``index`` of ``split`` (deterministic)."""
    _check_split(split)
    return sample_spec(np.random.default_rng((SPLIT_SEEDS[split], int(index))))


# --------------------------------------------------------------------------------------
#                                   Rendering
# --------------------------------------------------------------------------------------

def _polygon(shape: str, cx: float, cy: float, r: float, angle_deg: float) -> list[tuple[float, float]]:
    """Vertices of a shape of circumradius ``r`` centred at (cx, cy), in pixels."""
    a0 = math.radians(angle_deg)
    if shape == "square":
        pts = [(r, math.pi / 4 + k * math.pi / 2) for k in range(4)]
    elif shape == "triangle":
        pts = [(r, -math.pi / 2 + k * 2 * math.pi / 3) for k in range(3)]
    elif shape == "star":
        pts = [(r if k % 2 == 0 else 0.45 * r, -math.pi / 2 + k * math.pi / 5) for k in range(10)]
    elif shape == "cross":
        w = 0.34 * r  # half-width of each arm
        corners = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
                   (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        pts = [(math.hypot(x, y), math.atan2(y, x)) for x, y in corners]
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    return [(cx + rad * math.cos(t + a0), cy + rad * math.sin(t + a0)) for rad, t in pts]


def _background(spec: ShapeSpec, size: int) -> np.ndarray:
    rng = np.random.default_rng(spec.noise_seed)
    bg = np.empty((size, size, 3), dtype=np.float32)
    bg[:] = spec.bg_rgb
    if spec.background == "noise":
        bg += rng.normal(0, 18, size=(size, size, 1)).astype(np.float32)
    elif spec.background == "stripes":
        period = rng.uniform(0.15, 0.35) * size
        theta = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        phase = (xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period
        bg += (14 * np.sign(np.sin(phase)))[..., None]
    return bg


def render(spec: ShapeSpec, size: int = DEFAULT_SIZE) -> Image.Image:
    """Render ``spec`` as a ``size`` x ``size`` RGB image."""
    if not 8 <= size <= 2048:
        raise ValueError(f"size must be between 8 and 2048 pixels, got {size}")
    big = size * _SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy, r = spec.cx * big, spec.cy * big, spec.radius * big
    if spec.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        draw.polygon(_polygon(spec.shape, cx, cy, r, spec.angle), fill=255)
    alpha = np.asarray(mask.resize((size, size), Image.BOX), dtype=np.float32)[..., None] / 255.0
    img = _background(spec, size) * (1 - alpha) + np.asarray(COLORS[spec.color], np.float32) * alpha
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")


# --------------------------------------------------------------------------------------
#                                   Datasets
# --------------------------------------------------------------------------------------

class ShapesDataset:
    """``len`` samples of one split; ``ds[i]`` is ``(PIL image, label, spec)``.

    A torch ``Dataset`` by duck typing (``__len__``/``__getitem__``), so this module needs
    no torch. ``arrays()`` renders the whole split as uint8 (N, H, W, 3) for fast training.
    """

    def __init__(self, split: str = "train", length: int = 10_000, size: int = DEFAULT_SIZE, offset: int = 0):
        _check_split(split)
        if length < 1:
            raise ValueError(f"length must be positive, got {length}")
        self.split, self.length, self.size, self.offset = split, length, size, offset

    def __len__(self) -> int:
        return self.length

    def spec(self, i: int) -> ShapeSpec:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return spec_at(self.split, self.offset + i)

    def __getitem__(self, i: int) -> tuple[Image.Image, int, ShapeSpec]:
        spec = self.spec(i)
        return render(spec, self.size), spec.label, spec

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(images uint8 (N, H, W, 3), labels int64 (N,), captions)."""
        specs = [self.spec(i) for i in range(self.length)]
        images = np.stack([np.asarray(render(s, self.size)) for s in specs])  # (N, H, W, 3)
        labels = np.array([s.label for s in specs], dtype=np.int64)  # (N,)
        return images, labels, [s.caption for s in specs]


def sample_image(shape: str = "star", color: str = "red", size: int = 224, seed: int = 0) -> tuple[Image.Image, str]:
    """A sample image for the UI with a chosen shape and colour, and its caption."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {list(SHAPES)}")
    if color not in COLORS:
        raise ValueError(f"unknown colour {color!r}; choose one of {list(COLORS)}")
    spec = sample_spec(np.random.default_rng((99, seed)), shape=shape, color=color)
    return render(spec, size), spec.caption
