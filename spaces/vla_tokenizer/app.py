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
    BIN_COUNTS,
    BOUNDS_CHOICES,
    EULER_MAX,
    FLOW_TIMES_DEFAULT,
    FLOW_TIMES_MAX,
    HELDOUT_DEFAULT,
    HELDOUT_MAX,
    MAX_IMAGE_SIZE,
    MAX_PROMPT_TOKENS,
    MAX_SCALE,
    METHODS,
    N_BINS,
    OPENVLA_IMAGE_SIZE,
    OPENVLA_PATCH,
    OPENVLA_PROMPT,
    PI0_ACTION_DIM,
    PI0_CAMERAS,
    PI0_EULER_STEPS,
    PI0_HORIZON,
    PI0_PROMPT_TOKENS,
    PROMPT_TOKENS_DEFAULT,
    SEQUENCE_HEADERS,
    SOURCES,
    TABLE_HEADERS,
    THREE_HEADERS,
    TOKENIZER,
    TRADEOFF_HEADERS,
    VQ_TOKENIZER,
    tokenizer,
    vq_facts,
)

if TYPE_CHECKING:
    from .compute import Comparison

SLUG = "vla_tokenizer"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (TOKENIZER, VQ_TOKENIZER)


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


CITATIONS_MORE = """
**Sources of the tabs above.** OpenVLA's sequence, read in its code (openvla/openvla at c8f03f4): the base VLM
`prism-dinosiglip-224px+7b` (`prismatic/conf/vla.py`) fuses DINOv2 ViT-L/14 and SigLIP So400m/14 at 224 px by
concatenating each patch's features (`torch.cat([dino_patches, siglip_patches], dim=2)`,
`prismatic/models/backbones/vision/dinosiglip_vit.py`), so (224 / 14)² = 256 patch tokens; they are inserted right
after `<BOS>` (`prismatic/models/vlms/prismatic.py`); the prompt is "In: What action should the robot take to
{instruction}?\nOut: " (`prismatic/models/backbones/llm/prompting/base_prompter.py`, `prismatic/vla/datasets/datasets.py`) and the loss covers the action
tokens and the stop token. π0 (Black et al., *π0: A Vision-Language-Action Flow Model for General Robot Control*,
2024), read in openpi (Physical-Intelligence/openpi at 15a9616): three 224x224 camera images
(`models/model.py`), SigLIP So400m/14, one state token and the action horizon in the suffix, 10 Euler steps by
default (`models/pi0.py`), action horizon 50, action dimension 32, 48 prompt positions (`models/pi0_config.py`);
its training draws `x_t = time * noise + (1 - time) * actions` with target `noise - actions` and notes the paper
runs time the other way. Flow matching: Lipman et al., *Flow Matching for Generative Modeling* (2023); Liu et al.,
*Flow Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow* (2023). VQ: Juang & Gray,
*Multiple stage vector quantization for speech coding* (1982, residual VQ); Lloyd, *Least squares quantization in
PCM* (1982, k-means); Dhariwal et al., *Jukebox* (2020, codebook restarts). ViT patch count (image / patch)²:
Dosovitskiy et al. (2021).
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
#              Issue 23: bin counts, VQ, the sequence, flow matching (public API)
# --------------------------------------------------------------------------------------

def _pct(x: float) -> float:
    return float(f"{100 * x:.3g}")


@user_errors
def tradeoff(n_chunks: float, bounds: str, progress=gr.Progress()):
    """Error against tokens per chunk on ``n_chunks`` held-out 50x7 chunks (at most 200): binning at 64, 256
    and 1024 bins, FAST at scales 2-50, VQ with 1 to all its levels. Table, plot, and the numbers as JSON."""
    progress(0, desc="held-out chunks through three tokenizers (the first call loads the BPE and the codebooks)")
    C = _compute()
    if bounds == "dataset":
        progress(0.1, desc=f"dataset bounds over {tokenizer().corpus_chunks:,} corpus chunks (once per process)")
    rows = C.tradeoff(n_chunks, bounds)
    n = int(float(n_chunks))
    table_rows = [[r["method"], r["setting"], float(f"{r['tokens_per_chunk']:.4g}"), r["vocabulary"],
                   float(f"{r['bits_per_chunk']:.4g}"), _pct(r["relative_mean_error"]), _pct(r["relative_max_error"]),
                   float(f"{r['mean_abs_error']:.3g}")] for r in rows]
    progress(0.9, desc="drawing")
    return table_rows, _figures().tradeoff_figure(rows, n, bounds), {"n_chunks": n, "bounds": bounds, "rows": rows}


@user_errors
def three(actions: str, bins: float, scale: float, levels: float):
    """One chunk through binning (``bins``: 64, 256 or 1024, per-chunk min/max), FAST (``scale``) and the VQ
    (``levels`` residual codebooks): summary, table, figure, and the token ids as JSON."""
    C = _compute()
    out = C.three_way(A.parse_actions(actions), bins, scale, levels)
    rows = C.three_rows(out)
    table_rows = [[r["method"], r["setting"], r["tokens"], r["vocabulary"], _pct(r["relative_mean_error"]),
                   _pct(r["relative_max_error"]), float(f"{r['max_abs_error']:.3g}")] for r in rows]
    b = out["bins"]
    half = ", ".join(f"{w / 2:.3g}" for w in b.width)
    lines = [f"**Binning, {b.n_bins} bins:** {b.tokens.size} tokens (T·D), vocabulary {b.n_bins}; inside the "
             f"chunk's min/max the error is at most half a bin width per dimension ({half})."]
    if out["vq"] is None:
        lines.append(f"**VQ left out:** {out['vq_note']}.")
    else:
        v = out["vq"]
        lines.append(f"**VQ, {v.levels} level(s):** {v.tokens.size} tokens = {len(v.tokens)} segments x {v.levels}; "
                     f"ids {v.flat_tokens[:14]}{' ...' if v.tokens.size > 14 else ''}"
                     + (f"; note: {out['vq_note']}." if out["vq_note"] else ""))
    numbers = {"rows": rows, "bin_tokens": b.flat_tokens, "fast_tokens": out["fast"].tokens,
               "vq_tokens": out["vq"].flat_tokens if out["vq"] is not None else None, "vq_note": out["vq_note"]}
    return "  \n".join(lines), table_rows, _figures().three_figure(out), numbers


@user_errors
def sequence(actions: str, scale: float, image_size: float, prompt_tokens: float):
    """Token counts of each part of a VLA's sequence (<BOS>, image patches, prompt, state, actions, stop) for
    OpenVLA as published, OpenVLA emitting this chunk with each tokenizer, and pi0."""
    C = _compute()
    rows = C.sequence_layout(A.parse_actions(actions), scale, image_size, prompt_tokens)
    image = rows[0]["image"]
    side = int(float(image_size)) // OPENVLA_PATCH
    md = (f"**Image tokens** = (image size / patch)² = ({int(float(image_size))} / {OPENVLA_PATCH})² = "
          f"{side}² = **{image}**: OpenVLA's DINOv2 and SigLIP features of each patch are concatenated "
          f"channel-wise, so the two backbones give one token per patch, not two. **Prompt**: "
          f"`{OPENVLA_PROMPT.format(instruction='<instruction>')!r}` is assumed to be "
          f"{int(float(prompt_tokens))} Llama 2 tokens (no Llama 2 tokenizer is available offline here: type "
          "your own count). Published OpenVLA emits one step: 7 action tokens and the stop token. "
          f"**A whole chunk as tokens** would make the action part {rows[1]['action']} tokens with bin256 but "
          f"{rows[2]['action']} with FAST"
          + (f" and {rows[3]['action']} with the VQ" if len(rows) == 5 else "")
          + ". Each token is one more forward pass of the 7B decoder at inference.")
    table_rows = [[r["layout"], r["bos"], r["image"], r["prompt"], r["state"], r["action"], r["stop"], r["total"],
                   r["note"]] for r in rows]
    return md, table_rows, _figures().sequence_figure(rows)


@user_errors
def flow(actions: str, seed: float, count: float, euler_steps: float):
    """pi0's flow-matching path for this chunk (z-scored per dimension): x_tau = tau·chunk + (1 − tau)·noise at
    ``count`` tau values from 0 to 1, the target velocity chunk − noise, and ``euler_steps`` Euler steps
    along it from the noise."""
    C = _compute()
    x = A.parse_actions(actions)
    f = C.flow_path(x, seed, count, euler_steps)
    md = (f"**{len(f['taus'])} points on the path**, τ = {', '.join(f'{t:.2g}' for t in f['taus'])}. The velocity "
          f"target is the same at every τ (a straight line from this noise to this chunk). "
          f"{f['euler_steps']} Euler steps x ← x + u/{f['euler_steps']} from the noise end "
          f"{f['euler_max_error']:.2g} from the chunk (z-units, max over entries): exact up to rounding, because "
          "the path is straight. A trained π0 does not know the chunk: it predicts the *average* velocity over all "
          "chunks that could pass through x_τ given the images and prompt, and integrates that with "
          f"{PI0_EULER_STEPS} steps (openpi's default), from τ = 0 (noise) to τ = 1.")
    numbers = {"taus": f["taus"].tolist(), "euler_steps": f["euler_steps"], "euler_max_error": f["euler_max_error"],
               "zscore_mean": f["mean"].tolist(), "zscore_std": f["std"].tolist(),
               "velocity": f["velocity"].round(6).tolist()}
    return md, _figures().flow_figure(f, _compute().dim_names(x.shape[1])), numbers


def more_intro() -> str:
    v = vq_facts()
    m = v.metrics
    levels = m.get("by_levels", {})
    per_level = "; ".join(f"{row['tokens_per_chunk']} tokens: {100 * row['relative_mean_error']:.2f}%"
                          for row in levels.values())
    return f"""
## Three tokenizers, where their tokens go, and the model that uses none
**VQ** (`{VQ_TOKENIZER}`, trained here by k-means: `python -m shared.training {VQ_TOKENIZER}`): a {v.steps}x{v.dims}
chunk ({v.hz:g} Hz) is normalised with its training set's {v.percentiles} percentiles, cut into segments of {v.patch} steps
of one dimension ({v.segments} segments), and each segment is replaced by the nearest of {v.codebook_size} codes,
then its residual by the nearest code of the next codebook, for {v.levels} levels (residual VQ, Juang & Gray, 1982;
k-means, Lloyd, 1982; unused codes restarted on the worst-served vector, a deterministic variant of Jukebox's
random restarts, Dhariwal et al., 2020). Tokens per chunk: {v.segments} per level.
Its mean |error| (% of each chunk's range, over its {m.get('n', '?')} held-out 50x7 chunks, from its metrics.json): {per_level}.
**Binning** here may use {", ".join(map(str, BIN_COUNTS))} bins: the token count stays T·D, only the vocabulary
and the error change (half a bin width at most inside the bounds: 4x smaller for each 4x more bins).
"""


def render_more(actions: gr.Textbox, scale: gr.Slider) -> None:
    """Issue 23's views, as tabs under the main comparison; they use the chunk in the box and FAST's scale."""
    gr.Markdown(more_intro())
    with gr.Tabs():
        with gr.Tab("Error vs tokens (held out)"):
            gr.Markdown("Binning at each bin count, FAST at several scales and the VQ at 1 to all levels, on the "
                        "held-out 50x7 chunks both shipped tokenizers are evaluated on (1 s at 50 Hz; noise 0, "
                        "0.05, 0.2 in turn; never trained on). **Error**: |decoded − original| as a % of each "
                        "chunk's range per dimension. **Bits** = tokens x log2(vocabulary): binning's 350 tokens "
                        "carry 6, 8 or 10 bits each.")
            with gr.Row():
                n_chunks = gr.Number(HELDOUT_DEFAULT, precision=0, label=f"held-out chunks (1 to {HELDOUT_MAX})")
                t_bounds = gr.Radio(BOUNDS_CHOICES, value="chunk", label="bounds for binning and FAST")
                t_go = gr.Button("Measure the trade-off", variant="primary")
            t_table = gr.Dataframe(headers=TRADEOFF_HEADERS, label="error vs tokens", wrap=True)
            t_plot = gr.Plot(label="error vs tokens plot", show_label=False)
            with gr.Accordion("Raw trade-off (JSON)", open=False):
                t_json = gr.JSON(label="trade-off")
            t_files = downloads()
        with gr.Tab("Bins, FAST and VQ on this chunk"):
            gr.Markdown("The chunk in the box above through all three tokenizers, with FAST at the scale chosen "
                        "above. VQ needs D = 7 and a length that its segment size divides.")
            with gr.Row():
                bins = gr.Radio(list(BIN_COUNTS), value=N_BINS, label="bin count")
                levels = gr.Slider(1, vq_facts().levels, value=vq_facts().levels, step=1, label="VQ levels")
                w_go = gr.Button("Tokenize three ways", variant="primary")
            w_md = gr.Markdown()
            w_table = gr.Dataframe(headers=THREE_HEADERS, label="three tokenizers", wrap=True)
            w_plot = gr.Plot(label="three decodings", show_label=False)
            with gr.Accordion("Token ids (JSON)", open=False):
                w_json = gr.JSON(label="three tokenizers")
            w_files = downloads()
        with gr.Tab("Where action tokens sit"):
            gr.Markdown(f"OpenVLA (Kim et al., 2024) reads `<BOS>`, the image's patch tokens, then the prompt "
                        f"`{OPENVLA_PROMPT.format(instruction='<instruction>')!r}`, and writes 7 action tokens "
                        f"and `</s>`. π0 (Black et al., 2024) reads {PI0_CAMERAS} camera images of 224 px, a prompt "
                        f"padded to {PI0_PROMPT_TOKENS} positions and one state token, and fills {PI0_HORIZON} "
                        f"action positions with continuous {PI0_ACTION_DIM}-D vectors by flow matching.")
            with gr.Row():
                image_size = gr.Number(OPENVLA_IMAGE_SIZE, precision=0,
                                       label=f"image size (px; a multiple of {OPENVLA_PATCH}, at most {MAX_IMAGE_SIZE})")
                prompt_tokens = gr.Number(PROMPT_TOKENS_DEFAULT, precision=0,
                                          label=f"prompt tokens (assumed; 1 to {MAX_PROMPT_TOKENS})")
                s_go = gr.Button("Lay out the sequence", variant="primary")
            s_md = gr.Markdown()
            s_table = gr.Dataframe(headers=SEQUENCE_HEADERS, label="sequence layout", wrap=True)
            s_plot = gr.Plot(label="sequence layout plot", show_label=False)
            s_files = downloads()
        with gr.Tab("Flow matching (π0): no tokens"):
            gr.Markdown("π0 (Black et al., 2024) does not tokenize actions: its action expert turns noise into a "
                        "chunk by flow matching (Lipman et al., 2023; Liu et al., 2023). Training draws noise and "
                        "τ and regresses the velocity; here the path is drawn for the chunk in the box (z-scored "
                        "per dimension). Convention of the π0 paper: τ = 0 noise, τ = 1 the chunk; openpi's code "
                        "runs time the other way (x_t = t·noise + (1 − t)·actions, target noise − actions; its "
                        "comment: \"this is the opposite of the pi0 paper\").")
            with gr.Row():
                f_seed = gr.Number(0, precision=0, label="noise seed")
                f_count = gr.Slider(2, FLOW_TIMES_MAX, value=FLOW_TIMES_DEFAULT, step=1, label="τ values drawn")
                f_steps = gr.Slider(1, EULER_MAX, value=PI0_EULER_STEPS, step=1, label="Euler steps")
                f_go = gr.Button("Draw the path", variant="primary")
            f_md = gr.Markdown()
            f_plot = gr.Plot(label="flow-matching path", show_label=False)
            with gr.Accordion("Raw path (JSON)", open=False):
                f_json = gr.JSON(label="flow path")
            f_files = downloads()

    t_out = [t_table, t_plot, t_json]
    raw_values(t_go.click, with_downloads(tradeoff, t_out), [n_chunks, t_bounds], t_out + [t_files],
               api_name=f"{SLUG}_tradeoff")
    w_out = [w_md, w_table, w_plot, w_json]
    raw_values(w_go.click, with_downloads(three, w_out), [actions, bins, scale, levels], w_out + [w_files],
               api_name=f"{SLUG}_three")
    s_out = [s_md, s_table, s_plot]
    raw_values(s_go.click, with_downloads(sequence, s_out), [actions, scale, image_size, prompt_tokens],
               s_out + [s_files], api_name=f"{SLUG}_sequence")
    f_out = [f_md, f_plot, f_json]
    raw_values(f_go.click, with_downloads(flow, f_out), [actions, f_seed, f_count, f_steps], f_out + [f_files],
               api_name=f"{SLUG}_flow")


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
    render_more(actions, scale)
    gr.Markdown(CITATIONS)
    gr.Markdown(CITATIONS_MORE)

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
