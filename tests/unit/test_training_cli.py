"""``python -m shared.training NAME --set FIELD=VALUE``: recipe Config overrides from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.training import recipe_config
from shared.training.ar_tiny_shapes import Config as ARConfig
from shared.training.vit_tiny_shapes import Config as ViTConfig

ROOT = Path(__file__).resolve().parents[2]


def test_overrides_are_typed_like_each_fields_default():
    cfg = recipe_config("vit-tiny-shapes", ["hidden_size=192", "lr=1", "num_hidden_layers = 6"])
    assert isinstance(cfg, ViTConfig)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.lr) == (192, 6, 1.0) and isinstance(cfg.lr, float)
    assert cfg.batch_size == ViTConfig().batch_size  # untouched fields keep the recipe's defaults
    ar = recipe_config("ar-tiny-shapes", ["top_ks=[3, 5]", "distribution=classic", "background=None",
                                          "tokenizer=vq-tiny-shapes"])
    assert isinstance(ar, ARConfig) and ar.top_ks == (3, 5) and ar.distribution == "classic"
    assert ar.background is None and ar.tokenizer == "vq-tiny-shapes"
    assert recipe_config("vit-tiny-shapes") == ViTConfig()


@pytest.mark.parametrize(("recipe", "item", "message"), [
    ("vit-tiny-shapes", "hidden_sise=192", "Fields: image_size, patch_size, hidden_size"),  # a typo: names listed
    ("vit-tiny-shapes", "hidden_size", "NAME=VALUE"),
    ("vit-tiny-shapes", "hidden_size=1.5", "hidden_size expects int \\(default 96\\), got 1.5"),
    ("vit-tiny-shapes", "hidden_size=big", "hidden_size expects int"),
    ("vit-tiny-shapes", "lr=None", "lr expects float"),
    ("ar-tiny-shapes", "distribution=3", "distribution expects str"),
    ("ar-tiny-shapes", "top_ks=3", "top_ks expects tuple"),
])
def test_bad_overrides_are_refused_with_what_is_valid(recipe, item, message):
    with pytest.raises(ValueError, match=message):
        recipe_config(recipe, [item])


def test_an_unknown_recipe_lists_the_recipes():
    with pytest.raises(ValueError, match="choose one of"):
        recipe_config("vit-huge", [])


@pytest.mark.slow
def test_the_command_line_trains_with_the_overrides(tmp_path):
    """A tiny VQ-VAE (2 steps) whose codebook size comes from --set; a bad --set exits with the field list."""
    cmd = [sys.executable, "-m", "shared.training", "vq-tiny-shapes", "--steps", "2", "--out", str(tmp_path),
           "--set", "codebook_size=32", "--set", "train_images=64", "--set", "batch_size=32"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads((tmp_path / "config.json").read_text())["codebook_size"] == 32
    bad = subprocess.run([*cmd[:-6], "--set", "codebook=32"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Fields:" in bad.stderr and "codebook_size" in bad.stderr
