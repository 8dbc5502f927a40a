"""Autoregressive image generation: the Gradio page. The maths lives in compute.py.

compute.py imports torch and transformers, so handlers import it on first use; what ``render()`` needs at
start-up (choices, limits, the shipped models' facts) comes from the torch-free ``options.py``.
"""

from __future__ import annotations

import functools
import math

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from .options import (
    AR_MODEL,
    CLASSES,
    DEFAULT_CLASS,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_TEMPERATURE,
    USAGE_IMAGES,
    VQ_MODEL,
    ar_facts,
    check_class,
    check_guidance,
    check_seed,
    check_temperature,
    check_top_k,
    codebook_size,
    default_guidance,
    measured_sampling,
    shipped_json,
    vq_facts,
)

SLUG = "vq_tokens"
TUTORIAL = tutorial(SLUG)  # title and emoji are typed once, in hub/registry.py
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (VQ_MODEL, AR_MODEL)

PAPERS = {
    "vqvae": "[van den Oord et al., 2017](https://arxiv.org/abs/1711.00937)",
    "vqgan": "[Esser et al., 2021](https://arxiv.org/abs/2012.09841)",
    "dalle": "[Ramesh et al., 2021](https://arxiv.org/abs/2102.12092)",
    "parti": "[Yu et al., 2022](https://arxiv.org/abs/2206.10789)",
    "gpt2": "[Radford et al., 2019](https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf)",
    "llama": "[Touvron et al., 2023](https://arxiv.org/abs/2302.13971)",
    "rope": "[Su et al., 2021](https://arxiv.org/abs/2104.09864)",
    "topk": "[Fan et al., 2018](https://arxiv.org/abs/1805.04833)",
    "dit": "[Peebles & Xie, 2023](https://arxiv.org/abs/2212.09748)",
    "jukebox": "[Dhariwal et al., 2020](https://arxiv.org/abs/2005.00341)",
    "cfg": "[Ho & Salimans, 2022](https://arxiv.org/abs/2207.12598)",
}


# --------------------------------------------------------------------------------------
#                                   Facts, read from the shipped files
# --------------------------------------------------------------------------------------

def _facts_markdown(vq: dict, ar: dict) -> str:
    if not vq or not ar:
        missing = [n for n, f in ((VQ_MODEL, vq), (AR_MODEL, ar)) if not f]
        return "Not trained yet: " + ", ".join(f"`python -m shared.training {n}`" for n in missing) + "."
    m, a = vq["metrics"], ar["metrics"]
    g, s, k = vq["grid"], vq["image_size"], vq["codebook_size"]
    lines = [
        f"**`{VQ_MODEL}`** turns a {s}×{s} image into a {g}×{g} grid of tokens (each a {s // g}×{s // g}-pixel patch) "
        f"over a codebook of **{k}** codes ({math.log2(k):g} bits per token).",
    ]
    if "psnr" in m:
        lines.append(
            f"On {m['n']} test images it reconstructs at **{m['psnr']} dB** PSNR and uses "
            f"**{m['codebook_usage']:.0%}** of its codes ({m['codes_used_test']} of {k}); on {m['n_independent']} "
            f"shapes drawn by an independent renderer (matplotlib) **{m['independent_renderer_psnr']} dB**.")
    if "class_accuracy" in a:
        lines.append(
            f"**`{AR_MODEL}`** ({ar['architecture']}, {ar['layers']} layers, width {ar['width']}, {a.get('parameters', 0) / 1e6:.2f}M "
            f"parameters) draws the class it is asked for in **{a['class_accuracy']:.0%}** of {a['n']} samples at "
            f"temperature {a['temperature']:g}, top-k {a['top_k']}, guidance scale {a.get('guidance_scale', 1.0):g} "
            f"(chance: {1 / len(CLASSES):.0%}; judge: {a['judge']}).")
        if "sampling_sweep" in a:
            lines.append(f"These settings were chosen among {len(a['sampling_sweep'])} combinations, each measured "
                         f"on {a['sampling_sweep_n']} samples of other seeds (the table under *Generate step by step*).")
    lines.append(f"Measured by `python -m shared.models eval {VQ_MODEL}` and `eval {AR_MODEL}`.")
    return " ".join(lines)


def _sweep_table(metrics: dict) -> str:
    """The recipe's sampling sweep (metrics.json) at the chosen guidance scale: class accuracy per temperature
    (rows) and top-k (columns), the chosen cell in bold."""
    if "sampling_sweep" not in metrics:
        return ""
    rows = [r for r in metrics["sampling_sweep"].values() if r["guidance_scale"] == metrics["guidance_scale"]]
    temps, ks = sorted({r["temperature"] for r in rows}), sorted({r["top_k"] for r in rows})
    cell = {(r["temperature"], r["top_k"]): r["class_accuracy"] for r in rows}
    chosen = (metrics["temperature"], metrics["top_k"])

    def fmt(t, k):
        text = f"{cell[t, k]:.0%}" if (t, k) in cell else "–"
        return f"**{text}**" if (t, k) == chosen else text

    lines = [f"Class accuracy over temperature and top-k at s = {metrics['guidance_scale']:g}, "
             f"{metrics['sampling_sweep_n']} samples each (seed {metrics['sampling_sweep_seed']}, not the seeds of the "
             "reported figure):", "",
             "| temperature ↓ top-k → | " + " | ".join(str(k) for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
    lines += [f"| {t:g} | " + " | ".join(fmt(t, k) for k in ks) + " |" for t in temps]
    return "\n".join(lines)


def _architecture(ar: dict) -> str:
    """The generator's architecture with its citation, as its config.json says."""
    if ar.get("architecture") == "Llama":
        return f"Llama, {PAPERS['llama']}, with rotary position embeddings, {PAPERS['rope']}"
    return f"GPT-2, {PAPERS['gpt2']}"


def _intro(vq: dict, ar: dict) -> str:
    return (
        f"## {TUTORIAL.emoji} {TUTORIAL.title}\n"
        f"DALL-E's recipe ({PAPERS['dalle']}) in two stages, both trained here on shapes. (1) A VQ-VAE "
        f"({PAPERS['vqvae']}; VQGAN-style tokenizers: {PAPERS['vqgan']}) maps each patch to the index of its nearest "
        f"codebook vector: an image becomes a grid of integers. (2) A decoder-only transformer ({_architecture(ar)}) "
        "learns p(token_i | class, token_<i) over those integers in raster order and draws a new image one token at a "
        "time; the VQ-VAE's decoder turns the tokens back into pixels.\n\n" + _facts_markdown(vq, ar)
    )


# --------------------------------------------------------------------------------------
#                                   Tokenize
# --------------------------------------------------------------------------------------

def _compute(progress: gr.Progress | None = None, what: str = "models"):
    if progress is not None:
        progress(0, desc=f"loading {what} (first use only)")
    from . import compute

    return compute


@user_errors
def vq_tokens_encode(image, progress=gr.Progress()):
    """An image -> (its reconstruction through the VQ-VAE, stats: grid, tokens, codebook_size, codes_used...)."""
    compute = _compute(progress, VQ_MODEL)
    enc = compute.encode(image)
    return compute.upscale(enc.recon), enc.stats


def _usage_figure(counts, image_codes: set[int], n: int):
    import numpy as np
    from matplotlib.figure import Figure

    order = np.argsort(-counts, kind="stable")
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    colours = ["crimson" if int(c) in image_codes else "steelblue" for c in order]
    ax.bar(range(len(order)), counts[order], width=1.0, color=colours)
    ax.set_yscale("log")
    used = int((counts > 0).sum())
    ax.set_title(f"codebook usage on {n} test images: {used} of {len(counts)} codes used "
                 f"(red: codes in your image)", fontsize=9)
    ax.set_xlabel("codes, most used first")
    ax.set_ylabel("occurrences (log)")
    return fig


@user_errors
def tokenize_details(image, code, progress=gr.Progress()):
    """The token grid picture and table, the usage histogram, and the patches that map to one code."""
    import numpy as np
    import pandas as pd

    compute = _compute(progress, VQ_MODEL)
    enc = compute.encode(image)
    if code is None or (isinstance(code, str) and not code.strip()) or code in (-1, -1.0, "-1"):
        values, counts = np.unique(enc.tokens, return_counts=True)
        code = int(values[counts.argmax()])  # this image's most common code
    code = compute.check_code(code)
    progress(0.3, desc=f"tokenizing {USAGE_IMAGES} test images")
    usage = compute.test_usage()
    view = compute.nearest_code_view(code)
    grid = compute.token_grid_picture(enc.tokens, enc.codebook_size, highlight=code)
    table = pd.DataFrame(enc.tokens, columns=[f"col {c}" for c in range(enc.tokens.shape[1])])
    error = np.abs(enc.pixels.astype(int) - enc.recon.astype(int)).mean(-1)  # (S, S) mean |error| per pixel
    scale = max(1, int(error.max()))
    error_img = compute.upscale((np.clip(error / scale, 0, 1)[..., None].repeat(3, -1) * 255).astype("uint8"))
    note = (f"PSNR **{enc.stats['psnr_db']} dB** (MSE {enc.mse:.1f}) · {enc.codes_used} distinct codes of "
            f"{enc.codebook_size} · {enc.stats['bits']:g} bits for the tokens against {enc.stats['raw_bits']} bits of "
            f"8-bit RGB pixels. Code **{code}** (outlined) occurs {view.count} times in {view.images} of "
            f"{view.n} test images; below, the patches it stands for (up to 48) and what the decoder draws from a grid "
            "made only of it.")
    mosaic = view.mosaic if view.mosaic is not None else compute.upscale(view.decoded, 64)
    return (compute.upscale(enc.pixels), grid, error_img, table, _usage_figure(usage, set(enc.tokens.ravel().tolist()),
            USAGE_IMAGES), mosaic, compute.upscale(view.decoded, 128), view.stats, note)


# --------------------------------------------------------------------------------------
#                                   Generate
# --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _sampled(class_label: str, temperature: float, top_k: int, seed: int, guidance: float):
    from . import compute

    return compute.sample(class_label, temperature, top_k, seed, guidance=guidance)


def _controls(class_label, temperature, top_k, seed, guidance=None) -> tuple:
    guidance = default_guidance() if guidance is None else check_guidance(guidance)
    return check_class(class_label), check_temperature(temperature), check_top_k(top_k), check_seed(seed), guidance


@user_errors
def vq_tokens_sample(class_label, temperature, top_k, seed, guidance=None, progress=gr.Progress()):
    """One image of ``class_label`` drawn token by token -> (image, stats with the tokens). Same seed, same tokens.
    ``guidance`` (classifier-free guidance scale) defaults to the one class accuracy was measured at."""
    controls = _controls(class_label, temperature, top_k, seed, guidance)
    compute = _compute(progress, f"{VQ_MODEL} and {AR_MODEL}")
    progress(0.1, desc="sampling 64 tokens")
    s = _sampled(*controls)
    return compute.upscale(s.image), s.stats


def _distribution_figure(step, temperature: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    colours = ["crimson" if i == step.chosen else "steelblue" for i in step.top_ids]
    ax.bar(range(len(step.top_ids)), step.top_probs, color=colours)
    ax.set_xticks(range(len(step.top_ids)), [str(i) for i in step.top_ids], rotation=90, fontsize=7)
    how = "greedy: the tallest bar is taken (shown at T = 1)" if temperature == 0 else f"T = {temperature:g}"
    ax.set_title(f"step {step.position + 1}: top-{len(step.top_ids)} next codes ({how}); red: drawn", fontsize=8)
    ax.set_xlabel("code id")
    ax.set_ylabel("probability")
    return fig


def _step_view(s, index: int):
    from . import compute

    step = s.steps[index - 1]
    g = s.tokens.shape[1]
    text = (f"**step {index} / {len(s.steps)}**: row {step.position // g}, column {step.position % g} → code "
            f"**{step.chosen}** (p = {step.top_probs[step.top_ids.index(step.chosen)]:.3f} among the top-{len(step.top_ids)}). "
            "Positions not drawn yet are filled with the first code and dimmed.")
    return compute.upscale(s.frames[index - 1]), _distribution_figure(step, s.temperature), text


@user_errors
def generate_details(class_label, temperature, top_k, seed, guidance, index, progress=gr.Progress()):
    """The step-by-step strip, the partial image at the chosen step and the top-k distribution there."""
    import pandas as pd

    from shared import validate

    controls = _controls(class_label, temperature, top_k, seed, guidance)
    compute = _compute(progress)
    s = _sampled(*controls)
    index = validate.integer(index, "step", 1, len(s.steps))
    strip = [(compute.upscale(s.frames[i - 1], 96), f"after {i}") for i in range(4, len(s.steps) + 1, 4)]
    frame, fig, text = _step_view(s, index)
    table = pd.DataFrame([{"step": st.position + 1, "row": st.position // s.tokens.shape[1],
                           "column": st.position % s.tokens.shape[1], "code": st.chosen,
                           "p(code)": st.top_probs[st.top_ids.index(st.chosen)]} for st in s.steps])
    return strip, frame, fig, text, table


@user_errors
def show_step(class_label, temperature, top_k, seed, guidance, index):
    from shared import validate

    s = _sampled(*_controls(class_label, temperature, top_k, seed, guidance))
    return _step_view(s, validate.integer(index, "step", 1, len(s.steps)))


@user_errors
def class_grid(temperature, top_k, seed, guidance, per_class, progress=gr.Progress()):
    """``per_class`` samples of every class (seeds seed, seed+1, ...), as a gallery."""
    from shared import validate

    temperature, top_k, seed = check_temperature(temperature), check_top_k(top_k), check_seed(seed)
    guidance = check_guidance(guidance)
    per_class = validate.integer(per_class, "samples per class", 1, 8)
    compute = _compute(progress)
    items = []
    total = per_class * len(CLASSES)
    for c in CLASSES:
        for j in range(per_class):
            progress(len(items) / total, desc=f"{c}: sample {j + 1}")
            s = compute.sample(c, temperature, top_k, min(seed + j, MAX_SEED), frames=False, guidance=guidance)
            items.append((compute.upscale(s.image, 128), f"{c} · seed {s.seed}"))
    return items


# --------------------------------------------------------------------------------------
#                                   Token arithmetic
# --------------------------------------------------------------------------------------

def _dit_facts() -> dict | None:
    cfg = shipped_json("dit-tiny-shapes")
    metrics = shipped_json("dit-tiny-shapes", "metrics.json")
    if not cfg or "steps" not in metrics:
        return None
    return {"image_px": cfg["sample_size"], "grid": cfg["sample_size"] // cfg["patch_size"], "steps": metrics["steps"]}


def _cost_figure(rows: list[dict]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    names = [r["model"].split(" (")[0] for r in rows]
    for ax, key in zip(axes, ("sequential passes", "tokens processed"), strict=True):
        ax.barh(names, [r[key] for r in rows], color="slateblue")
        ax.set_xscale("log")
        ax.set_title(f"{key} per image (log)", fontsize=9)
        ax.tick_params(labelsize=7)
    return fig


@user_errors
def token_arithmetic():
    """Tokens, bits and generation cost of DALL-E, DiT-XL/2 and the tiny models here."""
    import pandas as pd

    from . import compute

    vq = shipped_json(VQ_MODEL)
    if not vq:
        raise ValueError(f"{VQ_MODEL} is not trained yet: python -m shared.training {VQ_MODEL}")
    rows = [b.row() for b in compute.budgets(vq, _dit_facts(), default_guidance())]
    ours, dalle, dit = rows[0], rows[1], rows[2]
    text = (
        f"**DALL-E** ({PAPERS['dalle']}): a 256×256 image is a 32×32 = **1024**-token grid over an **8192**-code dVAE "
        f"codebook, after up to **256** text tokens: a sequence of {dalle['sequence']}, and 1024 sequential passes to draw "
        f"one image ({dalle['bits per image']:,} bits of tokens, {dalle['compression vs 8-bit RGB']} fewer than the pixels). "
        f"**Ours**: {ours['image tokens']} tokens after 1 class token, {ours['sequential passes']} passes"
        + (f" of two rows (classifier-free guidance at s = {default_guidance():g}: with and without the class)"
           if default_guidance() != 1 else "") + ". "
        f"**Parti** ({PAPERS['parti']}) scales the same idea to a 20B-parameter encoder-decoder over ViT-VQGAN tokens "
        "(its grid and codebook are not quoted here: not verified). "
        f"**Diffusion** instead runs the whole sequence at every step: DiT-XL/2 ({PAPERS['dit']}) on 16×16 = 256 latent "
        f"tokens for 250 DDPM steps, ×2 for classifier-free guidance = **{dit['tokens processed']:,}** token passes, against "
        f"{dalle['tokens processed']:,} for DALL-E's whole sequence with a KV cache; but only 250 sequential passes, not 1024. "
        "Cost here = sequential passes × tokens per pass (attention's growth with length is left out)."
    )
    return pd.DataFrame(rows), _cost_figure(rows), text


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    vq, ar = vq_facts(), ar_facts()
    k = codebook_size()
    measured = ar.get("metrics", {}) if ar else {}
    defaults = measured_sampling()
    gr.Markdown(_intro(vq, ar))
    samples = sample_examples()

    with gr.Tab("Tokenize"):
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(samples[0] if samples else None, label="Image (centre square, box-filtered to the "
                                 "tokenizer's size)", type="pil", height=240)
                code = gr.Number(value=-1, precision=None, label=f"code to inspect (0–{k - 1}; -1: the image's "
                                 "most common code)")
                tok_btn = gr.Button("Tokenize", variant="primary")
            with gr.Column(scale=2):
                with gr.Row():
                    seen = gr.Image(label="what the tokenizer sees", type="pil", format="png", height=200)
                    grid = gr.Image(label="token grid (code ids)", type="pil", format="png", height=200)
                    recon = gr.Image(label="reconstruction from the tokens", type="pil", format="png", height=200)
                    error = gr.Image(label="|error| per pixel (white = largest)", type="pil", format="png", height=200)
                tok_note = gr.Markdown()
        gr.Examples([[p] for p in samples[:6]], inputs=[image])
        usage_plot = gr.Plot(label="codebook usage histogram")
        with gr.Row():
            mosaic = gr.Image(label="patches that map to the code", type="pil", format="png", height=220)
            decoded = gr.Image(label="decoder's drawing of a grid of only this code", type="pil", format="png",
                               height=220)
            code_stats = gr.JSON(label="code stats")
        with gr.Row():
            stats = gr.JSON(label="encode stats (the endpoint vq_tokens_encode)")
            token_table = gr.Dataframe(label="token ids")
        tok_files = downloads()

    with gr.Tab("Generate step by step"):
        gr.Markdown(
            f"The transformer sees the class token, then every code drawn so far, and outputs a distribution over the "
            f"{k} codes for the next position. Temperature T divides the logits before the softmax (T < 1 sharper, "
            f"T > 1 flatter); top-k keeps only the k most likely codes ({PAPERS['topk']}). **T = 0 is greedy decoding**: "
            "the most likely code at every step, no randomness (the seed then changes nothing). **Guidance scale s** is "
            f"classifier-free guidance ({PAPERS['cfg']}): the model was also trained with the class hidden behind a "
            "null token, so each step runs it twice, with and without the class, and samples from "
            "l_u + s·(l_c − l_u): s = 1 is the class-conditional model alone, s = 0 ignores the class, s > 1 pushes "
            "away from what any class would draw."
            + (f" Class accuracy was measured at T = {measured['temperature']:g}, top-k {measured['top_k']}"
               f", s = {measured.get('guidance_scale', 1.0):g} (the defaults below): a short top-k drops the rare "
               "codes that spoil a shape, and within it a high temperature keeps samples varied."
               if "temperature" in measured else ""))
        gr.Markdown(_sweep_table(measured))
        with gr.Row():
            class_label = gr.Dropdown(list(CLASSES), value=DEFAULT_CLASS, label="class")
            temperature = gr.Slider(0, MAX_TEMPERATURE, value=defaults["temperature"], step=0.05,
                                    label="temperature (0 = greedy)")
            top_k = gr.Slider(1, k, value=defaults["top_k"], step=1, label=f"top-k (1–{k})")
            seed = gr.Number(value=0, precision=None, label=f"seed (0–{MAX_SEED})")
            guidance = gr.Slider(0, MAX_GUIDANCE, value=defaults["guidance_scale"], step=0.25,
                                 label="guidance scale s (1 = class-conditional only, 0 = unconditional)")
        gen_btn = gr.Button("Generate", variant="primary")
        with gr.Row():
            sample_img = gr.Image(label="sample (the endpoint vq_tokens_sample)", type="pil", format="png", height=256)
            sample_stats = gr.JSON(label="sample stats")
        strip = gr.Gallery(label="step-by-step strip: the image after every 4th token", columns=8, height=260,
                           format="png", object_fit="contain")
        step = gr.Slider(1, 64, value=64, step=1, label="show step")
        with gr.Row():
            frame = gr.Image(label="partial image at this step", type="pil", format="png", height=256)
            dist_plot = gr.Plot(label="next-token distribution (top-k)")
        step_note = gr.Markdown()
        steps_table = gr.Dataframe(label="every step: the code drawn and its probability")
        gen_files = downloads()

    with gr.Tab("Samples per class"):
        per_class = gr.Slider(1, 8, value=4, step=1, label="samples per class")
        grid_btn = gr.Button("Sample every class", variant="primary")
        class_gallery = gr.Gallery(label="samples (rows: classes; seeds seed, seed+1, ...)", columns=4, height=520,
                                   format="png", object_fit="contain")

    with gr.Tab("Token arithmetic"):
        gr.Markdown("How long the token sequence of an image is, how many bits it holds, and what one image costs "
                    "to generate, autoregressively against diffusion. Figures of the papers are cited; ours are read "
                    "from the shipped config files.")
        ta_btn = gr.Button("Compute", variant="primary")
        ta_note = gr.Markdown()
        ta_table = gr.Dataframe(label="token arithmetic")
        ta_plot = gr.Plot(label="generation cost")
        ta_files = downloads()

    # ---- events ----
    enc = raw_values(tok_btn.click, vq_tokens_encode, [image], [recon, stats], api_name=f"{SLUG}_encode")
    detail_outs = [seen, grid, error, token_table, usage_plot, mosaic, decoded, code_stats, tok_note]
    raw_values(enc.then, with_downloads(tokenize_details, detail_outs), [image, code], detail_outs + [tok_files],
               api_name=f"{SLUG}_tokenize_details")

    controls = [class_label, temperature, top_k, seed, guidance]
    gen = raw_values(gen_btn.click, vq_tokens_sample, controls, [sample_img, sample_stats], api_name=f"{SLUG}_sample")
    gen_outs = [strip, frame, dist_plot, step_note, steps_table]
    raw_values(gen.then, with_downloads(generate_details, gen_outs), [*controls, step], gen_outs + [gen_files],
               api_name=f"{SLUG}_generate_details")
    raw_values(step.release, show_step, [*controls, step], [frame, dist_plot, step_note], api_name=f"{SLUG}_step")
    raw_values(grid_btn.click, class_grid, [temperature, top_k, seed, guidance, per_class], class_gallery,
               api_name=f"{SLUG}_class_grid")
    ta_outs = [ta_table, ta_plot, ta_note]
    raw_values(ta_btn.click, with_downloads(token_arithmetic, ta_outs), [], ta_outs + [ta_files],
               api_name=f"{SLUG}_arithmetic")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
