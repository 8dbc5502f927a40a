"""fast-bpe-actions: the shipped BPE meets its bars and its recipe is deterministic."""

from __future__ import annotations

import filecmp

from shared.models import evaluate
from shared.training.fast_bpe_actions import Config, train


def test_fast_bpe_actions_quality():
    metrics = evaluate("fast-bpe-actions", n=60)
    assert metrics["vocab_size"] == 1024
    assert metrics["bpe_roundtrip_exact"] == "60/60"
    # smooth 1-second 50 Hz chunks: clearly fewer tokens than the 350 of 256-bin tokenization
    assert metrics["compression_vs_bin256_noise0"] > 4.0
    assert metrics["mean_tokens_50x7_noise0"] < metrics["mean_tokens_50x7_noise0.2"]


def test_recipe_is_deterministic(tmp_path):
    cfg = dict(chunks=1500, eval_chunks=6)
    train(str(tmp_path / "a"), cfg=Config(**cfg))
    train(str(tmp_path / "b"), cfg=Config(**cfg))
    assert filecmp.cmp(tmp_path / "a" / "tokenizer.json", tmp_path / "b" / "tokenizer.json", shallow=False)
