"""quant_latency public API through gradio_client: results, every bad input, and two concurrent
clients (on the hub and on the space's own URL) whose measurements must not overlap."""

from __future__ import annotations

import threading

import pytest
from gradio_client.exceptions import AppError

API = "/quant_latency_compare"
KEYS = {"variant", "available", "median_ms", "iqr_ms", "size_mb", "accuracy", "top1_agreement"}


def test_compare_on_the_embedded_model(client):
    rows = client.predict("vit-tiny-shapes", ["fp32", "int8_dynamic", "onnx_int8"], 4, 3, api_name=API)
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


@pytest.mark.parametrize("args, message", [
    (("no-such-model", ["fp32"], 2, 2), "vit-tiny-shapes"),  # the message lists the valid models
    (("vit-tiny-shapes", ["fp32", "int3"], 2, 2), "int8_dynamic"),  # ... and the valid variants
    (("vit-tiny-shapes", [], 2, 2), "at least one variant"),
    (("vit-tiny-shapes", ["fp32"], 0, 2), "minimum value 1"),
    (("vit-tiny-shapes", ["fp32"], 65, 2), "maximum value 64"),
    (("vit-tiny-shapes", ["fp32"], 2, 0), "minimum value 1"),
    (("vit-tiny-shapes", ["fp32"], 2, 51), "maximum value 50"),
])
def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=API)
    rows = client.predict("vit-tiny-shapes", ["fp32"], 2, 1, api_name=API)
    assert rows[0]["available"] and rows[0]["median_ms"] > 0


def test_two_concurrent_clients_are_measured_one_after_the_other(hub_url):
    from gradio_client import Client

    # One client on the hub tab, one on the space's own mount: two Gradio apps with two queues,
    # so only the process-wide measurement lock can keep them apart.
    clients = [Client(hub_url, verbose=False), Client(f"{hub_url}quant_latency/", verbose=False)]
    results: list = [None, None]
    errors: list = []
    start = threading.Barrier(2)

    def call(i: int) -> None:
        try:
            start.wait()
            results[i] = clients[i].predict("vit-tiny-shapes", ["fp32", "bf16"], 8, 10, api_name=API)
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    spans = []
    for rows in results:
        assert rows is not None and all(r["available"] and r["median_ms"] > 0 for r in rows)
        spans.append((min(r["measured_from"] for r in rows), max(r["measured_to"] for r in rows)))
    (a0, a1), (b0, b1) = sorted(spans)
    waits = [rows[0]["lock_wait_s"] for rows in results]
    print(f"measured {a0:.3f}-{a1:.3f} then {b0:.3f}-{b1:.3f} (gap {b0 - a1:.3f} s); lock waits {waits}")
    assert a1 <= b0, f"measurements overlapped: {spans}"
