"""Hierarchical patches: Swin-style patch merging (Liu et al., 2021, "Swin Transformer", section 3.1).

Stage 1 cuts the image into P x P patches (Swin-T: P = 4, so 56 x 56 tokens of width C = 96 at 224 px).
Between stages a patch-merging layer concatenates each 2 x 2 group of neighbouring tokens (4C values)
and projects them linearly to 2C: the grid halves, the token count quarters and the width doubles.
Closed form, stage i = 1 … 4: side S / (P · 2^(i-1)), tokens side², width C · 2^(i-1); attention runs in
M x M windows, ⌈side / M⌉² of them (Swin pads a side that M does not divide).

``stages`` reads the shapes from a ``transformers.SwinModel`` instantiated on the ``meta`` device (no
weights) with Swin-T's depths and heads: one forward with ``output_hidden_states=True`` returns
``reshaped_hidden_states`` of shape (batch, width, side, side) for the embedding and after each stage.
"""

from __future__ import annotations

import math

import torch

from .options import SWIN_STAGES, check_swin
from .relative import swin_config


def closed_form(c: dict) -> list[dict]:
    """Side, tokens and width at each stage from the formula (no model)."""
    out = []
    for i in range(SWIN_STAGES):
        side = c["image_size"] // (c["patch_size"] * 2**i)
        out.append({"stage": i + 1, "side": side, "tokens": side * side, "width": c["embed_dim"] * 2**i,
                    "windows": math.ceil(side / c["window_size"]) ** 2})
    return out


def stages(image_size, patch_size, embed_dim, window_size) -> dict:
    """Per stage: the grid side, tokens and width read from the instantiated meta SwinModel, beside the formula."""
    from transformers import SwinModel

    c = check_swin(image_size, patch_size, embed_dim, window_size)
    config = swin_config(c["window_size"], c["embed_dim"], c["image_size"], c["patch_size"])
    with torch.device("meta"):
        model = SwinModel(config)
    x = torch.empty(1, 3, c["image_size"], c["image_size"], device="meta")
    with torch.no_grad():
        out = model(pixel_values=x, output_hidden_states=True)
    # reshaped_hidden_states: the patch embedding, then the output of each stage (after its merging layer,
    # where there is one). A stage's own resolution is what enters it: entries 0 … 3.
    shapes = [tuple(h.shape) for h in out.reshaped_hidden_states]
    formula = closed_form(c)
    rows = []
    for i in range(SWIN_STAGES):
        _, width, side, side2 = shapes[i]
        rows.append({"stage": i + 1, "side": side, "tokens": side * side2, "width": width,
                     "merged_from": "patch embedding" if i == 0 else f"2×2 merge of stage {i}",
                     "windows": formula[i]["windows"], "formula": formula[i]})
    return {"config": c, "rows": rows, "shapes": shapes, "params": int(sum(p.numel() for p in model.parameters()))}
