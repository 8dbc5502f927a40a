"""What a ViT costs to run and to train: FLOPs per component and memory by precision.

Both count ``transformers.ViTForImageClassification`` (1000 classes) instantiated on the ``meta``
device with ``shared/vit_cost.py``, the code the ViT anatomy page counts with:

- FLOPs per component: ``torch.utils.flop_counter.FlopCounterMode`` on one batch-1 forward; MACs =
  FLOPs / 2 (matmuls and convolutions only), beside the closed form (Dosovitskiy et al., 2021, eqs. 1-4).
- Memory (definitions, also on the page), b = bytes per value of the precision (fp32 4, bf16 2, fp16 2, int8 1):
  * ``weights_bytes`` = parameters × b;
  * ``activation_bytes`` (inference, batch B) = the most activation memory alive at once during a
    ``no_grad`` forward (input image included), every value at b;
  * ``training_bytes`` = weights + gradients (parameters × b) + Adam's two moment estimates (2 × parameters × b,
    Kingma & Ba, 2015) + the activations the forward saves for backward at batch B (saved-tensors hook), every
    value at b. Pure low-precision training: no fp32 master copy (mixed precision, Micikevicius et al., 2018,
    keeps one), no framework workspace, no fragmentation. int8 training is refused (``None``): int8 is an
    inference format here (weights and activations stored in 8 bits), and gradients and Adam's states are not
    trained in int8 by standard recipes.
"""

from __future__ import annotations

from shared import vit_cost

from .options import COST_CLASSES, GB, PRECISIONS, check_batch, check_gpu_gb, check_precision

INT8_TRAINING = ("int8 is an inference format here (weights and activations stored in 8 bits after training); "
                 "standard training keeps gradients and Adam's states in 16 or 32 bits, so no int8 training "
                 "memory is given")


def check_vit(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size) -> dict:
    """The six architecture numbers (1000 classes), checked with the anatomy page's caps."""
    return vit_cost.check_config(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, COST_CLASSES)


def flops(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size) -> dict:
    """Parameters, MACs and FLOPs per component, counted on the meta model, with the hand formula beside them."""
    c = check_vit(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size)
    counted = vit_cost.count(vit_cost.meta_model(c), c["image_size"])
    hand = vit_cost.hand_formula(c)
    rows = [{"component": k, "params": counted["breakdown"][k], "macs": counted["macs_breakdown"][k],
             "flops": 2 * counted["macs_breakdown"][k], "formula": hand["text"][k][1], "hand_macs": hand["macs"][k]}
            for k in vit_cost.COMPONENTS]
    return {"config": c, "tokens": hand["tokens"], "params": counted["params"], "macs": counted["macs"],
            "flops": counted["flops"], "rows": rows, "hand_macs": hand["total_macs"]}


def _counts(c: dict, batch: int) -> dict:
    """Values (not bytes) on the meta model: parameters, the inference peak and the tensors saved for backward."""
    model = vit_cost.meta_model(c)
    return {"params": int(sum(p.numel() for p in model.parameters())),
            "peak": vit_cost.peak_inference_bytes(model, c["image_size"], batch, 1),
            "saved": vit_cost.activation_bytes(model, c["image_size"], batch, 1)}


def _in_bytes(n: dict, c: dict, batch: int, precision: str) -> dict:
    b = PRECISIONS[precision]
    params, weights, activation = n["params"], n["params"] * b, n["peak"] * b
    train = precision != "int8"
    training = weights + params * b + 2 * params * b + n["saved"] * b if train else None
    return {"params": params, "weights_bytes": weights, "activation_bytes": activation, "training_bytes": training,
            "precision": precision, "bytes_per_value": b, "batch_size": batch,
            "inference_bytes": weights + activation, "gradient_bytes": params * b if train else None,
            "adam_bytes": 2 * params * b if train else None, "saved_activation_bytes": n["saved"] * b if train else None,
            "training_note": "" if train else INT8_TRAINING, "config": c}


def memory(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, batch_size, precision) -> dict:
    """Weights, inference activations and training memory in bytes at one precision (see the module docstring)."""
    c = check_vit(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size)
    batch = check_batch(batch_size)
    precision = check_precision(precision)
    return _in_bytes(_counts(c, batch), c, batch, precision)


def memory_all(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, batch_size) -> dict[str, dict]:
    """``memory`` at every precision, counted once (each byte count is a value count times the precision's bytes)."""
    c = check_vit(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size)
    batch = check_batch(batch_size)
    n = _counts(c, batch)
    return {p: _in_bytes(n, c, batch, p) for p in PRECISIONS}


def fits(stats: dict, gpu_gb) -> list[dict]:
    """Inference and training totals against a GPU of ``gpu_gb`` decimal gigabytes."""
    gb = check_gpu_gb(gpu_gb)
    out = []
    for what, key in (("inference (weights + activations)", "inference_bytes"), ("training", "training_bytes")):
        need = stats.get(key)
        out.append({"what": what, "bytes": need, "gb": None if need is None else need / GB,
                    "fits": None if need is None else need <= gb * GB, "capacity_gb": gb})
    return out
