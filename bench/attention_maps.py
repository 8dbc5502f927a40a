"""Mean attention distance per layer of the embedded ViT on held-out shapes (does it grow with depth, as in
ViT's Figure 7 right?), and the latency of the space's rollout endpoint.

Held-out: the first ``n`` renders of the shapes dataset's test split, at the model's input size. For each
image, ``shared.attention.mean_distance`` gives every head's mean attention distance in pixels (patch keys
only, weights renormalised over them); the figure plots the mean over images per head and layer (one dot
per head, like ViT Figure 7 right, which shows ViT-L/16 on 128 images 224 px wide), with the spread over
images. The uniform-attention baseline is the mean distance between patch centres. Latency: each image
goes once through ``compute.rollout`` (the public endpoint's function, capture not cached since every image
differs); the figure is the median.

Run: ``.venv/bin/python -m bench.attention_maps`` (prints JSON, writes the figure), or
``python -m bench --only attention_maps``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from shared import attention as shared_attention
from shared.data.shapes import render, spec_at
from spaces.attention_maps import compute

MODEL = "vit-tiny-shapes"
FIGURE = Path(__file__).resolve().parent / "attention_maps_distance.png"


def _figure(per_head: np.ndarray, spread: np.ndarray, uniform: float, size: int, n: int, path: Path) -> None:
    from matplotlib.figure import Figure

    layers, heads = per_head.shape
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    x = np.arange(layers)
    for h in range(heads):
        off = (h - (heads - 1) / 2) * 0.08
        ax.errorbar(x + off, per_head[:, h], yerr=spread[:, h], fmt="o", ms=5, capsize=2, label=f"head {h}")
    ax.plot(x, per_head.mean(1), color="black", lw=1, label="mean of heads")
    ax.axhline(uniform, color="grey", ls="--", lw=1, label="uniform attention")
    ax.set_xticks(range(layers))
    ax.set_xlabel("network depth (layer)")
    ax.set_ylabel("mean attention distance (pixels)")
    ax.set_ylim(0, size * 0.6)
    ax.set_title(f"{MODEL}: mean over {n} held-out images ({size} px wide); bars: ±1 s.d. over images", fontsize=8)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def run(n: int = 256, figure: Path | None = FIGURE) -> dict:
    model, processor = compute.load_model(MODEL)
    size = int(model.config.image_size)
    images = [render(spec_at("test", i), size) for i in range(n)]
    labels = [spec_at("test", i).shape for i in range(n)]
    distances, hits, ms = [], 0, []
    for image, label in zip(images, labels, strict=True):
        att = shared_attention.capture(model, processor, image)
        distances.append(shared_attention.mean_distance(att))
        hits += shared_attention.label_of(att, model) == label
        t = time.perf_counter()
        compute.rollout(image, "mean", 0.0, MODEL)
        ms.append((time.perf_counter() - t) * 1000)
    d = np.stack(distances)  # (n, L, H)
    per_head = d.mean(0)
    spread = d.std(0)
    by_layer = per_head.mean(1)
    per_image_layer = d.mean(2)  # (n, L)
    centres = shared_attention.patch_centres(att.grid, att.patch_size)
    uniform = float(np.linalg.norm(centres[:, None] - centres[None], axis=-1).mean())
    if figure is not None:
        _figure(per_head, spread, uniform, size, n, figure)
    cost = compute.cost_table(compute.capture(images[0], MODEL))
    return {
        "model": MODEL,
        "held_out_images": n,
        "accuracy_on_them": round(hits / n, 4),
        "mean_distance_px_by_layer": [round(float(v), 2) for v in by_layer],
        "mean_distance_px_by_layer_and_head": np.round(per_head, 2).tolist(),
        "sd_over_images_by_layer": [round(float(v), 2) for v in per_image_layer.std(0)],
        "uniform_attention_px": round(uniform, 2),
        "grows_with_depth_on_average": bool(np.all(np.diff(by_layer) > 0)),
        "share_of_images_where_it_grows_every_layer": round(float(np.mean(np.all(np.diff(per_image_layer, axis=1) > 0,
                                                                                   axis=1))), 4),
        "last_minus_first_layer_px": round(float(by_layer[-1] - by_layer[0]), 2),
        "rollout_endpoint_median_ms": round(statistics.median(ms), 2),
        "attention_cost": {row[0]: {"tokens": row[2], "qk_macs": row[8], "av_macs": row[9],
                                    "attention_matrix_all_layers": row[7]} for row in cost},
        "figure": str(figure) if figure is not None else None,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
