"""shared/attention.py against computations written out here, loop by loop, from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shared import attention
from shared.data.shapes import ShapesDataset
from shared.models import load


@pytest.fixture(scope="module")
def captured():
    model, processor = load("vit-tiny-shapes", device="cpu", attn="eager")
    image = ShapesDataset("test", 1, size=64)[0][0]
    return attention.capture(model, processor, image), model


def _rollout_by_hand(maps: np.ndarray, prefix: int, fusion: str, ratio: float) -> np.ndarray:
    layers, heads, n, _ = maps.shape
    result = np.eye(n)
    for layer in range(layers):
        a = {"mean": maps[layer].mean(0), "max": maps[layer].max(0), "min": maps[layer].min(0)}[fusion].copy()
        k = math.floor(ratio * (n * n - 1))
        order = sorted((a[i, j], i, j) for i in range(n) for j in range(n) if (i, j) != (0, 0))
        for _, i, j in order[:k]:
            a[i, j] = 0.0
        a = (a + np.eye(n)) / 2
        a = a / a.sum(axis=1, keepdims=True)
        result = a @ result
    row = result[0, prefix:]
    return row / row.sum()


def test_capture_shapes_and_rows_sum_to_one(captured):
    att, model = captured
    cfg = model.config
    grid = cfg.image_size // cfg.patch_size
    assert att.maps.shape == (cfg.num_hidden_layers, cfg.num_attention_heads, 1 + grid * grid, 1 + grid * grid)
    assert att.prefix == 1 and att.grid == (grid, grid)
    torch.testing.assert_close(att.maps.sum(-1), torch.ones(att.maps.shape[:-1]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fusion", attention.FUSIONS)
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
def test_rollout_matches_the_definition_written_out(captured, fusion, ratio):
    att, _ = captured
    got = attention.rollout(att, fusion, ratio)
    expected = _rollout_by_hand(att.maps.double().numpy(), att.prefix, fusion, ratio).reshape(att.grid)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.sum() == pytest.approx(1.0, abs=1e-5)


def test_mean_distance_by_hand_and_for_a_uniform_head(captured):
    att, _ = captured
    got = attention.mean_distance(att)
    p, (rows, cols), size = att.prefix, att.grid, att.patch_size
    a = att.maps[1, 2].double().numpy()[p:, p:]
    total = 0.0
    for q in range(rows * cols):
        w = a[q] / a[q].sum()
        qy, qx = divmod(q, cols)
        total += sum(w[k] * math.dist(((qy + .5) * size, (qx + .5) * size), ((k // cols + .5) * size, (k % cols + .5) * size))
                     for k in range(rows * cols))
    assert got[1, 2] == pytest.approx(total / (rows * cols), rel=1e-5)
    # a head that attends uniformly: the mean pairwise distance of the grid
    uniform = attention.Attention(torch.full((1, 1, 1 + rows * cols, 1 + rows * cols), 1 / (1 + rows * cols)),
                                  1, (rows, cols), size, rows * size, None, torch.zeros(1))
    centres = attention.patch_centres((rows, cols), size)
    pairwise = np.mean([math.dist(c1, c2) for c1 in centres for c2 in centres])
    assert attention.mean_distance(uniform)[0, 0] == pytest.approx(pairwise, rel=1e-6)


def test_entropy_in_nats(captured):
    att, _ = captured
    p = att.maps[0, 0, 0].double().numpy()
    assert attention.cls_entropy(att)[0, 0] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-5)
    n = att.maps.shape[-1]
    uniform = attention.Attention(torch.full((1, 1, n, n), 1 / n), 1, att.grid, att.patch_size, att.image_size,
                                  None, torch.zeros(1))
    assert attention.cls_entropy(uniform)[0, 0] == pytest.approx(math.log(n), rel=1e-6)


@pytest.mark.parametrize("ratio", [-0.1, 1.0, float("nan"), "abc"])
def test_bad_discard_ratio(captured, ratio):
    with pytest.raises(ValueError, match="discard ratio"):
        attention.rollout(captured[0], "mean", ratio)


def test_unknown_fusion(captured):
    with pytest.raises(ValueError, match=r"unknown head fusion 'median'; choose one of \['mean', 'max', 'min'\]"):
        attention.rollout(captured[0], "median")


def test_sdpa_model_gives_a_clear_message():
    model, processor = load("vit-tiny-shapes", device="cpu", attn="sdpa")
    image = ShapesDataset("test", 1, size=64)[0][0]
    with pytest.raises(ValueError, match="attn='eager'"):
        attention.capture(model, processor, image)


def test_label_is_the_argmax_class(captured):
    att, model = captured
    assert attention.label_of(att, model) == model.config.id2label[int(att.logits.argmax())]
