"""Limits, defaults and names the serving planner needs at start-up (no torch, numpy-free too: the hub
builds every page when it starts). ``compute.py`` imports its limits from here, so each is defined once."""

from __future__ import annotations

# ---- simulation ---------------------------------------------------------------------------------------
MAX_REQUESTS = 2_000_000  # cap on expected arrivals (rate x seconds) per simulation: ~2-4 s of CPU here
MAX_RATE_RPS = 100_000.0
MAX_SECONDS = 3_600.0  # simulated seconds
MAX_SERVICE_MS = 60_000.0
MAX_WAIT_MS = 10_000.0
MAX_SIM_BATCH = 1024  # max_batch cap of the simulated batcher
SERVICE_KINDS = ("deterministic", "exponential")
QUEUE_SAMPLES = 400  # points of the queue-length-over-time curve

DEFAULT_RATE = 100.0
DEFAULT_S1_MS = 4.0  # batch-1 service time; "use the fit" copies the measured one
DEFAULT_PER_ITEM_MS = 1.0
DEFAULT_MAX_BATCH = 8
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_SECONDS = 60.0
DEFAULT_SEED = 0

# ---- sweep (latency against arrival rate, several batcher settings) ----------------------------------
SWEEP_POINTS = 10  # arrival rates per configuration, up to SWEEP_MAX_LOAD x the configuration's capacity
SWEEP_MAX_LOAD = 1.1
SWEEP_REQUESTS = 20_000  # requests simulated per point (seconds = requests / rate)
DEFAULT_CONFIGS = "1/0, 8/5, 32/20"  # max_batch/max_wait_ms pairs
MAX_CONFIGS = 6

# ---- measurement ---------------------------------------------------------------------------------------
EMBEDDED_MODEL = "vit-tiny-shapes"
VIT_B16_RANDOM = "vit-b16-random"
VIT_B16_RANDOM_LABEL = "ViT-B/16 architecture, random weights (latency only)"
# ViT-B/16 as published (Dosovitskiy et al., 2021, Table 1: 12 layers, width 768, MLP 3072, 12 heads;
# patch 16 at 224 px, 1000 ImageNet classes as in google/vit-base-patch16-224).
VIT_B16: dict[str, int] = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                           "intermediate_size": 3072, "patch_size": 16, "image_size": 224, "num_labels": 1000}
MODELS: dict[str, str] = {EMBEDDED_MODEL: "vit-tiny-shapes (trained here)", VIT_B16_RANDOM: VIT_B16_RANDOM_LABEL}
PRECISIONS: dict[str, str] = {"fp32": "PyTorch eager, float32", "bf16": "PyTorch eager, bfloat16 weights and activations"}
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
MAX_MEASURE_BATCH = 64
MAX_RUNS = 30
WARMUP_RUNS = 2
THREADS = 1  # one core per replica: the plan counts replicas as cores
# ViT-B/16 takes 0.3-1 s per image on one shared core here: (runs + warm-up) x images per call is capped so
# a call cannot hold the measurement lock for many minutes (e.g. batches 1-64 with 1 timed run: 381).
MAX_VIT_B16_IMAGE_PASSES = 400
DEFAULT_BATCHES = [1, 2, 4, 8, 16, 32, 64]
DEFAULT_RUNS = 7

# ---- plan ------------------------------------------------------------------------------------------------
PLAN_BATCHES = (1, 2, 4, 8, 16, 32, 64)
PLAN_WAITS_MS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)
PLAN_REQUESTS = 20_000  # requests simulated per candidate setting
MAX_REPLICAS = 256
DEFAULT_TARGET_P95_MS = 100.0
DEFAULT_PEAK_RPS = 100.0
# Prices are inputs, not facts: the defaults are placeholders to edit (say, a cloud vCPU-hour and a V100-hour).
DEFAULT_CPU_PRICE = 0.05  # $ per replica-hour (one core)
DEFAULT_GPU_PRICE = 3.00  # $ per GPU-hour

# GPU entries: cited, NOT measured here. PaddleClas model docs, "ViT and DeiT", section 3 "prediction
# speed on a V100 GPU", FP32 (PaddlePaddle/PaddleClas, docs/zh_CN/models/ImageNet1k/ViT_and_DeiT.md):
# ViT_base_patch16_224 at batch 1, 4, 8.
GPU_CITED: dict[str, dict] = {
    "ViT-B/16 224 px, V100, FP32 (PaddleClas docs)": {
        "batch_ms": {1: 6.12, 4: 14.84, 8: 28.51},
        "source": "PaddlePaddle/PaddleClas, docs/zh_CN/models/ImageNet1k/ViT_and_DeiT.md, section 3 (V100 GPU, FP32)",
    },
}

# ---- monitoring --------------------------------------------------------------------------------------------
MONITOR_SETS = ("test", "shifted", "matplotlib")
MAX_MONITOR_IMAGES = 1000
DEFAULT_MONITOR_IMAGES = 200
