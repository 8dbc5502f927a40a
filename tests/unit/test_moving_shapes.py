"""The moving-shapes clips: deterministic, in frame, and moving the way their label says."""

import math

import numpy as np
import pytest

from shared.data import moving_shapes as ms
from shared.data.shapes import SHAPES, _shape_mask


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    return float((mask * xx).sum() / mask.sum()), float((mask * yy).sum() / mask.sum())


def test_clips_are_deterministic_per_split_and_index():
    a = ms.MovingShapesDataset("val", 4)[3][0]
    b = ms.MovingShapesDataset("val", 1, offset=3)[0][0]
    assert a.shape == (ms.DEFAULT_FRAMES, ms.DEFAULT_SIZE, ms.DEFAULT_SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, ms.MovingShapesDataset("test", 4)[3][0])


def test_the_label_is_the_direction_the_rendered_shape_travels():
    # Measured on the renderer's own coverage masks at 64 px, independent of ClipSpec.velocity.
    for i in range(60):
        spec = ms.clip_spec_at("train", i)
        (x0, y0) = _centroid(_shape_mask(spec.frame_spec(0), 64))
        (x1, y1) = _centroid(_shape_mask(spec.frame_spec(spec.frames - 1), 64))
        angle = math.degrees(math.atan2(-(y1 - y0), x1 - x0)) % 360  # image y grows downwards
        assert round(angle / 45) % 8 == spec.direction, (i, angle, spec.direction_name)
        assert math.hypot(x1 - x0, y1 - y0) / 64 >= ms.SPEED[0] * (spec.frames - 1) * 0.5


def test_the_shape_stays_inside_the_frame_for_the_whole_clip():
    for i in range(100):
        spec = ms.clip_spec_at("test", i, frames=32)
        for t in range(spec.frames):
            f = spec.frame_spec(t)
            assert f.radius <= f.cx <= 1 - f.radius and f.radius <= f.cy <= 1 - f.radius, (i, t)


def test_labels_cover_every_direction_and_shape():
    _, directions, shapes = ms.MovingShapesDataset("train", 400, frames=4, size=16).arrays()
    assert set(directions.tolist()) == set(range(len(ms.DIRECTIONS)))
    assert set(shapes.tolist()) == set(range(len(SHAPES)))



@pytest.mark.parametrize("kwargs", [{"split": "shifted"}, {"split": "nope"}, {"frames": 1}, {"length": 0}, {"size": 4}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        ms.MovingShapesDataset(**kwargs)
