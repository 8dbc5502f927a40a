"""Event handlers of the patch explorer's section 7 ("Beyond the plain ViT", issue 23): FLOPs per component,
memory by precision, relative position codes, interpolation mode and hierarchical patches.

As in ``handlers.py``: values arrive as sent (``shared.ui.raw_values``), are checked with ``shared.validate``
before any model is built, and ``user_errors`` turns a ``ValueError`` into the message a user reads. The maths
modules (torch, transformers) are imported on first use, never when the page is built.
"""

from __future__ import annotations

import threading

import gradio as gr
import pandas as pd

from shared import validate
from shared.ui import user_errors

from . import figures
from .handlers import _compute, _model, _transformers_ready
from .options import (
    COST_CLASSES,
    GB,
    INTERP_IMAGES,
    INTERP_MODES,
    LEARNED_MODEL,
    SWIN_T_DEPTHS,
    SWIN_T_HEADS,
    VIT_B16,
    check_batch,
    check_gpu_gb,
    check_interp_modes,
    check_precision,
    check_rope,
    check_swin,
    check_window,
    tiny_config,
    tiny_grid,
    transfer_sizes,
)

# Each handler imports its maths module on first use (they import torch and transformers).

FLOPS_HEADERS = ["component", "parameters", "MACs (counted)", "GFLOPs (counted)", "share of FLOPs",
                 "MACs formula", "MACs (formula)"]
MEMORY_HEADERS = ["precision", "bytes / value", "weights", "activations (inference peak)", "inference total",
                  "gradients", "Adam m + v", "activations saved for backward", "training total"]
FITS_HEADERS = ["what", "needs", "fits?"]
POSITION_HEADERS = ["encoding", "kind", "parameters (formula)", "parameters (counted)", "counted on"]
INTERP_HEADERS = ["mode", "resolution", "grid", "test images", "accuracy", "change vs the training size"]
HIERARCHY_HEADERS = ["stage", "enters as", "grid (model)", "tokens (model)", "width (model)", "grid (formula)",
                     "tokens (formula)", "width (formula)", "windows M×M"]


def _gb(n: int | None) -> str:
    return "—" if n is None else f"{n / GB:,.3f} GB"


@user_errors
def flops(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size):
    """FLOPs per component of a ViT classifier (1000 classes) counted on the meta model, with the formula."""
    from . import cost

    cost.check_vit(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size)
    _transformers_ready()
    s = cost.flops(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size)
    total = s["flops"]
    table = pd.DataFrame([[r["component"], f"{r['params']:,}", f"{r['macs']:,}", f"{r['flops'] / 1e9:,.3f}",
                           f"{r['flops'] / total:.1%}", r["formula"], f"{r['hand_macs']:,}"] for r in s["rows"]]
                         + [["total", f"{s['params']:,}", f"{s['macs']:,}", f"{total / 1e9:,.3f}", "100%", "",
                             f"{s['hand_macs']:,}"]], columns=FLOPS_HEADERS)
    c = s["config"]
    title = (f"D {c['hidden_size']}, L {c['num_layers']}, MLP {c['mlp_dim']}, {c['image_size']} px / patch "
             f"{c['patch_size']}: {s['tokens']} tokens, {total / 1e9:,.2f} GFLOPs")
    stats = {k: s[k] for k in ("config", "tokens", "params", "macs", "flops", "hand_macs")}
    stats["by_component"] = {r["component"]: {"params": r["params"], "macs": r["macs"], "flops": r["flops"]}
                             for r in s["rows"]}
    return table, figures.flops_figure(s["rows"], title), stats


@user_errors
def memory(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, batch_size, precision):
    """The public memory estimate: stats JSON with params, weights_bytes, activation_bytes, training_bytes."""
    from . import cost

    cost.check_vit(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size)
    check_batch(batch_size)
    check_precision(precision)
    _transformers_ready()
    return cost.memory(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, batch_size, precision)


@user_errors
def memory_view(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, batch_size, precision, gpu_gb):
    """Every precision side by side (table and stacked bars) and the "fits on N GB?" readout for the chosen one."""
    from . import cost

    gb = check_gpu_gb(gpu_gb)
    precision = check_precision(precision)
    cost.check_vit(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size)
    check_batch(batch_size)
    _transformers_ready()
    every = cost.memory_all(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, batch_size)
    table = pd.DataFrame([[p, s["bytes_per_value"], _gb(s["weights_bytes"]), _gb(s["activation_bytes"]),
                           _gb(s["inference_bytes"]), _gb(s["gradient_bytes"]), _gb(s["adam_bytes"]),
                           _gb(s["saved_activation_bytes"]), _gb(s["training_bytes"]) if s["training_bytes"]
                           else "refused (int8 training)"] for p, s in every.items()], columns=MEMORY_HEADERS)
    chosen = every[precision]
    lines = [f"**Fits on {gb:g} GB?** ({precision}, batch {chosen['batch_size']})"]
    for f in cost.fits(chosen, gb):
        if f["fits"] is None:
            lines.append(f"- {f['what']}: refused. {chosen['training_note']}.")
        else:
            verdict = "yes" if f["fits"] else "no"
            lines.append(f"- {f['what']}: needs {f['gb']:,.2f} GB of {gb:g} GB: **{verdict}** "
                         f"({f['gb'] / gb:.0%} of it)")
    return table, figures.memory_figure(every, gb, GB), "\n".join(lines)


@user_errors
def relative(window, head, head_dim, grid, theta, progress=gr.Progress()):
    """Swin's relative position bias (table for one head, the bias it adds) and 2-D RoPE, beside absolute codes."""
    from shared import vit_cost

    check_window(window)
    validate.integer(head, "head", 0, SWIN_T_HEADS[0] - 1)
    check_rope(head_dim, grid, theta)  # every input checked before a model is built
    _transformers_ready()
    from . import relative as R

    progress(0, desc="instantiating Swin-T (first use of a window size only)")
    swin = R.swin_bias(window, head)
    counted = R.swin_bias_params(window)
    rope = R.rope_similarity(head_dim, grid, theta)
    m, heads = swin["window"], SWIN_T_HEADS
    vit_b = vit_cost.meta_model({**VIT_B16, "num_classes": COST_CLASSES})
    vit_b_table = vit_b.vit.embeddings.position_embeddings.numel()
    tiny = _model(LEARNED_MODEL, progress)
    tiny_table = tiny.vit.embeddings.position_embeddings.numel()
    c = tiny_config()
    n_b = (VIT_B16["image_size"] // VIT_B16["patch_size"]) ** 2
    depth_heads = " + ".join(f"{d}·{h}" for d, h in zip(SWIN_T_DEPTHS, heads, strict=True))
    rows = [
        ["learned table (ViT-B/16, 224 px)", "absolute, added to the tokens", "(N + 1)·D = 197·768", f"{vit_b_table:,}",
         "meta-device ViTForImageClassification"],
        [f"learned table ({LEARNED_MODEL})", "absolute, added to the tokens",
         f"(N + 1)·D = {tiny_grid() ** 2 + 1}·{c['hidden_size']}", f"{tiny_table:,}", "the shipped model"],
        ["1-D / 2-D sin-cos", "absolute, added to the tokens", f"0 (a fixed table of N·D = {n_b * 768:,} values)", "0",
         "no parameters to count"],
        [f"Swin-T relative position bias (M = {m})", "relative, added to QKᵀ in each window",
         f"(2M − 1)²·heads per block = {(2 * m - 1) ** 2}·({depth_heads})", f"{counted['total']:,}",
         f"meta-device SwinModel ({len(counted['blocks'])} blocks)"],
        [f"2-D RoPE, axial (d = {rope['head_dim']})", "relative, rotates Q and K",
         f"0 ({rope['head_dim'] // 4} fixed frequencies per axis)", "0", "no parameters to count"],
    ]
    table = pd.DataFrame(rows, columns=POSITION_HEADERS)
    text = (f"Swin's table for block 1 has shape {swin['table_shape']} = ((2M − 1)², heads); every query-key pair "
            f"of a window reads the entry of its offset, so the {m * m}×{m * m} bias is constant along each offset "
            "(the repeated pattern). The values are initial ones, drawn as Liu et al.'s code does (truncated normal, "
            "std 0.02; transformers starts at zero): no trained Swin is shipped, so the picture shows how the table "
            "is read, not what a trained one learned. RoPE's score depends on the offset only: from two different query positions "
            f"the maps differ by at most {rope['max_origin_difference']:.1e} (float rounding).")
    sincos = R.sincos_offset_similarity(768, rope["grid"] if rope["grid"] % 2 else rope["grid"] + 1)
    return figures.relative_figure(swin, rope, sincos), table, text


_INTERP: dict[tuple[int, str], dict] = {}  # (size, mode) -> measured row, once per process
_INTERP_LOCK = threading.Lock()


@user_errors
def interpolation(image_size, modes, progress=gr.Progress()):
    """vit-tiny-shapes at one resolution, its position table resized with each mode, on the fixed test set."""
    size = validate.choice(validate.integer(image_size, "resolution"), "resolution", transfer_sizes())
    modes = [m for m in INTERP_MODES if m in check_interp_modes(modes)]
    model = _model(LEARNED_MODEL, progress)
    base = model.config.image_size
    C = _compute()
    for k, mode in enumerate(modes):
        progress(k / len(modes), desc=f"{mode}: {INTERP_IMAGES} shapes at {size} px")
        with _INTERP_LOCK:
            if (size, mode) not in _INTERP:
                _INTERP[(size, mode)] = C.interpolation_accuracy(model, size, [mode], INTERP_IMAGES)[0]
    with _INTERP_LOCK:
        if (base, "bicubic") not in _INTERP:
            _INTERP[(base, "bicubic")] = C.interpolation_accuracy(model, base, ["bicubic"], INTERP_IMAGES)[0]
    rows = [_INTERP[(size, m)] for m in modes]
    base_acc = _INTERP[(base, "bicubic")]["accuracy"]
    table = pd.DataFrame([[r["mode"], f"{size} px", f"{r['grid']}×{r['grid']}", r["n"], f"{r['accuracy']:.1%}",
                           f"{100 * (r['accuracy'] - base_acc):+.1f} points"] for r in rows], columns=INTERP_HEADERS)
    spread = max(r["accuracy"] for r in rows) - min(r["accuracy"] for r in rows)
    half_width = 100 * 1.96 * (0.25 / INTERP_IMAGES) ** 0.5
    text = (f"The first {INTERP_IMAGES} test-split shapes, rendered at {size} px; at the training size {base} px the "
            f"table is not resized ({base_acc:.1%}). The modes differ by {100 * spread:.1f} points at most; with "
            f"{INTERP_IMAGES} images a 95% interval on one accuracy is up to ±{half_width:.1f} points, so smaller "
            "differences are noise." if size != base else
            f"{size} px is the training size: the table is used as it is, so every mode gives {base_acc:.1%}.")
    return figures.interpolation_figure(rows, base_acc, base), table, text


@user_errors
def hierarchy(image_size, patch_size, embed_dim, window_size):
    """Swin-style stages read from a meta-device SwinModel's reshaped_hidden_states, beside the closed form."""
    check_swin(image_size, patch_size, embed_dim, window_size)
    _transformers_ready()
    from . import hierarchy as H

    s = H.stages(image_size, patch_size, embed_dim, window_size)
    table = pd.DataFrame([[r["stage"], r["merged_from"], f"{r['side']}×{r['side']}", f"{r['tokens']:,}", r["width"],
                           f"{r['formula']['side']}×{r['formula']['side']}", f"{r['formula']['tokens']:,}",
                           r["formula"]["width"], r["windows"]] for r in s["rows"]], columns=HIERARCHY_HEADERS)
    stats = {"config": s["config"], "reshaped_hidden_states": [list(x) for x in s["shapes"]],
             "stages": [{k: r[k] for k in ("stage", "side", "tokens", "width", "windows")} for r in s["rows"]],
             "params": s["params"]}
    return table, figures.hierarchy_figure(s["rows"], s["config"]["image_size"], s["config"]["window_size"]), stats
