"""vq_tokens' public API through gradio_client: vq_tokens_encode(image) and
vq_tokens_sample(class_label, temperature, top_k, seed), their contracts, and every bad input the issue
names (a clear error, then a good call still works)."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.images import sample_paths
from shared.models import available_offline

pytestmark = pytest.mark.skipif(not (available_offline("vq-tiny-shapes") and available_offline("ar-tiny-shapes")),
                                reason="vq-tiny-shapes / ar-tiny-shapes not trained")

ENCODE = "/vq_tokens_encode"
SAMPLE = "/vq_tokens_sample"


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _codebook() -> int:
    from spaces.vq_tokens.options import codebook_size

    return codebook_size()


def test_encode_contract(client):
    recon, stats = client.predict(handle_file(str(sample_paths()[0])), api_name=ENCODE)
    assert _pixels(recon).shape == (256, 256, 3)
    h, w = stats["grid"]
    assert (h, w) == (8, 8) and len(stats["tokens"]) == h and all(len(r) == w for r in stats["tokens"])
    assert stats["codebook_size"] == _codebook()
    flat = [t for r in stats["tokens"] for t in r]
    assert stats["codes_used"] == len(set(flat)) and all(0 <= t < _codebook() for t in flat)


def test_encode_matches_the_compute_function(client):
    from spaces.vq_tokens import compute

    path = str(sample_paths()[1])
    _, stats = client.predict(handle_file(path), api_name=ENCODE)
    assert stats["tokens"] == compute.encode(Image.open(path)).tokens.tolist()


def test_sample_contract_and_seed(client):
    img, a = client.predict("star", 1.0, 32, 5, api_name=SAMPLE)
    _, b = client.predict("star", 1.0, 32, 5, api_name=SAMPLE)
    _, c = client.predict("star", 1.0, 32, 6, api_name=SAMPLE)
    assert _pixels(img).shape == (256, 256, 3)
    assert len(a["tokens"]) == 8 and all(len(r) == 8 for r in a["tokens"])
    assert a["tokens"] == b["tokens"] and a["tokens"] != c["tokens"]


def test_temperature_zero_is_greedy(client):
    """T = 0 is defined as greedy decoding: no randomness, so the seed changes nothing."""
    _, a = client.predict("circle", 0, 32, 1, api_name=SAMPLE)
    _, b = client.predict("circle", 0, 5, 2, api_name=SAMPLE)
    assert a["decoding"] == "greedy" and a["tokens"] == b["tokens"]


def test_non_image_file_is_refused(client, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is text, not a picture")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(bad)), api_name=ENCODE)
    _, stats = client.predict(handle_file(str(sample_paths()[0])), api_name=ENCODE)
    assert stats["grid"] == [8, 8]


@pytest.mark.parametrize("args, match", [
    (("hexagon", 1.0, 32, 0), "unknown class"),
    (("star", -0.5, 32, 0), "temperature \\(0 = greedy\\) must be a finite number from 0 to 5"),
    (("star", "nan", 32, 0), "temperature \\(0 = greedy\\) must be a finite number from 0 to 5, got nan"),
    (("star", 1.0, 0, 0), "top-k must be an integer from 1 to"),
    (("star", 1.0, -4, 0), "top-k must be an integer from 1 to"),
    (("star", 1.0, 10**6, 0), "top-k must be an integer from 1 to"),
    (("star", 1.0, 32, -1), "seed must be an integer from 0 to"),
    (("star", 1.0, 32, 2.5), "seed must be an integer from 0 to"),
])
def test_bad_sample_inputs_then_the_server_keeps_serving(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=SAMPLE)
    _, stats = client.predict("square", 1.0, 32, 0, api_name=SAMPLE)
    assert len(stats["tokens"]) == 8


def test_top_k_above_the_codebook_names_it(client):
    with pytest.raises(AppError, match=f"from 1 to {_codebook()}, got {_codebook() + 1}"):
        client.predict("star", 1.0, _codebook() + 1, 0, api_name=SAMPLE)
