"""CNN against ViT's public API through gradio_client, on the hub and on the space's own URL.

``cnn_vs_vit_receptive_field(architecture)`` returns the stats JSON (``layers`` of {name, kernel, stride, jump,
rf}, ``final_rf``); every bad input comes back as a clear error, and a good call right after it still works.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from gradio_client.exceptions import AppError

from shared.cnn_models import installed
from shared.models import available_offline

RF = "/cnn_vs_vit_receptive_field"
needs_torchvision = pytest.mark.skipif(not installed(),
                                       reason="torchvision is not installed (make install)")
needs_models = pytest.mark.skipif(not (available_offline("vit-tiny-shapes") and available_offline("cnn-tiny-shapes")),
                                  reason="both embedded models are needed")


@needs_torchvision
@pytest.mark.parametrize("arch, final", [("alexnet", 195), ("vgg16", 212), ("resnet18", 435), ("resnet50", 427)])
def test_receptive_field_endpoint(client, arch, final):
    s = client.predict(arch, api_name=RF)
    assert s["final_rf"] == final == s["layers"][-1]["rf"]  # figures checked in tests/unit/test_cnn_vs_vit.py
    assert all(set(x) == {"name", "kernel", "stride", "jump", "rf"} for x in s["layers"])
    # the recurrence, recomputed from the returned kernels and strides
    r, j = 1, 1
    for x in s["layers"]:
        r, j = r + (x["kernel"] - 1) * j, j * x["stride"]
        assert (x["rf"], x["jump"]) == (r, j)


@needs_models
def test_receptive_field_of_the_tiny_cnn_on_the_space_url(space_client):
    s = space_client("cnn_vs_vit").predict("cnn-tiny-shapes", api_name=RF)
    assert s["final_rf"] > 64  # its theoretical field is wider than its 64-px input


@pytest.mark.parametrize("bad", ["resnet101", "", "AlexNet", 3])
def test_unknown_architecture_then_the_server_keeps_serving(client, bad):
    with pytest.raises(AppError, match=r"unknown architecture .*choose one of \['alexnet', 'vgg16', 'resnet18', 'resnet50'"):
        client.predict(bad, api_name=RF)
    if installed():
        assert client.predict("alexnet", api_name=RF)["final_rf"] == 195


@pytest.mark.parametrize("args, match", [
    ((10, 4, 30), "number of test images must be an integer from 20 to 2000, got 10"),
    ((10**6, 4, 30), "number of test images must be an integer from 20 to 2000"),
    ((100, -3, 30), "shift \\(pixels\\) must be an integer from 1 to 24, got -3"),
    ((100, 2.5, 30), "shift \\(pixels\\) must be an integer"),
    ((100, 4, "abc"), "rotation angle \\(degrees\\) must be a finite number"),
    ((100, 4, 1e9), "rotation angle \\(degrees\\) must be a finite number from -180 to 180"),
])
def test_bad_bias_inputs_then_the_server_keeps_serving(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name="/cnn_vs_vit_bias")
    with pytest.raises(AppError, match="number of images must be an integer from 1 to 64, got 0"):
        client.predict(0, api_name="/cnn_vs_vit_erf")
    if installed():
        assert client.predict("resnet18", api_name=RF)["final_rf"] == 435


@needs_models
@pytest.mark.slow
def test_erf_and_bias_tabs_return_their_outputs_and_files(client):
    plot, stats, summary, files = client.predict(2, api_name="/cnn_vs_vit_erf")
    assert {"vit-tiny-shapes", "cnn-tiny-shapes"} <= set(stats) and "px" in summary
    assert any(Path(f).suffix == ".png" for f in files)
    table, plot, stats, summary, files = client.predict(20, 4, 30, api_name="/cnn_vs_vit_bias")
    df = pd.DataFrame(table["data"], columns=table["headers"])
    assert len(df) == len(stats["rows"]) == 5 and stats["n"] == 20
    assert any(Path(f).suffix == ".csv" for f in files)
