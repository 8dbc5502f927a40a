"""The page's matplotlib figures, built from ``compute`` results.

Imported by the handlers only (matplotlib must not load at the hub's start-up). ``Figure`` objects
rather than pyplot: no global figure registry shared between concurrent requests, nothing to close.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import SymLogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

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


# ------------------------------------------------------------------------------------------
#      Issue 23: the trade-off, three tokenizers on one chunk, the sequence, flow matching
# ------------------------------------------------------------------------------------------

VQ_COLOR = "#059669"
METHOD_COLORS = {"bin": BIN_COLOR, "fast": FAST_COLOR, "vq": VQ_COLOR}


def _color(method: str) -> str:
    return METHOD_COLORS["bin" if method.startswith("bin") else method]


def tradeoff_figure(rows: list[dict[str, Any]], n: int, bounds: str) -> Figure:
    """Mean |error| (% of range) against tokens per chunk (left) and against bits per chunk (right)."""
    fig = Figure(figsize=(11, 4.0), layout="constrained")
    for ax, key, label in zip(fig.subplots(1, 2, sharey=True), ("tokens_per_chunk", "bits_per_chunk"),
                              ("tokens per chunk", "bits per chunk (tokens x log2 vocabulary)"), strict=True):
        for method, name in (("bin", "binning"), ("fast", "FAST"), ("vq", "VQ (residual levels)")):
            group = [r for r in rows if _color(r["method"]) == METHOD_COLORS[method]]
            x = [r[key] for r in group]
            y = [100 * r["relative_mean_error"] for r in group]
            ax.plot(x, y, "o-" if method != "bin" else "D", color=METHOD_COLORS[method], label=name)
            for r, xi, yi in zip(group, x, y, strict=True):
                tag = r["setting"].split(",")[0].replace(" bins", "").replace("scale ", "s").replace(" levels", "L")
                ax.annotate(tag.replace(" level", "L"), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(_two_and_five))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    fig.axes[0].set_ylabel("mean |error|, % of each dimension's range")
    fig.axes[0].legend(fontsize=8)
    fig.suptitle(f"error against length on {n} held-out 50x7 chunks (binning and FAST: {bounds} bounds; "
                 "VQ: its training bounds)", fontsize=10)
    return fig


def _two_and_five(v: float, _: object) -> str:
    """Minor log-axis labels at 2 and 5 times a power of ten only (20, 50, 200, ...)."""
    return f"{v:g}" if v > 0 and round(v / 10 ** np.floor(np.log10(v))) in (2, 5) else ""


def three_figure(out: dict[str, Any]) -> Figure:
    """Original and the three decodings per dimension (the first 8)."""
    x = out["actions"]
    names = compute.dim_names(x.shape[1])
    dims = min(x.shape[1], MAX_PLOT_DIMS)
    cols = min(4, dims)
    rows = int(np.ceil(dims / cols))
    fig = Figure(figsize=(3.3 * cols, 2.2 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    t = np.arange(x.shape[0])
    for d, ax in enumerate(axes.flat):
        if d >= dims:
            ax.set_axis_off()
            continue
        ax.plot(t, x[:, d], color="black", lw=2.4, alpha=0.35, label="original")
        ax.step(t, out["bins"].decoded[:, d], where="mid", color=BIN_COLOR, lw=1.0,
                label=f"{out['bins'].n_bins} bins")
        ax.plot(t, out["fast"].decoded[:, d], color=FAST_COLOR, lw=1.1, ls="--", label=f"FAST s{out['fast'].scale:g}")
        if out["vq"] is not None:
            ax.plot(t, out["vq"].decoded[:, d], color=VQ_COLOR, lw=1.1, ls="-.", label=f"VQ {out['vq'].levels}L")
        ax.set_title(names[d], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("original vs decoded: binning, FAST and VQ; x = step", fontsize=10)
    return fig


SEGMENT_COLORS = {"bos": "#6b7280", "image": "#0ea5e9", "prompt": "#a3a3a3", "state": "#f59e0b",
                  "action": "#dc2626", "stop": "#374151"}


def sequence_figure(rows: list[dict[str, Any]]) -> Figure:
    """One horizontal bar per layout, split into its segments (token counts)."""
    fig = Figure(figsize=(11, 0.6 * len(rows) + 1.4), layout="constrained")
    ax = fig.subplots()
    for i, r in enumerate(rows):
        left = 0
        for key, color in SEGMENT_COLORS.items():
            width = r[key]
            if not width:
                continue
            label = key if i == 0 or (key == "state" and r["layout"].startswith("pi0")) else None
            ax.barh(i, width, left=left, color=color, edgecolor="white", linewidth=0.5, label=label)
            if key in ("image", "action", "prompt") and width >= 0.05 * r["total"]:
                ax.text(left + width / 2, i, str(width), ha="center", va="center", fontsize=7, color="white")
            left += width
        ax.text(left + 8, i, f"{r['total']}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r["layout"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("position in the sequence (tokens)")
    ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.set_title("what a VLA reads and writes: image patches, prompt, then actions", fontsize=10)
    return fig


def flow_figure(flow: dict[str, Any], names: list[str]) -> Figure:
    """x_tau for each tau (every dimension, z-scored) and the target velocity chunk - noise (dimension x step)."""
    taus = flow["taus"]
    k = len(taus)
    fig = Figure(figsize=(max(9.0, 2.1 * k), 5.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    axes = top.subplots(1, k, sharey=True, squeeze=False)[0]
    t = np.arange(flow["chunk"].shape[0])
    colors = [f"C{d % 10}" for d in range(flow["chunk"].shape[1])]
    for ax, tau, x in zip(axes, taus, flow["path"], strict=True):
        for d in range(x.shape[1]):
            ax.plot(t, x[:, d], color=colors[d], lw=0.9, label=names[d] if d < len(names) else None)
        ax.set_title(f"τ = {tau:.2g}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("z-scored value")
    top.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="outside right center")
    top.suptitle("x_τ = τ·chunk + (1 − τ)·noise: from noise (τ = 0) to the chunk (τ = 1); x = step", fontsize=9)
    ax = bottom.subplots()
    v = flow["velocity"].T  # (D, T)
    vmax = max(1e-9, float(np.abs(v).max()))
    im = ax.imshow(v, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    _dimension_ticks(ax, names)
    ax.set_xlabel("step")
    ax.set_title("target velocity u = dx_τ/dτ = chunk − noise (the same at every τ on this straight path)",
                 fontsize=9)
    bottom.colorbar(im, ax=ax, label="velocity (z-units per unit τ)")
    return fig
