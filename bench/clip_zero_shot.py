"""Zero-shot latency of the CLIP space on the embedded clip-tiny-shapes: warm vs cold text cache.

Cold: the text-embedding cache is cleared before each call, so every prompt is tokenized and
run through the text tower. Warm: the same call again right after, so only the image tower runs
(paired, so machine drift hits both alike). Both go through ``compute.zero_shot`` exactly as the
space's classify endpoint does. Each figure is the median of ``runs`` pairs; the model is loaded
(and warmed up) before timing.

Run: ``.venv/bin/python -m bench.clip_zero_shot`` (prints JSON), or via ``bench/__main__.py``.
"""

from __future__ import annotations

import json
import statistics

from bench.timing import median_ms, ms
from shared.data.shapes import COLORS, SHAPES, sample_image
from spaces.clip_zero_shot import compute

MODEL = "clip-tiny-shapes"
TEMPLATES = "a photo of a {}\nan image of a {}\na rendering of a {}"


def run(runs: int = 25) -> dict:
    image = sample_image("star", "red", size=224, seed=0)[0]
    shapes = ", ".join(SHAPES)
    colour_shapes = ", ".join(f"{c} {s}" for c in COLORS for s in SHAPES)
    cases = {  # named by their counts, which follow the dataset's vocabulary
        f"{len(SHAPES)}_labels_1_template": (shapes, compute.DEFAULT_TEMPLATE),
        f"{len(COLORS) * len(SHAPES)}_labels_3_templates": (colour_shapes, TEMPLATES),
    }
    compute.zero_shot(image, shapes, compute.DEFAULT_TEMPLATE, MODEL)  # load and warm up
    out: dict = {"model": MODEL, "runs": runs}
    for name, (labels, templates) in cases.items():
        cold, warm = [], []
        for _ in range(runs):  # paired: a cold call, then the same call warm, so drift hits both alike
            compute.clear_text_cache()
            cold.append(ms(lambda: compute.zero_shot(image, labels, templates, MODEL)))  # noqa: B023
            warm.append(ms(lambda: compute.zero_shot(image, labels, templates, MODEL)))  # noqa: B023
        assert compute.zero_shot(image, labels, templates, MODEL).cached
        n_prompts = len(compute.parse_labels(labels)) * len(compute.parse_templates(templates))
        cold_ms, warm_ms = statistics.median(cold), statistics.median(warm)
        out[name] = {"prompts": n_prompts, "cold_cache_ms": round(cold_ms, 2), "warm_cache_ms": round(warm_ms, 2),
                     "speedup": round(cold_ms / warm_ms, 2)}
    out["views"] = views(image)
    return out


def views(image, runs: int = 5) -> dict:
    """Issue 23's views on the embedded model: the figures they show and their median latency (warm caches)."""
    arch = compute.architecture(MODEL)
    emb = compute.embedding_map(compute.DEFAULT_MAP_N, 0, MODEL, image)
    temp = compute.contrastive_temperature(12, 0, compute.PAPER_INIT_TEMPERATURE, MODEL)
    found = compute.search(compute.DEFAULT_QUERY, compute.DEFAULT_TOP_K, MODEL)
    calls = {
        "embedding_map": lambda: compute.embedding_map(compute.DEFAULT_MAP_N, 0, MODEL, image),
        "maths": lambda: compute.maths_steps(image, ", ".join(SHAPES), compute.DEFAULT_TEMPLATE, MODEL),
        "temperature": lambda: compute.contrastive_temperature(12, 0, 0.07, MODEL),
        "search": lambda: compute.search(compute.DEFAULT_QUERY, compute.DEFAULT_TOP_K, MODEL),
        "architecture": lambda: compute.architecture(MODEL),
    }
    return {
        "parameters": arch.parameters, "macs_per_image": arch.macs_per_image, "macs_per_text": arch.macs_per_text,
        "text_tokens": arch.text_tokens, "macs_per_text_full_context": arch.macs_per_text_full_context,
        "map_explained_2_components": round(float(emb.explained[:2].sum()), 4),
        "map_centroid_gap": round(emb.centroid_gap, 4),
        "batch12_loss_at_0.07": round(temp.loss, 4), "batch12_loss_at_learned_tau": round(temp.learned_loss, 4),
        "learned_tau": round(temp.learned_temperature, 5), "best_grid_tau": round(temp.best_grid_temperature, 4),
        "search_top1": {"query": found.query, "caption": found.gallery.captions[found.hits[0][0]],
                        "cosine": round(found.hits[0][1], 4)},
        "median_ms": {name: round(median_ms(fn, runs), 2) for name, fn in calls.items()},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
