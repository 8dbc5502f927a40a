"""The page's matplotlib figures, built from ``compute`` results.

Imported by the handlers only (matplotlib must not load at the hub's start-up). ``Figure`` objects
rather than pyplot: no global figure registry shared between concurrent requests, nothing to close.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import SymLogNorm
from matplotlib.figure import Figure

from . import compute

MAX_PLOT_DIMS = 8
BIN_COLOR, FAST_COLOR = "#d97706", "#4f46e5"


def decoded_figure(c: compute.Comparison) -> Figure:
    """Original, bin256-decoded and FAST-decoded values per dimension (the first 8), with the bounds."""
    names = compute.dim_names(c.actions.shape[1])
    dims = min(c.actions.shape[1], MAX_PLOT_DIMS)
    cols = min(4, dims)
    rows = int(np.ceil(dims / cols))
    fig = Figure(figsize=(3.3 * cols, 2.2 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    t = np.arange(c.actions.shape[0])
    for d, ax in enumerate(axes.flat):
        if d >= dims:
            ax.set_axis_off()
            continue
        ax.plot(t, c.actions[:, d], color="black", lw=2.4, alpha=0.35, label="original")
        ax.step(t, c.bins.decoded[:, d], where="mid", color=BIN_COLOR, lw=1.0, label="bin256 decoded")
        ax.plot(t, c.fast.decoded[:, d], color=FAST_COLOR, lw=1.1, ls="--", label="FAST decoded")
        clipped = c.bins.clipped[:, d]
        if clipped.any():
            ax.plot(t[clipped], c.actions[clipped, d], "x", color="crimson", ms=4, label="clipped by bin256")
        ax.set_title(names[d], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    more = f" (first {dims} of {c.actions.shape[1]} dimensions)" if c.actions.shape[1] > dims else ""
    fig.suptitle(f"original vs decoded per dimension{more}, {_bounds_label(c)}; x = step", fontsize=10)
    return fig


def dct_figure(c: compute.Comparison) -> Figure:
    """DCT coefficients x scale before and after rounding (dimension x frequency); rounded zeros are white."""
    names = compute.dim_names(c.actions.shape[1])
    before, after = c.fast.coefficients.T, c.fast.rounded.T.astype(float)  # (D, T): dimension x frequency
    vmax = max(1.0, float(np.abs(before).max()))
    norm = SymLogNorm(linthresh=0.5, vmin=-vmax, vmax=vmax)
    height = 1.4 + 0.22 * before.shape[0]
    fig = Figure(figsize=(8, 2 * height), layout="constrained")
    axes = fig.subplots(2, 1)
    panels = ((before, "DCT-II coefficients x scale, before rounding"),
              (np.ma.masked_equal(after, 0), f"after rounding: {np.count_nonzero(after)} of {after.size} "
               "non-zero (white = 0, which BPE merges into long runs)"))
    for ax, (data, title) in zip(axes, panels, strict=True):
        im = ax.imshow(data, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        _dimension_ticks(ax, names)
        ax.set_xlabel("frequency index k (0 = the chunk's mean)", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="coefficient x scale (symmetric log)")
    return fig


def sweep_figure(c: compute.Comparison, sweep: list[dict[str, Any]]) -> Figure:
    """The trade-off curve: FAST tokens against error over scales; bin256 as one point."""
    tokens = [r["num_tokens"] for r in sweep]
    mean = [100 * r["relative_mean_error"] for r in sweep]
    worst = [100 * r["relative_max_error"] for r in sweep]
    bin_mean, bin_max = compute.relative_error(c.actions, c.bins.decoded)
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(tokens, mean, "o-", color=FAST_COLOR, label="FAST mean |err|")
    ax.plot(tokens, worst, "s--", color=FAST_COLOR, alpha=0.45, label="FAST max |err|")
    for r, x, y in zip(sweep, tokens, mean, strict=True):
        ax.annotate(f"{r['scale']:g}", (x, y), textcoords="offset points", xytext=(3, -11), fontsize=7)
    ax.plot([c.bins.tokens.size], [100 * bin_mean], "D", color=BIN_COLOR, label="bin256 mean |err|")
    ax.plot([c.bins.tokens.size], [100 * bin_max], "^", color=BIN_COLOR, label="bin256 max |err|")
    ax.axvline(len(c.fast.tokens), color="gray", lw=0.8, ls=":", label=f"FAST at scale {c.fast.scale:g}")
    ax.set_yscale("log")
    ax.set_xlabel("tokens per chunk")
    ax.set_ylabel("|error|, % of each dimension's range")
    ax.set_title(f"FAST scale sweep (point labels = scale), {_bounds_label(c)}", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def noise_figure(noise_rows: list[dict[str, Any]], freq_rows: list[dict[str, Any]] | None,
                 seconds: float | None = None) -> Figure:
    """Token count against added noise (this chunk) and against control frequency (the same generated
    motion of ``seconds``, the chunk's own duration, at other rates)."""
    panels = [("noise", noise_rows)] + ([("hz", freq_rows)] if freq_rows else [])
    fig = Figure(figsize=(5 * len(panels), 3.4), layout="constrained")
    for ax, (key, rows) in zip(fig.subplots(1, len(panels), squeeze=False).flat, panels, strict=True):
        x = [r[key] for r in rows]
        ax.plot(x, [r["fast_tokens"] for r in rows], "o-", color=FAST_COLOR, label="FAST")
        ax.plot(x, [r["bin256_tokens"] for r in rows], "o-", color=BIN_COLOR, label="bin256 (T·D)")
        ax.set_ylabel("tokens per chunk")
        ax.legend(fontsize=7)
        if key == "noise":
            ax.set_xscale("symlog", linthresh=0.01)
            ax.set_xlabel("added noise (std relative to each dimension's std)")
            ax.set_title("noise spreads energy over all frequencies", fontsize=9)
        else:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"control frequency (Hz), the same {seconds:g}-second motion")
            ax.set_title("denser sampling of a smooth motion", fontsize=9)
    return fig


def perturb_figure(out: dict[str, Any]) -> Figure:
    """|decoded change| after changing one token, as % of each dimension's range (step x dimension).
    Each panel has its own colour scale: bin256's single change would vanish on FAST's."""
    c = out["comparison"]
    names = compute.dim_names(c.actions.shape[1])
    span = np.ptp(c.actions, 0)
    span = np.where(span > 0, span, 1.0)
    fig = Figure(figsize=(11, 1.7 + 0.25 * len(names)), layout="constrained")
    for ax, method in zip(fig.subplots(1, 2, sharey=True), ("bin256", "fast"), strict=True):
        o = out[method]
        change = 100 * (o["change"] / span).T  # (D, T), % of range
        im = ax.imshow(change, aspect="auto", cmap="magma_r", vmin=0, vmax=max(1e-9, change.max()),
                       interpolation="nearest")
        ax.set_title(f"{method}: token {o['index']}, id {o['old_id']} -> {o['new_id']}: {o['changed_entries']} "
                     f"values move, max {change.max():.2g}%", fontsize=9)
        ax.set_xlabel("step")
        _dimension_ticks(ax, names)
        fig.colorbar(im, ax=ax, label="|decoded change|, % of range")
    return fig


def _dimension_ticks(ax, names: list[str]) -> None:
    if len(names) <= 16:
        ax.set_yticks(range(len(names)), names, fontsize=7)


def _bounds_label(c: compute.Comparison) -> str:
    return "dataset bounds" if c.bounds == "dataset" else "per-chunk bounds"
