"""Deterministic, CPU-friendly training of the embedded models.

``python -m shared.training NAME`` retrains one model into ``shared/weights/NAME/``.
Each recipe is one readable module with its config dataclass at the top (nanoGPT style)
and a ``train(out_dir, steps=None, seed=0) -> dict`` function that returns its metrics.
To add a model: write ``shared/training/<module>.py`` and add one line to ``RECIPES``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

# name -> module under shared.training that defines train(); imported only when used.
RECIPES: dict[str, str] = {
    "dit-tiny-shapes": "dit_tiny_shapes",
    "vit-tiny-shapes": "vit_tiny_shapes",
    "fast-bpe-actions": "fast_bpe_actions",
    "clip-tiny-shapes": "clip_tiny_shapes",
    "cnn-tiny-shapes": "cnn_tiny_shapes",
    "mae-tiny-shapes": "mae_tiny_shapes",
    "vq-tiny-shapes": "vq_tiny_shapes",
    "ar-tiny-shapes": "ar_tiny_shapes",
    "video-vit-tiny-shapes": "video_vit_tiny_shapes",
    "vjepa-tiny-shapes": "vjepa_tiny_shapes",
    "vq-actions": "vq_actions",
    "vlm-tiny-shapes": "vlm_tiny_shapes",
}


def get_recipe(name: str) -> Callable[..., dict]:
    if name not in RECIPES:
        raise ValueError(f"no training recipe for {name!r}; choose one of {sorted(RECIPES)}")
    return importlib.import_module(f"shared.training.{RECIPES[name]}").train


def get_phase2_recipe(name: str) -> Callable[..., dict]:
    """The recipe's ``finetune_from(weights_dir, out_dir, ...)``: its phase 2 alone, on saved weights."""
    get_recipe(name)
    module = importlib.import_module(f"shared.training.{RECIPES[name]}")
    if not hasattr(module, "finetune_from"):
        with_phase2 = [n for n, m in RECIPES.items()
                       if hasattr(importlib.import_module(f"shared.training.{m}"), "finetune_from")]
        raise ValueError(f"{name} has no phase 2 to run alone from saved weights; recipes with one: {with_phase2}")
    return module.finetune_from


def recipe_config(name: str, overrides: list[str] | tuple[str, ...] = ()):
    """The recipe's ``Config`` with ``NAME=VALUE`` overrides (``--set`` on the command line), e.g.
    ``hidden_size=192`` or ``guidance_scales=(1.0, 2.0)``. A value is read as a Python literal (a bare word is a
    string) and must have the type of the field's default; unknown fields are refused with the valid ones listed."""
    if name not in RECIPES:
        raise ValueError(f"no training recipe for {name!r}; choose one of {sorted(RECIPES)}")
    config_cls = importlib.import_module(f"shared.training.{RECIPES[name]}").Config
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    values = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ValueError(f"--set takes NAME=VALUE with NAME a field of {name}'s Config; got {item!r}. "
                             f"Fields: {', '.join(fields)}")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()  # a bare word: a string such as classic
        values[key] = _like_default(key, value, fields[key])
    return config_cls(**values)


def _like_default(key: str, value, field: dataclasses.Field):
    """``value`` as the type of the field's default (int -> float and list -> tuple allowed); None where the
    annotation allows it; a field whose default is None takes any literal."""
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    if default is None or (value is None and "None" in str(field.type)):  # e.g. background: str | None
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, tuple) and isinstance(value, list | tuple):
        return tuple(value)
    if type(value) is not type(default):
        raise ValueError(f"{key} expects {type(default).__name__} (default {default!r}), got {value!r}")
    return value
