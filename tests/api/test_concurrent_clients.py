"""Eight clients at once on two endpoints (issue 14): no errors, and each client gets its own result.

Under 16 clients, patchify once lost 5 of 206 results: gradio rewrote an output image's cache file in
place while another client was downloading it (shared/ui.py now writes it atomically). Here every client
asks for something different, so a result that reached the wrong client would show.
"""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from shared.images import sample_paths
from tests.serving import call_concurrently

pytestmark = pytest.mark.slow
PATCH_SIZES = (8, 14, 16, 28)  # 224 / p patches a side
LABEL_SETS = (["circle", "square"], ["star", "cross", "triangle"], ["red star", "blue star"],
              ["square", "circle", "star", "cross"])
CALLS_PER_CLIENT = 3


def test_eight_clients_on_two_endpoints_get_their_own_results(hub_url):
    image = str(sample_paths()[0])

    def patchify_client(patch: int):
        def run() -> list[dict]:
            client = Client(hub_url, verbose=False)
            return [client.predict(handle_file(image), 224, patch, api_name="/patch_explorer_patchify")[1]
                    for _ in range(CALLS_PER_CLIENT)]
        return run

    def classify_client(labels: list[str]):
        def run() -> list[dict]:
            client = Client(hub_url, verbose=False)
            return [client.predict(handle_file(image), ", ".join(labels), "a photo of a {}.",
                                   api_name="/clip_zero_shot_classify")[0]
                    for _ in range(CALLS_PER_CLIENT)]
        return run

    calls = [patchify_client(p) for p in PATCH_SIZES] + [classify_client(ls) for ls in LABEL_SETS]
    results = call_concurrently(calls, timeout=600)  # raises the first error, if any

    for patch, stats_list in zip(PATCH_SIZES, results[:4], strict=True):
        for stats in stats_list:
            assert (stats["grid_rows"], stats["num_patches"]) == (224 // patch, (224 // patch) ** 2)
    for labels, answers in zip(LABEL_SETS, results[4:], strict=True):
        for answer in answers:
            shown = {c["label"] for c in answer["confidences"]} if "confidences" in answer else set(answer)
            assert shown == set(labels)
