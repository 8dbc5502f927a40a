"""The Outlier Exposure images: deterministic, every kind, and none of them the evaluation's own images."""

from __future__ import annotations

import numpy as np

from shared.data import outliers


def test_deterministic_and_every_kind():
    a, b = outliers.arrays(8, size=32), outliers.arrays(8, size=32)
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert len({outliers.KINDS[i % len(outliers.KINDS)] for i in range(8)}) == len(outliers.KINDS)


def test_background_kind_has_no_shape_on_it():
    """A shape is one flat colour covering a tenth of the image or more; a background alone has none
    (checked on plain backgrounds: a single colour, up to pixel noise and JPEG)."""
    checked = 0
    for i in range(2, 400, len(outliers.KINDS)):  # index 2, 6, ...: the "background" kind
        img = np.asarray(outliers.outlier(i, 64)).astype(float)
        if img.std(axis=(0, 1)).max() < 3:  # a plain background
            assert np.abs(img - img.mean(axis=(0, 1))).max() < 25
            checked += 1
    assert checked >= 3


def test_not_the_evaluations_noise():
    from shared.evaluation import not_shapes

    ours = outliers.arrays(40)
    theirs = np.stack([np.asarray(im) for im in not_shapes(n_noise=40, crops_per_photo=0)["noise"]])
    assert not any(np.array_equal(o, t) for o in ours for t in theirs)


def test_photo_kind_crops_bundled_photos_that_the_evaluation_never_uses():
    from shared.evaluation import _photos

    sources = outliers._photo_sources()
    assert len(sources) == len(outliers.MATPLOTLIB_PHOTOS) + len(outliers.GRADIO_PHOTOS)
    assert all(s.ndim == 3 and s.shape[2] == 3 and min(s.shape[:2]) >= 256 for s in sources)
    # resized to a common size, no training photo is close to any evaluation photo
    def small(a):
        from PIL import Image

        return np.asarray(Image.fromarray(a).resize((32, 32), Image.BILINEAR), float)

    theirs = [small(np.asarray(p)) for p in _photos()]
    assert len(theirs) >= 10
    for ours in map(small, sources):
        assert min(np.abs(ours - t).mean() for t in theirs) > 10


def test_photo_and_terrain_kinds_vary_and_are_not_flat():
    kinds = outliers.KINDS
    picks = [i for i in range(60) if kinds[i % len(kinds)] in ("photo", "terrain")]
    imgs = [np.asarray(outliers.outlier(i, 64)).astype(float) for i in picks]
    assert all(img.std() > 5 for img in imgs)  # texture, not a flat colour
    assert len({img.tobytes() for img in imgs}) == len(imgs)
