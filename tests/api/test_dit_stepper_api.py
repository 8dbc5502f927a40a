"""The DiT stepper's public API through gradio_client, on the hub and on the space's own URL.

The sample endpoint's argument order (class_label, steps, guidance_scale, seed, scheduler) is a
contract. Every bad input the issue names comes back as a clear error, and a good call right
after it still works (the server keeps serving). The plots and the table come back as files too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.images import sample_paths
from shared.models import available_offline
from tests.serving import call_concurrently

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

    def call(i: int) -> np.ndarray:
        return _pixels(clients[i].predict("triangle", 12, 3.0, seeds[i], "DDPM", api_name=SAMPLE))

    results = call_concurrently([lambda i=i: call(i) for i in range(2)])
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
    (("star", 10, "nan", 0, "DDIM"), "guidance scale must be a finite number from 0 to 20, got nan"),
    (("star", 10, "inf", 0, "DDIM"), "guidance scale must be a finite number from 0 to 20, got inf"),
    (("star", 10, "-inf", 0, "DDIM"), "guidance scale must be a finite number from 0 to 20, got -inf"),
    (("star", 10, "lots", 0, "DDIM"), "guidance scale must be a finite number from 0 to 20, got 'lots'"),
    (("star", 10, 3.0, 2.5, "DDIM"), "seed must be an integer from 0 to"),
    (("star", 10, 3.0, "abc", "DDIM"), "seed must be an integer from 0 to"),
    (("star", 2.5, 3.0, 0, "DDIM"), "steps must be an integer from 1 to 200, got 2.5"),
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


def test_forward_returns_the_schedule_plot_as_a_png(space_client):
    c = space_client("dit_stepper")
    x0, eps, x_t, info, strip, plot, files = c.predict(handle_file(str(sample_paths()[0])), 500, 0,
                                                       api_name="/dit_stepper_forward")
    assert "t = 500" in info and all(Path(p).is_file() for p in (x0, eps, x_t))
    assert [Path(f).name for f in files] == ["noise-schedule.png"]
    assert Image.open(files[0]).format == "PNG"
    for bad in (2.5, 1000, "abc"):
        with pytest.raises(AppError, match="t must be an integer from 0 to 999"):
            c.predict(handle_file(str(sample_paths()[0])), bad, 0, api_name="/dit_stepper_forward")


def test_architecture_downloads_read_back_to_what_is_shown(space_client):
    """Both plots as PNGs, and the cost table as a CSV with the rows and headers the page shows."""
    c = space_client("dit_stepper")
    grid, tokens, embed_md, adaln, cost, files = c.predict("star", 0, api_name="/dit_stepper_architecture")
    assert Path(grid).is_file() and "tokens" in embed_md
    by_suffix: dict[str, list[str]] = {}
    for f in files:
        by_suffix.setdefault(Path(f).suffix, []).append(f)
    assert sorted(by_suffix) == [".csv", ".png"] and len(by_suffix[".png"]) == 2 and len(by_suffix[".csv"]) == 1
    for png in by_suffix[".png"]:
        assert Image.open(png).format == "PNG"
    table = pd.read_csv(by_suffix[".csv"][0], dtype=str)
    assert list(table.columns) == cost["headers"]
    assert len(table) == len(cost["data"]) == 2
    assert table.values.tolist() == [[str(v) for v in row] for row in cost["data"]]


# --------------------------------------------------------------------------------------
#            Issue 23: scaling, conditioning, U-Net against DiT, flow matching
# --------------------------------------------------------------------------------------

def test_scaling_endpoint_rows_and_downloads(client):
    """dit_stepper_scaling(): rows of {model, patch, params, gmacs} for S, B, L, XL x 2, 4, 8, equal to the
    compute function's; the table as CSV, the plot as PNG and the stats as JSON."""
    from spaces.dit_stepper import compute

    stats, table, plot, note, files = client.predict(api_name="/dit_stepper_scaling")
    assert stats["rows"] == compute.scaling_table()["rows"]
    assert [r["model"] for r in stats["rows"]][-3:] == ["DiT-XL/2", "DiT-XL/4", "DiT-XL/8"]
    assert len(table["data"]) == 12 and "675" in note and "749.83M" in note
    assert sorted(Path(f).suffix for f in files) == [".csv", ".json", ".png"]
    csv = pd.read_csv(next(f for f in files if f.endswith(".csv")))
    assert list(csv.columns) == table["headers"] and len(csv) == 12


@pytest.mark.parametrize("endpoint, args, match", [
    ("/dit_stepper_conditioning", ("XXL", 2), "unknown DiT size 'XXL'"),
    ("/dit_stepper_conditioning", ("XL", 3), "unknown patch size 3"),
    ("/dit_stepper_conditioning", ("XL", 0), "patch size must be an integer from 2 to 8, got 0"),
    ("/dit_stepper_conditioning", ("XL", -4), "patch size must be an integer from 2 to 8, got -4"),
    ("/dit_stepper_conditioning", ("XL", "nan"), "patch size must be an integer from 2 to 8, got 'nan'"),
    ("/dit_stepper_conditioning", ("XL", 2.5), "patch size must be an integer from 2 to 8, got 2.5"),
    ("/dit_stepper_conditioning", ("XL", 16), "patch size must be an integer from 2 to 8, got 16"),
    ("/dit_stepper_unet", ("huge",), "unknown DiT size 'huge'"),
    ("/dit_stepper_flow", ("star", 0, 0), "path steps must be an integer from 1 to 50, got 0"),
    ("/dit_stepper_flow", ("star", -2, 0), "path steps must be an integer from 1 to 50, got -2"),
    ("/dit_stepper_flow", ("star", "nan", 0), "path steps must be an integer from 1 to 50, got 'nan'"),
    ("/dit_stepper_flow", ("star", 2.5, 0), "path steps must be an integer from 1 to 50, got 2.5"),
    ("/dit_stepper_flow", ("star", 51, 0), "path steps must be an integer from 1 to 50, got 51"),
    ("/dit_stepper_flow", ("star", 5, -1), "seed must be an integer from 0 to"),
    ("/dit_stepper_flow", ("star", 5, "nan"), "seed must be an integer from 0 to"),
    ("/dit_stepper_flow", ("star", 5, 2.5), "seed must be an integer from 0 to"),
    ("/dit_stepper_flow", ("star", 5, 2**31), "seed must be an integer from 0 to"),
    ("/dit_stepper_flow", ("hexagon", 5, 0), "unknown class 'hexagon'"),
    ("/dit_stepper_flow_sample", ("star", 0, 3.0, 0), "flow steps must be an integer from 1 to 50, got 0"),
    ("/dit_stepper_flow_sample", ("star", 60, 3.0, 0), "flow steps must be an integer from 1 to 50, got 60"),
    ("/dit_stepper_flow_sample", ("star", 4, "nan", 0), "guidance scale must be a finite number from 0 to 20, got nan"),
    ("/dit_stepper_flow_sample", ("star", 4, 3.0, 2.5), "seed must be an integer from 0 to"),
    ("/dit_stepper_flow_sample", ("square-ish", 4, 3.0, 0), "unknown class 'square-ish'"),
])
def test_new_bad_inputs_then_the_server_keeps_serving(space_client, endpoint, args, match):
    c = space_client("dit_stepper")
    with pytest.raises(AppError, match=match):
        c.predict(*args, api_name=endpoint)
    stats, table, note, files = c.predict("S", 8, api_name="/dit_stepper_conditioning")  # cached after the first
    assert [r["block"] for r in stats["rows"]] == ["adaLN-Zero", "cross-attention", "in-context"]


def test_flow_and_unet_endpoints(space_client):
    c = space_client("dit_stepper")
    vp, rf, plot, stats, note, files = c.predict("circle", 4, 1, api_name="/dit_stepper_flow")
    assert len(vp) == len(rf) == 5 and stats["length_ratio_rf"] == pytest.approx(1.0)
    assert stats["length_ratio_vp"] > 1 and sorted(Path(f).suffix for f in files) == [".json", ".png"]
    frames, finals, stats, note, files = c.predict("cross", 2, 3.0, 4, api_name="/dit_stepper_flow_sample")
    assert [f["caption"] for f in finals] == ["flow-matching Euler, 2 steps", "DDIM, 2 steps", "DPM-Solver++, 2 steps"]
    assert stats["flow_sigmas"][-1] == 0 and len(frames) == 3
    stats, table, note, files = c.predict("S", api_name="/dit_stepper_unet")
    assert stats["unet"]["base"] == 64 and len(table["data"]) == 2
