"""Training lab: a 200-step fine-tune from ``pretrained`` and from ``scratch`` (default knobs otherwise),
wall time on this CPU and the validation accuracy reached; the fine-tuning strategy table (linear probe,
LoRA, full fine-tune on the same budget); the LoRA counts of ViT-B/16 at ranks 4, 8, 16 on q_proj, v_proj.

Run: ``.venv/bin/python -m bench.training_lab`` (prints JSON and tables).
"""

from __future__ import annotations

import json

import torch

from spaces.training_lab import compute, options


def fine_tunes(steps: int = 200) -> dict:
    """``steps`` steps from each start with the page's defaults (the learning rate the page sets for it)."""
    runs = {}
    for start in options.STARTS:
        cfg = compute.make_config(start, steps, options.START_LR[start], options.DEFAULT_BATCH,
                                  options.DEFAULT_LABEL_SMOOTHING, options.DEFAULT_MIXUP, 0)
        r = compute.train(cfg)
        runs[start] = {"steps": steps, "batch_size": cfg.batch_size, "wall_s": round(r.seconds, 1),
                       "s_per_step": round(r.seconds / steps, 3), "val_accuracy_before": r.initial_val_accuracy,
                       "val_accuracy": r.val_accuracy, "final_loss": r.history[-1]["loss"], "lr": cfg.lr}
    return runs


def run(steps: int = 200) -> dict:
    runs = fine_tunes(steps)
    lora = {r: compute.lora_params(options.VIT_B16, r, "q_proj,v_proj") for r in (4, 8, 16)}
    return {"torch_threads": torch.get_num_threads(), "fine_tune_200": runs,
            "strategies": compute.compare_strategies(),
            "lora_vit_b16_qv": {r: {k: v[k] for k in ("trainable", "total", "percent")} for r, v in lora.items()}}


if __name__ == "__main__":
    result = run()
    print(json.dumps(result, indent=2))
    print("\n| start | lr | steps | wall s | s/step | val acc before | val acc after |\n|---|---|---|---|---|---|---|")
    for start, r in result["fine_tune_200"].items():
        print(f"| {start} | {r['lr']:g} | {r['steps']} | {r['wall_s']} | {r['s_per_step']} | "
              f"{r['val_accuracy_before']:.3f} | {r['val_accuracy']:.3f} |")
    print("\n| strategy | trainable | % | lr | val acc before | val acc after | s |\n|---|---|---|---|---|---|---|")
    for r in result["strategies"]:
        print(f"| {r['strategy']} | {r['trainable']:,} | {r['percent_trainable']} | {r['lr']} | "
              f"{r['val_accuracy_before']:.3f} | {r['val_accuracy']:.3f} | {r['seconds']} |")
