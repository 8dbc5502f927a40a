"""Pieces of the training recipes: Outlier Exposure's loss term, and the recipes' refusal of a bad outlier batch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from shared.training.loop import uniform_cross_entropy


def test_uniform_cross_entropy_is_cross_entropy_to_the_uniform_target():
    z = torch.randn(7, 5, generator=torch.Generator().manual_seed(0)) * 3
    target = torch.full_like(z, 1 / 5)  # probability targets (torch >= 1.10)
    assert float(uniform_cross_entropy(z)) == pytest.approx(float(F.cross_entropy(z, target)), rel=1e-6)


def test_uniform_cross_entropy_is_smallest_at_a_uniform_softmax():
    flat = torch.zeros(3, 5)
    assert float(uniform_cross_entropy(flat)) == pytest.approx(math.log(5))  # the entropy of the uniform
    peaked = torch.tensor([[9.0, 0, 0, 0, 0]])
    assert float(uniform_cross_entropy(peaked)) > math.log(5) + 5


@pytest.mark.parametrize("recipe", ["vit_tiny_shapes", "clip_tiny_shapes"])
def test_an_outlier_batch_that_does_not_split_is_refused(recipe, tmp_path):
    """With 2 accumulation steps an odd outlier batch cannot be shared out evenly: a clear error before any work
    (rendering, and for the ViT its first phase, come after the check)."""
    import importlib

    module = importlib.import_module(f"shared.training.{recipe}")
    with pytest.raises(ValueError, match="outlier batch 41 does not split into 1 processes x 2 accumulation steps"):
        module.train(str(tmp_path), cfg=module.Config(outlier_batch=41), grad_accum=2)
