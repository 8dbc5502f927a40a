"""The procedural shapes dataset: deterministic, split-disjoint, labelled and captioned consistently."""

from __future__ import annotations

import numpy as np
import pytest

from shared.data import shapes
from shared.data.shapes import COLORS, POSITIONS, SHAPES, SIZES, ShapesDataset, render, sample_image, spec_at


def test_same_split_and_index_give_identical_pixels():
    a, la, ca = ShapesDataset("train", 20).arrays()
    b, lb, cb = ShapesDataset("train", 20).arrays()
    assert np.array_equal(a, b) and np.array_equal(la, lb) and ca == cb


def test_splits_differ():
    train, _, _ = ShapesDataset("train", 10).arrays()
    test, _, _ = ShapesDataset("test", 10).arrays()
    assert not any(np.array_equal(x, y) for x in train for y in test)


def test_vocabulary_meets_the_minimum():
    assert {"circle", "square", "triangle", "star", "cross"} <= set(SHAPES)
    assert len(COLORS) >= 6
    assert set(SIZES) == {"small", "medium", "large"}


def test_caption_names_every_attribute():
    for i in range(50):
        s = spec_at("val", i)
        assert s.caption == f"a {s.size} {s.color} {s.shape} in the {s.position}"
        assert s.position in POSITIONS and SHAPES[s.label] == s.shape


def test_position_word_matches_where_the_shape_is_drawn():
    # independent check: the centre of mass of the shape's colour falls in the named third
    checked = 0
    for i in range(60):
        s = spec_at("test", i)
        near_edge = min(abs(v * 3 - round(v * 3)) for v in (s.cx, s.cy)) < 0.15  # within 5% of a third's edge
        if s.background != "plain" or near_edge:
            continue
        checked += 1
        img = np.asarray(render(s, 96)).astype(float)
        mask = np.abs(img - np.array(COLORS[s.color])).sum(-1) < 30
        ys, xs = np.nonzero(mask)
        row, col = int(ys.mean() * 3 // 96), int(xs.mean() * 3 // 96)
        assert POSITIONS[row * 3 + col] == s.position
    assert checked >= 5


def test_renders_at_any_size_and_rejects_silly_sizes():
    s = spec_at("train", 0)
    for size in (16, 32, 224):
        assert render(s, size).size == (size, size)
    with pytest.raises(ValueError, match="between 8 and 2048"):
        render(s, 4)


def test_class_balance_is_roughly_uniform():
    _, labels, _ = ShapesDataset("train", 2000).arrays()
    counts = np.bincount(labels, minlength=len(SHAPES))
    assert counts.min() > 0.15 * 2000 and counts.max() < 0.25 * 2000


def test_sample_image_for_the_ui():
    img, caption = sample_image("star", "red", size=64, seed=1)
    assert img.size == (64, 64) and "red star" in caption
    with pytest.raises(ValueError, match="unknown shape"):
        sample_image("hexagon")
    with pytest.raises(ValueError, match="unknown split"):
        shapes.spec_at("holdout", 0)
