"""quant_latency public API through gradio_client: results, the downloadable files, every bad input, and
two concurrent clients (on the hub and on the space's own URL) whose measurements must not overlap.

``quant_latency_compare`` returns (raw result, table, ratios, latency plot, accuracy plot, hardware panel,
downloadable files)."""

from __future__ import annotations

import csv
import json

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.serving import call_concurrently

API = "/quant_latency_compare"
KEYS = {"variant", "available", "median_ms", "iqr_ms", "size_mb", "accuracy", "top1_agreement", "weight_storage"}


def test_compare_on_the_embedded_model(client):
    result, table, ratios, _, _, machine, files = client.predict(
        "vit-tiny-shapes", ["fp32", "int8_dynamic", "onnx_int8"], 4, 3, api_name=API)
    rows = result["variants"]
    assert result["model"] == "vit-tiny-shapes" and "isa" in result["hardware"]
    assert [r["variant"] for r in rows] == ["fp32", "int8_dynamic", "onnx_int8"]
    for r in rows:
        assert KEYS <= set(r)
        assert r["available"] is True, r["reason"]
        assert r["median_ms"] > 0 and r["iqr_ms"] >= 0 and r["size_mb"] > 0
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["top1_agreement"] <= 1
        assert len(r["samples_ms"]) == 3 and r["threads"] == 1  # threads is optional and defaults to 1
    by = {r["variant"]: r for r in rows}
    assert by["fp32"]["top1_agreement"] == 1.0
    assert by["int8_dynamic"]["size_mb"] < by["fp32"]["size_mb"]
    assert set(by["int8_dynamic"]["weight_storage"]) == {"int8"} == set(by["onnx_int8"]["weight_storage"])
    assert [row[0] for row in table["data"]] == ["fp32", "int8_dynamic", "onnx_int8"]
    assert "int8_dynamic / fp32 latency" in ratios and "ISA" in machine and len(files) == 4


def test_downloads_read_back_to_what_the_page_shows(client):
    """One event's files: the table as CSV (its rows are the rows shown), both plots as PNG, the raw
    result as JSON (equal to the JSON shown)."""
    result, table, *_, files = client.predict("vit-tiny-shapes", ["fp32", "bf16"], 2, 2, 1, api_name=API)
    by_ext: dict[str, list[str]] = {}
    for path in files:
        by_ext.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    assert sorted((ext, len(paths)) for ext, paths in by_ext.items()) == [("csv", 1), ("json", 1), ("png", 2)]

    with open(by_ext["csv"][0], newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert header == table["headers"]
    assert rows == [[str(v) for v in row] for row in table["data"]]
    for path in by_ext["png"]:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100
    with open(by_ext["json"][0], encoding="utf-8") as f:
        assert json.load(f) == result


@pytest.mark.parametrize("args, message", [
    (("no-such-model", ["fp32"], 2, 2), "vit-tiny-shapes"),  # the message lists the valid models
    (("vit-tiny-shapes", ["fp32", "int3"], 2, 2), "int8_dynamic"),  # ... and the valid variants
    (("vit-tiny-shapes", [], 2, 2), "at least 1 variant"),
    (("vit-tiny-shapes", ["fp32"], 0, 2), "batch size must be an integer from 1 to 64, got 0"),
    (("vit-tiny-shapes", ["fp32"], 65, 2), "batch size must be an integer from 1 to 64, got 65"),
    (("vit-tiny-shapes", ["fp32"], 2.5, 2), "batch size must be an integer from 1 to 64, got 2.5"),
    (("vit-tiny-shapes", ["fp32"], 2, 0), "runs must be an integer from 1 to 50, got 0"),
    (("vit-tiny-shapes", ["fp32"], 2, 51), "runs must be an integer from 1 to 50, got 51"),
    (("vit-tiny-shapes", ["fp32"], 2, "abc"), "runs must be an integer"),
    (("vit-tiny-shapes", ["fp32"], 2, 2, 0), "threads must be an integer from 1"),
])
def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=API)
    result = client.predict("vit-tiny-shapes", ["fp32"], 2, 1, api_name=API)[0]
    assert result["variants"][0]["available"] and result["variants"][0]["median_ms"] > 0


def test_two_concurrent_clients_are_measured_one_after_the_other(hub_url):
    from gradio_client import Client

    # One client on the hub tab, one on the space's own mount: two Gradio apps with two queues,
    # so only the process-wide measurement lock can keep them apart.
    clients = [Client(hub_url, verbose=False), Client(f"{hub_url}quant_latency/", verbose=False)]
    results = call_concurrently([
        lambda c=c: c.predict("vit-tiny-shapes", ["fp32", "bf16"], 8, 10, api_name=API)[0]["variants"]
        for c in clients
    ])
    spans = []
    for rows in results:
        assert all(r["available"] and r["median_ms"] > 0 for r in rows)
        spans.append((min(r["measured_from"] for r in rows), max(r["measured_to"] for r in rows)))
    (a0, a1), (b0, b1) = sorted(spans)
    waits = [rows[0]["lock_wait_s"] for rows in results]
    print(f"measured {a0:.3f}-{a1:.3f} then {b0:.3f}-{b1:.3f} (gap {b0 - a1:.3f} s); lock waits {waits}")
    assert a1 <= b0, f"measurements overlapped: {spans}"


# --------------------------------------------------------------------------------------
#   Issue 23: memory by precision, latency against resolution, efficient architectures, control rate
# --------------------------------------------------------------------------------------

def test_new_endpoints_answer_with_consistent_results(client):
    memory, table, verdict, _, files = client.predict(24, ["bf16", "int4"], api_name="/quant_latency_memory")
    assert [r["precision"] for r in memory["rows"][:2]] == ["bf16", "int4"] and len(table["data"]) == 8
    assert all(r["weights_bytes"] == r["params"] * {"bf16": 2, "int4": 0.5}[r["precision"]] for r in memory["rows"])
    assert "Fits on 24 GB" in verdict and len(files) == 3  # table CSV, plot PNG, JSON

    sweep, table, _, files = client.predict("vit-tiny-shapes", 128, 2, 1, api_name="/quant_latency_resolution")
    assert [r["side"] for r in sweep["rows"]] == [64, 128] and [r[0] for r in table["data"]] == [64, 128]
    assert all(r["median_ms"] > 0 for r in sweep["rows"]) and len(files) == 3

    archs, table, _, files = client.predict(["ViT-Ti/16", "MobileViT-XXS"], 64, 1,
                                            api_name="/quant_latency_architectures")
    assert [r["architecture"] for r in archs["rows"]] == ["ViT-Ti/16", "MobileViT-XXS"] and len(files) == 3

    control, verdict, files = client.predict("vit-tiny-shapes", "fp32", 10, 2, api_name="/quant_latency_control_rate")
    assert control["available"] and control["budget_ms"] == 100 and control["meets"] is (control["median_ms"] <= 100)
    assert "1000 / 10 = **100.00 ms**" in verdict and len(files) == 1  # the JSON


BAD_NEW = [
    ("memory", (0, ["fp32"]), "GPU memory \\(GB\\) must be a finite number greater than 0"),
    ("memory", (-4, ["fp32"]), "greater than 0"),
    ("memory", ("nan", ["fp32"]), "got nan"),
    ("memory", (2000, ["fp32"]), "at most 1024"),
    ("memory", (24, ["fp8"]), "unknown precision"),
    ("resolution", ("vit-tiny-shapes", 0, 2, 1), "largest side \\(px\\) must be an integer from 1 to 512"),
    ("resolution", ("vit-tiny-shapes", -64, 2, 1), "got -64"),
    ("resolution", ("vit-tiny-shapes", 64.5, 2, 1), "must be an integer"),
    ("resolution", ("vit-tiny-shapes", "nan", 2, 1), "must be an integer"),
    ("resolution", ("vit-tiny-shapes", 1024, 2, 1), "got 1024"),
    ("resolution", ("vit-tiny-shapes", 60, 2, 1), "multiple of the model's patch size"),
    ("resolution", ("vit-tiny-shapes", 64, 9, 1), "number of resolutions must be an integer from 2 to 8"),
    ("architectures", (["EfficientViT"], 224, 1), "unknown architecture"),
    ("architectures", (["ViT-Ti/16"], 0, 1), "image side \\(px\\) must be an integer from 64 to 512"),
    ("architectures", (["ViT-Ti/16"], 100.5, 1), "must be an integer"),
    ("architectures", (["ViT-Ti/16"], 1024, 1), "got 1024"),
    ("architectures", (["ViT-Ti/16"], 96 + 16, 1), "multiple of 32"),
    ("architectures", (["ViT-Ti/16"], 224, 0), "runs must be an integer from 1 to 20"),
    ("control_rate", ("vit-tiny-shapes", "fp32", 0, 2), "control rate \\(Hz\\) must be a finite number greater than 0"),
    ("control_rate", ("vit-tiny-shapes", "fp32", -30, 2), "greater than 0"),
    ("control_rate", ("vit-tiny-shapes", "fp32", "nan", 2), "got nan"),
    ("control_rate", ("vit-tiny-shapes", "fp32", 5000, 2), "at most 1000"),
    ("control_rate", ("vit-tiny-shapes", "fp32", 30, 2.5), "runs must be an integer"),
    ("control_rate", ("vit-tiny-shapes", "int3", 30, 2), "unknown variant"),
]


@pytest.mark.parametrize("api", ["memory", "resolution", "architectures", "control_rate"])
def test_new_endpoints_refuse_bad_input_and_keep_serving(client, api):
    """Each bad input of one endpoint is refused with its message (several calls, one check of serving after:
    the calls are fast, validation runs before torch)."""
    for name, args, message in BAD_NEW:
        if name == api:
            with pytest.raises(AppError, match=message):
                client.predict(*args, api_name=f"/quant_latency_{api}")
    assert client.predict(24, ["int4"], api_name="/quant_latency_memory")[0]["gpu_gb"] == 24
