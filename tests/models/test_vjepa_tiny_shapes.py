"""vjepa-tiny-shapes: the shipped metrics (the probe against the untrained encoder, the eval keys), loading through
the registry, and a smoke training of two steps."""

from __future__ import annotations

import json

import pytest
import torch

from shared.models import available_offline, load, local_path

NAME = "vjepa-tiny-shapes"
pytestmark = pytest.mark.skipif(not available_offline(NAME), reason="vjepa-tiny-shapes not trained")


def test_shipped_metrics_and_config():
    folder = local_path(NAME)
    m = json.loads((folder / "metrics.json").read_text())
    c = json.loads((folder / "config.json").read_text())
    assert {"direction_probe_accuracy", "random_encoder_direction_probe_accuracy", "all_tokens_direction_probe_accuracy",
            "random_encoder_all_tokens_direction_probe_accuracy", "probe_train_clips", "probe_test_clips"} <= set(m)
    assert m["probe_train_clips"] >= 1000 and m["probe_test_clips"] >= 500 and m["probe_classes"] == 8
    # the all-token probe reads motion better from the trained encoder than from its initialisation
    assert m["all_tokens_direction_probe_accuracy"] > m["random_encoder_all_tokens_direction_probe_accuracy"], m
    assert (c["frames"] // c["tubelet_size"], c["image_size"] // c["patch_size"]) == (8, 4)
    assert c["ema"] == [0.998, 1.0] and m["final_momentum"] < 1.0
    assert (folder / "README.md").is_file()


def test_loads_through_the_registry():
    model = load(NAME, device="cpu").model
    x = torch.zeros(1, 3, model.config["frames"], model.config["image_size"], model.config["image_size"])
    h = model.targets(x)
    assert h.shape == (1, 128, model.config["hidden_size"])
    assert torch.allclose(h.mean(-1), torch.zeros(1, 128), atol=1e-4)  # layer-normed targets


@pytest.mark.slow
def test_smoke_training(tmp_path):
    from shared.training.vjepa_tiny_shapes import train

    m = train(str(tmp_path / "vj"), steps=2)
    assert (tmp_path / "vj" / "model.safetensors").is_file() and (tmp_path / "vj" / "README.md").is_file()
    assert m["steps_trained"] == 2 and m["probe_train_clips"] == 64 and "direction_probe_accuracy" in m
