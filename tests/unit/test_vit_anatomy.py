"""ViT anatomy: every compute function against an independent computation.

Expected counts are written out here from the architecture (tensor shapes, matrix products), not taken
from the code under test; ViT-B/16 at 224 must give the issue's 86,567,656 parameters and 17.56 GMACs.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shared.data.shapes import sample_image
from shared.models import available_offline, load, local_path
from spaces.vit_anatomy import compute, options

needs_tiny = pytest.mark.skipif(not available_offline("vit-tiny-shapes"), reason="vit-tiny-shapes not trained")

B16 = dict(hidden_size=768, num_layers=12, num_heads=12, mlp_dim=3072, image_size=224, patch_size=16,
           num_classes=1000)


def shapes_of(d: int, layers: int, mlp: int, image: int, patch: int, classes: int) -> dict[str, list[tuple]]:
    """Every parameter tensor of a ViT classifier, written out by component."""
    n = (image // patch) ** 2
    block_attn = [(d, d), (d,)] * 4  # q, k, v, o
    block_mlp = [(mlp, d), (mlp,), (d, mlp), (d,)]
    return {
        "patch embedding": [(d, 3, patch, patch), (d,)],
        "position + [CLS]": [(1, 1, d), (1, n + 1, d)],
        "attention": block_attn * layers,
        "MLP": block_mlp * layers,
        "norms": [(d,), (d,), (d,), (d,)] * layers + [(d,), (d,)],
        "head": [(classes, d), (classes,)],
    }


def count(shapes: list[tuple]) -> int:
    return sum(math.prod(s) for s in shapes)


# --------------------------------------------------------------------------------------
#                                   Parameters and MACs
# --------------------------------------------------------------------------------------

def test_vit_b16_matches_the_issue_and_the_written_out_shapes():
    s = compute.cost(**B16)
    shapes = shapes_of(768, 12, 3072, 224, 16, 1000)
    assert s["params"] == 86_567_656 == sum(count(v) for v in shapes.values())
    assert s["breakdown"] == {k: count(v) for k, v in shapes.items()}
    assert round(s["macs"] / 1e9, 2) == 17.56
    assert s["tokens"] == 197 and s["patches"] == 196


def _macs_by_op(d, layers, mlp, image, patch, classes, heads):
    """MACs of one forward, product by product: conv patch embedding, Q/K/V/O, QKᵀ and A·V per head, fc1, fc2, head."""
    n = (image // patch) ** 2
    t = n + 1
    hd = d // heads
    conv = n * d * 3 * patch * patch
    per_layer = 4 * (t * d * d) + heads * (t * t * hd) + heads * (t * t * hd) + t * d * mlp + t * mlp * d
    return conv + layers * per_layer + d * classes


@pytest.mark.parametrize("name", list(options.PRESETS))
def test_every_preset_against_shapes_and_product_sums(name):
    c = compute.preset(name)
    s = compute.cost(**c)
    shapes = shapes_of(c["hidden_size"], c["num_layers"], c["mlp_dim"], 224, c["patch_size"], 1000)
    assert s["params"] == sum(count(v) for v in shapes.values())
    assert s["macs"] == _macs_by_op(c["hidden_size"], c["num_layers"], c["mlp_dim"], 224, c["patch_size"], 1000,
                                    c["num_heads"])
    assert sum(s["macs_breakdown"].values()) == s["macs"]
    assert (s["hand_params"], s["hand_macs"]) == (s["params"], s["macs"])  # the page's formula agrees


def test_paper_parameter_counts_round_to_the_counted_ones():
    for name, (millions, _) in options.PAPER_PARAMS_M.items():
        counted = compute.cost(**compute.preset(name))["params"] / 1e6
        # the papers print whole millions (DeiT-Ti's 5 M is 5.7 M counted); within 1 M or 2 %
        assert abs(counted - millions) < max(1.0, 0.02 * millions), (name, counted, millions)


def test_macs_against_hooks_on_a_real_small_model():
    """A real (CPU, random weights) model: MACs of every Linear and Conv2d from hooks, plus the attention products."""
    c = dict(hidden_size=64, num_layers=2, num_heads=4, mlp_dim=128, image_size=32, patch_size=8, num_classes=10)
    from transformers import ViTForImageClassification

    model = ViTForImageClassification(compute.vit_config(c)).eval()
    macs = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Linear):
            macs.append(output.numel() * module.in_features)
        elif isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size
            macs.append(output.numel() * module.in_channels * k[0] * k[1])

    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(pixel_values=torch.randn(1, 3, 32, 32))
    t, hd = 17, 16
    attention_products = 2 * c["num_layers"] * c["num_heads"] * t * t * hd
    assert compute.cost(**c)["macs"] == sum(macs) + attention_products
    assert sum(p.numel() for p in model.parameters()) == compute.cost(**c)["params"]


def test_activation_memory_scales_with_batch_and_matches_real_storages():
    c = dict(hidden_size=64, num_layers=2, num_heads=4, mlp_dim=128, image_size=32, patch_size=8, num_classes=10)
    s = compute.cost(**c)
    assert s["activation_mb_batch64"] == pytest.approx(64 * s["activation_mb"], rel=1e-12)
    # the same saved tensors on a real CPU model, each storage counted once by its address
    from transformers import ViTForImageClassification

    model = ViTForImageClassification(compute.vit_config(c))
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in weights:
            storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(pixel_values=torch.randn(1, 3, 32, 32))
    assert s["activation_mb"] * 2**20 == sum(storages.values())
    # at least the input, and each block's input to LN, Q/K/V and fc2 (fp32)
    t, d, m = 17, 64, 128
    assert s["activation_mb"] * 2**20 >= 4 * (3 * 32 * 32 + c["num_layers"] * (2 * t * d + t * m))


def test_huge_and_giant_stay_on_meta_and_fast():
    start = time.perf_counter()
    for name in ("ViT-H/14", "ViT-g/14"):
        s = compute.cost(**compute.preset(name))
        assert s["params"] > 6e8
    assert time.perf_counter() - start < 30
    model = compute.meta_model({**compute.preset("ViT-g/14")})
    assert all(p.device.type == "meta" for p in model.parameters())


# --------------------------------------------------------------------------------------
#                                   Bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, match", [
    ({"num_heads": 7}, "not divisible by the number of heads"),
    ({"image_size": 225}, "not divisible by patch size"),
    ({"patch_size": 448}, "not divisible by patch size"),
    ({"hidden_size": 0}, "hidden size must be an integer from 1 to 8192, got 0"),
    ({"num_layers": -3}, "num layers must be an integer from 1 to 128, got -3"),
    ({"mlp_dim": 2.5}, "mlp dim must be an integer"),
    ({"num_classes": "abc"}, "num classes must be an integer"),
    ({"num_classes": True}, "num classes must be an integer"),
    ({"hidden_size": 10**9}, "hidden size must be an integer from 1 to 8192"),
    ({"image_size": 1024, "patch_size": 4}, "more than the cap of 4,097"),
    ({"hidden_size": 8192, "num_heads": 64, "num_layers": 128, "mlp_dim": 32768}, "more than the cap of 20 B"),
])
def test_bad_configurations_are_refused_clearly(change, match):
    with pytest.raises(ValueError, match=match):
        compute.cost(**{**B16, **change})


def test_integral_floats_and_digit_strings_are_accepted():
    assert compute.cost(**{**B16, "hidden_size": 768.0, "num_classes": "1000"})["params"] == 86_567_656


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'ViT-Z'"):
        compute.preset("ViT-Z")


# --------------------------------------------------------------------------------------
#                                   Forward pass and logit lens
# --------------------------------------------------------------------------------------

@needs_tiny
def test_step_through_reproduces_the_model_and_its_shapes():
    cfg = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    image, _ = sample_image("star", "red", cfg["image_size"], 0)
    st = compute.step_through(image)
    model, processor = load("vit-tiny-shapes", device="cpu", attn="eager")
    with torch.no_grad():
        logits = model(**processor(images=image, return_tensors="pt")).logits[0].numpy()
    np.testing.assert_allclose(st.logits, logits, atol=1e-5)
    d, p, s = cfg["hidden_size"], cfg["patch_size"], cfg["image_size"]
    n = (s // p) ** 2
    shapes = [x.shape for x in st.stages]
    assert shapes[:5] == [(3, s, s), (n, p * p * 3), (n, d), (n + 1, d), (n + 1, d)]
    assert len(st.stages) == 5 + 6 * cfg["num_hidden_layers"] + 2 and shapes[-1] == (len(cfg["id2label"]),)
    assert len(st.lens) == cfg["num_hidden_layers"] + 1
    e = np.exp(logits - logits.max())
    np.testing.assert_allclose(st.lens[-1].probs, e / e.sum(), atol=1e-5)  # last lens = the model's softmax
    x = processor(images=image, return_tensors="pt")["pixel_values"]
    assert st.stages[0].norm == pytest.approx(float(x.norm()), rel=1e-5)
    # patches: the patch at grid (1, 2) is the pixel block rows p..2p, cols 2p..3p, channels last
    g = s // p
    block = x[0, :, p:2 * p, 2 * p:3 * p].permute(1, 2, 0).reshape(-1).numpy()
    np.testing.assert_allclose(st.patches[1 * g + 2], block)


@needs_tiny
def test_embedding_stages_equal_transformers_embeddings():
    model, processor = load("vit-tiny-shapes", device="cpu", attn="eager")
    image, _ = sample_image("circle", "blue", 64, 1)
    x = processor(images=image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = model.vit.embeddings(x)
        tokens = F.conv2d(x, model.vit.embeddings.patch_embeddings.projection.weight,
                          model.vit.embeddings.patch_embeddings.projection.bias, stride=model.config.patch_size)
        tokens = tokens.flatten(2).transpose(1, 2)
        mine = torch.cat([model.vit.embeddings.cls_token, tokens], 1) + model.vit.embeddings.position_embeddings
    torch.testing.assert_close(mine, ref)


# --------------------------------------------------------------------------------------
#                                   Pre-LN against post-LN
# --------------------------------------------------------------------------------------

def _attention_by_hand(layer, x, heads):
    a = layer.attention
    b, t, d = x.shape
    hd = d // heads

    def split(w):
        return F.linear(x, w.weight, w.bias).view(b, t, heads, hd).transpose(1, 2)

    q, k, v = split(a.q_proj), split(a.k_proj), split(a.v_proj)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1)
    return F.linear((att @ v).transpose(1, 2).reshape(b, t, d), a.o_proj.weight, a.o_proj.bias)


def _ln(norm, x):
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _mlp(layer, x):
    return F.linear(F.gelu(F.linear(x, layer.mlp.fc1.weight, layer.mlp.fc1.bias)), layer.mlp.fc2.weight,
                    layer.mlp.fc2.bias)


def test_post_norm_and_pre_norm_blocks_against_the_formulas():
    model = compute.tiny_architecture(2, 0)
    layer = model.vit.layers[0]
    heads = model.config.num_attention_heads
    x = torch.randn(2, 5, model.config.hidden_size)
    with torch.no_grad():
        h = _ln(layer.layernorm_before, x + _attention_by_hand(layer, x, heads))
        post = _ln(layer.layernorm_after, h + _mlp(layer, h))
        h = x + _attention_by_hand(layer, _ln(layer.layernorm_before, x), heads)
        pre = h + _mlp(layer, _ln(layer.layernorm_after, h))
        torch.testing.assert_close(compute.block(layer, x, post_norm=True), post, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(compute.block(layer, x, post_norm=False), pre, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer(x), pre, atol=1e-5, rtol=1e-5)  # transformers' own block is pre-LN


def test_pre_norm_gradients_equal_transformers_own_backward():
    g = compute.grad_norms(3, 5)
    x, y = compute.shapes_batch(options.GRAD_BATCH, options.tiny_config()["image_size"], 5)
    model = compute.tiny_architecture(3, 5)
    model.train()
    model(pixel_values=x, labels=y).loss.backward()
    ref = [math.sqrt(sum(float(p.grad.pow(2).sum()) for p in layer.parameters())) for layer in model.vit.layers]
    np.testing.assert_allclose(g["pre_norm"], ref, rtol=1e-4)
    assert len(g["post_norm"]) == 3 and all(v > 0 for v in g["post_norm"])
    assert compute.grad_norms(3, 5) == g  # deterministic for a seed


@pytest.mark.parametrize("depth, seed, match", [(0, 0, "depth"), (25, 0, "depth"), (2.5, 0, "depth"),
                                                 (2, -1, "seed"), (2, "x", "seed")])
def test_grad_norms_bad_input(depth, seed, match):
    with pytest.raises(ValueError, match=match):
        compute.grad_norms(depth, seed)


# --------------------------------------------------------------------------------------
#                                   Page facts
# --------------------------------------------------------------------------------------

@needs_tiny
def test_page_states_the_shipped_facts():
    from spaces.vit_anatomy import app

    cfg = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    metrics = json.loads((local_path("vit-tiny-shapes") / "metrics.json").read_text())
    text = app._intro(options.tiny_facts())
    g = cfg["image_size"] // cfg["patch_size"]
    for fact in (f"patch {cfg['patch_size']}", f"{g}×{g}", f"width {cfg['hidden_size']}",
                 f"{cfg['num_hidden_layers']} layers", f"{cfg['num_attention_heads']} heads",
                 f"MLP {cfg['intermediate_size']}", f"{metrics['parameters']:,} parameters",
                 f"{metrics['accuracy']:.1%}"):
        assert fact in text, fact
    for author in ("Dosovitskiy", "Touvron", "Zhai", "Xiong"):
        assert author in text + app._published_markdown() + str(options.PRESETS) + app._norms_markdown(
            {"pre_norm": [1, 1], "post_norm": [1, 1], "batch": 1, "seed": 0, "depth": 2, "pre_norm_loss": 1,
             "post_norm_loss": 1})


def test_published_accuracies_are_percentages_with_sources():
    from spaces.vit_anatomy import app

    for _model, pre, _res, acc, src in app.PUBLISHED:
        assert 0 < float(acc) <= 100 and src and pre
