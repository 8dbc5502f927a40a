"""vq-actions: the shipped codebooks meet their bars, k-means restarts dead codes, the recipe is deterministic."""

from __future__ import annotations

import filecmp

import numpy as np
import torch

from shared.models import evaluate
from shared.training.vq_actions import Config, kmeans, train


def test_vq_actions_quality():
    m = evaluate("vq-actions", n=30)
    levels = m["by_levels"]
    errors = [row["relative_mean_error"] for row in levels.values()]
    assert errors == sorted(errors, reverse=True)  # every residual level helps
    assert errors[-1] < 0.03  # under 3% of each chunk's range with all levels
    assert [row["tokens_per_chunk"] for row in levels.values()] == [35, 70, 105]
    assert m["codes_used_level_1"] > 0.4 * m["codebook_size"]  # 30 chunks x 35 segments use much of the codebook


def test_kmeans_finds_separated_clusters_and_restarts_dead_codes():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    # 200 points at the first centre, one at each of the others: a random start picks the first centre
    # three times, two codes go dead and are restarted on the worst-served points
    x = torch.cat([centres[:1].repeat(200, 1), centres[1:]])
    codes, restarts = kmeans(x, 3, 5, torch.Generator().manual_seed(0))
    assert restarts >= 1
    found = sorted(map(tuple, codes.round(decimals=6).tolist()))
    assert found == sorted(map(tuple, centres.tolist()))
    # well-separated blobs: each code ends at its blob's mean (computed here with numpy)
    rng = np.random.default_rng(0)
    blobs = [rng.normal(loc=c, scale=0.1, size=(50, 2)) for c in ([0, 0], [5, 5], [-5, 5])]
    codes, _ = kmeans(torch.tensor(np.concatenate(blobs)), 3, 10, torch.Generator().manual_seed(1))
    means = sorted(tuple(np.round(b.mean(0), 6)) for b in blobs)
    np.testing.assert_allclose(sorted(map(tuple, codes.numpy().round(6))), means, atol=1e-6)


def test_recipe_is_deterministic(tmp_path):
    cfg = dict(train_chunks=120, iterations=3, eval_chunks=6, levels=2, codebook_size=16)
    a = train(str(tmp_path / "a"), cfg=Config(**cfg))
    train(str(tmp_path / "b"), cfg=Config(**cfg))
    assert filecmp.cmp(tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors", shallow=False)
    assert a["tokens_per_chunk"] == 5 * 7 * 2 and (tmp_path / "a" / "README.md").is_file()
