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

This module teaches these things with the model the user picks:
- ``zero_shot``: labels x templates -> cosine similarities -> logits -> softmax, at the learned
  scale and at any temperature the user sets;
- ``contrastive_batch``: N shapes renders x their N captions -> similarity matrix, the
  symmetric InfoNCE loss and the hardest negatives;
- ``patch_similarity``: how similar each image patch token is to a label, an indicative map
  only (CLIP has no cross-attention and its patch tokens were never trained to match text).
- ``embedding_map``: image and caption embeddings of a batch projected to 2-D by PCA (numpy SVD);
- ``maths_steps``: dot product, norms, cosine, scaled logit and softmax, each number shown;
- ``contrastive_temperature``: the symmetric InfoNCE loss of a batch as the temperature changes;
- ``search``: text -> image retrieval over a cached gallery of held-out renders;
- ``architecture``: parameters per tower and MACs per image and per text, counted on the model.

Text embeddings are cached per (model, labels, templates) in a ``shared.cache.BoundedCache``: two
users asking for the same labels at once compute them once. Limits and defaults live in the torch-free
``options.py``, which the page reads at build time.
"""

from __future__ import annotations

import copy
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
from shared.models import load, names
from shared.ood import OODVerdict

from .options import (  # noqa: F401 - re-exported: callers and tests read the limits from compute
    DEFAULT_MAP_N,
    DEFAULT_MODEL,
    DEFAULT_QUERY,
    DEFAULT_TEMPLATE,
    DEFAULT_TOP_K,
    GALLERY_SIZE,
    GALLERY_START,
    MAX_BATCH,
    MAX_LABELS,
    MAX_START,
    MAX_TEMPERATURE,
    MAX_TEMPLATES,
    MAX_TOP_K,
    MIN_TEMPERATURE,
    PAPER_INIT_TEMPERATURE,
    PAPER_MAX_LOGIT_SCALE,
    TASK,
    TEMPERATURE_GRID,
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
    """Is the (1, P) normalised image embedding like the shapes? The top zero-shot probability over the prompts
    ``ood.OOD_PROMPT.format(shape)`` (or, for a calibration without one, the Mahalanobis distance), against the
    threshold calibrated on held-out shapes (``shared.ood``); None without calibration. The flag does not
    depend on the labels the user typed."""
    if ood.stats_for(model_name) is None:
        return None
    shapes = text_embeddings(model_name, list(SHAPES), [ood.OOD_PROMPT])  # cached like any labels
    logits = logit_scale(model_name) * image_emb.float() @ shapes.embeddings.T  # (1, 5)
    return ood.classifier_verdict(model_name, logits, image_emb, SHAPES, msp_name=ood.CLIP_SCORE_NAME)


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


# --------------------------------------------------------------------------------------
#                     Batch embeddings, shared by the map and the temperature knob
# --------------------------------------------------------------------------------------

@dataclass
class BatchEmbeddings:
    images: list[Image.Image]  # the renders, at the model's input size
    captions: list[str]
    shapes: list[str]  # the shape each render shows
    image: torch.Tensor  # (N, P) L2-normalised image embeddings
    text: torch.Tensor  # (N, P) L2-normalised caption embeddings


_BATCH_CACHE: BoundedCache[BatchEmbeddings] = BoundedCache(16)


@torch.no_grad()
def _embed_specs(model_name: str, specs: list) -> BatchEmbeddings:
    model, processor = load(model_name)
    size = int(processor.image_processor.crop_size["height"])
    images = [render(s, size) for s in specs]
    captions = [s.caption for s in specs]
    image_emb = image_embeddings(model_name, images)  # (N, P)
    text_emb, _ = encode_prompts(model, processor.tokenizer, captions)  # (N, P)
    return BatchEmbeddings(images, captions, [s.shape for s in specs], image_emb, text_emb.cpu())


def batch_embeddings(n: int, start: int, model_name: str) -> BatchEmbeddings:
    """Held-out renders ``start .. start + n - 1`` and their captions, embedded once per (model, n, start)."""
    specs = batch_specs(n, start)
    start = validate.integer(start, "start index", 0, MAX_START)
    model_name = check_model(model_name)
    value, _ = _BATCH_CACHE.get_or_create((model_name, len(specs), start), lambda: _embed_specs(model_name, specs))
    return value


# --------------------------------------------------------------------------------------
#                                   Embedding map (PCA)
# --------------------------------------------------------------------------------------

def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal component analysis (Pearson, 1901; Hotelling, 1933) by the SVD of the centred data.

    ``x`` (M, P) -> (coords (M, 2) on the first two components, explained-variance ratio of every
    component (min(M, P),), the two components (2, P)). With centred X = U S Vᵀ the covariance is
    V S² Vᵀ / (M - 1): the rows of Vᵀ are its eigenvectors and S² / (M - 1) its eigenvalues, so
    component k explains s_k² / Σ s² of the variance. Each component's sign is fixed so that its
    largest-magnitude loading is positive (an SVD's signs are arbitrary).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 2:
        raise ValueError(f"PCA to 2-D needs at least 3 points of at least 2 dimensions, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("PCA input holds NaN or infinite values")
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    total = float((s ** 2).sum())
    if total == 0:
        raise ValueError("all points are identical: there is no variance to project")
    components = vt[:2].copy()
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components *= signs[:, None]
    return centred @ components.T, s ** 2 / total, components


@dataclass
class EmbeddingMap:
    coords: np.ndarray  # (M, 2): N images, then N captions, then the user's image if given
    kinds: list[str]  # "image", "caption" or "your image", per row
    texts: list[str]  # the caption of each point (the user's image: "your image")
    shapes: list[str]  # the shape of each point's render ("" for the user's image)
    explained: np.ndarray  # explained-variance ratio of every principal component
    n: int
    centroid_gap: float  # |mean image embedding - mean caption embedding| (the modality gap)
    matched_cosine: float  # mean cosine of the N matching pairs
    unmatched_cosine: float  # mean cosine of the N (N - 1) mismatched pairs
    nearest_caption_is_own: float  # share of images whose nearest caption on the map (2-D) is their own
    embeddings: np.ndarray  # (M, P) the normalised embeddings that were projected


def embedding_map(n: int, start: int = 0, model_name: str = DEFAULT_MODEL,
                  image: Image.Image | None = None) -> EmbeddingMap:
    """N held-out renders and their N captions (and the user's image) embedded by CLIP, projected to 2-D by PCA."""
    emb = batch_embeddings(n, start, model_name)
    model_name = check_model(model_name)
    n = len(emb.captions)
    rows = [emb.image, emb.text]
    kinds = ["image"] * n + ["caption"] * n
    texts = list(emb.captions) * 2
    shapes = list(emb.shapes) * 2
    if image is not None:
        rows.append(image_embeddings(model_name, [image]))
        kinds.append("your image")
        texts.append("your image")
        shapes.append("")
    x = torch.cat(rows).double().numpy()  # (M, P)
    coords, explained, _ = pca_2d(x)
    sim = (emb.image @ emb.text.T).double().numpy()  # (N, N)
    off = ~np.eye(n, dtype=bool)
    dist = np.linalg.norm(coords[:n, None, :] - coords[None, n:2 * n, :], axis=-1)  # (N, N) image i to caption j
    return EmbeddingMap(
        coords=coords, kinds=kinds, texts=texts, shapes=shapes, explained=explained, n=n,
        centroid_gap=float(np.linalg.norm(x[:n].mean(0) - x[n:2 * n].mean(0))),
        matched_cosine=float(np.diag(sim).mean()), unmatched_cosine=float(sim[off].mean()),
        nearest_caption_is_own=float((dist.argmin(axis=1) == np.arange(n)).mean()), embeddings=x,
    )


# --------------------------------------------------------------------------------------
#                                   The maths, step by step
# --------------------------------------------------------------------------------------

@dataclass
class MathsSteps:
    labels: list[str]
    prompts: list[list[str]]  # (L, T)
    image_vector: np.ndarray  # (P,) the projected image feature, before normalising
    text_vectors: np.ndarray  # (L, P) per label: the projected text feature (one template) or the ensemble mean
    dots: np.ndarray  # (L,) raw dot products image · text
    image_norm: float
    text_norms: np.ndarray  # (L,)
    cosines: np.ndarray  # (L,) dot / (|image| |text|)
    logit_scale: float  # s = exp(the model's learned log-scale)
    logits: np.ndarray  # (L,) s · cosine
    probs: np.ndarray  # (L,) softmax over the labels
    model: str

    @property
    def top(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def partition(self) -> float:
        """Σ_j exp(logit_j - max logit): the softmax's denominator, shifted by the largest logit."""
        return float(np.exp(self.logits - self.logits.max()).sum())


@torch.no_grad()
def _raw_text_features(model, tokenizer, prompts: list[str]) -> torch.Tensor:
    """Projected text features (len(prompts), P) before normalising, truncated to the context as encode_prompts does."""
    device = next(model.parameters()).device
    tokens = tokenizer(prompts, padding=True, truncation=True, max_length=context_length(model),
                       return_tensors="pt").to(device)
    return model.get_text_features(**tokens).pooler_output.float().cpu()


@torch.no_grad()
def maths_steps(image: Image.Image, labels_text: str, templates_text: str,
                model_name: str = DEFAULT_MODEL) -> MathsSteps:
    """Zero-shot classification written out (Radford et al., 2021, Figure 3's pseudocode): u the image
    feature, v_j each label's text feature, cos_j = u·v_j / (|u| |v_j|), logit_j = s · cos_j,
    p_j = exp(logit_j) / Σ_k exp(logit_k). With several templates v_j is the mean of the label's unit
    prompt vectors (the prompt ensemble), whose norm is below 1; the cosine is the same either way."""
    if image is None:
        raise ValueError("no image given: upload an image or pick a sample.")
    model_name = check_model(model_name)
    labels = parse_labels(labels_text)
    templates = parse_templates(templates_text)
    model, processor = load(model_name)
    prompts = prompts_for(labels, templates)
    text = _raw_text_features(model, processor.tokenizer, [p for row in prompts for p in row])  # (L*T, P)
    text = text.double().view(len(labels), len(templates), -1)
    if len(templates) > 1:
        text = F.normalize(text, dim=-1).mean(dim=1)  # (L, P) the ensemble mean of unit vectors
    else:
        text = text[:, 0]  # (L, P) the raw projected feature
    _, pixels = _pixels(model_name, [image])
    u = model.get_image_features(pixel_values=pixels).pooler_output[0].double().cpu().numpy()  # (P,)
    v = text.numpy()
    dots = v @ u
    image_norm = float(np.linalg.norm(u))
    text_norms = np.linalg.norm(v, axis=1)
    cosines = dots / (image_norm * text_norms)
    scale = logit_scale(model_name)
    logits = scale * cosines
    z = np.exp(logits - logits.max())
    return MathsSteps(labels, prompts, u, v, dots, image_norm, text_norms, cosines, scale, logits, z / z.sum(),
                      model_name)


# --------------------------------------------------------------------------------------
#                       The contrastive loss as the temperature changes
# --------------------------------------------------------------------------------------

def check_temperature(temperature: object) -> float:
    return validate.number(temperature, "temperature τ", lo=MIN_TEMPERATURE, hi=MAX_TEMPERATURE)


def _logsumexp(z: np.ndarray, axis: int) -> np.ndarray:
    m = z.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def infonce_at_temperature(cosines: np.ndarray, temperature: object) -> tuple[float, float, float]:
    """CLIP's symmetric cross-entropy (Radford et al., 2021, Figure 3; InfoNCE, van den Oord et al., 2018)
    on logits cos / τ: (loss, image->text, text->image), each the mean over the N pairs of
    -log softmax of the matching entry, over its row (image->text) or its column (text->image)."""
    tau = check_temperature(temperature)
    cos = np.asarray(cosines, dtype=np.float64)
    if cos.ndim != 2 or cos.shape[0] != cos.shape[1] or cos.shape[0] < 2:
        raise ValueError(f"the similarity matrix must be square with at least 2 pairs, got shape {cos.shape}")
    z = cos / tau
    diag = np.diag(z)
    i2t = float(np.mean(_logsumexp(z, axis=1) - diag))
    t2i = float(np.mean(_logsumexp(z, axis=0) - diag))
    return (i2t + t2i) / 2, i2t, t2i


def temperature_grid() -> np.ndarray:
    """The loss curve's temperatures: log-spaced over the knob's range."""
    return np.geomspace(MIN_TEMPERATURE, MAX_TEMPERATURE, TEMPERATURE_GRID)


@dataclass
class TemperatureResult:
    captions: list[str]
    similarity: np.ndarray  # (N, N) cosine, image i x caption j: does not depend on τ
    temperature: float  # the user's τ
    learned_temperature: float  # 1 / the model's logit scale
    row_probs: np.ndarray  # (N, N) softmax over each row of cos / τ: p(caption j | image i)
    loss: float  # symmetric InfoNCE at τ
    loss_image_to_text: float
    loss_text_to_image: float
    learned_loss: float  # at the learned τ
    grid: np.ndarray  # temperatures of the curve
    curve: np.ndarray  # loss at each
    chance: float  # ln N: the loss as τ -> infinity (every softmax uniform)
    margin: float  # min over i of (cos_ii - max_{j≠i} cos_ij, over rows and columns): loss -> 0 as τ -> 0 iff > 0

    @property
    def best_grid_temperature(self) -> float:
        return float(self.grid[int(np.argmin(self.curve))])


def contrastive_temperature(n: int, start: int, temperature: object,
                            model_name: str = DEFAULT_MODEL) -> TemperatureResult:
    """The batch's (N, N) cosines (embedded once, cached) turned into the symmetric InfoNCE at any τ."""
    tau = check_temperature(temperature)
    emb = batch_embeddings(n, start, model_name)
    sim = (emb.image @ emb.text.T).double().numpy()
    n = sim.shape[0]
    z = sim / tau
    row = np.exp(z - z.max(axis=1, keepdims=True))
    row /= row.sum(axis=1, keepdims=True)
    loss, i2t, t2i = infonce_at_temperature(sim, tau)
    learned = 1.0 / logit_scale(check_model(model_name))
    grid = temperature_grid()
    off = np.where(np.eye(n, dtype=bool), -np.inf, sim)
    margin = float(min((np.diag(sim) - off.max(axis=1)).min(), (np.diag(sim) - off.max(axis=0)).min()))
    learned_loss = infonce_at_temperature(sim, learned)[0] if MIN_TEMPERATURE <= learned <= MAX_TEMPERATURE \
        else float(symmetric_infonce(torch.from_numpy(sim / learned))[0])
    return TemperatureResult(
        captions=list(emb.captions), similarity=sim, temperature=tau, learned_temperature=learned, row_probs=row,
        loss=loss, loss_image_to_text=i2t, loss_text_to_image=t2i, learned_loss=learned_loss, grid=grid,
        curve=np.array([infonce_at_temperature(sim, t)[0] for t in grid]), chance=float(np.log(n)), margin=margin,
    )


# --------------------------------------------------------------------------------------
#                                   Text -> image search
# --------------------------------------------------------------------------------------

@dataclass
class Gallery:
    images: list[Image.Image]
    captions: list[str]
    indices: list[int]  # test-split indices
    embeddings: torch.Tensor  # (G, P) normalised


_GALLERY_CACHE: BoundedCache[Gallery] = BoundedCache(4)


def gallery(model_name: str = DEFAULT_MODEL) -> tuple[Gallery, bool]:
    """The search gallery (test-split renders GALLERY_START ..), embedded once per model: (gallery, from cache)."""
    model_name = check_model(model_name)

    def make() -> Gallery:
        indices = list(range(GALLERY_START, GALLERY_START + GALLERY_SIZE))
        emb = _embed_specs(model_name, [spec_at("test", i) for i in indices])
        return Gallery(emb.images, emb.captions, indices, emb.image)

    return _GALLERY_CACHE.get_or_create(model_name, make)


@dataclass
class SearchResult:
    query: str
    hits: list[tuple[int, float]]  # (gallery position, cosine), best first
    scores: np.ndarray  # (G,) cosine of every gallery image to the query
    gallery: Gallery
    cached: bool  # the gallery embeddings came from the cache
    truncated: bool  # the query was longer than the text context


@torch.no_grad()
def search(query: str, k: int = DEFAULT_TOP_K, model_name: str = DEFAULT_MODEL) -> SearchResult:
    """The k gallery renders whose image embedding has the highest cosine with the query's text embedding."""
    _check_text(query, "query")
    query = " ".join((query or "").split())
    if not query:
        raise ValueError(f"no query given: type a caption to search for, e.g. {DEFAULT_QUERY!r}.")
    k = validate.integer(k, "top k", 1, MAX_TOP_K)
    model_name = check_model(model_name)
    found, cached = gallery(model_name)
    model, processor = load(model_name)
    text, truncated = encode_prompts(model, processor.tokenizer, [query])  # (1, P)
    scores = (found.embeddings @ text.cpu()[0]).double().numpy()  # (G,)
    order = np.argsort(-scores, kind="stable")[:k]
    return SearchResult(query, [(int(i), float(scores[i])) for i in order], scores, found, cached, bool(truncated))


# --------------------------------------------------------------------------------------
#                                   Architecture facts
# --------------------------------------------------------------------------------------

TOWERS = ("vision tower", "text tower", "visual projection", "text projection", "logit scale")


def parameters_per_tower(model) -> dict[str, int]:
    """Parameter count of each part of a CLIPModel, each parameter counted once."""
    parts = {"vision tower": model.vision_model, "text tower": model.text_model,
             "visual projection": model.visual_projection, "text projection": model.text_projection}
    out = {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
    out["logit scale"] = model.logit_scale.numel()
    total = sum(p.numel() for p in model.parameters())
    if sum(out.values()) != total:  # a transformers change would show here
        raise ValueError(f"the towers hold {sum(out.values())} parameters but the model {total}")
    return out


def _macs_by_part(counts: dict[str, dict], total: int) -> dict[str, int]:
    """FlopCounterMode's per-module FLOPs -> MACs of the patch embedding, attention and MLP blocks; the
    rest of the total is the projection into the joint space (the only other matrix product)."""
    out = {"patch embedding": 0, "attention": 0, "MLP": 0}
    for module, ops in counts.items():
        macs = sum(ops.values()) // 2
        if module.endswith("embeddings.patch_embedding"):
            out["patch embedding"] += macs
        elif module.endswith(".self_attn"):
            out["attention"] += macs  # q, k, v, out projections and the two bmm
        elif module.endswith(".mlp"):
            out["MLP"] += macs
    out["projection"] = total - sum(out.values())
    return out


@dataclass
class Architecture:
    model: str
    config: dict  # the sizes the counts depend on
    parameters: dict[str, int]  # per tower (TOWERS)
    total_parameters: int
    image_tokens: int  # patches + [CLS]
    macs_per_image: int  # FlopCounterMode FLOPs / 2 for one image through the image tower and projection
    image_parts: dict[str, int]
    text_tokens: int  # tokens of the example prompt, start and end included
    example_prompt: str
    macs_per_text: int  # for the example prompt
    text_parts: dict[str, int]
    macs_per_text_full_context: int  # a prompt that fills the whole context


def _counted(fn) -> tuple[int, dict[str, int]]:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    total = int(counter.get_total_flops() // 2)
    return total, _macs_by_part(counter.get_flop_counts(), total)


def meta_copy(model):
    """The model's architecture again, on the meta device (shapes only) with eager attention, so the
    counter sees softmax(QKᵀ)V as the two matrix products it is (PyTorch's fused CPU attention is not counted)."""
    from transformers import CLIPModel

    config = copy.deepcopy(model.config)
    with torch.device("meta"):
        return CLIPModel._from_config(config, attn_implementation="eager")


def architecture(model_name: str = DEFAULT_MODEL, example_prompt: str = "a photo of a circle") -> Architecture:
    """Parameters per tower of the loaded model; MACs per image and per text counted with
    ``torch.utils.flop_counter.FlopCounterMode`` on its meta-device copy (FLOPs / 2: one multiply-add)."""
    model_name = check_model(model_name)
    model, processor = load(model_name)
    params = parameters_per_tower(model)
    vision, text = model.config.vision_config, model.config.text_config
    meta = meta_copy(model)
    side = int(vision.image_size)
    pixels = torch.empty(1, int(vision.num_channels), side, side, device="meta")
    image_macs, image_parts = _counted(lambda: meta.get_image_features(pixel_values=pixels))
    ids = processor.tokenizer([example_prompt], return_tensors="pt")["input_ids"]
    text_macs, text_parts = _counted(lambda: meta.get_text_features(input_ids=ids.to("meta")))
    full = torch.zeros(1, int(text.max_position_embeddings), dtype=torch.long, device="meta")
    full_macs, _ = _counted(lambda: meta.get_text_features(input_ids=full))
    config = {"image_size": side, "patch_size": int(vision.patch_size), "vision_width": int(vision.hidden_size),
              "vision_layers": int(vision.num_hidden_layers), "vision_mlp": int(vision.intermediate_size),
              "text_width": int(text.hidden_size), "text_layers": int(text.num_hidden_layers),
              "text_mlp": int(text.intermediate_size), "context_length": int(text.max_position_embeddings),
              "vocab_size": int(text.vocab_size), "projection_dim": int(model.config.projection_dim)}
    image_tokens = (side // int(vision.patch_size)) ** 2 + 1
    return Architecture(model_name, config, params, sum(params.values()), image_tokens, image_macs, image_parts,
                        int(ids.shape[1]), example_prompt, text_macs, text_parts, full_macs)
