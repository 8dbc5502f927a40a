"""Images that are *not* one shape: auxiliary outliers for Outlier Exposure.

Outlier Exposure (Hendrycks, Mazeika & Dietterich, 2019, "Deep Anomaly Detection with Outlier
Exposure", ICLR) trains a classifier to give a uniform softmax on an auxiliary set of outliers, so
that low confidence then flags inputs unlike the training data. The shapes classifier's own
features cover noise and textures (the wide distribution has noisy, striped and checkered
backgrounds), so without it photos and noise scored as confidently as shapes (issue 13).

The paper's auxiliary set is natural images (80 Million Tiny Images); with procedural kinds alone the
classifier flagged only 35% of test photos and called Chelsea the cat a star (p 0.89). So two kinds
come from real images that ship inside our runtime dependencies. Nothing comes from the sets the
evaluation uses (scikit-image's photos, ``shared.evaluation.not_shapes``'s noise). Six kinds, drawn in
turn, each a pure function of the index:

- ``clutter``: 6-40 overlapping ellipses, polygons and lines of random colours, sizes and angles;
- ``fractal``: multi-octave coloured value noise with a 1/f-like spectrum, as natural images have;
- ``background``: one of the dataset's own backgrounds with no shape on it (nothing to classify);
- ``patchwork``: a grid of random-colour cells with random texture per cell;
- ``photo``: a random crop of one of six bundled photos (matplotlib's and gradio's sample images);
- ``terrain``: real elevation data bundled with matplotlib, hill-shaded under a random colour map.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS: tuple[str, ...] = ("clutter", "fractal", "background", "patchwork", "photo", "terrain")
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


# Photos that ship inside our runtime dependencies (never scikit-image's, which the evaluation uses):
# matplotlib's sample data and gradio's demo media (a cheetah, a lion, a tower, a film still).
MATPLOTLIB_PHOTOS: tuple[str, ...] = ("grace_hopper.jpg",)
GRADIO_PHOTOS: tuple[str, ...] = ("cheetah.jpg", "cheetah1.jpg", "lion.jpg", "groot.jpeg", "tower.jpg")


@functools.cache
def _photo_sources() -> tuple[np.ndarray, ...]:
    """The bundled photos as (H, W, 3) uint8 arrays. gradio's are found by path: importing gradio for
    five files would cost seconds."""
    import importlib.util

    import matplotlib.cbook

    paths = [matplotlib.cbook.get_sample_data(name, asfileobj=False) for name in MATPLOTLIB_PHOTOS]
    gradio_root = Path(importlib.util.find_spec("gradio").origin).parent
    paths += [gradio_root / "media_assets" / "images" / name for name in GRADIO_PHOTOS]
    out = []
    for path in paths:
        with Image.open(path) as img:
            out.append(np.asarray(img.convert("RGB")))
    return tuple(out)


def _photo(rng: np.random.Generator, size: int) -> Image.Image:
    """A random crop (8-100% of the side, log-uniform; aspect 3:4-4:3) of one bundled photo, flipped, its
    channels permuted and its gamma changed, so that six photos yield many textures and colours."""
    sources = _photo_sources()
    src = sources[int(rng.integers(len(sources)))]
    h, w = src.shape[:2]
    side = math.exp(rng.uniform(math.log(0.08), 0.0)) * min(h, w)
    ch, cw = int(side * rng.uniform(0.87, 1.15)), int(side * rng.uniform(0.87, 1.15))
    ch, cw = max(8, min(ch, h)), max(8, min(cw, w))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = src[top:top + ch, left:left + cw][:, :, rng.permutation(3)]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = 255 * (crop / 255.0) ** rng.uniform(0.6, 1.6)
    return Image.fromarray(crop.astype(np.uint8)).resize((size, size), Image.BILINEAR)


@functools.cache
def _terrain_sources() -> tuple[np.ndarray, ...]:
    """Elevation grids bundled with matplotlib: a fault-zone DEM and a topography/bathymetry map."""
    import matplotlib.cbook

    return (matplotlib.cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"].astype(np.float64),
            matplotlib.cbook.get_sample_data("topobathy.npz")["topo"].astype(np.float64))


def _terrain(rng: np.random.Generator, size: int) -> Image.Image:
    """A random crop of real elevation data, hill-shaded under a random colour map and sun: natural,
    smooth-and-rough structure that is no shape."""
    import matplotlib
    from matplotlib.colors import LightSource

    grids = _terrain_sources()
    z = grids[int(rng.integers(len(grids)))]
    side = int(rng.uniform(0.25, 1.0) * min(z.shape))
    top, left = int(rng.integers(0, z.shape[0] - side + 1)), int(rng.integers(0, z.shape[1] - side + 1))
    z = z[top:top + side, left:left + side]
    cmap = matplotlib.colormaps[str(rng.choice(["terrain", "gist_earth", "copper", "viridis", "ocean", "pink", "bone"]))]
    light = LightSource(azdeg=rng.uniform(0, 360), altdeg=rng.uniform(20, 60))
    rgb = light.shade(z, cmap=cmap, blend_mode="soft", vert_exag=rng.uniform(0.02, 0.2))[..., :3]
    return Image.fromarray((255 * rgb).astype(np.uint8)).resize((size, size), Image.BILINEAR)


def outlier(index: int, size: int = 64) -> Image.Image:
    """Outlier ``index`` (kinds in turn), ``size`` x ``size`` RGB."""
    rng = np.random.default_rng((SEED, int(index)))
    kind = KINDS[index % len(KINDS)]
    return {"clutter": _clutter, "fractal": _fractal, "background": _background, "patchwork": _patchwork,
            "photo": _photo, "terrain": _terrain}[kind](rng, size)


def arrays(n: int, size: int = 64) -> np.ndarray:
    """The first ``n`` outliers as uint8 (n, size, size, 3)."""
    return np.stack([np.asarray(outlier(i, size)) for i in range(n)])
