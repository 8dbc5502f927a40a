"""VLA action tokenizer: 256-bin tokenization against FAST (DCT + BPE) on the same action chunk."""

from __future__ import annotations

from typing import Any

import gradio as gr
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import SymLogNorm  # noqa: E402

from shared import actions as A  # noqa: E402
from shared.ui import as_int, user_errors  # noqa: E402

from . import compute  # noqa: E402

SLUG = "vla_tokenizer"
TITLE = "VLA action tokenizer"
WEIGHTS: tuple[str, ...] = (compute.TOKENIZER,)

SOURCES = ("generate", "upload a file", "paste JSON or CSV")
MAX_PLOT_DIMS = 8
BIN_NORM_CHOICES = [("min-max per dimension", "minmax"), ("1st/99th percentile, clipped (OpenVLA)", "quantile")]

INTRO = f"""
## 🦾 {TITLE}
An autoregressive vision-language-action model (VLA) writes robot actions as tokens. Here the same
action chunk (T steps x D dimensions) goes through the two tokenizers such models use, and both are decoded back:

- **bin256** (RT-2, Brohan et al., 2023; OpenVLA, Kim et al., 2024): each dimension is cut into 256 equal bins,
  token = clip(⌊(a − lo) / (hi − lo) · 256⌋, 0, 255), decoded to the bin centre. **One token per dimension per
  step: T·D tokens. The vocabulary is 256 tokens shared by all dimensions**, not 256^D (OpenVLA overwrites 256
  rarely used Llama tokens with them).
- **FAST** (Pertsch et al., 2025, [arXiv:2501.09747](https://arxiv.org/abs/2501.09747)): quantile-normalise
  to [−1, 1], DCT-II along time per dimension, multiply by `scale` and round, flatten low frequencies first
  across dimensions, then a byte-level BPE with a **vocabulary of {compute.FAST_VOCAB}** merges frequent runs
  (mostly runs of zero coefficients). The BPE here was trained on generated chunks
  (`python -m shared.training fast-bpe-actions`); it is not the FAST+ tokenizer trained on 1M real chunks.

Rounding is FAST's only lossy step: `scale` trades accuracy against length (a larger scale keeps more
coefficient detail and needs more tokens). Errors below are in the units of the input.
"""

CITATIONS = """
**Sources.** Brohan et al., *RT-2: Vision-Language-Action Models Transfer Web Knowledge to Robotic Control*
(2023). Kim et al., *OpenVLA: An Open-Source Vision-Language-Action Model* (2024): 256 bins between the 1st
and 99th percentiles of each dimension, decoded to bin centres. Pertsch et al., *FAST: Efficient Action
Tokenization for Vision-Language-Action Models* (2025): DCT + scale/round + BPE, default scale 10, vocabulary
1024. FAST's reference code maps each integer to a character by shifting by the training minimum and clamping
lower values; this page uses a zig-zag map instead so every integer keeps its own character and decoding is
exact at any scale. Users report what the brittleness demo shows: small changes to FAST tokens decode to
very different actions (UniVLA issue #26), and decoding fails when a sequence holds the wrong number of
coefficients (openpi issue #299).
"""


# --------------------------------------------------------------------------------------
#                                   Handlers (public API)
# --------------------------------------------------------------------------------------

@user_errors
def chunk(source: str, seed: float, steps: float, hz: float, noise: float, file: str | None,
          text: str | None) -> str:
    """The action chunk as JSON text: generated, read from an uploaded file, or parsed from the box."""
    if source == SOURCES[0]:
        actions = A.generate_chunk(as_int(seed, "seed"), as_int(steps, "steps"), float(hz), float(noise))
    elif source == SOURCES[1]:
        if not file:
            raise ValueError("upload a .csv, .npy or .json file first (or choose another source)")
        actions = A.parse_file(file)
    elif source == SOURCES[2]:
        actions = A.parse_actions(text or "")
    else:
        raise ValueError(f"unknown source {source!r}; choose one of {list(SOURCES)}")
    return A.to_json(actions, decimals=8)


@user_errors
def compare(actions: str, scale: float, bin_norm: str = "minmax") -> dict[str, Any]:
    """Both tokenizers on one chunk: token counts, ratio, per-dimension errors, scale and noise sweeps."""
    x = A.parse_actions(actions)
    c = compute.compare(x, compute.check_scale(scale), bin_norm)
    names = compute.dim_names(x.shape[1])
    return {
        "shape": list(x.shape),
        "dimensions": names,
        "bin256": {"num_tokens": int(c.bins.tokens.size), "vocab_size": compute.N_BINS,
                   "normalisation": bin_norm, "tokens": c.bins.flat_tokens,
                   "bin_width": c.bins.width.tolist(), **c.bin_errors},
        "fast": {"num_tokens": len(c.fast.tokens), "vocab_size": compute.FAST_VOCAB, "scale": c.fast.scale,
                 "tokens": c.fast.tokens, "nonzero_coefficients": int(np.count_nonzero(c.fast.rounded)),
                 **c.fast_errors},
        "compression_ratio": c.ratio,
        "scale_sweep": compute.scale_sweep(x),
        "noise_sweep": compute.noise_sweep(x, c.fast.scale),
    }


@user_errors
def encode(actions: str, method: str, scale: float) -> dict[str, Any]:
    """Tokenize a chunk with one method; tokens, num_tokens, decoded (T x D) and errors in input units."""
    compute.check_method(method)
    compute.check_scale(scale)
    return compute.encode(A.parse_actions(actions), method, scale)


@user_errors
def perturb(actions: str, scale: float, index: float, delta: float, bin_norm: str = "minmax") -> dict[str, Any]:
    """Change one token id by ``delta`` in each tokenizer's sequence and report the decoded change."""
    out = compute.perturb(A.parse_actions(actions), compute.check_scale(scale), as_int(index, "token index"),
                          as_int(delta, "delta"), bin_norm)
    return {name: {k: v for k, v in out[name].items() if k not in ("change", "decoded")}
            for name in ("bin256", "fast")}


# --------------------------------------------------------------------------------------
#                                   Views (private)
# --------------------------------------------------------------------------------------

TABLE_HEADERS = ["dim", "range", "bin width", "bin256 max", "bin256 mean", "FAST max", "FAST mean",
                 "FAST non-zero coefs"]
BIN_COLOR, FAST_COLOR = "#d97706", "#4f46e5"


def summary_markdown(c: compute.Comparison) -> str:
    t, d = c.actions.shape
    nonzero = int(np.count_nonzero(c.fast.rounded))
    return (
        f"**Chunk:** T = {t} steps x D = {d} dimensions.  \n"
        f"**bin256:** **{c.bins.tokens.size} tokens** (T·D), ids from a vocabulary of {compute.N_BINS} shared "
        f"tokens; max |error| {c.bin_errors['max_abs_error']:.3g}, mean {c.bin_errors['mean_abs_error']:.3g}.  \n"
        f"**FAST, scale {c.fast.scale:g}:** **{len(c.fast.tokens)} tokens**, ids from a BPE vocabulary of "
        f"{compute.FAST_VOCAB}; {nonzero} of {t * d} rounded DCT coefficients are non-zero; "
        f"max |error| {c.fast_errors['max_abs_error']:.3g}, mean {c.fast_errors['mean_abs_error']:.3g}.  \n"
        f"**Compression:** FAST needs **{c.ratio:.2f}x fewer tokens** than bin256 "
        f"({c.bins.tokens.size} / {len(c.fast.tokens)}; {t * d / len(c.fast.tokens):.1f} coefficients per "
        "FAST token on average)."
    )


def table(c: compute.Comparison) -> list[list[Any]]:
    rows = compute.table_rows(c, compute.dim_names(c.actions.shape[1]))
    return [[r[0], *[f"{v:.3g}" for v in r[1:7]], r[7]] for r in rows]  # 3 significant digits keep it narrow


def token_markdown(c: compute.Comparison) -> str:
    t, d = c.bins.tokens.shape
    shown = min(t, 20)
    bins = "\n".join(" ".join(f"{v:3d}" for v in row) for row in c.bins.tokens[:shown])
    more = f"\n… {t - shown} more steps" if t > shown else ""
    return (
        f"**bin256 ids** (one row per step, one column per dimension):\n```\n{bins}{more}\n```\n"
        f"**FAST ids** ({len(c.fast.tokens)}):\n```\n{' '.join(map(str, c.fast.tokens))}\n```"
    )


def decoded_figure(c: compute.Comparison):
    """Original, bin256-decoded and FAST-decoded values per dimension (the first 8)."""
    names = compute.dim_names(c.actions.shape[1])
    dims = min(c.actions.shape[1], MAX_PLOT_DIMS)
    cols = min(4, dims)
    rows = int(np.ceil(dims / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.2 * rows + 0.5), layout="constrained", squeeze=False)
    t = np.arange(c.actions.shape[0])
    for d, ax in enumerate(axes.flat):
        if d >= dims:
            ax.set_axis_off()
            continue
        ax.plot(t, c.actions[:, d], color="black", lw=2.4, alpha=0.35, label="original")
        ax.step(t, c.bins.decoded[:, d], where="mid", color=BIN_COLOR, lw=1.0, label="bin256 decoded")
        ax.plot(t, c.fast.decoded[:, d], color=FAST_COLOR, lw=1.1, ls="--", label="FAST decoded")
        ax.set_title(names[d], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    more = f" (first {dims} of {c.actions.shape[1]} dimensions)" if c.actions.shape[1] > dims else ""
    fig.suptitle(f"original vs decoded per dimension{more}; x = step", fontsize=10)
    plt.close(fig)
    return fig


def dct_figure(c: compute.Comparison):
    """DCT coefficients x scale before and after rounding (dimension x frequency); rounded zeros are white."""
    names = compute.dim_names(c.actions.shape[1])
    before, after = c.fast.coefficients.T, c.fast.rounded.T.astype(float)  # (D, T): dimension x frequency
    vmax = max(1.0, float(np.abs(before).max()))
    norm = SymLogNorm(linthresh=0.5, vmin=-vmax, vmax=vmax)
    height = 1.4 + 0.22 * before.shape[0]
    fig, axes = plt.subplots(2, 1, figsize=(8, 2 * height), layout="constrained")
    panels = ((before, "DCT-II coefficients x scale, before rounding"),
              (np.ma.masked_equal(after, 0), f"after rounding: {np.count_nonzero(after)} of {after.size} "
               "non-zero (white = 0, which BPE merges into long runs)"))
    for ax, (data, title) in zip(axes, panels, strict=True):
        im = ax.imshow(data, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        if len(names) <= 16:
            ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("frequency index k (0 = the chunk's mean)", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="coefficient x scale (symmetric log)")
    plt.close(fig)
    return fig


def sweep_figure(c: compute.Comparison, sweep: list[dict[str, Any]]):
    """The trade-off curve: FAST tokens against error over scales; bin256 as one point."""
    tokens = [r["num_tokens"] for r in sweep]
    mean = [100 * r["relative_mean_error"] for r in sweep]
    worst = [100 * r["relative_max_error"] for r in sweep]
    bin_mean, bin_max = compute.relative_error(c.actions, c.bins.decoded)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
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
    ax.set_title("FAST scale sweep (point labels = scale)", fontsize=10)
    ax.legend(fontsize=7)
    plt.close(fig)
    return fig


def noise_figure(noise_rows: list[dict[str, Any]], freq_rows: list[dict[str, Any]] | None):
    """Token count against added noise (this chunk) and against control frequency (generated motion)."""
    fig, axes = plt.subplots(1, 2 if freq_rows else 1, figsize=(10 if freq_rows else 6, 3.4),
                             layout="constrained", squeeze=False)
    ax = axes[0, 0]
    levels = [r["noise"] for r in noise_rows]
    ax.plot(levels, [r["fast_tokens"] for r in noise_rows], "o-", color=FAST_COLOR, label="FAST")
    ax.plot(levels, [r["bin256_tokens"] for r in noise_rows], "-", color=BIN_COLOR, label="bin256 (T·D)")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("added noise (std relative to each dimension's std)")
    ax.set_ylabel("tokens per chunk")
    ax.set_title("noise spreads energy over all frequencies", fontsize=9)
    ax.legend(fontsize=7)
    if freq_rows:
        ax = axes[0, 1]
        hz = [r["hz"] for r in freq_rows]
        ax.plot(hz, [r["fast_tokens"] for r in freq_rows], "o-", color=FAST_COLOR, label="FAST")
        ax.plot(hz, [r["bin256_tokens"] for r in freq_rows], "o-", color=BIN_COLOR, label="bin256 (T·D)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("control frequency (Hz), same 1-second motion")
        ax.set_ylabel("tokens per chunk")
        ax.set_title("denser sampling of a smooth motion", fontsize=9)
        ax.legend(fontsize=7)
    plt.close(fig)
    return fig


def perturb_figure(out: dict[str, Any]):
    """|decoded change| after changing one token, as % of each dimension's range (step x dimension).
    Each panel has its own colour scale: bin256's single change would vanish on FAST's."""
    c = out["comparison"]
    names = compute.dim_names(c.actions.shape[1])
    span = np.ptp(c.actions, 0)
    span = np.where(span > 0, span, 1.0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.7 + 0.25 * len(names)), layout="constrained", sharey=True)
    for ax, method in zip(axes, ("bin256", "fast"), strict=True):
        o = out[method]
        change = 100 * (o["change"] / span).T  # (D, T), % of range
        im = ax.imshow(change, aspect="auto", cmap="magma_r", vmin=0, vmax=max(1e-9, change.max()),
                       interpolation="nearest")
        ax.set_title(f"{method}: token {o['index']}, id {o['old_id']} -> {o['new_id']}: {o['changed_entries']} "
                     f"values move, max {change.max():.2g}%", fontsize=9)
        ax.set_xlabel("step")
        if len(names) <= 16:
            ax.set_yticks(range(len(names)), names, fontsize=7)
        fig.colorbar(im, ax=ax, label="|decoded change|, % of range")
    plt.close(fig)
    return fig


@user_errors
def render(actions: str, scale: float, bin_norm: str, result: dict[str, Any], source: str, seed: float,
           hz: float, noise: float):
    """Every view of the comparison (recomputed from the chunk in milliseconds)."""
    x = A.parse_actions(actions)
    c = compute.compare(x, compute.check_scale(scale), bin_norm)
    freq_rows = None
    if source == SOURCES[0]:  # the same generated motion at other control frequencies
        seconds = x.shape[0] / float(hz)
        freq_rows = compute.frequency_sweep(as_int(seed, "seed"), seconds=seconds, noise=float(noise),
                                            scale=c.fast.scale)
    return (summary_markdown(c), table(c), decoded_figure(c), dct_figure(c),
            sweep_figure(c, result["scale_sweep"]), noise_figure(result["noise_sweep"], freq_rows),
            token_markdown(c))


@user_errors
def render_perturb(actions: str, scale: float, index: float, delta: float, bin_norm: str):
    out = compute.perturb(A.parse_actions(actions), compute.check_scale(scale), as_int(index, "token index"),
                          as_int(delta, "delta"), bin_norm)
    b, f = out["bin256"], out["fast"]
    lines = [
        f"**bin256:** token {b['index']} went {b['old_id']} -> {b['new_id']}: exactly one value moved, by one "
        f"bin width ({b['max_change']:.3g}, {100 * b['max_change_relative']:.2f}% of its range).",
        f"**FAST:** token {f['index']} went {f['old_id']} -> {f['new_id']}: it stood for coefficients "
        f"{f['old_piece']} and now stands for {f['new_piece']}. {f['changed_coefficients']} rounded coefficients "
        f"changed and {f['changed_entries']} of {out['comparison'].actions.size} decoded values moved, the largest "
        f"by {f['max_change']:.3g} ({100 * f['max_change_relative']:.1f}% of its range).",
    ]
    if f["note"]:
        lines.append(f"**The perturbed FAST sequence is not a valid chunk:** {f['note']}. A VLA that emits it "
                     "gets actions from a repaired grid; FAST's reference decoder returns zeros instead.")
    else:
        lines.append("The perturbed FAST sequence still decodes to a full grid of coefficients; a neighbouring "
                     "id is still an unrelated value (with the zig-zag map, id + 1 often flips a sign).")
    return "\n\n".join(lines), perturb_figure(out)


# --------------------------------------------------------------------------------------
#                                   Layout
# --------------------------------------------------------------------------------------

def _slider_max(actions: str):
    """The token-index slider spans the bin256 sequence (T·D tokens); FAST indices past its end clip."""
    try:
        n = A.parse_actions(actions).size
    except ValueError:
        return gr.update()
    return gr.update(maximum=max(1, n - 1))


def build() -> gr.Blocks:
    default_chunk = A.to_json(A.generate_chunk(3, 50, 50.0, 0.0), decimals=8)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                gr.Markdown("**1. Action chunk.** Generated: six end-effector deltas (sums of slow sinusoids) plus "
                            "an open/closed gripper, as in Open X-Embodiment data. Or upload a T x D file "
                            f"(CSV, .npy, JSON; at most {A.MAX_STEPS} steps and {A.MAX_DIMS} dimensions), or paste "
                            "into the box on the right.")
                source = gr.Radio(list(SOURCES), value=SOURCES[0], label="source")
                seed = gr.Number(3, precision=0, label="seed")
                steps = gr.Slider(2, A.MAX_STEPS, value=50, step=1, label="steps T")
                hz = gr.Slider(5, 500, value=50, step=1, label="control frequency (Hz)")
                noise = gr.Slider(0, 1, value=0.0, step=0.01, label="noise (std relative to each dimension's std)")
                file = gr.File(label="upload .csv / .npy / .json", file_types=[".csv", ".npy", ".json", ".txt"],
                               type="filepath")
                gr.Markdown("**2. Tokenizers.** FAST's `scale` multiplies the DCT coefficients before rounding "
                            "(FAST's default is 10). bin256's bin range per dimension:")
                scale = gr.Slider(0.5, 200, value=compute.DEFAULT_SCALE, step=0.5, label="FAST scale")
                bin_norm = gr.Radio(BIN_NORM_CHOICES, value="minmax", label="bin256 range")
                go = gr.Button("Tokenize both", variant="primary")
            with gr.Column(scale=2):
                actions = gr.Textbox(default_chunk, lines=5, max_lines=8, label="action chunk (JSON: T lists of D "
                                     "numbers, or CSV; filled in by the source, editable)")
                summary = gr.Markdown()
                gr.Markdown("**Per dimension:** range (max − min), bin width, and max / mean |error| in the "
                            "dimension's own units. Binning's error is at most half a bin width; FAST's comes from "
                            "rounding and spreads over the whole chunk. The last column counts non-zero rounded "
                            "DCT coefficients: the gripper's jumps need many.")
                result_table = gr.Dataframe(headers=TABLE_HEADERS, label="bin256 vs FAST", wrap=True)
        gr.Examples(
            [[SOURCES[0], 3, 50, 50, 0.0, 10.0], [SOURCES[0], 3, 50, 50, 0.2, 10.0],
             [SOURCES[0], 3, 50, 50, 0.0, 2.0], [SOURCES[0], 3, 50, 50, 0.0, 50.0],
             [SOURCES[0], 3, 200, 200, 0.0, 10.0], [SOURCES[0], 11, 15, 15, 0.0, 10.0]],
            inputs=[source, seed, steps, hz, noise, scale],
            label="try (then press Tokenize both): default, noisy, coarse scale, fine scale, 200 Hz, "
                  "15 Hz (DROID's rate)")

        gr.Markdown("**Original vs decoded.** The bin staircase hugs the curve to within half a bin; FAST is smooth "
                    "but rounds away small high-frequency detail. Steps in the gripper ring (Gibbs) after FAST.")
        decoded_plot = gr.Plot(label="original vs decoded", show_label=False)
        with gr.Row():
            with gr.Column():
                gr.Markdown("**DCT coefficients.** A smooth motion puts its energy in the first few frequencies; "
                            "after scale-and-round most of the grid is zero, which is what BPE compresses.")
                dct_plot = gr.Plot(label="DCT heatmap", show_label=False)
            with gr.Column():
                gr.Markdown("**The `scale` trade-off.** Each point is FAST at one scale on this chunk: a larger "
                            "scale keeps more detail and costs more tokens. Errors relative to each dimension's "
                            "range so different units share an axis.")
                sweep_plot = gr.Plot(label="scale sweep", show_label=False)
        gr.Markdown("**Smoothness.** Left: noise added to this chunk (the gripper and other two-valued dimensions "
                    "stay clean). Right, for generated chunks: the same motion at other control frequencies; "
                    "bin256 grows with T, FAST much less (the effect behind FAST's gains at high frequency).")
        noise_plot = gr.Plot(label="token count vs noise and control frequency", show_label=False)
        with gr.Accordion("Token ids", open=False):
            tokens_md = gr.Markdown()
        with gr.Accordion("Raw comparison (JSON, as the API returns it)", open=False):
            result = gr.JSON(label="comparison")

        gr.Markdown("## Brittleness: change one token\nA VLA that samples one wrong token gets a different chunk. "
                    "Add `delta` to token `index` in each sequence and decode. A bin token only moves its own "
                    "value; a FAST token stands for several coefficients, each spread over every step, and a "
                    "token of a different length shifts every coefficient after it.")
        with gr.Row():
            index = gr.Slider(0, 349, value=30, step=1, label="token index")
            delta = gr.Number(1, precision=0, label="delta (added to the token id)")
            perturb_btn = gr.Button("Perturb one token", variant="secondary")
        perturb_md = gr.Markdown()
        perturb_plot = gr.Plot(label="decoded change", show_label=False)
        with gr.Accordion("Raw perturbation (JSON)", open=False):
            perturb_json = gr.JSON(label="perturbation")

        gr.Markdown("## Encode through the API\n`vla_tokenizer_encode(actions, method, scale)` returns the tokens, "
                    "`num_tokens`, the decoded chunk (T x D) and `max_abs_error` / `mean_abs_error` in the input's "
                    "units; it uses the chunk in the box above. bin256 there uses min-max ranges.")
        with gr.Row():
            method = gr.Radio(list(compute.METHODS), value="fast", label="method")
            api_scale = gr.Number(compute.DEFAULT_SCALE, label=f"scale (used by fast; 0 < scale ≤ {compute.MAX_SCALE:g})")
            encode_btn = gr.Button("Encode")
        encoded = gr.JSON(label="result")
        gr.Markdown(CITATIONS)

        render_in = [actions, scale, bin_norm, result, source, seed, hz, noise]
        render_out = [summary, result_table, decoded_plot, dct_plot, sweep_plot, noise_plot, tokens_md]
        go.click(chunk, [source, seed, steps, hz, noise, file, actions], actions, api_name=f"{SLUG}_chunk").success(
            compare, [actions, scale, bin_norm], result, api_name=f"{SLUG}_compare").success(
            render, render_in, render_out, api_visibility="private").success(
            _slider_max, actions, index, api_visibility="private")
        demo.load(compare, [actions, scale, bin_norm], result, api_visibility="private").success(
            render, render_in, render_out, api_visibility="private")

        perturb_btn.click(perturb, [actions, scale, index, delta, bin_norm], perturb_json,
                          api_name=f"{SLUG}_perturb").success(
            render_perturb, [actions, scale, index, delta, bin_norm], [perturb_md, perturb_plot],
            api_visibility="private")
        encode_btn.click(encode, [actions, method, api_scale], encoded, api_name=f"{SLUG}_encode")
    return demo


if __name__ == "__main__":
    build().launch()
