"""vjepa_masking compute functions against independent computations and stated properties.

- Masks: an independent re-implementation of facebookresearch/jepa ``src/masks/multiblock3d.py`` (NumPy, written
  from the original's draw order) must give the same masks from the same torch generator; and the stated
  properties hold (tubes through all of time, a union of at most n blocks of the drawn size, scale and aspect
  bounds, context never empty, deterministic per seed).
- The collator's truncation, the momentum schedule (the original generator expression) and the 3-D sin-cos
  positions (the original NumPy code) against their sources; tubelets against a Conv3d; the context encoder
  blind to the target tokens; pixel losses against their definitions; the page's facts against metrics.json.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from shared.models import available_offline, local_path
from shared.training import vjepa_tiny_shapes as vj
from spaces.vjepa_masking import app, compute, options

TRAINED = available_offline(options.MODEL)


# ----------------------------------------------------------------------------- masks

def _reference_context_mask(duration, height, width, cfg, g):
    """``_MaskGenerator.__call__`` for one clip, written independently from the original (NumPy arrays, draws in
    the original's order: three ``torch.rand`` for t / spatial scale / aspect ratio, then per block
    ``randint`` top, left, start)."""
    r = [torch.rand(1, generator=g).item() for _ in range(3)]
    t = max(1, int(duration * (cfg.temporal_scale[0] + r[0] * (cfg.temporal_scale[1] - cfg.temporal_scale[0]))))
    keep = int(height * width * (cfg.spatial_scale[0] + r[1] * (cfg.spatial_scale[1] - cfg.spatial_scale[0])))
    ar = cfg.aspect_ratio[0] + r[2] * (cfg.aspect_ratio[1] - cfg.aspect_ratio[0])
    h, w = min(int(round(math.sqrt(keep * ar))), height), min(int(round(math.sqrt(keep / ar))), width)
    while True:
        context = np.ones((duration, height, width), int)
        for _ in range(cfg.num_blocks):
            top = int(torch.randint(0, height - h + 1, (1,), generator=g))
            left = int(torch.randint(0, width - w + 1, (1,), generator=g))
            start = int(torch.randint(0, duration - t + 1, (1,), generator=g))
            context[start:start + t, top:top + h, left:left + w] = 0
        if context.sum() > 0:
            return context, (t, h, w)


@pytest.mark.parametrize("grid", [(8, 14, 14), (8, 4, 4), (4, 7, 5)])
@pytest.mark.parametrize("seed", [0, 1, 17])
def test_masks_match_an_independent_port(grid, seed):
    masks = compute.sample_masks(grid, seed)
    g = torch.Generator().manual_seed(seed)
    for cfg, mine, size in ((vj.SHORT_RANGE, masks.short_range, masks.short_block),
                            (vj.LONG_RANGE, masks.long_range, masks.long_block)):
        context, ref_size = _reference_context_mask(*grid, cfg, g)
        assert size == ref_size
        np.testing.assert_array_equal(mine, 1 - context)


def _fits(mask2d, h, w):
    """Union of every h x w rectangle lying entirely inside the mask (equals the mask iff it is such a union)."""
    H, W = mask2d.shape
    cover = np.zeros_like(mask2d)
    for i in range(H - h + 1):
        for j in range(W - w + 1):
            if mask2d[i:i + h, j:j + w].all():
                cover[i:i + h, j:j + w] = 1
    return cover


@pytest.mark.parametrize("seed", range(12))
def test_mask_properties_at_vjepa_setting(seed):
    masks = compute.mask_for(16, 224, 16, 2, seed)
    assert masks.grid == (8, 14, 14)
    for cfg, m, (t, h, w) in ((vj.SHORT_RANGE, masks.short_range, masks.short_block),
                              (vj.LONG_RANGE, masks.long_range, masks.long_block)):
        assert t == 8  # temporal scale 1.0: each block is a tube through every time step
        assert all((m[k] == m[0]).all() for k in range(8))
        keep = int(14 * 14 * cfg.spatial_scale[0])  # int(H*W*scale) patches before rounding the sides
        assert round(math.sqrt(keep * 0.75)) <= h <= round(math.sqrt(keep * 1.5))
        assert round(math.sqrt(keep / 1.5)) <= w <= round(math.sqrt(keep / 0.75))
        plane = m[0]
        np.testing.assert_array_equal(_fits(plane, h, w), plane)  # a union of h x w blocks...
        assert h * w <= plane.sum() <= cfg.num_blocks * h * w  # ...of at most num_blocks of them
        assert plane.sum() < plane.size  # context never empty


def test_masks_deterministic_per_seed_and_stats_keys():
    a, b, c = (compute.mask_for(16, 224, 16, 2, s).stats for s in (5, 5, 6))
    # (a 12x11 block has only 3 x 4 places in a 14x14 grid: two seeds can share a long-range mask)
    assert a == b and (a["mask"], a["short_range_mask"]) != (c["mask"], c["short_range_mask"])
    assert a["grid"] == [8, 14, 14]
    mask = np.array(a["mask"])
    assert mask.shape == (8, 14, 14) and set(np.unique(mask)) <= {0, 1}
    assert a["masked_ratio"] == pytest.approx(mask.mean(), abs=1e-6)
    assert a["short_range_ratio"] == pytest.approx(np.array(a["short_range_mask"]).mean(), abs=1e-6)


def test_resampling_when_no_context_is_left():
    # On a 4x4 grid the long-range block is 3x3, 3x4 or 4x3: two of them can cover everything; the port draws again.
    gen = vj.MultiBlockMaskGenerator(1, 4, 4, vj.LONG_RANGE)
    g = torch.Generator().manual_seed(0)
    masks, _ = gen.context_masks(400, g)
    assert all(m.sum() > 0 for m in masks)
    full = vj.MaskConfig("full", num_blocks=1, spatial_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0))
    with pytest.raises(ValueError, match="leave no context"):
        vj.MultiBlockMaskGenerator(2, 4, 4, full, max_tries=5).context_masks(1, g)


def test_collator_truncates_to_the_batch_minimum():
    gen = vj.MultiBlockMaskGenerator(8, 14, 14, vj.SHORT_RANGE)
    enc, pred = gen(6, torch.Generator().manual_seed(3))
    masks, _ = gen.context_masks(6, torch.Generator().manual_seed(3))  # the same draws
    assert enc.shape == (6, min(int(m.sum()) for m in masks))
    assert pred.shape == (6, min(int((1 - m).sum()) for m in masks))
    for i, m in enumerate(masks):
        assert (m.flatten()[enc[i]] == 1).all() and (m.flatten()[pred[i]] == 0).all()
    stats = compute.collator_stats(3, batch_size=6)
    withheld = []
    for s in range(3):
        ms, _ = vj.MultiBlockMaskGenerator(8, 14, 14, vj.SHORT_RANGE).context_masks(6, torch.Generator().manual_seed(s))
        withheld.append(1 - min(int(m.sum()) for m in ms) / (8 * 14 * 14))
    assert stats["types"]["short-range"]["withheld_from_encoder"]["mean"] == pytest.approx(np.mean(withheld), abs=1e-4)


def test_ratio_stats_against_the_masks():
    r = compute.ratio_stats(6, 8, 64, 8, 2)
    for name, attr in (("short-range", "short_range"), ("long-range", "long_range")):
        direct = [getattr(compute.sample_masks((4, 8, 8), s), attr).mean() for s in range(6)]
        assert r["types"][name]["mean"] == pytest.approx(np.mean(direct), abs=1e-4)
        assert r["types"][name]["min"] == pytest.approx(min(direct), abs=1e-4)
        assert r["types"][name]["max"] == pytest.approx(max(direct), abs=1e-4)
    assert r["paper_average"] == 0.9


@pytest.mark.parametrize("args, message", [
    ((15, 224, 16, 2, 0), "divisible by the tubelet"),
    ((16, 220, 16, 2, 0), "divisible by the patch"),
    ((0, 224, 16, 2, 0), "frames must be an integer"),
    ((16, -224, 16, 2, 0), "image size must be an integer"),
    ((16, 224, 0, 2, 0), "patch size must be an integer"),
    ((16, 224, 16, -2, 0), "tubelet must be an integer"),
    ((65, 224, 16, 1, 0), "frames must be an integer from 1 to 64"),
    ((64, 448, 4, 1, 0), "above the cap"),
    ((16, 24, 8, 2, 0), "at least 4x4"),
    ((16, 224, 16, 2, -1), "seed must be an integer"),
    ((16, 224, 16, 2, 2.5), "seed must be an integer"),
    ((16, 224, 16, 2, "abc"), "seed must be an integer"),
])
def test_bad_inputs(args, message):
    with pytest.raises(ValueError, match=message):
        compute.mask_for(*args)


def test_drawing_marks_exactly_the_targets():
    masks = compute.mask_for(4, 32, 8, 2, 3)
    clip = np.full((4, 32, 32, 3), 128, np.uint8)
    img = np.asarray(compute.draw(clip, masks, 2, frame_px=32)).astype(int)
    assert img.shape == (3 * 32 + 4, 2 * 32 + 2, 3)
    for k in range(2):
        for row, mask, colour in ((1, masks.long_range, compute.LONG_COLOUR), (2, masks.short_range, compute.SHORT_COLOUR)):
            for i in range(4):
                for j in range(4):
                    y, x = row * 34 + i * 8 + 4, k * 34 + j * 8 + 4  # a cell's centre
                    expected = np.array(colour) * 0.7 + 128 * 0.3 if mask[k, i, j] else np.full(3, 128)
                    assert np.abs(img[y, x] - expected).max() <= 1


# ----------------------------------------------------------------------------- model pieces

def test_momentum_schedule_is_the_originals():
    ipe, epochs, ipe_scale, ema = 10, 3, 1.25, (0.998, 1.0)
    original = [ema[0] + i * (ema[1] - ema[0]) / (ipe * epochs * ipe_scale)
                for i in range(int(ipe * epochs * ipe_scale) + 1)]  # app/vjepa/train.py
    np.testing.assert_allclose(compute.momentum_curve(ipe * epochs, ema, ipe_scale), original[:ipe * epochs])
    assert compute.momentum_curve(100, ema, ipe_scale)[-1] < 1.0


def _original_3d_sincos(embed_dim, grid_size, grid_depth):
    """src/models/utils/pos_embs.py get_3d_sincos_pos_embed(..., uniform_power=True), as released."""
    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=float)
        omega /= dim / 2.0
        omega = 1.0 / 10000 ** omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid_d = np.arange(grid_depth, dtype=float)
    grid_h = np.arange(grid_size, dtype=float)
    grid_w = np.arange(grid_size, dtype=float)
    grid_h, grid_d, grid_w = np.meshgrid(grid_h, grid_d, grid_w)
    d = int(np.ceil(embed_dim / 6) * 2)
    emb = np.concatenate([one_d(d, grid_d), one_d(d, grid_h), one_d(d, grid_w)], axis=1)
    return emb[:, :embed_dim]


@pytest.mark.parametrize("dim", [32, 64, 96])
def test_sincos_3d_matches_the_release(dim):
    np.testing.assert_allclose(vj.sincos_3d(dim, (8, 4, 4)).numpy(), _original_3d_sincos(dim, 4, 8), atol=1e-6)


def _tiny_config():
    cfg = vj.Config(frames=4, image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1,
                    predictor_hidden_size=8, predictor_num_hidden_layers=1, num_attention_heads=2,
                    predictor_num_attention_heads=2)
    return vj.model_config(cfg)


def test_tubelets_follow_the_conv3d_token_order():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    conv = torch.nn.Conv3d(3, 1, (2, 8, 8), stride=(2, 8, 8), bias=False)
    torch.nn.init.ones_(conv.weight)
    with torch.no_grad():
        sums = conv(vj.clips_to_tensor(clip[None])).flatten().double().numpy()  # (t*h*w,) in Encoder.tokens order
    np.testing.assert_allclose(compute.tubelets(clip, 2, 8).sum(1), sums, rtol=1e-5)


def test_context_encoder_never_sees_the_targets_and_targets_get_no_gradient():
    torch.manual_seed(0)
    model = vj.VJEPA(_tiny_config())
    x = torch.randn(2, 3, 4, 16, 16)
    masks = compute.sample_masks(model.grid, 1)
    flat = masks.long_range.reshape(-1)
    ctx = torch.from_numpy(np.flatnonzero(1 - flat)).expand(2, -1)
    tgt = torch.from_numpy(np.flatnonzero(flat)).expand(2, -1)
    z = model.predict(x, ctx, tgt, 1)
    hidden = torch.from_numpy(masks.long_range).bool()  # (t, h, w): blank every pixel of every target tubelet
    cell = hidden.repeat_interleave(2, 0).repeat_interleave(8, 1).repeat_interleave(8, 2)
    x2 = x.clone()
    x2[:, :, cell] = 99.0
    assert torch.allclose(z, model.predict(x2, ctx, tgt, 1), atol=1e-5)
    loss = vj.jepa_loss(model, x, [(ctx, tgt)])
    loss.backward()
    assert all(q.grad is None for q in model.target_encoder.parameters())
    assert model.encoder.patch_embed.weight.grad is not None


def test_ema_update():
    torch.manual_seed(0)
    model = vj.VJEPA(_tiny_config())
    with torch.no_grad():
        for q in model.encoder.parameters():
            q.add_(1.0)
    before = [k.clone() for k in model.target_encoder.parameters()]
    model.ema_update(0.75)
    for k, k0, q in zip(model.target_encoder.parameters(), before, model.encoder.parameters(), strict=True):
        assert torch.allclose(k, 0.75 * k0 + 0.25 * q)


def test_linear_probe_separable_and_shuffled():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 4
    f = torch.randn(400, 8, generator=g) * 0.1
    f[torch.arange(400), y] += 3.0
    assert vj.linear_probe(f[:300], y[:300], f[300:], y[300:], 4, iters=50) == 1.0
    noise = torch.randn(400, 8, generator=g)
    assert vj.linear_probe(noise[:300], y[:300], noise[300:], y[300:], 4, iters=50) < 0.5


# ----------------------------------------------------------------------------- the shipped model

@pytest.mark.skipif(not TRAINED, reason="vjepa-tiny-shapes not trained")
def test_objective_on_the_shipped_model():
    obj = compute.objective(3, 2)
    assert obj.masks.grid == (8, 4, 4)
    for x in obj.losses:
        assert x.latent_l1 > 0 and x.latent_l1_context_mean > 0 and x.latent_l1_untrained > 0
        # the oracle (each target tubelet's own mean colour) is the best constant per token: never worse
        assert x.pixel_mse_token_mean_oracle <= x.pixel_mse_context_mean + 1e-12
        assert int(np.isfinite(x.latent_token_error).sum()) == int(x.target.sum())
    # the pixel fill recomputed directly from the clip
    pix = obj.clip.astype(float) / 127.5 - 1
    long = obj.losses[1]
    cells = np.kron(long.target, np.ones((2, 8, 8))).astype(bool)  # (16, 32, 32)
    fill = pix[~cells].mean(0)
    assert long.pixel_mse_context_mean == pytest.approx(((pix[cells] - fill) ** 2).mean(), rel=1e-6)
    assert obj.model_loss == pytest.approx(np.mean([x.latent_l1 for x in obj.losses]))


@pytest.mark.skipif(not TRAINED, reason="vjepa-tiny-shapes not trained")
def test_page_facts_match_the_shipped_files():
    m = json.loads((local_path(options.MODEL) / "metrics.json").read_text())
    c = json.loads((local_path(options.MODEL) / "config.json").read_text())
    f = app.facts()
    text = app._intro(f) + app._probe_markdown(f)
    for value in (m["direction_probe_accuracy"], m["random_encoder_direction_probe_accuracy"],
                  m["all_tokens_direction_probe_accuracy"], m["random_encoder_all_tokens_direction_probe_accuracy"],
                  m["probe_train_clips"], m["probe_test_clips"], m["steps_trained"], c["hidden_size"]):
        assert str(value) in text
    assert f"{m['parameters']:,}" in text
    table = app.probe_table(f)
    assert set(table["direction probe accuracy"]) >= {m["direction_probe_accuracy"], m["chance"]}
    assert c["masks"][0]["num_blocks"] == 8 and c["masks"][1]["spatial_scale"] == [0.7, 0.7]
