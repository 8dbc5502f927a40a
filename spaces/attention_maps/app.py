"""Visual attention: Gradio glue around ``compute.py`` (which holds the maths) and ``shared.attention``.

The hub imports this module and calls ``render`` at start-up, so neither may import torch, transformers or
matplotlib: ``compute`` is imported inside the handlers, and the page's limits and the shipped model's facts
come from the torch-free ``options.py``.
"""

from __future__ import annotations

import functools
import html
from typing import Any

import gradio as gr

from hub.registry import get as tutorial
from shared.models import offline_names
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from . import options

SLUG = "attention_maps"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = ("vit-tiny-shapes",)

VASWANI = "Vaswani et al., 2017, *Attention Is All You Need*"
VIT = "Dosovitskiy et al., 2021, *An Image is Worth 16x16 Words*"
ROLLOUT = "Abnar & Zuidema, 2020, *Quantifying Attention Flow in Transformers*"
JAIN = "Jain & Wallace, 2019, *Attention is not Explanation*"


def _compute():
    """Imported on first use (it imports torch); relative, so an exported Space imports it too."""
    from . import compute

    return compute


def _model(name: Any) -> str:
    return name or options.DEFAULT_MODEL


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def run_rollout(image, head_fusion, discard_ratio, model_name=options.DEFAULT_MODEL, progress=gr.Progress()):
    """The public endpoint: the rollout overlay and the stats JSON the issue lists."""
    progress(0.1, desc="running the model (the first call loads it)")
    result = _compute().rollout(image, head_fusion, discard_ratio, _model(model_name))
    return result.overlay, result.stats


def _heads_figure(cap, layer: int):
    from matplotlib.figure import Figure

    maps = _compute().all_heads(cap.att, layer)  # (H, rows, cols)
    h = maps.shape[0]
    cols = min(h, 4)
    rows = -(-h // cols)
    fig = Figure(figsize=(2.3 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    size = cap.att.image_size
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= h:
            continue
        ax.imshow(cap.view)
        ax.imshow(maps[i], cmap="inferno", alpha=0.6, extent=(0, size, size, 0), interpolation="nearest")
        ax.set_title(f"head {i}: max {maps[i].max():.2f}", fontsize=8)
    fig.suptitle(f"[CLS] -> patch attention, every head of layer {layer}", fontsize=10)
    fig.tight_layout()
    return fig


@user_errors
def run_maps(image, model_name, layer, head, query_row, query_col, progress=gr.Progress()):
    """One layer and head: the [CLS]->patch map, the all-heads grid and where one patch query attends."""
    progress(0.1, desc="running the model (the first call loads it)")
    compute = _compute()
    cap = compute.capture(image, _model(model_name))
    att = cap.att
    layer_i, head_i = compute.check_layer_head(att, layer, head)
    cls = compute.cls_map(att, layer_i, head)
    query = compute.query_map(att, layer_i, head, query_row, query_col)
    row, col = int(query_row), int(query_col)
    who = "the mean of the heads" if head_i is None else f"head {head_i}"
    note = (
        f"**{html.escape(cap.model_name)}** predicts **{html.escape(str(cap.label))}**"
        + (f" ({cap.confidence:.1%})" if cap.confidence is not None else "")
        + f". Layer {layer_i} of 0-{att.layers - 1}, {who} of {att.heads}; a {att.grid[0]}x{att.grid[1]} patch grid "
        f"of {att.patch_size} px patches on the {att.image_size} px input, plus {att.prefix} special token(s).\n\n"
        f"[CLS] gives {cls.sum():.1%} of its attention to the patches (the rest to special tokens); its largest "
        f"weight is {cls.max():.3f} (uniform would be {1 / (att.maps.shape[-1]):.3f}). The query patch (row {row}, "
        f"column {col}, outlined) puts {query.max():.3f} on its favourite patch; each map is scaled to its own maximum."
    )
    if cap.label is not None:  # a classifier: say whether the image looks like its training data
        from shared import ood  # imports torch: only once a model has run

        note = html.escape(ood.page_line(cap.ood, cap.model_name)) + "\n\n" + note
    return (compute.overlay(cap.view, cls), _heads_figure(cap, layer_i),
            compute.overlay(cap.view, query, highlight=(row, col)), note, list(att.grid))


def pick_query(grid, evt: gr.SelectData):
    """A click on the query map -> (row, col) of the patch under the pointer."""
    if not grid or evt is None or evt.index is None:
        return gr.skip(), gr.skip()
    x, y = evt.index[0], evt.index[1]
    row, col = _compute().patch_at(x, y, (options.OVERLAY_PX, options.OVERLAY_PX), tuple(grid))
    return row, col


def _distance_figure(distance, image_size: int, model_name: str):
    import numpy as np
    from matplotlib.figure import Figure

    layers, heads = distance.shape
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for h in range(heads):
        ax.scatter(np.arange(layers), distance[:, h], s=22, label=f"head {h}" if heads <= 12 else None)
    ax.plot(np.arange(layers), distance.mean(1), color="black", lw=1, label="mean of heads")
    ax.set_xlabel("network depth (layer)")
    ax.set_ylabel("mean attention distance (pixels)")
    ax.set_ylim(0, image_size * 0.6)
    ax.set_xticks(range(layers))
    ax.set_title(f"{model_name}: one dot per head and layer (input {image_size} px wide)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _entropy_figure(entropy, scale, n_tokens: int):
    import numpy as np
    from matplotlib.figure import Figure

    layers, heads = entropy.shape
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    x = np.arange(layers)
    for h in range(heads):
        off = (h - (heads - 1) / 2) * 0.6 / max(heads, 1)
        ax.scatter(x + off, scale.entropy_scaled[:, h], s=22, color="#4f46e5",
                   label="with 1/√d_k (what the model computes)" if h == 0 else None)
        ax.scatter(x + off, scale.entropy_unscaled[:, h], s=22, color="#f59e0b", marker="x",
                   label="without the scale" if h == 0 else None)
    ax.axhline(np.log(n_tokens), color="grey", ls="--", lw=1, label=f"uniform over {n_tokens} tokens: ln N")
    ax.set_xticks(range(layers))
    ax.set_xlabel("layer (dots: heads)")
    ax.set_ylabel("entropy of the [CLS] query (nats)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title("[CLS] attention entropy per head, with and without 1/√d_k", fontsize=9)
    fig.tight_layout()
    return fig


@user_errors
def run_statistics(image, model_name, progress=gr.Progress()):
    """Mean attention distance and entropy per head and layer, the 1/sqrt(d_k) effect, and the cost panel."""
    import numpy as np
    import pandas as pd

    from shared import attention as shared_attention

    progress(0.1, desc="running the model (the first call loads it)")
    compute = _compute()
    cap = compute.capture(image, _model(model_name))
    att = cap.att
    distance = shared_attention.mean_distance(att)
    entropy = shared_attention.cls_entropy(att)
    progress(0.5, desc="reading q and k of every layer")
    scale = compute.scale_effect(image, _model(model_name))
    n_tokens = att.maps.shape[-1]
    table = [[layer, head, round(float(distance[layer, head]), 2), round(float(entropy[layer, head]), 4),
              round(float(scale.entropy_unscaled[layer, head]), 4), round(float(scale.max_weight_scaled[layer, head]), 4),
              round(float(scale.max_weight_unscaled[layer, head]), 4)]
             for layer in range(att.layers) for head in range(att.heads)]
    by_layer = distance.mean(1)
    centres = shared_attention.patch_centres(att.grid, att.patch_size)
    uniform = float(np.linalg.norm(centres[:, None] - centres[None], axis=-1).mean())
    grows = bool(np.all(np.diff(by_layer) >= 0))
    sharper = int((scale.entropy_unscaled < scale.entropy_scaled).sum())
    note = (
        "**Mean attention distance** per layer (mean of heads): "
        + ", ".join(f"layer {i}: {d:.1f} px" for i, d in enumerate(by_layer))
        + f" — {'it grows with every layer' if grows else 'it does not grow monotonically with depth'} on this "
        f"image. Patch centres are {att.patch_size} px apart; a head attending uniformly to every patch would score "
        f"{uniform:.1f} px (the mean distance between patch centres).\n\n"
        f"**1/√d_k** with d_k = {scale.d_k}: without the scale the [CLS] logits' spread grows by √d_k = "
        f"{np.sqrt(scale.d_k):.2f} (std per layer scaled: "
        + ", ".join(f"{s:.2f}" for s in scale.logit_std_scaled) + "; unscaled: "
        + ", ".join(f"{s:.2f}" for s in scale.logit_std_unscaled)
        + f"), and {sharper} of {att.layers * att.heads} heads get a sharper (lower-entropy) softmax, closer to "
        f"one-hot, where gradients vanish ({VASWANI}, §3.2.1). Softmax(q kᵀ/√d_k) from the hooked projections "
        f"matches the model's own attention to {scale.max_abs_error:.1e}."
    )
    return (_distance_figure(distance, att.image_size, cap.model_name), _entropy_figure(entropy, scale, n_tokens),
            table, pd.DataFrame(compute.cost_table(cap), columns=compute.COST_HEADERS), note)


def limits(image, model_name):
    """Slider and head-choice ranges of the model that ran (private; errors are shown by the public events)."""
    try:
        att = _compute().capture(image, _model(model_name)).att
    except ValueError:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    rows, cols = att.grid
    return (gr.update(maximum=att.layers - 1), gr.update(choices=[options.ALL_HEADS] + list(range(att.heads))),
            gr.update(maximum=rows - 1), gr.update(maximum=cols - 1))


# --------------------------------------------------------------------------------------
#                                   Layout
# --------------------------------------------------------------------------------------

def _facts_text(facts: options.ShippedFacts | None) -> str:
    if facts is None:
        return (f"The shipped `{options.DEFAULT_MODEL}` weights are missing here; retrain them with "
                f"`python -m shared.training {options.DEFAULT_MODEL}`.")
    text = (f"**The default model** `{facts.name}` is a ViT trained here on the shapes dataset "
            f"({', '.join(facts.classes)}): {facts.image_size} px input, {facts.patch_size} px patches "
            f"({facts.grid}x{facts.grid} grid + [CLS]), width {facts.hidden_size}, {facts.layers} layers of "
            f"{facts.heads} heads (d_k = {facts.head_dim})")
    if facts.parameters:
        text += f", {facts.parameters:,} parameters"
    if facts.accuracy is not None and facts.eval_images:
        text += f"; {facts.accuracy:.2%} accuracy on {facts.eval_images:,} held-out renders"
    return text + f" (card: `shared/weights/{facts.name}/README.md`)."


def render(demo: gr.Blocks) -> None:
    samples = sample_examples()
    facts = options.shipped_facts(options.DEFAULT_MODEL)
    layers = facts.layers if facts else 4
    heads = facts.heads if facts else 4
    grid = facts.grid if facts else 8
    default_image = samples[0] if samples else None
    gr.Markdown(
        f"## {TUTORIAL.emoji} {TUTORIAL.title}\n"
        "Every token of a ViT builds its next representation as a weighted average of all tokens' values; the "
        f"weights are one row of softmax(Q Kᵀ / √d_k), one matrix per layer and head ({VASWANI}; {VIT}). "
        "Everything below is read from the model you pick, on the image you give: no map is drawn by hand.\n\n"
        + _facts_text(facts)
    )
    ready = ", ".join(f"`{n}`" for n in offline_names("image-classification"))
    model = gr.Dropdown(list(options.MODELS), value=options.DEFAULT_MODEL, label="Model",
                        info=f"Available here without network: {ready}. The Hub models need network (or a local "
                             "Hugging Face cache); offline they fail with a message naming the embedded model.")
    model_state = gr.State(options.DEFAULT_MODEL)  # the rollout endpoint's model; hidden from the API
    model.change(lambda m: m, model, model_state, api_visibility="private")

    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(default_image, label="Image", type="pil", height=256)
            fusion = gr.Radio(list(options.FUSIONS), value=options.DEFAULT_FUSION, label="Head fusion (rollout)")
            discard = gr.Slider(0, 0.99, value=options.DEFAULT_DISCARD, step=0.01,
                                label="Discard ratio (rollout): share of the smallest entries zeroed per layer")
            go = gr.Button("Compute attention", variant="primary")
        with gr.Column(scale=1):
            rollout_image = gr.Image(label="Attention rollout over the model's input", type="pil", height=300,
                                     interactive=False)
            stats = gr.JSON(label="Rollout stats")
            files = downloads()
    if samples:
        gr.Examples([[p] for p in samples], inputs=[image], label="Samples (renders of the shapes dataset)")
    gr.Markdown(
        f"**Attention rollout** ({ROLLOUT}): per layer, fuse the heads (mean, max or min); zero the given share of "
        "the smallest entries of the fused N×N matrix ([CLS]→[CLS] kept); add the identity for the residual path, "
        "Ã = (A + I)/2 with rows renormalised; multiply the layers, R = Ã_L ⋯ Ã_1; the map is R's [CLS] row over "
        "the patches, normalised to sum 1. It tracks how much of [CLS]'s final input flows from each patch, if "
        f"attention were all that mixed tokens, which it is not: the MLPs and values matter too ({JAIN})."
    )

    gr.Markdown("### One layer, one head\nThe [CLS] query's weights over the patches, every head of the layer, and "
                "the weights of any patch query. **Click a patch on the query map** to make it the query.")
    with gr.Row():
        layer = gr.Slider(0, layers - 1, value=layers - 1, step=1, label="Layer")
        head = gr.Dropdown([options.ALL_HEADS] + list(range(heads)), value=0, label="Head")
        qrow = gr.Slider(0, grid - 1, value=grid // 2, step=1, label="Query patch row")
        qcol = gr.Slider(0, grid - 1, value=grid // 2, step=1, label="Query patch column")
    with gr.Row():
        cls_image = gr.Image(label="[CLS] -> patches, this layer and head", type="pil", height=300, interactive=False)
        query_image = gr.Image(label="Query patch -> patches (click a patch)", type="pil", height=300,
                               interactive=False)
    maps_note = gr.Markdown()
    heads_plot = gr.Plot(label="All heads of the layer")
    maps_files = downloads()
    grid_state = gr.State([grid, grid])

    gr.Markdown(
        "### Per head and layer\n"
        "**Mean attention distance**: for each patch query, the attention-weighted distance between patch centres "
        "(patch keys only, weights renormalised over them), in pixels of the model's input, averaged over the "
        f"queries: the analogue of a receptive field. {VIT}, Figure 7 (right) plots it for ViT-L/16 (24 layers, "
        "16 heads; averaged over 128 images 224 px wide, Appendix D.7, Figure 11): some heads attend globally "
        "already in the lowest layers, and the distance grows with depth. **Entropy**: of the [CLS] query's "
        "attention over all tokens, in nats (0: one token; ln N: uniform). **The 1/√d_k scale** "
        f"({VASWANI}, §3.2.1): q·k sums d_k products, so its spread grows like √d_k; the scale keeps the softmax "
        "out of its saturated region. Here q and k are read from the model's own projections (forward hooks) and "
        "the softmax is taken with and without the scale."
    )
    go_stats = gr.Button("Per-head statistics", variant="secondary")
    with gr.Row():
        distance_plot = gr.Plot(label="Mean attention distance (ViT Figure 7 right, for this model)")
        entropy_plot = gr.Plot(label="Entropy of the [CLS] query, with and without the scale")
    stats_note = gr.Markdown()
    head_table = gr.Dataframe(
        headers=["layer", "head", "mean distance (px)", "[CLS] entropy (nats)", "entropy without 1/√d_k",
                 "max weight", "max weight without 1/√d_k"], label="Per head", interactive=False)
    gr.Markdown(
        "### What attention costs\nN = (S/P)² patches + special tokens. Per layer, QKᵀ is H products of (N×d_k)·"
        "(d_k×N): N²·d_k multiply-accumulates (MACs) each, N²·D in all; A·V costs the same. The attention matrix holds "
        "H·N² numbers per layer (4 bytes each in fp32). Doubling the input side quadruples N and multiplies these by "
        "16, while the projections grow only 4×. Checked against PyTorch's FLOP counter on the instantiated model "
        "(which counts a MAC as 2 FLOPs)."
    )
    cost_table = gr.Dataframe(label="Attention cost per image (batch 1, all layers)", interactive=False)
    stats_files = downloads()

    rollout_outputs = [rollout_image, stats]
    maps_outputs = [cls_image, heads_plot, query_image, maps_note, grid_state]
    stats_outputs = [distance_plot, entropy_plot, head_table, cost_table, stats_note]
    maps_event = dict(fn=with_downloads(run_maps, maps_outputs), inputs=[image, model, layer, head, qrow, qcol],
                      outputs=maps_outputs + [maps_files])
    stats_event = dict(fn=with_downloads(run_statistics, stats_outputs), inputs=[image, model],
                       outputs=stats_outputs + [stats_files])
    limits_event = dict(fn=limits, inputs=[image, model], outputs=[layer, head, qrow, qcol], api_visibility="private")

    dep = raw_values(go.click, with_downloads(run_rollout, rollout_outputs), [image, fusion, discard, model_state],
                     rollout_outputs + [files], api_name=f"{SLUG}_rollout")
    raw_values(dep.success, limits_event["fn"], limits_event["inputs"], limits_event["outputs"],
               api_visibility="private")
    raw_values(dep.success, maps_event["fn"], maps_event["inputs"], maps_event["outputs"], api_name=f"{SLUG}_maps")
    raw_values(dep.success, stats_event["fn"], stats_event["inputs"], stats_event["outputs"],
               api_name=f"{SLUG}_statistics")
    raw_values(go_stats.click, stats_event["fn"], stats_event["inputs"], stats_event["outputs"],
               api_visibility="private")
    redraw = functools.partial(gr.on, [layer.release, head.input, qrow.release, qcol.release])
    raw_values(redraw, maps_event["fn"], maps_event["inputs"], maps_event["outputs"], api_visibility="private")
    clicked = raw_values(query_image.select, pick_query, [grid_state], [qrow, qcol], api_visibility="private")
    raw_values(clicked.then, maps_event["fn"], maps_event["inputs"], maps_event["outputs"],
               api_visibility="private")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
