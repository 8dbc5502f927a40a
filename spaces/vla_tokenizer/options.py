"""What the page needs at build time, with no heavy import: limits, choices, and the shipped BPE's facts.

The hub imports every ``app.py`` and calls ``build()`` at start-up (issue 14: start-up within 1.3x a bare
gradio app), so this module imports json and ``shared.models``' torch-free helpers only. ``compute.py``
imports its constants from here, so the page and the computation cannot disagree.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from shared.models import local_path, shipped_metrics

TOKENIZER = "fast-bpe-actions"  # the registry name of the BPE (shared/weights/fast-bpe-actions)
N_BINS = 256  # RT-2 / OpenVLA: 256 bins per dimension, one vocabulary of 256 tokens shared by all dimensions
MAX_SCALE = 1000.0
METHODS: tuple[str, ...] = ("bin256", "fast")
BOUNDS: tuple[str, ...] = ("chunk", "dataset")
BOUNDS_CHOICES = [("per-chunk bounds", "chunk"), ("dataset bounds", "dataset")]
SOURCES: tuple[str, ...] = ("generate", "the box (pasted or uploaded)")
SWEEP_SCALES: tuple[float, ...] = (1, 2, 3, 5, 10, 20, 50, 100, 200)
NOISE_LEVELS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
RATES_HZ: tuple[float, ...] = (5, 10, 15, 20, 30, 50, 100, 200)  # the control-frequency sweep
TABLE_HEADERS = ["dim", "range", "bin width", "bin256 max |err| inside", "bin256 mean |err|", "clipped",
                 "clipped max |err|", "FAST max |err|", "FAST mean |err|", "FAST non-zero coefs"]


@dataclass(frozen=True)
class Tokenizer:
    """Facts about the shipped BPE, read from the files its recipe wrote (fast_config.json, metrics.json)."""

    vocab_size: int
    scale: float  # the scale its training text was made at: the page's default
    quantile: float  # normalisation bounds: the (q, 1 - q) quantiles
    corpus_chunks: int  # shared.actions.corpus(corpus_chunks, seed 0): also the dataset for "dataset bounds"
    metrics: dict  # held-out token counts against bin256 (metrics.json)

    @property
    def percentiles(self) -> str:  # 0.01 -> "1st/99th"
        lo, hi = round(100 * self.quantile), round(100 * (1 - self.quantile))
        return f"{_ordinal(lo)}/{_ordinal(hi)}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@functools.cache
def tokenizer() -> Tokenizer:
    config = json.loads((local_path(TOKENIZER) / "fast_config.json").read_text())
    metrics = shipped_metrics(TOKENIZER) or {}
    return Tokenizer(int(config["vocab_size"]), float(config["scale"]), float(config["quantile"]),
                     int(metrics["corpus_chunks"]), metrics)


# ------------------------------------------------------------------------------------------
#                  Issue 23: bin counts, the VQ tokenizer, sequence layout, flow matching
# ------------------------------------------------------------------------------------------

VQ_TOKENIZER = "vq-actions"  # the registry name of the residual VQ (shared/weights/vq-actions)
BIN_COUNTS: tuple[int, ...] = (64, 256, 1024)  # uniform binning at these bin counts (the page's choice)
TRADEOFF_SCALES: tuple[float, ...] = (2, 5, 10, 20, 50)  # FAST's points on the error-tokens trade-off
HELDOUT_DEFAULT, HELDOUT_MAX = 30, 200  # held-out chunks the trade-off averages over
TRADEOFF_HEADERS = ["method", "setting", "tokens per chunk", "vocabulary", "bits per chunk",
                    "mean |err| (% of range)", "max |err| (% of range)", "mean |err| (input units)"]
THREE_HEADERS = ["method", "setting", "tokens", "vocabulary", "mean |err| (% of range)", "max |err| (% of range)",
                 "max |err| (input units)"]

# OpenVLA (Kim et al., 2024), each figure read in openvla/openvla at commit c8f03f4:
# prismatic/conf/vla.py (OpenVLA's base VLM "prism-dinosiglip-224px+7b"), prismatic/models/backbones/vision/
# dinosiglip_vit.py (DINOv2 ViT-L/14 and SigLIP So400m/14 at 224 px, patch features concatenated channel-wise,
# so the patch count is one backbone's), prismatic/models/vlms/prismatic.py (the patch embeddings go right
# after <BOS>), prismatic/models/backbones/llm/prompting/base_prompter.py ("In: {msg}\nOut: "),
# prismatic/vla/datasets/datasets.py (the prompt, then the 7 action tokens and the stop token </s>).
OPENVLA_IMAGE_SIZE = 224
OPENVLA_PATCH = 14
OPENVLA_ACTION_DIMS = 7
OPENVLA_PROMPT = "In: What action should the robot take to {instruction}?\nOut: "
PROMPT_TOKENS_DEFAULT = 20  # an assumption (no Llama 2 tokenizer offline here): the page says so
MAX_PROMPT_TOKENS = 4096  # Llama 2's context length
MAX_IMAGE_SIZE = 896
# pi0 (Black et al., 2024), read in Physical-Intelligence/openpi at commit 15a9616: src/openpi/models/model.py
# (three cameras, IMAGE_RESOLUTION 224x224), pi0.py (SigLIP "So400m/14"; one state token then the action
# horizon in the suffix; 10 Euler steps by default), pi0_config.py (action_horizon 50, action_dim 32,
# max_token_len 48 for pi0).
PI0_CAMERAS = 3
PI0_PROMPT_TOKENS = 48
PI0_STATE_TOKENS = 1
PI0_HORIZON = 50
PI0_ACTION_DIM = 32
PI0_EULER_STEPS = 10

FLOW_TIMES_DEFAULT, FLOW_TIMES_MAX = 5, 11  # how many tau values the path is drawn at
EULER_MAX = 100


@dataclass(frozen=True)
class VQFacts:
    """Facts about the shipped VQ tokenizer, read from its config.json and metrics.json."""

    steps: int
    hz: float
    dims: int
    patch: int
    levels: int
    codebook_size: int
    quantile: float  # normalisation bounds: the training set's (q, 1 - q) quantiles
    metrics: dict

    @property
    def percentiles(self) -> str:  # 0.01 -> "1st/99th"
        lo, hi = round(100 * self.quantile), round(100 * (1 - self.quantile))
        return f"{_ordinal(lo)}/{_ordinal(hi)}"

    @property
    def segments(self) -> int:  # latent vectors per chunk
        return self.steps // self.patch * self.dims


@functools.cache
def vq_facts() -> VQFacts:
    config = json.loads((local_path(VQ_TOKENIZER) / "config.json").read_text())
    return VQFacts(int(config["steps"]), float(config["hz"]), int(config["dims"]), int(config["patch"]),
                   int(config["levels"]), int(config["codebook_size"]), float(config["quantile"]),
                   shipped_metrics(VQ_TOKENIZER) or {})
SEQUENCE_HEADERS = ["layout", "BOS", "image", "prompt", "state", "action", "stop", "total", "note"]
