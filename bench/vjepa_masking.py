"""vjepa_masking's "Must show" figures: each mask type's ratio over 100 seeds at 16x224x224, patch 16, tubelet 2
(mean, min, max) beside the paper's "about 90%" (Bardes et al., 2024), the share of tokens the released collator
withholds from the context encoder in batches of 24, and the linear probe for motion direction on the frozen
encoder against the untrained one (shipped metrics.json, from ``python -m shared.models eval vjepa-tiny-shapes``);
plus the latency of one objective computation on a clip (median of ``runs``).

Run: ``.venv/bin/python -m bench.vjepa_masking`` (prints JSON), or ``python -m bench --only vjepa_masking``.
"""

from __future__ import annotations

import json
import statistics

from bench.timing import ms
from shared.models import shipped_metrics
from spaces.vjepa_masking import compute, options


def run(seeds: int = options.BENCH_SEEDS, runs: int = 11) -> dict:
    ratios = compute.ratio_stats(seeds)
    collator = compute.collator_stats(seeds)
    m = shipped_metrics(options.MODEL) or {}
    out = {
        "setting": {"frames": 16, "image_size": 224, "patch_size": 16, "tubelet": 2, "grid": ratios["grid"],
                    "seeds": seeds},
        "paper_average_ratio": options.PAPER_RATIO,
        "per_clip_ratio": {k: {q: v[q] for q in ("mean", "min", "max", "std", "independent_blocks_estimate")}
                           for k, v in ratios["types"].items()},
        "per_clip_mean_of_both_types": ratios["mean_of_both_types"],
        "collator_batch_of_24_withheld_from_encoder": {k: v["withheld_from_encoder"]
                                                       for k, v in collator["types"].items()},
        "collator_withheld_mean_of_both_types": collator["withheld_mean_of_both_types"],
        "probe": {k: m.get(k) for k in ("direction_probe_accuracy", "random_encoder_direction_probe_accuracy",
                                        "context_encoder_direction_probe_accuracy",
                                        "all_tokens_direction_probe_accuracy",
                                        "random_encoder_all_tokens_direction_probe_accuracy", "chance",
                                        "probe_train_clips", "probe_test_clips")},
    }
    if m:
        compute.objective(0, 0)
        out["objective_ms_median"] = round(statistics.median(ms(lambda: compute.objective(0, 0)) for _ in range(runs)), 1)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
