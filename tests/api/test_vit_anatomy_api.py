"""ViT anatomy's public API through gradio_client, on the hub and on the space's own URL.

``vit_anatomy_cost(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, num_classes)``
returns the stats JSON; every bad input the issue names comes back as a clear error, and a good call
right after it still works (the server keeps serving).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from shared.images import sample_paths
from shared.models import available_offline

COST = "/vit_anatomy_cost"
B16 = (768, 12, 12, 3072, 224, 16, 1000)


def test_cost_of_vit_b16(client):
    s = client.predict(*B16, api_name=COST)
    assert s["params"] == 86_567_656  # the figure
    assert round(s["macs"] / 1e9, 2) == 17.56
    assert s["tokens"] == (224 // 16) ** 2 + 1
    assert sum(s["breakdown"].values()) == s["params"]
    assert set(s["breakdown"]) >= {"patch embedding", "attention", "MLP", "norms", "head"}
    assert s["activation_mb"] > 0 and s["activation_mb_batch64"] == pytest.approx(64 * s["activation_mb"])


def test_cost_on_the_space_url(space_client):
    s = space_client("vit_anatomy").predict(192, 12, 3, 768, 224, 16, 1000, api_name=COST)
    # ViT-Ti/16 written out: patch 3·16²·192+192, pos+cls 198·192, 12·(4·(192²+192) + 2·192·768+768+192 + 4·192),
    # final norm 2·192, head 192·1000+1000
    d = 192
    expected = 3 * 256 * d + d + 198 * d + 12 * (4 * (d * d + d) + 2 * d * 768 + 768 + d + 4 * d) + 2 * d + d * 1000 + 1000
    assert s["params"] == expected


def test_preset_endpoint(client):
    assert list(client.predict("ViT-L/16", api_name="/vit_anatomy_preset")) == [1024, 24, 16, 4096, 224, 16, 1000]


@pytest.mark.parametrize("args, match", [
    ((768, 12, 7, 3072, 224, 16, 1000), "hidden size 768 is not divisible by the number of heads 7"),
    ((768, 12, 12, 3072, 225, 16, 1000), "image size 225 is not divisible by patch size 16"),
    ((0, 12, 12, 3072, 224, 16, 1000), "hidden size must be an integer from 1 to 8192, got 0"),
    ((768, -1, 12, 3072, 224, 16, 1000), "num layers must be an integer from 1 to 128, got -1"),
    ((768, 12, 12, 3072.5, 224, 16, 1000), "mlp dim must be an integer from 1 to 32768, got 3072.5"),
    ((768, 12, 12, 3072, 224, 16, "lots"), "num classes must be an integer from 1 to 100000, got 'lots'"),
    ((768, 12, 12, 3072, 224, 16, "nan"), "num classes must be an integer"),
    ((768, 10**6, 12, 3072, 224, 16, 1000), "num layers must be an integer from 1 to 128, got 1000000"),
    ((768, 12, 12, 3072, 10**5, 16, 1000), "image size must be an integer from 1 to 1024"),
    ((768, 12, 12, 3072, 1024, 2, 1000), "more than the cap of 4,097"),
])
def test_bad_cost_inputs_then_the_server_keeps_serving(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=COST)
    assert client.predict(*B16, api_name=COST)["params"] == 86_567_656


def test_unknown_preset_then_the_server_keeps_serving(client):
    with pytest.raises(AppError, match="unknown preset 'ViT-Z/16'"):
        client.predict("ViT-Z/16", api_name="/vit_anatomy_preset")
    assert client.predict("ViT-B/16", api_name="/vit_anatomy_preset")[0] == 768


def test_presets_table(client):
    table, files = client.predict(api_name="/vit_anatomy_presets")
    df = pd.DataFrame(table["data"], columns=table["headers"])
    assert list(df["preset"]) == ["ViT-Ti/16", "ViT-S/16", "ViT-B/16", "ViT-L/16", "ViT-H/14", "ViT-g/14"]
    assert df.loc[df["preset"] == "ViT-B/16", "parameters (counted)"].item() == "86,567,656"
    assert all(Path(f).is_file() for f in files)


@pytest.mark.skipif(not available_offline("vit-tiny-shapes"), reason="vit-tiny-shapes not trained")
def test_forward_pass_and_norms(client):
    stages, plot, lens, summary, files = client.predict(handle_file(str(sample_paths()[0])),
                                                         api_name="/vit_anatomy_forward")
    assert stages["data"][0][2] == "3 × 64 × 64" and "Prediction" in summary
    assert summary.startswith(("Not flagged: top probability", "⚠️ Unusual input")), summary
    assert len(lens["data"]) == 5 and all(Path(f).is_file() for f in files)
    plot, table, text, files = client.predict(3, 0, api_name="/vit_anatomy_norms")
    assert len(table["data"]) == 3 and "pre-LN" in text


@pytest.mark.parametrize("depth, seed, match", [(0, 0, "depth must be an integer from 1 to 24, got 0"),
                                                 (99, 0, "depth must be an integer from 1 to 24, got 99"),
                                                 (2, 1.5, "seed must be an integer")])
def test_bad_norm_inputs_then_the_server_keeps_serving(client, depth, seed, match):
    with pytest.raises(AppError, match=match):
        client.predict(depth, seed, api_name="/vit_anatomy_norms")
    assert len(client.predict(2, 0, api_name="/vit_anatomy_norms")[1]["data"]) == 2
