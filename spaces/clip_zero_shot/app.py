"""CLIP zero-shot: Gradio glue around ``compute.py`` (which holds all the maths).

The hub imports this module and calls ``build()`` at start-up, so neither may import torch,
transformers or matplotlib (issue 14): ``compute`` is imported on the first request (``_compute``),
figures import matplotlib when they are drawn, and the page's limits and model facts come from the
torch-free ``options.py``.
"""

from __future__ import annotations

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
    if result.ood is None:
        seen = (f"No out-of-distribution calibration ships with `{result.model}`, so nothing tells whether this "
                "image is like its training data.")
    else:
        seen = ("⚠️ " if result.ood.unusual else "") + result.ood.message
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
                image = gr.Image(default_image, label="Image", height=260, type="pil")
                labels = gr.Textbox(SHAPE_LABELS, label="Candidate labels (comma- or newline-separated)", lines=2)
                template = gr.Textbox(options.DEFAULT_TEMPLATE, label="Prompt template(s), one per line", lines=3)
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


def build() -> gr.Blocks:
    return page(render, TUTORIAL.title)


if __name__ == "__main__":
    build().launch()
