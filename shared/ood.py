"""Is this input like the training data? A calibrated out-of-distribution (OOD) score.

A classifier answers with one of its classes whatever it is shown: a photo of a cat comes back as
a confident "star". Every page that classifies therefore reports this score next to its confidence.

Two scores, each with a threshold calibrated on held-out validation shapes:

- the Mahalanobis distance of the model's own features to the nearest class mean, with one covariance
  shared by the classes (Lee et al., 2018, "A Simple Unified Framework for Detecting Out-of-Distribution
  Samples and Adversarial Attacks", NeurIPS; their eq. 2, one layer, no input perturbation), fitted on
  training-split images;
- for a classifier, its maximum softmax probability (MSP; Hendrycks & Gimpel, 2017), which becomes a useful
  score once the classifier is fine-tuned with Outlier Exposure (Hendrycks et al., 2019; see
  ``shared/data/outliers.py``), as that paper scores it. A CLIP is scored the same way on its zero-shot
  logits over the five prompts ``OOD_PROMPT.format(shape)``, which its recipe exposes to outliers too.

The flag uses one score, with the whole TARGET_FALSE_ALARM budget: the MSP when the model has logits and
an MSP threshold, otherwise (a calibration without one) the distance. Each threshold flags that share of the validation shapes
(about that share of new shapes). The flag was once the union of both scores at half the budget each;
on the Outlier-Exposed ViT the distance caught none of 85 test photos and 100 noise images, so its half of
the budget bought nothing and the MSP threshold it forced down let Chelsea the cat through (issue 13).
``shared.evaluation`` measures the false-alarm rate on the test split and the detection rate on images
that are not shapes (noise, photos), for the flag and for each score alone; model cards report them.

Stats live beside the weights as ``ood.safetensors`` (class means, precision, threshold), written by
the training recipe; models without that file (Hub models) get no OOD verdict, and pages say so.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

STATS_FILE = "ood.safetensors"
OOD_PROMPT = "a photo of a {}"  # a CLIP's zero-shot prompt per shape, for its logits here and in its OE term
# What a CLIP's score is called on a page, where "top probability" alone would read as the user's own labels'.
CLIP_SCORE_NAME = f"top probability over the shape prompts '{OOD_PROMPT.format('{shape}')}'"
TARGET_FALSE_ALARM = 0.02  # share of held-out shapes the threshold flags
SHRINKAGE = 1e-3  # ridge on the covariance (relative to its mean variance) so it inverts


@dataclass(frozen=True)
class OODStats:
    means: torch.Tensor  # (C, D) class means of the features
    precision: torch.Tensor  # (D, D) inverse of the shared covariance
    threshold: float  # Mahalanobis distances above this are flagged
    meta: dict  # how it was calibrated (feature, images, target false-alarm rate)
    msp_threshold: float | None = None  # maximum softmax probabilities below this are flagged (classifiers)


@dataclass(frozen=True)
class OODVerdict:
    score: float
    threshold: float
    unusual: bool
    message: str


def fit(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means (C, D) and the precision (D, D) of the shared, class-centred covariance."""
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"need features (N, D) and labels (N,), got {tuple(features.shape)} and {tuple(labels.shape)}")
    feats = features.double()
    means = torch.stack([feats[labels == c].mean(0) for c in range(num_classes)])  # (C, D)
    centred = feats - means[labels]  # (N, D)
    cov = centred.T @ centred / len(feats)  # (D, D)
    cov += SHRINKAGE * cov.diagonal().mean() * torch.eye(cov.shape[0], dtype=cov.dtype)
    return means.float(), torch.linalg.inv(cov).float()


def mahalanobis(features: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """Distance to the nearest class mean: min_c sqrt((f - mu_c)^T P (f - mu_c)). (N, D) -> (N,)"""
    diff = features[:, None, :] - means[None, :, :]  # (N, C, D)
    d2 = torch.einsum("ncd,de,nce->nc", diff, precision, diff)  # (N, C)
    return d2.clamp(min=0).min(dim=1).values.sqrt()  # (N,)


def quantile_threshold(scores: torch.Tensor, false_alarm: float = TARGET_FALSE_ALARM) -> float:
    """The score that ``false_alarm`` of these (in-distribution) scores exceed."""
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm}")
    return float(torch.quantile(scores.double(), 1 - false_alarm))


def save(folder: str | Path, means: torch.Tensor, precision: torch.Tensor, threshold: float, meta: dict) -> None:
    from safetensors.torch import save_file

    save_file({"means": means.contiguous(), "precision": precision.contiguous()}, str(Path(folder) / STATS_FILE),
              metadata={"threshold": repr(threshold), "meta": json.dumps(meta)})


def uses_msp(stats: OODStats, msp) -> bool:
    """Whether the flag is the softmax score (a classifier calibrated with one) rather than the distance."""
    return msp is not None and stats.msp_threshold is not None


def flagged(stats: OODStats, distance: torch.Tensor, msp: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) bool: the top softmax probability below its threshold when there is one, else the distance
    above its threshold."""
    return msp < stats.msp_threshold if uses_msp(stats, msp) else distance > stats.threshold


def load(folder: str | Path) -> OODStats | None:
    """The stats beside a model's weights, or None when the model has none (e.g. a Hub model)."""
    from safetensors import safe_open

    path = Path(folder) / STATS_FILE
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        info = json.loads(meta["meta"])
        return OODStats(f.get_tensor("means"), f.get_tensor("precision"), float(meta["threshold"]), info,
                        info.get("msp_threshold"))


@functools.lru_cache(maxsize=16)
def stats_for(model_name: str) -> OODStats | None:
    """The OOD stats shipped beside a registered embedded model; None for Hub models (no calibration)."""
    from shared.models import REGISTRY, local_path

    if model_name not in REGISTRY or not REGISTRY[model_name].embedded:
        return None
    return load(local_path(model_name))


def verdict(score: float, stats: OODStats, class_names: list[str] | tuple[str, ...],
            msp: float | None = None, photos_caught: float | None = None,
            msp_name: str = "top probability") -> OODVerdict:
    """Plain words for one image's Mahalanobis ``score`` and, for a classifier, its top probability ``msp``
    (called ``msp_name`` on the page). ``photos_caught``, the measured share of test photos the flag catches
    (model card), tells the user how much an unflagged verdict is worth."""
    known = f"this model knows {len(class_names)} shapes ({', '.join(class_names)})"
    target = stats.meta.get("target_false_alarm", TARGET_FALSE_ALARM)
    if uses_msp(stats, msp):
        unusual = msp < stats.msp_threshold
        reason = f"the {msp_name} is low ({msp:.2f} < {stats.msp_threshold:.2f})"
        fine = f"{msp_name} {msp:.2f} ≥ {stats.msp_threshold:.2f}"
    else:
        unusual = score > stats.threshold
        reason = f"its features are far from every shape's (distance {score:.1f} > {stats.threshold:.1f})"
        fine = f"distance {score:.1f} ≤ {stats.threshold:.1f}"
    if unusual:
        message = (f"Unusual input: {known}, and this image looks unlike them: {reason}. "
                   "Treat the answer as a guess.")
    else:
        message = f"Not flagged: {fine} (threshold set to flag {target:.0%} of held-out shapes)."
        if photos_caught is not None:
            message += (f" The check catches {photos_caught:.0%} of test photos (model card), so an unflagged "
                        "image can still be unlike the shapes.")
    return OODVerdict(score, stats.threshold, bool(unusual), message)


def page_line(found: OODVerdict | None, model_name: str) -> str:
    """The line a page shows above a classifier's answer: the verdict, or that there is no check."""
    if found is None:
        return (f"No out-of-distribution check: {model_name} ships without a calibration (shared/ood.py), so an "
                "image unlike its training data is not flagged.")
    return ("⚠️ " if found.unusual else "") + found.message


def classifier_verdict(model_name: str, logits: torch.Tensor, features: torch.Tensor,
                       class_names: list[str] | tuple[str, ...], msp_name: str = "top probability") -> OODVerdict | None:
    """The verdict a page shows beside a classifier's answer for one image: ``logits`` (C,) or (1, C) and the
    features the head reads, (D,) or (1, D). For a CLIP: its shape logits (``clip_shape_logits``), its image
    embedding and ``msp_name=CLIP_SCORE_NAME``. None for a model without calibration (a Hub model)."""
    from shared.models import shipped_metrics

    stats = stats_for(model_name)
    if stats is None:
        return None
    score = float(mahalanobis(features.detach().float().reshape(1, -1), stats.means, stats.precision)[0])
    msp = float(logits.detach().float().reshape(-1).softmax(-1).max())
    caught = ((shipped_metrics(model_name) or {}).get("ood") or {}).get("detected_photos")
    return verdict(score, stats, class_names, msp=msp, photos_caught=caught, msp_name=msp_name)


# --------------------------------------------------------------------------------------
#                        Features and calibration of an image classifier
# --------------------------------------------------------------------------------------

@torch.no_grad()
def classifier_features(model, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (B, C), features (B, D)): the features are what the classification head reads,
    the [CLS] token after ViT's final layer norm."""
    hidden = model.base_model(pixel_values=pixel_values).last_hidden_state  # (B, 1 + N, D)
    feats = hidden[:, 0]  # (B, D)
    return model.classifier(feats), feats


@torch.no_grad()
def image_features(model, processor, images: list, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and features of PIL images, through the model's own processor."""
    logits, feats = [], []
    for start in range(0, len(images), batch_size):
        pixels = processor(images=images[start:start + batch_size], return_tensors="pt")["pixel_values"]
        lo, fe = classifier_features(model, pixels.to(next(model.parameters()).device))
        logits.append(lo.float().cpu())
        feats.append(fe.float().cpu())
    return torch.cat(logits), torch.cat(feats)


@torch.no_grad()
def clip_shape_logits(model, tokenizer, image_embeds: torch.Tensor) -> torch.Tensor:
    """A CLIP's zero-shot logits over the shapes: (N, P) L2-normalised image embeddings -> (N, 5), at the
    model's learned scale, against the prompts ``OOD_PROMPT.format(shape)``."""
    from shared.data.shapes import SHAPES

    device = next(model.parameters()).device
    tokens = tokenizer([OOD_PROMPT.format(s) for s in SHAPES], padding=True, return_tensors="pt").to(device)
    text = torch.nn.functional.normalize(model.get_text_features(**tokens).pooler_output.float(), dim=-1)  # (5, P)
    return model.logit_scale.exp().float().cpu() * image_embeds.float().cpu() @ text.cpu().T  # (N, 5)


@torch.no_grad()
def clip_image_features(model, processor, images: list, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """(zero-shot shape logits (B, 5), features (B, P)): the features are the L2-normalised projected image
    embeddings, the vectors zero-shot classification compares with text."""
    feats = []
    for start in range(0, len(images), batch_size):
        pixels = processor(images=images[start:start + batch_size], return_tensors="pt")["pixel_values"]
        out = model.get_image_features(pixel_values=pixels.to(next(model.parameters()).device))
        feats.append(torch.nn.functional.normalize(out.pooler_output.float(), dim=-1).cpu())  # (B, P)
    feats = torch.cat(feats)
    return clip_shape_logits(model, processor.tokenizer, feats), feats


def load_for_features(folder: str | Path) -> tuple[object, object, Callable[[list], tuple], int]:
    """(model, processor, extract(images) -> (logits or None, features), input size) for an image
    classifier or a CLIP folder."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification, AutoProcessor, CLIPModel

    if AutoConfig.from_pretrained(folder).model_type == "clip":
        model = CLIPModel.from_pretrained(folder, use_safetensors=True).eval()
        processor = AutoProcessor.from_pretrained(folder)
        size = processor.image_processor.crop_size["height"]
        return model, processor, lambda images: clip_image_features(model, processor, images), size
    model = AutoModelForImageClassification.from_pretrained(folder, use_safetensors=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    return model, processor, lambda images: image_features(model, processor, images), processor.size["height"]


def calibrate(folder: str | Path, n_fit: int = 5000, n_threshold: int = 2000) -> dict:
    """Fit the class Gaussians on ``n_fit`` training shapes, set the threshold on ``n_threshold``
    validation shapes, save ``ood.safetensors`` beside the weights; return the calibration record.
    Works for the embedded shape classifier and the embedded CLIP (classes: the five shapes)."""
    from shared.data.shapes import SHAPES, ShapesDataset
    from shared.evaluation import trained_on

    model, _, extract, size = load_for_features(folder)
    distribution = trained_on(str(folder))
    is_clip = hasattr(model, "get_text_features")
    fit_ds = ShapesDataset("train", n_fit, size, distribution=distribution)
    val_ds = ShapesDataset("val", n_threshold, size, distribution=distribution)
    _, fit_feats = extract([fit_ds[i][0] for i in range(n_fit)])
    fit_labels = torch.tensor([fit_ds.spec(i).label for i in range(n_fit)])
    means, precision = fit(fit_feats, fit_labels, len(SHAPES))
    val_logits, val_feats = extract([val_ds[i][0] for i in range(n_threshold)])
    threshold = quantile_threshold(mahalanobis(val_feats, means, precision))
    meta = {
        "score": "Mahalanobis distance to the nearest class mean (Lee et al., 2018)",
        "feature": "L2-normalised image embedding" if is_clip else "[CLS] after the final layer norm",
        "fit_images": n_fit, "threshold_images": n_threshold, "target_false_alarm": TARGET_FALSE_ALARM,
        "data_distribution": distribution,
    }
    msp = val_logits.softmax(-1).max(-1).values  # (M,) maximum softmax probability
    meta["msp_threshold"] = float(torch.quantile(msp.double(), TARGET_FALSE_ALARM))
    meta["score"] = ("maximum softmax probability (Hendrycks & Gimpel, 2017) after Outlier Exposure; the "
                     "Mahalanobis distance (Lee et al., 2018) is calibrated too, and reported, not flagged on")
    if is_clip:
        meta["score"] = meta["score"].replace("probability", f"probability of the zero-shot logits over '{OOD_PROMPT}'", 1)
    save(folder, means, precision, threshold, meta)
    return {"threshold": threshold, **meta}

