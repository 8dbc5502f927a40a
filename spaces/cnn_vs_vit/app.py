"""Why transformers for vision: receptive fields of real CNNs against one ViT layer's global reach, the
effective receptive field of a tiny CNN and a tiny ViT trained here on the same shapes, and their inductive
biases measured (shifted, rotated, patch-shuffled inputs).

``render(demo)`` creates the components and events; ``build()`` wraps it. Neither imports torch or
matplotlib: ``compute`` and plotting load inside the handlers, on first use.
"""

from __future__ import annotations

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, user_errors, with_downloads

from . import options
from .options import (
    ARCHITECTURES,
    CNN,
    DEFAULT_ANGLE,
    DEFAULT_ARCHITECTURE,
    DEFAULT_BIAS_IMAGES,
    DEFAULT_ERF_IMAGES,
    DEFAULT_SHIFT,
    MAX_ANGLE,
    MAX_BIAS_IMAGES,
    MAX_ERF_IMAGES,
    MAX_SHIFT,
    MIN_ANGLE,
    MIN_BIAS_IMAGES,
    MIN_ERF_IMAGES,
    MIN_SHIFT,
    TF_SLIM_RESNET50_RF,
    VIT,
)

SLUG = "cnn_vs_vit"
TUTORIAL = tutorial(SLUG)  # title and emoji are typed once, in hub/registry.py
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (VIT, CNN)

PAPERS = {
    "araujo": "[Araujo, Norris & Sim, 2019](https://distill.pub/2019/computing-receptive-fields/)",
    "luo": "[Luo et al., 2016](https://arxiv.org/abs/1701.04128)",
    "vit": "[Dosovitskiy et al., 2021](https://arxiv.org/abs/2010.11929)",
    "resnet": "[He et al., 2016](https://arxiv.org/abs/1512.03385)",
    "alexnet": "[Krizhevsky et al., 2012](https://papers.nips.cc/paper/4824)",
    "vgg": "[Simonyan & Zisserman, 2015](https://arxiv.org/abs/1409.1556)",
    "rf_lib": "[google-research/receptive_field](https://github.com/google-research/receptive_field)",
}
RF_HEADERS = ["#", "layer", "kernel k", "stride s", "jump j", "receptive field r"]


# --------------------------------------------------------------------------------------
#                                   Text
# --------------------------------------------------------------------------------------

def _models_line(f: dict) -> str:
    if VIT not in f or CNN not in f:
        missing = [m for m in (VIT, CNN) if m not in f]
        return f"Not shipped yet: {', '.join(missing)} (`python -m shared.training NAME`)."
    v, c = f[VIT], f[CNN]
    vm, cm = v["metrics"], c["metrics"]

    def acc(m: dict) -> str:
        return f"**{m['accuracy']:.1%}** on {m['n']:,} test shapes" if "accuracy" in m else "accuracy not measured"

    return (
        f"Both models were trained here on the same shapes (the \"wide\" distribution, {v['image']}×{v['image']} px, "
        f"same splits and augmentation). `{VIT}`: patch {v['patch']} ({v['grid']}×{v['grid']} grid), width "
        f"{v['width']}, {v['layers']} layers, {vm.get('parameters', 0):,} parameters, {acc(vm)}, after "
        f"{vm.get('steps_trained', 0):,} steps. `{CNN}` (a ResNet, {PAPERS['resnet']}): stem {c['stem']}, stages "
        f"{c['widths']} with {c['depths']} basic blocks, {cm.get('parameters', 0):,} parameters, {acc(cm)}, after "
        f"{cm.get('steps_trained', 0):,} steps. The ViT trained "
        f"{vm.get('steps_trained', 0) / max(1, cm.get('steps_trained', 1)):.0f}× as many steps (and with a "
        "curriculum and an outlier phase): the comparison below favours the ViT's budget, not its architecture. "
        "All figures from the models' config.json and metrics.json."
    )


def _intro(f: dict) -> str:
    return (
        f"# {TUTORIAL.emoji} {TUTORIAL.title}\n"
        "A convolution sees a k×k window; stacking layers widens what a unit can see, the **receptive field**. "
        f"A ViT ({PAPERS['vit']}) embeds P×P patches and then lets every token attend to every other: after one "
        "attention layer each token can depend on the whole image. What does that buy, and what does it cost? "
        "Everything below is computed on real model definitions and on two models trained here.\n\n"
        + _models_line(f)
    )


def _rf_markdown(s: dict, reach: dict) -> str:
    text = (f"**{s['architecture']}**: final receptive field **{s['final_rf']} px** at `{s['final_layer']}` "
            f"(jump {s['final_jump']} px between neighbouring units), walked over {len(s['layers'])} convolution and "
            f"pooling layers on the main path. Recurrence ({PAPERS['araujo']}): r_out = r_in + (k − 1)·j_in, "
            "j_out = j_in·s, dilation d folded into k as d(k − 1) + 1, starting from r = j = 1 at the pixels. "
            "The last layer is the last spatial one before global pooling or the classifier: the last max-pool of "
            "`features` for alexnet and vgg16, the end of `layer4` for the ResNets.")
    if "tf_slim_v1_rf" in s:
        text += (f"\n\n**ResNet v1.5.** torchvision's ResNets put the stride of each down-sampling bottleneck on "
                 f"its 3×3 convolution; the original ResNet ({PAPERS['resnet']}) and TF-slim put it on the first "
                 f"1×1. The receptive fields differ: {s['final_rf']} px here, and the figure often quoted for "
                 f"ResNet-50 is {TF_SLIM_RESNET50_RF} px (TF-slim's resnet_v1_50, {PAPERS['araujo']}, "
                 f"{PAPERS['rf_lib']}). The same walk with the stride moved to the 1×1 gives "
                 f"**{s['tf_slim_v1_rf']} px**.")
    text += (f"\n\n**Against one ViT layer** (`{VIT}`, read from its config.json): the patch embedding sees "
             f"{reach['patch_size']}×{reach['patch_size']} px; after the first attention layer every token may "
             f"depend on all {reach['grid']}×{reach['grid']} patches, i.e. the whole {reach['image_size']} px image. "
             "A theoretical receptive field is only an upper bound: how much of it a trained unit *uses* is the "
             "effective receptive field, next tab.")
    return text


def _erf_markdown(st: dict) -> str:
    v, c = st[VIT], st[CNN]
    return (
        f"Mean |∂y/∂x| of the centre output unit over {st['n_images']} test shapes ({PAPERS['luo']}: they set the "
        "gradient at the centre unit to 1 in every channel and back-propagate). CNN: the centre unit of its last "
        f"spatial feature map; ViT: the centre patch token after the last layer. Half of the gradient mass lies "
        f"within **{c['r50']:.1f} px** of its centre for the CNN and **{v['r50']:.1f} px** for the ViT (90%: "
        f"{c['r90']:.1f} against {v['r90']:.1f} px); share outside the central 16×16 px: CNN "
        f"{c['share_outside_centre_16px']:.1%}, ViT {v['share_outside_centre_16px']:.1%}. The colour scale is the "
        "square root of the normalised gradient, so faint spread stays visible. Luo et al. found the effective "
        "receptive field of a CNN Gaussian-like and much smaller than its theoretical one. Share of the gradient "
        f"from the ViT's centre patch (the token's own, reached through the residual path): ViT "
        f"{v['share_in_centre_patch']:.1%}, CNN {c['share_in_centre_patch']:.1%} (same pixels)."
    )


def _bias_markdown(b: dict) -> str:
    return (
        f"Top-1 accuracy on the first {b['n']} test shapes of each model, under each transformation. Shift: the image "
        f"moves {b['shift']} px right and down, the border repeated into the gap; rotation {b['angle']:g}° about the "
        "centre (bilinear, corners filled from the border); 90° turns are in both models' training augmentation; "
        f"patch shuffle: the {b['patch']}×{b['patch']} tiles of the ViT's own grid put back in one fixed random "
        "order. Convolutions share weights across positions, so a CNN is built to be equivariant to shifts; a "
        "ViT has to learn it, and its learned position table ties each patch to its place. Shuffling the patches "
        "breaks the shape for both; the ViT sees the same set of tokens in another order."
    )


# --------------------------------------------------------------------------------------
#                                   Figures
# --------------------------------------------------------------------------------------

def _rf_figure(s: dict, reach: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot()
    ax.plot(range(1, len(s["layers"]) + 1), [x["rf"] for x in s["layers"]], marker=".", label=s["architecture"])
    ax.plot(range(1, len(reach["layers"]) + 1), [x["rf"] for x in reach["layers"]], marker="s",
            label=f"{VIT} (image {reach['image_size']} px)")
    if s["architecture"] != CNN:
        ax.axhline(224, color="grey", lw=0.8, ls="--", label="224 px: the ImageNet input these models take")
    ax.set_xlabel("layer on the main path")
    ax.set_ylabel("receptive field (px)")
    ax.set_yscale("log")
    ax.set_title("theoretical receptive field, layer by layer")
    ax.legend()
    fig.tight_layout()
    return fig


def _erf_figure(maps: dict):
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.8))
    for i, name in enumerate((CNN, VIT)):
        ax = fig.add_subplot(1, 2, i + 1)
        im = ax.imshow(maps[name], cmap="magma", norm=PowerNorm(0.5, vmin=0, vmax=1))
        ax.set_title(f"{name}: centre unit's |∂y/∂x| (colour ∝ √)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _bias_figure(b: dict):
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    labels = [r["condition"] for r in b["rows"]]
    pos = np.arange(len(labels))
    for k, name in enumerate((VIT, CNN)):
        ax.bar(pos + (k - 0.5) * 0.38, [r[name] for r in b["rows"]], width=0.38, label=name)
    ax.axhline(0.2, color="grey", lw=0.8, ls="--", label="chance (5 classes)")
    ax.set_xticks(pos, labels, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("top-1 accuracy")
    ax.set_ylim(0, 1.18)
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def cnn_vs_vit_receptive_field(architecture, progress=gr.Progress()):
    """Stats JSON: ``layers`` (name, kernel, stride, jump, rf per layer on the main path) and ``final_rf``."""
    progress(0, desc=f"building {architecture} on the meta device")
    from . import compute

    return compute.receptive_field(architecture)


@user_errors
def rf_details(stats):
    """The plot, the table and the text of a receptive-field result (chained after the endpoint)."""
    import pandas as pd

    from . import compute

    reach = compute.vit_reach()
    table = pd.DataFrame([[i + 1, x["name"], x["kernel"], x["stride"], x["jump"], x["rf"]]
                          for i, x in enumerate(stats["layers"])], columns=RF_HEADERS)
    return _rf_figure(stats, reach), table, _rf_markdown(stats, reach), stats


@user_errors
def erf(n_images, progress=gr.Progress()):
    progress(0, desc="loading both models and back-propagating")
    from . import compute

    result = compute.effective_rf(n_images)
    return _erf_figure(result.maps), result.stats, _erf_markdown(result.stats)


@user_errors
def bias(n_images, shift, angle, progress=gr.Progress()):
    import pandas as pd

    from . import compute

    b = compute.inductive_bias(n_images, shift, angle, progress=progress)
    table = pd.DataFrame([[r["condition"], r[VIT], r[CNN]] for r in b["rows"]],
                         columns=["condition", f"{VIT} accuracy", f"{CNN} accuracy"])
    return table, _bias_figure(b), b, _bias_markdown(b)


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    gr.Markdown(_intro(options.facts()))

    with gr.Tab("Receptive field per layer"):
        gr.Markdown(f"torchvision's own model definitions (AlexNet {PAPERS['alexnet']}, VGG-16 {PAPERS['vgg']}, "
                    f"ResNet-18/50 {PAPERS['resnet']}), built on the meta device (no weights), or the tiny CNN "
                    "trained here.")
        with gr.Row():
            arch = gr.Dropdown(list(ARCHITECTURES), value=DEFAULT_ARCHITECTURE, label="architecture")
            rf_btn = gr.Button("Walk the layers", variant="primary")
        rf_md = gr.Markdown()
        rf_plot = gr.Plot(label="receptive field per layer")
        rf_table = gr.Dataframe(label="every layer on the main path", headers=RF_HEADERS)
        rf_stats = gr.JSON(label="stats (the endpoint cnn_vs_vit_receptive_field)")
        rf_files = downloads()

    with gr.Tab("Effective receptive field"):
        with gr.Row():
            erf_n = gr.Slider(MIN_ERF_IMAGES, MAX_ERF_IMAGES, value=DEFAULT_ERF_IMAGES, step=1,
                              label=f"test images averaged ({MIN_ERF_IMAGES}–{MAX_ERF_IMAGES})")
            erf_btn = gr.Button("Measure", variant="primary")
        erf_md = gr.Markdown()
        erf_plot = gr.Plot(label="effective receptive fields")
        erf_stats = gr.JSON(label="ERF stats")
        erf_files = downloads()

    with gr.Tab("Inductive bias"):
        with gr.Row():
            bias_n = gr.Slider(MIN_BIAS_IMAGES, MAX_BIAS_IMAGES, value=DEFAULT_BIAS_IMAGES, step=10,
                               label=f"test images ({MIN_BIAS_IMAGES}–{MAX_BIAS_IMAGES})")
            bias_shift = gr.Slider(MIN_SHIFT, MAX_SHIFT, value=DEFAULT_SHIFT, step=1,
                                   label=f"shift, px ({MIN_SHIFT}–{MAX_SHIFT})")
            bias_angle = gr.Slider(MIN_ANGLE, MAX_ANGLE, value=DEFAULT_ANGLE, step=1,
                                   label=f"rotation, degrees ({MIN_ANGLE}–{MAX_ANGLE})")
            bias_btn = gr.Button("Measure", variant="primary")
        bias_md = gr.Markdown()
        bias_table = gr.Dataframe(label="accuracy under each transformation")
        bias_plot = gr.Plot(label="accuracy under each transformation (plot)")
        bias_stats = gr.JSON(label="inductive-bias stats")
        bias_files = downloads()

    # ---- events (value inputs reach the handlers as sent; their checks answer bad API input) ----
    raw_values(rf_btn.click, cnn_vs_vit_receptive_field, [arch], rf_stats, api_name=f"{SLUG}_receptive_field").success(
        with_downloads(rf_details, [rf_plot, rf_table, rf_md, rf_stats]), rf_stats,
        [rf_plot, rf_table, rf_md, rf_stats, rf_files], api_visibility="private")
    erf_outs = [erf_plot, erf_stats, erf_md]
    raw_values(erf_btn.click, with_downloads(erf, erf_outs), [erf_n], erf_outs + [erf_files],
               api_name=f"{SLUG}_erf")
    bias_outs = [bias_table, bias_plot, bias_stats, bias_md]
    raw_values(bias_btn.click, with_downloads(bias, bias_outs), [bias_n, bias_shift, bias_angle],
               bias_outs + [bias_files], api_name=f"{SLUG}_bias")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
