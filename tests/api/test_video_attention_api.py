"""Video transformers' public API through gradio_client on the shared hub.

``video_attention_cost(frames, image_size, patch_size, tubelet, hidden_size, layers, mode)`` returns the stats
JSON; each bad input the issue names comes back as a clear error, and a good call right after it still works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from shared.models import available_offline

COST = "/video_attention_cost"
GOOD = (16, 224, 16, 2, 768, 12, "joint")


def test_cost_keys_for_every_mode(client):
    t, s, d, layers = 8, 196, 768, 12  # 16 frames / tubelet 2, (224/16)², ViT-B
    expected = {"joint": layers * 2 * (t * s) ** 2 * d,
                "divided": layers * 2 * d * (s * t * t + t * s * s),
                "factorised": layers * 2 * d * (t * s * s + t * t)}
    for mode, macs in expected.items():
        r = client.predict(*GOOD[:6], mode, api_name=COST)
        assert r["tokens"] == t * s and r["attention_macs"] == macs and r["mode"] == mode
    assert client.predict(*GOOD, api_name=COST)["attention_matrix_bytes"] == 4 * (t * s) ** 2


@pytest.mark.parametrize("args, match", [
    ((15, 224, 16, 2, 768, 12, "joint"), "frames 15 is not divisible by the tubelet 2"),
    ((16, 200, 16, 2, 768, 12, "joint"), "image size 200 is not divisible by patch size 16"),
    ((0, 224, 16, 2, 768, 12, "joint"), "frames must be an integer from 1 to 4096, got 0"),
    ((16, 224, -16, 2, 768, 12, "joint"), "patch size must be an integer from 1 to 4096, got -16"),
    ((16, 224, 16, 2, 768, 0, "divided"), "layers must be an integer from 1 to 256, got 0"),
    ((4096, 4096, 4, 1, 768, 12, "factorised"), "is more than the cap of 200,000"),
    ((256, 448, 14, 2, 768, 12, "joint"), "more than the cap of 16 GiB"),
    ((16, 224, 16, 2, 768, 12, "sparse"), "unknown mode 'sparse'; choose one of"),
    ((16, 224, 16, "two", 768, 12, "joint"), "tubelet must be an integer"),
])
def test_bad_cost_inputs_then_the_server_keeps_serving(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=COST)
    assert client.predict(*GOOD, api_name=COST)["tokens"] == 1568


def test_tokenise(client):
    from spaces.video_attention.options import model_facts, token_patches

    size = model_facts().get("image", 32)  # the clip is rendered at the embedded model's size
    assert 8 in token_patches(size) and all(size % p == 0 for p in token_patches(size))
    plot, stats, files = client.predict(0, 8, 2, api_name="/video_attention_tokenise")
    g = size // 8
    assert stats["grid"] == [8, g, g] and stats["tokens"] == 8 * g * g and stats["values_per_token"] == 2 * 8 * 8 * 3
    assert all(Path(f).is_file() for f in files)
    with pytest.raises(AppError, match="frames 16 is not divisible by the tubelet 3"):
        client.predict(0, 8, 3, api_name="/video_attention_tokenise")


@pytest.mark.skipif(not available_offline("video-vit-tiny-shapes"), reason="video-vit-tiny-shapes not trained")
def test_classify_and_its_bad_inputs(client):
    probs, strip, temporal, summary, stats, files = client.predict(0, "left", 1, 1, 1, 2,
                                                                   api_name="/video_attention_classify")
    assert stats["true_direction"] == "left" and len(stats["temporal_map"]) == 8
    assert abs(sum(stats["probabilities"].values()) - 1) < 1e-3 and stats["predicted"] in stats["probabilities"]
    assert all(Path(f).is_file() for f in files)
    with pytest.raises(AppError, match="patch row must be an integer from 0 to 3, got 4"):
        client.predict(0, "any", 1, 1, 4, 0, api_name="/video_attention_classify")
    with pytest.raises(AppError, match="unknown direction 'north'"):
        client.predict(0, "north", 1, 1, 0, 0, api_name="/video_attention_classify")
