"""CLIP: contrastive image-text learning and zero-shot classification, computed by a real model.

CLIP (Radford et al., 2021, "Learning Transferable Visual Models From Natural Language
Supervision") has two towers, an image encoder and a text encoder, each ending in a linear
projection into one joint space. Training pushes the cosine similarity of matching pairs in
a batch up and of all other pairs down: a symmetric cross-entropy (InfoNCE, van den Oord et
al., 2018) over the (N, N) similarity matrix scaled by a learned logit scale (1 / temperature). The
paper's §2.5 initialises the temperature "to the equivalent of 0.07" and clips it "to prevent scaling
the logits by more than 100"; where a trained model ends is its own (``logit_scale``).

Zero-shot classification turns each label into a sentence with a prompt template ("a photo
of a {}"), embeds it, and picks the label whose text embedding is most similar to the image
embedding. Several templates can be averaged into one embedding per label, the paper's
"prompt ensembling", built "over the embedding space instead of probability space" (§3.1.4):
here every prompt is embedded and L2-normalised, and their mean re-normalised.

This module teaches three things with the model the user picks:
- ``zero_shot``: labels x templates -> cosine similarities -> logits -> softmax, at the learned
  scale and at any temperature the user sets;
- ``contrastive_batch``: N shapes renders x their N captions -> similarity matrix, the
  symmetric InfoNCE loss and the hardest negatives;
- ``patch_similarity``: how similar each image patch token is to a label, an indicative map
  only (CLIP has no cross-attention and its patch tokens were never trained to match text).

Text embeddings are cached per (model, labels, templates) in a ``shared.cache.BoundedCache``: two
users asking for the same labels at once compute them once. Limits and defaults live in the torch-free
``options.py``, which the page reads at build time.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from shared import ood, validate
from shared.cache import BoundedCache
from shared.data.shapes import SHAPES, render, spec_at
from shared.models import load, names, shipped_metrics
from shared.ood import OODVerdict

from .options import (  # noqa: F401 - re-exported: callers and tests read the limits from compute
    DEFAULT_MODEL,
    DEFAULT_TEMPLATE,
    MAX_BATCH,
    MAX_LABELS,
    MAX_START,
    MAX_TEMPLATES,
    PAPER_INIT_TEMPERATURE,
    PAPER_MAX_LOGIT_SCALE,
    TASK,
)

# --------------------------------------------------------------------------------------
#                                   Parsing user input
# --------------------------------------------------------------------------------------

def _check_text(value: object, name: str) -> None:
    if value is not None and not isinstance(value, str):  # an API caller can send a number or a list
        raise ValueError(f"{name} must be text, got {type(value).__name__} {value!r}")


def parse_labels(text: str | None) -> list[str]:
    """Candidate labels from comma- or newline-separated text; refuses unusable label sets."""
    _check_text(text, "labels")
    labels = [" ".join(part.split()) for part in re.split(r"[,\n]", text or "")]
    labels = [label for label in labels if label]
    if not labels:
        raise ValueError("no labels given: enter at least two candidate labels, separated by commas or new lines "
                         "(e.g. 'circle, square, star').")
    if len(labels) == 1:
        raise ValueError(f"only one label ({labels[0]!r}): zero-shot classification is a softmax over the candidate "
                         "labels, and a softmax over one label is always 1.0 whatever the image, so it would say "
                         "nothing. Give at least two labels (for example add 'something else').")
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{len(labels)} labels given; the maximum is {MAX_LABELS}.")
    seen: dict[str, str] = {}
    duplicates = []
    for label in labels:
        key = label.lower()
        if key in seen:
            duplicates.append(label)
        seen.setdefault(key, label)
    if duplicates:
        raise ValueError(f"duplicate labels {sorted(set(duplicates))}: each label must appear once (case-insensitive), "
                         "or the softmax would split its probability between copies.")
    return labels


def parse_templates(text: str | None) -> list[str]:
    """Prompt templates, one per line, each with a ``{}`` where the label goes."""
    _check_text(text, "templates")
    templates = [" ".join(line.split()) for line in (text or "").splitlines()]
    templates = [t for t in templates if t]
    if not templates:
        raise ValueError(f"no template given: enter at least one prompt template with {{}} for the label, "
                         f"e.g. {DEFAULT_TEMPLATE!r}.")
    if len(templates) > MAX_TEMPLATES:
        raise ValueError(f"{len(templates)} templates given; the maximum is {MAX_TEMPLATES}, one per line.")
    missing = [t for t in templates if "{}" not in t]
    if missing:
        raise ValueError(f"template {missing[0]!r} has no {{}}: every template needs {{}} where the label goes, "
                         f"e.g. {DEFAULT_TEMPLATE!r}.")
    return templates


def check_model(model_name: str) -> str:
    """A registered CLIP (zero-shot) model name; whether it can load here is ``shared.models.load``'s to say."""
    return validate.choice(model_name, "model", names(TASK))


def prompts_for(labels: list[str], templates: list[str]) -> list[list[str]]:
    """(L, T) prompts: every template filled with every label."""
    return [[t.replace("{}", label) for t in templates] for label in labels]


# --------------------------------------------------------------------------------------
#                                   Embeddings
# --------------------------------------------------------------------------------------

def context_length(model) -> int:
    return int(model.config.text_config.max_position_embeddings)


@dataclass
class TextEmbeddings:
    embeddings: torch.Tensor  # (L, P) L2-normalised prompt-ensemble embedding per label
    prompts: list[list[str]]  # (L, T)
    truncated: list[str]  # prompts longer than the model's context, cut to fit
    cached: bool  # True when this came from the cache


_TEXT_CACHE: BoundedCache[TextEmbeddings] = BoundedCache(64)


def clear_text_cache() -> None:
    _TEXT_CACHE.clear()


@torch.no_grad()
def encode_prompts(model, tokenizer, prompts: list[str]) -> tuple[torch.Tensor, list[str]]:
    """L2-normalised text embeddings (len(prompts), P) and the prompts that had to be truncated."""
    limit = context_length(model)
    lengths = [len(ids) for ids in tokenizer(prompts, truncation=False, verbose=False)["input_ids"]]  # with start/end tokens
    truncated = [p for p, n in zip(prompts, lengths, strict=True) if n > limit]
    device = next(model.parameters()).device
    tokens = tokenizer(prompts, padding=True, truncation=True, max_length=limit, return_tensors="pt").to(device)
    text = model.get_text_features(**tokens).pooler_output  # (T, P)
    return F.normalize(text.float(), dim=-1), truncated


def text_embeddings(model_name: str, labels: list[str], templates: list[str]) -> TextEmbeddings:
    """Prompt-ensemble embedding per label (Radford et al., 2021, §3.1.4), cached per (model, labels, templates)."""
    def make() -> TextEmbeddings:
        model, processor = load(model_name)
        prompts = prompts_for(labels, templates)
        flat = [p for row in prompts for p in row]
        emb, truncated = encode_prompts(model, processor.tokenizer, flat)  # (L*T, P)
        emb = emb.view(len(labels), len(templates), -1).mean(dim=1)  # (L, P) average of unit vectors
        emb = F.normalize(emb, dim=-1).cpu()  # (L, P) re-normalised
        return TextEmbeddings(emb, prompts, truncated, cached=False)

    value, hit = _TEXT_CACHE.get_or_create((model_name, tuple(labels), tuple(templates)), make)
    return dataclasses.replace(value, cached=hit)  # the stored entry stays as computed


def _pixels(model_name: str, images: list[Image.Image]) -> tuple[torch.nn.Module, torch.Tensor]:
    model, processor = load(model_name)
    param = next(model.parameters())
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]  # (B, 3, H, W)
    return model, pixels.to(device=param.device, dtype=param.dtype)


@torch.no_grad()
def image_embeddings(model_name: str, images: list[Image.Image]) -> torch.Tensor:
    """L2-normalised image embeddings (B, P): the [CLS] output, layer-normed and projected."""
    model, pixels = _pixels(model_name, images)
    image = model.get_image_features(pixel_values=pixels).pooler_output  # (B, P)
    return F.normalize(image.float(), dim=-1).cpu()


def logit_scale(model_name: str) -> float:
    """The learned logit scale exp(t) = 1 / temperature."""
    model, _ = load(model_name)
    return float(model.logit_scale.exp().item())


# --------------------------------------------------------------------------------------
#                                   Zero-shot classification
# --------------------------------------------------------------------------------------

def softmax_with_temperature(cosines: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(cos / temperature) over the last axis."""
    temperature = validate.number(temperature, "temperature τ", lo=0, above=True)
    z = np.asarray(cosines, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy_bits(p: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


@dataclass
class ZeroShotResult:
    labels: list[str]
    prompts: list[list[str]]  # (L, T)
    cosines: np.ndarray  # (L,) cosine similarity of the image to each label's ensemble embedding
    logit_scale: float  # learned 1 / temperature
    logits: np.ndarray  # (L,) logit_scale * cosines
    probs: np.ndarray  # (L,) softmax(logits)
    cached: bool  # text embeddings came from the cache
    truncated: list[str] = field(default_factory=list)
    model: str = DEFAULT_MODEL
    ood: OODVerdict | None = None  # is the image like the training data? None: the model has no calibration

    @property
    def confidence(self) -> float:
        """The top label's probability (softmax at the learned scale)."""
        return float(self.probs.max())

    def probabilities(self) -> dict[str, float]:
        return {label: float(p) for label, p in zip(self.labels, self.probs, strict=True)}


def zero_shot(image: Image.Image, labels_text: str, templates_text: str,
              model_name: str = DEFAULT_MODEL) -> ZeroShotResult:
    """Zero-shot classification of ``image`` over the labels, with a prompt ensemble of the templates."""
    if image is None:
        raise ValueError("no image given: upload an image or pick a sample.")
    model_name = check_model(model_name)
    labels = parse_labels(labels_text)
    templates = parse_templates(templates_text)
    text = text_embeddings(model_name, labels, templates)  # (L, P)
    image_emb = image_embeddings(model_name, [image])  # (1, P)
    cosines = (image_emb @ text.embeddings.T)[0].numpy().astype(np.float64)  # (L,)
    scale = logit_scale(model_name)
    logits = scale * cosines  # (L,)
    return ZeroShotResult(labels, text.prompts, cosines, scale, logits,
                          softmax_with_temperature(cosines, 1.0 / scale), text.cached, text.truncated, model_name,
                          ood_verdict(model_name, image_emb))


def ood_verdict(model_name: str, image_emb: torch.Tensor) -> OODVerdict | None:
    """Mahalanobis distance of the (1, P) normalised image embedding to the nearest shape class,
    against the threshold calibrated on held-out shapes (``shared.ood``); None without calibration."""
    stats = ood.stats_for(model_name)
    if stats is None:
        return None
    score = float(ood.mahalanobis(image_emb.float(), stats.means, stats.precision)[0])
    caught = ((shipped_metrics(model_name) or {}).get("ood") or {}).get("detected_photos")
    return ood.verdict(score, stats, SHAPES, photos_caught=caught)


# --------------------------------------------------------------------------------------
#                                   The contrastive batch
# --------------------------------------------------------------------------------------

def symmetric_infonce(logits: torch.Tensor) -> tuple[float, float, float]:
    """CLIP's loss on an (N, N) image x text logit matrix whose diagonal holds the matching pairs.

    Returns (loss, image->text, text->image): the mean of the cross-entropy of each row
    (which caption goes with this image?) and of each column (which image goes with this caption?).
    """
    n = logits.shape[0]
    target = torch.arange(n)
    i2t = F.cross_entropy(logits, target)  # rows: image -> text
    t2i = F.cross_entropy(logits.T, target)  # columns: text -> image
    return float((i2t + t2i) / 2), float(i2t), float(t2i)


@dataclass
class BatchResult:
    images: list[Image.Image]  # the N renders
    captions: list[str]  # their N captions, in the same order
    similarity: np.ndarray  # (N, N) cosine, image i x caption j
    logit_scale: float
    loss: float  # symmetric InfoNCE
    loss_image_to_text: float
    loss_text_to_image: float
    image_to_text_accuracy: float  # share of rows whose diagonal is the row's maximum
    text_to_image_accuracy: float
    hard_negatives: list[tuple[int, int, float]]  # (image i, caption j, cosine), i != j, most similar first


def batch_specs(n: int, start: int) -> list:
    """The test-split samples ``start .. start + n - 1``; ``n`` and ``start`` may arrive as API values (4.0, "4")."""
    n = validate.integer(n, "batch size", 2, MAX_BATCH)
    start = validate.integer(start, "start index", 0, MAX_START)
    return [spec_at("test", start + i) for i in range(n)]


@torch.no_grad()
def contrastive_batch(n: int, start: int = 0, model_name: str = DEFAULT_MODEL, top_k: int = 5) -> BatchResult:
    """N held-out shapes renders and their N captions through CLIP: similarity matrix and loss."""
    specs = batch_specs(n, start)
    n = len(specs)
    model_name = check_model(model_name)
    model, processor = load(model_name)
    size = int(processor.image_processor.crop_size["height"])
    images = [render(s, size) for s in specs]
    captions = [s.caption for s in specs]
    image_emb = image_embeddings(model_name, images)  # (N, P)
    text_emb, _ = encode_prompts(model, processor.tokenizer, captions)  # (N, P)
    sim = image_emb @ text_emb.cpu().T  # (N, N) cosine
    scale = logit_scale(model_name)
    loss, i2t, t2i = symmetric_infonce(scale * sim)
    target = torch.arange(n)
    off = sim.clone()
    off.fill_diagonal_(-float("inf"))  # hard negatives: only mismatched pairs
    order = torch.argsort(off.flatten(), descending=True)[:min(top_k, n * (n - 1))]
    hard = [(int(k) // n, int(k) % n, float(sim.flatten()[k])) for k in order]
    return BatchResult(
        images=images, captions=captions, similarity=sim.numpy().astype(np.float64), logit_scale=scale,
        loss=loss, loss_image_to_text=i2t, loss_text_to_image=t2i,
        image_to_text_accuracy=float((sim.argmax(1) == target).float().mean()),
        text_to_image_accuracy=float((sim.argmax(0) == target).float().mean()),
        hard_negatives=hard,
    )


# --------------------------------------------------------------------------------------
#                                   Where in the image (indicative)
# --------------------------------------------------------------------------------------

@dataclass
class PatchResult:
    similarity: np.ndarray  # (g, g) cosine of each projected patch token to the label
    cls_similarity: float  # the pooled [CLS] embedding's cosine, the one CLIP was trained on
    label: str
    prompts: list[str]
    cached: bool


@torch.no_grad()
def patch_similarity(image: Image.Image, label: str, templates_text: str,
                     model_name: str = DEFAULT_MODEL) -> PatchResult:
    """Cosine of each patch token (post-layernorm, visual projection) to the label's text embedding.

    CLIP pools only the [CLS] token into the joint space; running the patch tokens through the
    same final layer norm and projection is a probe they were never trained for.
    """
    if image is None:
        raise ValueError("no image given: upload an image or pick a sample.")
    model_name = check_model(model_name)
    _check_text(label, "label")
    label = " ".join((label or "").split())
    if not label:
        raise ValueError("no label given: enter the label to locate, e.g. 'star'.")
    templates = parse_templates(templates_text)
    text = text_embeddings(model_name, [label], templates)  # (1, P)
    model, pixels = _pixels(model_name, [image])
    hidden = model.vision_model(pixel_values=pixels).last_hidden_state  # (1, 1 + g*g, D)
    tokens = model.vision_model.post_layernorm(hidden)  # (1, 1 + g*g, D)
    projected = F.normalize(model.visual_projection(tokens).float(), dim=-1)[0].cpu()  # (1 + g*g, P)
    cos = projected @ text.embeddings[0]  # (1 + g*g,)
    grid = int(round(math.sqrt(cos.shape[0] - 1)))
    return PatchResult(cos[1:].view(grid, grid).numpy().astype(np.float64), float(cos[0]), label,
                       text.prompts[0], text.cached)
