"""CLIP zero-shot: Gradio glue around ``compute.py`` (which holds all the maths).

The hub imports this module and calls ``build()`` at start-up, so neither may import torch,
transformers or matplotlib (issue 14): ``compute`` is imported on the first request (``_compute``),
figures import matplotlib when they are drawn, and the page's limits and model facts come from the
torch-free ``options.py``.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
from PIL import Image

from hub.registry import get as tutorial
from shared.data.shapes import COLORS, SHAPES
from shared.images import centre_square
from shared.models import names, offline_names
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from . import options

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from . import compute as compute_module

SLUG = "clip_zero_shot"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = ("clip-tiny-shapes",)
TASK = options.TASK

PAPER = "Radford et al., 2021, *Learning Transferable Visual Models From Natural Language Supervision*"
SHAPE_LABELS = ", ".join(SHAPES)
ENSEMBLE = "a photo of a {}\nan image of a {}\na rendering of a {}"
MAX_PLOTTED = 20


def _compute():
    """The compute module, imported on first use: it imports torch, which the hub's start-up must not.
    Relative, because an exported Space imports this package as ``clip_zero_shot``, not ``spaces.…``."""
    from . import compute

    return compute


# --------------------------------------------------------------------------------------
#                                   Zero-shot
# --------------------------------------------------------------------------------------

@user_errors
def classify(image: Image.Image, labels: str, template: str, model_name: str = options.DEFAULT_MODEL,
             progress=gr.Progress()):
    """Zero-shot classify ``image`` over comma/newline-separated ``labels``; ``template`` holds one or more
    prompt templates (one per line, each with {}), averaged as a prompt ensemble. Returns label -> probability."""
    progress(0.1, desc="embedding the labels and the image (the first call loads the model)")
    result = _compute().zero_shot(image, labels, template, model_name or options.DEFAULT_MODEL)
    if result.ood is not None and result.ood.unusual:
        gr.Warning(result.ood.message)
    if result.truncated:
        gr.Warning(f"{len(result.truncated)} prompt(s) were longer than the model's text context and were truncated "
                   f"to fit; the first: {result.truncated[0][:80]!r}.")
    return result.probabilities(), result


def _probability_figure(result: compute_module.ZeroShotResult, at_t: np.ndarray, temperature: float) -> Figure:
    from matplotlib.figure import Figure

    compute = _compute()
    order = np.argsort(-result.cosines)[:MAX_PLOTTED]
    fig = Figure(figsize=(7, 0.45 * len(order) + 1.4))
    ax = fig.subplots()
    y = np.arange(len(order))
    ax.barh(y - 0.2, result.probs[order], height=0.4, label=f"learned τ = {1.0 / result.logit_scale:.4f}",
            color="#4f46e5")
    ax.barh(y + 0.2, at_t[order], height=0.4, label=f"your τ = {temperature:g}", color="#f59e0b")
    ax.set_yticks(y, [result.labels[i] for i in order])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("softmax probability")
    ax.set_title(f"entropy: {compute.entropy_bits(result.probs):.2f} bits (learned) vs "
                 f"{compute.entropy_bits(at_t):.2f} bits (yours)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


@user_errors
def explain(result: Any, temperature: Any):
    """The probabilities, bar chart, similarity table and notes of a stored result at ``temperature``
    (no model call, so moving the slider is instant)."""
    if result is None:
        return None, None, None, "Run **Classify** first."
    compute = _compute()
    at_t = compute.softmax_with_temperature(result.cosines, temperature)  # refuses a τ that is not > 0
    temperature = float(temperature)
    order = np.argsort(-result.cosines)
    table = [[result.labels[i], round(float(result.cosines[i]), 4), round(float(result.logits[i]), 2),
              round(float(result.probs[i]), 4), round(float(at_t[i]), 4)] for i in order]
    n_templates = len(result.prompts[0])
    cache = ("Text embeddings came from the **cache** (same model, labels and templates as an earlier call)"
             if result.cached else "Text embeddings were **computed** now (cache miss) and cached for next time")
    top = result.labels[int(np.argmax(result.probs))]
    from shared.ood import page_line  # here, not at import: shared.ood imports torch

    seen = page_line(result.ood, result.model)
    lines = [
        f"**Answer** `{html.escape(top)}` with probability {result.confidence:.3f}. **Like the training data?** {seen}",
        f"**Model** `{result.model}`. {cache}.",
        f"**Learned logit scale** s = {result.logit_scale:.2f} (read from the model's weights), so "
        f"τ = 1/s = {1 / result.logit_scale:.4f}; probabilities = softmax(s · cosine).",
        f"**Prompt ensemble**: {n_templates} template(s) per label, averaged in the embedding space ({PAPER}, "
        "§3.1.4): each prompt embedded and L2-normalised, the mean re-normalised. Label 1 prompts: "
        + "; ".join(f"`{html.escape(p)}`" for p in result.prompts[0][:4]) + ("…" if n_templates > 4 else ""),
    ]
    if result.truncated:
        lines.append(f"⚠️ **Truncated**: {len(result.truncated)} prompt(s) exceeded the text context and were cut "
                     f"to fit, so only their first tokens count: "
                     + "; ".join(f"`{html.escape(p[:60])}…`" for p in result.truncated[:3]))
    return result.probabilities(), _probability_figure(result, at_t, temperature), table, "\n\n".join(lines)


# --------------------------------------------------------------------------------------
#                                   Contrastive batch
# --------------------------------------------------------------------------------------

def _batch_figure(res: compute_module.BatchResult) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    n = len(res.captions)
    fig = Figure(figsize=(max(7.5, 0.45 * n + 4), max(6, 0.4 * n + 3)))
    ax = fig.subplots()
    im = ax.imshow(res.similarity, cmap="viridis")
    short = [f"{j}: {c.removeprefix('a ')}" for j, c in enumerate(res.captions)]
    ax.set_xticks(range(n), short, rotation=70, ha="right", fontsize=7 if n > 12 else 8)
    ax.set_yticks(range(n), [f"image {i}" for i in range(n)], fontsize=7 if n > 12 else 8)
    ax.set_xlabel("caption j")
    ax.set_ylabel("image i")
    for k in range(n):  # the matching pairs
        ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="white", lw=1.2))
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{res.similarity[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if res.similarity[i, j] > res.similarity.mean() else "white")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")
    ax.set_title("cosine(image i, caption j); white boxes: matching pairs", fontsize=10)
    fig.tight_layout()
    return fig


@user_errors
def batch(n: Any, start: Any, model_name: str, progress=gr.Progress()):
    """N held-out shapes renders x their N captions: similarity heatmap, symmetric InfoNCE, hard negatives."""
    progress(0.1, desc="embedding images and captions (the first call loads the model)")
    res = _compute().contrastive_batch(n, start, model_name or options.DEFAULT_MODEL)
    gallery = [(img.resize((96, 96), Image.NEAREST), f"{i}: {caption}")
               for i, (img, caption) in enumerate(zip(res.images, res.captions, strict=True))]
    s = res.logit_scale
    summary = (
        f"**Symmetric InfoNCE loss = {res.loss:.4g}** = (image→text {res.loss_image_to_text:.4g} + "
        f"text→image {res.loss_text_to_image:.4g}) / 2, on logits s · cosine with the learned s = {s:.2f}.\n\n"
        f"Each row is a softmax over captions (which caption is this image's?), each column a softmax over "
        f"images; the target is the diagonal. Chance level is ln N = {np.log(len(res.captions)):.3f}.\n\n"
        f"Top-1: image→text {res.image_to_text_accuracy:.0%}, text→image {res.text_to_image_accuracy:.0%}."
    )
    hard = [[i, res.captions[i], j, res.captions[j], round(c, 4), round(float(res.similarity[i, i]), 4)]
            for i, j, c in res.hard_negatives]
    return _batch_figure(res), summary, hard, gallery


# --------------------------------------------------------------------------------------
#                                   Where in the image
# --------------------------------------------------------------------------------------

@user_errors
def locate(image: Image.Image, label: str, template: str, model_name: str, progress=gr.Progress()):
    """Cosine of each projected patch token to a label, as a heatmap over the (centre-cropped) image."""
    from matplotlib.figure import Figure

    progress(0.1, desc="embedding the label and the patches (the first call loads the model)")
    res = _compute().patch_similarity(image, label, template, model_name or options.DEFAULT_MODEL)
    view = centre_square(image).resize((224, 224), Image.BICUBIC)
    g = res.similarity.shape[0]
    fig = Figure(figsize=(8.5, 4))
    axes = fig.subplots(1, 2)
    axes[0].imshow(view)
    axes[0].set_title("what the model sees (centre crop)", fontsize=10)
    axes[1].imshow(view)
    lim = float(np.abs(res.similarity).max()) or 1.0
    im = axes[1].imshow(res.similarity, cmap="coolwarm", vmin=-lim, vmax=lim, alpha=0.6,
                        extent=(0, 224, 224, 0), interpolation="nearest")
    axes[1].set_title(f"patch · text cosine ({g}×{g} patches) for {res.label!r}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    fig.tight_layout()
    cache = "from the cache" if res.cached else "computed now"
    note = (
        f"Pooled [CLS] cosine (the one CLIP was trained on): **{res.cls_similarity:.4f}**. Patch cosines range "
        f"{res.similarity.min():.3f} to {res.similarity.max():.3f}. Text embedding {cache}; prompts: "
        + "; ".join(f"`{html.escape(p)}`" for p in res.prompts)
    )
    return fig, note


# --------------------------------------------------------------------------------------
#                                   Embedding map
# --------------------------------------------------------------------------------------

SHAPE_COLOURS = {"circle": "#2563eb", "square": "#16a34a", "triangle": "#d97706", "star": "#dc2626",
                 "cross": "#7c3aed"}


def _map_figure(res: compute_module.EmbeddingMap) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(8, 6.2))
    ax = fig.subplots()
    n, xy = res.n, res.coords
    for i in range(n):  # each render joined to its own caption
        ax.plot([xy[i, 0], xy[n + i, 0]], [xy[i, 1], xy[n + i, 1]], color="#9ca3af", lw=0.7, zorder=1)
    for kind, marker in (("image", "o"), ("caption", "^")):
        rows = [i for i, k in enumerate(res.kinds) if k == kind]
        ax.scatter(xy[rows, 0], xy[rows, 1], marker=marker, s=55, zorder=2, edgecolors="black", linewidths=0.4,
                   c=[SHAPE_COLOURS.get(res.shapes[i], "#6b7280") for i in rows])
    mine = [i for i, k in enumerate(res.kinds) if k == "your image"]
    if mine:
        ax.scatter(xy[mine, 0], xy[mine, 1], marker="*", s=320, c="#facc15", edgecolors="black", zorder=3)
    ax.set_xlabel(f"PC 1 ({res.explained[0]:.1%} of the variance)")
    ax.set_ylabel(f"PC 2 ({res.explained[1]:.1%} of the variance)")
    ax.set_title(f"{n} renders (●) and their captions (▲), PCA of the {res.embeddings.shape[1]}-d embeddings; "
                 "grey lines join the pairs", fontsize=9)
    handles = [Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in SHAPE_COLOURS.items()]
    handles += [Line2D([], [], marker="o", ls="", color="white", markeredgecolor="black", label="image"),
                Line2D([], [], marker="^", ls="", color="white", markeredgecolor="black", label="caption")]
    if mine:
        handles.append(Line2D([], [], marker="*", ls="", color="#facc15", markeredgecolor="black", markersize=12,
                              label="your image"))
    ax.legend(handles=handles, fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    return fig


@user_errors
def embedding_map(n: Any, start: Any, image: Image.Image | None, model_name: str, progress=gr.Progress()):
    """N held-out renders, their N captions and the user's image, embedded and projected to 2-D by PCA."""
    progress(0.1, desc="embedding the renders and captions (the first call loads the model)")
    res = _compute().embedding_map(n, start, model_name or options.DEFAULT_MODEL, image)
    stats = {
        "model": model_name or options.DEFAULT_MODEL, "points": len(res.kinds), "dimensions": res.embeddings.shape[1],
        "explained_variance_ratio": [round(float(v), 6) for v in res.explained[:10]],
        "explained_by_2_components": round(float(res.explained[:2].sum()), 6),
        "centroid_gap": round(res.centroid_gap, 6), "matched_cosine": round(res.matched_cosine, 6),
        "unmatched_cosine": round(res.unmatched_cosine, 6),
        "nearest_caption_on_map_is_own": round(res.nearest_caption_is_own, 6),
        "coords": [{"kind": k, "text": t, "x": round(float(x), 6), "y": round(float(y), 6)}
                   for k, t, (x, y) in zip(res.kinds, res.texts, res.coords, strict=True)],
    }
    two = float(res.explained[:2].sum())
    summary = (
        f"**Explained variance**: PC 1 {res.explained[0]:.1%}, PC 2 {res.explained[1]:.1%}, together {two:.1%} of "
        f"the variance of the {res.embeddings.shape[1]}-d unit vectors; the other {1 - two:.1%} is not on this map, "
        "so two points close here may be far apart in the joint space, and the nearest caption on the map is the "
        f"true one for {res.nearest_caption_is_own:.0%} of the images.\n\n"
        f"**In the full space**: matching pairs have a mean cosine of {res.matched_cosine:.3f}, mismatched pairs "
        f"{res.unmatched_cosine:.3f}. The image centroid and the caption centroid lie {res.centroid_gap:.3f} apart "
        "(|mean image embedding − mean caption embedding|, on the unit sphere): the *modality gap* that Liang et al., "
        "2022 (*Mind the Gap*) found in CLIP, where images and texts occupy separate regions of the shared space."
    )
    return _map_figure(res), stats, summary


# --------------------------------------------------------------------------------------
#                                   The maths, step by step
# --------------------------------------------------------------------------------------

@user_errors
def maths(image: Image.Image, labels: str, template: str, model_name: str, progress=gr.Progress()):
    """Dot product, norms, cosine, scaled logit and softmax for every label, the top one written out."""
    progress(0.1, desc="embedding the labels and the image (the first call loads the model)")
    r = _compute().maths_steps(image, labels, template, model_name or options.DEFAULT_MODEL)
    t = r.top
    u, v = r.image_vector, r.text_vectors[t]
    first = " + ".join(f"({u[k]:.3f})({v[k]:.3f})" for k in range(3))
    ensemble = len(r.prompts[t]) > 1
    v_name = ("the mean of its prompts' unit vectors (prompt ensemble), before re-normalising" if ensemble
              else "the text tower's projected feature, before normalising")
    label = html.escape(r.labels[t])
    shifted = np.sort(np.exp(r.logits - r.logits.max()))[::-1]
    terms = " + ".join(f"{e:.4g}" for e in shifted[:6]) + (f" + … ({len(shifted)} terms)" if len(shifted) > 6 else "")
    steps = [
        f"**Top label `{label}`**, {len(r.labels)} labels, model `{r.model}`. u is the image tower's projected "
        f"feature ({len(u)}-d), v is {v_name}. Each step follows Radford et al., 2021, Figure 3 (pseudocode).",
        f"1. **Raw dot product** u·v = Σₖ uₖvₖ = {first} + … ({len(u)} terms) = **{r.dots[t]:.4f}**",
        f"2. **Norms** ‖u‖ = √(Σₖ uₖ²) = **{r.image_norm:.4f}**, ‖v‖ = **{r.text_norms[t]:.4f}**",
        f"3. **Cosine** u·v / (‖u‖ ‖v‖) = {r.dots[t]:.4f} / ({r.image_norm:.4f} × {r.text_norms[t]:.4f}) = "
        f"**{r.cosines[t]:.4f}**",
        f"4. **Scaled logit** s · cos with the learned s = exp(logit_scale) = {r.logit_scale:.4f} (read from the "
        f"model's weights; τ = 1/s = {1 / r.logit_scale:.4f}): {r.logit_scale:.4f} × {r.cosines[t]:.4f} = "
        f"**{r.logits[t]:.4f}**",
        f"5. **Softmax over the {len(r.labels)} labels** p = exp(logit − max) / Σⱼ exp(logitⱼ − max) = "
        f"{np.exp(r.logits[t] - r.logits.max()):.4g} / ({terms}) = **{r.probs[t]:.8g}** "
        "(subtracting the largest logit changes nothing but keeps exp from overflowing).",
    ]
    order = np.argsort(-r.probs)
    table = [[r.labels[i], round(float(r.dots[i]), 4), round(float(r.text_norms[i]), 4), round(r.image_norm, 4),
              round(float(r.cosines[i]), 5), round(float(r.logits[i]), 4), float(f"{r.probs[i]:.8g}")]
             for i in order]
    return "\n\n".join(steps), table


# --------------------------------------------------------------------------------------
#                       The contrastive loss as the temperature changes
# --------------------------------------------------------------------------------------

def _temperature_figure(res: compute_module.TemperatureResult) -> Figure:
    from matplotlib.figure import Figure

    n = len(res.captions)
    fig = Figure(figsize=(11, 4.8))
    ax, curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15]})
    im = ax.imshow(res.row_probs, cmap="magma", vmin=0, vmax=1)
    ax.set_xlabel("caption j")
    ax.set_ylabel("image i")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.tick_params(labelsize=6)
    ax.set_title(f"softmax over captions of cos / τ, τ = {res.temperature:g}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="p(caption j | image i)")
    curve.plot(res.grid, res.curve, color="#4f46e5", label="symmetric InfoNCE")
    curve.axhline(res.chance, color="#9ca3af", ls="--", lw=1, label=f"ln N = {res.chance:.3f} (τ → ∞)")
    curve.axvline(res.temperature, color="#f59e0b", lw=1.5, label=f"your τ = {res.temperature:g}: {res.loss:.3f}")
    curve.axvline(res.learned_temperature, color="#16a34a", ls=":", lw=1.5,
                  label=f"learned τ = {res.learned_temperature:.4f}: {res.learned_loss:.3f}")
    curve.set_xscale("log")
    curve.set_xlabel("temperature τ (log scale)")
    curve.set_ylabel("loss (nats)")
    curve.set_title(f"loss of this batch of {n} pairs against τ", fontsize=9)
    curve.legend(fontsize=7)
    fig.tight_layout()
    return fig


@user_errors
def temperature_loss(n: Any, start: Any, temperature: Any, model_name: str, progress=gr.Progress()):
    """The batch's symmetric InfoNCE and its row softmax at the user's temperature, and the loss curve over τ."""
    progress(0.1, desc="embedding the batch (cached after the first call)")
    res = _compute().contrastive_temperature(n, start, temperature, model_name or options.DEFAULT_MODEL)
    trend = ("every matching pair is its row's and column's best, so the loss goes to 0 as τ → 0" if res.margin > 0
             else f"some pair is beaten by a mismatched one (worst margin {res.margin:.3f}), so as τ → 0 the loss "
                  "grows without bound, like (best wrong − right cosine) / τ")
    summary = (
        f"**Loss at τ = {res.temperature:g}: {res.loss:.4f}** = (image→text {res.loss_image_to_text:.4f} + "
        f"text→image {res.loss_text_to_image:.4f}) / 2, on logits cos / τ; at the model's learned τ = "
        f"{res.learned_temperature:.4f} (1 / its logit scale) it is {res.learned_loss:.4f}. "
        f"The lowest loss on the curve's grid is at τ ≈ {res.best_grid_temperature:.3g}.\n\n"
        f"The cosines do not change with τ, only how sharply each row and column softmax picks a caption. "
        f"As τ → ∞ every softmax is uniform and the loss tends to ln N = {res.chance:.3f}; here {trend}. "
        f"Radford et al., 2021 (§2.5) learn τ, initialised to 0.07."
    )
    table = [[float(f"{t:.5g}"), round(float(v), 5)] for t, v in zip(res.grid, res.curve, strict=True)]
    return _temperature_figure(res), summary, table


# --------------------------------------------------------------------------------------
#                                   Text -> image search
# --------------------------------------------------------------------------------------

@user_errors
def search(query: str, k: Any, model_name: str, progress=gr.Progress()):
    """The top-k gallery renders for a typed caption, by cosine of image and text embeddings."""
    progress(0.1, desc="embedding the gallery (once per model) and the query")
    res = _compute().search(query, k, model_name or options.DEFAULT_MODEL)
    g = res.gallery
    shown = [(g.images[i].resize((112, 112), Image.NEAREST), f"{rank + 1}. {score:.3f}: {g.captions[i]}")
             for rank, (i, score) in enumerate(res.hits)]
    table = [[rank + 1, g.indices[i], g.captions[i], round(score, 4)] for rank, (i, score) in enumerate(res.hits)]
    cache = "came from the **cache**" if res.cached else "were **computed** now and cached"
    note = (f"Query `{html.escape(res.query)}` against {len(g.captions)} held-out renders (test split, indices "
            f"{g.indices[0]}–{g.indices[-1]}); their image embeddings {cache}. Scores are cosines; over the whole "
            f"gallery they range {res.scores.min():.3f} to {res.scores.max():.3f} (median "
            f"{float(np.median(res.scores)):.3f}).")
    if res.truncated:
        note += " ⚠️ The query was longer than the model's text context and was truncated."
    return shown, table, note


# --------------------------------------------------------------------------------------
#                                   Architecture facts
# --------------------------------------------------------------------------------------

@user_errors
def architecture(model_name: str, progress=gr.Progress()):
    """Parameters per tower and MACs per image and per text, counted on the chosen model."""
    progress(0.1, desc="loading the model and counting")
    a = _compute().architecture(model_name or options.DEFAULT_MODEL)
    params = [[part, count, round(100 * count / a.total_parameters, 4)] for part, count in a.parameters.items()]
    params.append(["total", a.total_parameters, 100.0])
    macs = [[f"one image ({a.config['image_size']} px)", a.image_tokens, *a.image_parts.values(), a.macs_per_image],
            [f"one text: {a.example_prompt!r}", a.text_tokens, *a.text_parts.values(), a.macs_per_text]]
    stats = {"model": a.model, "config": a.config, "parameters": a.parameters, "total_parameters": a.total_parameters,
             "macs_per_image": a.macs_per_image, "image_tokens": a.image_tokens, "macs_per_image_parts": a.image_parts,
             "macs_per_text": a.macs_per_text, "text_tokens": a.text_tokens, "example_prompt": a.example_prompt,
             "macs_per_text_parts": a.text_parts, "macs_per_text_full_context": a.macs_per_text_full_context}
    c = a.config
    note = (
        f"**`{a.model}`**: {a.total_parameters:,} parameters. Image tower: ViT, {c['image_size']} px images in "
        f"{c['patch_size']} px patches, width {c['vision_width']}, {c['vision_layers']} layers, MLP "
        f"{c['vision_mlp']}. Text tower: width {c['text_width']}, {c['text_layers']} layers, MLP {c['text_mlp']}, "
        f"vocabulary {c['vocab_size']}, context {c['context_length']} tokens. Joint space {c['projection_dim']}-d.\n\n"
        f"**MACs** (multiply-accumulates) = the FLOPs that `torch.utils.flop_counter.FlopCounterMode` counts / 2, "
        "for one input through its tower and projection, on a copy of the model on the `meta` device with eager "
        "attention (matrix products and the patch convolution; norms, softmax and GELU are not matrix products "
        f"and are not counted). One image costs **{a.macs_per_image / 1e6:,.2f} M MACs**; one text "
        f"of {a.text_tokens} tokens **{a.macs_per_text / 1e6:,.2f} M MACs**, and "
        f"{a.macs_per_text_full_context / 1e6:,.2f} M MACs when it fills the {c['context_length']}-token context "
        "(attention grows with the square of the length). Zero-shot classification embeds the labels once "
        "(cached) and then pays only the image cost per image."
    )
    return params, macs, stats, note


# --------------------------------------------------------------------------------------
#                                   Layout
# --------------------------------------------------------------------------------------

def _model_info() -> str:
    ready = offline_names(TASK)
    return ("Models available here without network: " + ", ".join(f"`{n}`" for n in ready) +
            ". Hub models need network (or a local Hugging Face cache); offline they fail with a clear message.")


def _facts_text(facts: options.ShippedFacts | None) -> str:
    """The shipped model in one paragraph, every number read from its config.json, metrics.json and weights."""
    if facts is None:
        return (f"The shipped `{options.DEFAULT_MODEL}` weights are missing here; retrain them with "
                f"`python -m shared.training {options.DEFAULT_MODEL}`.")
    data = f"{facts.colors} colours × {len(SHAPES)} shapes" if facts.colors else f"{len(SHAPES)} shapes"
    parts = [
        f"**The shipped model** `{facts.name}` was trained here on the shapes dataset and its captions ({data}; "
        f"model card in `shared/weights/{facts.name}/README.md`). Image tower: a ViT on {facts.image_size} px images "
        f"cut into {facts.patch_size} px patches ({facts.grid}×{facts.grid} grid + [CLS]), width "
        f"{facts.vision_width}, {facts.vision_layers} layers. Text tower: width {facts.text_width}, "
        f"{facts.text_layers} layers, context {facts.context_length} tokens. Joint embedding "
        f"{facts.projection_dim}-d; {facts.parameters:,} parameters in all.",
    ]
    if facts.train_wall_seconds is not None:
        parts.append(f"Trained in {facts.train_wall_seconds / 60:.0f} min ({facts.train_wall_seconds:.0f} s of "
                     "wall time).")
    if facts.shape_accuracy is not None and facts.eval_images:
        parts.append(f"Zero-shot with \"{options.DEFAULT_TEMPLATE.format('{shape}')}\" it names the right shape "
                     f"for {facts.shape_accuracy:.1%} of {facts.eval_images} held-out renders.")
    return " ".join(parts)


def _temperature_text(facts: options.ShippedFacts | None) -> str:
    """Radford et al., 2021, §2.5 says only where τ starts and how far it may go; where a model ends is its own."""
    learned = (f"`{facts.name}` ended at s = {facts.logit_scale:.2f}, τ = {facts.temperature:.4f} (read from its "
               "weights); **Classify** reports the learned value of whichever model runs. " if facts else "")
    return (
        "**Temperature.** Probabilities are softmax(cosine / τ) = softmax(s · cosine) with the logit scale s = 1/τ. "
        f"CLIP learns τ during training: its §2.5 ({PAPER}) initialises it \"to the equivalent of "
        f"{options.PAPER_INIT_TEMPERATURE:g}\" and clips it \"to prevent scaling the logits by more than "
        f"{options.PAPER_MAX_LOGIT_SCALE:g}\" (so s ≤ {options.PAPER_MAX_LOGIT_SCALE:g}, τ ≥ "
        f"{1 / options.PAPER_MAX_LOGIT_SCALE:g}), which the authors found necessary for stable training. "
        + learned
        + "Lower τ sharpens the softmax towards the top label, higher τ flattens it. Cosines do not change with τ; "
        "only how decisively they are turned into probabilities."
    )


def _shape_of(path: str) -> str:
    """The shape a sample shows, from its name (``red_circle.png`` -> ``circle``)."""
    return Path(path).stem.rsplit("_", 1)[-1]


def _classify_inputs(default_image: str | None, height: int, template_lines: int):
    """An image, the candidate labels and the prompt templates, with the page's defaults (Zero-shot, The maths)."""
    image = gr.Image(default_image, label="Image", height=height, type="pil")
    labels = gr.Textbox(SHAPE_LABELS, label="Candidate labels (comma- or newline-separated)", lines=2)
    template = gr.Textbox(options.DEFAULT_TEMPLATE, label="Prompt template(s), one per line", lines=template_lines)
    return image, labels, template


def render(demo: gr.Blocks) -> None:
    """The page's components and events, created in the current Blocks context: ``build()`` wraps them
    in a Blocks of their own; the hub renders them straight into its tab (one build per space, and no
    Blocks of its own, whose set-up costs gradio about 0.25 s: issue 14's start-up budget)."""
    samples = sample_examples()
    facts = options.shipped_facts(options.DEFAULT_MODEL)
    default_image = samples[0] if samples else None
    gr.Markdown(
        f"## {TUTORIAL.emoji} {TUTORIAL.title}\n"
        "CLIP embeds an image and a sentence into one space and compares them with a cosine similarity. "
        "Trained so that matching image-caption pairs score highest in a batch, it classifies images into "
        f"labels it never saw as classes: turn each label into a sentence and pick the closest ({PAPER}). "
        "Everything below is computed by the model you pick.\n\n" + _facts_text(facts)
    )
    model = gr.Dropdown(names(TASK), value=options.DEFAULT_MODEL, label="Model", info=_model_info())
    model_state = gr.State(options.DEFAULT_MODEL)  # the classify endpoint's model; hidden from the API
    model.change(lambda m: m, model, model_state, api_visibility="private")

    with gr.Tab("Zero-shot"):
        gr.Markdown(
            "Give an image, candidate labels and one or more prompt templates (one per line, `{}` is the label). "
            "Several templates are averaged into one text embedding per label, the paper's *prompt ensembling*. "
            f"At most {options.MAX_LABELS} labels; prompts longer than the model's text context are truncated."
        )
        with gr.Row():
            with gr.Column():
                image, labels, template = _classify_inputs(default_image, height=260, template_lines=3)
                go = gr.Button("Classify", variant="primary")
            with gr.Column():
                probs = gr.Label(label="Probabilities (softmax at the learned scale)", num_top_classes=10)
                notes = gr.Markdown()
        star = [p for p in samples if _shape_of(p) == "star"][:1]  # colour x shape labels on the star sample
        gr.Examples(
            [[p, SHAPE_LABELS, options.DEFAULT_TEMPLATE] for p in samples]
            + [[p, ", ".join(f"{c} {s}" for c in COLORS for s in ("star", "cross")), ENSEMBLE] for p in star],
            inputs=[image, labels, template], cache_examples=False,
            label="Samples (renders of the shapes dataset); the last uses a three-template ensemble",
        )
        gr.Markdown(_temperature_text(facts))
        temperature = gr.Slider(0.005, 1.0, value=options.PAPER_INIT_TEMPERATURE, step=0.005,
                                label="Your temperature τ (starts at CLIP's initial 0.07)")
        with gr.Row():
            with gr.Column():
                gr.Markdown("**Probabilities at the learned τ (blue) and at yours (orange)**, top 20 labels.")
                chart = gr.Plot(label="Probabilities at the learned and your temperature", show_label=False)
            table = gr.Dataframe(headers=["label", "cosine", "logit (s·cos)", "p (learned τ)", "p (your τ)"],
                                 label="Cosine similarities", interactive=False)
        files = downloads()
        result = gr.State(None)
        shown = [probs, chart, table, notes]
        redraw = dict(fn=with_downloads(explain, shown), inputs=[result, temperature], outputs=shown + [files],
                      api_visibility="private")
        raw_values(go.click, with_downloads(classify, [probs, result]), [image, labels, template, model_state],
                   [probs, result, files], api_name=f"{SLUG}_classify").success(**redraw)
        temperature.change(**redraw)

    with gr.Tab("Contrastive batch"):
        gr.Markdown(
            "Training sees a batch of N images and their N captions. The N×N cosine matrix should be brightest on "
            "the diagonal. CLIP's loss is the **symmetric InfoNCE**: a cross-entropy over each row (image→text) and "
            f"each column (text→image) of s · cosine, averaged ({PAPER}, Figure 3). The images are held-out renders "
            "(test split) and their true captions; off-diagonal pairs with the highest similarity are the "
            "**hard negatives**, the pairs the loss works hardest to push apart."
        )
        with gr.Row():
            n = gr.Slider(2, options.MAX_BATCH, value=12, step=1, label="N (images and captions)")
            start = gr.Number(0, label="First test-split index", precision=0, minimum=0,
                              maximum=options.MAX_START)
            run_batch = gr.Button("Embed the batch", variant="primary")
        with gr.Row():
            heatmap = gr.Plot(label="Cosine similarity, image i x caption j", show_label=False)
            with gr.Column():
                loss = gr.Markdown()
                hard = gr.Dataframe(headers=["image", "its caption", "caption", "confused with", "cosine",
                                             "cosine of the true pair"], label="Hard negatives", interactive=False)
                batch_files = downloads()
        gallery = gr.Gallery(label="The batch (model input size, enlarged)", columns=8, height=260)
        batch_outputs = [heatmap, loss, hard, gallery]
        raw_values(run_batch.click, with_downloads(batch, batch_outputs), [n, start, model],
                   batch_outputs + [batch_files], api_name=f"{SLUG}_batch")

    with gr.Tab("Where in the image"):
        gr.Markdown(
            "**Indicative only.** CLIP has no cross-attention between image and text: the towers meet once, in "
            "the cosine between the pooled [CLS] embedding and the text embedding. Here every patch token of the "
            "last layer goes through the same final layer norm and projection as [CLS] and is compared with the "
            "label's text embedding. Patch tokens were never trained to align with text, so this map can be "
            "noisy or inverted; MaskCLIP (Zhou et al., 2022) found raw patch outputs localise poorly. It shows "
            "what the patch tokens carry, not where the model 'looked'."
        )
        with gr.Row():
            with gr.Column():
                loc_image = gr.Image(default_image, label="Image", height=260, type="pil")
                loc_label = gr.Textbox(_shape_of(default_image) if default_image else "star",
                                       label="Label to locate")
                loc_template = gr.Textbox(options.DEFAULT_TEMPLATE, label="Prompt template(s), one per line")
                run_loc = gr.Button("Map the patches", variant="primary")
            with gr.Column():
                loc_plot = gr.Plot(label="Patch-text cosine map", show_label=False)
                loc_note = gr.Markdown()
                loc_files = downloads()
        gr.Examples([[p, _shape_of(p)] for p in samples],
                    inputs=[loc_image, loc_label], cache_examples=False, label="Samples")
        loc_outputs = [loc_plot, loc_note]
        raw_values(run_loc.click, with_downloads(locate, loc_outputs), [loc_image, loc_label, loc_template, model],
                   loc_outputs + [loc_files], api_name=f"{SLUG}_locate")

    _render_new_views(default_image, model)


def _render_new_views(default_image: str | None, model: gr.Dropdown) -> None:
    """Issue 23: the embedding map, the maths step by step, the temperature knob, search, architecture."""
    with gr.Tab("Embedding map"):
        gr.Markdown(
            "Image and caption embeddings of a batch of held-out renders (and your image), projected from the joint "
            "space to 2-D by **PCA** (Pearson, 1901; Hotelling, 1933), computed with numpy's SVD of the centred "
            "embeddings: with X = U S Vᵀ, component k explains s_k² / Σ s² of the variance. Real embeddings from "
            "the model you pick; what two components cannot show is stated beside the map."
        )
        with gr.Row():
            map_n = gr.Slider(2, options.MAX_BATCH, value=options.DEFAULT_MAP_N, step=1,
                              label="N (renders and captions)")
            map_start = gr.Number(0, label="First test-split index", precision=0, minimum=0, maximum=options.MAX_START)
            map_image = gr.Image(default_image, label="Your image (optional)", height=160, type="pil")
            run_map = gr.Button("Embed and project", variant="primary")
        with gr.Row():
            map_plot = gr.Plot(label="Embedding map (PCA)", show_label=False)
            with gr.Column():
                map_summary = gr.Markdown()
                map_stats = gr.JSON(label="Embedding map stats", open=False, max_height=320)
                map_files = downloads()
        map_outputs = [map_plot, map_stats, map_summary]
        raw_values(run_map.click, with_downloads(embedding_map, map_outputs), [map_n, map_start, map_image, model],
                   map_outputs + [map_files], api_name=f"{SLUG}_map")

    with gr.Tab("The maths"):
        gr.Markdown(
            "Zero-shot classification for one image, step by step: the raw dot product of the image and text "
            "features, their norms, the cosine, the logit scaled by the model's learned logit scale, and the softmax "
            f"over the labels ({PAPER}, Figure 3). The probabilities are those of **Zero-shot**'s Classify."
        )
        with gr.Row():
            with gr.Column():
                m_image, m_labels, m_template = _classify_inputs(default_image, height=220, template_lines=2)
                run_maths = gr.Button("Show the maths", variant="primary")
            with gr.Column():
                m_steps = gr.Markdown()
        m_table = gr.Dataframe(headers=["label", "u·v", "‖v‖", "‖u‖", "cosine", "logit (s·cos)", "softmax p"],
                               label="Every label, step by step", interactive=False)
        m_files = downloads()
        m_outputs = [m_steps, m_table]
        raw_values(run_maths.click, with_downloads(maths, m_outputs), [m_image, m_labels, m_template, model],
                   m_outputs + [m_files], api_name=f"{SLUG}_maths")

    with gr.Tab("Loss vs temperature"):
        gr.Markdown(
            "The **contrastive batch** of N matched image-caption pairs (held-out renders and their captions) under "
            "CLIP's symmetric cross-entropy (InfoNCE: van den Oord et al., 2018; Radford et al., 2021, Figure 3): "
            "L = ½ [ (1/N) Σᵢ −log softmaxⱼ(cosᵢⱼ/τ)ᵢ + (1/N) Σⱼ −log softmaxᵢ(cosᵢⱼ/τ)ⱼ ]. Move τ: the cosines "
            "stay, the row softmax (left) sharpens or flattens, and the loss moves along the curve (right). "
            f"τ from {options.MIN_TEMPERATURE:g} to {options.MAX_TEMPERATURE:g}."
        )
        with gr.Row():
            t_n = gr.Slider(2, options.MAX_BATCH, value=12, step=1, label="N (pairs)")
            t_start = gr.Number(0, label="First test-split index", precision=0, minimum=0, maximum=options.MAX_START)
            t_tau = gr.Slider(options.MIN_TEMPERATURE, options.MAX_TEMPERATURE, value=options.PAPER_INIT_TEMPERATURE,
                              step=0.001, label="Temperature τ (starts at CLIP's initial 0.07)")
            run_t = gr.Button("Compute the loss", variant="primary")
        t_plot = gr.Plot(label="Row softmax and loss against temperature", show_label=False)
        with gr.Row():
            t_summary = gr.Markdown()
            with gr.Column():
                t_table = gr.Dataframe(headers=["τ", "loss"], label="Loss curve", interactive=False, max_height=260)
                t_files = downloads()
        t_outputs = [t_plot, t_summary, t_table]
        raw_values(functools.partial(gr.on, [run_t.click, t_tau.release]), with_downloads(temperature_loss, t_outputs),
                   [t_n, t_start, t_tau, model], t_outputs + [t_files], api_name=f"{SLUG}_temperature")

    with gr.Tab("Text → image search"):
        gr.Markdown(
            f"Type a caption: its text embedding is compared by cosine with the image embeddings of "
            f"{options.GALLERY_SIZE} held-out renders (test split; embedded once per model and cached), and the "
            "top k come back with their scores. Retrieval is the other direction of zero-shot classification: the "
            "same cosine, ranked over images instead of labels."
        )
        with gr.Row():
            query = gr.Textbox(options.DEFAULT_QUERY, label="Caption to search for")
            top_k = gr.Slider(1, options.MAX_TOP_K, value=options.DEFAULT_TOP_K, step=1, label="Top k")
            run_search = gr.Button("Search", variant="primary")
        hits = gr.Gallery(label="Best matches (rank. cosine: true caption)", columns=6, height=260)
        with gr.Row():
            hits_table = gr.Dataframe(headers=["rank", "test index", "true caption", "cosine"], label="Search results",
                                      interactive=False)
            with gr.Column():
                search_note = gr.Markdown()
                search_files = downloads()
        search_outputs = [hits, hits_table, search_note]
        raw_values(run_search.click, with_downloads(search, search_outputs), [query, top_k, model],
                   search_outputs + [search_files], api_name=f"{SLUG}_search")

    with gr.Tab("Architecture"):
        gr.Markdown("Parameters per tower and MACs per image and per text for the model chosen above, counted on the "
                    "instantiated model.")
        run_arch = gr.Button("Count", variant="primary")
        arch_note = gr.Markdown()
        arch_macs = gr.Dataframe(headers=["input", "tokens", "patch embedding", "attention", "MLP", "projection",
                                          "total MACs"], label="MACs per input", interactive=False)
        with gr.Row():
            arch_params = gr.Dataframe(headers=["part", "parameters", "% of total"], label="Parameters per tower",
                                       interactive=False)
            with gr.Column():
                arch_stats = gr.JSON(label="Architecture stats", open=False, max_height=320)
                arch_files = downloads()
        arch_outputs = [arch_params, arch_macs, arch_stats, arch_note]
        raw_values(run_arch.click, with_downloads(architecture, arch_outputs), [model], arch_outputs + [arch_files],
                   api_name=f"{SLUG}_architecture")


def build() -> gr.Blocks:
    return page(render, TUTORIAL.title)


if __name__ == "__main__":
    build().launch()
