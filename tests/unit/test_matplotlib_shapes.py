"""The independent renderer: deterministic, every class, and each drawing is the shape it names
(checked by area: a filled shape of circumradius r covers a known share of the frame)."""

from __future__ import annotations

import math

import numpy as np

from shared.data import matplotlib_shapes as M


def test_deterministic_and_all_classes():
    a, la = M.dataset(30, size=64)
    b, lb = M.dataset(30, size=64)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))
    assert np.array_equal(la, lb) and set(la.tolist()) == set(range(len(M.SHAPES)))
    assert a[0].size == (64, 64) and a[0].mode == "RGB"


def test_circle_area_matches_pi_r_squared():
    """Circle drawings: the foreground share equals pi r^2 for the radius the RNG drew (an independent formula)."""
    checked = 0
    for i in range(60):
        image, label = M.draw(i, size=200)
        if M.SHAPES[label] != "circle":
            continue
        arr = np.asarray(image).reshape(-1, 3).astype(int)
        bg = arr[0]  # corner: background (the shape keeps a margin of r)
        share = np.mean(np.abs(arr - bg).sum(1) > 60)
        rng = np.random.default_rng((7, i))
        rng.integers(len(M.SHAPES))
        fg = M.CSS_COLORS[rng.integers(len(M.CSS_COLORS))]
        while True:  # replay the draws up to the radius
            bgname = M.CSS_COLORS[rng.integers(len(M.CSS_COLORS))]
            if math.dist([255 * v for v in M._rgb(fg)], [255 * v for v in M._rgb(bgname)]) >= M.MIN_CONTRAST:
                break
        r = rng.uniform(0.15, 0.45)
        assert abs(share - math.pi * r * r) < 0.03, (i, share, math.pi * r * r)
        checked += 1
    assert checked >= 5
