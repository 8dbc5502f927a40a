"""The procedural shapes dataset: deterministic, split-disjoint, labelled and captioned consistently."""

from __future__ import annotations

import numpy as np
import pytest

from shared.data import shapes
from shared.data.shapes import (
    BACKGROUNDS,
    CLASSIC_COLORS,
    COLORS,
    MIN_CONTRAST,
    POSITIONS,
    SHAPES,
    SHIFTED_PAIRS,
    SIZES,
    ShapesDataset,
    is_easy,
    render,
    sample_image,
    spec_at,
)


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
    assert {"red", "green", "blue", "yellow", "purple", "orange", "white", "black", "grey", "pink", "cyan",
            "brown"} <= set(COLORS)
    assert set(SIZES) == {"small", "medium", "large"}
    assert set(BACKGROUNDS) == {"plain", "gradient", "noise", "stripes", "checker"}


def test_caption_colour_word_is_the_named_colour_nearest_the_drawn_pixels():
    """Read the caption's words and the rendered pixels, not the spec: the colour word must name the
    nominal colour closest to the mean colour of the shape as drawn (jitter is +-20 per channel)."""
    import numpy as np

    from shared.data.shapes import render

    checked = 0
    for i in range(600):
        s = spec_at("val", i)
        if not is_easy(s) or s.background != "plain":
            continue
        words = s.caption.split()
        assert words[0] == "a" and words[4:6] == ["in", "the"] and " ".join(words[6:]) in POSITIONS
        size_word, colour_word, shape_word = words[1:4]
        assert size_word in SIZES and shape_word in SHAPES
        pixels = np.asarray(render(s, 64), dtype=float).reshape(-1, 3)
        far = np.linalg.norm(pixels - np.array(s.bg_rgb), axis=1) > 60  # the shape, not the background
        mean = pixels[far].mean(axis=0)
        nearest = min(COLORS, key=lambda c: np.linalg.norm(mean - np.array(COLORS[c])))
        assert nearest == colour_word, (i, s.caption, mean.round())
        checked += 1
    assert checked >= 20


def test_position_word_matches_where_the_shape_is_drawn():
    # independent check: the centre of mass of the shape's colour falls in the named third
    checked = 0
    for i in range(300):
        s = spec_at("test", i)
        near_edge = min(abs(v * 3 - round(v * 3)) for v in (s.cx, s.cy)) < 0.15  # within 5% of a third's edge
        if not is_easy(s) or s.background != "plain" or near_edge:
            continue
        checked += 1
        img = np.asarray(render(s, 96)).astype(float)
        mask = np.abs(img - np.array(s.rgb)).sum(-1) < 30
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


# --------------------------------------------------------------------------------------
#                        The wide distribution (issue 13)
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def train_specs():
    return [spec_at("train", i) for i in range(3000)]


def test_wide_distribution_covers_what_users_draw(train_specs):
    assert {s.color for s in train_specs} == set(COLORS)
    assert {s.background for s in train_specs} == set(BACKGROUNDS)
    radii = np.array([s.radius for s in train_specs])
    assert radii.min() < 0.11 and radii.max() > 0.43  # from small to filling the frame
    saturated = [s for s in train_specs if max(s.bg_rgb) - min(s.bg_rgb) > 100]  # a strongly coloured background
    assert len(saturated) > 0.15 * len(train_specs)
    for attr in ("outline", "blur", "pixel_noise", "jpeg_quality"):
        share = np.mean([getattr(s, attr) > 0 for s in train_specs])
        assert 0.03 < share < 0.35, (attr, share)


def test_background_contrasts_with_the_shape_as_rendered():
    """Measured on pixels: the shape's centre against the image corner (never covered: the shape keeps a margin)."""
    checked = 0
    for i in range(400):
        s = spec_at("test", i)
        if not is_easy(s) or s.background != "plain" or s.shape in ("star", "cross"):
            continue
        img = np.asarray(render(s, 64)).astype(float)
        centre = img[int(s.cy * 64), int(s.cx * 64)]
        corner = img[0, 0]
        assert np.linalg.norm(centre - corner) >= MIN_CONTRAST - 3, (i, centre, corner)
        checked += 1
    assert checked >= 10


def test_shifted_pairs_are_held_out_of_training_and_fill_the_shifted_split(train_specs):
    assert not any((s.color, s.background) in SHIFTED_PAIRS for s in train_specs)
    assert not any((s.color, s.background) in SHIFTED_PAIRS for s in (spec_at("test", i) for i in range(1000)))
    shifted = [spec_at("shifted", i) for i in range(400)]
    assert all((s.color, s.background) in SHIFTED_PAIRS for s in shifted)
    assert len({(s.color, s.background) for s in shifted}) == len(SHIFTED_PAIRS)
    assert {s.shape for s in shifted} == set(SHAPES)


def test_classic_distribution_keeps_its_vocabulary():
    specs = [spec_at("train", i, distribution="classic") for i in range(300)]
    assert {s.color for s in specs} == set(CLASSIC_COLORS)
    assert {s.background for s in specs} == {"plain", "noise", "stripes"}
    assert all(max(s.bg_rgb) - min(s.bg_rgb) <= 36 for s in specs)  # grey plus a small tint
    with pytest.raises(ValueError, match="unknown distribution"):
        spec_at("train", 0, distribution="v2")
    with pytest.raises(ValueError, match="no shifted split"):
        spec_at("shifted", 0, distribution="classic")


def test_easy_subset_is_a_real_share_of_training(train_specs):
    share = np.mean([is_easy(s) for s in train_specs])
    assert 0.05 < share < 0.4
