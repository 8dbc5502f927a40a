"""CNN against ViT: every compute function against an independent computation.

Receptive fields are checked three ways: against the recurrence written out by hand for a plain stack,
against the closed form r = 1 + sum_l (k_l - 1) * prod_{i<l} s_i (Araujo et al., 2019, eq. 2) over layer
lists typed here from the papers' architectures, and empirically: the input pixels with a nonzero gradient
for the centre unit of the final layer of a real (random-weight) model span exactly ``final_rf``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from shared.models import available_offline, local_path
from spaces.cnn_vs_vit import compute, options

needs_models = pytest.mark.skipif(not (available_offline("vit-tiny-shapes") and available_offline("cnn-tiny-shapes")),
                                  reason="both embedded models are needed")


def closed_form(layers: list[tuple[int, int]]) -> int:
    """r = 1 + sum_l (k_l - 1) prod_{i<l} s_i."""
    r, j = 1, 1
    for k, s in layers:
        r += (k - 1) * j
        j *= s
    return r


# Main paths typed from the architectures (kernel, stride), not read from any model object.
ALEXNET = [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)]  # torchvision's AlexNet features
VGG16 = ([(3, 1)] * 2 + [(2, 2)]) * 2 + ([(3, 1)] * 3 + [(2, 2)]) * 3  # Simonyan & Zisserman, config D


def resnet_path(blocks: list[int], bottleneck: bool, stride_on_3x3: bool) -> list[tuple[int, int]]:
    """Stem (7x7/2, max-pool 3x3/2), then per stage the main path of each block; the first block of
    stages 2-4 strides 2, on its 3x3 (torchvision, v1.5) or its first 1x1 (v1, TF-slim)."""
    path = [(7, 2), (3, 2)]
    for stage, n in enumerate(blocks):
        for b in range(n):
            s = 2 if stage > 0 and b == 0 else 1
            if bottleneck:
                path += [(1, 1 if stride_on_3x3 else s), (3, s if stride_on_3x3 else 1), (1, 1)]
            else:
                path += [(3, s), (3, 1)]
    return path


# --------------------------------------------------------------------------------------
#                                   Receptive field
# --------------------------------------------------------------------------------------

def test_walk_of_a_plain_stack_written_out_by_hand():
    stack = nn.Sequential(nn.Conv2d(3, 4, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, dilation=2),
                          nn.AvgPool2d(3, stride=1))
    rows = compute.walk(stack.named_children())
    # conv 5/2: r 5, j 2; pool 2/2: r 5 + 1*2 = 7, j 4; conv 3 dilated 2 = k 5: r 7 + 4*4 = 23; avg 3/1: 23 + 2*4 = 31
    assert [(r["kernel"], r["stride"], r["jump"], r["rf"]) for r in rows] == [(5, 2, 2, 5), (2, 2, 4, 7), (5, 1, 4, 23),
                                                                           (3, 1, 4, 31)]
    n = 7
    assert compute.walk(nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(n)]).named_children())[-1]["rf"] \
        == 1 + 2 * n


@pytest.mark.parametrize("arch, path, final", [
    ("alexnet", ALEXNET, 195),  # 195 is also TF-slim alexnet_v2's figure (google-research/receptive_field)
    ("vgg16", VGG16, 212),  # and vgg_16's
    ("resnet18", resnet_path([2, 2, 2, 2], False, True), 435),
    ("resnet50", resnet_path([3, 4, 6, 3], True, True), 427),
])
def test_final_rf_against_the_closed_form_of_the_typed_architecture(arch, path, final):
    s = compute.receptive_field(arch)
    assert [(r["kernel"], r["stride"]) for r in s["layers"]] == path
    assert s["final_rf"] == closed_form(path) == final
    assert s["layers"][-1]["jump"] == math.prod(st for _, st in path) == 32
    assert set(s["layers"][0]) == {"name", "kernel", "stride", "jump", "rf"}


def test_resnet50_with_the_stride_on_the_1x1_gives_the_tf_slim_483():
    s = compute.receptive_field("resnet50")
    assert s["tf_slim_v1_rf"] == closed_form(resnet_path([3, 4, 6, 3], True, False)) == 483 == options.TF_SLIM_RESNET50_RF
    assert s["final_layer"] == "layer4.2.conv3"
    assert compute.receptive_field("alexnet")["final_layer"] == "features.12"  # the last max-pool of features


def _gradient_extent(model: nn.Module, features, size: int) -> tuple[int, int, bool]:
    """Rows and columns spanned by input pixels with a nonzero gradient for the centre unit, and whether the
    span stays off the image border (so zero padding did not clip it)."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size, requires_grad=True)
    fmap = features(model, x)
    h, w = fmap.shape[-2:]
    fmap[0, :, h // 2, w // 2].sum().backward()
    g = x.grad.abs().sum((0, 1))
    rows, cols = torch.nonzero(g.sum(1)).flatten(), torch.nonzero(g.sum(0)).flatten()
    inside = rows.min() > 0 and cols.min() > 0 and rows.max() < size - 1 and cols.max() < size - 1
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1), bool(inside)


def _resnet_features(m, x):
    return m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))


@pytest.mark.slow
@pytest.mark.parametrize("arch, size", [("alexnet", 320), ("vgg16", 256), ("resnet18", 576), ("resnet50", 576)])
def test_final_rf_equals_the_span_of_nonzero_input_gradients(arch, size):
    from shared.cnn_models import torchvision_models

    model = getattr(torchvision_models(), arch)(weights=None).eval()  # real random weights, not meta
    features = (lambda m, x: m.features(x)) if arch in ("alexnet", "vgg16") else _resnet_features
    rows, cols, inside = _gradient_extent(model, features, size)
    assert inside, "pick a larger input: the receptive field reached the border"
    assert rows == cols == compute.receptive_field(arch)["final_rf"]


@needs_models
def test_tiny_cnn_rf_from_its_shipped_config_and_by_gradient():
    from transformers import ResNetConfig, ResNetForImageClassification

    c = json.loads((local_path("cnn-tiny-shapes") / "config.json").read_text())
    s = compute.receptive_field("cnn-tiny-shapes")
    blocks_path = [(7, 2), (3, 2)]
    for stage, n in enumerate(c["depths"]):
        for b in range(n):
            blocks_path += [(3, 2 if stage > 0 and b == 0 else 1), (3, 1)]
    assert s["final_rf"] == closed_form(blocks_path)
    torch.manual_seed(0)
    model = ResNetForImageClassification(ResNetConfig.from_dict(c)).eval()
    rows, cols, inside = _gradient_extent(model, lambda m, x: m.resnet(pixel_values=x).last_hidden_state, 320)
    assert inside and rows == cols == s["final_rf"]


def test_vit_reach_is_the_whole_image_after_one_layer():
    c = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    reach = compute.vit_reach()
    assert reach["layers"][0]["rf"] == c["patch_size"]
    assert all(r["rf"] == c["image_size"] for r in reach["layers"][1:])
    assert len(reach["layers"]) == 1 + c["num_hidden_layers"]


@pytest.mark.parametrize("bad", ["resnet101", "", None, 3, ["alexnet"]])
def test_unknown_architecture_is_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match="unknown architecture .* choose one of .*alexnet"):
        compute.receptive_field(bad)


# --------------------------------------------------------------------------------------
#                                   Transformations
# --------------------------------------------------------------------------------------

def test_shift_moves_right_and_down_and_repeats_the_border():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    y = compute.shift(x, 2).numpy()
    a = x.numpy()
    expected = np.empty_like(a)
    for i in range(6):
        for j in range(6):
            expected[:, :, i, j] = a[:, :, max(i - 2, 0), max(j - 2, 0)]
    np.testing.assert_array_equal(y, expected)


def test_rotate_by_quarter_turns_and_zero():
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(compute.rotate(x, 0), x)
    torch.testing.assert_close(compute.rotate(x, 90), torch.rot90(x, 1, dims=(2, 3)))  # counter-clockwise
    torch.testing.assert_close(compute.rotate(x, 180), torch.rot90(x, 2, dims=(2, 3)))


def test_patch_shuffle_is_a_fixed_permutation_of_the_tiles():
    x = torch.rand(2, 3, 16, 16)
    y = compute.shuffle_patches(x, 4)

    def tiles(t):
        return sorted(t[0, :, i:i + 4, j:j + 4].numpy().tobytes() for i in range(0, 16, 4) for j in range(0, 16, 4))

    assert tiles(x) == tiles(y) and not torch.equal(x, y)
    torch.testing.assert_close(y, compute.shuffle_patches(x, 4))  # deterministic
    # both images of the batch get the same order: tile (0, 0) of the output is the same tile of each input
    src = [(i, j) for i in range(0, 16, 4) for j in range(0, 16, 4)
           if torch.equal(x[0, :, i:i + 4, j:j + 4], y[0, :, :4, :4])]
    assert len(src) == 1 and torch.equal(x[1, :, src[0][0]:src[0][0] + 4, src[0][1]:src[0][1] + 4], y[1, :, :4, :4])


def test_mass_radii_of_a_point_and_of_a_uniform_map():
    point = np.zeros((31, 31))
    point[10, 20] = 1.0
    assert compute.mass_radii(point) == {"r50": 0.0, "r90": 0.0}
    uniform = np.ones((200, 200))
    r = compute.mass_radii(uniform)  # share inside radius r of the centre is pi r^2 / 200^2 (r < 100)
    assert r["r50"] == pytest.approx(math.sqrt(0.5 * 200**2 / math.pi), abs=1.0)
    assert r["r90"] == pytest.approx(math.sqrt(0.9 * 200**2 / math.pi), abs=1.5) or r["r90"] > 100


# --------------------------------------------------------------------------------------
#                                   The embedded models
# --------------------------------------------------------------------------------------

@needs_models
@pytest.mark.parametrize("name", ["vit-tiny-shapes", "cnn-tiny-shapes"])
def test_input_gradient_matches_finite_differences(name):
    model = compute._model(name)
    x, _ = compute.test_images(2, 64)
    # a little noise: flat backgrounds give exactly tied maxima in the CNN's max-pool, where a finite
    # difference and the (sub)gradient legitimately differ
    x = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).double()
    model = model.double()
    # the CNN is piecewise linear (a small step stays off the ReLU kinks); the ViT keeps some float32 work
    eps = 1e-6 if name == "cnn-tiny-shapes" else 1e-2  # eager attention softmaxes in float32
    try:
        grad = compute.input_gradient(name, model, x)  # (2, 64, 64), |.| summed over colours
        with torch.no_grad():
            for (b, i, j) in [(0, 32, 32), (1, 20, 40), (0, 5, 60)]:
                total = 0.0
                for ch in range(3):
                    e = torch.zeros_like(x)
                    e[b, ch, i, j] = eps
                    d = (compute.centre_output(name, model, x + e)[b] - compute.centre_output(name, model, x - e)[b]) / (2 * eps)
                    total += abs(float(d))
                assert grad[b, i, j] == pytest.approx(total, rel=1e-2, abs=1e-6)
    finally:
        model.float()


@needs_models
def test_effective_rf_maps_and_stats():
    r = compute.effective_rf(2)
    for name in ("vit-tiny-shapes", "cnn-tiny-shapes"):
        m = r.maps[name]
        assert m.shape == (64, 64) and m.max() == pytest.approx(1.0) and m.min() >= 0
        assert r.stats[name]["r50"] <= r.stats[name]["r90"]
        # shares recomputed from the normalised map (normalising does not change a share)
        assert r.stats[name]["share_in_centre_patch"] == pytest.approx(m[32:40, 32:40].sum() / m.sum(), abs=1e-4)
        assert r.stats[name]["share_outside_centre_16px"] == pytest.approx(1 - m[24:40, 24:40].sum() / m.sum(), abs=1e-4)


@needs_models
def test_as_is_accuracy_equals_the_models_own_processor_on_pil_images():
    from shared.data.shapes import ShapesDataset
    from shared.models import load

    n = 40
    b = compute.inductive_bias(n, 4, 30)
    ds = ShapesDataset("test", n, 64)
    for name in ("vit-tiny-shapes", "cnn-tiny-shapes"):
        model, processor = load(name, device="cpu")
        pixels = processor(images=[ds[i][0] for i in range(n)], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            pred = model(pixel_values=pixels).logits.argmax(-1).numpy()
        expected = float(np.mean(pred == np.array([ds[i][1] for i in range(n)])))
        assert b["rows"][0]["condition"] == "as is" and b["rows"][0][name] == pytest.approx(expected, abs=1 / n)
    assert [r["condition"].split()[0] for r in b["rows"]] == ["as", "shifted", "rotated", "rotated", "8-px"]


@pytest.mark.parametrize("args, match", [
    ((10, 4, 30), "number of test images must be an integer from 20 to 2000, got 10"),
    ((100, 0, 30), "shift"),
    ((100, 4, 400), "rotation angle"),
    ((100, 4.5, 30), "shift"),
    ((100, 4, "nan"), "rotation angle"),
])
def test_bad_bias_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        compute.inductive_bias(*args)


@pytest.mark.parametrize("bad", [0, 65, 2.5, "many", None])
def test_bad_erf_inputs(bad):
    with pytest.raises(ValueError, match="number of images must be an integer from 1 to 64"):
        compute.effective_rf(bad)


# --------------------------------------------------------------------------------------
#                                   Facts on the page
# --------------------------------------------------------------------------------------

@needs_models
def test_page_facts_match_the_shipped_files():
    from spaces.cnn_vs_vit import app

    vm = json.loads((local_path("vit-tiny-shapes") / "metrics.json").read_text())
    cm = json.loads((local_path("cnn-tiny-shapes") / "metrics.json").read_text())
    text = app._models_line(options.facts())
    assert f"{vm['parameters']:,} parameters" in text and f"{cm['parameters']:,} parameters" in text
    assert f"{vm['accuracy']:.1%}" in text and f"{cm['accuracy']:.1%}" in text
    assert f"{vm['steps_trained']:,} steps" in text and f"{cm['steps_trained']:,} steps" in text
    # and the parameter count in metrics.json is the loaded model's
    from shared.models import load

    assert sum(p.numel() for p in load("cnn-tiny-shapes", device="cpu").model.parameters()) == cm["parameters"]
