"""The DiT stepper's public API through gradio_client, on the hub and on the space's own URL.

The sample endpoint's argument order (class_label, steps, guidance_scale, seed, scheduler) is a
contract. Every bad input the issue names comes back as a clear error, and a good call right
after it still works (the server keeps serving).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from shared.models import available_offline

pytestmark = pytest.mark.skipif(not available_offline("dit-tiny-shapes"), reason="dit-tiny-shapes not trained")

SAMPLE = "/dit_stepper_sample"


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_sample_is_deterministic(client):
    a = _pixels(client.predict("star", 10, 3.0, 7, "DDIM", api_name=SAMPLE))
    b = _pixels(client.predict("star", 10, 3.0, 7, "DDIM", api_name=SAMPLE))
    assert a.shape == (256, 256, 3) and np.array_equal(a, b)


def test_sample_matches_the_compute_function(client):
    from spaces.dit_stepper import compute

    got = _pixels(client.predict("circle", 6, 2.0, 3, "Euler", api_name=SAMPLE))
    assert np.array_equal(got, np.asarray(compute.sample("circle", 6, 2.0, 3, "Euler")))


def test_two_concurrent_clients_get_their_own_results(hub_url):
    """Two clients sample at once with different seeds; each gets what it gets when alone."""
    clients = [Client(hub_url, verbose=False) for _ in range(2)]
    seeds = (1, 2)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            results[i] = _pixels(clients[i].predict("triangle", 12, 3.0, seeds[i], "DDPM", api_name=SAMPLE))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert not np.array_equal(results[0], results[1])
    for i in range(2):  # alone, afterwards: the same pictures
        alone = _pixels(clients[i].predict("triangle", 12, 3.0, seeds[i], "DDPM", api_name=SAMPLE))
        assert np.array_equal(results[i], alone)


@pytest.mark.parametrize("args, match", [
    (("star", 0, 3.0, 0, "DDIM"), "steps"),
    (("star", -5, 3.0, 0, "DDIM"), "steps"),
    (("star", 201, 3.0, 0, "DDIM"), "steps"),
    (("hexagon", 10, 3.0, 0, "DDIM"), "unknown class"),
    (("star", 10, 3.0, 0, "PNDM"), "unknown scheduler"),
    # JSON has no NaN or inf, so an API client sends them as text
    (("star", 10, "nan", 0, "DDIM"), "guidance scale must be a finite number"),
    (("star", 10, "inf", 0, "DDIM"), "guidance scale must be a finite number"),
    (("star", 10, "-inf", 0, "DDIM"), "guidance scale must be a finite number"),
    (("star", 10, "lots", 0, "DDIM"), "guidance scale must be a number"),
    (("star", 10, 3.0, 2.5, "DDIM"), "seed must be an integer"),
    (("star", 10, 3.0, "abc", "DDIM"), "seed must be an integer"),
])
def test_bad_inputs_then_the_server_keeps_serving(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=SAMPLE)
    assert Path(client.predict("star", 2, 3.0, 0, "DDIM", api_name=SAMPLE)).is_file()


def test_step_run_and_guidance_endpoints(space_client):
    c = space_client("dit_stepper")
    x_t, eps, x0, x_next, info, timeline, frame = c.predict("cross", 4, 3.0, 5, "DDIM", api_name="/dit_stepper_step")
    assert all(Path(p).is_file() for p in (x_t, eps, x0, x_next)) and "step 1 / 4" in info
    *_, timeline, frame = c.predict("cross", 4, 3.0, 5, "DDIM", api_name="/dit_stepper_run")
    assert len(timeline) == 4
    last = _pixels(timeline[-1]["image"])
    sample = _pixels(c.predict("cross", 4, 3.0, 5, "DDIM", api_name=SAMPLE))
    assert np.array_equal(last, sample)
    row = c.predict("cross", 4, 5.0, 5, "DDIM", api_name="/dit_stepper_guidance")
    assert [r["caption"] for r in row] == ["s = 0", "s = 1", "s = 5"]
    with pytest.raises(AppError, match="guidance"):
        c.predict("cross", 4, -1.0, 5, "DDIM", api_name="/dit_stepper_guidance")
