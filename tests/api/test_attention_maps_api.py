"""The attention-maps space through gradio_client: the public rollout endpoint against rollout, mean
attention distance and entropy computed here from a plain ``output_attentions`` forward pass (loops
written out, nothing from the code under test), and every bad input the issue names."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.images import sample_paths
from shared.models import available_offline, local_path

pytestmark = pytest.mark.skipif(not available_offline("vit-tiny-shapes"), reason="needs shared/weights/vit-tiny-shapes")

ROLLOUT = "/attention_maps_rollout"
MAPS = "/attention_maps_maps"
STATISTICS = "/attention_maps_statistics"
WEIGHTS = local_path("vit-tiny-shapes")


@pytest.fixture(scope="module")
def sample():
    return handle_file(str(sample_paths()[0]))


@pytest.fixture(scope="module")
def reference():
    """Attention of the sample from transformers directly: (L, H, N, N) float64, and the label."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(WEIGHTS, attn_implementation="eager").eval()
    processor = AutoImageProcessor.from_pretrained(WEIGHTS)
    x = processor(images=Image.open(sample_paths()[0]).convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model(pixel_values=x, output_attentions=True)
    maps = np.stack([a[0].double().numpy() for a in out.attentions])
    return maps, model.config.id2label[int(out.logits[0].argmax())]


def _rollout(maps: np.ndarray, fusion: str, ratio: float, grid: int) -> np.ndarray:
    """The issue's definition, written out: fuse, discard, (A + I) / 2 renormalised, multiply, [CLS] row."""
    n = maps.shape[-1]
    r = np.eye(n)
    for layer in maps:
        a = {"mean": layer.mean(0), "max": layer.max(0), "min": layer.min(0)}[fusion].copy()
        k = math.floor(ratio * (n * n - 1))
        flat = a.reshape(-1)
        order = np.argsort(flat[1:], kind="stable")[:k] + 1  # the [CLS]->[CLS] entry (index 0) is never a candidate
        flat[order] = 0
        a = (flat.reshape(n, n) + np.eye(n)) / 2
        a = a / a.sum(axis=1, keepdims=True)
        r = a @ r
    row = r[0, 1:]
    return (row / row.sum()).reshape(grid, grid)


def _mean_distance(maps: np.ndarray, grid: int, patch: int) -> np.ndarray:
    layers, heads = maps.shape[:2]
    out = np.zeros((layers, heads))
    for layer in range(layers):
        for head in range(heads):
            total = 0.0
            for q in range(grid * grid):
                w = maps[layer, head, 1 + q, 1:]
                w = w / w.sum()
                qy, qx = divmod(q, grid)
                d = 0.0
                for k in range(grid * grid):
                    ky, kx = divmod(k, grid)
                    d += w[k] * patch * math.hypot(qy - ky, qx - kx)
                total += d
            out[layer, head] = total / (grid * grid)
    return out


def _good_call(client, sample):
    overlay, stats, files = client.predict(sample, "mean", 0.0, api_name=ROLLOUT)
    assert stats["grid"] == [8, 8]
    return overlay, stats, files


@pytest.mark.parametrize("fusion, ratio", [("mean", 0.0), ("max", 0.9), ("min", 0.5), ("mean", 0.97)])
def test_rollout_matches_an_independent_rollout(client, sample, reference, fusion, ratio):
    maps, _ = reference
    config = json.loads((WEIGHTS / "config.json").read_text())
    grid = config["image_size"] // config["patch_size"]
    overlay, stats, files = client.predict(sample, fusion, ratio, api_name=ROLLOUT)
    got = np.asarray(stats["rollout"])
    assert got.shape == (grid, grid) and stats["grid"] == [grid, grid]
    np.testing.assert_allclose(got, _rollout(maps, fusion, ratio, grid), atol=1e-5)
    assert got.sum() == pytest.approx(1.0, abs=1e-5)
    assert Image.open(overlay).size == (256, 256)
    assert [Path(f).suffix for f in files] == [".json"]
    assert json.loads(Path(files[0]).read_text())["rollout"] == stats["rollout"]


def test_stats_match_independent_loops(client, sample, reference):
    maps, label = reference
    config = json.loads((WEIGHTS / "config.json").read_text())
    grid, patch = config["image_size"] // config["patch_size"], config["patch_size"]
    _, stats, _ = _good_call(client, sample)
    assert (stats["layers"], stats["heads"]) == (config["num_hidden_layers"], config["num_attention_heads"])
    assert stats["label"] == label
    np.testing.assert_allclose(stats["mean_distance_px"], _mean_distance(maps, grid, patch), atol=1e-4)
    p = maps[:, :, 0, :]
    entropy = -(p * np.log(p)).sum(-1)
    np.testing.assert_allclose(stats["entropy"], entropy, atol=1e-5)


def test_maps_endpoint(client, sample, reference):
    maps, label = reference
    cls_img, heads_plot, query_img, note, files = client.predict(sample, "vit-tiny-shapes", 3, 2, 1, 6, api_name=MAPS)
    assert Image.open(cls_img).size == Image.open(query_img).size == (256, 256)
    assert f"predicts **{label}**" in note and "row 1, column 6" in note
    # the calibrated out-of-distribution verdict (shared.ood), in plain words, above the facts
    assert note.startswith(("Not flagged: top probability", "⚠️ Unusual input")), note
    assert f"its largest weight is {maps[3, 2, 0, 1:].max():.3f}" in note
    assert f"puts {maps[3, 2, 1 + 1 * 8 + 6, 1:].max():.3f} on its favourite patch" in note
    assert [Path(f).suffix for f in files] == [".png"]
    _, _, _, note, _ = client.predict(sample, "vit-tiny-shapes", 0, "mean of heads", 0, 0, api_name=MAPS)
    assert "the mean of the heads" in note


def test_statistics_endpoint(client, sample):
    distance, entropy, per_head, cost, note, files = client.predict(sample, "vit-tiny-shapes", api_name=STATISTICS)
    config = json.loads((WEIGHTS / "config.json").read_text())
    assert len(per_head["data"]) == config["num_hidden_layers"] * config["num_attention_heads"]
    n = (config["image_size"] // config["patch_size"]) ** 2 + 1
    first = cost["data"][0]
    assert first[0] == "vit-tiny-shapes" and first[2] == n
    assert first[8] == first[9] == config["num_hidden_layers"] * n * n * config["hidden_size"]  # L N^2 D
    assert "matches the model's own attention" in note
    assert sorted(Path(f).suffix for f in files) == [".csv", ".csv", ".png", ".png"]


def test_non_image_file(client, sample, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(fake)), "mean", 0.0, api_name=ROLLOUT)
    _good_call(client, sample)


@pytest.mark.parametrize("fusion", ["median", "", "MEAN"])
def test_unknown_fusion(client, sample, fusion):
    with pytest.raises(AppError, match=rf"unknown head fusion '{fusion}'; choose one of \['mean', 'max', 'min'\]"):
        client.predict(sample, fusion, 0.0, api_name=ROLLOUT)
    _good_call(client, sample)


@pytest.mark.parametrize("ratio, message", [
    (1.0, "discard ratio must be a finite number from 0 to below 1"),
    (-0.1, "discard ratio must be a finite number from 0 to 1, got -0.1"),
    (1.5, "discard ratio must be a finite number from 0 to 1, got 1.5"),
    ("nan", "discard ratio must be a finite number from 0 to 1, got nan"),
    ("abc", "discard ratio must be a finite number from 0 to 1, got 'abc'"),
])
def test_discard_ratio_outside_0_1(client, sample, ratio, message):
    with pytest.raises(AppError, match=message):
        client.predict(sample, "mean", ratio, api_name=ROLLOUT)
    _good_call(client, sample)


@pytest.mark.parametrize("args, message", [
    (("vit-tiny-shapes", 9, 0, 0, 0), "layer must be an integer from 0 to 3, got 9"),
    (("vit-tiny-shapes", 0, 7, 0, 0), "head must be an integer from 0 to 3, got 7"),
    (("vit-tiny-shapes", 0, 0, 0, 8), "query column must be an integer from 0 to 7, got 8"),
    (("clip-tiny-shapes", 0, 0, 0, 0), "unknown model 'clip-tiny-shapes'"),
])
def test_maps_refuses_bad_values(client, sample, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(sample, *args, api_name=MAPS)
    _good_call(client, sample)


@pytest.mark.skipif(available_offline("google/vit-base-patch16-224"), reason="ViT-B/16 is in the local cache")
@pytest.mark.parametrize("endpoint, args", [
    (MAPS, ("google/vit-base-patch16-224", 0, 0, 0, 0)),
    (STATISTICS, ("facebook/deit-tiny-patch16-224",)),
])
def test_hub_model_offline_is_a_clear_error(client, sample, endpoint, args):
    with pytest.raises(AppError, match="not available.*Use the embedded 'vit-tiny-shapes' instead"):
        client.predict(sample, *args, api_name=endpoint)
    _good_call(client, sample)


def test_space_on_its_own_url(space_client, sample):
    _, stats, _ = space_client("attention_maps").predict(sample, "max", 0.5, api_name=ROLLOUT)
    assert stats["head_fusion"] == "max" and stats["discard_ratio"] == 0.5


def test_two_clients_at_once_get_their_own_rollouts(client, hub_url, reference):
    from gradio_client import Client

    from tests.serving import call_concurrently

    paths = sample_paths()[:2]
    other = Client(hub_url, verbose=False)
    calls = [lambda: client.predict(handle_file(str(paths[0])), "max", 0.5, api_name=ROLLOUT),
             lambda: other.predict(handle_file(str(paths[1])), "min", 0.2, api_name=ROLLOUT)]
    (_, first, _), (_, second, _) = call_concurrently(calls)
    maps, _ = reference  # the attention of paths[0]
    np.testing.assert_allclose(first["rollout"], _rollout(maps, "max", 0.5, 8), atol=1e-5)
    assert second["head_fusion"] == "min" and second["rollout"] == client.predict(
        handle_file(str(paths[1])), "min", 0.2, api_name=ROLLOUT)[1]["rollout"]
