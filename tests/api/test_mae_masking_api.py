"""mae_masking's public API through gradio_client: ``mae_masking_reconstruct(image, mask_ratio, seed)``.

Each bad input the issue names (a non-image file; a mask ratio of 0, 1 or more, negative or NaN; a negative or
non-integer seed) comes back as a clear error, and a good call right after it still works.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.images import sample_paths
from shared.models import available_offline

RECONSTRUCT = "/mae_masking_reconstruct"
pytestmark = pytest.mark.skipif(not available_offline("mae-tiny-shapes"), reason="mae-tiny-shapes not trained")


@pytest.fixture(scope="module")
def sample():
    return handle_file(str(sample_paths()[0]))


def _good_call(client, sample, ratio=0.75, seed=0):
    masked, recon, stats = client.predict(sample, ratio, seed, api_name=RECONSTRUCT)
    assert Image.open(masked).size == Image.open(recon).size
    return masked, recon, stats


def test_reconstruct_stats(client, sample):
    masked, recon, stats = _good_call(client, sample, 0.75, 4)
    L = stats["num_patches"]
    mask = np.array(stats["mask"])
    assert mask.shape == (8, 8) and L == 64
    assert stats["num_masked"] == int(mask.sum()) == L - int(L * (1 - 0.75))
    assert stats["loss"] > 0 and stats["baseline_loss"] > 0
    # grey where masked: every masked patch of the masked image is one flat colour
    arr = np.asarray(Image.open(masked).convert("RGB")).astype(int)
    p = arr.shape[0] // 8
    for i, j in zip(*np.nonzero(mask), strict=True):
        patch = arr[i * p:(i + 1) * p, j * p:(j + 1) * p]
        assert np.ptp(patch) <= 1


def test_same_seed_same_mask(client, sample):
    a = _good_call(client, sample, 0.5, 9)[2]["mask"]
    b = _good_call(client, sample, 0.5, 9)[2]["mask"]
    c = _good_call(client, sample, 0.5, 10)[2]["mask"]
    assert a == b and a != c


def test_non_image_file(client, sample, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(fake)), 0.75, 0, api_name=RECONSTRUCT)
    _good_call(client, sample)


@pytest.mark.parametrize("ratio", [0, 1, 1.5, -0.25, "nan"])
def test_bad_mask_ratio(client, sample, ratio):
    with pytest.raises(AppError, match="mask ratio must be a finite number from 0.05 to 0.95"):
        client.predict(sample, ratio, 0, api_name=RECONSTRUCT)
    _good_call(client, sample)


@pytest.mark.parametrize("seed", [-1, 2.5])
def test_bad_seed(client, sample, seed):
    with pytest.raises(AppError, match="seed must be an integer from 0 to"):
        client.predict(sample, 0.75, seed, api_name=RECONSTRUCT)
    _good_call(client, sample)


def test_other_endpoints(client, sample):
    _, table, _ = client.predict(20, api_name="/mae_masking_sweep")[:3]
    assert len(table["data"]) == 5
    view_a, view_b, sims, stats, files = client.predict(sample, 0, 4, 0.5, api_name="/mae_masking_views")
    assert stats["views"] == 8 and stats["nt_xent_trained_encoder"] > 0
    plot, pat_table, files = client.predict(sample, 0.75, 0, "mae-tiny-shapes", api_name="/mae_masking_patterns")
    assert [r[0] for r in pat_table["data"]] == ["random", "block-wise (BEiT)", "grid"]


@pytest.mark.skipif(available_offline("facebook/vit-mae-base"), reason="vit-mae-base is in the local cache")
def test_hub_model_offline_is_a_clear_error(client, sample):
    with pytest.raises(AppError, match="not available.*Use the embedded 'mae-tiny-shapes' instead"):
        client.predict(sample, 0.75, 0, "facebook/vit-mae-base", api_name="/mae_masking_patterns")
    _good_call(client, sample)


def test_space_on_its_own_url(space_client, sample):
    _, _, stats = space_client("mae_masking").predict(sample, 0.25, 1, api_name=RECONSTRUCT)
    assert stats["num_masked"] == 64 - int(64 * 0.75)
