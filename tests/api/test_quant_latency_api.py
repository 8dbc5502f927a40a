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
