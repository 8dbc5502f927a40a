"""mae_masking compute functions, each against an independent computation, and the page's stated facts.

Masks are checked against a direct call of the model with the same noise; losses and the mean-colour baseline
are recomputed patch by patch with NumPy loops; NT-Xent against an explicit double loop in plain Python
(SimCLR, Chen et al., 2020, eq. 1); the probe on separable and on shuffled labels.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from hub.registry import get as tutorial
from shared.images import centre_square, sample_paths
from shared.models import available_offline, local_path
from spaces.mae_masking import app, compute, options

WEIGHTS = local_path(options.MODEL)
pytestmark = pytest.mark.skipif(not available_offline(options.MODEL), reason="mae-tiny-shapes not trained")


@pytest.fixture(scope="module")
def loaded():
    return compute.load()


@pytest.fixture(scope="module")
def image():
    return Image.open(sample_paths()[0]).convert("RGB")


def _direct(loaded, img, ratio, noise):
    """The model called on its own copy with config.mask_ratio set: (logits, mask, x normalised as [-1, 1])."""
    model = copy.deepcopy(loaded.model)
    model.config.mask_ratio = ratio
    size = model.config.image_size
    arr = np.asarray(centre_square(img).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    x = (arr - 0.5) / 0.5  # the shipped processor's mean and std (checked in test_processor_is_half_half)
    with torch.no_grad():
        out = model(pixel_values=torch.from_numpy(x).permute(2, 0, 1)[None], noise=noise[None])
    return out.logits[0].numpy(), out.mask[0].numpy(), x


def test_processor_is_half_half():
    cfg = json.loads((WEIGHTS / "preprocessor_config.json").read_text())
    assert cfg["image_mean"] == [0.5, 0.5, 0.5] and cfg["image_std"] == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("ratio", [0.05, 0.25, 0.5, 0.75, 0.9, 0.95])
def test_mask_is_the_models_own_and_keeps_int_L_times_1_minus_r(loaded, image, ratio):
    rec = compute.reconstruct(image, ratio, 7, loaded=loaded)
    L = rec.mask.size
    noise = torch.rand(L, generator=torch.Generator().manual_seed(7))
    _, mask, _ = _direct(loaded, image, ratio, noise)
    assert np.array_equal(rec.mask.reshape(-1), mask.astype(np.uint8))
    assert int(rec.mask.sum()) == L - int(L * (1 - ratio))  # the definition
    assert rec.stats["num_masked"] == int(mask.sum()) and rec.stats["num_patches"] == L


def test_loss_and_baseline_recomputed_patch_by_patch(loaded, image):
    ratio, seed = 0.75, 3
    rec = compute.reconstruct(image, ratio, seed, loaded=loaded)
    L = rec.mask.size
    logits, mask, x = _direct(loaded, image, ratio, torch.rand(L, generator=torch.Generator().manual_seed(seed)))
    p = loaded.model.config.patch_size
    g = x.shape[0] // p
    targets = [x[i * p:(i + 1) * p, j * p:(j + 1) * p, :].reshape(-1) for i in range(g) for j in range(g)]
    masked = [k for k in range(L) if mask[k] == 1]
    visible = [k for k in range(L) if mask[k] == 0]
    loss = sum(float(np.mean((logits[k] - targets[k]) ** 2)) for k in masked) / len(masked)
    colour = np.mean([targets[k].reshape(-1, 3) for k in visible], axis=(0, 1))  # (3,)
    base = sum(float(np.mean((targets[k].reshape(-1, 3) - colour) ** 2)) for k in masked) / len(masked)
    assert rec.loss == pytest.approx(loss, rel=1e-4)
    assert rec.baseline_loss == pytest.approx(base, rel=1e-4)
    assert np.nanmean(rec.patch_loss) == pytest.approx(loss, rel=1e-4)


def test_pasted_image_keeps_visible_pixels(loaded, image):
    rec = compute.reconstruct(image, 0.5, 1, loaded=loaded)
    p = loaded.model.config.patch_size
    size = loaded.model.config.image_size
    original = np.asarray(centre_square(image).resize((size, size), Image.BICUBIC)).astype(int)
    pasted = np.asarray(rec.pasted_image).astype(int)
    for i, j in zip(*np.nonzero(rec.mask == 0), strict=True):
        block = (slice(i * p, (i + 1) * p), slice(j * p, (j + 1) * p))
        assert np.abs(pasted[block] - original[block]).max() <= 1


def test_same_seed_same_mask_other_seed_other_mask(loaded, image):
    a = compute.reconstruct(image, 0.75, 11, loaded=loaded).mask
    b = compute.reconstruct(image, 0.75, 11, loaded=loaded).mask
    c = compute.reconstruct(image, 0.75, 12, loaded=loaded).mask
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("pattern", options.PATTERNS)
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75, 0.9])
def test_every_pattern_masks_vitmaes_count(loaded, image, pattern, ratio):
    rec = compute.reconstruct(image, ratio, 5, pattern=pattern, loaded=loaded)
    L = rec.mask.size
    assert int(rec.mask.sum()) == L - int(L * (1 - ratio))


def test_grid_pattern_at_075_keeps_one_patch_per_2x2_cell(loaded, image):
    mask = compute.reconstruct(image, 0.75, 0, pattern="grid", loaded=loaded).mask
    expected = np.ones_like(mask)
    expected[::2, ::2] = 0
    assert np.array_equal(mask, expected)


def _boundary(mask: np.ndarray) -> int:
    """Masked-visible neighbour pairs (4-neighbourhood), counted by explicit loops."""
    g = mask.shape[0]
    return sum(int(mask[i, j] != mask[i + di, j + dj]) for i in range(g) for j in range(g)
               for di, dj in ((0, 1), (1, 0)) if i + di < g and j + dj < g)


def test_blockwise_masks_are_blocks(loaded, image):
    """Block-wise (BEiT) masks have far less masked/visible boundary than random ones of the same count."""
    block = [_boundary(compute.reconstruct(image, 0.5, s, pattern="block-wise (BEiT)", loaded=loaded).mask)
             for s in range(8)]
    rand = [_boundary(compute.reconstruct(image, 0.5, s, loaded=loaded).mask) for s in range(8)]
    assert np.mean(block) < 0.6 * np.mean(rand)
    assert all(compute.blockwise_mask(8, 26, s).sum() >= 26 for s in range(20))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan"), "nan", "abc", 0.99])
def test_bad_ratio(bad):
    with pytest.raises(ValueError, match="mask ratio must be a finite number from 0.05 to 0.95"):
        compute.check_ratio(bad)


@pytest.mark.parametrize("bad", [-1, 2.5, "x", True])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        compute.check_seed(bad)


def test_no_image():
    with pytest.raises(ValueError, match="no image given"):
        compute.reconstruct(None, 0.75, 0)


def _nt_xent_double_loop(z1: list[list[float]], z2: list[list[float]], tau: float) -> float:
    views = z1 + z2
    n2 = len(views)

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    total = 0.0
    for i in range(n2):
        j = (i + len(z1)) % n2  # the other view of the same image
        den = 0.0
        for k in range(n2):
            if k != i:
                den += math.exp(cos(views[i], views[k]) / tau)
        total += -math.log(math.exp(cos(views[i], views[j]) / tau) / den)
    return total / n2


@pytest.mark.parametrize("n, d, tau", [(2, 3, 0.5), (5, 8, 0.1), (8, 16, 1.0)])
def test_nt_xent_matches_an_explicit_double_loop(n, d, tau):
    g = torch.Generator().manual_seed(n * d)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    assert compute.nt_xent(z1, z2, tau) == pytest.approx(_nt_xent_double_loop(z1.tolist(), z2.tolist(), tau), rel=1e-9)


def test_nt_xent_is_low_when_views_agree_and_others_differ():
    z = torch.eye(4)
    # identical views, orthogonal others: each anchor's 2N-1 candidates are its twin (cos 1) and 6 at cos 0
    expected = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 6))
    assert compute.nt_xent(z, z.clone(), 0.5) == pytest.approx(expected)
    with pytest.raises(ValueError, match="temperature"):
        compute.nt_xent(z, z, 0)


def test_augment_is_deterministic_and_varies(image):
    a, b, c = compute.augment(image, 1), compute.augment(image, 1), compute.augment(image, 2)
    assert a.size == (64, 64)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and not np.array_equal(np.asarray(a), np.asarray(c))


def test_linear_probe_separable_and_shuffled():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 10, generator=g) * 4
    y = torch.arange(400) % 5
    f = centres[y] + torch.randn(400, 10, generator=g)
    assert compute.linear_probe(f[:300], y[:300], f[300:], y[300:]) > 0.95
    shuffled = y[torch.randperm(400, generator=g)]
    assert compute.linear_probe(torch.randn(400, 10, generator=g)[:300], shuffled[:300],
                                torch.randn(100, 10, generator=g), shuffled[300:]) < 0.45


def test_sweep_rows(loaded):
    rows = compute.sweep([0.25, 0.75], 20)
    assert [r["kept patches"] for r in rows] == [int(64 * 0.75), int(64 * 0.25)]
    for r in rows:
        assert r["MSE / baseline"] == pytest.approx(r["masked MSE"] / r["mean-colour MSE"], abs=2e-3)
        assert 0 <= r["probe accuracy (visible tokens)"] <= 1


def test_contrastive_loss_is_nt_xent_of_the_embeddings(image):
    r = compute.contrastive(image, 0, 4, 0.5)
    assert len(r.similarities) == 3 and -1 <= r.positive <= 1
    assert r.loss > 0 and r.random_encoder_loss > 0


def test_page_states_the_shipped_facts():
    text = app._intro(app.facts())
    m = json.loads((WEIGHTS / "metrics.json").read_text())
    c = json.loads((WEIGHTS / "config.json").read_text())
    for key in ("masked_mse", "baseline_mse", "linear_probe_accuracy", "random_encoder_probe_accuracy",
                "probe_train_images", "probe_test_images", "steps_trained"):
        assert str(m[key]) in text, key
    assert f"{m['parameters']:,}" in text
    assert f"image {c['image_size']}, patch {c['patch_size']}" in text
    assert tutorial("mae_masking").title in text
    sweep = app.shipped_sweep()
    assert list(sweep["masked MSE"]) == [v["masked_mse"] for v in m["sweep"].values()]
    assert (WEIGHTS / "README.md").is_file()
