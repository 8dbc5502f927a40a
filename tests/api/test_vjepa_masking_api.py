"""vjepa_masking's public API through gradio_client: ``vjepa_masking_mask(frames, image_size, patch_size, tubelet,
seed) -> (image, stats)``.

Each bad input the issue names (frames not divisible by the tubelet, an image size not divisible by the patch,
zero or negative values, values above the caps, a negative or non-integer seed) comes back as a clear error, and
a good call right after it still works. The objective endpoint runs once on the shipped model.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from shared.models import available_offline

MASK = "/vjepa_masking_mask"


def _good_call(client, seed=0):
    image, stats = client.predict(16, 224, 16, 2, seed, api_name=MASK)
    return image, stats


def test_mask_stats(client):
    image, stats = _good_call(client, 4)
    assert stats["grid"] == [8, 14, 14]
    for key, ratio in (("mask", "masked_ratio"), ("short_range_mask", "short_range_ratio")):
        mask = np.array(stats[key])
        assert mask.shape == (8, 14, 14) and set(np.unique(mask)) <= {0, 1}
        assert stats[ratio] == pytest.approx(mask.mean(), abs=1e-6)
        assert (mask == mask[0]).all()  # tubes: the same target at every time step
        assert 0 < mask.mean() < 1
    assert Image.open(image).size[0] > Image.open(image).size[1]  # one column per time step
    assert _good_call(client, 4)[1] == stats  # deterministic per seed
    other = _good_call(client, 5)[1]
    assert (other["mask"], other["short_range_mask"]) != (stats["mask"], stats["short_range_mask"])


@pytest.mark.parametrize("args, message", [
    ((15, 224, 16, 2, 0), "divisible by the tubelet"),
    ((16, 220, 16, 2, 0), "divisible by the patch"),
    ((0, 224, 16, 2, 0), "frames must be an integer"),
    ((16, 224, -16, 2, 0), "patch size must be an integer"),
    ((16, 224, 16, 0, 0), "tubelet must be an integer"),
    ((16, 1000, 16, 2, 0), "image size must be an integer from 8 to 448"),
    ((64, 448, 4, 1, 0), "above the cap"),
    ((16, 224, 16, 2, -3), "seed must be an integer"),
    ((16, 224, 16, 2, 1.5), "seed must be an integer"),
], ids=["frames-tubelet", "size-patch", "zero-frames", "negative-patch", "zero-tubelet", "size-cap", "token-cap",
        "negative-seed", "float-seed"])
def test_bad_inputs(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=MASK)
    assert _good_call(client)[1]["grid"] == [8, 14, 14]  # still serving


@pytest.mark.skipif(not available_offline("vjepa-tiny-shapes"), reason="vjepa-tiny-shapes not trained")
def test_objective_endpoint(client):
    plot, table, stats, momentum, files = client.predict(0, 0, api_name="/vjepa_masking_objective")
    assert stats["grid"] == [8, 4, 4]
    for name in ("short-range", "long-range"):
        s = stats[name]
        assert s["latent_l1"] > 0 and s["pixel_mse_own_mean_oracle"] <= s["pixel_mse_context_mean_fill"]
    assert len(files) == 4  # the two plots (PNG), the table (CSV) and the stats (JSON)
