"""Video transformers: the issue's "Must show" figures, reproducibly.

- ``cost_table``: 8, 16 and 32 frames at 224 px, patch 16, tubelet 2, ViT-B width (d 768, 12 layers), the three
  attention patterns (joint, divided, factorised), through ``compute.attention_cost`` (the ``video_attention_cost``
  endpoint's code path), with the joint / divided ratios of MACs and memory. Every cell's ``attention_macs`` is
  recounted by ``torch.utils.flop_counter.FlopCounterMode`` on reference attentions with each pattern's reshapes in
  ``tests/unit/test_video_attention.py::test_attention_macs_match_a_flop_counter``;
- ``direction_accuracy``: the embedded ``video-vit-tiny-shapes`` re-evaluated on its held-out test clips
  (``python -m shared.models eval video-vit-tiny-shapes``), beside the value its metrics.json ships.

Run: ``.venv/bin/python -m bench.video_attention`` (prints JSON and a table).
"""

from __future__ import annotations

import json

from spaces.video_attention import compute, options

SETUP = {"image_size": 224, "patch_size": 16, "tubelet": 2, "hidden_size": 768, "layers": 12}


def run() -> dict:
    rows = compute.cost_table(options.TABLE_FRAMES, **SETUP)
    from shared.models import evaluate, shipped_metrics

    shipped = shipped_metrics(options.MODEL) or {}
    try:
        measured = evaluate(options.MODEL)
        accuracy = {"direction_accuracy": measured["direction_accuracy"], "n_test": measured["n_test"],
                    "shipped_direction_accuracy": shipped.get("direction_accuracy"),
                    "train_clips": shipped.get("train_clips")}
    except ValueError as err:  # not trained here
        accuracy = {"skipped": str(err)}
    return {"setup": {**SETUP, "heads": 12}, "cost_table": rows, "model": accuracy}


def _table(result: dict) -> str:
    lines = ["| frames | tokens | joint GMACs | divided GMACs | factorised GMACs | joint/divided MACs | "
             "joint MiB | divided MiB | factorised MiB | joint/divided memory |", "|" + "---|" * 10]
    for r in result["cost_table"]:
        lines.append(f"| {r['frames']} | {r['tokens']} | {r['joint GMACs']} | {r['divided GMACs']} | "
                     f"{r['factorised GMACs']} | {r['joint / divided MACs']} | {r['joint matrix MiB']} | "
                     f"{r['divided matrix MiB']} | {r['factorised matrix MiB']} | {r['joint / divided memory']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    result = run()
    print(json.dumps(result, indent=1))
    print(_table(result))
