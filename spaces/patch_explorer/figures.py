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
