"""Video transformers: tubelet tokens, the cost of three space-time attention patterns, and a tiny video ViT
trained here on moving shapes, with its temporal attention. The maths lives in compute.py.

Thin glue: ``render()`` imports neither torch nor matplotlib (the hub builds every page at start-up);
``compute`` and ``views`` are imported by the handlers, on first use.
"""

from __future__ import annotations

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, user_errors, with_downloads

from . import options
from .options import ANY_DIRECTION, CAPS, DEFAULTS, HUB_MODEL, MODE_NAMES, MODEL, MODES, TABLE_FRAMES, model_facts

SLUG = "video_attention"
TUTORIAL = tutorial(SLUG)  # title and emoji are typed once, in hub/registry.py
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (MODEL,)

PAPERS = {
    "vivit": "[Arnab et al., 2021 (ViViT)](https://arxiv.org/abs/2103.15691)",
    "timesformer": "[Bertasius et al., 2021 (TimeSformer)](https://arxiv.org/abs/2102.05095)",
    "videomae": "[Tong et al., 2022 (VideoMAE)](https://arxiv.org/abs/2203.12602)",
    "vit": "[Dosovitskiy et al., 2021](https://arxiv.org/abs/2010.11929)",
}
COST_INPUTS = ("frames", "image_size", "patch_size", "tubelet", "hidden_size", "layers")


# --------------------------------------------------------------------------------------
#                                   Text
# --------------------------------------------------------------------------------------

def _model_line(f: dict) -> str:
    if not f:
        return f"The embedded model `{MODEL}` is not trained yet: `python -m shared.training {MODEL}`."
    m = f["metrics"]
    acc = (f"; **direction accuracy {m['direction_accuracy']:.1%}** on {m['n_test']:,} held-out test clips "
           f"(chance {m.get('chance', 1 / len(f['classes'])):.1%}), trained on {m.get('train_clips'):,} clips"
           if "direction_accuracy" in m else "")
    params = f", {m['parameters']:,} parameters" if "parameters" in m else ""
    return (f"`{MODEL}` (a `transformers` `VideoMAEForVideoClassification`, trained here from scratch): "
            f"{f['frames']} frames of {f['image']}×{f['image']} px, tubelets {f['tubelet']}×{f['patch']}×{f['patch']} "
            f"→ {f['t']}×{f['grid']}×{f['grid']} = {f['tokens']} tokens, width {f['width']}, {f['layers']} layers, "
            f"{f['heads']} heads{params}{acc} (its config.json and metrics.json).")


def _intro(f: dict) -> str:
    return (
        f"# {TUTORIAL.emoji} {TUTORIAL.title}\n"
        f"A video transformer cuts a clip into **tubelets** of t frames × p × p pixels and embeds each as one "
        f"token ({PAPERS['vivit']}); how those tokens attend decides the cost. Joint space-time attention "
        f"(ViViT model 1, {PAPERS['videomae']}) lets every token see every other one: its cost grows with the "
        f"square of frames × patches. Divided attention ({PAPERS['timesformer']}) attends over time at each "
        f"position, then over space in each time step; the factorised encoder (ViViT model 2) runs a spatial "
        f"encoder per time step, then a temporal encoder over the time steps. Every number below is computed; "
        f"the live model is " + _model_line(f)
    )


def _cost_markdown(s: dict) -> str:
    t, g, _ = s["grid"]
    head = (f"**{s['tokens']:,} tokens** = ({s['frames']}/{s['tubelet']}) × ({s['image_size']}/{s['patch_size']})² "
            f"= {t} × {g} × {g}. **{MODES[s['mode']][0]}** ({MODES[s['mode']][1]}): "
            f"**{s['attention_macs'] / 1e9:,.3f} G** attention MACs over {s['attention_layers']} attention layers, "
            f"one layer's attention matrix **{s['attention_matrix_bytes'] / 2**20:,.2f} MiB** "
            f"({s['attention_matrix_entries']:,} fp32 entries, one head).")
    return head + (
        "\n\nMACs count Q·Kᵀ and A·V only (projections and MLP excluded); with h heads of d/h dimensions each "
        "product costs n²·d whatever h. Joint: 2·N²·d per layer (N = T'·S, S = g²). Divided: 2·d·(S·T'² + "
        "T'·S²) per layer. Factorised: L spatial layers of 2·d·T'·S² plus L temporal layers of 2·d·T'². "
        "Memory: one layer, one head, fp32: joint N², divided S·T'² + T'·S² (both attentions of a block), "
        "factorised T'·S² (a spatial-encoder layer). No class tokens."
    )


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def tokenise(index, patch_size, tubelet, progress=gr.Progress()):
    """A held-out clip cut into tubelets: the strip with the tubelets outlined, and the token count."""
    progress(0, desc="rendering the clip")
    from . import compute, views

    f = model_facts()
    i, spec, clip = compute.pick_clip(index, ANY_DIRECTION, f.get("frames", 16), f.get("image", 32))
    tok = compute.tubelets(clip, patch_size, tubelet)
    t, g, _ = tok.grid
    title = (f"test clip {i}: {spec.caption}. Tubelets {tok.tubelet}×{tok.patch}×{tok.patch}: frames of one "
             f"border colour form one time step t'; the white grid is the patches → {t}×{g}×{g} = {tok.tokens} tokens")
    return views.clip_strip(clip, tok.tubelet, tok.patch, title), {**tok.stats, "clip_index": i}


@user_errors
def video_attention_cost(frames, image_size, patch_size, tubelet, hidden_size, layers, mode, progress=gr.Progress()):
    """Stats JSON: tokens, attention_macs, attention_matrix_bytes (and the grid and the split) of one pattern."""
    progress(0, desc="counting")
    from . import compute

    return compute.attention_cost(frames, image_size, patch_size, tubelet, hidden_size, layers, mode)


@user_errors
def cost_details(stats):
    """Summary, the comparison table (8, 16, 32 frames and yours) and the growth plots of a cost result."""
    import pandas as pd

    from . import compute, views

    c = {k: stats[k] for k in COST_INPUTS}
    frame_counts = sorted({f for f in (*TABLE_FRAMES, c["frames"]) if f % c["tubelet"] == 0})
    rows = []
    for f in frame_counts:
        try:
            rows += compute.cost_table([f], c["image_size"], c["patch_size"], c["tubelet"], c["hidden_size"],
                                       c["layers"])
        except ValueError:  # a frame count beyond a cap for some mode: left out of the table
            continue
    curves = compute.cost_curves(*(c[k] for k in COST_INPUTS))
    fixed = f"{c['image_size']} px, patch {c['patch_size']}, tubelet {c['tubelet']}, d {c['hidden_size']}, L {c['layers']}"
    by_frames = views.growth_figure(curves.frames, curves.by_frames, "frames",
                                    f"longer clips ({fixed})")
    by_size = views.growth_figure(curves.sizes, curves.by_size, "image size (px)",
                                  f"higher resolution ({c['frames']} frames, patch {c['patch_size']}, tubelet "
                                  f"{c['tubelet']}, d {c['hidden_size']}, L {c['layers']})")
    return _cost_markdown(stats), pd.DataFrame(rows), by_frames, by_size


@user_errors
def video_attention_classify(index, direction, layer, head, row, col, progress=gr.Progress()):
    """The embedded video ViT on a held-out clip: probabilities, the clip with the chosen patch, the
    frame × frame attention map of that patch, a summary and the stats."""
    f = model_facts()
    if not f:
        raise ValueError(f"{MODEL} is not trained yet: run `python -m shared.training {MODEL}`")
    progress(0, desc=f"loading {MODEL}")
    from . import compute, views

    layer, head, row, col = compute.check_probe(layer, head, row, col, f)
    res = compute.classify(index, direction)
    probs = {c: float(p) for c, p in zip(res.classes, res.probs, strict=True)}
    tmap = res.temporal_map(layer, head, row, col)
    share = res.same_patch_share(layer, head, row, col)
    strip = views.clip_strip(res.clip, res.tubelet, res.patch,
                             f"test clip {res.index}: {res.caption} (yellow: patch ({row}, {col}))", (row, col))
    summary = (f"Test clip **{res.index}**, true direction **{res.true_direction}**, predicted **{res.predicted}** "
               f"({probs[res.predicted]:.1%}). Layer {layer + 1}, head {head + 1}: the tokens of patch ({row}, {col}) "
               f"give on average **{share:.1%}** of their attention to the same patch at the {res.grid[0]} time steps "
               f"(a uniform head would give {1 / res.grid[1] ** 2:.1%}); the rest goes to the other patches. Row i "
               "of the map: where the token at time step i looks, among the same patch's time steps (rows sum to "
               f"that share, not to 1). Time step t' covers frames {res.tubelet}t' to {res.tubelet}t' + "
               f"{res.tubelet - 1}.")
    stats = {"clip_index": res.index, "true_direction": res.true_direction, "predicted": res.predicted,
             "probabilities": {k: round(v, 4) for k, v in probs.items()}, "layer": layer + 1, "head": head + 1,
             "patch": [row, col], "same_patch_share": round(share, 4),
             "temporal_map": [[round(float(v), 4) for v in r] for r in tmap]}
    return probs, strip, views.temporal_figure(res, layer, head, row, col), summary, stats


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    facts = model_facts()
    gr.Markdown(_intro(facts))

    with gr.Tab("Tubelets"):
        gr.Markdown(
            f"A tubelet of t frames × p × p pixels becomes one token through a 3-D convolution of stride (t, p, p) "
            f"({PAPERS['vivit']}, section 3.2): T/t × (H/p) × (W/p) tokens, each of t·p·p·3 values. The clip is a "
            "held-out moving-shapes clip (`shared/data/moving_shapes.py`, test split) at the model's size. With "
            "t = 1 it is a ViT on each frame (uniform frame sampling)."
        )
        with gr.Row():
            tok_index = gr.Number(value=0, precision=None, step=1, label=f"test clip index (0–{options.MAX_CLIP_INDEX})")
            tok_patch = gr.Dropdown(list(options.token_patches(facts.get("image", 32))), value=facts.get("patch", 8),
                                    label="patch p (px)")
            tok_tubelet = gr.Dropdown(list(options.TOKEN_TUBELETS), value=facts.get("tubelet", 2), label="tubelet t (frames)")
            tok_btn = gr.Button("Tokenise", variant="primary")
        tok_plot = gr.Plot(label="the clip cut into tubelets")
        tok_stats = gr.JSON(label="token count")
        tok_files = downloads()

    with gr.Tab("Attention cost"):
        gr.Markdown(
            f"The three patterns of {PAPERS['vivit']} and {PAPERS['timesformer']}, counted for any clip. Caps: "
            f"{options.caps_text()}; frames must be divisible by the tubelet and the image by the patch. Defaults: "
            f"ViT-B width (d = 768, 12 layers, {PAPERS['vit']}) on 16 frames of 224 px, patch 16, tubelet 2, "
            "as VideoMAE-B."
        )
        with gr.Row():
            boxes = [gr.Number(value=DEFAULTS[k], precision=None, step=1, label=k.replace("_", " "),
                               minimum=CAPS[k][0], maximum=CAPS[k][1]) for k in COST_INPUTS]
            mode = gr.Dropdown([(f"{MODES[m][0]} ({m})", m) for m in MODE_NAMES], value=DEFAULTS["mode"], label="mode")
        cost_btn = gr.Button("Count", variant="primary")
        cost_md = gr.Markdown()
        cost_table = gr.Dataframe(label="all three modes at 8, 16, 32 frames (and yours), with the joint / divided ratio")
        frames_plot = gr.Plot(label="cost as the clip gets longer")
        size_plot = gr.Plot(label="cost as the resolution grows")
        cost_stats = gr.JSON(label="stats (the endpoint video_attention_cost)")
        cost_files = downloads()

    with gr.Tab("Live model"):
        gr.Markdown(
            "The embedded video ViT reads the direction a shape moves. Pick a held-out test clip (or the first one "
            "from that index on that moves in a chosen direction), then a layer, a head and a patch: the map shows "
            "how that patch's token at each tubelet time step attends to the same patch at every time step "
            "(`output_attentions=True`, eager attention). The model attends jointly over all tokens "
            f"(VideoMAE's encoder, {PAPERS['videomae']}); with network, `{HUB_MODEL}` loads through the same loader "
            "(`shared.models.load`)."
        )
        g = facts.get("grid", 4)
        with gr.Row():
            clip_index = gr.Number(value=0, precision=None, step=1, label=f"test clip index (0–{options.MAX_CLIP_INDEX})")
            direction = gr.Dropdown([ANY_DIRECTION, *facts.get("classes", [])], value=ANY_DIRECTION, label="direction")
            layers = max(2, facts.get("layers", 2))  # a slider needs minimum < maximum (before training too)
            layer = gr.Slider(1, layers, value=layers, step=1, label="layer")
            head = gr.Slider(1, max(2, facts.get("heads", 2)), value=1, step=1, label="head")
            row = gr.Slider(0, g - 1, value=g // 2, step=1, label="patch row")
            col = gr.Slider(0, g - 1, value=g // 2, step=1, label="patch column")
        cls_btn = gr.Button("Classify", variant="primary")
        with gr.Row():
            probs = gr.Label(label="predicted direction", num_top_classes=8, scale=1)
            with gr.Column(scale=3):
                cls_md = gr.Markdown()
                clip_plot = gr.Plot(label="the clip (yellow: the chosen patch)")
        temporal_plot = gr.Plot(label="temporal attention: time step × time step for the chosen patch, every head")
        cls_stats = gr.JSON(label="stats (the endpoint video_attention_classify)")
        cls_files = downloads()

    # ---- events (values reach the handlers as sent; their checks answer bad API input) ----
    tok_outs = [tok_plot, tok_stats]
    raw_values(tok_btn.click, with_downloads(tokenise, tok_outs), [tok_index, tok_patch, tok_tubelet],
               tok_outs + [tok_files], api_name=f"{SLUG}_tokenise")
    detail_outs = [cost_md, cost_table, frames_plot, size_plot]
    raw_values(cost_btn.click, video_attention_cost, [*boxes, mode], cost_stats, api_name=f"{SLUG}_cost").success(
        with_downloads(lambda s: (*cost_details(s), s), [*detail_outs, cost_stats]), cost_stats,
        [*detail_outs, cost_stats, cost_files], api_visibility="private")
    cls_outs = [probs, clip_plot, temporal_plot, cls_md, cls_stats]
    raw_values(cls_btn.click, with_downloads(video_attention_classify, cls_outs),
               [clip_index, direction, layer, head, row, col], cls_outs + [cls_files], api_name=f"{SLUG}_classify")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
