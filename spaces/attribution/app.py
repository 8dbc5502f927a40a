"""Interpretability: Gradio glue around ``compute.py`` (which holds all the maths).

The hub imports this module and calls ``render``/``build`` at start-up, so neither imports torch,
transformers or matplotlib: ``compute`` is imported by the handlers on first use, figures import
matplotlib when drawn, and the page's limits and model facts come from the torch-free ``options.py``.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from . import options

SLUG = "attribution"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = ("vit-tiny-shapes",)
OVERLAY_SIDE = 256  # pixels of the overlay image shown


def _compute():
    """The compute module, imported on first use (it imports torch, which the hub's start-up must not)."""
    from . import compute

    return compute


# --------------------------------------------------------------------------------------
#                                   Drawing (matplotlib only when called)
# --------------------------------------------------------------------------------------

def _upscale(image: np.ndarray, side: int = OVERLAY_SIDE) -> Image.Image:
    return Image.fromarray(image).resize((side, side), Image.NEAREST)


def overlay(base: np.ndarray, patch_map: np.ndarray, signed: bool) -> Image.Image:
    """The model's view enlarged, with the patch map blended over it (nearest: one block per patch)."""
    from matplotlib import colormaps

    m = patch_map.astype(np.float64)
    if signed:  # integrated gradients: red positive, blue negative, white zero
        lim = float(np.abs(m).max()) or 1.0
        colours = colormaps["bwr"]((m / lim + 1) / 2)
    else:
        lo, hi = float(m.min()), float(m.max())
        colours = colormaps["inferno"]((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))
    heat = Image.fromarray((colours[..., :3] * 255).astype(np.uint8)).resize((OVERLAY_SIDE, OVERLAY_SIDE),
                                                                              Image.NEAREST)
    return Image.blend(_upscale(base), heat, 0.55)


def _sanity_figure(res) -> Any:
    from matplotlib.figure import Figure

    methods = list(res.trained)
    fig = Figure(figsize=(2.4 * len(methods), 5.6), layout="constrained")
    axes = fig.subplots(2, len(methods), squeeze=False)
    for j, method in enumerate(methods):
        for i, (kind, maps) in enumerate((("trained", res.trained), ("randomised", res.randomised))):
            ax = axes[i][j]
            m = maps[method]
            if method == "integrated_gradients":
                lim = float(np.abs(m).max()) or 1.0
                ax.imshow(m, cmap="bwr", vmin=-lim, vmax=lim)
            else:
                ax.imshow(m, cmap="inferno")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{method}\n{kind}" if i == 0 else
                         f"{kind}\nSpearman ρ(|·|) = {_rounded(res.spearman_abs[method])}", fontsize=9)
    fig.suptitle(f"Target {res.target!r}; randomised: {res.randomisation}", fontsize=10)
    return fig


def _fgsm_figure(res) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    axes[0].imshow(res.original)
    axes[0].set_title(f"original: {res.label_before}", fontsize=9)
    k = max(res.steps_8bit, 1)
    axes[1].imshow(res.perturbation.mean(axis=-1), cmap="bwr", vmin=-k, vmax=k)
    axes[1].set_title(f"perturbation, ±{res.steps_8bit}/255\n(mean over channels)", fontsize=9)
    axes[2].imshow(res.adversarial)
    axes[2].set_title(f"adversarial: {res.label_after}", fontsize=9)
    for ax in axes[:3]:
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[3]
    ax.plot(res.grid, res.grid_probs, color="#4f46e5", lw=1.5)
    ax.axvline(res.epsilon, color="#f59e0b", ls="--", label=f"your ε = {res.epsilon:.4f}")
    if res.flip_epsilon is not None:
        ax.axvline(res.flip_epsilon, color="#dc2626", ls=":", label=f"label flips at ε = {res.flip_epsilon:.4f}")
    ax.set_xlabel("ε (pixel units on [0, 1])")
    ax.set_ylabel(f"p({res.label_before})")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("flip search: p(original label) vs ε", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def explain(image, method, target, model_name=options.DEFAULT_MODEL, progress=gr.Progress()):
    """One attribution map: (overlay image, stats)."""
    progress(0.1, desc=f"{method}: computing (the first call loads the model)")
    res = _compute().explain(image, method, target, model_name or options.DEFAULT_MODEL)
    return overlay(res.base, res.map, signed=res.method == "integrated_gradients"), res.stats


@user_errors
def sanity(image, randomisation, target, model_name=options.DEFAULT_MODEL, progress=gr.Progress()):
    """Every method on the trained and the randomised model: (figure, table, stats)."""
    progress(0.05, desc="randomising the weights (the first call loads the model)")
    res = _compute().sanity_check(image, randomisation, target, model_name or options.DEFAULT_MODEL,
                                  progress=progress)
    table = [[m, _rounded(res.spearman_abs[m]), _rounded(res.spearman_signed[m])] for m in res.trained]
    return _sanity_figure(res), table, res.stats


def _rounded(x: float) -> float | str:
    return round(x, 4) if np.isfinite(x) else "undefined (constant map)"


@user_errors
def fgsm(image, epsilon, target, model_name=options.DEFAULT_MODEL, progress=gr.Progress()):
    """(adversarial image at the model's resolution, stats, the full result for the figure)."""
    progress(0.1, desc="one signed-gradient step, then the flip search")
    res = _compute().fgsm(image, epsilon, target, model_name or options.DEFAULT_MODEL)
    return Image.fromarray(res.adversarial), res.stats, res


def fgsm_panel(res):
    """The figure and the words for a stored FGSM result (no model call)."""
    if res is None:
        return None, "Run **Attack** first."
    flip = (f"On the grid of every 8-bit step up to {options.MAX_EPSILON:g}, the prediction first leaves "
            f"**{html.escape(res.label_before)}** at ε = **{res.flip_epsilon:.4f}** ({round(res.flip_epsilon * 255)}/255)."
            if res.flip_epsilon is not None else
            f"No ε on the grid up to {options.MAX_EPSILON:g} changes the prediction "
            f"**{html.escape(res.label_before)}** along this one-step direction.")
    return _fgsm_figure(res), (
        f"**Before**: {html.escape(res.label_before)} (p = {res.prob_before:.3f}). **After** one step of ε = "
        f"{res.epsilon:.4f}: **{html.escape(res.label_after)}** (p of the original label {res.prob_after:.3f}). "
        f"Applied L∞ = {res.linf:.4f} = {res.steps_8bit}/255: the step is stored in 8 bits rounding toward the "
        f"original pixel, so it never exceeds ε (an ε below 1/255 moves nothing). {flip}")


def select_model(model_name):
    """Load a model for the page (offline, a Hub model that is not cached fails naming the embedded one)."""
    compute = _compute()
    try:
        model, _ = compute.load_classifier(model_name)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    classes = compute.class_names(model)
    c = model.config
    info = (f"`{html.escape(model_name)}`: {c.image_size} px input, {c.patch_size} px patches "
            f"({c.image_size // c.patch_size}×{c.image_size // c.patch_size} grid), {c.num_hidden_layers} layers × "
            f"{c.num_attention_heads} heads, {len(classes)} classes.")
    update = gr.update(choices=_target_choices(classes), value="")
    return model_name, info, update, update, update


# --------------------------------------------------------------------------------------
#                                   Layout
# --------------------------------------------------------------------------------------

def _target_choices(classes) -> list[tuple[str, str]]:
    return [("the predicted class", "")] + [(c, c) for c in classes]


def _facts_text(facts: options.ShippedFacts | None) -> str:
    if facts is None:
        return (f"The shipped `{options.DEFAULT_MODEL}` weights are missing here; retrain them with "
                f"`python -m shared.training {options.DEFAULT_MODEL}`.")
    acc = (f" It classifies {facts.accuracy:.1%} of {facts.eval_images:,} held-out test shapes correctly."
           if facts.accuracy is not None and facts.eval_images else "")
    params = f", {facts.parameters:,} parameters" if facts.parameters else ""
    return (f"**The model** `{facts.name}` (card: `shared/weights/{facts.name}/README.md`) is a ViT trained here on "
            f"the shapes dataset ({', '.join(facts.classes)}): {facts.image_size} px input, {facts.patch_size} px "
            f"patches ({facts.grid}×{facts.grid} grid + [CLS]), {facts.layers} layers × {facts.heads} heads, width "
            f"{facts.width}{params}.{acc} Every map below is computed from it, at its input resolution.")


HONEST_NOTE = f"""
### What each method shows, and what it does not

**Attention is not explanation** (Jain & Wallace, 2019, *Attention is not Explanation*, NAACL): attention
weights often disagree with gradient-based importance, and very different attention can give the same
prediction. Read every map here as a *hypothesis* about the model, not its reason.

- **Attention rollout** (Abnar & Zuidema, 2020) multiplies the head-averaged attention of every layer, with
  the residual as (A + I)/2. It ignores the values, the MLPs and the class: the map is the same whatever
  target you choose. It shows how information *could* mix across tokens, not what the decision used.
- **Gradient-weighted rollout** (Chefer, Gur & Wolf, 2021, ICCV) weights each head's attention by the gradient
  of the target logit, keeps the positive part, averages heads and accumulates R ← R + Ā·R. It is
  class-specific, but still a heuristic relevance rule, not a causal measurement.
- **Grad-CAM** (Selvaraju et al., 2017) here uses the tokens entering the last block: the gradient of the
  target logit, averaged over patches, weights each channel. The last block's *output* tokens would give
  exactly zero (the classifier reads only [CLS]). One layer, a linear approximation: coarse and local.
- **Integrated gradients** (Sundararajan, Taly & Yan, 2017) integrates the gradient along the straight path
  from an all-black image (zeros in [0, 1] pixels, before normalisation) to yours, with a midpoint Riemann
  sum of {options.IG_STEPS} points. Its attributions add up to the logit difference between the image and the
  baseline (*completeness*; the stats show both numbers, and the points are doubled, up to
  {options.IG_MAX_STEPS}, while they differ by more than {options.IG_TOLERANCE:.0%}). It answers "relative to black", which is a choice:
  a black shape on a black background gets no attribution at all.
- **Sanity check** (Adebayo et al., 2018, *Sanity Checks for Saliency Maps*, NeurIPS): a map that barely
  changes when the weights are randomised cannot be explaining what the model learned. Rollout does not
  read the classifier head at all, so randomising only the head leaves it exactly unchanged (ρ = 1).
- **FGSM** (Goodfellow, Shlens & Szegedy, 2015, ICLR) shows the other side: a change too small to see,
  chosen by the gradient, can flip the answer. The maps above do not predict how fragile a decision is.
"""


def render(demo: gr.Blocks) -> None:
    """The page's components and events, in the current Blocks context."""
    samples = sample_examples()
    default_image = samples[0] if samples else None
    facts = options.shipped_facts(options.DEFAULT_MODEL)
    classes = facts.classes if facts else ()
    gr.Markdown(
        f"## {TUTORIAL.emoji} {TUTORIAL.title}\n"
        "Where does a vision transformer look, and can we trust the picture? Four attribution methods on a real "
        "model, the sanity check that tells them apart, and an adversarial step that shows how fragile an answer "
        "can be.\n\n" + _facts_text(facts))
    with gr.Row():
        model = gr.Dropdown(list(options.MODELS), value=options.DEFAULT_MODEL, label="Model",
                            info="Hub models need network (or a local Hugging Face cache); offline they fail with a "
                                 f"message naming the embedded `{options.DEFAULT_MODEL}`.")
        model_info = gr.Markdown()
    model_state = gr.State(options.DEFAULT_MODEL)

    with gr.Tab("Explain"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(default_image, label="Image", type="pil", height=240)
                method = gr.Radio([(label, key) for key, label in options.METHODS.items()],
                                  value=options.DEFAULT_METHOD, label="Method")
                target = gr.Dropdown(_target_choices(classes), value="", label="Target class")
                go = gr.Button("Explain", variant="primary")
            with gr.Column():
                shown = gr.Image(label="Map over the model's view (bright / red: more relevant; blue: negative)",
                                 type="pil", format="png", height=300)
                stats = gr.JSON(label="Explanation stats")
                files = downloads()
        gr.Examples([[p] for p in samples], inputs=[image], label="Samples (renders of the shapes dataset)")
        outputs = [shown, stats]
        raw_values(go.click, with_downloads(explain, outputs), [image, method, target, model_state],
                   outputs + [files], api_name=f"{SLUG}_explain")

    with gr.Tab("Sanity check"):
        gr.Markdown(
            "Adebayo et al. (2018): compute each map again from a copy of the model whose weights are re-drawn "
            "from its initialisation distribution (seeded), and rank-correlate the two maps (Spearman's ρ over the "
            "patches, of the absolute values and signed). A high ρ means the map does not depend on what was "
            "learned. **Cascading** randomises the head and then every block down to the patch embedding (the "
            "cascade's last step, all weights random); **classifier** randomises the head only (its first step).")
        with gr.Row():
            with gr.Column():
                s_image = gr.Image(default_image, label="Image", type="pil", height=240)
                randomisation = gr.Radio([(label, key) for key, label in options.RANDOMISATIONS.items()],
                                         value=options.DEFAULT_RANDOMISATION, label="Randomise")
                s_target = gr.Dropdown(_target_choices(classes), value="", label="Target class")
                s_go = gr.Button("Run the sanity check", variant="primary")
            with gr.Column():
                s_plot = gr.Plot(label="Trained and randomised maps")
                s_table = gr.Dataframe(headers=["method", "spearman |map|", "spearman signed"],
                                       label="Rank correlation, trained vs randomised", interactive=False)
                s_stats = gr.JSON(label="Sanity stats")
                s_files = downloads()
        s_outputs = [s_plot, s_table, s_stats]
        raw_values(s_go.click, with_downloads(sanity, s_outputs), [s_image, randomisation, s_target, model_state],
                   s_outputs + [s_files], api_name=f"{SLUG}_sanity")

    with gr.Tab("FGSM"):
        gr.Markdown(
            "The fast gradient sign method (Goodfellow et al., 2015): one step x + ε·sign(∇x loss) that raises the "
            "cross-entropy of the target class (the predicted one by default), at the model's input resolution, "
            f"with ε in pixel units on [0, 1] (at most {options.MAX_EPSILON:g}). The flip search tries every 8-bit "
            f"step k/255, k = 1..{options.FLIP_GRID_STEPS}, along the same direction.")
        with gr.Row():
            with gr.Column():
                f_image = gr.Image(default_image, label="Image", type="pil", height=240)
                epsilon = gr.Slider(0, options.MAX_EPSILON, value=options.DEFAULT_EPSILON, step=1 / 255,
                                    label="ε (pixel units on [0, 1])")
                f_target = gr.Dropdown(_target_choices(classes), value="", label="Class whose loss the step raises")
                f_go = gr.Button("Attack", variant="primary")
            with gr.Column():
                adversarial = gr.Image(label="Adversarial image (model resolution, PNG)", type="pil", format="png",
                                       height=200)
                f_stats = gr.JSON(label="FGSM stats")
                f_files = downloads()
        f_plot = gr.Plot(label="Original, perturbation, adversarial, and the flip search")
        f_note = gr.Markdown()
        f_result = gr.State(None)
        f_outputs = [adversarial, f_stats, f_result]
        raw_values(f_go.click, with_downloads(fgsm, f_outputs), [f_image, epsilon, f_target, model_state],
                   f_outputs + [f_files], api_name=f"{SLUG}_fgsm").success(
            fgsm_panel, [f_result], [f_plot, f_note], api_visibility="private")

    gr.Markdown(HONEST_NOTE)
    raw_values(model.change, select_model, [model],
               [model_state, model_info, target, s_target, f_target], api_name=f"{SLUG}_select_model")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
