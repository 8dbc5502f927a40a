"""The interpretability space's public endpoints through gradio_client: the issue's definitions checked
against computations written here (a private transformers model, loops in numpy), every bad input the
issue names (a clear message, then the server keeps serving), and the files each event offers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from transformers import AutoImageProcessor, ViTForImageClassification

from shared.data.shapes import ShapesDataset
from shared.images import sample_paths
from shared.models import local_path

EXPLAIN, FGSM, SANITY, SELECT = ("/attribution_explain", "/attribution_fgsm", "/attribution_sanity",
                                 "/attribution_select_model")
MODEL = "vit-tiny-shapes"
CONFIG = json.loads((local_path(MODEL) / "config.json").read_text())
CLASSES = [CONFIG["id2label"][str(i)] for i in range(len(CONFIG["id2label"]))]
GRID = CONFIG["image_size"] // CONFIG["patch_size"]
MAX_EPSILON = 0.25  # the stated maximum (options.MAX_EPSILON), typed here on purpose


@pytest.fixture(scope="module")
def hf():
    model = ViTForImageClassification.from_pretrained(str(local_path(MODEL)), attn_implementation="eager")
    return model.eval(), AutoImageProcessor.from_pretrained(str(local_path(MODEL)))


def _sample(shape: str) -> Path:
    return next(p for p in sample_paths() if p.stem.endswith(shape))


def _explain(client, path, method="rollout", target=""):
    return client.predict(handle_file(str(path)), method, target, api_name=EXPLAIN)


def _fgsm(client, path, epsilon, target=""):
    return client.predict(handle_file(str(path)), epsilon, target, api_name=FGSM)


def _still_serving(client):
    _, stats, _ = _explain(client, _sample("star"))
    assert stats["grid"] == [GRID, GRID]


def test_rollout_endpoint_matches_rollout_from_output_attentions(client, hf):
    """The issue's rollout definition, computed here from HF's output_attentions, to 1e-5."""
    path = _sample("cross")
    image, stats, files = _explain(client, path)
    with torch.no_grad():
        out = hf[0](pixel_values=hf[1](images=Image.open(path).convert("RGB"), return_tensors="pt")["pixel_values"],
                    output_attentions=True)
    n = out.attentions[0].shape[-1]
    r = np.eye(n)
    for a in out.attentions:
        a = (a[0].mean(dim=0).double().numpy() + np.eye(n)) / 2
        r = (a / a.sum(axis=1, keepdims=True)) @ r
    expected = (r[0, 1:] / r[0, 1:].sum()).reshape(GRID, GRID)
    np.testing.assert_allclose(np.array(stats["map"]), expected, atol=1e-5)
    assert stats["method"] == "rollout" and stats["target"] == "cross"
    assert Image.open(image).size[0] > 0


@pytest.mark.parametrize("method", ["rollout", "grad_rollout", "gradcam", "integrated_gradients"])
def test_every_method_returns_a_map_and_its_stats(client, method):
    image, stats, files = _explain(client, _sample("square"), method, "circle")
    assert {"method", "target", "grid", "map"} <= set(stats)
    assert stats["method"] == method and stats["target"] == "circle"
    m = np.array(stats["map"])
    assert m.shape == (GRID, GRID) and np.isfinite(m).all()
    if method != "integrated_gradients":
        assert m.min() >= 0 and m.sum() == pytest.approx(1.0, abs=1e-5)
    assert [Path(f).suffix for f in files] == [".json"]
    assert json.loads(Path(files[0]).read_text())["map"] == stats["map"]


def test_integrated_gradients_completeness_on_held_out_shapes(client, tmp_path):
    for i in range(3):
        path = tmp_path / f"test_{i}.png"
        ShapesDataset("test", 3, size=64)[i][0].save(path)
        _, stats, _ = _explain(client, path, "integrated_gradients")
        gap = abs(stats["sum_attributions"] - stats["logit_difference"]) / abs(stats["logit_difference"])
        assert gap < 0.1 and stats["steps"] > 0


@pytest.mark.parametrize("epsilon", [2 / 255, 8 / 255, 0.1])
def test_fgsm_png_at_model_resolution_never_past_epsilon(client, hf, epsilon):
    path = _sample("circle")
    adversarial, stats, files = _fgsm(client, path, epsilon)
    adv = Image.open(adversarial)
    assert adv.format == "PNG" and adv.size == (CONFIG["image_size"], CONFIG["image_size"])
    # the model's view of the original, as its processor makes it (resize, no normalisation)
    view = hf[1](images=Image.open(path).convert("RGB"), return_tensors="pt", do_normalize=False)["pixel_values"]
    original = (view[0].permute(1, 2, 0).numpy() * 255).round()
    moved = np.abs(np.asarray(adv.convert("RGB"), dtype=float) - original).max() / 255
    assert moved <= epsilon + 1e-9
    assert stats["linf"] == pytest.approx(moved, abs=1e-9) and stats["linf"] <= epsilon + 1e-12
    assert stats["linf"] == pytest.approx(math.floor(epsilon * 255 + 1e-9) / 255, abs=1e-12)
    with torch.no_grad():
        after = hf[0](pixel_values=hf[1](images=adv.convert("RGB"), return_tensors="pt")["pixel_values"]).logits
        before = hf[0](pixel_values=hf[1](images=Image.open(path).convert("RGB"),
                                          return_tensors="pt")["pixel_values"]).logits
    assert stats["label_after"] == CLASSES[int(after.argmax())]
    assert stats["label_before"] == CLASSES[int(before.argmax())]
    assert [Path(f).suffix for f in files] == [".json"]


def test_fgsm_flip_epsilon_flips(client):
    _, stats, _ = _fgsm(client, _sample("square"), 1 / 255)
    flip = stats["flip_epsilon"]
    assert flip is not None
    _, at_flip, _ = _fgsm(client, _sample("square"), flip)
    assert at_flip["label_after"] != at_flip["label_before"]


def test_sanity_endpoint(client):
    figure, table, stats, files = client.predict(handle_file(str(_sample("star"))), "classifier", "",
                                                 api_name=SANITY)
    rows = {r[0]: r for r in table["data"]}
    assert set(rows) == {"rollout", "grad_rollout", "gradcam", "integrated_gradients"}
    assert rows["rollout"][1] == pytest.approx(1.0)  # rollout never reads the head
    assert sorted(Path(f).suffix for f in files) == [".csv", ".json", ".png"]


# --------------------------------------------------------------------------------------
#                                   Bad input
# --------------------------------------------------------------------------------------

def test_non_image_file(client, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    with pytest.raises(AppError, match="not an image"):
        _explain(client, fake)
    with pytest.raises(AppError, match="not an image"):
        _fgsm(client, fake, 0.01)
    _still_serving(client)


@pytest.mark.parametrize("method, target, message", [
    ("saliency", "", r"unknown method 'saliency'; choose one of \['rollout', 'grad_rollout'"),
    ("rollout", "dog", r"unknown target class 'dog'; choose one of \['circle'"),
    ("integrated_gradients", "Star", "unknown target class 'Star'"),
])
def test_unknown_method_or_target(client, method, target, message):
    with pytest.raises(AppError, match=message):
        _explain(client, _sample("star"), method, target)
    _still_serving(client)


@pytest.mark.parametrize("epsilon, message", [
    (-0.01, "epsilon must be a finite number from 0 to 0.25, got -0.01"),
    ("nan", "epsilon must be a finite number from 0 to 0.25, got nan"),  # JSON has no NaN: clients send text
    (0.5, "epsilon must be a finite number from 0 to 0.25, got 0.5"),
    ("abc", "epsilon must be a finite number"),
])
def test_bad_epsilon(client, epsilon, message):
    with pytest.raises(AppError, match=message):
        _fgsm(client, _sample("star"), epsilon)
    _fgsm(client, _sample("star"), MAX_EPSILON)  # the stated maximum itself is accepted
    _still_serving(client)


def test_fgsm_unknown_target(client):
    with pytest.raises(AppError, match="unknown target class 'dog'"):
        _fgsm(client, _sample("star"), 0.01, "dog")
    _still_serving(client)


def test_unknown_randomisation(client):
    with pytest.raises(AppError, match="unknown randomisation 'half'"):
        client.predict(handle_file(str(_sample("star"))), "half", "", api_name=SANITY)
    _still_serving(client)


def test_hub_model_offline_gives_a_clear_error(client):
    with pytest.raises(AppError, match="google/vit-base-patch16-224 is not available.*'vit-tiny-shapes'"):
        client.predict("google/vit-base-patch16-224", api_name=SELECT)
    info = client.predict(MODEL, api_name=SELECT)
    assert f"{CONFIG['num_hidden_layers']} layers" in info[0]
    _still_serving(client)


def test_space_alone_serves_the_same_endpoints(space_client):
    _, stats, _ = _explain(space_client("attribution"), _sample("triangle"), "gradcam")
    assert stats["grid"] == [GRID, GRID]
