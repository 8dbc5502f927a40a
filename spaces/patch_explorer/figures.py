"""The patch explorer's matplotlib figures (shown in ``gr.Plot`` and downloaded as PNG).

matplotlib is imported inside each function, not at the top: the hub builds every page at start-up
and must not pay for matplotlib then (issue 14). ``Figure`` objects, not pyplot, so concurrent
requests never share global state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .projection import Projection


def vector_figure(p: Projection, patch_size: int) -> Figure:
    """The flattened patch (coloured by channel) above its embedding."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    block = patch_size * patch_size
    for ch, colour in enumerate(("tab:red", "tab:green", "tab:blue")):
        xs = np.arange(ch * block, (ch + 1) * block)
        top.plot(xs, p.vector[xs], color=colour, lw=0.9, label="RGB"[ch])
    top.set_title(f"patch {p.index} flattened: x ∈ R^{p.vector.size} (P²·C, channel-major like Conv2d's weight; "
                  "pixels scaled to [-1, 1])", fontsize=9)
    top.legend(loc="upper right", fontsize=7, ncols=3)
    top.set_xlim(0, p.vector.size - 1)
    bottom.bar(np.arange(p.embedding.size), p.embedding, width=1.0, color="tab:purple")
    bottom.set_title(f"its embedding z = W·x + b ∈ R^{p.embedding.size}", fontsize=9)
    bottom.set_xlim(-0.5, p.embedding.size - 0.5)
    return fig


def similarity_figure(sim: np.ndarray, row: int, col: int, structure: dict, title: str) -> Figure:
    """One position's cosine-similarity map, and the mean similarity against grid distance."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
    im = left.imshow(sim, cmap="viridis", vmin=sim.min(), vmax=1)
    left.scatter([col], [row], marker="x", color="red", s=50)
    left.set_title(f"cosine similarity to position ({row}, {col})", fontsize=9)
    left.set_xlabel("column")
    left.set_ylabel("row")
    fig.colorbar(im, ax=left, shrink=0.85)
    dist, mean = zip(*structure["by_distance"], strict=True)
    right.plot(dist, mean, "o-", ms=3)
    right.axhline(structure["non_neighbour_mean"], color="grey", ls="--", lw=1, label="mean over non-neighbours")
    right.set_xlabel("grid distance between two positions (Euclidean, rounded)")
    right.set_ylabel("mean cosine similarity")
    right.set_title(title, fontsize=9)
    right.legend(fontsize=7)
    return fig


def transfer_figure(rows: list[dict], base: int, patch: int) -> Figure:
    """Accuracy against resolution: interpolated positions, and the resized-input reference."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    sizes = [r["image_size"] for r in rows]
    ax.plot(sizes, [r["accuracy_interpolated"] for r in rows], "o-", label="positions interpolated (bicubic)")
    ax.plot(sizes, [r["accuracy_resized_to_base"] for r in rows], "s--", color="grey",
            label=f"reference: same shapes resized to {base} px")
    ax.axvline(base, color="tab:green", lw=1, ls=":", label=f"training resolution ({base} px)")
    ax.set_xlabel(f"input resolution (px), patch {patch}")
    ax.set_ylabel("top-1 accuracy, held-out shapes")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(sizes)
    ax.legend(fontsize=8, loc="lower right")
    return fig


# --------------------------------------------------------------------------------------
#                                   7 · Beyond the plain ViT
# --------------------------------------------------------------------------------------

def flops_figure(rows: list[dict], title: str) -> Figure:
    """GFLOPs per component (counted), one bar each."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    names = [r["component"] for r in rows]
    values = [r["flops"] / 1e9 for r in rows]
    bars = ax.barh(names, values, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:,.3g}" for v in values], fontsize=8, padding=2)
    ax.invert_yaxis()
    ax.set_xlabel("GFLOPs, one image (FlopCounterMode; 1 MAC = 2 FLOPs)")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, max(values) * 1.18 or 1)
    return fig


def memory_figure(by_precision: dict[str, dict], gpu_gb: float, gb: int) -> Figure:
    """Stacked bars: inference (weights, activations) and training (weights, gradients, Adam, saved activations)
    for each precision, against the GPU's capacity."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.subplots()
    parts = [("weights", "weights_bytes", "tab:blue"), ("activations (inference peak)", "activation_bytes", "tab:orange"),
             ("gradients", "gradient_bytes", "tab:green"), ("Adam m and v", "adam_bytes", "tab:red"),
             ("activations saved for backward", "saved_activation_bytes", "tab:purple")]
    labels, seen = [], set()
    for k, (prec, s) in enumerate(by_precision.items()):
        for j, (kind, keys) in enumerate((("inference", (0, 1)), ("training", (0, 2, 3, 4)))):
            x = 3 * k + j
            labels.append((x, f"{prec}\n{kind}"))
            if kind == "training" and s["training_bytes"] is None:
                ax.text(x, 0, "refused", ha="center", va="bottom", fontsize=7, rotation=90)
                continue
            bottom = 0.0
            for i in keys:
                name, key, colour = parts[i]
                v = s[key] / gb
                ax.bar(x, v, bottom=bottom, color=colour, label=None if name in seen else name)
                seen.add(name)
                bottom += v
    ax.axhline(gpu_gb, color="black", ls="--", lw=1, label=f"GPU: {gpu_gb:g} GB")
    ax.set_xticks([x for x, _ in labels], [t for _, t in labels], fontsize=7)
    ax.set_ylabel("GB (10⁹ bytes)")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def relative_figure(swin: dict, rope: dict, sincos: np.ndarray) -> Figure:
    """Swin's bias table for one head (by offset) and the M²×M² bias it adds; RoPE's score by offset;
    the 2-D sin-cos code's similarity to the centre position (absolute, for comparison)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.5), layout="constrained")
    a, b, c, d = fig.subplots(1, 4)
    m = swin["window"]
    ext = [-(m - 1) - 0.5, m - 1 + 0.5, m - 1 + 0.5, -(m - 1) - 0.5]
    im = a.imshow(swin["table"], cmap="RdBu_r", extent=ext)
    a.set_title(f"Swin table B̂, block 1, head {swin['head']}\n({2 * m - 1}×{2 * m - 1} offsets; initial values)",
                fontsize=8)
    a.set_xlabel("Δx")
    a.set_ylabel("Δy")
    fig.colorbar(im, ax=a, shrink=0.8)
    im = b.imshow(swin["bias"], cmap="RdBu_r")
    b.set_title(f"Swin: bias added to QKᵀ\n(query i, key j in a window: {m * m}×{m * m})", fontsize=8)
    b.set_xlabel("key j")
    b.set_ylabel("query i")
    g = rope["grid"]
    ext = [-(g - 1) - 0.5, g - 1 + 0.5, g - 1 + 0.5, -(g - 1) - 0.5]
    im = c.imshow(rope["map"], cmap="viridis", extent=ext)
    c.set_title(f"2-D RoPE: q·k by offset\n(d = {rope['head_dim']}, base {rope['theta']:g}; 0 params)", fontsize=8)
    c.set_xlabel("Δx")
    c.set_ylabel("Δy")
    fig.colorbar(im, ax=c, shrink=0.8)
    h = sincos.shape[0]
    ext = [-(h // 2) - 0.5, h - 1 - h // 2 + 0.5, h - 1 - h // 2 + 0.5, -(h // 2) - 0.5]
    im = d.imshow(sincos, cmap="viridis", extent=ext)
    d.set_title(f"absolute 2-D sin-cos (D 768):\ncosine to the centre ({h}×{h}; 0 params)", fontsize=8)
    d.set_xlabel("Δx")
    d.set_ylabel("Δy")
    fig.colorbar(im, ax=d, shrink=0.8)
    return fig


def interpolation_figure(rows: list[dict], base_accuracy: float, base: int) -> Figure:
    """Accuracy per interpolation mode at one resolution, with the training-resolution accuracy."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar([r["mode"] for r in rows], [r["accuracy"] for r in rows], color="tab:blue")
    ax.bar_label(bars, labels=[f"{r['accuracy']:.1%}" for r in rows], fontsize=8)
    ax.axhline(base_accuracy, color="tab:green", ls=":", label=f"at the training size {base} px: {base_accuracy:.1%}")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("top-1 accuracy")
    ax.set_title(f"{rows[0]['image_size']} px (grid {rows[0]['grid']}×{rows[0]['grid']}), "
                 f"{rows[0]['n']} held-out shapes", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def hierarchy_figure(rows: list[dict], image_size: int, window: int) -> Figure:
    """Each stage's token grid drawn over the same image square, its M x M attention windows in red."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, len(rows))
    for ax, r in zip(axes, rows, strict=True):
        side = r["side"]
        step = max(1, -(-side // 32))  # at most ~32 token lines a side stay legible
        for k in range(0, side + 1, step):
            ax.axhline(k, color="tab:blue", lw=0.4)
            ax.axvline(k, color="tab:blue", lw=0.4)
        for k in range(0, side + 1, window):
            ax.axhline(k, color="tab:red", lw=1.2)
            ax.axvline(k, color="tab:red", lw=1.2)
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        note = "" if step == 1 else f"; a blue line every {step} tokens"
        ax.set_title(f"stage {r['stage']}: {side}×{side} = {r['tokens']:,} tokens\n"
                     f"width {r['width']}, {r['windows']} window{'s' if r['windows'] != 1 else ''}{note}", fontsize=8)
    fig.suptitle(f"{image_size} px image, the same square at every stage; red: the {window}×{window}-token "
                 "attention windows", fontsize=9)
    return fig
