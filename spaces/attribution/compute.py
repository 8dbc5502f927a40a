"""Interpretability: attribution maps, their sanity check and an adversarial step, for a ViT classifier.

Pure functions (no UI library). Every image is first brought to what the model sees: the model's own
processor resizes (and crops) it to the input resolution, **without** normalising, so ``x`` lives in
[0, 1] pixel space on the 8-bit grid; ``normalise`` applies the processor's mean and std. Gradients are
taken with ``torch.autograd.grad`` (never ``.backward()``), so the cached model shared by concurrent
requests is never written to.

Methods, for a target class t with logit f_t:

- ``rollout``: attention rollout (Abnar & Zuidema, 2020) from ``shared.attention.rollout``, heads fused
  by their mean, nothing discarded. It does not depend on t.
- ``grad_rollout``: Chefer, Gur & Wolf (2021), "Generic Attention-model Explainability for Interpreting
  Bi-Modal and Encoder-Decoder Transformers", ICCV, eqs. 5-6 and their official code
  (hila-chefer/Transformer-MM-Explainability): per layer Ā = mean over heads of (∇A f_t ⊙ A)⁺, then
  R ← R + Ā·R from R = I, first layer first. The map is R's [CLS] row over the patch tokens, normalised to
  sum 1.
- ``gradcam``: Grad-CAM (Selvaraju et al., 2017) on the tokens entering the last block (the output of
  block L-1): channel weights w = gradient of f_t averaged over the patch tokens, map = ReLU(Σ_c w_c A_c)
  per patch, normalised to sum 1. Not the last block's *output*: the classifier reads only [CLS] after a
  per-token layer norm, so the gradient at the output's patch tokens is exactly zero.
- ``integrated_gradients``: Sundararajan, Taly & Yan (2017), eq. 1, with the all-black baseline x' = 0
  in [0, 1] pixel space: attribution_i = (x_i - x'_i) · mean_k ∂f_t/∂x_i (x' + α_k (x - x')), a midpoint
  Riemann sum with α_k = (k + 1/2) / m, m = ``IG_STEPS``. Completeness: Σ_i attribution_i ≈
  f_t(x) - f_t(x'). The map is the signed sum of the attributions over each patch's pixels and channels.

Sanity check: Adebayo et al. (2018), "Sanity Checks for Saliency Maps", NeurIPS: the same map from a copy
of the model whose weights are re-initialised from the model's initialisation distribution (normal with
the config's ``initializer_range``, layer norms 1 and 0, biases 0), either the classifier head only or
the whole cascade (head, then every block down to the patch embedding), and the Spearman rank
correlation between the trained and the randomised maps (of the absolute values, and signed).

FGSM: Goodfellow, Shlens & Szegedy (2015), eq. 3: x_adv = clip(x + ε sign(∇x CE(f(x), t)), 0, 1), one
step, at the model's input resolution; then stored in 8 bits rounding toward the original pixel, so no
pixel moves by more than ε.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from shared import attention, validate
from shared.models import load

from .options import (
    DEFAULT_MODEL,
    FLIP_GRID_STEPS,
    IG_BATCH,
    IG_MAX_STEPS,
    IG_STEPS,
    IG_TOLERANCE,
    MAX_EPSILON,
    METHODS,
    MODELS,
    RANDOM_SEED,
    RANDOMISATIONS,
)

if TYPE_CHECKING:
    import torch


# --------------------------------------------------------------------------------------
#                                   The model's view
# --------------------------------------------------------------------------------------

@dataclass
class View:
    """One image as the model sees it, and the model."""

    model: Any
    processor: Any
    model_name: str
    x: torch.Tensor  # (1, 3, S, S) in [0, 1], on the 8-bit grid: the processor's resize/crop, not normalised
    mean: torch.Tensor  # (1, 3, 1, 1) the processor's normalisation
    std: torch.Tensor  # (1, 3, 1, 1)
    classes: tuple[str, ...]
    patch_size: int
    image_size: int
    prefix: int  # special tokens before the patches: 1 for ViT ([CLS]), 2 for DeiT ([CLS], distillation)

    @property
    def grid(self) -> tuple[int, int]:
        g = self.image_size // self.patch_size
        return g, g

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def uint8(self, x: torch.Tensor | None = None) -> np.ndarray:
        """(S, S, 3) uint8 of ``x`` (default: the image itself)."""
        x = self.x if x is None else x
        return (x[0].detach().permute(1, 2, 0).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)


def class_names(model) -> tuple[str, ...]:
    id2label = getattr(model.config, "id2label", None) or {}
    n = int(getattr(model.config, "num_labels", len(id2label)))
    return tuple(str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(n))


def load_classifier(model_name: str = DEFAULT_MODEL):
    """The model (eager attention, so attention maps come back) and its processor; a Hub model that is not
    available offline raises ``ModelUnavailableError`` naming the embedded model."""
    model_name = validate.choice(model_name, "model", MODELS)
    model, processor = load(model_name, attn="eager")
    size, patch = getattr(model.config, "image_size", None), getattr(model.config, "patch_size", None)
    if not isinstance(size, int) or not isinstance(patch, int) or not hasattr(model, "classifier"):
        raise ValueError(f"{model_name} is not a ViT-family classifier")
    return model, processor


def view(image: Image.Image, model_name: str = DEFAULT_MODEL) -> View:
    """``image`` resized (and cropped) by the model's processor to its input resolution, in [0, 1]."""
    import torch

    if not isinstance(image, Image.Image):
        raise ValueError("no image given: upload an image or pick a sample.")
    model, processor = load_classifier(model_name)
    device = next(model.parameters()).device
    raw = processor(images=image.convert("RGB"), return_tensors="pt", do_normalize=False)["pixel_values"]
    x = (raw.double() * 255).round().clamp(0, 255).float().div(255).to(device)  # on the 8-bit grid
    normalise = getattr(processor, "do_normalize", True)
    mean = torch.tensor(processor.image_mean if normalise else [0.0] * 3, dtype=torch.float32, device=device)
    std = torch.tensor(processor.image_std if normalise else [1.0] * 3, dtype=torch.float32, device=device)
    size, patch = model.config.image_size, model.config.patch_size
    if x.shape[-1] != size or x.shape[-2] != size:
        raise ValueError(f"the processor made a {tuple(x.shape[-2:])} input for a {size}px model")
    with torch.no_grad():
        tokens = model.base_model.embeddings((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)).shape[1]
    prefix = tokens - (size // patch) ** 2
    return View(model, processor, model_name, x, mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1),
                class_names(model), patch, size, prefix)


def target_index(v: View, target: Any, logits: torch.Tensor) -> int:
    """The index of class ``target`` ("" or None: the predicted class)."""
    if target is None or (isinstance(target, str) and target.strip() == ""):
        return int(logits.argmax())
    return v.classes.index(validate.choice(target, "target class", v.classes))


def logits_of(model, v: View, x: torch.Tensor, **kwargs):
    return model(pixel_values=v.normalise(x), **kwargs)


# --------------------------------------------------------------------------------------
#                                   Attribution maps
# --------------------------------------------------------------------------------------

@dataclass
class Explanation:
    method: str
    target: str
    target_index: int
    predicted: str
    probability: float  # softmax probability of the predicted class
    map: np.ndarray  # (rows, cols)
    extras: dict = field(default_factory=dict)
    base: np.ndarray | None = None  # (S, S, 3) uint8: the model's view of the image

    @property
    def stats(self) -> dict:
        return {"method": self.method, "target": self.target, "grid": list(self.map.shape),
                "map": np.round(self.map.astype(np.float64), 8).tolist(), "predicted": self.predicted,
                "probability": round(self.probability, 6), **self.extras}


def _normalised(m: torch.Tensor) -> torch.Tensor:
    total = m.sum()
    return m / total if float(total) > 0 else m


def grad_rollout(model, v: View, t: int) -> np.ndarray:
    """Chefer et al. (2021) relevance of the patches for class ``t`` (module docstring), (rows, cols)."""
    import torch

    out = logits_of(model, v, v.x, output_attentions=True)
    maps = list(out.attentions)  # L x (1, H, N, N)
    grads = torch.autograd.grad(out.logits[0, t], maps)
    n = maps[0].shape[-1]
    r = torch.eye(n, device=v.x.device)
    for a, g in zip(maps, grads, strict=True):  # first layer first
        cam = (g[0] * a[0]).clamp(min=0).mean(dim=0)  # (N, N)
        r = r + cam.detach() @ r
    return _normalised(r[0, v.prefix:]).view(*v.grid).cpu().numpy()


def gradcam(model, v: View, t: int) -> np.ndarray:
    """Grad-CAM on the tokens entering the last block (module docstring), (rows, cols), sums to 1."""
    import torch

    out = logits_of(model, v, v.x, output_hidden_states=True)
    tokens = out.hidden_states[-2]  # (1, N, D): output of block L-1 = input of the last block
    (grad,) = torch.autograd.grad(out.logits[0, t], [tokens])
    a, g = tokens[0, v.prefix:].detach(), grad[0, v.prefix:]  # (P, D)
    weights = g.mean(dim=0)  # (D,)
    cam = (a @ weights).clamp(min=0)  # (P,)
    return _normalised(cam).view(*v.grid).cpu().numpy()


@dataclass
class IntegratedGradients:
    attributions: np.ndarray  # (3, S, S) in the model's input pixels
    logit_input: float
    logit_baseline: float
    steps: int

    @property
    def logit_difference(self) -> float:
        return self.logit_input - self.logit_baseline

    @property
    def sum_attributions(self) -> float:
        return float(self.attributions.astype(np.float64).sum())

    @property
    def completeness_gap(self) -> float:
        """|Σ attributions - logit difference| / |logit difference|."""
        diff = self.logit_difference
        return abs(self.sum_attributions - diff) / abs(diff) if diff != 0 else math.inf


def integrated_gradients(model, v: View, t: int, steps: int = IG_STEPS,
                         batch: int = IG_BATCH) -> IntegratedGradients:
    """Sundararajan et al. (2017) with the all-black baseline and a midpoint Riemann sum of ``steps`` points."""
    import torch

    steps = validate.integer(steps, "integrated-gradients steps", 1, 4096)
    x = v.x
    baseline = torch.zeros_like(x)
    alphas = (torch.arange(steps, dtype=torch.float32, device=x.device) + 0.5) / steps
    total = torch.zeros_like(x[0], dtype=torch.float64)
    for chunk in alphas.split(batch):
        points = (baseline + chunk.view(-1, 1, 1, 1) * (x - baseline)).requires_grad_(True)  # (b, 3, S, S)
        logits = logits_of(model, v, points).logits[:, t]
        (grad,) = torch.autograd.grad(logits.sum(), [points])
        total += grad.double().sum(dim=0)
    attributions = ((x - baseline)[0].double() * total / steps).cpu().numpy()
    with torch.no_grad():
        ends = logits_of(model, v, torch.cat([x, baseline])).logits[:, t].double().cpu().numpy()
    return IntegratedGradients(attributions, float(ends[0]), float(ends[1]), steps)


def patch_sums(pixels: np.ndarray, grid: tuple[int, int], patch: int) -> np.ndarray:
    """(3, S, S) -> (rows, cols): the sum over each patch's pixels and channels."""
    rows, cols = grid
    return pixels.sum(axis=0)[: rows * patch, : cols * patch].reshape(rows, patch, cols, patch).sum(axis=(1, 3))


def refined_integrated_gradients(model, v: View, t: int) -> IntegratedGradients:
    """``integrated_gradients`` from IG_STEPS points, doubled while the completeness gap is above
    IG_TOLERANCE (at most IG_MAX_STEPS): the check Sundararajan et al. (2017) recommend."""
    ig = integrated_gradients(model, v, t, steps=IG_STEPS)
    while ig.completeness_gap > IG_TOLERANCE and ig.steps < IG_MAX_STEPS:
        ig = integrated_gradients(model, v, t, steps=ig.steps * 2)
    return ig


def method_map(model, v: View, method: str, t: int, image: Image.Image | None = None,
               refine: bool = False) -> tuple[np.ndarray, dict]:
    """(map (rows, cols), extra stats) of one method on ``model`` (the trained or a randomised one).
    ``refine``: integrated gradients adds points until complete (the explain endpoint; the sanity
    check compares maps at the same, fixed, step count)."""
    if method == "rollout":
        att = attention.capture(model, v.processor, image) if image is not None else None
        if att is None:  # pragma: no cover - every caller passes the image
            raise ValueError("rollout needs the image")
        return attention.rollout(att, "mean", 0.0), {"head_fusion": "mean", "discard_ratio": 0.0}
    if method == "grad_rollout":
        return grad_rollout(model, v, t), {}
    if method == "gradcam":
        m = gradcam(model, v, t)
        extras = {"layer": "tokens entering the last block"}
        if float(m.max()) <= 0:
            extras["note"] = "every patch's weighted activation is negative, so ReLU leaves nothing: the map is all zero"
        return m, extras
    ig = refined_integrated_gradients(model, v, t) if refine else integrated_gradients(model, v, t)
    extras = {"sum_attributions": ig.sum_attributions, "logit_difference": ig.logit_difference,
              "logit_input": ig.logit_input, "logit_baseline": ig.logit_baseline, "steps": ig.steps,
              "completeness_gap": ig.completeness_gap, "baseline": "all-black image (zeros in [0, 1] pixels)",
              "rule": "midpoint Riemann sum"}
    return patch_sums(ig.attributions, v.grid, v.patch_size), extras


def explain(image: Image.Image, method: str, target: Any = "", model_name: str = DEFAULT_MODEL) -> Explanation:
    """One attribution map of ``image`` for class ``target`` ("" = the predicted class)."""
    import torch

    method = validate.choice(method, "method", METHODS)
    v = view(image, model_name)
    with torch.no_grad():
        logits = logits_of(v.model, v, v.x).logits[0]
    t = target_index(v, target, logits)
    probs = logits.softmax(-1)
    predicted = int(logits.argmax())
    m, extras = method_map(v.model, v, method, t, image, refine=True)
    extras["ood"] = ood_message(v, logits)
    return Explanation(method, v.classes[t], t, v.classes[predicted], float(probs[predicted]), m, extras, v.uint8())


def ood_message(v: View, logits: torch.Tensor) -> str | None:
    """Is the image like the training data? (``shared.ood``; None for a model without calibration)."""
    import torch

    from shared import ood

    if ood.stats_for(v.model_name) is None:  # a Hub model: no calibration, so no second forward either
        return None
    with torch.no_grad():
        _, feats = ood.classifier_features(v.model, v.normalise(v.x))
    return ood.classifier_verdict(v.model_name, logits, feats, v.classes).message


# --------------------------------------------------------------------------------------
#                                   Sanity check
# --------------------------------------------------------------------------------------

def reinitialise(module, std: float, generator: torch.Generator) -> None:
    """Re-draw ``module``'s weights from the ViT initialisation: linear and conv weights and the loose
    parameters (tokens, position embeddings) N(0, std²), biases 0, layer norms weight 1 and bias 0."""
    import torch
    from torch import nn

    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.LayerNorm):
                if sub.weight is not None:
                    sub.weight.fill_(1.0)
                if sub.bias is not None:
                    sub.bias.zero_()
                continue
            for name, p in sub.named_parameters(recurse=False):
                if name == "bias":
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p) * std)


_RANDOM_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _randomised_cached(model_name: str, randomisation: str, device: str):
    import torch

    model, _ = load_classifier(model_name)
    copy_ = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(RANDOM_SEED)
    std = float(getattr(model.config, "initializer_range", 0.02))
    reinitialise(copy_.classifier if randomisation == "classifier" else copy_, std, generator)
    return copy_.eval()


def randomised_model(model_name: str, randomisation: str):
    """A seeded copy of the model with the classifier head, or every weight, re-initialised (cached)."""
    randomisation = validate.choice(randomisation, "randomisation", RANDOMISATIONS)
    model, _ = load_classifier(model_name)
    with _RANDOM_LOCK:
        return _randomised_cached(model_name, randomisation, str(next(model.parameters()).device))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks, ties given their mean rank; NaN (undefined)
    when either map is constant, e.g. a Grad-CAM map that ReLU zeroed everywhere."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


@dataclass
class Sanity:
    randomisation: str
    target: str
    trained: dict[str, np.ndarray]  # method -> (rows, cols)
    randomised: dict[str, np.ndarray]
    spearman_abs: dict[str, float]
    spearman_signed: dict[str, float]
    random_prediction: str

    @property
    def stats(self) -> dict:
        return {"randomisation": self.randomisation, "description": RANDOMISATIONS[self.randomisation],
                "seed": RANDOM_SEED, "target": self.target, "randomised_model_predicts": self.random_prediction,
                "spearman_abs": {k: _finite(v) for k, v in self.spearman_abs.items()},
                "spearman_signed": {k: _finite(v) for k, v in self.spearman_signed.items()},
                "undefined": "null: one of the two maps is constant (all zero), so no rank correlation exists"}


def _finite(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def sanity_check(image: Image.Image, randomisation: str, target: Any = "", model_name: str = DEFAULT_MODEL,
                 methods: tuple[str, ...] = tuple(METHODS), progress=None) -> Sanity:
    """Every method's map from the trained and from the randomised model, for the same target class."""
    import torch

    randomisation = validate.choice(randomisation, "randomisation", RANDOMISATIONS)
    v = view(image, model_name)
    with torch.no_grad():
        logits = logits_of(v.model, v, v.x).logits[0]
    t = target_index(v, target, logits)
    random_model = randomised_model(model_name, randomisation)
    with torch.no_grad():
        random_pred = v.classes[int(logits_of(random_model, v, v.x).logits[0].argmax())]
    trained, randomised, s_abs, s_signed = {}, {}, {}, {}
    for i, method in enumerate(methods):
        if progress is not None:
            progress(i / len(methods), desc=f"{method}: trained and randomised")
        trained[method] = method_map(v.model, v, method, t, image)[0]
        randomised[method] = method_map(random_model, v, method, t, image)[0]
        s_abs[method] = spearman(np.abs(trained[method]), np.abs(randomised[method]))
        s_signed[method] = spearman(trained[method], randomised[method])
    return Sanity(randomisation, v.classes[t], trained, randomised, s_abs, s_signed, random_pred)


# --------------------------------------------------------------------------------------
#                                   FGSM
# --------------------------------------------------------------------------------------

@dataclass
class Fgsm:
    original: np.ndarray  # (S, S, 3) uint8: the model's view of the image
    adversarial: np.ndarray  # (S, S, 3) uint8
    epsilon: float
    steps_8bit: int  # the applied step in 8-bit units: floor(255 ε)
    target: str
    label_before: str
    label_after: str
    prob_before: float  # probability of label_before, before and after
    prob_after: float
    grid: list[float]  # ε tried by the flip search
    grid_labels: list[str]  # the prediction at each
    grid_probs: list[float]  # probability of label_before at each

    @property
    def perturbation(self) -> np.ndarray:
        """(S, S, 3) int: adversarial - original, in 8-bit units."""
        return self.adversarial.astype(np.int16) - self.original.astype(np.int16)

    @property
    def linf(self) -> float:
        return float(np.abs(self.perturbation).max()) / 255.0

    @property
    def flip_epsilon(self) -> float | None:
        """The smallest ε on the grid at which the prediction is no longer ``label_before``."""
        return next((e for e, lab in zip(self.grid, self.grid_labels, strict=True) if lab != self.label_before), None)

    @property
    def stats(self) -> dict:
        return {"label_before": self.label_before, "label_after": self.label_after, "linf": self.linf,
                "epsilon": self.epsilon, "epsilon_8bit": self.steps_8bit / 255, "target": self.target,
                "prob_before": round(self.prob_before, 6), "prob_after_of_label_before": round(self.prob_after, 6),
                "flip_epsilon": self.flip_epsilon,
                "flip_grid": f"k/255 for k = 1..{len(self.grid)} (every 8-bit step up to {MAX_EPSILON:g})",
                "resolution": list(self.original.shape[:2])}


def check_epsilon(epsilon: Any) -> float:
    return validate.number(epsilon, "epsilon", 0, MAX_EPSILON)


def quantise_toward(original8: torch.Tensor, sign: torch.Tensor, k: int) -> torch.Tensor:
    """8-bit adversarial pixels: the ε step rounded toward the original pixel, i.e. original + k·sign with
    k = floor(255 ε), clipped to [0, 255]."""
    return (original8 + k * sign).clamp(0, 255)


def fgsm(image: Image.Image, epsilon: Any, target: Any = "", model_name: str = DEFAULT_MODEL) -> Fgsm:
    """One untargeted FGSM step of size ``epsilon`` raising the loss of ``target`` ("" = the predicted class)."""
    import torch
    import torch.nn.functional as F

    epsilon = check_epsilon(epsilon)
    v = view(image, model_name)
    x = v.x.clone().requires_grad_(True)
    logits = logits_of(v.model, v, x).logits
    before = int(logits[0].argmax())
    t = target_index(v, target, logits[0].detach())
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([t], device=x.device)), [x])
    sign = grad.sign()
    original8 = (v.x * 255).round()
    k = math.floor(epsilon * 255 + 1e-9)  # rounding toward the original: never past ε
    steps = [k, *range(1, FLIP_GRID_STEPS + 1)]
    labels, probs = [], []
    with torch.no_grad():
        for chunk in [steps[i:i + 16] for i in range(0, len(steps), 16)]:
            batch = torch.cat([quantise_toward(original8, sign, s) for s in chunk]) / 255
            p = logits_of(v.model, v, batch).logits.softmax(-1)
            labels += [v.classes[int(i)] for i in p.argmax(-1)]
            probs += p[:, before].tolist()
    adversarial = v.uint8(quantise_toward(original8, sign, k) / 255)
    return Fgsm(v.uint8(), adversarial, epsilon, k, v.classes[t], v.classes[before], labels[0],
                float(logits.detach().softmax(-1)[0, before]), probs[0], [s / 255 for s in steps[1:]], labels[1:], probs[1:])
