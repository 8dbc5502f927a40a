"""Load and first-inference latency of the embedded ViT, against reading its weights alone."""

from __future__ import annotations

import statistics
import time

import torch


def run(runs: int = 5) -> dict:
    from safetensors.torch import load_file

    from shared import models
    from shared.data.shapes import ShapesDataset

    image = ShapesDataset("test", 1)[0][0]
    read, load, first = [], [], []
    for _ in range(runs):
        models.clear_cache()
        t = time.perf_counter()
        load_file(str(models.local_path("vit-tiny-shapes") / "model.safetensors"))
        read.append(time.perf_counter() - t)
        t = time.perf_counter()
        model, processor = models.load("vit-tiny-shapes", device="cpu")
        load.append(time.perf_counter() - t)
        t = time.perf_counter()
        with torch.no_grad():
            model(**processor(images=image, return_tensors="pt"))
        first.append(time.perf_counter() - t)
    ms = lambda xs: round(statistics.median(xs) * 1000, 1)  # noqa: E731
    return {"model": "vit-tiny-shapes", "read_safetensors_ms": ms(read), "load_ms": ms(load),
            "first_inference_ms": ms(first), "runs": runs}
