"""Procedural images that are *not* one shape: auxiliary outliers for Outlier Exposure.

Outlier Exposure (Hendrycks, Mazeika & Dietterich, 2019, "Deep Anomaly Detection with Outlier
Exposure", ICLR) trains a classifier to give a uniform softmax on an auxiliary set of outliers, so
that low confidence then flags inputs unlike the training data. The shapes classifier's own
features cover noise and textures (the wide distribution has noisy, striped and checkered
backgrounds), so without it photos and noise scored as confidently as shapes (issue 13).

Nothing here is a photo, and nothing comes from the sets the evaluation uses (scikit-image's photos,
``shared.evaluation.not_shapes``'s noise): four kinds, drawn in turn, each a pure function of the index:

- ``clutter``: 6-40 overlapping ellipses, polygons and lines of random colours, sizes and angles;
- ``fractal``: multi-octave coloured value noise with a 1/f-like spectrum, as natural images have;
- ``background``: one of the dataset's own backgrounds with no shape on it (nothing to classify);
- ``patchwork``: a grid of random-colour cells with random texture per cell.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS: tuple[str, ...] = ("clutter", "fractal", "background", "patchwork")
SEED = 11  # the generator's own seed, disjoint from every shapes split


def _clutter(rng: np.random.Generator, size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(6, 41))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cx, cy = rng.uniform(0, size, 2)
        r = rng.uniform(0.03, 0.35) * size
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse((cx - r, cy - r * rng.uniform(0.3, 1), cx + r, cy + r * rng.uniform(0.3, 1)), fill=colour)
        elif kind == 1:
            n = int(rng.integers(3, 9))
            pts = [(cx + r * rng.uniform(0.3, 1) * math.cos(a), cy + r * rng.uniform(0.3, 1) * math.sin(a))
                   for a in np.sort(rng.uniform(0, 2 * math.pi, n))]
            draw.polygon(pts, fill=colour)
        else:
            draw.line((cx, cy, *rng.uniform(0, size, 2)), fill=colour, width=int(rng.integers(1, max(2, size // 8))))
    return img


def _fractal(rng: np.random.Generator, size: int) -> Image.Image:
    out = np.zeros((size, size, 3), np.float32)
    for octave in range(1, int(math.log2(size)) + 1):
        cells = 2 ** octave
        layer = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        up = np.stack([np.asarray(Image.fromarray(layer[..., c]).resize((size, size), Image.BICUBIC))
                       for c in range(3)], -1)  # (size, size, 3)
        out += up / cells ** rng.uniform(0.6, 1.2)  # amplitude falls with frequency (1/f-like)
    out = (out - out.mean()) / (out.std() + 1e-6)
    out = out * rng.uniform(30, 80) + rng.uniform(60, 200, 3)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    from dataclasses import replace

    from shared.data.shapes import render, sample_wide_spec

    spec = sample_wide_spec(rng)
    return render(replace(spec, radius=0.0, outline=0.0), size)  # radius 0: the background alone


def _patchwork(rng: np.random.Generator, size: int) -> Image.Image:
    cells = int(rng.integers(2, 9))
    small = rng.integers(0, 256, (cells, cells, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(small).resize((size, size), Image.NEAREST), np.float32)
    img += rng.normal(0, rng.uniform(0, 25), img.shape)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    return out.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5))) if rng.random() < 0.5 else out


def outlier(index: int, size: int = 64) -> Image.Image:
    """Outlier ``index`` (kinds in turn), ``size`` x ``size`` RGB."""
    rng = np.random.default_rng((SEED, int(index)))
    kind = KINDS[index % len(KINDS)]
    return {"clutter": _clutter, "fractal": _fractal, "background": _background, "patchwork": _patchwork}[kind](rng, size)


def arrays(n: int, size: int = 64) -> np.ndarray:
    """The first ``n`` outliers as uint8 (n, size, size, 3)."""
    return np.stack([np.asarray(outlier(i, size)) for i in range(n)])
