"""mae_masking's "Must show" figures: masked MSE against the mean-colour baseline and the linear probe against a
random encoder (from ``python -m shared.models eval mae-tiny-shapes``, stored in metrics.json, and re-measured
live on a subset), the mask-ratio sweep recomputed on ``n`` images, mask patterns at 0.75, and the latency of one
reconstruction (median of ``runs``).

Run: ``.venv/bin/python -m bench.mae_masking`` (prints JSON), or via ``bench/__main__.py``.
"""

from __future__ import annotations

import json
import statistics

from bench.timing import ms
from shared.images import sample_paths
from shared.models import evaluate, shipped_metrics
from spaces.mae_masking import compute, options


def run(n: int = 200, runs: int = 21) -> dict:
    from PIL import Image

    shipped = shipped_metrics(options.MODEL) or {}
    live = evaluate(options.MODEL, n=n, probe_train=2 * n, probe_test=n, sweep=(0.75,))
    image = Image.open(sample_paths()[0]).convert("RGB")
    loaded = compute.load()
    compute.reconstruct(image, 0.75, 0, loaded=loaded)
    latency = statistics.median(ms(lambda: compute.reconstruct(image, 0.75, 0, loaded=loaded)) for _ in range(runs))
    patterns = {r.extra["pattern"]: {"loss": round(r.loss, 4), "baseline": round(r.baseline_loss, 4)}
                for r in compute.compare_patterns(image, 0.75, 0)}
    return {
        "shipped": {k: shipped.get(k) for k in ("masked_mse", "baseline_mse", "mse_ratio", "linear_probe_accuracy",
                                                "random_encoder_probe_accuracy", "probe_train_images",
                                                "probe_test_images", "mse_images", "sweep")},
        "live_subset": {k: live[k] for k in ("masked_mse", "baseline_mse", "mse_ratio", "linear_probe_accuracy",
                                            "random_encoder_probe_accuracy", "probe_train_images", "probe_test_images")},
        "sweep_recomputed": compute.sweep(options.SWEEP_RATIOS, min(n, options.MAX_SWEEP_IMAGES)),
        "patterns_at_075_sample0": patterns,
        "reconstruct_ms_median": round(latency, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
