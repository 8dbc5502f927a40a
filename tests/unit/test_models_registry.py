"""The registry and loader: offline behaviour, caching, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from shared import models
from shared.device import describe_hardware, pick_device, pick_dtype

ROOT = Path(__file__).resolve().parents[2]


def test_registry_lists_embedded_and_hub_models():
    assert models.REGISTRY["vit-tiny-shapes"].embedded
    for hub_id in ("google/vit-base-patch16-224", "facebook/deit-tiny-patch16-224"):
        assert models.REGISTRY[hub_id].source == hub_id


def test_missing_hub_model_offline_fails_fast_and_names_the_alternative(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(models.ModelUnavailableError) as err:
        models.load("google/vit-base-patch16-224")
    assert time.perf_counter() - start < 5  # no retries, no hang (the bar is about a second)
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message and "vit-tiny-shapes" in message


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="vit-tiny-shapes"):
        models.load("no-such-model")


def test_embedded_model_loads_offline_with_attentions_and_is_cached(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, processor = models.load("vit-tiny-shapes", device="cpu", attn="eager")
    again, _ = models.load("vit-tiny-shapes", device="cpu", attn="eager")
    assert again is model
    x = processor(images=[__import__("shared.data.shapes", fromlist=["x"]).sample_image()[0]], return_tensors="pt")
    with torch.no_grad():
        out = model(**x, output_attentions=True)
    assert len(out.attentions) == model.config.num_hidden_layers
    n = (model.config.image_size // model.config.patch_size) ** 2 + 1
    assert out.attentions[0].shape == (1, model.config.num_attention_heads, n, n)
    assert torch.allclose(out.attentions[0].sum(-1), torch.ones(1), atol=1e-5)


def test_cli_list_shows_source_and_offline_availability():
    out = subprocess.run([sys.executable, "-m", "shared.models", "list"], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}).stdout
    line = next(row for row in out.splitlines() if row.startswith("vit-tiny-shapes"))
    assert "embedded" in line and line.rstrip().endswith("yes")
    hub_line = next(row for row in out.splitlines() if row.startswith("google/vit-base-patch16-224"))
    assert hub_line.rstrip().endswith("no")


def test_device_and_hardware(monkeypatch):
    monkeypatch.setenv("VITLAB_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu") and pick_dtype("cpu") == torch.float32
    monkeypatch.setenv("VITLAB_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cpu"):
        pick_device()
    monkeypatch.delenv("VITLAB_DEVICE")
    info = describe_hardware()
    assert {"cpu", "isa", "logical_cpus", "torch_threads"} <= set(info) and "AVX2" in info["isa"]
    json.dumps(info)
