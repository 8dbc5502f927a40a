"""CNN against ViT: the maths, as typed functions (no UI library; ``app.py`` imports this inside its handlers).

- ``receptive_field``: kernel, stride, jump and receptive field of every layer on the main path of a real
  torchvision model definition (built on the ``meta`` device: no weights), or of the embedded tiny CNN.
  Recurrence (Araujo, Norris & Sim, 2019, Distill; the same as Dumoulin & Visin, 2016):
  r_out = r_in + (k - 1) * j_in and j_out = j_in * s, with dilation d folded into k as d * (k - 1) + 1.
- ``effective_rf``: the effective receptive field (Luo et al., 2016): |d y_centre / d x| of the centre
  output unit with respect to the input pixels, averaged over images; for the CNN the centre unit of its last
  spatial feature map (summed over channels), for the ViT the centre patch token after the last layer.
- ``inductive_bias``: each model's accuracy on the test split as it is, shifted, rotated and patch-shuffled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shared.cache import BoundedCache
from shared.cnn_models import torchvision_models

from .options import (
    CNN,
    TF_SLIM_RESNET50_RF,
    VIT,
    check_architecture,
    check_bias_inputs,
    check_erf_images,
    config,
)

# --------------------------------------------------------------------------------------
#                                   Receptive field
# --------------------------------------------------------------------------------------


def _pair(v) -> int:
    """The first of a (h, w) pair (every layer walked here is square)."""
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def walk(layers: Iterable[tuple[str, nn.Module]]) -> list[dict]:
    """One row per convolution or pooling layer, in order: the recurrence of Araujo et al. (2019),
    r_out = r_in + (k - 1) * j_in, j_out = j_in * s, starting from r = j = 1 at the input pixels.
    ``kernel`` is the effective kernel d * (k - 1) + 1; ``jump`` and ``rf`` are after the layer."""
    rows, r, j = [], 1, 1
    for name, m in layers:
        if isinstance(m, nn.Conv2d):
            k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
            d = _pair(getattr(m, "dilation", 1))
        else:
            continue
        k = d * (k - 1) + 1
        r, j = r + (k - 1) * j, j * s
        rows.append({"name": name, "kernel": k, "stride": s, "jump": j, "rf": r})
    return rows


def main_path(model: nn.Module, architecture: str) -> list[tuple[str, nn.Module]]:
    """The convolutions and poolings on the main path, up to the last spatial layer the issue names:
    the last max-pool of ``features`` (alexnet, vgg16), the end of ``layer4`` (torchvision ResNets), the end
    of the last stage (the tiny CNN). Shortcuts (``downsample``, ``shortcut``) are off the main path."""
    mods = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    mods = [(n, m) for n, m in mods if "downsample" not in n and "shortcut" not in n]
    if architecture in ("alexnet", "vgg16"):
        feats = [(n, m) for n, m in mods if n.startswith("features.")]
        last_pool = max(i for i, (_, m) in enumerate(feats) if isinstance(m, nn.MaxPool2d))
        return feats[: last_pool + 1]
    if architecture.startswith("resnet"):
        return [(n, m) for n, m in mods if n.split(".")[0] in ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")]
    return [(n, m) for n, m in mods if n.startswith("resnet.")]  # the tiny CNN: transformers' ResNet, no head convs


def build_architecture(architecture: str) -> nn.Module:
    """The model definition, on the meta device (no weights) for torchvision's, or the tiny CNN's config."""
    architecture = check_architecture(architecture)
    if architecture == CNN:
        from transformers import ResNetConfig, ResNetForImageClassification

        c = config(CNN)
        if not c:
            raise ValueError(f"{CNN} is not shipped (no shared/weights/{CNN}/config.json); "
                             f"train it with `python -m shared.training {CNN}`")
        with torch.device("meta"):
            return ResNetForImageClassification(ResNetConfig.from_dict(c))
    tvm = torchvision_models()
    with torch.device("meta"):
        return getattr(tvm, architecture)(weights=None)


def tf_slim_layout(layers: list[dict]) -> list[dict]:
    """The same walk with each ResNet bottleneck's stride moved from its 3x3 (torchvision, "v1.5") to its
    first 1x1 (the original ResNet v1, as in TF-slim), recomputed with the same recurrence."""
    rows = [dict(x) for x in layers]
    for i, row in enumerate(rows):
        if row["name"].endswith("conv2") and row["stride"] > 1 and i > 0 and rows[i - 1]["name"].endswith("conv1"):
            rows[i - 1]["stride"], row["stride"] = row["stride"], 1
    r, j = 1, 1
    for row in rows:
        r, j = r + (row["kernel"] - 1) * j, j * row["stride"]
        row["jump"], row["rf"] = j, r
    return rows


_RF_CACHE: BoundedCache[dict] = BoundedCache(8)


def receptive_field(architecture: str) -> dict:
    """``{"architecture", "layers": [{name, kernel, stride, jump, rf}], "final_rf", "final_layer", "final_jump"}``;
    for resnet50 also ``tf_slim_v1_rf`` (the same walk with the stride on the 1x1, which the TF-slim figure of
    483 counts: Araujo et al., 2019)."""
    architecture = check_architecture(architecture)

    def make() -> dict:
        layers = walk(main_path(build_architecture(architecture), architecture))
        out = {"architecture": architecture, "layers": layers, "final_rf": layers[-1]["rf"],
               "final_layer": layers[-1]["name"], "final_jump": layers[-1]["jump"]}
        if architecture == "resnet50":
            out["tf_slim_v1_rf"] = tf_slim_layout(layers)[-1]["rf"]
            out["tf_slim_quoted_rf"] = TF_SLIM_RESNET50_RF
        return out

    return _RF_CACHE.get_or_create(architecture, make)[0]


def vit_reach() -> dict:
    """One ViT layer's reach, from vit-tiny-shapes' config.json: the patch embedding sees one patch; after
    one self-attention layer every token depends on every patch, so the receptive field is the whole image."""
    c = config(VIT)
    if not c:
        raise ValueError(f"{VIT} is not shipped (no config.json)")
    p, size = int(c["patch_size"]), int(c["image_size"])
    return {"model": VIT, "image_size": size, "patch_size": p, "grid": size // p,
            "layers": [{"name": "patch embedding", "kernel": p, "stride": p, "jump": p, "rf": p},
                       *({"name": f"block {i + 1}", "kernel": size // p, "stride": 1, "jump": p, "rf": size}
                         for i in range(int(c["num_hidden_layers"])))]}


# --------------------------------------------------------------------------------------
#                                   The two embedded models
# --------------------------------------------------------------------------------------

def _model(name: str):
    from shared.models import load

    return load(name, device="cpu").model


def test_images(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test-split shapes (the "wide" distribution both models trained on) as (n, 3, size, size)
    in [-1, 1] (``shared.images.to_tensor``, the normalisation of both preprocessor configs) and labels (n,)."""
    from shared.data.shapes import ShapesDataset
    from shared.images import to_tensor

    images, labels, _ = ShapesDataset("test", n, size).arrays()
    return to_tensor(images), torch.from_numpy(labels)


def centre_output(name: str, model, x: torch.Tensor) -> torch.Tensor:
    """(B,) the centre output unit per image, summed over channels (Luo et al., 2016, set the gradient
    at the centre unit to 1 in every channel): the CNN's last spatial map at (h // 2, w // 2); the ViT's
    patch token at grid position (g // 2, g // 2) after the last layer and final LayerNorm."""
    if name == CNN:
        fmap = model.resnet(pixel_values=x).last_hidden_state  # (B, C, h, w)
        return fmap[:, :, fmap.shape[2] // 2, fmap.shape[3] // 2].sum(-1)
    hidden = model.vit(pixel_values=x).last_hidden_state  # (B, 1 + g*g, D)
    g = math.isqrt(hidden.shape[1] - 1)
    return hidden[:, 1 + (g // 2) * g + g // 2].sum(-1)


def input_gradient(name: str, model, x: torch.Tensor) -> np.ndarray:
    """(B, H, W) |d centre / d x| summed over colour channels, one map per image."""
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        centre_output(name, model, x).sum().backward()
    return x.grad.abs().sum(1).numpy()


def mass_radii(erf: np.ndarray, shares: tuple[float, ...] = (0.5, 0.9)) -> dict[str, float]:
    """Radius (pixels) of the smallest disc around the map's centre of mass that holds each share of its mass."""
    w = erf / erf.sum()
    yy, xx = np.indices(w.shape)
    cy, cx = float((w * yy).sum()), float((w * xx).sum())
    d = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(w.ravel()[order])
    return {f"r{int(s * 100)}": float(d[order][np.searchsorted(cum, s - 1e-12)]) for s in shares}


@dataclass
class ERF:
    maps: dict[str, np.ndarray]  # model -> (H, W) mean |gradient|, normalised to max 1
    stats: dict


def effective_rf(n_images: int) -> ERF:
    """Mean |gradient| of each model's centre output w.r.t. the input over the first ``n_images`` test shapes."""
    n = check_erf_images(n_images)
    maps, stats = {}, {"n_images": n, "method": "Luo et al., 2016: |d centre unit / d input|, mean over images"}
    for name in (VIT, CNN):
        model = _model(name)
        size = int(config(name).get("image_size", config(VIT)["image_size"]))
        x, _ = test_images(n, size)
        grad = input_gradient(name, model, x).mean(0)  # (H, W)
        maps[name] = grad / grad.max()
        stats[name] = {k: round(v, 2) for k, v in mass_radii(grad).items()}
        stats[name]["share_outside_centre_16px"] = round(float(1 - grad[size // 2 - 8: size // 2 + 8,
                                                                       size // 2 - 8: size // 2 + 8].sum() / grad.sum()), 4)
        p = int(config(VIT)["patch_size"])
        lo = (size // p) // 2 * p  # the ViT's centre patch (the token the ViT map is taken at)
        stats[name]["share_in_centre_patch"] = round(float(grad[lo:lo + p, lo:lo + p].sum() / grad.sum()), 4)
    return ERF(maps, stats)


# --------------------------------------------------------------------------------------
#                                   Inductive bias
# --------------------------------------------------------------------------------------

def shift(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """Translate right and down by ``pixels``, repeating the border row and column into the gap."""
    padded = F.pad(x, (pixels, 0, pixels, 0), mode="replicate")
    return padded[:, :, : x.shape[2], : x.shape[3]]


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate counter-clockwise about the centre (bilinear; corners filled by the nearest border pixel)."""
    t = math.radians(degrees)
    # output pixel -> where to sample in the input (x right, y down): the inverse of a counter-clockwise turn on screen
    theta = torch.tensor([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0]], dtype=x.dtype)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def shuffle_patches(x: torch.Tensor, patch: int, seed: int = 0) -> torch.Tensor:
    """Cut into ``patch`` x ``patch`` tiles (the ViT's own grid) and put them back in one random order."""
    b, c, h, w = x.shape
    gh, gw = h // patch, w // patch
    tiles = x.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c, patch, patch)
    perm = torch.randperm(gh * gw, generator=torch.Generator().manual_seed(seed))
    tiles = tiles[:, perm]
    return tiles.reshape(b, gh, gw, c, patch, patch).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 250) -> float:
    hits = 0
    for i in range(0, len(x), batch_size):
        hits += (model(pixel_values=x[i:i + batch_size]).logits.argmax(-1) == y[i:i + batch_size]).sum().item()
    return hits / len(x)


def conditions(shift_px: int, angle: float, patch: int) -> list[tuple[str, object]]:
    """(label, transform) per row of the table."""
    return [
        ("as is", lambda x: x),
        (f"shifted {shift_px} px right and down", lambda x: shift(x, shift_px)),
        (f"rotated {angle:g}°", lambda x: rotate(x, angle)),
        ("rotated 90° (in the training augmentation)", lambda x: torch.rot90(x, 1, dims=(2, 3))),
        (f"{patch}-px patches shuffled", lambda x: shuffle_patches(x, patch)),
    ]


_BIAS_CACHE: BoundedCache[dict] = BoundedCache(16)


def inductive_bias(n_images: int, shift_px: int, angle: float, progress=None) -> dict:
    """``{"rows": [{condition, vit-tiny-shapes, cnn-tiny-shapes}], "n", "shift", "angle", "patch"}``: top-1
    accuracy of both models on the first ``n_images`` test shapes under each transformation (cached)."""
    n, s, a = check_bias_inputs(n_images, shift_px, angle)
    patch = int(config(VIT)["patch_size"])

    def make() -> dict:
        x, y = test_images(n, int(config(VIT)["image_size"]))
        rows = []
        conds = conditions(s, a, patch)
        for i, (label, fn) in enumerate(conds):
            if progress is not None:
                progress(i / len(conds), desc=label)
            xt = fn(x)
            rows.append({"condition": label, **{m: round(accuracy(_model(m), xt, y), 4) for m in (VIT, CNN)}})
        return {"rows": rows, "n": n, "shift": s, "angle": a, "patch": patch}

    return _BIAS_CACHE.get_or_create((n, s, a), make)[0]
