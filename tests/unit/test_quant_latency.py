"""quant_latency: statistics, agreement, sizes, weight storage and every bad input, each against an
independent computation (numpy, plain Python loops, the quantized modules inspected here, or the ONNX
graph read with ``onnx``); and the page: built without heavy imports, stating only facts read from the
shipped weights and from the sources it cites."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch

from shared.data.shapes import SHAPES, ShapesDataset
from shared.models import available_offline, local_path
from spaces.quant_latency import compute, hardware, options, stats, timing, variants
from spaces.quant_latency.subjects import ModelUnderTest, random_vit_b16

ROOT = Path(__file__).resolve().parents[2]
needs_weights = pytest.mark.skipif(not available_offline("vit-tiny-shapes"),
                                   reason="needs the trained shared/weights/vit-tiny-shapes")

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
    got = stats.summarize(samples)
    q1, q3 = np.percentile(samples, [25, 75])  # numpy's default (linear) method
    assert got["median_ms"] == pytest.approx(statistics.median(samples))
    assert got["q1_ms"] == pytest.approx(q1)
    assert got["q3_ms"] == pytest.approx(q3)
    assert got["iqr_ms"] == pytest.approx(q3 - q1)
    assert got["n"] == len(samples)


def test_quantile_known_values():
    # 1..9: quartiles at positions 2 and 6 of the sorted list -> 3 and 7
    assert stats.quantile(list(range(1, 10)), 0.25) == 3
    assert stats.quantile(list(range(1, 10)), 0.75) == 7
    with pytest.raises(ValueError):
        stats.quantile([], 0.5)


def test_time_forward_counts_warmup_and_runs():
    calls = []
    samples = timing.time_forward(lambda x: calls.append(1), torch.zeros(1), runs=7, warmup=2)
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
    assert timing.top1_agreement(ref, other) == pytest.approx(same / 50)
    assert 0 < same < 50  # the example really has disagreements
    worst = max(abs(a - b) for ra, rb in zip(ref.tolist(), other.tolist(), strict=True) for a, b in zip(ra, rb, strict=True))
    assert timing.max_abs_logit_diff(ref, other) == pytest.approx(worst, rel=1e-6)
    with pytest.raises(ValueError):
        timing.top1_agreement(ref, other[:10])


# --------------------------------------------------------------------------------------
#                                   Variants on a small real ViT
# --------------------------------------------------------------------------------------

def _tiny(name: str) -> ModelUnderTest:
    """A real (randomly initialised) 2-layer ViT, big enough that int8 packing matters."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=256, num_labels=5)
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    return ModelUnderTest(name, ViTForImageClassification(config).eval(), 32, False, None, processor)


TINY_LINEARS = 2 * 6 + 1  # per layer q, k, v, attention output, MLP in, MLP out; plus the classifier


def test_every_variant_has_a_preparer():
    assert set(variants.PREPARE) == set(options.VARIANTS)
    assert set(options.QUANTIZED) < set(options.VARIANTS) and set(options.CONTRACT_VARIANTS) <= set(options.VARIANTS)


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


def _torch_linear_storage(module: torch.nn.Module) -> list[torch.dtype]:
    """The dtype each linear layer keeps its weight numbers in, inspected here without the space's helper."""
    found = []
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            w = m.weight
            found.append(w.qdata.dtype if type(w).__name__ == "Int8Tensor" else w.dtype)
        elif type(m).__name__ == "Linear" and type(m).__module__.startswith("torch.ao.nn.quantized.dynamic"):
            q = m.weight()  # torch.ao keeps a packed qint8 weight; unpacked here
            assert q.dtype == torch.qint8
            found.append(q.int_repr().dtype)
    return found


def _onnx_linear_storage(path: Path) -> list[str]:
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(path)).graph
    matrices = {i.name: onnx.TensorProto.DataType.Name(i.data_type) for i in graph.initializer if len(i.dims) == 2}
    return [matrices[name] for node in graph.node if node.op_type in ("MatMul", "Gemm", "MatMulInteger")
            for name in node.input if name in matrices]


def test_quantized_variants_differ_from_fp32_and_store_what_they_claim():
    """Not just "it runs": each quantized variant's logits on the same batch differ from fp32's (close, not
    bit-identical), its linear weights are stored in the dtype it claims, and the table's count agrees."""
    mut = _tiny("unit-storage")
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = mut.model(pixel_values=x).logits
    fp32 = compute.prepare(mut, "fp32")
    assert torch.equal(fp32.forward(x), ref)  # the check below can tell equal from different
    assert _torch_linear_storage(fp32.module) == [torch.float32] * TINY_LINEARS
    assert fp32.weight_storage == {"float32": TINY_LINEARS}

    claimed = {"bf16": torch.bfloat16, "int8_dynamic": torch.int8, "int8_weight_only": torch.int8,
               "int8_dynamic_legacy": torch.int8}
    assert set(claimed) | {"onnx_int8"} == set(options.QUANTIZED)
    for variant, dtype in claimed.items():
        runner = compute.prepare(mut, variant)
        out = runner.forward(x)
        assert out.shape == ref.shape and out.dtype == torch.float32
        assert not torch.equal(out, ref), f"{variant} gives fp32's logits bit for bit"
        assert (out - ref).abs().max().item() < 0.1, variant
        assert _torch_linear_storage(runner.module) == [dtype] * TINY_LINEARS, variant
        assert runner.weight_storage == {str(dtype).removeprefix("torch."): TINY_LINEARS}, variant

    onnx_fp32, onnx_int8 = compute.prepare(mut, "onnx_fp32"), compute.prepare(mut, "onnx_int8")
    assert _onnx_linear_storage(onnx_fp32.onnx_path) == ["FLOAT"] * TINY_LINEARS
    assert _onnx_linear_storage(onnx_int8.onnx_path) == ["INT8"] * TINY_LINEARS
    assert onnx_int8.weight_storage == {"int8": TINY_LINEARS}
    out = onnx_int8.forward(x)
    assert not torch.equal(out, onnx_fp32.forward(x)) and (out - ref).abs().max().item() < 0.1


def test_int8_dynamic_quantizes_activations_per_token_and_legacy_per_batch():
    """The variant descriptions, checked on the first quantized linear layer of each model: rows of very
    different size (1e-2 and 1e2) keep ~1% relative error with a scale per token (torchao), while one scale
    for the whole batch (torch.ao quantize_dynamic) rounds the small row away."""
    assert "per token" in options.VARIANTS["int8_dynamic"] and "per batch" not in options.VARIANTS["int8_dynamic"]
    assert "one scale per batch" in options.VARIANTS["int8_dynamic_legacy"]
    mut = _tiny("unit-tokens")
    first_fp32 = next(m for m in mut.model.modules() if isinstance(m, torch.nn.Linear))
    x = torch.randn(3, first_fp32.in_features, generator=torch.Generator().manual_seed(5))
    x = x * torch.tensor([[1e-2], [1.0], [1e2]])  # three tokens of very different size
    with torch.no_grad():
        ref = first_fp32(x) - first_fp32.bias

    def small_row_error(module: torch.nn.Module) -> float:
        layer = next(m for m in module.modules() if isinstance(m, torch.nn.Linear)
                     or type(m).__module__.startswith("torch.ao.nn.quantized.dynamic"))
        with torch.no_grad():
            y = layer(x) - first_fp32.bias
        return ((y[0] - ref[0]).norm() / ref[0].norm()).item()

    assert small_row_error(compute.prepare(mut, "int8_dynamic").module) < 0.05
    assert small_row_error(compute.prepare(mut, "int8_dynamic_legacy").module) > 0.5


def test_unavailable_variant_carries_a_reason(monkeypatch):
    mut = _tiny("unit-no-torchao")
    monkeypatch.setitem(sys.modules, "torchao", None)  # as on a machine without torchao
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(compute.VariantUnavailable, match="torchao"):
        compute.prepare(mut, "int8_weight_only")
    fallback = compute.prepare(mut, "int8_dynamic")  # falls back to torch.ao, and says so
    assert "quantize_dynamic" in fallback.backend and any("fell back" in n for n in fallback.notes)
    row = compute.unavailable_row("int8_weight_only", "torchao is not usable here")
    assert row["available"] is False and row["reason"] and row["median_ms"] is None


# --------------------------------------------------------------------------------------
#                                   compare() on the embedded model
# --------------------------------------------------------------------------------------

@needs_weights
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
    config = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    linears = config["num_hidden_layers"] * 6 + 1
    assert by["bf16"]["weight_storage"] == {"bfloat16": linears} and by["onnx_int8"]["weight_storage"] == {"int8": linears}

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


def test_random_architecture_is_vit_b16():
    # The ViT-B/16 architecture costs seconds per pass; its sizes are checked without timing it.
    # Dosovitskiy et al. (2021), Table 1: ViT-Base has 12 layers, width 768, MLP 3072, 12 heads, 86M parameters.
    assert compute.check_model(compute.VIT_B16_RANDOM_LABEL) == compute.VIT_B16_RANDOM
    config = random_vit_b16().config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size,
            config.patch_size, config.image_size, config.num_labels) == (768, 12, 12, 3072, 16, 224, 1000)
    assert sum(p.numel() for p in random_vit_b16().parameters()) == pytest.approx(86.6e6, rel=0.01)


# --------------------------------------------------------------------------------------
#                                   Bad input
# --------------------------------------------------------------------------------------

GOOD = {"model": compute.VIT_B16_RANDOM, "variants": ["fp32"], "batch_size": 2, "runs": 1, "threads": 1}


@pytest.mark.parametrize("change, message", [
    ({"model": "resnet-50"}, "choose one of"),
    ({"model": ["vit-tiny-shapes"]}, "unknown model"),
    ({"variants": ["fp32", "int4"]}, r"unknown variant \['int4'\]; choose from"),
    ({"variants": []}, "at least 1 variant"),
    ({"variants": "fp32"}, "variant must be a list"),
    ({"batch_size": 0}, "batch size must be an integer from 1 to 64, got 0"),
    ({"batch_size": options.MAX_BATCH + 1}, "from 1 to 64"),
    ({"batch_size": 2.5}, "batch size must be an integer"),
    ({"batch_size": "abc"}, "batch size must be an integer"),
    ({"runs": 0}, "runs must be an integer from 1 to 50"),
    ({"runs": options.MAX_RUNS + 1}, "from 1 to 50"),
    ({"runs": True}, "runs must be an integer"),
    ({"runs": float("nan")}, "runs must be an integer"),
    ({"threads": 0}, "threads must be an integer from 1"),
    ({"threads": options.MAX_THREADS + 1}, "threads"),
])
def test_bad_input_is_a_clear_value_error(change, message):
    with pytest.raises(ValueError, match=message):
        compute.compare(**{**GOOD, **change})
    assert not compute.MEASURE_LOCK.locked()  # validation never leaves the lock held


def test_integral_floats_and_digit_strings_are_accepted():
    # JSON clients send 8.0 or "8" for a slider value
    assert options.check_request("vit-tiny-shapes", ["fp32", "fp32"], 8.0, "3", None) == (
        "vit-tiny-shapes", ["fp32"], 8, 3, options.DEFAULT_THREADS)


# --------------------------------------------------------------------------------------
#                                   What to expect, and the sources
# --------------------------------------------------------------------------------------

# microsoft/onnxruntime#6695, as its reporter wrote them: Cascade Lake (VNNI) fp32 31.46, int8 19.76;
# Ryzen 3700X (no VNNI) fp32 38.05, int8 35.08.
ORT_VNNI, ORT_NO_VNNI = 31.46 / 19.76, 38.05 / 35.08


def test_int8_expectation_depends_on_vnni_and_cites_measured_numbers():
    no_vnni = hardware.int8_expectation({"AVX2": True})
    assert "no VNNI" in no_vnni and f"{ORT_NO_VNNI:.2f}x" in no_vnni and "Ryzen 3700X" in no_vnni
    vnni = hardware.int8_expectation({"AVX2": True, "AVX-512 VNNI": True})
    assert "has VNNI" in vnni and f"{ORT_VNNI:.2f}x" in vnni and "Cascade Lake" in vnni
    assert "AMX" in hardware.int8_expectation({"AVX2": True, "AMX int8": True, "AVX-512 VNNI": True})
    assert "emulated" in no_vnni and "can beat fp32" in hardware.int8_expectation({"AVX-512 BF16": True})


def _page_text(demo: gr.Blocks) -> str:
    """Every Markdown/HTML text and every choice label of the built page."""
    parts = []
    for block in demo.blocks.values():
        if isinstance(block, (gr.Markdown, gr.HTML)) and isinstance(block.value, str):
            parts.append(block.value)
        for choice in getattr(block, "choices", None) or []:
            parts.append(str(choice[0]))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def page():
    from spaces.quant_latency import app

    return app.build()


def test_building_the_page_imports_nothing_heavy():
    """The hub imports app.py and calls build() at start-up (issue 14: start-up within 1.3x a bare gradio app)."""
    heavy = ("torch", "transformers", "diffusers", "matplotlib", "scipy", "accelerate")
    code = ("import sys; import spaces.quant_latency.app as a; a.build(); "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_title_and_emoji_come_from_the_hub_registry(page):
    from hub.registry import get

    t = get("quant_latency")
    assert f"## {t.emoji} {t.title}" in _page_text(page) and page.title == t.title


@needs_weights
def test_the_page_states_the_shipped_model_facts(page):
    """Every number the page states about vit-tiny-shapes, against its config.json and metrics.json."""
    text = _page_text(page)
    config = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    metrics = json.loads((local_path("vit-tiny-shapes") / "metrics.json").read_text())
    m = re.search(r"`vit-tiny-shapes`: ViT, image (\d+), patch (\d+) \((\d+)x(\d+) grid\), width (\d+), (\d+) layers; trained here on shapes; "
                  r"([\d,]+) parameters; accuracy ([\d.]+)% on ([\d,]+) held-out test shapes, trained for ([\d,]+) "
                  r"steps in (\d+) min", text)
    assert m, text
    image, patch, g1, g2, width, layers = map(int, m.groups()[:6])
    assert (image, patch, width, layers) == (config["image_size"], config["patch_size"], config["hidden_size"],
                                             config["num_hidden_layers"])
    assert g1 == g2 == config["image_size"] // config["patch_size"]
    assert int(m[7].replace(",", "")) == metrics["parameters"]
    assert float(m[8]) == pytest.approx(100 * metrics["accuracy"], abs=0.005)
    assert int(m[9].replace(",", "")) == metrics["n"] and int(m[10].replace(",", "")) == metrics["steps_trained"]
    assert int(m[11]) == round(metrics["train_wall_seconds"] / 60)


def test_the_page_states_vit_b16_as_published(page):
    """ViTConfig's defaults are google/vit-base-patch16-224's sizes (Dosovitskiy et al., 2021, Table 1)."""
    from transformers import ViTConfig

    c = ViTConfig()
    text = _page_text(page)
    expected = (f"image {c.image_size}, patch {c.patch_size} ({c.image_size // c.patch_size}x"
                f"{c.image_size // c.patch_size} grid), width {c.hidden_size}, {c.num_hidden_layers} layers, "
                f"{c.num_attention_heads} heads, MLP {c.intermediate_size}, 1000 classes")
    assert expected in text


STALE = ("1.9x", "1.9×", "1.0-1.9", "1.0–1.9", "10-20% at most", "quantized per batch", "quantized on the fly per batch")


def test_the_page_quotes_its_sources_and_no_stale_fact(page):
    text = " ".join(_page_text(page).split())
    for stale in STALE:
        assert stale not in text, stale
    # onnxruntime#6695: the reporter's numbers and machines, and the maintainer's words
    for quoted in ("31.46", "19.76", "38.05", "35.08", "Cascade Lake (GCP n2-standard-16)", "Ryzen 3700X",
                   "it is expected to see a 10%-20% performance gain for sequence length 128 on the non-vnni machine",
                   "I tested on a GCP N1 Skylake instance as well"):
        assert quoted in text, quoted
    # PyTorch's own statement next to the measured range, and the BERT tutorial's times
    assert "Hardware support for INT8 computations is typically 2 to 4 times faster compared to FP32 compute." in text
    assert f"{ORT_NO_VNNI:.2f}x to {85 / 46:.2f}x" in text
    for t in ("fp32 160 s, int8 90 s", "fp32 85 s, int8 46 s"):
        assert t in text, t
    assert "Int8DynamicActivationInt8WeightConfig noticeably slower than torch.ao's quantize_dynamic()" in text
    assert "81.326" in text and "80.576" in text and "331 MB" in text and "94 MB" in text
    assert "a scale per token" in text  # torchao: "int8 dynamic per-token activation"


def test_the_space_readme_states_no_stale_fact():
    readme = " ".join((ROOT / "spaces" / "quant_latency" / "README.md").read_text().split())
    for stale in STALE:
        assert stale not in readme, stale
    assert "2 to 4 times faster" in readme and "per-token" in readme
    for quoted in ("31.46", "19.76", "38.05", "35.08"):
        assert quoted in readme
