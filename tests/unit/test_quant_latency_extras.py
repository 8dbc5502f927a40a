"""quant_latency, issue 23: the GPU path, int4 weights, memory by precision, latency against resolution,
efficient architectures and the control-rate readout, each against an independent computation (closed-form
parameter and MAC counts written out here, the torchao tensors inspected here, torch's own interpolation,
published figures, plain arithmetic), and every new bad input."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from shared.models import available_offline
from spaces.quant_latency import compute, options, text, views
from spaces.quant_latency.subjects import ModelUnderTest

needs_weights = pytest.mark.skipif(not available_offline("vit-tiny-shapes"),
                                   reason="needs the trained shared/weights/vit-tiny-shapes")


# --------------------------------------------------------------------------------------
#                        Closed-form counts, written out here
# --------------------------------------------------------------------------------------

def vit_params(D: int, L: int, M: int, P: int, image: int, classes: int) -> int:
    """ViTForImageClassification: patch conv (with bias), class token, position table, L blocks (q, k, v, o
    with biases; 2 LayerNorms; MLP D->M->D with biases), final LayerNorm, classifier."""
    n = (image // P) ** 2
    block = 4 * (D * D + D) + 2 * 2 * D + (D * M + M) + (M * D + D)
    return (3 * P * P * D + D) + D + (n + 1) * D + L * block + 2 * D + (D * classes + classes)


def vit_macs(D: int, L: int, M: int, P: int, side: int, classes: int) -> int:
    """Multiply-accumulates of one image: patch embedding, per block q/k/v/o projections (4 N D^2), scores and
    weighted values (2 N^2 D), MLP (2 N D M); the classifier on the class token."""
    patches = (side // P) ** 2
    n = patches + 1
    return patches * 3 * P * P * D + L * (4 * n * D * D + 2 * n * n * D + 2 * n * D * M) + D * classes


def llava_params() -> int:
    """LLaVA-1.5-7B as transformers.LlavaConfig() defaults: CLIP ViT-L/14-336 vision tower (patch conv without
    bias, class token, positions, pre- and post-LayerNorm, 24 blocks), a 2-layer MLP projector 1024->4096->4096,
    Llama 7B (embeddings 32000x4096, 32 blocks of q/k/v/o without bias + SwiGLU 4096->11008 + 2 RMSNorms,
    final RMSNorm, untied lm_head)."""
    Dv, Lv, Mv, P, side = 1024, 24, 4096, 14, 336
    vision = (3 * P * P * Dv + Dv + ((side // P) ** 2 + 1) * Dv + 2 * Dv
              + Lv * (4 * (Dv * Dv + Dv) + 4 * Dv + Dv * Mv + Mv + Mv * Dv + Dv) + 2 * Dv)
    D, L, inter, vocab = 4096, 32, 11008, 32000
    projector = Dv * D + D + D * D + D
    language = vocab * D + L * (4 * D * D + 3 * D * inter + 2 * D) + D + vocab * D
    return vision + projector + language


# --------------------------------------------------------------------------------------
#                                 Memory by precision
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def memory_24():
    return compute.memory_table(24, None)


def test_parameter_counts_match_closed_forms_and_the_paper(memory_24):
    by = {(r["model"], r["precision"]): r for r in memory_24["rows"]}
    for name, c in options.LARGE_VITS.items():
        expected = vit_params(c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["patch_size"],
                              c["image_size"], c["num_labels"])
        assert by[(name, "fp32")]["params"] == expected, name
        # Dosovitskiy et al. (2021), Table 1 prints 86M / 307M / 632M; ours within 1.5% (the paper rounds and
        # does not state its head)
        assert expected / 1e6 == pytest.approx(options.PAPER_PARAMS_M[name][0], rel=0.015), name
    assert by[(options.LLAVA_7B, "fp32")]["params"] == llava_params()
    assert 7.0e9 < llava_params() < 7.1e9  # a "7B" model


def test_weights_bytes_and_fits_by_hand(memory_24):
    bits = {"fp32": 32, "bf16": 16, "fp16": 16, "int8": 8, "int4": 4}
    assert len(memory_24["rows"]) == len(options.LARGE_MODELS) * len(bits)
    for r in memory_24["rows"]:
        assert r["weights_bytes"] == r["params"] * bits[r["precision"]] / 8
        assert r["fits"] is (r["params"] * bits[r["precision"]] / 8 <= 24e9)
    by = {(r["model"], r["precision"]): r for r in memory_24["rows"]}
    # 7.06e9 params: fp32 28.3 GB and bf16 14.1 GB on a 24 GB card -> only the 16-bit and smaller fit
    assert not by[(options.LLAVA_7B, "fp32")]["fits"] and by[(options.LLAVA_7B, "bf16")]["fits"]
    small = compute.memory_table("7.0", ["int8", "int4"])
    assert small["gpu_gb"] == 7.0 and small["precisions"] == ["int8", "int4"]
    llava = {r["precision"]: r["fits"] for r in small["rows"] if r["model"] == options.LLAVA_7B}
    assert llava == {"int8": False, "int4": True}  # 7.06 GB vs 3.53 GB
    table = views.memory_rows(small)
    assert len(table) == len(options.LARGE_MODELS) * 2 and len(table[0]) == len(views.MEMORY_COLUMNS)
    assert "LLaVA-1.5-7B (7,063M params): fits in int4; not in int8" in views.memory_summary(small)


# --------------------------------------------------------------------------------------
#                                 GPU path and int4
# --------------------------------------------------------------------------------------

def _tiny(name: str) -> ModelUnderTest:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=256, num_labels=5)
    return ModelUnderTest(name, ViTForImageClassification(config).eval(), 32, False, None,
                          ViTImageProcessor(size={"height": 32, "width": 32}))


def test_gpu_rows_run_on_cuda_or_are_skipped_with_the_reason():
    mut = _tiny("unit-gpu")
    for variant, dtype in (("cuda_fp16", torch.float16), ("cuda_bf16", torch.bfloat16)):
        if not torch.cuda.is_available():
            with pytest.raises(compute.VariantUnavailable, match=r"torch\.cuda\.is_available\(\) is False"):
                compute.prepare(mut, variant)
            continue
        runner = compute.prepare(mut, variant)  # on a GPU machine: the real thing, checked against fp32
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            ref = mut.model(pixel_values=x).logits
        out = runner.forward(x)
        assert out.device.type == "cpu" and out.dtype == torch.float32 and (out - ref).abs().max() < 0.1
        assert next(runner.module.parameters()).dtype == dtype


def test_int4_weight_only_runs_or_shows_torchaos_own_exception():
    from torchao.quantization import Int4WeightOnlyConfig, quantize_

    mut = _tiny("unit-int4")
    try:  # independent: ask torchao directly, on a fresh copy of a linear layer
        quantize_(torch.nn.Sequential(torch.nn.Linear(128, 128)), Int4WeightOnlyConfig(group_size=128))
        direct = None
    except Exception as err:
        direct = f"{type(err).__name__}: {err}"
    if direct is None:
        assert compute.prepare(mut, "int4_weight_only").forward(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    else:
        with pytest.raises(compute.VariantUnavailable) as info:
            compute.prepare(mut, "int4_weight_only")
        assert direct in str(info.value)


@pytest.mark.parametrize("variant", ["int4_weight_intx", "int8_act_int4_weight"])
def test_intx_int4_weights_are_int4_values_in_groups(variant):
    """Every linear weight holds integers in [-8, 7] with one scale per 32 inputs, and dequantizes to within
    half a step of the fp32 weight; the logits differ from fp32 but stay close."""
    mut = _tiny(f"unit-{variant}")
    runner = compute.prepare(mut, variant)
    fp32 = {n: m.weight.detach() for n, m in mut.model.named_modules() if isinstance(m, torch.nn.Linear)}
    quantized = {n: m.weight for n, m in runner.module.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(quantized) == set(fp32) and len(fp32) == 13
    for name, w in quantized.items():
        q = w.qdata.to(torch.int32)
        assert q.min() >= -8 and q.max() <= 7, name
        out_f, in_f = fp32[name].shape
        assert tuple(w.scale.shape) == (out_f, in_f // options.INT4_GROUP), name
        scale = w.scale.float().repeat_interleave(options.INT4_GROUP, dim=1)  # (out, in)
        zero = w.zero_point.float().repeat_interleave(options.INT4_GROUP, dim=1)
        dequant = (q.float() - zero) * scale
        assert ((dequant - fp32[name]).abs() <= scale / 2 + 1e-6).all(), name
    assert runner.weight_storage == {"int4 (in int8 bytes)": 13}
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = mut.model(pixel_values=x).logits
    out = runner.forward(x)
    assert not torch.equal(out, ref) and (out - ref).abs().max().item() < 0.3


# --------------------------------------------------------------------------------------
#                          Latency against input resolution
# --------------------------------------------------------------------------------------

def test_resolutions_by_hand():
    assert compute.resolutions(256, 4, 8) == [64, 128, 192, 256]
    assert compute.resolutions(448, 3, 16) == [16 * 9, 16 * 18, 448]  # grid 28: floor(28/3)=9, floor(56/3)=18
    assert compute.resolutions(16, 2, 8) == [8, 16]
    with pytest.raises(ValueError, match="multiple of the model's patch size 16, got 100"):
        compute.resolutions(100, 2, 16)
    with pytest.raises(ValueError, match="at least 64"):
        compute.resolutions(32, 4, 16)


def test_macs_match_the_closed_form_at_several_sides():
    from transformers import ViTConfig, ViTForImageClassification

    D, L, M, P, classes = 64, 2, 128, 8, 5
    with torch.device("meta"):
        model = ViTForImageClassification(ViTConfig(hidden_size=D, num_hidden_layers=L, num_attention_heads=4,
                                                    intermediate_size=M, patch_size=P, image_size=32,
                                                    num_labels=classes))
    for side in (32, 64, 96):
        got = compute.count_macs(model, (1, 3, side, side), interpolate_pos_encoding=True)
        assert got == vit_macs(D, L, M, P, side, classes), side


def test_interpolated_position_embeddings_are_torch_bicubic():
    """What 'interpolated position embeddings' means: at twice the side, the model adds the (1+16x16) table
    that F.interpolate(bicubic) makes of its own 8x8 grid, which we rebuild here."""
    import torch.nn.functional as F

    model = _tiny("unit-interp").model
    emb = model.vit.embeddings
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        got = emb(x, interpolate_pos_encoding=True)
        pos = emb.position_embeddings  # (1, 1 + 4*4, D) for 32 px, patch 8
        grid = pos[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
        big = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 64, -1)
        patches = emb.patch_embeddings.projection(x).flatten(2).transpose(1, 2)  # (1, 64, D)
        expected = torch.cat([emb.cls_token + pos[:, :1], patches + big], dim=1)
    torch.testing.assert_close(got, expected)


@needs_weights
def test_resolution_sweep_on_the_embedded_model():
    import json

    from shared.models import local_path

    config = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    D, L, M, P = (config[k] for k in ("hidden_size", "num_hidden_layers", "intermediate_size", "patch_size"))
    result = compute.resolution_sweep("vit-tiny-shapes", 2 * config["image_size"], 2, 1)
    assert [r["side"] for r in result["rows"]] == [config["image_size"], 2 * config["image_size"]]
    assert result["baseline_side"] == config["image_size"] == result["native_side"]
    for r in result["rows"]:
        assert r["tokens"] == (r["side"] // P) ** 2 + 1
        assert r["macs"] == vit_macs(D, L, M, P, r["side"], len(config["id2label"]))
        assert r["median_ms"] > 0 and len(r["samples_ms"]) == 1
        assert r["latency_ratio"] == pytest.approx(r["median_ms"] / result["rows"][0]["median_ms"])
        assert r["ms_per_gmac"] == pytest.approx(r["median_ms"] * 1e9 / r["macs"])
    assert not compute.MEASURE_LOCK.locked()
    assert len(views.sweep_rows(result)) == 2


# --------------------------------------------------------------------------------------
#                          Efficient architectures beside the ViT
# --------------------------------------------------------------------------------------

def test_architectures_params_and_macs():
    result = compute.architectures(["ViT-Ti/16", "MobileViT-XXS"], 64, 1)
    by = {r["architecture"]: r for r in result["rows"]}
    # ViT-Ti/16 (Touvron et al., 2021: width 192, 12 layers, 3 heads, MLP 768), at 64 px, by the closed forms
    assert by["ViT-Ti/16"]["params"] == vit_params(192, 12, 768, 16, 64, 1000)
    assert by["ViT-Ti/16"]["macs"] == vit_macs(192, 12, 768, 16, 64, 1000)
    assert by["MobileViT-XXS"]["macs"] > 0 and by["MobileViT-XXS"]["family"] == "mobilevit"
    fastest = min(r["median_ms"] for r in result["rows"])
    assert all(r["vs_fastest"] == pytest.approx(r["median_ms"] / fastest) for r in result["rows"])
    assert not compute.MEASURE_LOCK.locked()
    # The timm model cards of the authors' weights: MobileViT-XXS 1.3M and -XS 2.3M params (as the page quotes)
    assert round(by["MobileViT-XXS"]["params"] / 1e6, 1) == 1.3
    from spaces.quant_latency.sweeps import build_architecture

    assert round(sum(p.numel() for p in build_architecture("MobileViT-XS", 64).parameters()) / 1e6, 1) == 2.3
    assert "MobileViT-XS at 2.3M params" in text.ARCH_HELP and "MobileViT-XXS at 1.3M" in text.ARCH_HELP


# --------------------------------------------------------------------------------------
#                                 Control rate
# --------------------------------------------------------------------------------------

def test_control_verdict_by_hand():
    v = compute.control_verdict(20, 40.0, 55.0)  # 50 ms budget
    assert v["budget_ms"] == 50 and v["meets"] and not v["meets_q3"] and v["headroom_ms"] == 10
    assert v["max_rate_hz"] == 25 and v["share_of_budget"] == 0.8
    assert not compute.control_verdict(30, 34.0, 35.0)["meets"]  # 33.3 ms budget


@needs_weights
def test_control_rate_on_the_embedded_model_and_a_missing_gpu():
    result = compute.control_rate("vit-tiny-shapes", "fp32", 30, 3)
    assert result["available"] and len(result["samples_ms"]) == 3 and result["batch_size"] == 1
    assert result["median_ms"] == pytest.approx(statistics.median(result["samples_ms"]))
    assert result["budget_ms"] == pytest.approx(1000 / 30)
    assert result["meets"] is (result["median_ms"] <= 1000 / 30)
    assert "Yes" in views.control_markdown(result) if result["meets"] else "No" in views.control_markdown(result)
    if not torch.cuda.is_available():
        gpu = compute.control_rate("vit-tiny-shapes", "cuda_bf16", 30, 1)
        assert gpu["available"] is False and "torch.cuda.is_available() is False" in gpu["reason"]
        assert "Cannot say" in views.control_markdown(gpu)
    assert not compute.MEASURE_LOCK.locked()


# --------------------------------------------------------------------------------------
#                                 Bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: compute.memory_table(0), r"GPU memory \(GB\) must be a finite number greater than 0"),
    (lambda: compute.memory_table(-8), "greater than 0"),
    (lambda: compute.memory_table(float("nan")), "got nan"),
    (lambda: compute.memory_table("nan"), "got nan"),
    (lambda: compute.memory_table(options.MAX_GPU_GB + 1), "at most 1024, got 1025"),
    (lambda: compute.memory_table(24, ["fp8"]), r"unknown precision \['fp8'\]; choose from"),
    (lambda: compute.memory_table(24, []), "choose at least 1 precision"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 0, 2, 1), r"largest side \(px\) must be an integer from 1 to 512, got 0"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", -64, 2, 1), "from 1 to 512, got -64"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 64.5, 2, 1), "must be an integer"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", float("nan"), 2, 1), "must be an integer"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 520, 2, 1), "got 520"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 60, 2, 1), "multiple of the model's patch size 8, got 60"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 64, 1, 1), r"number of resolutions must be an integer from 2 to 8"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 64, 9, 1), "from 2 to 8, got 9"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 64, 2.5, 1), "number of resolutions must be an integer"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 64, 2, 0), "runs must be an integer from 1 to 20"),
    (lambda: compute.resolution_sweep("vit-tiny-shapes", 64, 2, 21), "from 1 to 20, got 21"),
    (lambda: compute.resolution_sweep("resnet-50", 64, 2, 1), "unknown sweep model"),
    (lambda: compute.architectures(["EfficientViT"], 224, 1), r"unknown architecture \['EfficientViT'\]"),
    (lambda: compute.architectures([], 224, 1), "choose at least 1 architecture"),
    (lambda: compute.architectures(["ViT-Ti/16"], 0, 1), r"image side \(px\) must be an integer from 64 to 512, got 0"),
    (lambda: compute.architectures(["ViT-Ti/16"], -224, 1), "got -224"),
    (lambda: compute.architectures(["ViT-Ti/16"], 224.5, 1), "must be an integer"),
    (lambda: compute.architectures(["ViT-Ti/16"], 544, 1), "got 544"),
    (lambda: compute.architectures(["ViT-Ti/16"], 200, 1), "multiple of 32"),
    (lambda: compute.architectures(["ViT-Ti/16"], 224, 0), "runs must be an integer from 1 to 20"),
    (lambda: compute.architectures(["ViT-Ti/16"], 224, float("nan")), "runs must be an integer"),
    (lambda: compute.control_rate("vit-tiny-shapes", "fp32", 0, 2), r"control rate \(Hz\) must be a finite number greater than 0"),
    (lambda: compute.control_rate("vit-tiny-shapes", "fp32", -10, 2), "greater than 0"),
    (lambda: compute.control_rate("vit-tiny-shapes", "fp32", float("nan"), 2), "got nan"),
    (lambda: compute.control_rate("vit-tiny-shapes", "fp32", 1001, 2), "at most 1000, got 1001"),
    (lambda: compute.control_rate("vit-tiny-shapes", "fp32", 30, 0), "runs must be an integer from 1 to 50"),
    (lambda: compute.control_rate("vit-tiny-shapes", "fp32", 30, 2.5), "runs must be an integer"),
    (lambda: compute.control_rate("vit-tiny-shapes", "fp32", 30, 51), "got 51"),
    (lambda: compute.control_rate("vit-tiny-shapes", "int3", 30, 2), "unknown variant 'int3'"),
])
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
    assert not compute.MEASURE_LOCK.locked()


def test_new_variants_are_described_and_prepared():
    from spaces.quant_latency import variants

    assert set(options.GPU_VARIANTS) | set(options.INT4_VARIANTS) <= set(variants.PREPARE) == set(options.VARIANTS)
    assert math.isclose(options.BYTES_PER_VALUE["int4"] * 8, 4)
