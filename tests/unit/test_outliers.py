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
