"""Moving shapes: procedural video clips for the video tutorials (issue 19).

A clip is ``frames`` images (default 16) of one shape moving in a straight line across a static
background, drawn with the image dataset's renderer (``shared.data.shapes``) so that each frame
looks like a "wide" shapes image. The shape may also rotate and grow or shrink as it moves. With
probability ``DISTRACTOR_P`` a second, *static* shape (it may spin in place) sits in the frame:
the labels always describe the moving shape, so a model must use motion, not appearance, to
tell which shape the direction belongs to.

Labels: ``direction`` (8 compass classes, ``DIRECTIONS``; image y grows downwards, so "up" is
-y) and ``shape`` (``shared.data.shapes.SHAPES``).

Like the images, every clip is a pure function of (split, index): clip ``i`` of a split is drawn
from ``numpy.random.default_rng((CLIP_SEED_BASE + SPLIT_SEEDS[split], i))``, so the streams
never overlap each other or the image dataset's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .shapes import SHAPES, SHIFTED_PAIRS, SPLIT_SEEDS, ShapeSpec, _shape_mask, render, sample_wide_spec

# Counter-clockwise from "right", 45 degrees apart (the angle of class k is k * 45 degrees).
DIRECTIONS: tuple[str, ...] = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")

DEFAULT_FRAMES = 16
DEFAULT_SIZE = 32
CLIP_SEED_BASE = 100  # offsets the per-split seeds away from the image dataset's streams

SPEED = (0.018, 0.04)  # displacement per frame, fraction of the side
RADIUS = (0.10, 0.22)  # moving shape's radius at the first frame (small enough to travel)
SPIN_P, SPIN = 0.5, (-12.0, 12.0)  # probability of rotating; degrees per frame
GROW_P, GROW = 0.3, (0.75, 1.3)  # probability of changing size; radius factor at the last frame
DISTRACTOR_P = 0.3
MARGIN = 1.02  # keep the shape's circumscribed circle inside the frame, with this factor on the radius


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip; resolution-independent."""

    moving: ShapeSpec  # the moving shape at frame 0 (background included)
    direction: int  # index into DIRECTIONS
    speed: float  # fraction of the side per frame
    spin: float  # degrees per frame
    grow: float  # radius factor reached at the last frame (1: constant size)
    frames: int
    distractor: ShapeSpec | None = None
    distractor_spin: float = 0.0

    @property
    def label(self) -> int:
        """The motion direction class."""
        return self.direction

    @property
    def direction_name(self) -> str:
        return DIRECTIONS[self.direction]

    @property
    def shape_label(self) -> int:
        return SHAPES.index(self.moving.shape)

    @property
    def velocity(self) -> tuple[float, float]:
        """(dx, dy) per frame, fraction of the side, image coordinates (y down)."""
        a = math.radians(45 * self.direction)
        return self.speed * math.cos(a), -self.speed * math.sin(a)

    @property
    def caption(self) -> str:
        return f"a {self.moving.color} {self.moving.shape} moving {self.direction_name}"

    def frame_spec(self, t: int) -> ShapeSpec:
        """The moving shape at frame ``t`` (0-based)."""
        dx, dy = self.velocity
        frac = t / max(1, self.frames - 1)
        return dataclasses.replace(
            self.moving, cx=self.moving.cx + dx * t, cy=self.moving.cy + dy * t,
            angle=(self.moving.angle + self.spin * t) % 360,
            radius=self.moving.radius * (1 + (self.grow - 1) * frac))


def _check_clip_args(split: str, frames: int) -> None:
    if split not in SPLIT_SEEDS or split == "shifted":
        raise ValueError(f"unknown split {split!r}; choose one of ['test', 'train', 'val']")
    if not 2 <= frames <= 256:
        raise ValueError(f"frames must be between 2 and 256, got {frames}")


def clip_spec_at(split: str, index: int, frames: int = DEFAULT_FRAMES) -> ClipSpec:
    """The spec of clip ``index`` of ``split`` (deterministic).

    The start point is drawn so the whole path (at its largest radius) stays inside the frame;
    a speed too fast for the chosen radius is reduced until it fits."""
    _check_clip_args(split, frames)
    rng = np.random.default_rng((CLIP_SEED_BASE + SPLIT_SEEDS[split], int(index)))
    while True:
        base = sample_wide_spec(rng)
        if (base.color, base.background) not in SHIFTED_PAIRS:
            break
    direction = int(rng.integers(len(DIRECTIONS)))
    radius = float(rng.uniform(*RADIUS))
    spin = float(rng.uniform(*SPIN)) if rng.random() < SPIN_P else 0.0
    grow = float(rng.uniform(*GROW)) if rng.random() < GROW_P else 1.0
    speed = float(rng.uniform(*SPEED))
    a = math.radians(45 * direction)
    ux, uy = math.cos(a), -math.sin(a)
    r_max = radius * max(1.0, grow) * MARGIN
    room = 1 - 2 * r_max  # the centre may move within [r_max, 1 - r_max] on each axis
    travel = speed * (frames - 1)
    longest = max(abs(ux), abs(uy))  # the axis that limits the path
    if travel * longest > room:
        speed = room / ((frames - 1) * longest)
        travel = speed * (frames - 1)
    # The start centre: anywhere that keeps the end centre inside [r_max, 1 - r_max].
    def start(u: float) -> float:
        lo, hi = r_max - min(0.0, u * travel), 1 - r_max - max(0.0, u * travel)
        return float(rng.uniform(lo, max(lo, hi)))
    cx, cy = start(ux), start(uy)
    moving = dataclasses.replace(base, radius=radius, cx=cx, cy=cy, size=_size_word(radius))
    distractor, distractor_spin = None, 0.0
    if rng.random() < DISTRACTOR_P:
        other = SHAPES[rng.integers(len(SHAPES))]
        d = sample_wide_spec(rng, shape=other)
        d_radius = float(rng.uniform(0.08, 0.14))
        m = d_radius * MARGIN
        distractor = dataclasses.replace(
            d, radius=d_radius, cx=float(rng.uniform(m, 1 - m)), cy=float(rng.uniform(m, 1 - m)),
            size=_size_word(d_radius), outline=0.0, blur=0.0, pixel_noise=0.0, jpeg_quality=0)
        distractor_spin = float(rng.uniform(*SPIN)) if rng.random() < SPIN_P else 0.0
    return ClipSpec(moving, direction, speed, spin, grow, frames, distractor, distractor_spin)


def _size_word(radius: float) -> str:
    return "small" if radius < 0.18 else ("medium" if radius < 0.28 else "large")


def render_clip(spec: ClipSpec, size: int = DEFAULT_SIZE) -> np.ndarray:
    """uint8 (T, size, size, 3). The distractor, if any, is drawn under the moving shape."""
    frames = []
    for t in range(spec.frames):
        moving = spec.frame_spec(t)
        if spec.distractor is None:
            frames.append(np.asarray(render(moving, size)))
            continue
        # Draw the distractor on the background, then composite the moving shape over it, using
        # the renderer's own anti-aliased coverage.
        d = dataclasses.replace(spec.distractor, angle=(spec.distractor.angle + spec.distractor_spin * t) % 360,
                                background=moving.background, bg_rgb=moving.bg_rgb, bg2_rgb=moving.bg2_rgb,
                                bg_noise=moving.bg_noise, noise_seed=moving.noise_seed)
        under = np.asarray(render(d, size), np.float32)
        alpha = _shape_mask(moving, size)[..., None]
        img = under * (1 - alpha) + np.asarray(moving.rgb, np.float32) * alpha
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    return np.stack(frames)  # (T, H, W, 3)


def clip_to_images(clip: np.ndarray) -> list[Image.Image]:
    return [Image.fromarray(f) for f in clip]


class MovingShapesDataset:
    """``length`` clips of one split; ``ds[i]`` is ``(uint8 (T, H, W, 3), direction, spec)``."""

    def __init__(self, split: str = "train", length: int = 1000, frames: int = DEFAULT_FRAMES,
                 size: int = DEFAULT_SIZE, offset: int = 0):
        _check_clip_args(split, frames)
        if length < 1:
            raise ValueError(f"length must be positive, got {length}")
        if not 8 <= size <= 512:
            raise ValueError(f"size must be between 8 and 512 pixels, got {size}")
        self.split, self.length, self.frames, self.size, self.offset = split, length, frames, size, offset

    def __len__(self) -> int:
        return self.length

    def spec(self, i: int) -> ClipSpec:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return clip_spec_at(self.split, self.offset + i, self.frames)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int, ClipSpec]:
        spec = self.spec(i)
        return render_clip(spec, self.size), spec.direction, spec

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clips uint8 (N, T, H, W, 3), directions int64 (N,), shape labels int64 (N,))."""
        specs = [self.spec(i) for i in range(self.length)]
        clips = np.stack([render_clip(s, self.size) for s in specs])  # (N, T, H, W, 3)
        return (clips, np.array([s.direction for s in specs], np.int64),
                np.array([s.shape_label for s in specs], np.int64))
