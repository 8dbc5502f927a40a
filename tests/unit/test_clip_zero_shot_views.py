"""Issue 23's CLIP views against independent computations: PCA against the eigen-decomposition of the
covariance, the step-by-step maths against explicit loops over the model's own features and HF's forward,
the temperature-dependent loss against an explicit double loop (and HF's clip_loss at the learned τ),
search against HF's logits_per_text, and the architecture against a hand count from config.json.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import softmax

from shared.data.shapes import SHAPES, render, sample_image, spec_at
from shared.models import load, local_path
from spaces.clip_zero_shot import compute

MODEL = "clip-tiny-shapes"
LABELS = ", ".join(SHAPES)


@pytest.fixture(scope="module")
def clip():
    return load(MODEL)


@pytest.fixture(scope="module")
def star():
    return sample_image("star", "red", size=96, seed=3)[0]


def _renders(clip, indices):
    size = clip[1].image_processor.crop_size["height"]
    specs = [spec_at("test", i) for i in indices]
    return [render(s, size) for s in specs], [s.caption for s in specs]


# --------------------------------------------------------------------------------------
#                                   Embedding map (PCA)
# --------------------------------------------------------------------------------------

def _eigen_pca(x: np.ndarray):
    """PCA the other way: eigenvectors of the sample covariance, largest eigenvalues first."""
    cov = np.cov(x, rowvar=False)  # (P, P), divides by M - 1
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    return (x - x.mean(0)) @ vectors[:, :2], values / values.sum()


def _same_up_to_sign(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> None:
    for k in range(a.shape[1]):
        sign = np.sign(a[:, k] @ b[:, k])
        np.testing.assert_allclose(a[:, k], sign * b[:, k], atol=atol)


def test_pca_matches_the_covariance_eigendecomposition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2]) + 7.0
    coords, explained, components = compute.pca_2d(x)
    expected_coords, expected_ratio = _eigen_pca(x)
    _same_up_to_sign(coords, expected_coords)
    np.testing.assert_allclose(explained, expected_ratio, atol=1e-12)
    np.testing.assert_allclose(components @ components.T, np.eye(2), atol=1e-12)  # orthonormal
    assert all(c[np.abs(c).argmax()] > 0 for c in components)  # the documented sign convention


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 5)), "at least 3 points"),
    (np.ones((5, 4)), "no variance"),
    (np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]), "NaN"),
])
def test_pca_refuses(x, message):
    with pytest.raises(ValueError, match=message):
        compute.pca_2d(x)


def test_embedding_map_projects_the_models_own_embeddings(clip, star):
    n, start = 8, 20
    res = compute.embedding_map(n, start, MODEL, star)
    assert res.kinds == ["image"] * n + ["caption"] * n + ["your image"]
    images, captions = _renders(clip, range(start, start + n))
    model, processor = clip
    inputs = processor(text=captions, images=images + [star], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)  # HF's own normalised embeddings
    x = torch.cat([out.image_embeds[:n], out.text_embeds, out.image_embeds[n:]]).double().numpy()
    np.testing.assert_allclose(res.embeddings, x, atol=1e-5)
    expected_coords, expected_ratio = _eigen_pca(res.embeddings)
    _same_up_to_sign(res.coords, expected_coords, atol=1e-7)
    np.testing.assert_allclose(res.explained[:5], expected_ratio[:5], atol=1e-6)
    assert res.centroid_gap == pytest.approx(np.linalg.norm(x[:n].mean(0) - x[n:2 * n].mean(0)), abs=1e-5)
    sim = x[:n] @ x[n:2 * n].T
    assert res.matched_cosine == pytest.approx(sum(sim[i, i] for i in range(n)) / n, abs=1e-5)
    assert res.unmatched_cosine == pytest.approx(sum(sim[i, j] for i in range(n) for j in range(n) if i != j)
                                                 / (n * (n - 1)), abs=1e-5)
    without = compute.embedding_map(n, start, MODEL)  # no user image: the batch alone
    assert len(without.kinds) == 2 * n


@pytest.mark.parametrize("n, start, message", [
    (0, 0, "batch size must be an integer from 2 to 64, got 0"),
    (-3, 0, "batch size must be an integer from 2 to 64, got -3"),
    (float("nan"), 0, "batch size must be an integer from 2 to 64, got nan"),
    (4.5, 0, "batch size must be an integer from 2 to 64, got 4.5"),
    (65, 0, "batch size must be an integer from 2 to 64, got 65"),
    (4, -1, "start index must be an integer from 0 to 1000000, got -1"),
    (4, 1_000_001, "start index must be an integer from 0 to 1000000, got 1000001"),
    (4, float("nan"), "start index must be an integer from 0 to 1000000, got nan"),
    (4, 0.5, "start index must be an integer from 0 to 1000000, got 0.5"),
])
def test_embedding_map_refuses(n, start, message):
    with pytest.raises(ValueError, match=message):
        compute.embedding_map(n, start, MODEL)


# --------------------------------------------------------------------------------------
#                                   The maths, step by step
# --------------------------------------------------------------------------------------

def test_maths_steps_recomputed_by_hand_from_the_models_features(clip, star):
    res = compute.maths_steps(star, LABELS, "a photo of a {}", MODEL)
    model, processor = clip
    with torch.no_grad():
        u = model.get_image_features(**processor(images=[star], return_tensors="pt")).pooler_output[0].tolist()
        tokens = processor.tokenizer([f"a photo of a {s}" for s in SHAPES], padding=True, return_tensors="pt")
        texts = model.get_text_features(**tokens).pooler_output.tolist()
    scale = math.exp(model.logit_scale.item())
    norm_u = math.sqrt(math.fsum(a * a for a in u))
    logits = []
    for j, v in enumerate(texts):
        dot = math.fsum(a * b for a, b in zip(u, v, strict=True))
        norm_v = math.sqrt(math.fsum(b * b for b in v))
        assert res.dots[j] == pytest.approx(dot, rel=1e-5, abs=1e-5)
        assert res.text_norms[j] == pytest.approx(norm_v, rel=1e-5)
        assert res.cosines[j] == pytest.approx(dot / (norm_u * norm_v), abs=1e-6)
        logits.append(scale * dot / (norm_u * norm_v))
    assert res.image_norm == pytest.approx(norm_u, rel=1e-5)
    assert res.logit_scale == pytest.approx(scale, rel=1e-6)
    np.testing.assert_allclose(res.logits, logits, atol=1e-4)
    denominator = math.fsum(math.exp(z) for z in logits)
    np.testing.assert_allclose(res.probs, [math.exp(z) / denominator for z in logits], atol=1e-6)
    assert res.labels[res.top] == "star"
    # the same probabilities as the zero-shot endpoint and as HF's logits_per_image
    np.testing.assert_allclose(res.probs, compute.zero_shot(star, LABELS, "a photo of a {}", MODEL).probs, atol=1e-6)
    inputs = processor(text=[f"a photo of a {s}" for s in SHAPES], images=[star], return_tensors="pt", padding=True)
    with torch.no_grad():
        hf = model(**inputs).logits_per_image[0].double().numpy()
    np.testing.assert_allclose(res.probs, softmax(hf), atol=1e-5)


def test_maths_steps_with_a_prompt_ensemble_keeps_the_zero_shot_cosines(star):
    templates = "a photo of a {}\nan image of a {}\na {}"
    res = compute.maths_steps(star, LABELS, templates, MODEL)
    zero_shot = compute.zero_shot(star, LABELS, templates, MODEL)
    np.testing.assert_allclose(res.cosines, zero_shot.cosines, atol=1e-6)
    np.testing.assert_allclose(res.probs, zero_shot.probs, atol=1e-6)
    assert all(0 < n_ < 1 for n_ in res.text_norms)  # a mean of distinct unit vectors is shorter than 1


def test_maths_steps_refuses_what_zero_shot_refuses(star):
    with pytest.raises(ValueError, match="no image"):
        compute.maths_steps(None, LABELS, "a {}", MODEL)
    with pytest.raises(ValueError, match="softmax over one label"):
        compute.maths_steps(star, "star", "a {}", MODEL)
    with pytest.raises(ValueError, match="has no {}"):
        compute.maths_steps(star, LABELS, "a photo", MODEL)


# --------------------------------------------------------------------------------------
#                       The contrastive loss as the temperature changes
# --------------------------------------------------------------------------------------

def _double_loop_loss(cos: list[list[float]], tau: float) -> float:
    n = len(cos)
    image_to_text = text_to_image = 0.0
    for i in range(n):
        row = 0.0
        column = 0.0
        for j in range(n):
            row += math.exp(cos[i][j] / tau)
            column += math.exp(cos[j][i] / tau)
        image_to_text += -math.log(math.exp(cos[i][i] / tau) / row)
        text_to_image += -math.log(math.exp(cos[i][i] / tau) / column)
    return (image_to_text / n + text_to_image / n) / 2


@pytest.mark.parametrize("tau", [0.01, 0.07, 0.5, 2.0])
def test_infonce_at_temperature_matches_an_explicit_double_loop(tau):
    cos = np.random.default_rng(1).uniform(-1, 1, size=(6, 6))
    loss, i2t, t2i = compute.infonce_at_temperature(cos, tau)
    assert loss == pytest.approx(_double_loop_loss(cos.tolist(), tau), rel=1e-10)
    assert loss == pytest.approx((i2t + t2i) / 2)


@pytest.mark.parametrize("tau", [0, -0.07, float("nan"), "nan", float("inf"), 2.5, "abc", True])
def test_temperature_outside_its_range_is_refused(tau):
    with pytest.raises(ValueError, match=r"temperature τ must be a finite number from 0.001 to 2"):
        compute.infonce_at_temperature(np.eye(3), tau)


@pytest.mark.parametrize("n, start, tau, message", [
    (0, 0, 0.07, "batch size must be an integer from 2 to 64, got 0"),
    (4, -1, 0.07, "start index must be an integer from 0 to 1000000, got -1"),
    (4, 0, 0, "temperature τ must be a finite number from 0.001 to 2, got 0"),
])
def test_contrastive_temperature_refuses(n, start, tau, message):
    with pytest.raises(ValueError, match=message):
        compute.contrastive_temperature(n, start, tau, MODEL)


def test_contrastive_temperature_matches_hf_clip_loss_at_the_learned_temperature(clip):
    n, start, tau = 6, 11, 0.3
    res = compute.contrastive_temperature(n, start, tau, MODEL)
    images, captions = _renders(clip, range(start, start + n))
    model, processor = clip
    with torch.no_grad():
        out = model(**processor(text=captions, images=images, return_tensors="pt", padding=True), return_loss=True)
    scale = model.logit_scale.exp().item()
    cos = out.logits_per_image.double().numpy() / scale
    np.testing.assert_allclose(res.similarity, cos, atol=1e-5)
    assert res.learned_temperature == pytest.approx(1 / scale)
    assert res.learned_loss == pytest.approx(out.loss.item(), abs=1e-4)  # HF's own clip_loss
    assert res.loss == pytest.approx(_double_loop_loss(cos.tolist(), tau), abs=1e-5)
    np.testing.assert_allclose(res.row_probs, softmax(cos / tau, axis=1), atol=1e-6)
    assert res.chance == pytest.approx(math.log(n))
    np.testing.assert_allclose(res.grid, np.exp(np.linspace(math.log(0.001), math.log(2.0), len(res.grid))))
    assert res.curve[5] == pytest.approx(_double_loop_loss(cos.tolist(), float(res.grid[5])), abs=1e-5)
    margins = [cos[i, i] - max(max(cos[i, j], cos[j, i]) for j in range(n) if j != i) for i in range(n)]
    assert res.margin == pytest.approx(min(margins), abs=1e-6)


# --------------------------------------------------------------------------------------
#                                   Text -> image search
# --------------------------------------------------------------------------------------

def test_search_ranks_the_gallery_as_hf_logits_per_text(clip):
    query, k = "a large red star", 5
    res = compute.search(query, k, MODEL)
    g = res.gallery
    assert g.indices == list(range(compute.GALLERY_START, compute.GALLERY_START + compute.GALLERY_SIZE))
    images, captions = _renders(clip, g.indices)
    assert g.captions == captions
    model, processor = clip
    with torch.no_grad():
        out = model(**processor(text=[query], images=images, return_tensors="pt", padding=True))
    scores = out.logits_per_text[0].double().numpy() / model.logit_scale.exp().item()
    np.testing.assert_allclose(res.scores, scores, atol=1e-5)
    assert [i for i, _ in res.hits] == list(np.argsort(-scores)[:k])
    assert [s for _, s in res.hits] == pytest.approx(sorted(scores, reverse=True)[:k], abs=1e-5)
    assert compute.search(query, 2, MODEL).cached  # the gallery is embedded once per model


@pytest.mark.parametrize("query, k, message", [
    ("a star", 0, "top k must be an integer from 1 to 12, got 0"),
    ("a star", -2, "top k must be an integer from 1 to 12, got -2"),
    ("a star", float("nan"), "top k must be an integer from 1 to 12, got nan"),
    ("a star", 2.5, "top k must be an integer from 1 to 12, got 2.5"),
    ("a star", 13, "top k must be an integer from 1 to 12, got 13"),
    ("   ", 3, "no query given"),
    (5, 3, "query must be text"),
])
def test_search_refuses(query, k, message):
    with pytest.raises(ValueError, match=message):
        compute.search(query, k, MODEL)


# --------------------------------------------------------------------------------------
#                                   Architecture facts
# --------------------------------------------------------------------------------------

def _layers_params(d: int, m: int, n_layers: int) -> int:
    """Per layer: q, k, v, out projections with biases, two layer norms, fc1 and fc2 with biases."""
    return n_layers * (4 * (d * d + d) + 2 * 2 * d + (d * m + m) + (m * d + d))


def _layers_macs(d: int, m: int, n_layers: int, t: int) -> tuple[int, int]:
    """(attention, MLP) MACs of t tokens: 4 t d² for the projections, 2 t² d for QKᵀ and A·V; 2 t d m."""
    return n_layers * (4 * t * d * d + 2 * t * t * d), n_layers * 2 * t * d * m


def test_architecture_matches_a_hand_count_from_the_config(clip):
    config = json.loads((local_path(MODEL) / "config.json").read_text())
    v, t, p = config["vision_config"], config["text_config"], config["projection_dim"]
    dv, mv, lv, patch, side = v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"], v["patch_size"], \
        v["image_size"]
    dt, mt, lt, ctx, vocab = t["hidden_size"], t["intermediate_size"], t["num_hidden_layers"], \
        t["max_position_embeddings"], t["vocab_size"]
    patches = (side // patch) ** 2
    vision = (3 * patch * patch * dv  # patch convolution, no bias
              + dv + (patches + 1) * dv  # class embedding, positions
              + 2 * dv + _layers_params(dv, mv, lv) + 2 * dv)  # pre- and post-layer norms
    text = vocab * dt + ctx * dt + _layers_params(dt, mt, lt) + 2 * dt  # tokens, positions, layers, final norm
    a = compute.architecture(MODEL)
    assert a.parameters == {"vision tower": vision, "text tower": text, "visual projection": dv * p,
                            "text projection": dt * p, "logit scale": 1}
    metrics = json.loads((local_path(MODEL) / "metrics.json").read_text())
    assert a.total_parameters == vision + text + dv * p + dt * p + 1 == metrics["parameters"]

    attention, mlp = _layers_macs(dv, mv, lv, patches + 1)
    image = {"patch embedding": patches * 3 * patch * patch * dv, "attention": attention, "MLP": mlp,
             "projection": dv * p}  # the projection reads the pooled [CLS] token only
    assert a.image_parts == image and a.macs_per_image == sum(image.values())
    assert a.image_tokens == patches + 1
    tokens = len(clip[1].tokenizer(a.example_prompt)["input_ids"])
    attention, mlp = _layers_macs(dt, mt, lt, tokens)
    assert a.text_tokens == tokens
    assert a.text_parts == {"patch embedding": 0, "attention": attention, "MLP": mlp, "projection": dt * p}
    assert a.macs_per_text == attention + mlp + dt * p
    attention, mlp = _layers_macs(dt, mt, lt, ctx)
    assert a.macs_per_text_full_context == attention + mlp + dt * p


def test_architecture_refuses_a_model_that_is_not_a_clip():
    with pytest.raises(ValueError, match="unknown model 'vit-tiny-shapes'"):
        compute.architecture("vit-tiny-shapes")
