"""The sampling settings an autoregressive token generator's ``class_accuracy`` is measured at.

``ar-tiny-shapes``' recipe chooses them on held-out seeds and saves them in the model's config.json. Torch-free:
the vq_tokens page reads them at start-up for its slider defaults; ``shared.evaluation_vq`` for its metric.
"""

from __future__ import annotations

# For a config.json that names none (a generator trained before the recipe chose them).
FALLBACK = {"guidance_scale": 1.0, "temperature": 0.8, "top_k": 16}
# setting -> its key in config.json; not ``temperature`` / ``top_k``, which transformers refuses in a model config
# (they belong in generation_config.json, which transformers' own ``generate`` would apply, without this model's
# class-at-every-position input)
CONFIG_KEYS = {"guidance_scale": "guidance_scale", "temperature": "sample_temperature", "top_k": "sample_top_k"}


def sampling_settings(config: dict) -> dict:
    """``guidance_scale``, ``temperature`` and ``top_k`` from a generator's config.json (as a dict)."""
    return {name: config.get(key, FALLBACK[name]) for name, key in CONFIG_KEYS.items()}
