"""patch_explorer section 7 (issue 23): FLOPs per component, memory, relative position, interpolation mode,
hierarchical patches. Each against an independent computation: explicit shape products, loops, complex
numbers, numpy interpolation written out here, transformers' own ``interpolate_pos_encoding``, and the
closed form of Swin's stages; never the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from shared.models import available_offline, local_path
from spaces.patch_explorer import cost, hierarchy, relative
from spaces.patch_explorer.positions import interpolate_positions

needs_weights = pytest.mark.skipif(not available_offline("vit-tiny-shapes"),
                                   reason="needs the trained shared/weights/vit-tiny-shapes")
SMALL = dict(hidden_size=64, num_layers=2, num_heads=4, mlp_dim=128, image_size=32, patch_size=8)
B16 = dict(hidden_size=768, num_layers=12, num_heads=12, mlp_dim=3072, image_size=224, patch_size=16)


def _params_by_hand(d, layers, m, image, patch, classes=1000) -> int:
    """Every weight and bias of a ViT classifier, tensor by tensor."""
    t = (image // patch) ** 2 + 1
    per_layer = 4 * (d * d + d) + (d * m + m) + (m * d + d) + 2 * 2 * d  # Q K V O, fc1, fc2, two LayerNorms
    return (3 * patch * patch * d + d) + t * d + d + layers * per_layer + 2 * d + (d * classes + classes)


# --------------------------------------------------------------------------------------
#                                   FLOPs per component
# --------------------------------------------------------------------------------------

def test_flops_per_component_for_vit_b16_written_out():
    s = cost.flops(**B16)
    rows = {r["component"]: r for r in s["rows"]}
    n, t, d, m, layers = 196, 197, 768, 3072, 12
    assert rows["patch embedding"]["macs"] == n * 3 * 16 * 16 * d
    assert rows["attention"]["macs"] == layers * (4 * t * d * d + 2 * 12 * t * t * (d // 12))
    assert rows["MLP"]["macs"] == layers * 2 * t * d * m
    assert rows["head"]["macs"] == d * 1000
    assert all(r["flops"] == 2 * r["macs"] for r in s["rows"])
    assert s["params"] == _params_by_hand(d, layers, m, 224, 16) == 86_567_656


# --------------------------------------------------------------------------------------
#                                   Memory
# --------------------------------------------------------------------------------------

def _peak_by_hand(c: dict, batch: int) -> int:
    """Values alive at the inference peak (see tests/unit/test_vit_cost.py): image, attention probabilities,
    and the larger of the attention phase (8·T·D) and the MLP phase (4·T·D + 2·T·M)."""
    t = (c["image_size"] // c["patch_size"]) ** 2 + 1
    d, m, h = c["hidden_size"], c["mlp_dim"], c["num_heads"]
    return batch * (3 * c["image_size"] ** 2 + h * t * t + max(8 * t * d, 4 * t * d + 2 * t * m))


def _saved_values_on_a_real_model(c: dict, batch: int) -> int:
    """Values the forward saves for backward, each storage once by its address, on a real CPU model."""
    from transformers import ViTForImageClassification

    from shared.vit_cost import vit_config

    model = ViTForImageClassification(vit_config({**c, "num_classes": 1000}))
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(x):
        st = x.untyped_storage()
        if st.data_ptr() not in weights:
            storages[st.data_ptr()] = st.nbytes() // x.element_size()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        model(pixel_values=torch.randn(batch, 3, c["image_size"], c["image_size"]))
    return sum(storages.values())


def test_memory_definitions_at_every_precision():
    params = _params_by_hand(64, 2, 128, 32, 8)
    saved = _saved_values_on_a_real_model(SMALL, 3)
    for precision, b in (("fp32", 4), ("bf16", 2), ("fp16", 2), ("int8", 1)):
        s = cost.memory(**SMALL, batch_size=3, precision=precision)
        assert s["params"] == params
        assert s["weights_bytes"] == params * b
        assert s["activation_bytes"] == _peak_by_hand(SMALL, 3) * b
        if precision == "int8":
            assert s["training_bytes"] is None and "int8" in s["training_note"]
        else:  # weights + gradients + Adam's m and v + saved activations
            assert s["training_bytes"] == params * b * 4 + saved * b
    every = cost.memory_all(**SMALL, batch_size=3)
    assert every["bf16"] == cost.memory(**SMALL, batch_size=3, precision="bf16")


def test_fits_on_n_gb():
    s = cost.memory(**B16, batch_size=8, precision="fp32")
    need = s["training_bytes"]
    assert cost.fits(s, need / 1e9)[1]["fits"] is True
    assert cost.fits(s, need / 1e9 * 0.999)[1]["fits"] is False
    assert cost.fits(s, 1e3)[0] == {"what": "inference (weights + activations)", "bytes": s["weights_bytes"] +
                                    s["activation_bytes"], "gb": (s["weights_bytes"] + s["activation_bytes"]) / 1e9,
                                    "fits": True, "capacity_gb": 1e3}
    assert cost.fits(cost.memory(**SMALL, batch_size=1, precision="int8"), 1)[1]["fits"] is None


@pytest.mark.parametrize("change, match", [
    ({"batch_size": 0}, "batch size must be an integer from 1 to 4096, got 0"),
    ({"batch_size": -4}, "batch size must be an integer from 1 to 4096, got -4"),
    ({"batch_size": float("nan")}, "batch size must be an integer"),
    ({"batch_size": "nan"}, "batch size must be an integer"),
    ({"batch_size": 2.5}, "batch size must be an integer"),
    ({"batch_size": 4097}, "batch size must be an integer from 1 to 4096, got 4097"),
    ({"precision": "int4"}, "unknown precision 'int4'; choose one of"),
    ({"hidden_size": 0}, "hidden size must be an integer from 1 to 8192"),
    ({"image_size": -32}, "image size must be an integer"),
    ({"mlp_dim": 12.5}, "mlp dim must be an integer"),
    ({"num_layers": 129}, "num layers must be an integer from 1 to 128"),
])
def test_memory_bad_input(change, match):
    with pytest.raises(ValueError, match=match):
        cost.memory(**{**SMALL, "batch_size": 1, "precision": "fp32", **change})


@pytest.mark.parametrize("gb", [0, -1, float("nan"), "nan", float("inf"), 5000])
def test_fits_bad_capacity(gb):
    with pytest.raises(ValueError, match="GPU memory \\(GB\\) must be a finite number greater than 0 and at most 4096"):
        cost.fits({"inference_bytes": 1, "training_bytes": 1}, gb)


# --------------------------------------------------------------------------------------
#                                   Relative position
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("window", [7, 4])
def test_swin_bias_parameters_against_the_formula(window):
    s = relative.swin_bias_params(window)
    per_block = [(2 * window - 1) ** 2 * h for d, h in zip((2, 2, 6, 2), (3, 6, 12, 24), strict=True) for _ in range(d)]
    assert [math.prod(shape) for _, shape in s["blocks"]] == per_block
    assert s["total"] == sum(per_block) == (2 * window - 1) ** 2 * 138


def test_swin_bias_reads_the_table_by_offset():
    """B[i, j] = table[(Δy + M − 1)·(2M − 1) + Δx + M − 1] for i, j in the window, by loops."""
    m = 4
    s = relative.swin_bias(m, 1)
    table = s["full_table"][:, 1]
    assert np.abs(table).max() > 0  # filled, not transformers' zeros
    for i in range(m * m):
        for j in range(m * m):
            dy, dx = i // m - j // m, i % m - j % m
            assert s["bias"][i, j] == table[(dy + m - 1) * (2 * m - 1) + dx + m - 1]
            assert s["table"][dy + m - 1, dx + m - 1] == s["bias"][i, j]


def test_rope_rotation_is_complex_multiplication():
    rng = np.random.default_rng(0)
    x = rng.normal(size=16)
    out = relative.rope_rotate(x, 3.0, -2.0, 100.0)
    f = 1.0 / 100.0 ** (np.arange(0, 16, 4)[:4] / 16)  # naver-ai/rope-vit compute_axial_cis
    z = (x[0::2] + 1j * x[1::2]) * np.exp(1j * np.concatenate([3.0 * f, -2.0 * f]))
    np.testing.assert_allclose(out[0::2], z.real, atol=1e-12)
    np.testing.assert_allclose(out[1::2], z.imag, atol=1e-12)


def test_rope_score_depends_on_the_offset_only():
    s = relative.rope_similarity(32, 5, 100)
    f = 1.0 / 100.0 ** (np.arange(0, 32, 4) / 32)
    for a, dy in enumerate(range(-4, 5)):
        for b, dx in enumerate(range(-4, 5)):
            expected = (2 / 32) * (np.cos(dx * f).sum() + np.cos(dy * f).sum())
            assert s["map"][a, b] == pytest.approx(expected, abs=1e-12)
    assert s["max_origin_difference"] < 1e-12


@pytest.mark.parametrize("args, match", [
    ((6, 14, 100), "head dimension must be a multiple of 4"),
    ((0, 14, 100), "head dimension must be an integer from 4 to 512, got 0"),
    ((-8, 14, 100), "head dimension must be an integer"),
    ((float("nan"), 14, 100), "head dimension must be an integer"),
    ((16.5, 14, 100), "head dimension must be an integer"),
    ((1024, 14, 100), "head dimension must be an integer from 4 to 512"),
    ((64, 0, 100), "RoPE grid must be an integer from 2 to 32"),
    ((64, 33, 100), "RoPE grid must be an integer from 2 to 32"),
    ((64, 14, 1), "RoPE base θ must be a finite number greater than 1"),
    ((64, 14, "nan"), "RoPE base θ must be a finite number"),
    ((64, 14, 1e7), "RoPE base θ must be a finite number greater than 1 and at most 1000000"),
])
def test_rope_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        relative.rope_similarity(*args)


@pytest.mark.parametrize("window, head, match", [
    (0, 0, "window size M must be an integer from 2 to 16, got 0"), (-3, 0, "window size M must be an integer"),
    (float("nan"), 0, "window size M must be an integer"), (7.5, 0, "window size M must be an integer"),
    (17, 0, "window size M must be an integer from 2 to 16"), (7, 3, "head must be an integer from 0 to 2"),
])
def test_swin_bad_input(window, head, match):
    with pytest.raises(ValueError, match=match):
        relative.swin_bias(window, head)


# --------------------------------------------------------------------------------------
#                                   Interpolation mode
# --------------------------------------------------------------------------------------

def _table(g: int, d: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(1, 1 + g * g, d))).float()


def test_nearest_doubling_repeats_each_row_and_column():
    t = _table(4)
    out = interpolate_positions(t, 8, mode="nearest")[0, 1:].reshape(8, 8, 3).numpy()
    grid = t[0, 1:].reshape(4, 4, 3).numpy()
    np.testing.assert_array_equal(out, np.repeat(np.repeat(grid, 2, axis=0), 2, axis=1))
    torch.testing.assert_close(interpolate_positions(t, 8, mode="nearest")[:, :1], t[:, :1])  # [CLS] kept


def test_bilinear_against_a_loop():
    """Half-pixel centres (align_corners=False): source = (i + 0.5)·g/g' − 0.5, clamped at the border."""
    g, g2 = 4, 6
    t = _table(g, d=2, seed=1)
    grid = t[0, 1:].reshape(g, g, 2).numpy().astype(np.float64)
    out = interpolate_positions(t, g2, mode="bilinear")[0, 1:].reshape(g2, g2, 2).numpy()

    def src(i):
        x = max((i + 0.5) * g / g2 - 0.5, 0.0)
        lo = min(int(math.floor(x)), g - 1)
        return lo, min(lo + 1, g - 1), x - lo

    for i in range(g2):
        y0, y1, wy = src(i)
        for j in range(g2):
            x0, x1, wx = src(j)
            v = ((1 - wy) * ((1 - wx) * grid[y0, x0] + wx * grid[y0, x1])
                 + wy * ((1 - wx) * grid[y1, x0] + wx * grid[y1, x1]))
            np.testing.assert_allclose(out[i, j], v, atol=1e-5)


def test_every_mode_keeps_the_grid_and_refuses_unknown_modes():
    t = _table(5)
    for mode in ("nearest", "bilinear", "bicubic"):
        torch.testing.assert_close(interpolate_positions(t, 5, mode=mode), t)
    with pytest.raises(ValueError, match="unknown interpolation mode 'lanczos'; choose one of"):
        interpolate_positions(t, 7, mode="lanczos")


@needs_weights
def test_bicubic_accuracy_matches_transformers_own_interpolation():
    """transformers' ViT interpolates its table itself with ``interpolate_pos_encoding=True``: the same
    predictions, so the same accuracy, on the fixed test shapes."""
    from shared.data.shapes import ShapesDataset
    from shared.images import to_tensor
    from shared.models import load
    from spaces.patch_explorer import transfer

    model = load("vit-tiny-shapes", device="cpu", attn="eager").model
    rows = transfer.interpolation_accuracy(model, 96, ["bicubic", "nearest"], 30)
    images, labels, _ = ShapesDataset("test", 30, 96).arrays()
    with torch.no_grad():
        pred = model(pixel_values=to_tensor(images), interpolate_pos_encoding=True).logits.argmax(-1).numpy()
    assert rows[0]["accuracy"] == pytest.approx(float((pred == labels).mean()))
    assert [r["mode"] for r in rows] == ["bicubic", "nearest"] and 0 <= rows[1]["accuracy"] <= 1
    with pytest.raises(ValueError, match="image size must be a multiple of the patch size 8"):
        transfer.interpolation_accuracy(model, 100, ["bicubic"], 10)
    with pytest.raises(ValueError, match="unknown interpolation modes"):
        transfer.interpolation_accuracy(model, 96, ["area"], 10)


# --------------------------------------------------------------------------------------
#                                   Hierarchical patches
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("image, patch, dim, window", [(224, 4, 96, 7), (256, 2, 48, 8)])
def test_swin_stages_against_the_closed_form(image, patch, dim, window):
    s = hierarchy.stages(image, patch, dim, window)
    side = image // patch
    for i, r in enumerate(s["rows"]):
        assert (r["side"], r["tokens"], r["width"]) == (side >> i, (side >> i) ** 2, dim << i)
        assert r["windows"] == math.ceil((side >> i) / window) ** 2
    if (image, patch, dim) == (224, 4, 96):  # Swin-T at 224 px (Liu et al., 2021): 56², 28², 14², 7²
        assert [r["tokens"] for r in s["rows"]] == [3136, 784, 196, 49]


@pytest.mark.parametrize("args, match", [
    ((0, 4, 96, 7), "image size must be an integer from 32 to 1024, got 0"),
    ((-224, 4, 96, 7), "image size must be an integer"),
    ((float("nan"), 4, 96, 7), "image size must be an integer"),
    ((224.5, 4, 96, 7), "image size must be an integer"),
    ((2048, 4, 96, 7), "image size must be an integer from 32 to 1024"),
    ((200, 4, 96, 7), "must be a multiple of patch size × 2\\^3 = 32"),
    ((224, 0, 96, 7), "patch size must be an integer from 1 to 32"),
    ((224, 4, 100, 7), "embedding width C must be a multiple of 3"),
    ((224, 4, 0, 7), "embedding width C must be an integer from 3 to 384"),
    ((224, 4, 96, 99), "window size M must be an integer from 2 to 16"),
    ((1024, 1, 96, 7), "stage-1 tokens is more than the cap"),
])
def test_hierarchy_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        hierarchy.stages(*args)


# --------------------------------------------------------------------------------------
#                                   The page's facts
# --------------------------------------------------------------------------------------

@needs_weights
def test_position_table_row_matches_the_shipped_config():
    from spaces.patch_explorer import beyond_handlers as handlers

    _, table, _ = handlers.relative(4, 0, 64, 14, 100, progress=lambda *a, **k: None)  # Swin built once (cached)
    config = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    g = config["image_size"] // config["patch_size"]
    row = table[table["encoding"].str.contains("vit-tiny-shapes")].iloc[0]
    assert row["parameters (counted)"] == f"{(g * g + 1) * config['hidden_size']:,}"
    assert table.iloc[0]["parameters (counted)"] == f"{197 * 768:,}"
    swin = table[table["encoding"].str.startswith("Swin")].iloc[0]
    assert swin["parameters (counted)"] == f"{49 * 138:,}"
