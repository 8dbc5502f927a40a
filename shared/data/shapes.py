"""The procedural "shapes" dataset that every embedded model learns from.

Each sample is one coloured geometric shape on a background, with a class label and a caption
such as "a small red star in the top left".

Everything is a pure function of (split, index, distribution): sample ``i`` of a split is drawn
from ``numpy.random.default_rng((SPLIT_SEEDS[split], i))``, so any sample can be re-rendered
alone, at any resolution, on any machine, and the splits never overlap.

Two distributions (like a dataset's versions):

- ``"wide"`` (the default): twelve shape colours with jitter, backgrounds of any colour (saturated
  ones included, always at a minimum contrast to the shape) drawn plain, as a gradient, noise,
  stripes or a checkerboard; radii from 0.10 to 0.45 of the side, any rotation, a little squash,
  varied star and cross proportions, some outlined shapes; mild blur, pixel noise and JPEG
  artefacts on a fraction of images. ``(colour, background)`` pairs in ``SHIFTED_PAIRS`` never
  occur in train/val/test; the ``shifted`` split holds only them (a robustness table).
- ``"classic"``: the first distribution (six saturated colours on low-saturation plain, noisy or
  striped backgrounds). Kept bit for bit because ``dit-tiny-shapes`` was trained on it; models
  trained only on it read "the least saturated colour is background" (issue 13).

Shapes are drawn with PIL at 4x the target size and box-filtered down (anti-aliasing).
"""

from __future__ import annotations

import colorsys
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# --------------------------------------------------------------------------------------
#                                   Vocabulary
# --------------------------------------------------------------------------------------

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Shape colours (the caption word and its nominal RGB). The first six are the classic ones.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
    "pink": (245, 130, 190),
    "cyan": (40, 210, 220),
    "brown": (130, 80, 40),
}
CLASSIC_COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")

# Radius as a fraction of the image side, per size word ("wide"; a 0.45 radius fills the frame).
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.10, 0.18),
    "medium": (0.18, 0.28),
    "large": (0.28, 0.45),
}
CLASSIC_SIZES: dict[str, tuple[float, float]] = {
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

BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise", "stripes", "checker")
CLASSIC_BACKGROUNDS: tuple[str, ...] = ("plain", "noise", "stripes")

# (shape colour, background kind) pairs held out of train/val/test: the "shifted" split.
SHIFTED_PAIRS: frozenset[tuple[str, str]] = frozenset({
    ("red", "checker"), ("blue", "gradient"), ("yellow", "stripes"),
    ("pink", "noise"), ("cyan", "checker"), ("white", "gradient"),
    ("brown", "plain"), ("grey", "stripes"),
})

SPLIT_SEEDS: dict[str, int] = {"train": 0, "val": 1, "test": 2, "shifted": 3}
DISTRIBUTIONS: tuple[str, ...] = ("wide", "classic")

MIN_CONTRAST = 100.0  # least RGB distance between the shape colour and any background colour
COLOR_JITTER = 20  # +- per channel around the nominal colour ("wide")

DEFAULT_SIZE = 32
_SUPERSAMPLE = 4


# --------------------------------------------------------------------------------------
#                                   Sampling
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShapeSpec:
    """Everything needed to render one sample; resolution-independent.

    The fields after ``noise_seed`` have the classic distribution's values as defaults."""

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
    shape_rgb: tuple[int, int, int] | None = None  # None: the nominal COLORS[color]
    bg2_rgb: tuple[int, int, int] | None = None  # second colour of gradient / stripes / checker
    bg_noise: float = 18.0  # std of the "noise" background, in grey levels
    squash: float = 1.0  # the shape is scaled by this along its own y axis (ellipses, isosceles triangles)
    star_inner: float = 0.45  # inner / outer radius of a star
    cross_arm: float = 0.34  # half-width of a cross's arm / its radius
    outline: float = 0.0  # 0: filled; else the stroke width as a fraction of the radius
    blur: float = 0.0  # Gaussian blur sigma, fraction of the side
    pixel_noise: float = 0.0  # std of noise added to the whole image, grey levels
    jpeg_quality: int = 0  # 0: none; else a JPEG round trip at this quality

    @property
    def label(self) -> int:
        return SHAPES.index(self.shape)

    @property
    def rgb(self) -> tuple[int, int, int]:
        return self.shape_rgb if self.shape_rgb is not None else COLORS[self.color]

    @property
    def position(self) -> str:
        col = min(int(self.cx * 3), 2)
        row = min(int(self.cy * 3), 2)
        return POSITIONS[row * 3 + col]

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.color} {self.shape} in the {self.position}"


def sample_spec(rng: np.random.Generator, shape: str | None = None, color: str | None = None) -> ShapeSpec:
    """Draw one spec of the classic distribution; ``shape``/``color`` pin those attributes."""
    shape = shape if shape is not None else SHAPES[rng.integers(len(SHAPES))]
    color = color if color is not None else CLASSIC_COLORS[rng.integers(len(CLASSIC_COLORS))]
    size = list(CLASSIC_SIZES)[rng.integers(len(CLASSIC_SIZES))]
    lo, hi = CLASSIC_SIZES[size]
    radius = float(rng.uniform(lo, hi))
    margin = radius * 1.02
    cx, cy = (float(v) for v in rng.uniform(margin, 1 - margin, size=2))
    angle = float(rng.uniform(0, 360))
    background = CLASSIC_BACKGROUNDS[rng.integers(len(CLASSIC_BACKGROUNDS))]
    # Low-saturation background: a grey level plus a small tint, so the shape colour is
    # always the most saturated thing in the image.
    grey = rng.uniform(30, 225)
    tint = rng.uniform(-18, 18, size=3)
    bg_rgb = tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
    return ShapeSpec(shape, color, size, radius, cx, cy, angle, background, bg_rgb,
                     int(rng.integers(2**31)))


def _random_rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    """Any colour: a third near-grey, the rest of any hue and saturation (HSV)."""
    sat = rng.uniform(0, 0.15) if rng.random() < 0.33 else rng.uniform(0.15, 1.0)
    r, g, b = colorsys.hsv_to_rgb(rng.random(), sat, rng.uniform(0.08, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _contrasting_rgb(rng: np.random.Generator, shape_rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """A random colour at least MIN_CONTRAST (RGB distance) away from the shape's."""
    while True:
        rgb = _random_rgb(rng)
        if math.dist(rgb, shape_rgb) >= MIN_CONTRAST:
            return rgb


def sample_wide_spec(rng: np.random.Generator, shape: str | None = None, color: str | None = None,
                     background: str | None = None) -> ShapeSpec:
    """Draw one spec of the wide distribution; ``shape``/``color``/``background`` pin those attributes."""
    shape = shape if shape is not None else SHAPES[rng.integers(len(SHAPES))]
    color = color if color is not None else list(COLORS)[rng.integers(len(COLORS))]
    background = background if background is not None else BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    size = list(SIZES)[rng.integers(len(SIZES))]
    radius = float(rng.uniform(*SIZES[size]))
    margin = radius * 1.02
    cx, cy = (float(v) for v in rng.uniform(margin, 1 - margin, size=2))
    angle = float(rng.uniform(0, 360))
    jitter = rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, size=3)
    shape_rgb = tuple(int(v) for v in np.clip(np.array(COLORS[color]) + jitter, 0, 255))
    bg_rgb = _contrasting_rgb(rng, shape_rgb)
    bg2_rgb = _contrasting_rgb(rng, shape_rgb)
    outline = float(rng.uniform(0.2, 0.45)) if rng.random() < 0.1 else 0.0
    blur = float(rng.uniform(0.005, 0.02)) if rng.random() < 0.2 else 0.0
    pixel_noise = float(rng.uniform(3, 12)) if rng.random() < 0.15 else 0.0
    jpeg_quality = int(rng.integers(30, 85)) if rng.random() < 0.2 else 0
    return ShapeSpec(
        shape, color, size, radius, cx, cy, angle, background, bg_rgb, int(rng.integers(2**31)),
        shape_rgb=shape_rgb, bg2_rgb=bg2_rgb, bg_noise=float(rng.uniform(8, 30)),
        squash=float(rng.uniform(0.8, 1.0)), star_inner=float(rng.uniform(0.36, 0.56)),
        cross_arm=float(rng.uniform(0.2, 0.42)), outline=outline, blur=blur,
        pixel_noise=pixel_noise, jpeg_quality=jpeg_quality,
    )


def is_easy(spec: ShapeSpec) -> bool:
    """Plain or gradient background, filled, radius >= 0.18, no blur, noise or JPEG: where a
    training curriculum starts (see ``shared.training.loop.curriculum_batches``)."""
    return (spec.background in ("plain", "gradient") and spec.outline == 0 and spec.radius >= 0.18
            and spec.blur == 0 and spec.pixel_noise == 0 and spec.jpeg_quality == 0)


def _check_split(split: str) -> None:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SEEDS)}")


def _check_distribution(distribution: str) -> None:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}; choose one of {list(DISTRIBUTIONS)}")


def spec_at(split: str, index: int, distribution: str = "wide") -> ShapeSpec:
    """The spec of sample ``index`` of ``split`` (deterministic).

    In the wide distribution, train/val/test redraw any (colour, background) pair in SHIFTED_PAIRS;
    the shifted split draws one of those pairs uniformly."""
    _check_split(split)
    _check_distribution(distribution)
    rng = np.random.default_rng((SPLIT_SEEDS[split], int(index)))
    if distribution == "classic":
        if split == "shifted":
            raise ValueError("the classic distribution has no shifted split; use distribution='wide'")
        return sample_spec(rng)
    if split == "shifted":
        color, background = sorted(SHIFTED_PAIRS)[rng.integers(len(SHIFTED_PAIRS))]
        return sample_wide_spec(rng, color=color, background=background)
    while True:
        spec = sample_wide_spec(rng)
        if (spec.color, spec.background) not in SHIFTED_PAIRS:
            return spec


# --------------------------------------------------------------------------------------
#                                   Rendering
# --------------------------------------------------------------------------------------

def _polygon(spec: ShapeSpec, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Vertices of ``spec``'s shape at circumradius ``r`` centred at (cx, cy), in pixels."""
    if spec.shape == "circle":
        pts = [(r * math.cos(t), r * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 96, endpoint=False)]
    elif spec.shape == "square":
        h = r / math.sqrt(2)
        pts = [(h, h), (-h, h), (-h, -h), (h, -h)]
    elif spec.shape == "triangle":
        pts = [(r * math.cos(t), r * math.sin(t)) for t in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
    elif spec.shape == "star":
        pts = [((r if k % 2 == 0 else spec.star_inner * r) * math.cos(-math.pi / 2 + k * math.pi / 5),
                (r if k % 2 == 0 else spec.star_inner * r) * math.sin(-math.pi / 2 + k * math.pi / 5)) for k in range(10)]
    elif spec.shape == "cross":
        w = spec.cross_arm * r  # half-width of each arm
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
               (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
    else:
        raise ValueError(f"no polygon for shape {spec.shape!r}; choose one of {list(SHAPES)}")
    a = math.radians(spec.angle)
    ca, sa = math.cos(a), math.sin(a)
    return [(cx + x * ca - y * spec.squash * sa, cy + x * sa + y * spec.squash * ca) for x, y in pts]


def _shape_mask(spec: ShapeSpec, size: int) -> np.ndarray:
    """Anti-aliased coverage of the shape, float (size, size) in [0, 1]."""
    big = size * _SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy, r = spec.cx * big, spec.cy * big, spec.radius * big
    if spec.shape == "circle" and spec.squash == 1.0 and spec.outline == 0.0:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)  # the classic circle, bit for bit
    else:
        draw.polygon(_polygon(spec, cx, cy, r), fill=255)
        if spec.outline > 0:
            # Hollow it out: the same shape shrunk by the stroke width, centred, drawn in black.
            inner = max(0.0, 1.0 - spec.outline)
            draw.polygon(_polygon(spec, cx, cy, r * inner), fill=0)
    return np.asarray(mask.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def _background(spec: ShapeSpec, size: int) -> np.ndarray:
    """float (size, size, 3) in grey levels."""
    rng = np.random.default_rng(spec.noise_seed)
    bg = np.empty((size, size, 3), dtype=np.float32)
    bg[:] = spec.bg_rgb
    if spec.background == "noise":
        if spec.bg2_rgb is None:  # classic: grey noise
            bg += rng.normal(0, spec.bg_noise, size=(size, size, 1)).astype(np.float32)
        else:
            bg += rng.normal(0, spec.bg_noise, size=(size, size, 3)).astype(np.float32)
    elif spec.background in ("stripes", "gradient", "checker"):
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        if spec.background == "checker":
            cell = rng.uniform(0.08, 0.25) * size
            theta = rng.uniform(0, math.pi / 2)
            u = xx * math.cos(theta) + yy * math.sin(theta)
            v = -xx * math.sin(theta) + yy * math.cos(theta)
            t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
        else:
            period = rng.uniform(0.15, 0.35) * size
            theta = rng.uniform(0, math.pi) if spec.background == "stripes" else rng.uniform(0, 2 * math.pi)
            along = xx * math.cos(theta) + yy * math.sin(theta)
            if spec.background == "stripes":
                if spec.bg2_rgb is None:  # classic: the plain colour +- 14 grey levels
                    return bg + (14 * np.sign(np.sin(along * 2 * math.pi / period)))[..., None]
                t = (np.sin(along * 2 * math.pi / period) > 0).astype(np.float32)
            else:  # gradient: linear ramp across the image along theta
                t = (along - along.min()) / max(1e-6, float(along.max() - along.min()))
        bg = bg * (1 - t[..., None]) + np.asarray(spec.bg2_rgb, np.float32) * t[..., None]
    return bg


def render(spec: ShapeSpec, size: int = DEFAULT_SIZE) -> Image.Image:
    """Render ``spec`` as a ``size`` x ``size`` RGB image."""
    if not 8 <= size <= 2048:
        raise ValueError(f"size must be between 8 and 2048 pixels, got {size}")
    alpha = _shape_mask(spec, size)[..., None]  # (H, W, 1)
    img = _background(spec, size) * (1 - alpha) + np.asarray(spec.rgb, np.float32) * alpha  # (H, W, 3)
    if spec.pixel_noise > 0:
        img = img + np.random.default_rng(spec.noise_seed + 1).normal(0, spec.pixel_noise, img.shape)
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")
    if spec.blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(spec.blur * size))
    if spec.jpeg_quality > 0:
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=spec.jpeg_quality)
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return out


# --------------------------------------------------------------------------------------
#                                   Datasets
# --------------------------------------------------------------------------------------

class ShapesDataset:
    """``len`` samples of one split; ``ds[i]`` is ``(PIL image, label, spec)``.

    A torch ``Dataset`` by duck typing (``__len__``/``__getitem__``), so this module needs
    no torch. ``arrays()`` renders the whole split as uint8 (N, H, W, 3) for fast training.
    """

    def __init__(self, split: str = "train", length: int = 10_000, size: int = DEFAULT_SIZE, offset: int = 0,
                 distribution: str = "wide"):
        _check_split(split)
        _check_distribution(distribution)
        if length < 1:
            raise ValueError(f"length must be positive, got {length}")
        self.split, self.length, self.size, self.offset = split, length, size, offset
        self.distribution = distribution

    def __len__(self) -> int:
        return self.length

    def spec(self, i: int) -> ShapeSpec:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return spec_at(self.split, self.offset + i, self.distribution)

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
    """A sample image for the UI with a chosen shape and colour (classic style), and its caption."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {list(SHAPES)}")
    if color not in COLORS:
        raise ValueError(f"unknown colour {color!r}; choose one of {list(COLORS)}")
    spec = sample_spec(np.random.default_rng((99, seed)), shape=shape, color=color)
    return render(spec, size), spec.caption
