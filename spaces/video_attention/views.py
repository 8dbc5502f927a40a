"""Video transformers: figures and tables (matplotlib is imported inside each function, never at start-up)."""

from __future__ import annotations

from .options import MODE_NAMES, MODES

COLOURS = {"joint": "#d62728", "divided": "#1f77b4", "factorised": "#2ca02c"}
GROUP_COLOURS = ("#e45756", "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#eeca3b", "#72b7b2", "#9d755d")


def clip_strip(clip, tubelet: int, patch: int, title: str, highlight: tuple[int, int] | None = None,
               columns: int = 16):
    """The clip's frames in a strip (wrapped after ``columns``); each frame carries the p x p patch grid and a
    frame border whose colour is its tubelet's time step, so t consecutive frames sharing a colour form one
    row of t x p x p tubelets. ``highlight`` = (row, col) outlines that patch in every frame."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    frames, size = clip.shape[0], clip.shape[1]
    cols = min(columns, frames)
    rows = -(-frames // cols)
    fig = Figure(figsize=(0.95 * cols + 0.3, 1.25 * rows + 0.5))
    for f in range(frames):
        ax = fig.add_subplot(rows, cols, f + 1)
        ax.imshow(clip[f], interpolation="nearest")
        for x in range(patch, size, patch):
            ax.axvline(x - 0.5, color="white", lw=0.6, alpha=0.8)
            ax.axhline(x - 0.5, color="white", lw=0.6, alpha=0.8)
        step = f // tubelet
        colour = GROUP_COLOURS[step % len(GROUP_COLOURS)]
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(3)
        if highlight is not None:
            r, c = highlight
            ax.add_patch(Rectangle((c * patch - 0.5, r * patch - 0.5), patch, patch, fill=False, ec="yellow", lw=2))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"f{f}" + (f"\nt'={step}" if f % tubelet == 0 else "\n"), fontsize=7, color=colour)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _fmt_axes(ax, xlabel: str, ylabel: str) -> None:
    from matplotlib.ticker import ScalarFormatter

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 16, not 2^4
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def growth_figure(xs: list[int], series: dict, xlabel: str, title: str):
    """Attention GMACs and one layer's matrix memory (MiB) of every mode against ``xs`` (log scales)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 3.4))
    for k, (key, scale, ylabel) in enumerate((("macs", 1e9, "attention GMACs (all layers)"),
                                               ("bytes", 2**20, "attention matrix MiB (1 layer, 1 head)"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for m in MODE_NAMES:
            pts = [(x, v / scale) for x, v in zip(xs, series[m][key], strict=True) if v is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", color=COLOURS[m], label=MODES[m][0])
        _fmt_axes(ax, xlabel, ylabel)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def temporal_figure(res, layer: int, head: int, row: int, col: int):
    """Every head of the layer as a time step x time step map for patch (row, col), on one colour scale; the
    chosen head is framed in red."""
    from matplotlib.figure import Figure

    t = res.grid[0]
    heads = res.attention.shape[1]
    maps = [res.temporal_map(layer, h, row, col) for h in range(heads)]
    top = max(float(m.max()) for m in maps)
    fig = Figure(figsize=(2.3 * heads + 0.8, 3.0))
    axes = fig.subplots(1, heads, squeeze=False)[0]
    for h, (ax, m) in enumerate(zip(axes, maps, strict=True)):
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=top)
        ax.set_xticks(range(t), [str(i) for i in range(t)], fontsize=6)
        ax.set_yticks(range(t), [str(i) for i in range(t)], fontsize=6)
        ax.set_xlabel("key time step t'", fontsize=7)
        if h == 0:
            ax.set_ylabel("query time step t'", fontsize=7)
        chosen = h == head
        ax.set_title(f"head {h + 1}" + (" (chosen)" if chosen else ""), fontsize=8,
                     color="red" if chosen else "black")
        for spine in ax.spines.values():
            spine.set_edgecolor("red" if chosen else "black")
            spine.set_linewidth(2.5 if chosen else 0.8)
    fig.colorbar(im, ax=list(axes), fraction=0.02, pad=0.02, label="attention weight")
    axes[0].set_ylabel(f"layer {layer + 1}, patch ({row}, {col})\nquery time step t'", fontsize=7)
    return fig
