"""The interpretability space's figures on held-out shapes (test split), through its own compute code.

- ``integrated_gradients``: the completeness gap |Σ attributions - logit difference| / |logit difference|
  of the predicted class, all-black baseline, at the page's step count (midpoint Riemann sum) and at 4x
  that count, over the images (median, mean, max).
- ``fgsm``: the share of images whose prediction changes after one FGSM step (untargeted, raising the
  loss of the predicted class) at ε = 2/255, 8/255 and 0.1, with the ε actually applied after the 8-bit
  rounding toward the original pixel (0.1 -> 25/255); also among the images the model gets right.
- ``sanity``: Spearman's rank correlation (of the absolute maps) between the trained and the randomised
  model's map, per method, for the full cascade and for the classifier head only (Adebayo et al., 2018):
  median and mean over the images where it is defined (a constant map has no ranks: counted as undefined).
- ``latency_ms``: median time of one ``explain`` call per method (context for the page).

Run: ``.venv/bin/python -m bench.attribution [n]`` (prints JSON; n defaults to 100 images).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from shared.data.shapes import SHAPES, ShapesDataset
from spaces.attribution import compute, options

EPSILONS = {"2/255": 2 / 255, "8/255": 8 / 255, "0.1": 0.1}


def _summary(values: list[float]) -> dict:
    """Median, mean, max and min over the images where the value is defined; ``undefined`` counts the rest
    (a rank correlation with a constant map, e.g. a Grad-CAM map that ReLU zeroed)."""
    a = np.asarray(values, dtype=np.float64)
    ok = a[np.isfinite(a)]
    out = {"median": float(f"{np.median(ok):.4g}"), "mean": float(f"{ok.mean():.4g}"),
           "max": float(f"{ok.max():.4g}"), "min": float(f"{ok.min():.4g}")} if ok.size else {}
    return {**out, "n": int(ok.size), "undefined": int(a.size - ok.size)}


def run(n: int = 100) -> dict:
    data = ShapesDataset("test", n, size=64)
    model_name = options.DEFAULT_MODEL
    gaps, gaps_4x = [], []
    flips = {k: [] for k in EPSILONS}
    applied = {}
    correct = []
    rho = {r: {m: [] for m in options.METHODS} for r in options.RANDOMISATIONS}
    latency = {m: [] for m in options.METHODS}
    gradcam_all_zero = 0
    for i in range(n):
        image, label, _ = data[i]
        for method in options.METHODS:
            t0 = time.perf_counter()
            res = compute.explain(image, method, "", model_name)
            latency[method].append((time.perf_counter() - t0) * 1000)
            gradcam_all_zero += method == "gradcam" and "note" in res.extras
            if method == "integrated_gradients":
                gaps.append(res.extras["completeness_gap"])
                v = compute.view(image, model_name)
                gaps_4x.append(compute.integrated_gradients(v.model, v, res.target_index,
                                                            steps=4 * options.IG_STEPS).completeness_gap)
        correct.append(res.predicted == SHAPES[label])
        for key, eps in EPSILONS.items():
            f = compute.fgsm(image, eps, "", model_name)
            flips[key].append(f.label_after != f.label_before)
            applied[key] = f.steps_8bit / 255
        for randomisation in options.RANDOMISATIONS:
            s = compute.sanity_check(image, randomisation, "", model_name)
            for m, r in s.spearman_abs.items():
                rho[randomisation][m].append(r)
    ok = np.asarray(correct)
    return {
        "model": model_name, "images": n, "split": "test", "size": 64,
        "accuracy_on_these": round(float(ok.mean()), 4),
        "integrated_gradients": {
            "steps": options.IG_STEPS, "rule": "midpoint Riemann sum", "baseline": "all-black (zeros in [0, 1])",
            "completeness_gap": _summary(gaps),
            f"completeness_gap_at_{4 * options.IG_STEPS}_steps": _summary(gaps_4x),
        },
        "fgsm": {key: {"epsilon_applied": round(applied[key], 6),
                       "flip_rate": round(float(np.mean(flips[key])), 4),
                       "flip_rate_correct_only": round(float(np.asarray(flips[key])[ok].mean()), 4) if ok.any() else None}
                 for key in EPSILONS},
        "gradcam_all_zero_maps_trained": gradcam_all_zero,
        "sanity_spearman_abs": {r: {m: _summary(v) for m, v in by.items()} for r, by in rho.items()},
        "randomisations": dict(options.RANDOMISATIONS),
        "latency_ms": {m: round(float(np.median(v)), 2) for m, v in latency.items()},
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100), indent=2))
