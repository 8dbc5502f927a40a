"""What a plain ViT classifier costs, counted on an instantiated model: shared by ``vit_anatomy`` and
``patch_explorer`` so both pages give the same numbers from the same code.

- ``meta_model``: ``transformers.ViTForImageClassification`` built on the ``meta`` device (shapes only,
  no memory for weights, so ViT-g costs milliseconds).
- ``count``: parameters per component from ``named_parameters``, and multiply-accumulates per component
  from one forward under ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2; matmuls and
  convolutions only: no softmax, GELU, LayerNorm or additions).
- ``activation_bytes``: the tensors a forward saves for backward (``torch.autograd.graph.saved_tensors_hooks``),
  each storage once, weights excluded; ``peak_inference_bytes``: the most activation memory alive at once
  during a ``no_grad`` forward (a ``TorchDispatchMode`` that follows every tensor an operator returns).
- ``hand_formula``: the same parameters and MACs in closed form (Dosovitskiy et al., 2021, eqs. 1-4;
  Vaswani et al., 2017 for the attention block).

Torch is imported inside the functions: the torch-free ``options.py`` modules import the caps and checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared import validate

if TYPE_CHECKING:
    import torch

CHANNELS = 3  # RGB input
BYTES_FP32 = 4
COMPONENTS: tuple[str, ...] = ("patch embedding", "position + [CLS]", "attention", "MLP", "norms", "head")

CAPS: dict[str, tuple[int, int]] = {
    "hidden_size": (1, 8192),
    "num_layers": (1, 128),
    "num_heads": (1, 128),
    "mlp_dim": (1, 32768),
    "image_size": (1, 1024),
    "patch_size": (1, 1024),
    "num_classes": (1, 100_000),
}
MAX_TOKENS = 4097  # patches + [CLS]: 1024 px at patch 16 (64 x 64 patches + 1)
MAX_PARAMS = 20_000_000_000  # hand-formula estimate checked before instantiation


def check_config(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, num_classes) -> dict:
    """The seven numbers as clean integers, or ``ValueError`` naming the input, the cap and what came."""
    raw = {"hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads, "mlp_dim": mlp_dim,
           "image_size": image_size, "patch_size": patch_size, "num_classes": num_classes}
    c = {k: validate.integer(v, k.replace("_", " "), *CAPS[k]) for k, v in raw.items()}
    if c["hidden_size"] % c["num_heads"]:
        raise ValueError(f"hidden size {c['hidden_size']} is not divisible by the number of heads "
                         f"{c['num_heads']}: each head gets hidden size / heads dimensions")
    if c["patch_size"] > c["image_size"] or c["image_size"] % c["patch_size"]:
        raise ValueError(f"image size {c['image_size']} is not divisible by patch size {c['patch_size']}: "
                         "the patches must tile the image exactly")
    tokens = (c["image_size"] // c["patch_size"]) ** 2 + 1
    if tokens > MAX_TOKENS:
        raise ValueError(f"{tokens:,} tokens (patches + [CLS]) is more than the cap of {MAX_TOKENS:,}: "
                         "use a larger patch or a smaller image")
    d, m, p, k, n_layers = c["hidden_size"], c["mlp_dim"], c["patch_size"], c["num_classes"], c["num_layers"]
    estimate = CHANNELS * p * p * d + tokens * d + n_layers * (4 * d * d + 2 * d * m) + d * k
    if estimate > MAX_PARAMS:
        raise ValueError(f"about {estimate / 1e9:.1f} B parameters is more than the cap of "
                         f"{MAX_PARAMS / 1e9:.0f} B: choose a smaller configuration")
    return c


def vit_config(c: dict):
    from transformers import ViTConfig

    cfg = ViTConfig(hidden_size=c["hidden_size"], num_hidden_layers=c["num_layers"],
                    num_attention_heads=c["num_heads"], intermediate_size=c["mlp_dim"],
                    image_size=c["image_size"], patch_size=c["patch_size"], num_channels=CHANNELS,
                    num_labels=c["num_classes"])
    cfg._attn_implementation = "eager"  # explicit softmax(QK^T)V: two bmm the counter sees
    return cfg


def meta_model(c: dict):
    """``ViTForImageClassification`` on the meta device: shapes only, no memory for weights."""
    import torch
    from transformers import ViTForImageClassification

    with torch.device("meta"):
        return ViTForImageClassification(vit_config(c))


def component(param_name: str) -> str:
    """The component a parameter of ``ViTForImageClassification`` belongs to."""
    if "patch_embeddings" in param_name:
        return "patch embedding"
    if "cls_token" in param_name or "position_embeddings" in param_name:
        return "position + [CLS]"
    if ".attention." in param_name:
        return "attention"
    if ".mlp." in param_name:
        return "MLP"
    if "layernorm" in param_name:
        return "norms"
    if param_name.startswith("classifier"):
        return "head"
    raise ValueError(f"unexpected parameter {param_name}")  # a transformers change the tests would catch


def macs_by_component(counts: dict[str, dict]) -> dict[str, int]:
    """FlopCounterMode's per-module FLOPs -> MACs per component (each leaf module once)."""
    out = dict.fromkeys(COMPONENTS, 0)
    for module, ops in counts.items():
        flops = sum(ops.values())
        if module.endswith(".patch_embeddings.projection"):
            out["patch embedding"] += flops // 2
        elif module.endswith(".attention") and ".layers." in module:
            out["attention"] += flops // 2  # q, k, v, o projections and the two bmm
        elif module.endswith(".mlp") and ".layers." in module:
            out["MLP"] += flops // 2
        elif module.endswith(".classifier"):
            out["head"] += flops // 2
    return out


def count(model, image_size: int) -> dict:
    """Parameters and MACs per component of a (meta) ViT classifier, from one counted batch-1 forward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    breakdown = dict.fromkeys(COMPONENTS, 0)
    for name, param in model.named_parameters():
        breakdown[component(name)] += param.numel()
    x = torch.empty(1, CHANNELS, image_size, image_size, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        logits = model(pixel_values=x).logits
    flops = counter.get_total_flops()
    return {"params": int(sum(breakdown.values())), "breakdown": {k: int(v) for k, v in breakdown.items()},
            "flops": int(flops), "macs": int(flops // 2), "logits_shape": list(logits.shape),
            "macs_breakdown": macs_by_component(counter.get_flop_counts())}


def activation_bytes(model, image_size: int, batch: int, bytes_per_value: int = BYTES_FP32) -> int:
    """Bytes of the tensors the forward saves for backward, each storage once, weights excluded, every
    value at ``bytes_per_value``: what training must hold between the forward and the backward pass
    (the input image included)."""
    import torch

    params = {id(p) for p in model.parameters()}
    seen: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        root = t
        while root._base is not None:
            root = root._base
        if id(root) not in params:
            seen.setdefault(id(root), root)
        return t

    x = torch.empty(batch, CHANNELS, image_size, image_size, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(pixel_values=x)
    return sum(t.numel() * bytes_per_value for t in seen.values())


def peak_inference_bytes(model, image_size: int, batch: int, bytes_per_value: int = BYTES_FP32) -> int:
    """The most activation memory alive at once during a ``no_grad`` forward at ``batch`` (input image
    included, weights excluded), every value at ``bytes_per_value``.

    A ``TorchDispatchMode`` sees every operator's outputs; a new storage adds its size, and a
    ``weakref.finalize`` takes it off when the last tensor on it is freed (views count once). The peak is the
    largest running total. On the meta device no memory is allocated, so this is a count, not a reading.
    """
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    weights = {p.untyped_storage()._cdata for p in model.parameters()}
    state = {"live": 0, "peak": 0}
    owners: dict[int, list[int]] = {}  # storage -> [tensors alive on it, its bytes]

    def release(key: int) -> None:
        entry = owners[key]
        entry[0] -= 1
        if entry[0] == 0:
            state["live"] -= entry[1]
            del owners[key]

    def track(t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in weights:
            return
        if key in owners:
            owners[key][0] += 1  # a view, or a reshape sharing the storage: counted once
        else:
            size = storage.nbytes() // t.element_size() * bytes_per_value
            owners[key] = [1, size]
            state["live"] += size
            state["peak"] = max(state["peak"], state["live"])
        weakref.finalize(t, release, key)

    class Tracker(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in (out if isinstance(out, (tuple, list)) else (out,)):
                if isinstance(t, torch.Tensor):
                    track(t)
            return out

    x = torch.empty(batch, CHANNELS, image_size, image_size, device="meta")
    track(x)
    with torch.no_grad(), Tracker():
        logits = model(pixel_values=x).logits
    del logits, x
    return state["peak"]


def hand_formula(c: dict) -> dict:
    """The same counts in closed form. N = (image/patch)^2 patches, T = N + 1 tokens, D width, M MLP
    width, L layers, K classes, C = 3 channels, P patch side.

    params: patch C·P²·D + D; position + [CLS] T·D + D; attention L·4(D² + D) (Q, K, V, O with biases);
    MLP L·(2·D·M + M + D); norms (2L + 1)·2D; head D·K + K.
    MACs: patch N·C·P²·D; attention L·(4·T·D² + 2·T²·D) (projections, QKᵀ and A·V); MLP L·2·T·D·M;
    head D·K (the head reads the [CLS] token only); norms 0 (not a matmul).
    """
    d, m, n_layers, k, p = c["hidden_size"], c["mlp_dim"], c["num_layers"], c["num_classes"], c["patch_size"]
    n = (c["image_size"] // p) ** 2
    t = n + 1
    params = {"patch embedding": CHANNELS * p * p * d + d, "position + [CLS]": t * d + d,
              "attention": n_layers * 4 * (d * d + d), "MLP": n_layers * (2 * d * m + m + d),
              "norms": (2 * n_layers + 1) * 2 * d, "head": d * k + k}
    macs = {"patch embedding": n * CHANNELS * p * p * d, "position + [CLS]": 0,
            "attention": n_layers * (4 * t * d * d + 2 * t * t * d), "MLP": n_layers * 2 * t * d * m,
            "norms": 0, "head": d * k}
    text = {
        "patch embedding": ("C·P²·D + D", "N·C·P²·D"),
        "position + [CLS]": ("T·D + D", "0 (additions)"),
        "attention": ("L·4·(D² + D)", "L·(4·T·D² + 2·T²·D)"),
        "MLP": ("L·(2·D·M + M + D)", "L·2·T·D·M"),
        "norms": ("(2L + 1)·2D", "0 (not a matmul)"),
        "head": ("D·K + K", "D·K"),
    }
    return {"params": params, "macs": macs, "text": text, "tokens": t,
            "total_params": sum(params.values()), "total_macs": sum(macs.values())}
