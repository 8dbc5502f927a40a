"""make bench: run every benchmark, print a table, write bench/results.json.

Each module here exposes ``run() -> dict``; every figure is a median of several runs next to a
baseline measured in the same run (these machines are noisy, so only ratios travel well).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
import traceback
from pathlib import Path

import torch

# module -> what it measures, in the order they run
BENCHES: dict[str, str] = {
    "hub": "hub start-up vs bare gradio; patchify vs echo",
    "models": "embedded ViT load and first inference",
    "clip_zero_shot": "zero-shot latency, warm vs cold text cache; params/MACs per tower, PCA variance, loss vs tau, search",
    "vla_tokenizer": "bin256 vs FAST encode+decode",
    "dit_stepper": "25-step sample on CPU, time per step; DiT S/B/L/XL x patch 2/4/8 params and GMACs vs the paper",
    "quant_latency": "fp32 / bf16 / int8 / ONNX latency and size",
    "attention_maps": "mean attention distance per layer on held-out shapes; rollout latency",
    "vit_anatomy": "preset params/GMACs vs papers; meta-device count time",
    "attribution": "IG completeness gap, FGSM flip rate at 2/255, 8/255, 0.1, sanity-check Spearman per method",
    "cnn_vs_vit": "final receptive fields (walk vs gradient span), ERF spread, inductive-bias table",
    "training_lab": "200-step fine-tune pretrained/scratch, strategy table, ViT-B/16 LoRA counts",
    "serving_planner": "queue simulation vs M/D/1 and M/M/1, batch curves + fit, plan for 100 req/s at p95 100 ms",
    "vq_tokens": "sampling time per image (64 tokens with KV cache), greedy, with frames",
    "mae_masking": "masked MSE vs mean-colour baseline, mask-ratio sweep, reconstruction latency",
    "video_attention": "attention MACs and memory at 8/16/32 frames (224/16, tubelet 2, ViT-B), joint/divided ratio",
    "vjepa_masking": "V-JEPA mask ratios over 100 seeds (16x224x224, patch 16, tubelet 2), both mask types",
    "load": "32 clients x 60 s per model endpoint: errors, p50/p95, server RSS",
}

OUT = Path(__file__).resolve().parent / "results.json"


def _flatten(prefix: str, value, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, rows)
    else:
        rows.append((prefix, json.dumps(value) if not isinstance(value, str) else value))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", default=None, help="comma-separated bench modules")
    args = parser.parse_args()
    selected = args.only.split(",") if args.only else list(BENCHES)
    results: dict = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.machine(),
                 "cpu": __import__("shared.device", fromlist=["x"]).describe_hardware()["cpu"],
                 "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    for name in selected:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as err:
            results[name] = {"skipped": f"no bench module ({err.name})"}
            continue
        print(f"== {name}: {BENCHES.get(name, '')}", flush=True)
        start = time.perf_counter()
        try:
            results[name] = module.run()
        except Exception as err:  # one failing bench must not hide the others
            traceback.print_exc()
            results[name] = {"error": f"{type(err).__name__}: {err}"}
        results[name + "_wall_s"] = round(time.perf_counter() - start, 1)
        OUT.write_text(json.dumps(results, indent=2) + "\n")
    rows: list[tuple[str, str]] = []
    _flatten("", results, rows)
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
