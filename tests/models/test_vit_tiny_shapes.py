"""The shipped vit-tiny-shapes: its quality bar, plain transformers loading, and the recipe end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "shared" / "weights" / "vit-tiny-shapes"
BAR = 0.98  # the bar on held-out test shapes (the model card has the measured figure)


@pytest.mark.slow
def test_eval_cli_meets_the_bar_on_2000_held_out_images():
    out = subprocess.run([sys.executable, "-m", "shared.models", "eval", "vit-tiny-shapes"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["model"] == "vit-tiny-shapes" and result["n"] >= 1000
    assert result["accuracy"] >= BAR


def test_loads_with_plain_transformers_and_returns_attentions():
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(WEIGHTS).eval()  # no arguments: as a user would
    processor = AutoImageProcessor.from_pretrained(WEIGHTS)
    assert set(model.config.id2label.values()) == {"circle", "square", "triangle", "star", "cross"}
    from shared.data.shapes import sample_image

    with torch.no_grad():
        out = model(**processor(images=sample_image()[0], return_tensors="pt"), output_attentions=True)
    assert len(out.attentions) == model.config.num_hidden_layers
    assert (WEIGHTS / "model.safetensors").stat().st_size < 5_000_000  # a few MB at most


def test_model_card_states_data_recipe_metrics_and_command():
    card = (WEIGHTS / "README.md").read_text()
    for needle in ("shapes", "Metrics", "python -m shared.training vit-tiny-shapes", "accuracy"):
        assert needle in card


@pytest.mark.slow
def test_recipe_runs_end_to_end_for_a_few_steps(tmp_path):
    from shared.training.vit_tiny_shapes import Config, train

    cfg = Config(train_images=256, eval_images=64, steps=4, eval_every=2, batch_size=16)
    metrics = train(str(tmp_path), cfg=cfg)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "preprocessor_config.json").is_file()
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["steps_trained"] == 4
    assert "python -m shared.training vit-tiny-shapes" in (tmp_path / "README.md").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["attn_implementation"] == "eager"
