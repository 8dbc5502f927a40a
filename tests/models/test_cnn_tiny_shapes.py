"""The shipped cnn-tiny-shapes: plain transformers loading, its facts, the eval CLI, and the recipe end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "shared" / "weights" / "cnn-tiny-shapes"
VIT = ROOT / "shared" / "weights" / "vit-tiny-shapes"
pytestmark = pytest.mark.skipif(not (WEIGHTS / "model.safetensors").is_file(), reason="cnn-tiny-shapes not shipped")


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_loads_through_the_shared_loader_and_counts_what_metrics_json_says():
    from shared.models import load

    model, processor = load("cnn-tiny-shapes", device="cpu")
    assert type(model).__name__ == "ResNetForImageClassification"
    assert sum(p.numel() for p in model.parameters()) == _metrics(WEIGHTS)["parameters"]
    assert processor.size["height"] == 64 and list(model.config.id2label.values())[0] == "circle"
    with torch.no_grad():
        assert model(pixel_values=torch.zeros(1, 3, 64, 64)).logits.shape == (1, 5)


def test_about_the_vits_parameter_count_on_the_same_data():
    cnn, vit = _metrics(WEIGHTS), _metrics(VIT)
    assert 0.8 <= cnn["parameters"] / vit["parameters"] <= 1.25
    assert cnn["data_distribution"] == vit["data_distribution"] == "wide"
    assert json.loads((WEIGHTS / "preprocessor_config.json").read_text())["size"] == \
        json.loads((VIT / "preprocessor_config.json").read_text())["size"]


def test_the_card_states_the_shorter_training():
    card = (WEIGHTS / "README.md").read_text()
    m = _metrics(WEIGHTS)
    assert f"{m['steps_trained']} steps" in card and "trained far shorter than the ViT" in card


@pytest.mark.slow
def test_eval_cli_prints_its_json_line():
    out = subprocess.run([sys.executable, "-m", "shared.models", "eval", "cnn-tiny-shapes"], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["model"] == "cnn-tiny-shapes" and result["n"] == 2000
    assert result["accuracy"] == _metrics(WEIGHTS)["accuracy"]  # deterministic, same as shipped


@pytest.mark.slow
def test_recipe_smoke_run(tmp_path):
    from shared.training.cnn_tiny_shapes import Config, train

    cfg = Config(train_images=256, eval_images=64, eval_every=0)
    metrics = train(str(tmp_path), steps=3, cfg=cfg)
    assert metrics["steps_trained"] == 3 and (tmp_path / "model.safetensors").is_file()
    assert metrics["parameters"] == _metrics(WEIGHTS)["parameters"]
    assert (tmp_path / "README.md").is_file() and json.loads((tmp_path / "metrics.json").read_text())["accuracy"] >= 0
