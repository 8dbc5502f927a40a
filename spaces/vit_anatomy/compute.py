"""ViT anatomy: the maths, as typed functions (no UI library; ``app.py`` imports this inside its handlers).

- ``cost``: parameters, multiply-accumulates, tokens and activation memory of
  ``transformers.ViTForImageClassification`` built from a configuration on the ``meta`` device (no
  weights are allocated, so ViT-g costs milliseconds), counted by ``shared/vit_cost.py`` (the patch
  explorer counts with the same code). MACs are FLOPs / 2 as
  ``torch.utils.flop_counter.FlopCounterMode`` counts them (matmuls and convolutions only: no
  softmax, GELU, LayerNorm or additions). ``hand_formula`` gives the same numbers in closed form
  (Dosovitskiy et al., 2021, eqs. 1-4; Vaswani et al., 2017 for the attention block).
- ``step_through``: the embedded ViT's forward pass stage by stage, with a logit lens
  (nostalgebraist, 2020: the final LayerNorm and head applied to the [CLS] token after every block).
- ``grad_norms``: gradient norm per layer at initialisation, pre-LN against post-LN (Xiong et al., 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from shared import ood
from shared.models import load
from shared.ood import OODVerdict
from shared.vit_cost import COMPONENTS, activation_bytes, count, hand_formula, meta_model, vit_config  # noqa: F401

from .options import (
    BATCHES,
    GRAD_BATCH,
    PRESETS,
    TINY_MODEL,
    check_config,
    check_depth,
    check_preset,
    check_seed,
    tiny_config,
)

# --------------------------------------------------------------------------------------
#                                   Cost calculator
# --------------------------------------------------------------------------------------

def preset(name: str) -> dict:
    """The seven calculator inputs of a preset at 224 px and 1000 classes."""
    name = check_preset(name)
    if name not in PRESETS:
        raise ValueError("'custom' has no preset values: type your own")
    p = PRESETS[name]
    return {"hidden_size": p["hidden_size"], "num_layers": p["num_layers"], "num_heads": p["num_heads"],
            "mlp_dim": p["mlp_dim"], "image_size": 224, "patch_size": p["patch_size"], "num_classes": 1000}


def cost(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, num_classes) -> dict:
    """Stats of one configuration, counted on the instantiated (meta) model; the hand formula beside it."""
    c = check_config(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, num_classes)
    model = meta_model(c)
    counted = count(model, c["image_size"])
    tokens = (c["image_size"] // c["patch_size"]) ** 2 + 1
    activation = {b: activation_bytes(model, c["image_size"], b) for b in BATCHES}
    hand = hand_formula(c)
    return {
        "config": c,
        "params": counted["params"],
        "macs": counted["macs"],
        "flops": counted["flops"],
        "tokens": tokens,
        "patches": tokens - 1,
        "head_dim": c["hidden_size"] // c["num_heads"],
        "activation_mb": activation[1] / 2**20,
        "activation_mb_batch64": activation[64] / 2**20,
        "weights_mb_fp32": counted["params"] * 4 / 2**20,
        "logits_shape": counted["logits_shape"],
        "breakdown": counted["breakdown"],
        "macs_breakdown": counted["macs_breakdown"],
        "hand_params": hand["total_params"],
        "hand_macs": hand["total_macs"],
    }


def cost_rows(stats: dict) -> list[list]:
    """One row per component: counted parameters and MACs beside the formula and its value."""
    hand = hand_formula(stats["config"])
    rows = []
    for comp in COMPONENTS:
        p_text, m_text = hand["text"][comp]
        rows.append([comp, stats["breakdown"][comp], p_text, hand["params"][comp],
                     stats["macs_breakdown"][comp], m_text, hand["macs"][comp]])
    rows.append(["total", stats["params"], "", hand["total_params"], stats["macs"], "", hand["total_macs"]])
    return rows


def preset_rows(paper: dict[str, tuple[float, str]]) -> list[list]:
    """Every preset at 224 px, 1000 classes: counted parameters and GMACs beside the paper's parameters."""
    rows = []
    for name in PRESETS:
        s = cost(**preset(name))
        printed = paper.get(name)
        rows.append([name, PRESETS[name]["source"], f"{s['params']:,}", round(s["params"] / 1e6, 1),
                     printed[0] if printed else None, printed[1] if printed else "not verified here",
                     round(s["macs"] / 1e9, 2), s["tokens"], round(s["activation_mb"], 1)])
    return rows


# --------------------------------------------------------------------------------------
#                                   The embedded model's forward pass, stage by stage
# --------------------------------------------------------------------------------------

@dataclass
class Stage:
    name: str
    layer: int | None  # block index, None outside the blocks
    shape: tuple[int, ...]  # without the batch dimension
    norm: float  # Frobenius norm of the whole tensor
    cls_norm: float | None  # L2 norm of the [CLS] row, where there is one


@dataclass
class Lens:
    where: str
    probs: np.ndarray  # (classes,) softmax of head(final LN([CLS]))


@dataclass
class StepThrough:
    stages: list[Stage]
    lens: list[Lens]
    classes: list[str]
    logits: np.ndarray  # the stepped forward's logits (equal to the model's own)
    patches: np.ndarray  # (N, P*P*C) flattened patches, pixel values in [-1, 1]
    ood: OODVerdict | None = None  # is the image like the training data? (shared.ood)


def pixel_values(image: Image.Image, processor) -> torch.Tensor:
    if not isinstance(image, Image.Image):
        raise ValueError("no image given: upload an image or pick a sample.")
    return processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"]  # (1, 3, S, S)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(1, C, S, S) -> (N, P*P*C): each patch flattened row-major, channels last (Dosovitskiy et al., eq. 1)."""
    _, ch, s, _ = x.shape
    g = s // p
    return x[0].reshape(ch, g, p, g, p).permute(1, 3, 2, 4, 0).reshape(g * g, p * p * ch)


def block(layer, x: torch.Tensor, post_norm: bool = False, record=None) -> torch.Tensor:
    """One encoder block of a transformers ``ViTLayer``'s weights.

    pre-LN (ViT, Dosovitskiy et al. eqs. 2-3): x' = x + MSA(LN(x)); y = x' + MLP(LN(x'))
    post-LN (Vaswani et al., 2017; Xiong et al., 2020): x' = LN(x + MSA(x)); y = LN(x' + MLP(x'))
    """
    rec = record or (lambda name, t: None)
    if post_norm:
        a = layer.attention(x)[0]
        x = layer.layernorm_before(x + a)
        h = layer.mlp(x)
        return layer.layernorm_after(x + h)
    h = layer.layernorm_before(x)
    rec("LN₁", h)
    a = layer.attention(h)[0]
    rec("attention", a)
    x = x + a
    rec("+ residual", x)
    h = layer.layernorm_after(x)
    rec("LN₂", h)
    h = layer.mlp(h)
    rec("MLP", h)
    x = x + h
    rec("+ residual", x)
    return x


@torch.no_grad()
def step_through(image: Image.Image) -> StepThrough:
    """The embedded ViT's forward, every stage recorded; the logit lens after the embedding and each block."""
    model, processor = load(TINY_MODEL, device="cpu", attn="eager")
    model.eval()
    vit = model.vit
    x = pixel_values(image, processor)
    p = model.config.patch_size
    classes = [model.config.id2label[i] for i in range(model.config.num_labels)]
    stages: list[Stage] = []
    lens: list[Lens] = []
    current = {"layer": None}

    def rec(name: str, t: torch.Tensor, cls: bool = True) -> None:
        t0 = t[0] if t.dim() > 2 else t
        stages.append(Stage(name, current["layer"], tuple(t0.shape), float(t0.norm()),
                            float(t0[0].norm()) if cls and t0.dim() == 2 else None))

    def lens_at(where: str, h: torch.Tensor) -> None:
        logits = model.classifier(vit.layernorm(h[:, 0]))
        lens.append(Lens(where, torch.softmax(logits, -1)[0].numpy()))

    rec("image (normalised pixels)", x, cls=False)
    patches = patchify(x, p)
    rec(f"patches ({p}×{p}×{x.shape[1]} flattened)", patches, cls=False)
    tokens = vit.embeddings.patch_embeddings(x)  # (1, N, D)
    rec("patch embeddings (linear projection E)", tokens, cls=False)
    h = torch.cat([vit.embeddings.cls_token.expand(1, -1, -1), tokens], dim=1)
    rec("+ [CLS] token", h)
    h = h + vit.embeddings.position_embeddings
    rec("+ position embeddings", h)
    lens_at("embedding", h)
    for i, layer in enumerate(vit.layers):
        current["layer"] = i + 1
        h = block(layer, h, record=rec)
        lens_at(f"block {i + 1}", h)
    current["layer"] = None
    h = vit.layernorm(h)
    rec("final LayerNorm", h)
    logits = model.classifier(h[:, 0])
    rec("head on [CLS] (logits)", logits[0], cls=False)
    verdict = ood.classifier_verdict(TINY_MODEL, logits[0], h[0, 0], classes)  # h[0, 0]: what the head read
    return StepThrough(stages, lens, classes, logits[0].numpy(), patches.numpy(), verdict)


# --------------------------------------------------------------------------------------
#                                   Pre-LN against post-LN at initialisation
# --------------------------------------------------------------------------------------

def tiny_architecture(depth: int, seed: int):
    """A freshly initialised ``ViTForImageClassification`` with the embedded model's config (its width,
    heads, MLP, patch, image and classes; the depth yours), seeded."""
    from transformers import ViTConfig, ViTForImageClassification

    cfg = ViTConfig(**{k: v for k, v in tiny_config().items() if k not in ("architectures", "transformers_version")})
    cfg.num_hidden_layers = depth
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    return ViTForImageClassification(cfg)


def forward_logits(model, x: torch.Tensor, post_norm: bool) -> torch.Tensor:
    """The classifier's logits with pre-LN blocks (transformers' own ViT, with its final LayerNorm) or
    post-LN blocks (no final LayerNorm: each block already ends with one, as in Xiong et al.'s Post-LN)."""
    vit = model.vit
    h = vit.embeddings(x)
    for layer in vit.layers:
        h = block(layer, h, post_norm=post_norm)
    if not post_norm:
        h = vit.layernorm(h)
    return model.classifier(h[:, 0])


def shapes_batch(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` training-distribution shapes (images in [-1, 1], labels)."""
    from shared.data.shapes import ShapesDataset
    from shared.images import to_tensor

    images, labels, _ = ShapesDataset("train", length=n, size=size, offset=seed % 100_000).arrays()
    return to_tensor(images), torch.from_numpy(labels)


def grad_norms(depth, seed) -> dict:
    """Gradient norm of each layer's parameters (all of them, as one vector) after one cross-entropy
    backward at initialisation, for pre-LN and post-LN blocks sharing the same initial weights."""
    depth, seed = check_depth(depth), check_seed(seed)
    cfg = tiny_config()
    x, y = shapes_batch(GRAD_BATCH, cfg["image_size"], seed)
    out = {"layers": list(range(1, depth + 1)), "depth": depth, "seed": seed, "batch": GRAD_BATCH}
    for kind, post in (("pre_norm", False), ("post_norm", True)):
        model = tiny_architecture(depth, seed)
        model.train()
        loss = torch.nn.functional.cross_entropy(forward_logits(model, x, post), y)
        loss.backward()
        norms = []
        for layer in model.vit.layers:
            sq = sum(float(p.grad.pow(2).sum()) for p in layer.parameters() if p.grad is not None)
            norms.append(math.sqrt(sq))
        out[kind] = norms
        out[f"{kind}_loss"] = float(loss.detach())
    return out

