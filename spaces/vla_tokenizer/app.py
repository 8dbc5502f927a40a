"""Robot actions as tokens: 256-bin tokenization against FAST (DCT + BPE) on the same action chunk.

Thin glue. The hub imports this module and calls ``build()`` at start-up, so nothing heavy loads here:
``compute`` (scipy, and torch through the model loader) and ``figures`` (matplotlib) are imported by
the handlers on first use, and what the page states about the shipped BPE is read from its files
(``options.tokenizer()``), never typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from hub.registry import get as tutorial
from shared import actions as A
from shared import validate as check
from shared.ui import downloads, page, raw_values, user_errors, with_downloads

from .options import (
    BOUNDS_CHOICES,
    MAX_SCALE,
    METHODS,
    N_BINS,
    SOURCES,
    TABLE_HEADERS,
    TOKENIZER,
    tokenizer,
)

if TYPE_CHECKING:
    from .compute import Comparison

SLUG = "vla_tokenizer"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (TOKENIZER,)


def _compute():
    from . import compute

    return compute


def _figures():
    from . import figures

    return figures


def intro() -> str:
    t = tokenizer()
    m = t.metrics
    return f"""
## {TUTORIAL.emoji} {TUTORIAL.title}
An autoregressive vision-language-action model (VLA) writes robot actions as tokens. Here the same
action chunk (T steps x D dimensions) goes through the two tokenizers such models use, and both are decoded back:

- **bin256** (RT-2, Brohan et al., 2023; OpenVLA, Kim et al., 2024): each dimension's range [lo, hi] is cut
  into {N_BINS} equal bins, token = clip(⌊(a − lo) / (hi − lo) · {N_BINS}⌋, 0, {N_BINS - 1}), decoded to the bin
  centre. **One token per dimension per step: T·D tokens. The vocabulary is {N_BINS} tokens shared by all
  dimensions**, not {N_BINS}^D (OpenVLA overwrites {N_BINS} rarely used Llama tokens with them). Inside [lo, hi]
  the error is at most half a bin width; a value outside is clipped to the first or last bin, and its error
  grows with its distance from the bound.
- **FAST** (Pertsch et al., 2025, [arXiv:2501.09747](https://arxiv.org/abs/2501.09747)): normalise so lo → −1
  and hi → +1, DCT-II along time per dimension, multiply by `scale` and round, flatten low frequencies first
  across dimensions, then a byte-level BPE merges frequent runs (mostly runs of zero coefficients). The BPE
  here has a **vocabulary of {t.vocab_size}** and was trained at scale {t.scale:g} on {t.corpus_chunks:,} generated
  chunks, each normalised by its own {t.percentiles} percentiles (`python -m shared.training fast-bpe-actions`).
  On held-out smooth 50x7 chunks it averages {m['mean_tokens_50x7_noise0']:g} tokens, {m['compression_vs_bin256_noise0']:g}x
  fewer than bin256's {m['bin256_tokens_50x7']}. It is not the FAST+ tokenizer trained on 1M real chunks.

**Bounds.** OpenVLA and FAST take lo and hi from the *training set*: the {t.percentiles} percentiles of each
dimension over all its actions, computed once and stored with the model. Choose:
- **per-chunk bounds**: bin256 takes the chunk's own min and max (nothing is clipped) and FAST the chunk's own
  {t.percentiles} percentiles, as the BPE here was trained. A deployed VLA cannot do this: it would have to
  emit the bounds too.
- **dataset bounds**: both take the {t.percentiles} percentiles over every step of the {t.corpus_chunks:,} chunks
  the BPE was trained on (computed once per process). bin256 clips values outside them, as OpenVLA does;
  FAST lets them go past ±1, as openpi (π0-FAST's code) does. The BPE saw per-chunk text, so its merges fit
  that text best.

Rounding is FAST's only lossy step: `scale` trades accuracy against length (a larger scale keeps more
coefficient detail and needs more tokens). Errors below are in the units of the input.
"""


CITATIONS = """
**Sources.** Brohan et al., *RT-2: Vision-Language-Action Models Transfer Web Knowledge to Robotic Control*
(2023). Kim et al., *OpenVLA: An Open-Source Vision-Language-Action Model* (2024): 256 bins between the 1st
and 99th percentiles of each dimension over the training data, decoded to bin centres; its code computes
`np.quantile(actions, 0.01, axis=0)` over all of a dataset's actions and clips the normalised actions to
[−1, 1] (`prismatic/vla/datasets/rlds/utils/data_utils.py`, openvla/openvla at c8f03f4). Pertsch et al.,
*FAST: Efficient Action Tokenization for Vision-Language-Action Models* (2025): quantile normalisation with
the training data's 1st and 99th percentiles, DCT + scale/round + BPE, default scale 10, vocabulary 1024;
its model card asks for chunks "pre-normalized to a range of [-1...1] (we use quantile normalization for
this step -- check our paper)" (huggingface.co/physical-intelligence/fast). openpi's `docs/norm_stats.md`:
"The statistics used for normalization are computed over the training data and stored alongside the model
checkpoint"; its `Normalize` maps q01/q99 to ±1 without clipping (`src/openpi/transforms.py`). FAST's
reference code maps each integer to a character by shifting by the training minimum and clamping lower
values; this page uses a zig-zag map instead so every integer keeps its own character and decoding is exact
at any scale. Users report what the brittleness demo shows: small changes to FAST tokens decode to very
different actions (UniVLA issue #26), and decoding fails when a sequence holds the wrong number of
coefficients (openpi issue #299).
"""


# --------------------------------------------------------------------------------------
#                                   Handlers (public API)
# --------------------------------------------------------------------------------------

@user_errors
def chunk(source: str, seed: float, steps: float, hz: float, noise: float, text: str | None) -> str:
    """The action chunk as JSON text: generated, or parsed from the box (pasted, or filled by an upload)."""
    if check.choice(source, "source", SOURCES) == SOURCES[0]:
        actions = A.generate_chunk(seed, steps, hz, noise)  # validates each argument
    else:
        actions = A.parse_actions(text or "")
    return A.to_json(actions, decimals=8)


@user_errors
def read_file(path: str | None) -> tuple[str, str]:
    """An uploaded .csv, .npy, .json or .txt file -> the chunk as JSON text for the box, and the box as source."""
    if not path:
        raise ValueError("upload a .csv, .npy or .json file of shape (T, D)")
    return A.to_json(A.parse_file(path), decimals=8), SOURCES[1]


@user_errors
def compare(actions: str, scale: float, bounds: str, source: str, seed: float, hz: float, noise: float,
            progress=gr.Progress()):
    """Both tokenizers on one chunk: summary, per-dimension table, figures, token ids and the numbers as JSON
    (counts, ratio, errors, clipped values, scale / noise / control-frequency sweeps). ``source``, ``seed``,
    ``hz`` and ``noise`` say how the chunk was generated: with ``source="generate"`` the same motion is also
    resampled at other control frequencies (its duration is T / hz)."""
    progress(0, desc="tokenizing (the first call loads FAST's BPE)")
    C = _compute()
    x = A.parse_actions(actions)
    scale, bounds = C.check_scale(scale), C.check_bounds(bounds)
    generated = check.choice(source, "source", SOURCES) == SOURCES[0]
    if generated:
        seed = check.integer(seed, "seed", 0, A.SEED_MAX)
        hz = check.number(hz, "control frequency (Hz)", 1, 1000)
        noise = check.number(noise, "noise", 0, 5)
    bpe = C.load_bpe()
    if bounds == "dataset":
        progress(0.2, desc=f"dataset bounds over {tokenizer().corpus_chunks:,} corpus chunks (once per process)")
    c = C.compare(x, scale, bounds, bpe)
    progress(0.4, desc="scale, noise and control-frequency sweeps")
    sweep = C.scale_sweep(x, bounds=bounds, bpe=bpe)
    noise_rows = C.noise_sweep(x, scale, bounds=bounds, bpe=bpe)
    seconds = x.shape[0] / hz if generated else None
    freq_rows = C.frequency_sweep(seed, seconds, noise=noise, scale=scale, bounds=bounds, bpe=bpe) if generated else None
    progress(0.8, desc="drawing")
    F = _figures()
    result = _result(c, sweep, noise_rows, freq_rows)
    return (summary_markdown(c), table(c), F.decoded_figure(c), F.dct_figure(c), F.sweep_figure(c, sweep),
            F.noise_figure(noise_rows, freq_rows, seconds), token_markdown(c), result)


@user_errors
def encode(actions: str, method: str, scale: float) -> dict[str, Any]:
    """Tokenize a chunk with one method (per-chunk bounds); tokens, num_tokens, decoded (T x D) and errors in
    input units."""
    C = _compute()
    return C.encode(A.parse_actions(actions), C.check_method(method), C.check_scale(scale))


@user_errors
def perturb(actions: str, scale: float, index: float, delta: float, bounds: str, progress=gr.Progress()):
    """Change one token id by ``delta`` in each tokenizer's sequence: what moved (text), where (figure), and
    the numbers (JSON)."""
    progress(0, desc="tokenizing (the first call loads FAST's BPE)")
    C = _compute()
    out = C.perturb(A.parse_actions(actions), C.check_scale(scale), index, delta, C.check_bounds(bounds))
    numbers = {name: {k: v for k, v in out[name].items() if k not in ("change", "decoded")}
               for name in ("bin256", "fast")}
    return perturb_markdown(out), _figures().perturb_figure(out), numbers


# --------------------------------------------------------------------------------------
#                                   Views (private)
# --------------------------------------------------------------------------------------

def _result(c: Comparison, sweep: list, noise_rows: list, freq_rows: list | None) -> dict[str, Any]:
    C = _compute()
    return {
        "shape": list(c.actions.shape),
        "dimensions": C.dim_names(c.actions.shape[1]),
        "bounds": c.bounds,
        "bin256": {"num_tokens": int(c.bins.tokens.size), "vocab_size": N_BINS, "tokens": c.bins.flat_tokens,
                   "lo": c.bins.lo.tolist(), "hi": c.bins.hi.tolist(), "bin_width": c.bins.width.tolist(),
                   **c.bin_errors},
        "fast": {"num_tokens": len(c.fast.tokens), "vocab_size": C.FAST_VOCAB, "scale": c.fast.scale,
                 "tokens": c.fast.tokens, "lo": c.fast.lo.tolist(), "hi": c.fast.hi.tolist(),
                 "values_beyond_bounds": int(c.fast.outside.sum()),
                 "nonzero_coefficients": int((c.fast.rounded != 0).sum()), **c.fast_errors},
        "compression_ratio": c.ratio,
        "scale_sweep": sweep,
        "noise_sweep": noise_rows,
        "frequency_sweep": freq_rows,
    }


def _bounds_line(c: Comparison) -> str:
    t = tokenizer()
    if c.bounds == "dataset":
        return (f"**Bounds: dataset**, the {t.percentiles} percentiles over the {t.corpus_chunks:,} corpus chunks, "
                "for both tokenizers.")
    return (f"**Bounds: per chunk**, bin256 each dimension's min and max, FAST its {t.percentiles} percentiles "
            "(the BPE's training text).")


def summary_markdown(c: Comparison) -> str:
    t, d = c.actions.shape
    b, f = c.bin_errors, c.fast_errors
    nonzero = int((c.fast.rounded != 0).sum())
    if b["clipped_values"]:
        clipped = (f"**{b['clipped_values']} of {t * d} values lie outside the bounds** and were clipped to the "
                   f"first or last bin: their max |error| is {b['max_abs_error_clipped']:.3g}.")
    else:
        clipped = "No value lies outside the bounds, so none was clipped."
    beyond = int(c.fast.outside.sum())
    return (
        f"**Chunk:** T = {t} steps x D = {d} dimensions. {_bounds_line(c)}  \n"
        f"**bin256:** **{c.bins.tokens.size} tokens** (T·D), ids from a vocabulary of {N_BINS} shared tokens; "
        f"max |error| inside the bounds {b['max_abs_error_inside_bounds']:.3g} (at most half a bin width there), "
        f"mean {b['mean_abs_error']:.3g}. {clipped}  \n"
        f"**FAST, scale {c.fast.scale:g}:** **{len(c.fast.tokens)} tokens**, ids from a BPE vocabulary of "
        f"{_compute().FAST_VOCAB}; {nonzero} of {t * d} rounded DCT coefficients are non-zero; "
        f"max |error| {f['max_abs_error']:.3g}, mean {f['mean_abs_error']:.3g}"
        + (f"; {beyond} values beyond the bounds were normalised past ±1 (FAST does not clip)." if beyond else ".")
        + "  \n"
        f"**Compression:** FAST needs **{c.ratio:.2f}x fewer tokens** than bin256 "
        f"({c.bins.tokens.size} / {len(c.fast.tokens)}; {t * d / len(c.fast.tokens):.1f} coefficients per "
        "FAST token on average)."
    )


def table(c: Comparison) -> list[list[Any]]:
    rows = _compute().table_rows(c, _compute().dim_names(c.actions.shape[1]))
    return [[r[0], *[float(f"{v:.3g}") for v in r[1:]]] for r in rows]  # 3 significant digits keep it narrow


def token_markdown(c: Comparison) -> str:
    t, d = c.bins.tokens.shape
    shown = min(t, 20)
    bins = "\n".join(" ".join(f"{v:3d}" for v in row) for row in c.bins.tokens[:shown])
    more = f"\n… {t - shown} more steps" if t > shown else ""
    return (
        f"**bin256 ids** (one row per step, one column per dimension):\n```\n{bins}{more}\n```\n"
        f"**FAST ids** ({len(c.fast.tokens)}):\n```\n{' '.join(map(str, c.fast.tokens))}\n```"
    )


def perturb_markdown(out: dict[str, Any]) -> str:
    """What changing one token did, in the numbers of this edit (never a fixed 'one bin')."""
    c = out["comparison"]
    b, f = out["bin256"], out["fast"]
    name = _compute().dim_names(c.actions.shape[1])[b["dimension"]]
    where = f"token {b['index']} (step {b['step']}, {name})"
    if b["changed_entries"] == 0:
        bin_line = (f"**bin256:** {where} stayed at id {b['old_id']}: adding or subtracting the delta leaves "
                    f"[0, {N_BINS - 1}], so the id was clipped back and no value moved.")
    else:
        moved = b["bins_moved"]
        how = ""
        if b["reflected"]:
            clipped_too = abs(moved) != abs(b["requested_delta"])
            how = (f"; adding {b['requested_delta']} would leave [0, {N_BINS - 1}], so it was subtracted"
                   + (" and clipped to that range" if clipped_too else ""))
        bin_line = (f"**bin256:** {where} went {b['old_id']} -> {b['new_id']} ({moved:+d} bin"
                    f"{'' if abs(moved) == 1 else 's'}{how}). Exactly one value moved, by {abs(moved)} x its bin "
                    f"width {b['bin_width']:.3g} = {b['max_change']:.3g} ({100 * b['max_change_relative']:.2f}% of "
                    "its range).")
    clipped = (f" FAST has only {len(c.fast.tokens)} tokens, so its last one was changed."
               if f["index_clipped"] else "")
    lines = [
        bin_line,
        f"**FAST:** token {f['index']} went {f['old_id']} -> {f['new_id']}:{clipped} it stood for coefficients "
        f"{f['old_piece']} and now stands for {f['new_piece']}. {f['changed_coefficients']} rounded coefficients "
        f"changed and {f['changed_entries']} of {c.actions.size} decoded values moved, the largest "
        f"by {f['max_change']:.3g} ({100 * f['max_change_relative']:.1f}% of its range).",
    ]
    if f["note"]:
        lines.append(f"**The perturbed FAST sequence is not a valid chunk:** {f['note']}. A VLA that emits it "
                     "gets actions from a repaired grid; FAST's reference decoder returns zeros instead.")
    else:
        lines.append("The perturbed FAST sequence still decodes to a full grid of coefficients; a neighbouring "
                     "id is still an unrelated value (with the zig-zag map, id + 1 often flips a sign).")
    return "\n\n".join(lines)


def _slider_max(actions: str):
    """The token-index slider spans the bin256 sequence (T·D tokens); FAST indices past its end take its last."""
    try:
        n = A.parse_actions(actions).size
    except ValueError:
        return gr.update()
    return gr.update(maximum=max(1, n - 1))


# --------------------------------------------------------------------------------------
#                                   Layout
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    """The page's components and events, created in the current Blocks context: ``build()`` wraps them
    in a Blocks of their own; the hub renders them straight into its tab (one build per space, and no
    Blocks of its own, whose set-up costs gradio about 0.25 s: issue 14's start-up budget)."""
    scale_default = tokenizer().scale
    default_chunk = A.to_json(A.generate_chunk(3, 50, 50.0, 0.0), decimals=8)
    gr.Markdown(intro())
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            gr.Markdown("**1. Action chunk.** Generated: six end-effector deltas (sums of slow sinusoids) plus "
                        "an open/closed gripper, as in Open X-Embodiment data. Or upload a T x D file "
                        f"(CSV, .npy, JSON; at most {A.MAX_STEPS} steps and {A.MAX_DIMS} dimensions) into the "
                        "box on the right, or paste into it.")
            source = gr.Radio(list(SOURCES), value=SOURCES[0], label="source")
            seed = gr.Number(3, precision=0, label="seed")
            steps = gr.Slider(A.MIN_STEPS, A.MAX_STEPS, value=50, step=1, label="steps T")
            hz = gr.Slider(5, 500, value=50, step=1, label="control frequency (Hz)")
            noise = gr.Slider(0, 1, value=0.0, step=0.01, label="noise (std relative to each dimension's std)")
            file = gr.File(label="upload .csv / .npy / .json (fills the box)",
                           file_types=[".csv", ".npy", ".json", ".txt"], type="filepath")
            gr.Markdown(f"**2. Tokenizers.** FAST's `scale` multiplies the DCT coefficients before rounding "
                        f"(the BPE here was trained at {scale_default:g}). The bounds [lo, hi] of each "
                        "dimension, for both tokenizers:")
            scale = gr.Slider(0.5, 200, value=scale_default, step=0.5, label="FAST scale")
            bounds = gr.Radio(BOUNDS_CHOICES, value="chunk", label="bounds")
            go = gr.Button("Tokenize both", variant="primary")
        with gr.Column(scale=2):
            actions = gr.Textbox(default_chunk, lines=5, max_lines=8, label="action chunk (JSON: T lists of D "
                                 "numbers, or CSV; filled in by the source, editable)")
            summary = gr.Markdown()
            gr.Markdown("**Per dimension:** range (max − min), bin width, and |error| in the dimension's own "
                        "units. Inside the bounds binning's error is at most half a bin width; values outside "
                        "are clipped (counted, with their own max error). FAST's error comes from rounding and "
                        "spreads over the whole chunk. The last column counts non-zero rounded DCT "
                        "coefficients: the gripper's jumps need many.")
            result_table = gr.Dataframe(headers=TABLE_HEADERS, label="bin256 vs FAST", wrap=True)
    rows = [(3, 50, 50, 0.0, scale_default), (3, 50, 50, 0.2, scale_default), (3, 50, 50, 0.0, 2.0),
            (3, 50, 50, 0.0, 50.0), (3, 200, 200, 0.0, scale_default), (11, 15, 15, 0.0, scale_default)]
    gr.Examples(
        [[SOURCES[0], *row, "chunk"] for row in rows] + [[SOURCES[0], 3, 10, 5, 0.0, scale_default, "dataset"]],
        inputs=[source, seed, steps, hz, noise, scale, bounds],
        label="try (then press Tokenize both): default, noisy, coarse scale, fine scale, 200 Hz, "
              "15 Hz (DROID's rate), 5 Hz with dataset bounds (steps larger than the corpus': bin256 clips)")

    gr.Markdown("**Original vs decoded.** The bin staircase hugs the curve to within half a bin inside the "
                "bounds (crosses mark clipped values); FAST is smooth but rounds away small high-frequency "
                "detail. Steps in the gripper ring (Gibbs) after FAST.")
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
                "stay clean). Right, for generated chunks: the same motion, as long as this chunk (T / Hz "
                "seconds), at other control frequencies; bin256 grows with T, FAST much less (the effect "
                "behind FAST's gains at high frequency).")
    noise_plot = gr.Plot(label="token count vs noise and control frequency", show_label=False)
    with gr.Accordion("Token ids", open=False):
        tokens_md = gr.Markdown()
    with gr.Accordion("Raw comparison (JSON, as the API returns it)", open=False):
        result = gr.JSON(label="comparison")
    compare_files = downloads()

    gr.Markdown("## Brittleness: change one token\nA VLA that samples one wrong token gets a different chunk. "
                "Add `delta` to token `index` in each sequence and decode. A bin token only moves its own "
                "value, by as many bin widths as its id moved; a FAST token stands for several coefficients, "
                "each spread over every step, and a token of a different length shifts every coefficient "
                "after it.")
    with gr.Row():
        index = gr.Slider(0, 349, value=30, step=1, label="token index")
        delta = gr.Number(1, precision=0, label="delta (added to the token id)")
        perturb_btn = gr.Button("Perturb one token", variant="secondary")
    perturb_md = gr.Markdown()
    perturb_plot = gr.Plot(label="decoded change", show_label=False)
    with gr.Accordion("Raw perturbation (JSON)", open=False):
        perturb_json = gr.JSON(label="perturbation")
    perturb_files = downloads()

    gr.Markdown("## Encode through the API\n`vla_tokenizer_encode(actions, method, scale)` returns the tokens, "
                "`num_tokens`, the decoded chunk (T x D) and `max_abs_error` / `mean_abs_error` in the input's "
                "units; it uses the chunk in the box above, with per-chunk bounds.")
    with gr.Row():
        method = gr.Radio(list(METHODS), value="fast", label="method")
        api_scale = gr.Number(scale_default, label=f"scale (used by fast; 0 < scale ≤ {MAX_SCALE:g})")
        encode_btn = gr.Button("Encode")
    encoded = gr.JSON(label="result")
    encode_files = downloads()
    gr.Markdown(CITATIONS)

    # Value inputs reach the handlers as sent (raw_values); the File upload needs gradio's preprocessing
    # (raw_values refuses it), so it is an event of its own that fills the box.
    compare_in = [actions, scale, bounds, source, seed, hz, noise]
    compare_out = [summary, result_table, decoded_plot, dct_plot, sweep_plot, noise_plot, tokens_md, result]
    chunked = raw_values(go.click, chunk, [source, seed, steps, hz, noise, actions], actions,
                         api_name=f"{SLUG}_chunk")
    compared = raw_values(chunked.success, with_downloads(compare, compare_out), compare_in,
                          compare_out + [compare_files], api_name=f"{SLUG}_compare")
    raw_values(compared.success, _slider_max, [actions], index, api_visibility="private")
    raw_values(demo.load, with_downloads(compare, compare_out), compare_in, compare_out + [compare_files],
               api_visibility="private")
    file.upload(read_file, file, [actions, source], api_name=f"{SLUG}_read_file")

    perturb_out = [perturb_md, perturb_plot, perturb_json]
    raw_values(perturb_btn.click, with_downloads(perturb, perturb_out), [actions, scale, index, delta, bounds],
               perturb_out + [perturb_files], api_name=f"{SLUG}_perturb")
    # The page's button also writes the JSON file; API callers keep encode's documented contract (one dict).
    raw_values(encode_btn.click, with_downloads(encode, [encoded]), [actions, method, api_scale],
               [encoded, encode_files], api_visibility="private")
    gr.api(encode, api_name=f"{SLUG}_encode")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
