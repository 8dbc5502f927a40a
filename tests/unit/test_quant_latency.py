"""quant_latency compute: statistics, agreement, sizes and every bad input, each against an
independent computation (numpy, plain Python loops, or a model quantized here separately)."""

from __future__ import annotations

import statistics
import sys

import numpy as np
import pytest
import torch

from shared.data.shapes import SHAPES, ShapesDataset
from spaces.quant_latency import compute

# --------------------------------------------------------------------------------------
#                                   Statistics
# --------------------------------------------------------------------------------------

SAMPLES = [
    [5.0],
    [3.0, 1.0],
    [10.0, 2.0, 7.0, 4.0, 100.0],
    [1.5, 2.5, 2.0, 9.0, 3.0, 2.2, 2.1, 8.0],
    list(np.random.default_rng(0).lognormal(3, 0.5, size=37)),
]


@pytest.mark.parametrize("samples", SAMPLES)
def test_median_and_iqr_match_numpy(samples):
    got = compute.summarize(samples)
    q1, q3 = np.percentile(samples, [25, 75])  # numpy's default (linear) method
    assert got["median_ms"] == pytest.approx(statistics.median(samples))
    assert got["q1_ms"] == pytest.approx(q1)
    assert got["q3_ms"] == pytest.approx(q3)
    assert got["iqr_ms"] == pytest.approx(q3 - q1)
    assert got["n"] == len(samples)


def test_quantile_known_values():
    # 1..9: quartiles at positions 2 and 6 of the sorted list -> 3 and 7
    assert compute.quantile(list(range(1, 10)), 0.25) == 3
    assert compute.quantile(list(range(1, 10)), 0.75) == 7
    with pytest.raises(ValueError):
        compute.quantile([], 0.5)


def test_time_forward_counts_warmup_and_runs():
    calls = []
    samples = compute.time_forward(lambda x: calls.append(1), torch.zeros(1), runs=7, warmup=2)
    assert len(samples) == 7 and len(calls) == 9
    assert all(s >= 0 for s in samples)


# --------------------------------------------------------------------------------------
#                                   Agreement
# --------------------------------------------------------------------------------------

def test_top1_agreement_and_logit_diff_against_loops():
    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(50, 5, generator=gen)
    other = ref + 0.8 * torch.randn(50, 5, generator=gen)
    same = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(ref.tolist(), other.tolist(), strict=True))
    assert compute.top1_agreement(ref, other) == pytest.approx(same / 50)
    assert 0 < same < 50  # the example really has disagreements
    worst = max(abs(a - b) for ra, rb in zip(ref.tolist(), other.tolist(), strict=True) for a, b in zip(ra, rb, strict=True))
    assert compute.max_abs_logit_diff(ref, other) == pytest.approx(worst, rel=1e-6)
    with pytest.raises(ValueError):
        compute.top1_agreement(ref, other[:10])


# --------------------------------------------------------------------------------------
#                                   Variants on a small real ViT
# --------------------------------------------------------------------------------------

def _tiny(name: str) -> compute.ModelUnderTest:
    """A real (randomly initialised) 2-layer ViT, big enough that int8 packing matters."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=256, num_labels=5)
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    return compute.ModelUnderTest(name, ViTForImageClassification(config).eval(), 32, False, None, processor)


def test_int8_sizes_are_smaller_than_fp32():
    mut = _tiny("unit-sizes")
    params = sum(p.numel() for p in mut.model.parameters())
    fp32 = compute.prepare(mut, "fp32").size_mb
    assert fp32 == pytest.approx(4 * params / 1e6, rel=0.05)  # 4 bytes a parameter plus pickle overhead
    assert compute.prepare(mut, "bf16").size_mb == pytest.approx(fp32 / 2, rel=0.1)
    for variant in ("int8_dynamic", "int8_weight_only", "int8_dynamic_legacy"):
        assert compute.prepare(mut, variant).size_mb < 0.5 * fp32, variant
    onnx_fp32 = compute.prepare(mut, "onnx_fp32").size_mb
    assert onnx_fp32 == pytest.approx(fp32, rel=0.2)
    assert compute.prepare(mut, "onnx_int8").size_mb < 0.6 * onnx_fp32


def test_quantized_runners_stay_close_to_fp32():
    mut = _tiny("unit-close")
    x = torch.randn(4, 3, 32, 32)
    ref = mut.model(pixel_values=x).logits.detach()
    for variant in compute.VARIANTS:
        out = compute.prepare(mut, variant).forward(x)
        assert out.shape == (4, 5) and out.dtype == torch.float32
        assert (out - ref).abs().max().item() < 0.1, variant  # close, not equal: each variant really runs


def test_unavailable_variant_carries_a_reason(monkeypatch):
    mut = _tiny("unit-no-torchao")
    monkeypatch.setitem(sys.modules, "torchao", None)  # as on a machine without torchao
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(compute.VariantUnavailable, match="torchao"):
        compute.prepare(mut, "int8_weight_only")
    fallback = compute.prepare(mut, "int8_dynamic")  # falls back to torch.ao, and says so
    assert "quantize_dynamic" in fallback.backend and any("fell back" in n for n in fallback.notes)
    row = compute._unavailable_row("int8_weight_only", "torchao is not usable here")
    assert row["available"] is False and row["reason"] and row["median_ms"] is None


# --------------------------------------------------------------------------------------
#                                   compare() on the embedded model
# --------------------------------------------------------------------------------------

def test_compare_accuracy_and_agreement_are_computed():
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from shared.models import resolve

    previous = torch.get_num_threads()
    rows = compute.compare("vit-tiny-shapes", ["fp32", "bf16", "onnx_int8"], batch_size=4, runs=2, threads=1)
    assert torch.get_num_threads() == previous  # restored
    by = {r["variant"]: r for r in rows}
    assert [r["variant"] for r in rows] == ["fp32", "bf16", "onnx_int8"]
    assert all(r["available"] and r["median_ms"] > 0 and r["iqr_ms"] >= 0 for r in rows)
    assert by["fp32"]["top1_agreement"] == 1.0 and by["fp32"]["max_abs_logit_diff"] == 0.0
    assert by["fp32"]["measured_to"] >= by["fp32"]["measured_from"]
    assert all(r["speedup_vs_fp32"] == pytest.approx(by["fp32"]["median_ms"] / r["median_ms"]) for r in rows)
    assert by["fp32"]["throughput_ips"] == pytest.approx(4 / (by["fp32"]["median_ms"] / 1e3))

    # Independent: load the model afresh, cast to bf16, and compare argmaxes on the same test split.
    n = by["bf16"]["eval_images"]
    path = resolve("vit-tiny-shapes")
    model = AutoModelForImageClassification.from_pretrained(path).eval()
    processor = AutoImageProcessor.from_pretrained(path)
    images, labels, _ = ShapesDataset("test", n, size=processor.size["height"]).arrays()  # the model's input size
    pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = model(pixel_values=pixels).logits.numpy()
        low = model.to(torch.bfloat16)(pixel_values=pixels.bfloat16()).logits.float().numpy()
    truth = np.array([int(model.config.label2id[SHAPES[i]]) for i in labels])
    assert by["fp32"]["accuracy"] == pytest.approx(np.mean(ref.argmax(1) == truth), abs=1e-6)
    assert by["bf16"]["top1_agreement"] == pytest.approx(np.mean(ref.argmax(1) == low.argmax(1)), abs=2 / n)
    assert by["bf16"]["max_abs_logit_diff"] == pytest.approx(np.abs(ref - low).max(), rel=0.25)
    assert by["bf16"]["max_abs_logit_diff"] > 0  # bf16 really differs; nothing is assumed equal
    assert by["onnx_int8"]["top1_agreement"] >= 0.9


def test_random_architecture_reports_no_accuracy():
    # The ViT-B/16 architecture costs seconds per pass; its inputs and checks are tested without timing it.
    assert compute.check_model(compute.VIT_B16_RANDOM_LABEL) == compute.VIT_B16_RANDOM
    config = compute.random_vit_b16().config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size,
            config.patch_size, config.image_size, config.num_labels) == (768, 12, 12, 3072, 16, 224, 1000)
    assert sum(p.numel() for p in compute.random_vit_b16().parameters()) == pytest.approx(86.6e6, rel=0.01)


# --------------------------------------------------------------------------------------
#                                   Bad input
# --------------------------------------------------------------------------------------

GOOD = {"model": compute.VIT_B16_RANDOM, "variants": ["fp32"], "batch_size": 2, "runs": 1, "threads": 1}


@pytest.mark.parametrize("change, message", [
    ({"model": "resnet-50"}, "choose one of"),
    ({"variants": ["fp32", "int4"]}, "choose from"),
    ({"variants": []}, "at least one variant"),
    ({"variants": "fp32"}, "at least one variant"),
    ({"batch_size": 0}, "from 1 to 64"),
    ({"batch_size": compute.MAX_BATCH + 1}, "from 1 to 64"),
    ({"batch_size": 2.5}, "integer"),
    ({"runs": 0}, "from 1 to 50"),
    ({"runs": compute.MAX_RUNS + 1}, "from 1 to 50"),
    ({"runs": True}, "integer"),
    ({"threads": 0}, "threads"),
    ({"threads": compute.MAX_THREADS + 1}, "threads"),
])
def test_bad_input_is_a_clear_value_error(change, message):
    with pytest.raises(ValueError, match=message):
        compute.compare(**{**GOOD, **change})
    assert not compute.MEASURE_LOCK.locked()  # validation never leaves the lock held


def test_int8_expectation_depends_on_vnni():
    assert "1.0" in compute.int8_expectation({"AVX2": True})
    assert "VNNI" in compute.int8_expectation({"AVX2": True, "AVX-512 VNNI": True})
    assert "AMX" in compute.int8_expectation({"AVX2": True, "AMX int8": True, "AVX-512 VNNI": True})
