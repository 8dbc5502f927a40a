"""spaces/patch_explorer: every compute function checked against an independent computation, and the page.

Expected numbers come from the ViT paper (224/16 -> 196 patches of 768 values, ViT-B/16's
patch embedding 768*768 + 768 parameters) or from straightforward re-implementations written
here with loops (sin-cos tables, patch order, neighbour statistics). The page's model facts are
compared with the files shipped beside the weights. Tests that need the trained vit-tiny-shapes
weights are marked ``needs_weights`` and skip without them.
"""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shared.models import available_offline
from spaces.patch_explorer import compute as C

needs_weights = pytest.mark.skipif(not available_offline("vit-tiny-shapes"),
                                   reason="needs the trained shared/weights/vit-tiny-shapes")


def _random_image(size: int, seed: int = 0, width: int | None = None) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size, width or size, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def tiny_vit():
    """A randomly initialised ViT with vit-tiny-shapes' configuration (no weights needed)."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=5)
    return ViTForImageClassification(config).eval()


@pytest.fixture(scope="module")
def trained():
    from shared.models import load

    return load("vit-tiny-shapes", device="cpu", attn="eager").model


# --------------------------------------------------------------------------------------
#                                   Grid arithmetic and validation
# --------------------------------------------------------------------------------------

def test_vit_b16_numbers():
    g = C.patch_grid(224, 16)
    assert (g.rows, g.cols, g.num_patches, g.seq_len, g.patch_dim) == (14, 14, 196, 197, 768)
    assert g.projection_params(768) == 768 * 768 + 768 == 590_592  # ViT-B/16 patch embedding
    assert g.dropped == 0 and "nothing is cropped" in g.crop_note()


@pytest.mark.parametrize("size,patch,n", [(384, 16, 576), (224, 14, 256), (224, 32, 49), (224, 224, 1), (64, 2, 1024)])
def test_patch_counts(size, patch, n):
    g = C.patch_grid(size, patch)
    assert g.num_patches == n == (size // patch) ** 2
    assert g.seq_len == n + 1


def test_indivisible_patch_size_is_floored_and_cropped():
    g = C.patch_grid(224, 24)  # 224 = 9*24 + 8
    assert (g.rows, g.num_patches, g.covered, g.dropped) == (9, 81, 216, 8)
    note = g.crop_note()
    assert "8 pixel rows" in note and "216x216" in note and str(224 * 224 - 216 * 216) in note


@pytest.mark.parametrize("size", [0, 7, 1025, -224, 3.5, "abc", "2.5e2", True, None, float("nan")])
def test_bad_image_size(size):
    with pytest.raises(ValueError, match="image size must be an integer from 8 to 1024"):
        C.patch_grid(size, 4)


@pytest.mark.parametrize("patch", [0, 1, -4, 225, 3.5, "abc", False])
def test_bad_patch_size(patch):
    with pytest.raises(ValueError, match="patch size must be an integer from 2 to 224"):
        C.patch_grid(224, patch)


def test_integral_values_from_json_and_text_are_accepted():
    """A JSON client may send 224.0; a typed dropdown sends "224" (shared.validate accepts both)."""
    assert C.patch_grid(224.0, "16").num_patches == C.patch_grid(224, 16).num_patches == 196


def test_bad_width():
    for d in (0, -1, C.MAX_WIDTH + 1, 2.5):
        with pytest.raises(ValueError, match="width D"):
            C.patch_grid(224, 16).projection_params(d)


def test_compare_patch_sizes():
    rows = {r["patch_size"]: r for r in C.compare_patch_sizes(224)}
    assert sorted(rows) == [8, 16, 32]
    for p, tokens in ((8, 28 * 28 + 1), (16, 197), (32, 50)):
        assert rows[p]["tokens"] == tokens
        assert rows[p]["attention_entries"] == tokens * tokens
        assert rows[p]["fp32_bytes"] == 4 * tokens * tokens and rows[p]["bf16_bytes"] == 2 * tokens * tokens
    assert C.compare_patch_sizes(384)[1]["attention_entries"] == 577**2  # 384/16: 576 patches + CLS
    assert [r["patch_size"] for r in C.compare_patch_sizes(16)] == [8, 16]  # P > S is left out


def test_human_bytes():
    assert C.human_bytes(512) == "512 B"
    assert C.human_bytes(1536) == "1.5 KiB"
    assert C.human_bytes(4 * 197 * 197) == f"{4 * 197 * 197 / 1024:.1f} KiB"
    assert C.human_bytes(3 * 2**30) == "3.0 GiB"


# --------------------------------------------------------------------------------------
#                                   Preparation and patches
# --------------------------------------------------------------------------------------

def test_prepare_centre_crops_then_resizes():
    arr = np.zeros((200, 300, 3), np.uint8)
    arr[:, :50] = (255, 0, 0)  # left 50 columns red
    arr[:, 50:250] = (0, 255, 0)  # centre 200 columns green
    arr[:, 250:] = (0, 0, 255)  # right 50 columns blue
    out, note = C.prepare(Image.fromarray(arr), 200)
    assert out.size == (200, 200)
    assert (np.asarray(out) == (0, 255, 0)).all()  # the borders of the long side are gone
    assert "centre-cropped" in note and "100 columns" in note
    out, note = C.prepare(Image.fromarray(arr), 64)
    assert out.size == (64, 64) and "resized" in note
    assert np.abs(np.asarray(out).astype(int) - (0, 255, 0)).max() <= 2


def test_prepare_rejects_non_images():
    with pytest.raises(ValueError, match="PIL image"):
        C.prepare(np.zeros((8, 8, 3)), 32)


def test_patchify_stats():
    r = C.patchify(_random_image(300, width=400), 224, 16)
    stats = r.stats(width=768)
    assert r.image.size == (224, 224)
    assert {k: stats[k] for k in ("grid_rows", "grid_cols", "num_patches", "seq_len", "patch_dim")} == {
        "grid_rows": 14, "grid_cols": 14, "num_patches": 196, "seq_len": 197, "patch_dim": 768}
    assert stats["projection_params"] == 590_592 and stats["cropped_pixels"] == 0


def test_patches_raster_order_against_loops():
    img = _random_image(20, seed=1)
    got = C.patches(img, 6)  # 3x3 patches, the last 2 rows/cols dropped
    arr = np.asarray(img)
    expected = [arr[r * 6:(r + 1) * 6, c * 6:(c + 1) * 6] for r in range(3) for c in range(3)]
    assert got.shape == (9, 6, 6, 3)
    np.testing.assert_array_equal(got, np.stack(expected))


def test_flatten_patch_is_channel_major():
    patch = np.arange(4 * 4 * 3).reshape(4, 4, 3)
    expected = [patch[i, j, c] for c in range(3) for i in range(4) for j in range(4)]
    np.testing.assert_array_equal(C.flatten_patch(patch), expected)


def test_crop_to_patches():
    assert C.crop_to_patches(_random_image(224), 24).size == (216, 216)


# --------------------------------------------------------------------------------------
#                                   Drawing
# --------------------------------------------------------------------------------------

def test_overlay_grid_labels_highlight_and_margin():
    img = Image.new("RGB", (224, 224), (100, 100, 100))
    out, facts = C.overlay(img, 24, highlight=10)
    s = facts["scale"]
    assert s == 2 and out.size == (448, 448) and facts["label_step"] == 1
    arr = np.asarray(out).astype(int)
    assert tuple(arr[300, 24 * s]) == (255, 255, 255)  # a vertical grid line at column 24
    assert tuple(arr[136, 136]) == (100, 100, 100)  # inside a patch, away from lines and labels
    r, c = divmod(10, 9)
    assert tuple(arr[r * 48 + 30, c * 48]) == (255, 40, 40)  # highlight outline of patch 10
    margin = arr[440, 100]  # bottom 8 rows are dropped: tinted red
    assert margin[0] > 100 > margin[1]
    with pytest.raises(ValueError, match="patch index"):
        C.overlay(img, 24, highlight=81)


def test_overlay_skips_labels_when_patches_are_tiny():
    out, facts = C.overlay(_random_image(512), 2)
    assert out.size == (512, 512) and facts["label_step"] == 0 and facts["line_step"] == 2


def test_patch_at():
    assert C.patch_at(0, 0, 224, 16) == 0
    assert C.patch_at(33, 17, 224, 16) == 1 * 14 + 2
    assert C.patch_at(2 * 33, 2 * 17, 224, 16, scale=2) == 16
    with pytest.raises(ValueError, match="cropped margin"):
        C.patch_at(220, 10, 224, 24)


def test_token_strip():
    img = _random_image(64, seed=2)
    strip, shown = C.token_strip(img, 32, per_row=4, tile=32)
    assert shown == 5  # [CLS] + 4 patches
    arr, gap, label_h = np.asarray(strip), 4, 13
    x0, y0 = gap + 1 * (32 + gap), gap + label_h  # token 1 = patch 0 (top-left 32x32)
    np.testing.assert_array_equal(arr[y0:y0 + 32, x0:x0 + 32], np.asarray(img)[:32, :32])
    _, shown = C.token_strip(_random_image(256), 4)
    assert shown == C.MAX_STRIP_TOKENS  # 4097 tokens, the first 256 drawn


# --------------------------------------------------------------------------------------
#                                   Linear projection
# --------------------------------------------------------------------------------------

def test_to_pixels_range():
    x = C.to_pixels(Image.fromarray(np.array([[[0, 255, 127]]], np.uint8)))
    assert x.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(x.flatten().numpy(), [-1, 1, 127 / 127.5 - 1], atol=1e-6)


def test_seeded_projection_is_reproducible_and_bounded():
    a, b = C.seeded_projection(4, 8, seed=3), C.seeded_projection(4, 8, seed=3)
    torch.testing.assert_close(a.weight, b.weight)
    assert not torch.equal(a.weight, C.seeded_projection(4, 8, seed=4).weight)
    assert a.weight.abs().max() <= 1 / math.sqrt(48)
    with pytest.raises(ValueError, match="limit"):
        C.seeded_projection(128, 4096)


def test_conv_equals_unfold_and_independent_matmul():
    img = _random_image(48, seed=5)
    conv = C.seeded_projection(8, 16, seed=1)
    out = C.conv_vs_unfold(C.to_pixels(img), conv)
    assert out["max_abs_diff"] < 1e-5
    # independent: numpy patches (loops above) flattened channel-major, float64 matmul
    x = np.stack([C.flatten_patch(p) for p in C.patches(img, 8)]) / 127.5 - 1  # (36, 192)
    w = conv.weight.detach().double().numpy().reshape(16, -1)  # (16, 192)
    expected = x @ w.T + conv.bias.detach().double().numpy()
    np.testing.assert_allclose(out["conv"].numpy(), expected, atol=1e-4)


def test_conv_vs_unfold_output_limit():
    conv = C.seeded_projection(2, 8192)
    with pytest.raises(ValueError, match="outputs"):
        C.conv_vs_unfold(torch.zeros(1, 3, 256, 256), conv)


def test_project_patch():
    img = _random_image(64, seed=6)
    conv = C.seeded_projection(16, 32)
    p = C.project_patch(img, 16, 6, conv)
    assert (p.row, p.col) == (1, 2)
    patch = np.asarray(img)[16:32, 32:48]
    np.testing.assert_array_equal(p.patch, patch)
    np.testing.assert_allclose(p.vector, C.flatten_patch(patch) / 127.5 - 1, atol=1e-6)
    w = conv.weight.detach().double().numpy().reshape(32, -1)
    np.testing.assert_allclose(p.embedding, w @ p.vector + conv.bias.detach().double().numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="patch index"):
        C.project_patch(img, 16, 16, conv)
    with pytest.raises(ValueError, match="4x4 patches"):
        C.project_patch(img, 4, 0, conv)


def test_trained_projection_shape(tiny_vit):
    conv = C.trained_projection(tiny_vit)
    assert tuple(conv.weight.shape) == (32, 3, 4, 4) and conv.stride == (4, 4)


# --------------------------------------------------------------------------------------
#                                   Positional encodings
# --------------------------------------------------------------------------------------

def _naive_sincos_1d(n: int, d: int) -> np.ndarray:
    pe = np.zeros((n, d))
    for pos in range(n):
        for i in range(0, d, 2):
            pe[pos, i] = math.sin(pos / 10000 ** (i / d))
            pe[pos, i + 1] = math.cos(pos / 10000 ** (i / d))
    return pe


def test_sincos_1d_matches_vaswani():
    np.testing.assert_allclose(C.sincos_1d(50, 16), _naive_sincos_1d(50, 16), atol=1e-12)
    np.testing.assert_allclose(C.sincos_1d(1, 8)[0], [0, 1] * 4)
    with pytest.raises(ValueError, match="even"):
        C.sincos_1d(4, 7)


def test_sincos_2d_halves_encode_row_and_column():
    g, d = 5, 16
    got = C.sincos_2d(g, d)
    naive = np.array([np.concatenate([_naive_sincos_1d(g, d // 2)[r], _naive_sincos_1d(g, d // 2)[c]])
                      for r in range(g) for c in range(g)])
    np.testing.assert_allclose(got, naive, atol=1e-12)
    # MAE's layout ([sin | cos] halves, omega = 1/10000^(i/(D/4))) is a permutation of the same
    # dimensions, so all cosine similarities agree.
    omega = 1 / 10000 ** (np.arange(d // 4) / (d / 4))

    def mae_1d(pos):
        out = np.outer(pos, omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.divmod(np.arange(g * g), g)
    mae = np.concatenate([mae_1d(rows), mae_1d(cols)], axis=1)
    np.testing.assert_allclose(C.cosine_similarity_matrix(got), C.cosine_similarity_matrix(mae), atol=1e-12)
    with pytest.raises(ValueError, match="divisible by 4"):
        C.sincos_2d(4, 18)


def test_cosine_similarity_and_map():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(9, 5))
    sim = C.cosine_similarity_matrix(t)
    for i in range(9):
        for j in range(9):
            expected = t[i] @ t[j] / (np.linalg.norm(t[i]) * np.linalg.norm(t[j]))
            assert sim[i, j] == pytest.approx(expected)
    m = C.similarity_map(t, 3, 4)
    assert m.shape == (3, 3) and m[1, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(m.flatten(), sim[4])
    with pytest.raises(ValueError):
        C.similarity_map(t, 3, 9)


def test_neighbour_similarity_against_pair_loops():
    g = 4
    t = np.random.default_rng(1).normal(size=(g * g, 6))
    got = C.neighbour_similarity(t, g)
    sim = C.cosine_similarity_matrix(t)
    near, far, border, inside = [], [], [], []
    on_edge = [r in (0, g - 1) or c in (0, g - 1) for r, c in (divmod(i, g) for i in range(g * g))]
    for i in range(g * g):
        for j in range(i + 1, g * g):
            (ri, ci), (rj, cj) = divmod(i, g), divmod(j, g)
            (near if abs(ri - rj) + abs(ci - cj) == 1 else far).append(sim[i, j])
            if on_edge[i] and on_edge[j]:
                border.append(sim[i, j])
            if not on_edge[i] and not on_edge[j]:
                inside.append(sim[i, j])
    assert got["neighbour_pairs"] == len(near) == 2 * g * (g - 1)
    assert got["non_neighbour_pairs"] == len(far)
    assert got["neighbour_mean"] == pytest.approx(np.mean(near))
    assert got["non_neighbour_mean"] == pytest.approx(np.mean(far))
    assert got["by_distance"][0][0] == 1.0
    assert got["border_mean"] == pytest.approx(np.mean(border))
    assert got["interior_mean"] == pytest.approx(np.mean(inside))


def test_sincos_2d_has_2d_structure_and_1d_does_not_see_columns():
    s2 = C.neighbour_similarity(C.sincos_2d(14, 768), 14)
    assert s2["neighbour_mean"] > s2["non_neighbour_mean"] + 0.1
    # 1-D codes number patches in raster order: index i and i + 14 (vertical neighbours) are far apart
    sim1 = C.cosine_similarity_matrix(C.sincos_1d(196, 768))
    assert sim1[0, 1] > sim1[0, 14]


def test_similarity_mosaic_size():
    img = C.similarity_mosaic(C.sincos_2d(4, 16), 4, cell=3, gap=2)
    assert img.size == (4 * 12 + 5 * 2,) * 2


def test_learned_positions_shape(tiny_vit):
    assert C.learned_positions(tiny_vit).shape == (64, 32)


# --------------------------------------------------------------------------------------
#                                   Filters
# --------------------------------------------------------------------------------------

def test_filter_images_raw_filters_are_min_max_scaled():
    w = torch.randn(10, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    imgs, explained = C.filter_images(w, "filters", count=4)
    assert imgs.shape == (4, 4, 4, 3) and explained is None
    for k in range(4):
        f = w[k].permute(1, 2, 0).numpy()  # (P, P, C)
        np.testing.assert_allclose(imgs[k], (f - f.min()) / (f.max() - f.min()), atol=1e-6)


def test_filter_images_pca_against_covariance_eigenvectors():
    w = torch.randn(40, 3, 4, 4, generator=torch.Generator().manual_seed(1)).double()
    imgs, explained = C.filter_images(w, "pca", count=5)
    flat = w.reshape(40, -1).numpy()
    cov = np.cov(flat, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)  # ascending
    vals, vecs = vals[::-1], vecs[:, ::-1]
    np.testing.assert_allclose(explained, vals[:5] / vals.sum(), rtol=1e-8)
    for k in range(5):
        v = vecs[:, k].reshape(3, 4, 4).transpose(1, 2, 0)
        scaled = (v - v.min()) / (v.max() - v.min())
        assert np.allclose(imgs[k], scaled, atol=1e-6) or np.allclose(imgs[k], 1 - scaled, atol=1e-6)  # sign
    with pytest.raises(ValueError, match="mode"):
        C.filter_images(w, "ica")


def test_tile_images():
    img = C.tile_images(np.zeros((9, 4, 4, 3)), per_row=7, cell=10, gap=2)
    assert img.size == (7 * 12 + 2, 2 * 12 + 2)


# --------------------------------------------------------------------------------------
#                                   Resolution transfer
# --------------------------------------------------------------------------------------

def test_interpolate_positions_identity_and_cls():
    t = torch.randn(1, 1 + 64, 8)
    torch.testing.assert_close(C.interpolate_positions(t, 8), t)
    out = C.interpolate_positions(t, 12)
    assert out.shape == (1, 1 + 144, 8)
    torch.testing.assert_close(out[:, :1], t[:, :1])  # [CLS] kept
    with pytest.raises(ValueError, match="square"):
        C.interpolate_positions(torch.randn(1, 1 + 10, 8), 4)


def test_interpolate_positions_matches_transformers(tiny_vit):
    emb = tiny_vit.vit.embeddings
    for size in (16, 48, 64):
        g = size // 4
        theirs = emb.interpolate_pos_encoding(torch.zeros(1, 1 + g * g, 32), size, size)
        ours = C.interpolate_positions(emb.position_embeddings.detach(), g)
        torch.testing.assert_close(ours, theirs.detach(), rtol=0, atol=1e-6)


def test_interpolate_positions_matches_an_independent_bicubic():
    """Keys' cubic convolution (a = -0.75, half-pixel centres, clamped borders), written out."""
    g, new = 4, 6
    t = torch.randn(1, 1 + g * g, 3, dtype=torch.float64)
    grid = t[0, 1:].reshape(g, g, 3).numpy()

    def w(x, a=-0.75):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    def taps(i):
        src = (i + 0.5) * g / new - 0.5
        base = math.floor(src)
        return [(min(max(base + k, 0), g - 1), w(src - (base + k))) for k in (-1, 0, 1, 2)]

    expected = np.zeros((new, new, 3))
    for i in range(new):
        for j in range(new):
            for ri, wr in taps(i):
                for cj, wc in taps(j):
                    expected[i, j] += wr * wc * grid[ri, cj]
    ours = C.interpolate_positions(t, new)[0, 1:].reshape(new, new, 3).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-10)


def test_model_at_resolution_equals_transformers_interpolation(tiny_vit):
    x = torch.randn(2, 3, 48, 48)
    moved = C.model_at_resolution(tiny_vit, 48)
    assert moved.config.image_size == 48 and tiny_vit.config.image_size == 32
    with torch.no_grad():
        ours = moved(pixel_values=x).logits
        theirs = tiny_vit(pixel_values=x, interpolate_pos_encoding=True).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        C.model_at_resolution(tiny_vit, 50)


def test_shapes_accuracy_counts_correct_labels(tiny_vit):
    from shared.data.shapes import ShapesDataset

    acc = C.shapes_accuracy(tiny_vit, 32, n=40, batch_size=16)
    images, labels, _ = ShapesDataset("test", 40, 32).arrays()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        expected = (tiny_vit(pixel_values=x).logits.argmax(-1).numpy() == labels).mean()
    assert acc == pytest.approx(expected)
    with pytest.raises(ValueError, match="test images"):
        C.shapes_accuracy(tiny_vit, 32, n=0)


def test_transfer_accuracy_rows(tiny_vit):
    rows = C.transfer_accuracy(tiny_vit, [48, 32], n=20)
    assert [r["image_size"] for r in rows] == [32, 48]
    assert rows[0]["tokens"] == 65 and rows[1]["tokens"] == 145
    assert rows[0]["accuracy_interpolated"] == rows[0]["accuracy_resized_to_base"]
    with pytest.raises(ValueError, match="multiples of 4"):
        C.transfer_accuracy(tiny_vit, [30], n=20)


# --------------------------------------------------------------------------------------
#                                   The trained model (needs the weights)
# --------------------------------------------------------------------------------------

@needs_weights
def test_learned_positions_have_2d_structure(trained):
    """ViT Figure 7 (centre): grid neighbours of the learned table are more similar than other pairs,
    by more than the same table with its positions shuffled (a permutation test: layout, not chance)."""
    grid = trained.config.image_size // trained.config.patch_size
    table = C.learned_positions(trained)
    assert table.shape == (grid * grid, trained.config.hidden_size)

    def gap(t: np.ndarray) -> float:
        s = C.neighbour_similarity(t, grid)
        return s["neighbour_mean"] - s["non_neighbour_mean"]

    rng = np.random.default_rng(0)
    shuffled = np.array([gap(table[rng.permutation(len(table))]) for _ in range(2000)])
    assert gap(table) > 0.1
    assert (shuffled >= gap(table)).mean() < 0.02


@needs_weights
def test_trained_filters_are_smoother_than_random(trained):
    """Trained patch filters concentrate variance in few components; random ones do not."""
    _, trained_var = C.filter_images(C.trained_projection(trained).weight, "pca", count=5)
    _, random_var = C.filter_images(C.seeded_projection(trained.config.patch_size, trained.config.hidden_size).weight, "pca", count=5)
    assert trained_var.sum() > random_var.sum()


@needs_weights
def test_trained_model_at_native_and_transferred_resolution(trained):
    base = trained.config.image_size
    bigger = base * 3 // 2  # 1.5x the side: the position table is interpolated from g to 1.5 g
    rows = {r["image_size"]: r for r in C.transfer_accuracy(trained, [base, bigger], n=200)}
    native, moved = rows[base]["accuracy_interpolated"], rows[bigger]["accuracy_interpolated"]
    assert native >= 0.9
    assert 0.4 < moved < native  # far above chance (0.2), below native: no fine-tuning after the resize
    assert rows[bigger]["accuracy_resized_to_base"] > moved


# --------------------------------------------------------------------------------------
#                                   The page and the README
# --------------------------------------------------------------------------------------

SPACE = Path(C.__file__).parent
ROOT = SPACE.parents[1]


def _shipped() -> tuple[dict, dict]:
    from shared.models import local_path

    folder = local_path("vit-tiny-shapes")
    return json.loads((folder / "config.json").read_text()), json.loads((folder / "metrics.json").read_text())


def _page_text(demo) -> str:
    """Everything a reader sees as text: Markdown and HTML, labels, info lines and choice labels."""
    parts = []
    for block in demo.blocks.values():
        for attr in ("value", "label", "info"):
            value = getattr(block, attr, None)
            if isinstance(value, str):
                parts.append(value)
        for choice in getattr(block, "choices", None) or []:
            parts.append(str(choice[0] if isinstance(choice, (tuple, list)) else choice))
    return "\n".join(parts)


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z*(\[`])", text)


@pytest.fixture
def fresh_options():
    """options.tiny_config is cached; clear it around tests that change what it reads."""
    from spaces.patch_explorer import options

    options.tiny_config.cache_clear()
    yield options
    options.tiny_config.cache_clear()


def _facts_stated(text: str) -> dict:
    """Every model fact the page states, found by its wording (a reworded fact fails the test)."""
    arch = re.findall(r"`vit-tiny-shapes`, a ViT trained from scratch in this project: (\d+) px images, "
                      r"patch (\d+), grid (\d+)×(\d+), width (\d+), (\d+) layers, ([\d,]+) parameters", text)
    return {
        "architecture": arch,
        "classes": re.findall(r"one of (\d+) classes \(([^)]*)\)", text),
        "accuracy": re.findall(r"gets ([\d.]+)% of ([\d,]+) held-out test shapes", text),
        "training": re.findall(r"training took (\d+) minutes \((\d+) process(?:es)? of (\d+) threads", text),
        "choice patch": set(re.findall(r"vit-tiny-shapes \(trained here, P=(\d+)\)", text)),
        "table grid": re.findall(r"vit-tiny-shapes' table is (\d+)x(\d+)", text),
        "transfer": re.findall(r"trained at (\d+) px, g = (\d+)", text),
        "resized to": set(re.findall(r"resized to (\d+) px", text)),
        "patch of the transfer": re.findall(r"each (\d+)×(\d+) patch", text),
        "offered sizes": re.findall(r"multiples of the patch size (\d+)", text),
    }


def _expected_facts(config: dict, metrics: dict) -> dict:
    size, p = config["image_size"], config["patch_size"]
    g = size // p
    classes = [config["id2label"][k] for k in sorted(config["id2label"], key=int)]
    return {
        "architecture": [(str(size), str(p), str(g), str(g), str(config["hidden_size"]),
                          str(config["num_hidden_layers"]), f"{metrics['parameters']:,}")],
        "classes": [(str(len(classes)), ", ".join(classes))],
        "accuracy": [(f"{100 * metrics['accuracy']:.1f}", f"{metrics['n']:,}")],
        "training": [(str(round(metrics["train_wall_seconds"] / 60)), str(metrics["processes"]),
                      str(metrics["torch_threads"]))],
        "choice patch": {str(p)},
        "table grid": [(str(g), str(g))],
        "transfer": [(str(size), str(g))],
        "resized to": {str(size)},
        "patch of the transfer": [(str(p), str(p))],
        "offered sizes": [str(p)],
    }


@needs_weights
def test_every_model_fact_on_the_page_is_the_shipped_one(fresh_options):
    from spaces.patch_explorer import app

    config, metrics = _shipped()
    assert _facts_stated(_page_text(app.build())) == _expected_facts(config, metrics)


def test_the_page_states_the_facts_of_whatever_weights_are_shipped(fresh_options, monkeypatch, tmp_path):
    """Facts read, never typed: a page built beside other weights files states their numbers and none
    of the shipped model's."""
    import shared.models
    from spaces.patch_explorer import app

    config = {"image_size": 96, "patch_size": 16, "hidden_size": 48, "num_hidden_layers": 3,
              "id2label": {"0": "ring", "1": "bar", "2": "dot"}}
    metrics = {"parameters": 12_345, "accuracy": 0.5, "n": 10, "train_wall_seconds": 600.0, "processes": 3,
               "torch_threads": 4}
    folder = tmp_path / "vit-tiny-shapes"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.setattr(shared.models, "WEIGHTS_DIR", tmp_path)
    text = _page_text(app.build())
    assert _facts_stated(text) == _expected_facts(config, metrics)
    for shipped in ("64 px", "patch 8", "8×8", "8x8", "P=8", "472,901"):
        assert shipped not in text, shipped


def test_no_stale_fact_on_the_page_or_in_the_readme():
    """Fixed before (keep them fixed): no claim that shapes never touch the border; bicubic is timm's
    choice, not the ViT paper's (section 3.2 says "2D interpolation"); Figure 7 is drawn for ViT-L/32;
    a learned table opens on its native grid."""
    from spaces.patch_explorer import app, handlers, options

    texts = [_page_text(app.build()), (SPACE / "README.md").read_text(), (SPACE / "handlers.py").read_text()]
    for text in texts:
        assert "never touch" not in text
        for sentence in _sentences(text):
            if re.search(r"Fig(ure|\.) 7", sentence) and re.search(r"ViT-[A-Z]/\d+", sentence):
                assert "ViT-L/32" in sentence, sentence
            if "bicubic" in sentence and "3.2" in sentence:
                assert "timm" in sentence, sentence
    for label, name in options.learned().items():
        assert handlers.grid_for_kind(f"learned: {label}", 14) == options.native_grids()[name]
    assert options.native_grids()[options.VIT_B] == 224 // 16  # google/vit-base-patch16-224


@needs_weights
def test_readme_states_the_shipped_models_size_patch_and_grid():
    """The Space README is static text: its numbers must match the shipped config.json and the page's limits."""
    from spaces.patch_explorer import options

    config, _ = _shipped()
    g = config["image_size"] // config["patch_size"]
    readme = (SPACE / "README.md").read_text()
    p = config["patch_size"]
    assert f"`vit-tiny-shapes`: {config['image_size']} px images, {p}×{p}-pixel patches, an {g}×{g} learned" in readme
    assert f"reshaped to its {g}×{g} grid" in readme
    assert re.search(r"up to\s+(\d+) px", readme).group(1) == str(options.MAX_TRANSFER_SIZE)
    assert "P = " + "/".join(map(str, options.COMPARE_PATCH_SIZES)) in readme
    assert f"an integer from {options.MIN_IMAGE_SIZE} to {options.MAX_IMAGE_SIZE}" in readme
    assert "(590,592 for ViT-B/16)" in readme and 768 * (16 * 16 * 3 + 1) == 590_592


def test_title_and_emoji_come_from_the_registry():
    from hub.registry import get
    from spaces.patch_explorer import app

    t = get("patch_explorer")
    assert app.TITLE == t.title
    assert f"# {t.emoji} {t.title}" in _page_text(app.build())
    readme = (SPACE / "README.md").read_text()
    front, body = readme.split("\n---\n", 1)
    assert f"\ntitle: {t.title}\n" in front and f"\nemoji: {t.emoji}\n" in front
    assert t.title.lower() not in body.lower()  # typed once, in the registry (and the Hub's front matter)
    for source in ("app.py", "handlers.py"):
        assert t.title not in (SPACE / source).read_text() and t.emoji not in (SPACE / source).read_text()


def test_building_the_page_imports_nothing_heavy():
    """Issue 14: the hub builds every page at start-up, which must stay close to a bare gradio app."""
    code = ("import sys; import spaces.patch_explorer.app as a; a.build(); "
            "print([m for m in ('torch', 'transformers', 'diffusers', 'matplotlib', 'scipy', 'accelerate') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_no_function_of_the_space_is_long():
    """Issue 14: files split by what they do, and no function (build() included) over ~100 lines."""
    for path in sorted(SPACE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno < 100, f"{path.name}:{node.name}"
        assert len(path.read_text().splitlines()) < 400, path.name


def test_handlers_refuse_bad_values_with_the_allowed_range():
    import gradio as gr

    from shared.images import sample_paths
    from spaces.patch_explorer import handlers

    image = Image.open(sample_paths()[0]).convert("RGB")
    _, stats = handlers.patchify(image, 224, 16)
    assert (stats["num_patches"], stats["seq_len"], stats["patch_dim"]) == (196, 197, 768)
    with pytest.raises(gr.Error, match="patch index must be an integer from 0 to 195, got 196"):
        handlers.project(image, 224, 16, 768, 196, handlers.RANDOM, progress=None)
    with pytest.raises(gr.Error, match="unknown projection 'nope'"):
        handlers.project(image, 224, 16, 768, 0, "nope", progress=None)
    with pytest.raises(gr.Error, match="row must be an integer from 0 to 7, got 8"):
        handlers.positions("1D sin-cos", 8, 8, 0, 768, progress=None)
    with pytest.raises(gr.Error, match="unknown view 'both'"):
        handlers.filters(handlers.RANDOM, "both", progress=None)
    with pytest.raises(gr.Error, match="unknown resolutions \\[30\\]"):
        handlers.transfer([30], 100, progress=None)
    with pytest.raises(gr.Error, match="number of test images must be an integer from 50 to 2000"):
        handlers.transfer(handlers.transfer_sizes()[:1], 10, progress=None)
