"""ViT anatomy ("ViT fundamentals"): the Gradio page. The maths lives in compute.py.

compute.py imports torch and transformers, so each handler imports it on first use: the hub builds every
page at start-up. What ``render()`` needs (presets, caps, the embedded model's facts) comes from the
torch-free ``options.py``; plots import matplotlib where they draw.
"""

from __future__ import annotations

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from . import options
from .options import (
    CAPS,
    DEFAULT_CLASSES,
    DEFAULT_IMAGE,
    DEFAULT_PRESET,
    DEFAULT_SEED,
    MAX_DEPTH,
    PAPER_PARAMS_M,
    PRESET_NAMES,
    PRESETS,
    TINY_MODEL,
    tiny_facts,
)

SLUG = "vit_anatomy"
TUTORIAL = tutorial(SLUG)  # title and emoji are typed once, in hub/registry.py
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (TINY_MODEL,)

PAPERS = {
    "vit": "[Dosovitskiy et al., 2021](https://arxiv.org/abs/2010.11929)",
    "deit": "[Touvron et al., 2021](https://arxiv.org/abs/2012.12877)",
    "scaling": "[Zhai et al., 2022](https://arxiv.org/abs/2106.04560)",
    "xiong": "[Xiong et al., 2020](https://arxiv.org/abs/2002.04745)",
    "vaswani": "[Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)",
    "ln": "[Ba et al., 2016](https://arxiv.org/abs/1607.06450)",
    "lens": "[nostalgebraist, 2020](https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru/interpreting-gpt-the-logit-lens)",
}
INPUT_NAMES = ("hidden_size", "num_layers", "num_heads", "mlp_dim", "image_size", "patch_size", "num_classes")
COST_HEADERS = ["component", "parameters (counted)", "parameter formula", "formula value",
                "MACs (counted)", "MAC formula", "formula value "]
PRESET_HEADERS = ["preset", "architecture from", "parameters (counted)", "M (counted)", "M (paper)",
                  "paper figure from", "GMACs (counted)", "tokens", "activations MB (batch 1)"]

# Published ImageNet top-1 figures, each with its source; resolution given only where the source states it.
PUBLISHED = [
    ("DeiT-Ti/16", "ImageNet-1k only", "224", "72.2",
     f"{PAPERS['deit']}; model zoo in the authors' repository (facebookresearch/deit)"),
    ("DeiT-S/16", "ImageNet-1k only", "224", "79.9",
     f"{PAPERS['deit']}; model zoo in the authors' repository (facebookresearch/deit)"),
    ("DeiT-B/16", "ImageNet-1k only", "224", "81.8",
     f"{PAPERS['deit']}; model zoo in the authors' repository (facebookresearch/deit)"),
    ("ViT-G/14 (≈2 B parameters)", "JFT-3B", "not verified here", "90.45", f"{PAPERS['scaling']}, abstract"),
]


# --------------------------------------------------------------------------------------
#                                   Text
# --------------------------------------------------------------------------------------

def _model_line(f: dict) -> str:
    if not f:
        return f"The embedded model `{TINY_MODEL}` is not trained yet: `python -m shared.training {TINY_MODEL}`."
    m = f["metrics"]
    acc = (f", {m['accuracy']:.1%} accurate on {m['n']:,} test shapes" if "accuracy" in m else "")
    params = f"{m['parameters']:,} parameters" if "parameters" in m else "its parameters"
    return (f"The forward pass and the norm comparison use `{TINY_MODEL}`, trained here on shapes: image "
            f"{f['image']}×{f['image']}, patch {f['patch']} ({f['grid']}×{f['grid']} = {f['tokens'] - 1} patches "
            f"+ [CLS] = {f['tokens']} tokens), width {f['width']}, {f['layers']} layers, {f['heads']} heads, "
            f"MLP {f['mlp']}, {len(f['classes'])} classes; {params}{acc} (its config.json and metrics.json).")


def _intro(f: dict) -> str:
    return (
        f"# {TUTORIAL.emoji} {TUTORIAL.title}\n"
        f"A Vision Transformer ({PAPERS['vit']}) cuts an image into P×P patches, projects each to a D-wide token, "
        f"prepends a learned [CLS] token, adds learned position embeddings and runs L pre-LN Transformer blocks "
        f"({PAPERS['vaswani']}, LayerNorm {PAPERS['ln']}); a linear head reads the [CLS] token. Every number "
        f"below is counted on a real `transformers.ViTForImageClassification` or measured on a real forward pass. "
        + _model_line(f)
    )


def _cost_markdown(s: dict) -> str:
    c = s["config"]
    same = "equal" if (s["params"], s["macs"]) == (s["hand_params"], s["hand_macs"]) else "**different**"
    return (
        f"**{s['params']:,} parameters**, **{s['macs'] / 1e9:.3f} GMACs** per image, **{s['tokens']:,} tokens** "
        f"(({c['image_size']}/{c['patch_size']})² = {s['patches']:,} patches + [CLS]), head dimension "
        f"{c['hidden_size']}/{c['num_heads']} = {s['head_dim']}. Activations saved for backward (fp32): "
        f"**{s['activation_mb']:,.1f} MB** at batch 1, **{s['activation_mb_batch64']:,.0f} MB** at batch 64; "
        f"the weights take {s['weights_mb_fp32']:,.1f} MB in fp32.\n\n"
        f"Counted on the model instantiated on the meta device (no weights allocated); the hand formulas give "
        f"{s['hand_params']:,} parameters and {s['hand_macs']:,} MACs: {same}. MACs = FLOPs / 2 as "
        "`torch.utils.flop_counter.FlopCounterMode` counts them: matrix products and the patch convolution "
        "only. The 17.58 G often quoted for ViT-B/16 also counts a few element-wise operations (softmax, GELU, "
        "LayerNorm, additions); the counter here gives 17.56 G."
    )


def _norms_markdown(g: dict) -> str:
    pre, post = g["pre_norm"], g["post_norm"]
    return (
        f"One cross-entropy backward on {g['batch']} shapes at initialisation (seed {g['seed']}), depth {g['depth']}. "
        f"Gradient norm of the last layer over the first: pre-LN **{pre[-1] / pre[0]:.2f}**, post-LN "
        f"**{post[-1] / post[0]:.2f}**. Loss: pre-LN {g['pre_norm_loss']:.3f}, post-LN {g['post_norm_loss']:.3f}. "
        f"{PAPERS['xiong']} show that with post-LN the expected gradient of the parameters near the output is "
        "large at initialisation, which is why post-LN needs a learning-rate warm-up, while pre-LN gradients "
        "stay well-behaved; compare the two curves above on this tiny architecture (they are measured, not "
        "drawn from the paper)."
    )


def _published_markdown() -> str:
    rows = "\n".join(f"| {m} | {pre} | {res} | {acc} | {src} |" for m, pre, res, acc, src in PUBLISHED)
    return (
        "### Published ImageNet-1k top-1 accuracy, with provenance\n"
        "| model | pre-training data | fine-tune / test resolution | top-1 % | source |\n|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Only figures checked against their source are listed. A top-1 accuracy cannot exceed 100%: "
        "the \"ViT-G 102%\" sometimes quoted is impossible; the paper reports 90.45%."
    )


# --------------------------------------------------------------------------------------
#                                   Figures
# --------------------------------------------------------------------------------------

def _lens_figure(st):
    import numpy as np
    from matplotlib.figure import Figure  # not at start-up

    probs = np.stack([entry.probs for entry in st.lens])  # (stages, classes)
    fig = Figure(figsize=(6, 3.4))
    ax = fig.add_subplot()
    for j, name in enumerate(st.classes):
        ax.plot(range(len(st.lens)), probs[:, j], marker="o", label=name)
    ax.set_xticks(range(len(st.lens)), [entry.where for entry in st.lens])
    ax.set_ylim(0, 1)
    ax.set_ylabel("p(class) from head(LN([CLS]))")
    ax.set_title("logit lens: the [CLS] token's class after each block")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _norms_figure(g):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.4))
    ax = fig.add_subplot()
    ax.plot(g["layers"], g["pre_norm"], marker="o", label="pre-LN (ViT)")
    ax.plot(g["layers"], g["post_norm"], marker="s", label="post-LN")
    ax.set_xticks(g["layers"])
    ax.set_xlabel("layer")
    ax.set_ylabel("‖∂loss/∂θ_layer‖")
    ax.set_title("gradient norm per layer at initialisation")
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def vit_anatomy_cost(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, num_classes,
                     progress=gr.Progress()):
    """Parameters, MACs, tokens, activation memory and the per-component breakdown of one configuration."""
    progress(0, desc="instantiating on the meta device")
    from . import compute

    return compute.cost(hidden_size, num_layers, num_heads, mlp_dim, image_size, patch_size, num_classes)


@user_errors
def cost_details(stats):
    """The component table and the summary of a cost result (chained after the endpoint)."""
    import pandas as pd

    from . import compute

    table = pd.DataFrame(compute.cost_rows(stats), columns=COST_HEADERS)
    return table, _cost_markdown(stats), stats


@user_errors
def choose_preset(name):
    """The seven inputs of a preset; 'custom' leaves them as they are."""
    name = options.check_preset(name)
    if name == options.CUSTOM:
        return tuple(gr.skip() for _ in INPUT_NAMES)
    from . import compute

    values = compute.preset(name)
    return tuple(values[k] for k in INPUT_NAMES)


@user_errors
def presets_table(progress=gr.Progress()):
    import pandas as pd

    progress(0, desc="counting every preset")
    from . import compute

    return pd.DataFrame(compute.preset_rows(PAPER_PARAMS_M), columns=PRESET_HEADERS)


@user_errors
def forward_pass(image, progress=gr.Progress()):
    """The embedded ViT's forward, stage by stage: table, logit-lens plot and the lens table."""
    import pandas as pd

    progress(0, desc=f"loading {TINY_MODEL}")
    from . import compute

    st = compute.step_through(image)
    stages = pd.DataFrame(
        [[s.layer if s.layer is not None else "", s.name, " × ".join(map(str, s.shape)), round(s.norm, 3),
          round(s.cls_norm, 3) if s.cls_norm is not None else None] for s in st.stages],
        columns=["block", "stage", "shape", "‖x‖ (Frobenius)", "‖[CLS]‖"])
    lens = pd.DataFrame([[e.where, st.classes[int(e.probs.argmax())], round(float(e.probs.max()), 4),
                          *[round(float(p), 4) for p in e.probs]] for e in st.lens],
                        columns=["after", "nearest class", "p", *st.classes])
    top = st.classes[int(st.logits.argmax())]
    summary = (f"Prediction: **{top}** (top probability {float(st.lens[-1].probs.max()):.1%}). "
               f"{len(st.stages)} stages; the last lens row is the model's own output "
               f"(final LayerNorm and head on [CLS]). Logit lens: {PAPERS['lens']}.")
    from shared import ood  # imports torch: only once the model has run

    summary = ood.page_line(st.ood, TINY_MODEL) + "\n\n" + summary
    return stages, _lens_figure(st), lens, summary


@user_errors
def norm_comparison(depth, seed, progress=gr.Progress()):
    import pandas as pd

    progress(0, desc="initialising both models and one backward each")
    from . import compute

    g = compute.grad_norms(depth, seed)
    table = pd.DataFrame({"layer": g["layers"], "pre-LN ‖grad‖": [round(v, 5) for v in g["pre_norm"]],
                          "post-LN ‖grad‖": [round(v, 5) for v in g["post_norm"]]})
    return _norms_figure(g), table, _norms_markdown(g)


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    facts = tiny_facts()
    gr.Markdown(_intro(facts))
    b16 = PRESETS[DEFAULT_PRESET]
    defaults = {"hidden_size": b16["hidden_size"], "num_layers": b16["num_layers"], "num_heads": b16["num_heads"],
                "mlp_dim": b16["mlp_dim"], "image_size": DEFAULT_IMAGE, "patch_size": b16["patch_size"],
                "num_classes": DEFAULT_CLASSES}

    with gr.Tab("Cost calculator"):
        sources = "; ".join(f"{n}: {p['source']}" for n, p in PRESETS.items())
        gr.Markdown(
            f"Pick a preset or type a configuration. Presets: {sources} ({PAPERS['vit']}, {PAPERS['deit']}, "
            f"{PAPERS['scaling']}). Caps: {options.caps_text()}; hidden size must be divisible by the heads and "
            "the image by the patch."
        )
        preset = gr.Dropdown(list(PRESET_NAMES), value=DEFAULT_PRESET, label="preset")
        with gr.Row():
            boxes = [gr.Number(value=defaults[k], precision=None, label=k.replace("_", " "),
                               minimum=CAPS[k][0], maximum=CAPS[k][1], step=1) for k in INPUT_NAMES]
        go = gr.Button("Count", variant="primary")
        summary = gr.Markdown()
        table = gr.Dataframe(label="per component: counted and by hand", headers=COST_HEADERS)
        stats = gr.JSON(label="stats (the endpoint vit_anatomy_cost)")
        cost_files = downloads()
        gr.Markdown("**Every preset at 224 px, 1000 classes**: counted here, beside the paper's parameter count.")
        compare_btn = gr.Button("Count every preset", variant="primary")
        presets_df = gr.Dataframe(label="presets against the papers", headers=PRESET_HEADERS)
        preset_files = downloads()

    with gr.Tab("Forward pass"):
        gr.Markdown(
            "image → patches → tokens + [CLS] + position → each block (LN, attention, residual, LN, MLP, residual) "
            "→ final LN → head. Every stage's shape and norm, and the logit lens: the final LayerNorm and head "
            "applied to the [CLS] token after the embedding and after each block."
        )
        samples = sample_examples()
        with gr.Row():
            image = gr.Image(samples[0] if samples else None, label="image", type="pil", height=220)
            step_btn = gr.Button("Step through", variant="primary")
        gr.Examples([[p] for p in samples[:6]], inputs=[image])
        fwd_summary = gr.Markdown()
        stages = gr.Dataframe(label="every stage: shape and norm")
        lens_plot = gr.Plot(label="logit lens")
        lens_table = gr.Dataframe(label="logit lens per block")
        fwd_files = downloads()

    with gr.Tab("Pre-norm vs post-norm"):
        gr.Markdown(
            f"The embedded model's architecture (width, heads, MLP, patch from its config.json; depth yours), freshly "
            f"initialised, with ViT's pre-LN blocks x + MSA(LN(x)) or the original post-LN blocks LN(x + MSA(x)) "
            f"({PAPERS['vaswani']}); same initial weights. {PAPERS['xiong']} analyse the gradients of both."
        )
        with gr.Row():
            depth = gr.Slider(1, MAX_DEPTH, value=facts.get("layers", 4), step=1, label=f"depth (1–{MAX_DEPTH})")
            seed = gr.Number(value=DEFAULT_SEED, precision=None, step=1, label="seed")
            norms_btn = gr.Button("Measure", variant="primary")
        norms_plot = gr.Plot(label="gradient norm per layer")
        norms_table = gr.Dataframe(label="gradient norm per layer")
        norms_md = gr.Markdown()
        norms_files = downloads()

    with gr.Tab("Published results"):
        gr.Markdown(_published_markdown())

    # ---- events (value inputs reach the handlers as sent; their checks answer bad API input) ----
    raw_values(preset.change, choose_preset, [preset], boxes, api_name=f"{SLUG}_preset")
    raw_values(go.click, vit_anatomy_cost, boxes, stats, api_name=f"{SLUG}_cost").success(
        with_downloads(cost_details, [table, summary, stats]), stats, [table, summary, stats, cost_files],
        api_visibility="private")
    raw_values(compare_btn.click, with_downloads(presets_table, [presets_df]), [], [presets_df, preset_files],
               api_name=f"{SLUG}_presets")
    fwd_outs = [stages, lens_plot, lens_table, fwd_summary]
    raw_values(step_btn.click, with_downloads(forward_pass, fwd_outs), [image], fwd_outs + [fwd_files],
               api_name=f"{SLUG}_forward")
    norm_outs = [norms_plot, norms_table, norms_md]
    raw_values(norms_btn.click, with_downloads(norm_comparison, norm_outs), [depth, seed], norm_outs + [norms_files],
               api_name=f"{SLUG}_norms")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
