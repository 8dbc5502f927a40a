"""The attention-maps space's compute functions, each against an independent computation: maps from a plain
``transformers`` forward pass, the unscaled logits from the layer weights applied by hand, the cost against
PyTorch's FLOP counter on the instantiated model, the page's facts against the shipped files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from shared import attention as shared_attention
from shared.images import sample_paths
from shared.models import ModelUnavailableError, available_offline, local_path

pytestmark = pytest.mark.skipif(not available_offline("vit-tiny-shapes"), reason="needs shared/weights/vit-tiny-shapes")

WEIGHTS = local_path("vit-tiny-shapes")


@pytest.fixture(scope="module")
def compute():
    from spaces.attention_maps import compute

    return compute


@pytest.fixture(scope="module")
def image():
    return Image.open(sample_paths()[0]).convert("RGB")


@pytest.fixture(scope="module")
def reference(image):
    """An independent forward pass: the model and processor straight from the weights folder."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(WEIGHTS, attn_implementation="eager").eval()
    processor = AutoImageProcessor.from_pretrained(WEIGHTS)
    x = processor(images=image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model(pixel_values=x, output_attentions=True, output_hidden_states=True)
    return model, x, out


def test_options_agree_with_shared_and_the_registry():
    from spaces.attention_maps import options

    assert options.FUSIONS == shared_attention.FUSIONS
    assert options.DEFAULT_MODEL == options.MODELS[0] == "vit-tiny-shapes"
    assert {"google/vit-base-patch16-224", "facebook/deit-tiny-patch16-224", "facebook/dino-vits16"} <= set(
        options.MODELS)


def test_page_facts_are_the_shipped_files():
    from spaces.attention_maps import app, options

    config = json.loads((WEIGHTS / "config.json").read_text())
    metrics = json.loads((WEIGHTS / "metrics.json").read_text())
    facts = options.shipped_facts()
    assert (facts.image_size, facts.patch_size, facts.layers, facts.heads) == (
        config["image_size"], config["patch_size"], config["num_hidden_layers"], config["num_attention_heads"])
    assert facts.parameters == metrics["parameters"] and facts.accuracy == metrics["accuracy"]
    text = app._facts_text(facts)
    g = config["image_size"] // config["patch_size"]
    for piece in (f"{g}x{g} grid", f"{config['num_hidden_layers']} layers of {config['num_attention_heads']} heads",
                  f"{metrics['parameters']:,} parameters", f"{metrics['accuracy']:.2%}"):
        assert piece in text
    assert "vit-tiny-shapes" in app.WEIGHTS


def test_cls_and_query_maps_are_rows_of_the_models_attention(compute, image, reference):
    _, _, out = reference
    cap = compute.capture(image)
    grid = cap.att.grid
    for layer in range(len(out.attentions)):
        a = out.attentions[layer][0].numpy()  # (H, N, N)
        for head in range(a.shape[0]):
            np.testing.assert_allclose(compute.cls_map(cap.att, layer, head), a[head, 0, 1:].reshape(grid), atol=1e-6)
        np.testing.assert_allclose(compute.cls_map(cap.att, layer, "mean of heads"),
                                   a.mean(0)[0, 1:].reshape(grid), atol=1e-6)
        np.testing.assert_allclose(compute.all_heads(cap.att, layer), a[:, 0, 1:].reshape(-1, *grid), atol=1e-6)
        row, col = 2, 5
        q = 1 + row * grid[1] + col
        np.testing.assert_allclose(compute.query_map(cap.att, layer, 1, row, col), a[1, q, 1:].reshape(grid),
                                   atol=1e-6)


def test_label_is_the_argmax(compute, image, reference):
    model, _, out = reference
    cap = compute.capture(image)
    assert cap.label == model.config.id2label[int(out.logits[0].argmax())]


@pytest.mark.parametrize("layer, head, row, col, message", [
    (4, 0, 0, 0, "layer must be an integer from 0 to 3, got 4"),
    (0, 4, 0, 0, "head must be an integer from 0 to 3, got 4"),
    (0, 0, 8, 0, "query row must be an integer from 0 to 7, got 8"),
    (0, 0, 0, -1, "query column must be an integer from 0 to 7, got -1"),
    (1.5, 0, 0, 0, "layer must be an integer"),
])
def test_query_map_refuses_out_of_range(compute, image, layer, head, row, col, message):
    with pytest.raises(ValueError, match=message):
        compute.query_map(compute.capture(image).att, layer, head, row, col)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-30, None))).sum(-1)


def test_scale_effect_from_the_layer_weights_by_hand(compute, image, reference):
    """q and k rebuilt from each layer's input (hidden state -> layer norm -> q/k weights), no hooks."""
    model, _, out = reference
    effect = compute.scale_effect(image)
    heads = model.config.num_attention_heads
    d_k = model.config.hidden_size // heads
    assert effect.d_k == d_k and effect.max_abs_error < 1e-5
    for i, layer in enumerate(model.vit.layers):
        h = out.hidden_states[i][0]  # (N, D) input of layer i
        x = torch.nn.functional.layer_norm(h, (h.shape[-1],), layer.layernorm_before.weight,
                                           layer.layernorm_before.bias, layer.layernorm_before.eps)
        q = x @ layer.attention.q_proj.weight.T + layer.attention.q_proj.bias
        k = x @ layer.attention.k_proj.weight.T + layer.attention.k_proj.bias
        for hd in range(heads):
            sl = slice(hd * d_k, (hd + 1) * d_k)
            logits = (q[0, sl] @ k[:, sl].T).detach().double().numpy()  # the [CLS] row, unscaled
            for scale, got in ((1.0, effect.entropy_unscaled[i, hd]), (1 / math.sqrt(d_k), effect.entropy_scaled[i, hd])):
                z = logits * scale
                p = np.exp(z - z.max())
                p /= p.sum()
                assert got == pytest.approx(_entropy(p), abs=1e-4)
        # with the scale, the softmax is the model's own attention, whose [CLS] entropy is shared.attention's
        own = out.attentions[i][0][:, 0].double().numpy()
        np.testing.assert_allclose(effect.entropy_scaled[i], _entropy(own), atol=1e-4)
    assert effect.uniform_entropy == pytest.approx(math.log(out.attentions[0].shape[-1]))


def _attention_flops_and_bytes(model, pixel_values) -> tuple[int, int]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(pixel_values=pixel_values, output_attentions=True)
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    # eager attention's two batched products (Q K^T and A V) are the model's only bmm; linears are addmm
    return counts.get("aten.bmm", 0), sum(a.nelement() * a.element_size() for a in out.attentions)


def test_cost_against_the_flop_counter_on_the_embedded_model(compute, image):
    cap = compute.capture(image)
    cost = compute.cost_of(cap.model.config, "tiny", cap.att.prefix)
    flops, nbytes = _attention_flops_and_bytes(cap.model, cap.att.pixel_values)
    assert flops == 2 * (cost.qk_macs + cost.av_macs)  # the counter counts 2 FLOPs per multiply-accumulate
    assert nbytes == cost.matrix_bytes
    assert cost.tokens == cap.att.maps.shape[-1]


@pytest.mark.parametrize("size", [224, 96])
def test_cost_against_the_flop_counter_on_vit_b16(compute, size):
    from transformers import ViTForImageClassification

    config = compute.vit_b16_config(size)
    config._attn_implementation = "eager"
    model = ViTForImageClassification(config).eval()
    cost = compute.cost_of(config, "ViT-B/16", 1)
    assert (cost.width, cost.layers, cost.heads, cost.patch_size) == (768, 12, 12, 16)
    flops, nbytes = _attention_flops_and_bytes(model, torch.zeros(1, 3, size, size))
    assert flops == 2 * (cost.qk_macs + cost.av_macs)
    assert nbytes == cost.matrix_bytes
    assert cost.tokens == (size // 16) ** 2 + 1


def test_cost_table_and_bytes(compute, image):
    table = compute.cost_table(compute.capture(image))
    assert [r[0] for r in table] == ["vit-tiny-shapes", "ViT-B/16 at 224 px", "ViT-B/16 at 384 px"]
    assert table[1][2] == 197 and table[2][2] == 577
    assert len(table[0]) == len(compute.COST_HEADERS)
    assert compute.human_bytes(512) == "512 B" and compute.human_bytes(3 * 1024 ** 2) == "3.00 MiB"


def test_rollout_stats_keys_and_sums(compute, image):
    result = compute.rollout(image, "min", 0.3)
    stats = result.stats
    assert {"grid", "rollout", "layers", "heads", "label", "mean_distance_px", "entropy"} <= set(stats)
    assert stats["grid"] == [8, 8] and np.asarray(stats["rollout"]).shape == (8, 8)
    assert np.asarray(stats["rollout"]).sum() == pytest.approx(1.0, abs=1e-6)  # float32
    assert np.asarray(stats["mean_distance_px"]).shape == np.asarray(stats["entropy"]).shape == (4, 4)
    assert result.overlay.size == (256, 256)


@pytest.mark.parametrize("ratio, message", [
    (1.0, "from 0 to below 1"), (-0.1, "discard ratio must be a finite number from 0 to 1, got -0.1"),
    (1.5, "got 1.5"), (float("nan"), "got nan"), ("abc", "got 'abc'"),
])
def test_bad_discard_ratio(compute, image, ratio, message):
    with pytest.raises(ValueError, match=message):
        compute.rollout(image, "mean", ratio)


def test_bad_fusion_model_and_image(compute, image):
    with pytest.raises(ValueError, match=r"unknown head fusion 'median'; choose one of \['mean', 'max', 'min'\]"):
        compute.rollout(image, "median", 0)
    with pytest.raises(ValueError, match="unknown model 'clip-tiny-shapes'"):
        compute.rollout(image, "mean", 0, "clip-tiny-shapes")
    with pytest.raises(ValueError, match="no image given"):
        compute.rollout(None, "mean", 0)


@pytest.mark.skipif(available_offline("google/vit-base-patch16-224"), reason="ViT-B/16 is in the local cache")
def test_hub_model_offline_names_the_embedded_model(compute, image, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="not available.*vit-tiny-shapes"):
        compute.capture(image, "google/vit-base-patch16-224")


def test_patch_at_maps_clicks_to_patches(compute):
    assert compute.patch_at(0, 0, (256, 256), (8, 8)) == (0, 0)
    assert compute.patch_at(255, 255, (256, 256), (8, 8)) == (7, 7)
    assert compute.patch_at(32, 31.9, (256, 256), (8, 8)) == (0, 1)  # x=32 starts column 1; y just above row 1
    assert compute.patch_at(300, -5, (256, 256), (8, 8)) == (0, 7)  # clamped
    assert compute.patch_at(100, 200, (256, 256), (14, 14)) == (10, 5)


def test_pick_query_reads_the_click():
    from types import SimpleNamespace

    from spaces.attention_maps import app

    assert app.pick_query([8, 8], SimpleNamespace(index=[40, 200])) == (6, 1)


def test_overlay_draws_heat_and_outlines_the_query(compute, image):
    heat = np.zeros((8, 8))
    heat[1, 2] = 1.0
    plain = compute.overlay(image, np.zeros((8, 8)), size=64, alpha=0.6)
    hot = np.asarray(compute.overlay(image, heat, size=64, alpha=0.6), dtype=float)
    assert not np.array_equal(np.asarray(plain)[8:16, 16:24], hot[8:16, 16:24].astype(np.uint8))
    outlined = np.asarray(compute.overlay(image, heat, size=64, highlight=(5, 5)))
    assert tuple(outlined[40, 44]) == (0, 255, 255)  # the top edge of patch (5, 5)


def test_model_view_undoes_the_processor(compute, image, reference):
    _, x, _ = reference
    view = np.asarray(compute.model_view(x, compute.capture(image).processor), dtype=float)
    expected = np.asarray(image.resize((64, 64), Image.BILINEAR), dtype=float)
    assert np.abs(view - expected).max() <= 1.0
