"""shared.ood: the Mahalanobis score against scipy, calibration on synthetic Gaussians, save/load, wording."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis

from shared import ood


def _gaussians(n_per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    a = np.random.default_rng(123).normal(size=(3, 3))  # the same covariance for every seed
    cov = a @ a.T + np.eye(3)  # one shared covariance
    feats = np.concatenate([rng.multivariate_normal(c, cov, n_per_class) for c in centres])
    labels = np.repeat(np.arange(3), n_per_class)
    return torch.tensor(feats, dtype=torch.float32), torch.tensor(labels), cov


def test_mahalanobis_matches_scipy_for_the_nearest_class():
    feats, labels, _ = _gaussians(400)
    means, precision = ood.fit(feats, labels, 3)
    queries = torch.tensor([[1.0, 2.0, -1.0], [6.5, 0.2, 3.0], [-4.0, 9.0, 0.5]])
    got = ood.mahalanobis(queries, means, precision)
    vi = precision.double().numpy()
    for q, g in zip(queries.numpy(), got, strict=True):
        expected = min(scipy_mahalanobis(q, m, vi) for m in means.double().numpy())
        assert float(g) == pytest.approx(expected, rel=1e-4)


def test_fit_recovers_means_and_covariance():
    feats, labels, cov = _gaussians(4000, seed=1)
    means, precision = ood.fit(feats, labels, 3)
    assert torch.allclose(means, torch.tensor([[0.0, 0, 0], [6, 0, 0], [0, 6, 0]]), atol=0.15)
    np.testing.assert_allclose(np.linalg.inv(precision.double().numpy()), cov, rtol=0.1, atol=0.1)


def test_threshold_flags_the_target_share_of_fresh_in_distribution_samples_and_most_outliers():
    feats, labels, _ = _gaussians(3000, seed=2)
    means, precision = ood.fit(feats, labels, 3)
    calib, _, _ = _gaussians(2000, seed=3)
    threshold = ood.quantile_threshold(ood.mahalanobis(calib, means, precision), 0.05)
    fresh, _, _ = _gaussians(2000, seed=4)
    false_alarm = float((ood.mahalanobis(fresh, means, precision) > threshold).float().mean())
    assert 0.03 < false_alarm < 0.07
    far = torch.tensor(np.random.default_rng(5).normal(30, 5, size=(200, 3)), dtype=torch.float32)
    assert float((ood.mahalanobis(far, means, precision) > threshold).float().mean()) > 0.95
    with pytest.raises(ValueError, match="false_alarm"):
        ood.quantile_threshold(torch.ones(3), 1.5)


def test_save_load_round_trip_and_missing_file(tmp_path):
    feats, labels, _ = _gaussians(100)
    means, precision = ood.fit(feats, labels, 3)
    assert ood.load(tmp_path) is None
    ood.save(tmp_path, means, precision, 4.25, {"target_false_alarm": 0.02})
    stats = ood.load(tmp_path)
    assert torch.equal(stats.means, means) and torch.equal(stats.precision, precision)
    assert stats.threshold == 4.25 and stats.meta == {"target_false_alarm": 0.02}


def test_verdict_says_what_the_model_knows_in_plain_words():
    stats = ood.OODStats(torch.zeros(2, 2), torch.eye(2), 10.0, {"target_false_alarm": 0.02})
    odd = ood.verdict(12.5, stats, ("circle", "star"))
    assert odd.unusual and "knows 2 shapes (circle, star)" in odd.message and "unlike" in odd.message
    fine = ood.verdict(3.0, stats, ("circle", "star"), photos_caught=0.35)
    assert not fine.unusual and "2%" in fine.message and "catches 35% of test photos" in fine.message


def test_fit_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="features"):
        ood.fit(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), 2)


def test_hub_models_have_no_calibration():
    assert ood.stats_for("google/vit-base-patch16-224") is None


def test_a_classifier_flags_on_its_softmax_and_the_message_says_why():
    """With logits and an MSP threshold the flag is the MSP alone; the distance decides only without them."""
    stats = ood.OODStats(torch.zeros(2, 2), torch.eye(2), 10.0, {"target_false_alarm": 0.02}, msp_threshold=0.6)
    distance = torch.tensor([3.0, 12.0, 3.0, 12.0])
    msp = torch.tensor([0.9, 0.9, 0.4, 0.4])
    assert ood.flagged(stats, distance, msp).tolist() == [False, False, True, True]
    assert ood.flagged(stats, distance).tolist() == [False, True, False, True]  # no logits: distance only
    unsure = ood.verdict(3.0, stats, ("circle", "star"), msp=0.4)
    assert unsure.unusual and "top probability is low (0.40 < 0.60)" in unsure.message
    assert "far from" not in ood.verdict(12.0, stats, ("circle", "star"), msp=0.4).message
    fine = ood.verdict(12.0, stats, ("circle", "star"), msp=0.9)
    assert not fine.unusual and "top probability 0.90 ≥ 0.60" in fine.message and "2%" in fine.message
    no_logits = ood.verdict(12.0, stats, ("circle", "star"))
    assert no_logits.unusual and "distance 12.0 > 10.0" in no_logits.message


def test_verdict_matches_flagged():
    stats = ood.OODStats(torch.zeros(2, 2), torch.eye(2), 10.0, {"target_false_alarm": 0.02}, msp_threshold=0.6)
    for d in (3.0, 12.0):
        for m in (None, 0.4, 0.9):
            flag = ood.flagged(stats, torch.tensor([d]), None if m is None else torch.tensor([m]))
            assert ood.verdict(d, stats, ("circle", "star"), msp=m).unusual == bool(flag[0]), (d, m)


def test_calibration_record_round_trips_the_softmax_threshold(tmp_path):
    feats, labels, _ = _gaussians(100)
    means, precision = ood.fit(feats, labels, 3)
    ood.save(tmp_path, means, precision, 4.0, {"target_false_alarm": 0.02, "msp_threshold": 0.55})
    assert ood.load(tmp_path).msp_threshold == 0.55


def test_page_line_warns_passes_or_says_there_is_no_check():
    stats = ood.OODStats(torch.zeros(2, 2), torch.eye(2), 10.0, {"target_false_alarm": 0.02}, msp_threshold=0.6)
    odd = ood.verdict(3.0, stats, ("circle", "star"), msp=0.4)
    fine = ood.verdict(3.0, stats, ("circle", "star"), msp=0.9)
    assert ood.page_line(odd, "m") == "⚠️ " + odd.message
    assert ood.page_line(fine, "m") == fine.message
    assert ood.page_line(None, "google/vit-base-patch16-224").startswith(
        "No out-of-distribution check: google/vit-base-patch16-224 ships without a calibration")


def test_clip_shape_logits_are_clips_own_zero_shot_logits():
    """A CLIP's OOD logits are what its own forward gives for the five shape prompts (logits_per_image)."""
    from shared.data.shapes import SHAPES, sample_image
    from shared.models import load

    model, processor = load("clip-tiny-shapes")
    images = [sample_image("star", "red", size=64)[0], sample_image("circle", "blue", size=64)[0]]
    logits, feats = ood.clip_image_features(model, processor, images)
    inputs = processor(text=[ood.OOD_PROMPT.format(s) for s in SHAPES], images=images, return_tensors="pt",
                       padding=True)
    with torch.no_grad():
        out = model(**inputs)
    assert logits.shape == (2, len(SHAPES)) and feats.shape == out.image_embeds.shape
    torch.testing.assert_close(logits, out.logits_per_image, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(2))
