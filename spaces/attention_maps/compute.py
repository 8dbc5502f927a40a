"""Visual attention: the maths of the page, as typed functions over a real model's attention.

Attention capture, rollout, mean attention distance and [CLS] entropy come from ``shared.attention``
(one module for this space and the attribution space, each definition checked there by an independent
test); this module adds what only this page shows:

- the [CLS]->patch map of one layer and head, and the map of any patch query (Vaswani et al., 2017: row
  ``q`` of softmax(Q K^T / sqrt(d_k)));
- the effect of the 1/sqrt(d_k) scale (Vaswani et al., 2017, section 3.2.1) on the model's real logits:
  the query and key projections of every layer are read with forward hooks, and the softmax entropy of
  the [CLS] query is computed with and without the scale;
- the cost of attention (sequence length, attention-matrix memory, QK^T and A.V multiply-accumulates),
  which a test checks against ``torch.utils.flop_counter.FlopCounterMode`` on the instantiated model.

No UI library here; bad input raises ``ValueError`` through ``shared.validate``. torch is imported here, and
``app.py`` imports this module inside its handlers only.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from shared import attention as shared_attention
from shared import ood, validate
from shared.cache import BoundedCache
from shared.models import load

from .options import ALL_HEADS, BYTES_FP32, DEFAULT_MODEL, FUSIONS, MODELS, OVERLAY_PX

# --------------------------------------------------------------------------------------
#                                   Capture (cached per image)
# --------------------------------------------------------------------------------------


@dataclass
class Captured:
    """One image through one model: its attention, what the model saw, and its prediction."""

    model_name: str
    att: shared_attention.Attention
    view: Image.Image  # the model's input (after its processor), back in RGB pixels
    label: str | None  # predicted class (None for a backbone without a classifier)
    confidence: float | None
    model: object
    processor: object
    ood: ood.OODVerdict | None = None  # is the image like the training data? (calibrated models only)

    @property
    def grid(self) -> tuple[int, int]:
        return self.att.grid


_CAPTURES: BoundedCache[Captured] = BoundedCache(8)  # ViT-B/16 keeps about 21 MiB of attention per image


def check_model(name: str) -> str:
    return validate.choice(name, "model", MODELS)


def check_image(image) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise ValueError("no image given: upload an image or pick a sample.")
    return image.convert("RGB")


def load_model(name: str):
    """(model, processor) with eager attention (SDPA returns no maps); a Hub model offline raises
    ``ModelUnavailableError`` (a ValueError) naming the embedded model."""
    loaded = load(check_model(name), attn="eager")
    return loaded.model, loaded.processor


def model_view(pixel_values: torch.Tensor, processor) -> Image.Image:
    """The processor's output turned back into an RGB image: exactly the pixels the model saw."""
    mean = torch.tensor(getattr(processor, "image_mean", [0.5, 0.5, 0.5]), dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(getattr(processor, "image_std", [0.5, 0.5, 0.5]), dtype=torch.float32).view(3, 1, 1)
    x = pixel_values[0].detach().float().cpu() * std + mean  # (3, S, S) in [0, 1]
    return Image.fromarray((x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def capture(image, model_name: str = DEFAULT_MODEL) -> Captured:
    """Run ``model_name`` on ``image`` once (cached by model and pixels) and keep every layer's attention."""
    image = check_image(image)
    model_name = check_model(model_name)
    key = (model_name, image.size, hashlib.sha1(image.tobytes()).hexdigest())

    def make() -> Captured:
        model, processor = load_model(model_name)
        att = shared_attention.capture(model, processor, image)
        label = shared_attention.label_of(att, model)
        confidence = float(torch.softmax(att.logits.float(), -1).max()) if att.logits is not None else None
        return Captured(model_name, att, model_view(att.pixel_values, processor), label, confidence, model, processor,
                        ood_verdict(model_name, model, att))

    return _CAPTURES.get_or_create(key, make)[0]


def ood_verdict(model_name: str, model, att: shared_attention.Attention) -> ood.OODVerdict | None:
    """The calibrated out-of-distribution verdict (``shared.ood``) for a classifier shipped with one."""
    if att.logits is None or ood.stats_for(model_name) is None:
        return None
    with torch.no_grad():
        _, feats = ood.classifier_features(model, att.pixel_values)
    classes = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return ood.classifier_verdict(model_name, att.logits, feats, classes)


# --------------------------------------------------------------------------------------
#                                   Maps
# --------------------------------------------------------------------------------------


def check_layer_head(att: shared_attention.Attention, layer, head) -> tuple[int, int | None]:
    """(layer, head); head None means the mean of the heads."""
    layer = validate.integer(layer, "layer", 0, att.layers - 1)
    if head == ALL_HEADS or head is None:
        return layer, None
    return layer, validate.integer(head, "head", 0, att.heads - 1)


def _layer_maps(att: shared_attention.Attention, layer: int, head: int | None) -> torch.Tensor:
    """(N, N) attention of one head, or the heads' mean."""
    maps = att.maps[layer].detach().float().cpu()  # (H, N, N)
    return maps.mean(0) if head is None else maps[head]


def cls_map(att: shared_attention.Attention, layer, head) -> np.ndarray:
    """(rows, cols): how much the [CLS] query attends to each patch key (the raw softmax weights; the
    rest of the row goes to the special tokens)."""
    layer, head = check_layer_head(att, layer, head)
    return _layer_maps(att, layer, head)[0, att.prefix:].reshape(att.grid).numpy()


def all_heads(att: shared_attention.Attention, layer) -> np.ndarray:
    """(H, rows, cols): the [CLS]->patch map of every head of one layer."""
    layer = validate.integer(layer, "layer", 0, att.layers - 1)
    maps = att.maps[layer].detach().float().cpu()[:, 0, att.prefix:]  # (H, P)
    return maps.reshape(att.heads, *att.grid).numpy()


def query_map(att: shared_attention.Attention, layer, head, row, col) -> np.ndarray:
    """(rows, cols): where the patch query at (row, col) attends among the patch keys (raw weights)."""
    layer, head = check_layer_head(att, layer, head)
    rows, cols = att.grid
    row = validate.integer(row, "query row", 0, rows - 1)
    col = validate.integer(col, "query column", 0, cols - 1)
    q = att.prefix + row * cols + col
    return _layer_maps(att, layer, head)[q, att.prefix:].reshape(att.grid).numpy()


def patch_at(x: float, y: float, size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """(row, col) of the patch under pixel (x, y) of an image of ``size`` = (width, height) drawn over the grid."""
    width, height = size
    rows, cols = grid
    col = min(max(int(x * cols // width), 0), cols - 1)
    row = min(max(int(y * rows // height), 0), rows - 1)
    return row, col


def overlay(view: Image.Image, heat: np.ndarray, size: int = OVERLAY_PX, highlight: tuple[int, int] | None = None,
            alpha: float = 0.6) -> Image.Image:
    """``heat`` (rows, cols), scaled to its maximum, in the inferno colour map over the enlarged model
    input; ``highlight`` outlines one patch (the query)."""
    from matplotlib import colormaps

    rows, cols = heat.shape
    base = np.asarray(view.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float32)
    top = float(heat.max())
    scaled = heat / top if top > 0 else np.zeros_like(heat)
    colours = colormaps["inferno"](scaled)[..., :3] * 255  # (rows, cols, 3)
    cell = np.asarray(Image.fromarray(colours.astype(np.uint8)).resize((size, size), Image.NEAREST), np.float32)
    out = Image.fromarray(((1 - alpha) * base + alpha * cell).round().astype(np.uint8))
    if highlight is not None:
        r, c = highlight
        draw = ImageDraw.Draw(out)
        h, w = size / rows, size / cols
        draw.rectangle([c * w, r * h, (c + 1) * w - 1, (r + 1) * h - 1], outline=(0, 255, 255), width=3)
    return out


# --------------------------------------------------------------------------------------
#                                   The public rollout endpoint
# --------------------------------------------------------------------------------------


def check_fusion(fusion) -> str:
    return validate.choice(fusion, "head fusion", FUSIONS)


def check_discard(ratio) -> float:
    value = validate.number(ratio, "discard ratio", 0, 1)
    if value >= 1:
        raise ValueError(f"discard ratio must be a finite number from 0 to below 1 (1 would discard every "
                         f"entry), got {value:g}")
    return value


def _nested(a: np.ndarray, digits: int | None = None) -> list:
    a = np.asarray(a, dtype=np.float64)
    return (np.round(a, digits) if digits is not None else a).tolist()


@dataclass
class RolloutResult:
    overlay: Image.Image
    stats: dict
    rollout: np.ndarray  # (rows, cols), sums to 1


def rollout(image, head_fusion, discard_ratio, model_name: str = DEFAULT_MODEL) -> RolloutResult:
    """Attention rollout (Abnar & Zuidema, 2020) over ``image``, and the per-head statistics the issue lists:
    ``grid``, ``rollout`` (rows x cols, sums to 1), ``layers``, ``heads``, ``label``, ``mean_distance_px`` and
    ``entropy`` (layers x heads)."""
    fusion = check_fusion(head_fusion)
    ratio = check_discard(discard_ratio)
    cap = capture(image, model_name)
    att = cap.att
    ro = shared_attention.rollout(att, fusion, ratio)
    stats = {
        "model": cap.model_name,
        "grid": list(att.grid),
        "rollout": _nested(ro),
        "layers": att.layers,
        "heads": att.heads,
        "label": cap.label,
        "confidence": cap.confidence,
        "head_fusion": fusion,
        "discard_ratio": ratio,
        "mean_distance_px": _nested(shared_attention.mean_distance(att)),
        "entropy": _nested(shared_attention.cls_entropy(att)),
        "patch_size_px": att.patch_size,
        "image_size_px": att.image_size,
        "special_tokens": att.prefix,
    }
    return RolloutResult(overlay(cap.view, ro), stats, ro)


# --------------------------------------------------------------------------------------
#                                   The 1/sqrt(d_k) scale on real logits
# --------------------------------------------------------------------------------------


_PROJECTIONS = (("q_proj", "k_proj"), ("query", "key"))  # transformers 5 names them q_proj/k_proj, 4 query/key


def _query_key_linears(model) -> list[tuple[torch.nn.Linear, torch.nn.Linear]]:
    """The (query, key) projections of every self-attention of a ViT-family model, first layer first."""
    found = []
    for _, m in model.named_modules():
        for q_name, k_name in _PROJECTIONS:
            q, k = getattr(m, q_name, None), getattr(m, k_name, None)
            if isinstance(q, torch.nn.Linear) and isinstance(k, torch.nn.Linear):
                found.append((q, k))
                break
    if not found:
        raise ValueError(f"{type(model).__name__} has no self-attention with query and key projections")
    return found


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of softmax over the last axis."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


@dataclass
class ScaleEffect:
    d_k: int
    entropy_scaled: np.ndarray  # (L, H) entropy of the [CLS] query's softmax(q k^T / sqrt(d_k))
    entropy_unscaled: np.ndarray  # (L, H) the same without the scale: softmax(q k^T)
    logit_std_scaled: np.ndarray  # (L,) standard deviation of the [CLS] row's logits, scaled
    logit_std_unscaled: np.ndarray  # (L,)
    max_weight_scaled: np.ndarray  # (L, H) the largest attention weight of the [CLS] query
    max_weight_unscaled: np.ndarray  # (L, H)
    uniform_entropy: float  # ln N, the entropy of attending to all N tokens equally
    max_abs_error: float  # |softmax(q k^T / sqrt(d_k)) - the model's own attention|, all rows, all layers


def scale_effect(image, model_name: str = DEFAULT_MODEL) -> ScaleEffect:
    """The real query and key projections of every layer (forward hooks on the ``query`` and ``key``
    linears), the [CLS] row of q k^T per head, and its softmax entropy with and without 1/sqrt(d_k)."""
    cap = capture(image, model_name)
    model = cap.model
    modules = _query_key_linears(model)
    seen: dict[tuple[int, str], torch.Tensor] = {}
    hooks = []
    for i, pair in enumerate(modules):
        for part, linear in zip(("query", "key"), pair, strict=True):
            hooks.append(linear.register_forward_hook(
                lambda _mod, _inp, out, i=i, part=part: seen.__setitem__((i, part), out.detach())))
    try:
        with torch.no_grad():
            model(pixel_values=cap.att.pixel_values, output_attentions=False)
    finally:
        for h in hooks:
            h.remove()
    heads = cap.att.heads
    ent_s, ent_u, std_s, std_u, max_s, max_u = [], [], [], [], [], []
    err = 0.0
    d_k = 0
    for i in range(len(modules)):
        q, k = seen[(i, "query")][0].float().cpu(), seen[(i, "key")][0].float().cpu()  # (N, D)
        n, width = q.shape
        d_k = width // heads
        qh = q.view(n, heads, d_k).transpose(0, 1)  # (H, N, d_k)
        kh = k.view(n, heads, d_k).transpose(0, 1)
        logits = qh @ kh.transpose(1, 2)  # (H, N, N) unscaled
        scaled = logits / math.sqrt(d_k)
        err = max(err, float((torch.softmax(scaled, -1) - cap.att.maps[i].detach().float().cpu()).abs().max()))
        ent_s.append(_entropy(scaled[:, 0]).numpy())
        ent_u.append(_entropy(logits[:, 0]).numpy())
        std_s.append(float(scaled[:, 0].std()))
        std_u.append(float(logits[:, 0].std()))
        max_s.append(torch.softmax(scaled[:, 0], -1).amax(-1).numpy())
        max_u.append(torch.softmax(logits[:, 0], -1).amax(-1).numpy())
    n_tokens = cap.att.maps.shape[-1]
    return ScaleEffect(d_k, np.array(ent_s), np.array(ent_u), np.array(std_s), np.array(std_u),
                       np.array(max_s), np.array(max_u), math.log(n_tokens), err)


# --------------------------------------------------------------------------------------
#                                   Cost
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionCost:
    """What self-attention costs one image (batch 1), all layers; a multiply-accumulate (MAC) is one
    multiply and one add (a FLOP counter reports 2 FLOPs per MAC for a matmul)."""

    name: str
    image_size: int
    patch_size: int
    width: int  # D
    layers: int  # L
    heads: int  # H
    special_tokens: int
    bytes_per_element: int = BYTES_FP32

    @property
    def tokens(self) -> int:
        """N = (S / P)^2 patches + the special tokens."""
        return (self.image_size // self.patch_size) ** 2 + self.special_tokens

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def qk_macs(self) -> int:
        """Q K^T: per layer and head an (N x d_k) by (d_k x N) product, N^2 d_k MACs; L H N^2 d_k = L N^2 D."""
        return self.layers * self.heads * self.tokens ** 2 * self.head_dim

    @property
    def av_macs(self) -> int:
        """A V: per layer and head (N x N) by (N x d_k), the same N^2 d_k MACs."""
        return self.layers * self.heads * self.tokens ** 2 * self.head_dim

    @property
    def projection_macs(self) -> int:
        """For comparison: the Q, K, V and output projections, 4 N D^2 per layer."""
        return self.layers * 4 * self.tokens * self.width ** 2

    @property
    def matrix_bytes_per_layer(self) -> int:
        """One layer's attention probabilities, H N^2 elements."""
        return self.heads * self.tokens ** 2 * self.bytes_per_element

    @property
    def matrix_bytes(self) -> int:
        """Every layer's attention probabilities, kept (as ``output_attentions=True`` does)."""
        return self.layers * self.matrix_bytes_per_layer

    def row(self) -> list:
        return [self.name, f"{self.image_size} px / {self.patch_size} px", self.tokens, self.layers, self.heads,
                self.head_dim, human_bytes(self.matrix_bytes_per_layer), human_bytes(self.matrix_bytes),
                self.qk_macs, self.av_macs, self.projection_macs,
                round((self.qk_macs + self.av_macs) / self.projection_macs, 3)]


COST_HEADERS = ["model", "input / patch", "tokens N", "layers L", "heads H", "d_k", "attention matrix, 1 layer",
                "all layers", "QK^T MACs", "A.V MACs", "Q,K,V,out projection MACs", "attention / projections"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"  # pragma: no cover


def cost_of(config, name: str, special_tokens: int = 1, image_size: int | None = None) -> AttentionCost:
    """The attention cost of a ViT-family ``config`` (``image_size``, ``patch_size``, ``hidden_size``,
    ``num_hidden_layers``, ``num_attention_heads``), optionally at another input size."""
    return AttentionCost(name, int(image_size or config.image_size), int(config.patch_size), int(config.hidden_size),
                         int(config.num_hidden_layers), int(config.num_attention_heads), int(special_tokens))


def vit_b16_config(image_size: int = 224):
    """ViT-B/16 (Dosovitskiy et al., 2021, Table 1: D 768, 12 layers, 12 heads, patch 16): transformers'
    ``ViTConfig`` defaults, which need no download."""
    from transformers import ViTConfig

    return ViTConfig(image_size=image_size)


def cost_table(cap: Captured) -> list[list]:
    """The model that ran, then ViT-B/16 at 224 and 384 px for scale."""
    rows = [cost_of(cap.model.config, cap.model_name, cap.att.prefix)]
    for size in (224, 384):
        rows.append(cost_of(vit_b16_config(size), f"ViT-B/16 at {size} px", 1))
    return [r.row() for r in rows]
