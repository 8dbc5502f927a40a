"""Shapes drawn by a second, independent renderer (matplotlib's Agg), only to check models.

A model that scores 0.998 on its own renders can still fail on anyone else's drawing (issue 13:
0.38 on a red star on a blue background). Nothing here shares code, geometry or colours with
``shapes.py``: matplotlib's own patches (``Circle``, ``Rectangle``, ``RegularPolygon``,
``Path.unit_regular_star``, a plus-sign ``Polygon``), CSS colour names as matplotlib defines them,
plain backgrounds of any named colour, radii up to a shape that fills the frame, Agg anti-aliasing.
Deterministic per index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
CSS_COLORS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "orange", "purple", "black", "white", "gray", "pink",
    "cyan", "brown", "magenta", "navy", "lime", "teal", "gold", "maroon", "olive", "skyblue",
)
MIN_CONTRAST = 100.0  # RGB distance between shape and background, as a person would pick them


def _rgb(name: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(name)


POSITIONS: tuple[str, ...] = (  # the 3x3 thirds, row-major from the top, named as in captions
    "top left", "top middle", "top right",
    "middle left", "center", "middle right",
    "bottom left", "bottom middle", "bottom right",
)


@dataclass(frozen=True)
class Drawing:
    """One drawing and what it shows: ``color`` is the CSS name ("gray" spelled "grey", as captions do),
    ``cx``/``cy`` the centre as fractions of the width and height, measured from the top left."""

    image: Image.Image
    shape: str
    color: str
    cx: float
    cy: float
    radius: float

    @property
    def label(self) -> int:
        return SHAPES.index(self.shape)

    @property
    def position(self) -> str:
        return POSITIONS[min(int(self.cy * 3), 2) * 3 + min(int(self.cx * 3), 2)]


def draw(index: int, size: int = 128) -> tuple[Image.Image, int]:
    """(image, label) of drawing ``index``."""
    d = drawing(index, size)
    return d.image, d.label


def drawing(index: int, size: int = 128) -> Drawing:
    """Drawing ``index``, with its shape, colour name and position."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, PathPatch, Polygon, Rectangle, RegularPolygon
    from matplotlib.path import Path as MplPath
    from matplotlib.transforms import Affine2D

    rng = np.random.default_rng((7, index))
    label = int(rng.integers(len(SHAPES)))
    shape = SHAPES[label]
    fg = CSS_COLORS[rng.integers(len(CSS_COLORS))]
    while True:
        bg = CSS_COLORS[rng.integers(len(CSS_COLORS))]
        if math.dist([255 * v for v in _rgb(fg)], [255 * v for v in _rgb(bg)]) >= MIN_CONTRAST:
            break
    r = float(rng.uniform(0.15, 0.45))  # "circumradius" as a share of the side
    cx, cy = (float(v) for v in rng.uniform(r, 1 - r, size=2))
    angle = float(rng.uniform(0, 360))

    fig = Figure(figsize=(1, 1), dpi=size)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    fig.patch.set_facecolor(bg)
    rotate = Affine2D().rotate_deg_around(cx, cy, angle) + ax.transData
    if shape == "circle":
        patch = Circle((cx, cy), r, color=fg)
    elif shape == "square":
        side = r * math.sqrt(2)
        patch = Rectangle((cx - side / 2, cy - side / 2), side, side, color=fg, transform=rotate)
    elif shape == "triangle":
        patch = RegularPolygon((cx, cy), 3, radius=r, orientation=math.radians(angle), color=fg)
    elif shape == "star":
        star = MplPath.unit_regular_star(5, innerCircle=float(rng.uniform(0.38, 0.5)))
        patch = PathPatch(star, color=fg, transform=Affine2D().scale(r).rotate_deg(angle).translate(cx, cy) + ax.transData)
    else:
        w = r / 3  # arm half-width: each arm is a third of the cross's span wide
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r), (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        patch = Polygon([(cx + x, cy + y) for x, y in pts], closed=True, color=fg, transform=rotate)
    ax.add_patch(patch)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (size, size, 4)
    image = Image.fromarray(rgba[..., :3].copy(), "RGB")
    # matplotlib's y axis points up; the image's rows go down
    return Drawing(image, shape, "grey" if fg == "gray" else fg, cx, 1.0 - cy, r)


def dataset(n: int, size: int = 128) -> tuple[list[Image.Image], np.ndarray]:
    """The first ``n`` drawings and their labels (indices into SHAPES)."""
    pairs = [draw(i, size) for i in range(n)]
    return [p[0] for p in pairs], np.array([p[1] for p in pairs], dtype=np.int64)
