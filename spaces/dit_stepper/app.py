"""DiT denoising stepper: the Gradio page. The maths lives in compute.py (and shared/diffusion.py).

compute.py imports torch and diffusers (seconds), so a handler imports it on first use: the hub builds every
page at start-up (issue 14). What ``build()`` needs (choices, limits, the embedded model's facts) comes from
the torch-free ``options.py``, and plots import matplotlib where they draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr
import numpy as np

from hub.registry import get as tutorial
from shared import validate
from shared.data.shapes import COLORS, SHAPES, sample_image
from shared.device import gpu
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from .options import (
    DEFAULT_GUIDANCE,
    DEFAULT_PATH_STEPS,
    DEFAULT_SCHEDULER,
    DEFAULT_STEPS,
    DIT_PATCHES,
    DIT_SIZES,
    LATENT_CHANNELS,
    LATENT_SIZE,
    MAX_GUIDANCE,
    MAX_PATH_STEPS,
    MAX_SEED,
    MAX_STEPS,
    PAPER_CONDITIONING,
    PAPER_TABLE4,
    SCHEDULER_NAMES,
    TINY_MODEL,
    XL_MODEL,
    check_dit_patch,
    check_dit_size,
    check_flow_steps,
    check_guidance,
    check_path_steps,
    check_scheduler,
    check_seed,
    check_steps,
    dit_name,
    tiny_facts,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .compute import Frame, StepperState

SLUG = "dit_stepper"
TUTORIAL = tutorial(SLUG)  # title and emoji are defined once, in hub/registry.py
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (TINY_MODEL,)

PAPERS = {
    "dit": "[Peebles & Xie, 2023](https://arxiv.org/abs/2212.09748)",
    "ddpm": "[Ho et al., 2020](https://arxiv.org/abs/2006.11239)",
    "ddim": "[Song et al., 2021](https://arxiv.org/abs/2010.02502)",
    "dpm": "[Lu et al., 2022](https://arxiv.org/abs/2211.01095)",
    "karras": "[Karras et al., 2022](https://arxiv.org/abs/2206.00364)",
    "cfg": "[Ho & Salimans, 2022](https://arxiv.org/abs/2207.12598)",
    "v": "[Salimans & Ho, 2022](https://arxiv.org/abs/2202.00512)",
    "x": "[Li & He, 2025](https://arxiv.org/abs/2511.13720)",
    "iddpm": "[Nichol & Dhariwal, 2021](https://arxiv.org/abs/2102.09672)",
    "ldm": "[Rombach et al., 2022](https://arxiv.org/abs/2112.10752)",
    "rf": "[Liu et al., 2023](https://arxiv.org/abs/2209.03003)",
    "fm": "[Lipman et al., 2023](https://arxiv.org/abs/2210.02747)",
    "sd3": "[Esser et al., 2024](https://arxiv.org/abs/2403.03206)",
}
GUIDANCE_HELP = "s = 0: unconditional, s = 1: conditional, s > 1: pushed further toward the class"
# diffusers' beta_schedule names, as the page says them
SCHEDULE_NAMES = {"squaredcos_cap_v2": "cosine", "linear": "linear", "scaled_linear": "scaled linear"}


# --------------------------------------------------------------------------------------
#                                   Model facts, read from the shipped files
# --------------------------------------------------------------------------------------

def _schedule_name(config: dict) -> str:
    """A DDPM config's schedule in words: 'cosine', or 'linear 0.0001..0.02' with its betas."""
    kind = config.get("beta_schedule")
    name = SCHEDULE_NAMES.get(kind, str(kind))
    if kind in ("linear", "scaled_linear"):
        return f"{name} {config['beta_start']:g}..{config['beta_end']:g}"
    return name


def _parameterisation(prediction_type: str | None) -> str:
    """What the model's output is, from its scheduler config's ``prediction_type``."""
    return {
        "v_prediction": f"it predicts v = √ᾱ·ε − √(1−ᾱ)·x₀, {PAPERS['v']}",
        "sample": f"it predicts the clean image x₀ itself, {PAPERS['x']}",
        "epsilon": f"it predicts the noise ε, {PAPERS['ddpm']}",
    }.get(prediction_type, "its scheduler config does not say what it predicts")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def _training(m: dict) -> str:
    """How the model was trained, as far as metrics.json records it: steps, wall time, threads, machine.
    What is not recorded is not claimed."""
    text = f" for {m['train_steps']:,} steps" if "train_steps" in m else ""
    if "train_wall_seconds" in m:
        text += f" in {_duration(m['train_wall_seconds'])} of wall time"
    elif "phase2_wall_seconds" in m:  # phase 2 ran alone on earlier weights, whose time was not recorded
        text += f" (the last {m['phase2_steps']:,} in {_duration(m['phase2_wall_seconds'])} of wall time)"
    if "hardware" in m:
        text += f" on {m['hardware']}"
    if "torch_threads" in m:
        text += f" with {m['torch_threads']} torch threads"
    return text


def _model_line(f: dict) -> str:
    """The embedded DiT: size, architecture, training and output, every figure from its files."""
    if not f:
        return f"The embedded model `{TINY_MODEL}` is not trained yet: `python -m shared.training {TINY_MODEL}`."
    m = f["metrics"]
    params = f" of {m['parameters'] / 1e6:.2f}M parameters" if "parameters" in m else ""
    return (f"The embedded model, `{TINY_MODEL}`, is a tiny DiT{params} trained here on shapes{_training(m)}, in "
            f"pixel space: {f['size']}×{f['size']}×{f['channels']} images cut into {f['patch']}×{f['patch']} "
            f"patches, {f['grid']}×{f['grid']} = {f['tokens']} tokens, width {f['width']}, "
            f"{f['blocks']} blocks; {_parameterisation(f['prediction_type'])}.")


def _quality_note(f: dict) -> str:
    """How often the embedded model draws the class it was asked for, and which judge said so (metrics.json)."""
    m = f.get("metrics", {}) if f else {}
    if "class_accuracy" not in m:
        return ""
    judge = f"the judge, {m['judge']}," if m.get("judge") else "a shapes classifier"
    unguided = (f"{m['class_accuracy_guidance0']:.1%} without guidance; " if "class_accuracy_guidance0" in m
                else "")
    scheduler = f"{m['scheduler']} " if "scheduler" in m else ""
    return (f"\n\n**How good is the tiny model?** Of {m['n']} samples ({m['steps']} {scheduler}"
            f"steps, guidance {m['guidance']:g}), {judge} recognises the requested shape in "
            f"**{m['class_accuracy']:.1%}** ({unguided}chance is {1 / f['classes']:.0%}). "
            f"{_ceiling(m)}Expect ragged corners and the odd blob. "
            f"Measured by `python -m shared.models eval {TINY_MODEL}`.")


def _ceiling(m: dict) -> str:
    """What the judge scores on real shapes of the training data's kind: the most a perfect model could get."""
    if "judge_accuracy_on_real" not in m:
        return ""
    return (f"On {m['n']} real shapes of the kind it was trained on, passed the same way, the judge is right "
            f"{m['judge_accuracy_on_real']:.1%} of the time: about what a perfect model would score. ")


def _intro(f: dict) -> str:
    return (
        f"# {TUTORIAL.emoji} {TUTORIAL.title}\n"
        f"A Diffusion Transformer ({PAPERS['dit']}) turns noise into an image over a few dozen steps. "
        "Step through it: at every step the transformer looks at x_t and predicts either the noise ε̂ or the "
        "clean image x̂₀ (each gives the other: x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t), and a scheduler moves x_t "
        f"toward x̂₀. {_model_line(f)} With network, the real DiT-XL/2 runs the same loop on VAE latents."
        + _quality_note(f)
    )


def _model_choices(f: dict) -> list[tuple[str, str]]:
    tiny = f"{TINY_MODEL} (trained here: {f['size']}x{f['size']} pixels, patch {f['patch']})" if f else TINY_MODEL
    return [(tiny, TINY_MODEL), ("facebook/DiT-XL-2-256 (Hub: 256 px ImageNet via SD-VAE latents)", XL_MODEL)]


# --------------------------------------------------------------------------------------
#                                   Text and figures
# --------------------------------------------------------------------------------------

def _frame_markdown(f: Frame) -> str:
    g = f.guidance
    snr = f.alpha_bar / (1 - f.alpha_bar)
    return (
        f"**step {f.index} / {f.steps}** · t = {f.t:g} · ᾱ_t = {f.alpha_bar:.4g} · "
        f"σ_t = √((1-ᾱ_t)/ᾱ_t) = {f.sigma:.4g} · SNR = {snr:.4g}\n\n"
        f"Guidance at channel {g['channel']}, pixel ({g['row']}, {g['col']}), where ε_cond and ε_uncond differ most: "
        f"ε = ε_uncond + s·(ε_cond − ε_uncond) = {g['eps_uncond']:.4f} + {g['scale']:g}·"
        f"({g['eps_cond']:.4f} − {g['eps_uncond']:.4f}) = **{g['eps']:.4f}** · "
        f"mean |ε_cond − ε_uncond| over the image = {g['mean_abs_difference']:.4f}"
    )


def _panels(f: Frame):
    return f.x_t, f.eps, f.x0, f.x_next, _frame_markdown(f)


def _timeline(state: StepperState) -> list[tuple]:
    return [(f.x_next, f"{f.index}: t={f.t:g}") for f in state.frames]


def _schedule_figure(curves: dict[str, dict], t: int | None = None) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for name, c in curves.items():
        left.plot(c["t"], c["alpha_bar"], label=name)
        right.plot(c["t"], c["snr"], label=name)
    left.set_yscale("log")
    right.set_yscale("log")
    left.set_title("ᾱ_t (signal kept), log scale", fontsize=9)
    right.set_title("SNR(t) = ᾱ_t / (1 − ᾱ_t), log scale", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("timestep t")
        if t is not None:
            ax.axvline(t, color="grey", ls=":", lw=1)
        ax.legend(fontsize=7)
    return fig


def _adaln_figure(mod: dict) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, j, title in ((axes[0], 2, "gate_msa (attention)"), (axes[1], 5, "gate_mlp (MLP)")):
        im = ax.imshow(mod["mean_abs"][:, :, j], aspect="auto", cmap="magma")
        ax.set_xticks(range(len(mod["timesteps"])), [str(t) for t in mod["timesteps"]], fontsize=7)
        ax.set_xlabel("timestep t")
        ax.set_ylabel("block")
        ax.set_title(f"mean |{title}| per block", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.85)
    return fig


def _tokens_figure(tokens: np.ndarray, p: int) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 2.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(tokens.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xlabel(f"token (patch) index, row-major over the grid: {tokens.shape[0]} tokens")
    ax.set_ylabel(f"{tokens.shape[1]} values\n(C·{p}·{p})")
    ax.set_title("the patchified image: one column per token, pixels in [-1, 1]", fontsize=9)
    return fig


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

_LOADED: set[str] = set()  # models this process has loaded (so only the first call says "loading")


def _compute(model: str = TINY_MODEL, progress: gr.Progress | None = None):
    """compute.py with ``model`` loaded. The first call imports torch and diffusers and reads the weights
    (seconds), so it reports progress; later calls find both cached. A relative import: an exported Space
    has this package at its top level, not under spaces/."""
    if model not in _LOADED and progress is not None:
        progress(0, desc=f"loading {model} (first use only)")
    from . import compute

    compute.load_model(model)
    _LOADED.add(model)
    return compute


def _controls(class_label, steps, guidance_scale, seed, scheduler, model) -> tuple:
    """The validated controls, in compute.start's order; checked before any model is loaded."""
    return (model or TINY_MODEL, class_label, check_steps(steps), check_guidance(guidance_scale),
            check_seed(seed), check_scheduler(scheduler))


def _same_controls(state: StepperState | None, controls: tuple) -> bool:
    if state is None:
        return False
    model, class_label, *rest = controls
    # an ImageNet class arrives as its number ("207") and is stored by name
    same_class = class_label in (state.class_label, str(state.class_id))
    return same_class and (state.model, state.steps, state.guidance, state.seed, state.scheduler_name) == (
        model, *rest)


def _frame_slider(state: StepperState, value: int) -> gr.Slider:
    return gr.Slider(minimum=1, maximum=max(2, len(state.frames)), value=value)


@user_errors
def reset(class_label, steps, guidance_scale, seed, scheduler, model, progress=gr.Progress()):
    """Draw x_T from the seed; show it and clear the timeline."""
    controls = _controls(class_label, steps, guidance_scale, seed, scheduler, model)
    compute = _compute(controls[0], progress)
    state = compute.start(*controls)
    x_T = compute.picture(state.scheduler.scale_model_input(state.x, state.scheduler.timesteps[0])[0], "noise")
    info = (f"x_T ~ N(0, I) drawn from seed {state.seed}; {state.steps} {state.scheduler_name} steps ahead, "
            f"guidance s = {state.guidance:g}. Press **Step**.")
    return state, x_T, None, None, None, info, [], gr.Slider(minimum=1, maximum=max(2, state.steps), value=1)


@gpu(duration=60)
def _one_step(state: StepperState):
    from . import compute  # the state alone crosses into the GPU worker on ZeroGPU

    return compute.step(state)


@user_errors
def step_once(class_label, steps, guidance_scale, seed, scheduler, model, state, progress=gr.Progress()):
    """One denoising step (a new trajectory starts when the controls changed)."""
    controls = _controls(class_label, steps, guidance_scale, seed, scheduler, model)
    compute = _compute(controls[0], progress)
    if not _same_controls(state, controls):
        state = compute.start(*controls)
    frame = _one_step(state)
    return (state, *_panels(frame), _timeline(state), _frame_slider(state, frame.index))


@user_errors
def run_to_end(class_label, steps, guidance_scale, seed, scheduler, model, state, progress=gr.Progress()):
    """Stream every remaining step into the panels and the timeline."""
    controls = _controls(class_label, steps, guidance_scale, seed, scheduler, model)
    compute = _compute(controls[0], progress)
    if not _same_controls(state, controls) or state.done:
        state = compute.start(*controls)
    every = max(1, state.steps // 25)  # refresh the timeline about 25 times, whatever the step count
    for frame in progress.tqdm(compute.run_to_end(state), total=state.steps - state.index, desc="denoising"):
        timeline = _timeline(state) if frame.index % every == 0 or state.done else gr.skip()
        yield (state, *_panels(frame), timeline, _frame_slider(state, frame.index))


@user_errors
def show_frame(index, state):
    """Scrub the timeline: the four panels of a stored step."""
    if state is None or not state.frames:
        raise ValueError("no steps yet: press Step or Run to end first")
    index = validate.integer(index, "frame", 1, len(state.frames))
    return _panels(state.frames[index - 1])


@gpu(duration=120)
@user_errors
def dit_stepper_sample(class_label: str, steps: int, guidance_scale: float, seed: int, scheduler: str,
                       model: str = TINY_MODEL, progress=gr.Progress()):
    """The final image for (class, steps, guidance, seed, scheduler); deterministic for a seed."""
    controls = _controls(class_label, steps, guidance_scale, seed, scheduler, model)
    model, class_label, steps, guidance_scale, seed, scheduler = controls
    compute = _compute(model, progress)
    return compute.sample(class_label, steps, guidance_scale, seed, scheduler, model,
                          on_step=lambda i, n: progress(i / n, desc=f"denoising: step {i} / {n}"))


@gpu(duration=240)
@user_errors
def compare_guidance(class_label, steps, guidance_scale, seed, scheduler, model, progress=gr.Progress()):
    """The same seed at guidance 0, 1 and the chosen scale."""
    model, class_label, steps, guidance_scale, seed, scheduler = _controls(
        class_label, steps, guidance_scale, seed, scheduler, model)
    compute = _compute(model, progress)
    runs = len(compute.guidance_scales(guidance_scale))
    done = {"steps": 0}

    def on_step(s: float, i: int, n: int) -> None:
        done["steps"] += 1
        progress(done["steps"] / (runs * n), desc=f"s = {s:g}: step {i} / {n}")

    row = compute.guidance_row(class_label, steps, guidance_scale, seed, scheduler, model, on_step)
    return [(img, f"s = {s:g}") for s, img in row]


def _schedule_curves(compute, tiny_config: dict) -> dict[str, dict]:
    """ᾱ_t and SNR of the tiny model's schedule (from its scheduler config) and of DiT-XL/2's (the paper's)."""
    xl = compute.DIT_XL2_SCHEDULE
    return {f"{TINY_MODEL} ({_schedule_name(tiny_config)})": compute.schedule_curves(tiny_config),
            f"DiT-XL/2 ({_schedule_name(xl)})": compute.schedule_curves(xl)}


@user_errors
def forward(image, t, seed, progress=gr.Progress()):
    """Noise the image to step t with the tiny model's schedule; the schedule plot."""
    compute = _compute(TINY_MODEL, progress)
    transformer, parts = compute.load_model(TINY_MODEL)
    n = compute.forward_noise(image, t, seed, parts.scheduler_config, transformer.config.sample_size)
    info = (f"x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε with t = {n.t}: ᾱ_t = {n.alpha_bar:.4g}, "
            f"√ᾱ_t = {n.alpha_bar ** 0.5:.4f}, √(1−ᾱ_t) = {(1 - n.alpha_bar) ** 0.5:.4f}, SNR = {n.snr:.4g}")
    strip = [(img, f"t = {tt}") for tt, img in n.strip]
    return n.x0, n.noise, n.x_t, info, strip, _schedule_figure(_schedule_curves(compute, parts.scheduler_config), n.t)


@user_errors
def architecture(class_label, seed, model, progress=gr.Progress()):
    """Patchify a real shape, check the patch embedding two ways, adaLN-Zero per block, and the cost table."""
    import pandas as pd

    seed = check_seed(seed)
    compute = _compute(TINY_MODEL, progress)
    transformer, parts = compute.load_model(TINY_MODEL)  # the trained tiny model is the one dissected
    if model == XL_MODEL:
        class_label = parts.class_names[0]
    cls = compute.class_index(class_label, parts.class_names)
    size, p = transformer.config.sample_size, transformer.config.patch_size
    colour = list(COLORS)[seed % len(COLORS)]
    image, _ = sample_image(parts.class_names[cls], colour, size, seed)  # a real render of the class
    x = compute.image_to_tensor(image, size)  # (3, size, size)
    emb = compute.patch_embedding(transformer, x)
    grid = compute.patch_grid(compute.picture(x, "image"), p, size)
    diff = float((emb["by_linear"] - emb["by_conv"]).abs().max())
    embed_md = (
        f"{size}×{size}×3 pixels, patch {p}: ({size}/{p})² = **{emb['tokens'].shape[0]} tokens** of "
        f"{p}·{p}·3 = **{emb['tokens'].shape[1]} values**, each projected to width {emb['by_conv'].shape[1]}. "
        f"The Conv2d (kernel = stride = {p}) and a Linear on the flattened patches give the same tokens: "
        f"max |difference| = {diff:.2e}. A fixed 2-D sin-cos table is added for position, as in DiT."
    )
    progress(0.3, desc="adaLN-Zero modulation")
    T = parts.scheduler_config["num_train_timesteps"]
    ts = sorted({T - 1, 3 * T // 4, T // 2, T // 4, T // 10, 0}, reverse=True)  # 999, 750, 500, 250, 100, 0
    mod = compute.adaln_modulation(transformer, cls, ts)
    progress(0.6, desc="counting parameters and MACs")
    rows = []
    for name, cfg in ((TINY_MODEL, compute.tiny_config()), ("DiT-XL/2, 256 px", compute.DIT_XL2_CONFIG)):
        r = compute.count_macs(cfg)
        rows.append([name, r["input"], r["patch_size"], r["tokens"], r["width"], r["layers"],
                     f"{r['params_shared_embedders'] / 1e6:.3f} M", f"{r['params'] / 1e6:.3f} M",
                     f"{r['macs_shared_embedders'] / 1e9:.4f}", f"{r['macs'] / 1e9:.4f}"])
    table = pd.DataFrame(rows, columns=["model", "input", "patch", "tokens", "width", "blocks",
                                        "params (DiT counting)", "params (diffusers)", "GMACs / forward (DiT)",
                                        "GMACs (diffusers)"])
    return grid, _tokens_figure(emb["tokens"].numpy(), p), embed_md, _adaln_figure(mod), table



# --------------------------------------------------------------------------------------
#              Issue 23: the DiT family, conditioning, U-Net against DiT, flow matching
# --------------------------------------------------------------------------------------

def _counting():
    """compute.py for the meta-device counts: no model weights are read."""
    from . import compute

    return compute


def _m(n: float) -> float:
    return round(n / 1e6, 2)


def _scaling_figure(details: list[dict]) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    colours = dict(zip(DIT_SIZES, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    for d in details:
        c = colours[d["size"]]
        left.scatter(d["paper_gflops"], d["gmacs_shared_embedders"], color=c)
        left.annotate(d["model"][4:], (d["paper_gflops"], d["gmacs_shared_embedders"]), fontsize=7,
                      xytext=(3, -8), textcoords="offset points")
        right.scatter(d["gmacs_shared_embedders"], d["paper_fid50k"], color=c,
                      label=f"DiT-{d['size']}" if d["patch"] == 2 else None)
        right.annotate(f"/{d['patch']}", (d["gmacs_shared_embedders"], d["paper_fid50k"]), fontsize=7,
                       xytext=(3, 3), textcoords="offset points")
    lim = [0.25, 200]
    left.plot(lim, lim, color="grey", ls=":", lw=1, label="counted = paper")
    for ax in (left, right):
        ax.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("paper's Gflops (Table 4; a multiply-add is one flop)")
    left.set_ylabel("GMACs counted here (1 embedder)")
    left.set_title("FlopCounterMode / 2 against the paper", fontsize=9)
    left.legend(fontsize=7)
    right.set_xlabel("counted GMACs per forward")
    right.set_ylabel("paper's FID-50K (400K steps, no guidance)")
    right.set_title("more compute, lower FID (cf. the paper's Fig. 8)", fontsize=9)
    right.legend(fontsize=7)
    return fig


def _gap_markdown(g: dict) -> str:
    return (
        f"**Why diffusers' {g['model']} counts {_m(g['params_diffusers'])}M parameters, not the paper's "
        f"{g['paper_params_m']}M.** In diffusers every block's `AdaLayerNormZero` owns a "
        "`CombinedTimestepLabelEmbeddings` (`diffusers/models/normalization.py`): a timestep MLP "
        f"(256 → d → d: {g['timestep_mlp_params']:,} parameters) and a class table ((1000 + 1 null) × d: "
        f"{g['class_table_params']:,}), **{g['embedder_params_per_block']:,} per block**, in all "
        f"{g['copies']} blocks. DiT keeps one, shared. The {g['extra_copies']} extra copies hold "
        f"{g['extra_copies']} × {g['embedder_params_per_block']:,} = **{_m(g['extra_params'])}M**, and "
        f"{_m(g['params_diffusers'])}M − {_m(g['extra_params'])}M = **{_m(g['params_one_embedder'])}M**, "
        f"the paper's {g['paper_params_m']}M. The compute barely moves: the timestep MLP runs on one vector "
        "per image (the 'one embedder' columns remove its extra runs)."
    )


@user_errors
def dit_stepper_scaling(progress=gr.Progress()):
    """The 12 DiTs counted on the meta device beside the paper's Table 4 (cached after the first call)."""
    compute = _counting()
    names = [(size, patch) for size in DIT_SIZES for patch in DIT_PATCHES]
    for i, (size, patch) in enumerate(names):
        progress(i / len(names), desc=f"counting {dit_name(size, patch)} on the meta device")
        compute.dit_cost(size, patch)
    result = compute.scaling_table()
    details = result.pop("details")
    result["paper_table4"] = {name: {"gflops": g, "params_m": p, "fid50k": f}
                              for name, (g, p, f) in PAPER_TABLE4.items()}
    table = [[d["model"], d["tokens"], _m(d["params"]), _m(d["params_shared_embedders"]), d["paper_params_m"],
              round(d["gmacs"], 3), round(d["gmacs_shared_embedders"], 3), d["paper_gflops"],
              round(d["gmacs_shared_embedders"] / d["paper_gflops"], 3), d["paper_fid50k"]] for d in details]
    return result, table, _scaling_figure(details), _gap_markdown(result["embedder_gap"])


SCALING_HEADERS = ["model", "tokens", "params (M)", "params, 1 embedder (M)", "paper params (M)", "GMACs",
                   "GMACs, 1 embedder", "paper Gflops", "counted / paper", "paper FID"]
CONDITIONING_HEADERS = ["block", "tokens", "block params (M)", "block GMACs", "model GMACs (est.)", "paper Gflops",
                        "extra compute", "model params (M, est.)", "paper params (M)", "paper FID",
                        "block's t/class embedder (M)"]
UNET_HEADERS = ["model", "params (M)", "params, 1 embedder (M)", "GMACs", "layout"]


@user_errors
def dit_stepper_conditioning(size, patch, progress=gr.Progress()):
    """adaLN-Zero, cross-attention and in-context blocks counted at DiT-{size}/{patch}'s width and tokens."""
    size, patch = check_dit_size(size), check_dit_patch(patch)
    progress(0, desc=f"counting three blocks at {dit_name(size, patch)}'s width")
    r = _counting().conditioning_table(size, patch)
    table = [[row["block"], row["sequence"], _m(row["params"]), round(row["macs"] / 1e9, 4),
              round(row["model_gmacs"], 2), row["paper_gflops"], f"{row['overhead']:+.1%}", _m(row["model_params"]),
              row["paper_params_m"], row["paper_fid50k"], _m(row["embedder_params"])] for row in r["rows"]]
    by = {row["block"]: row for row in r["rows"]}
    paper = (" The paper's columns are its DiT-XL/2 rows (Table 4); choose XL and patch 2 to see them."
             if r["model"] != "DiT-XL/2" else
             f" Against the paper's DiT-XL/2 (Table 4): cross-attention {PAPER_CONDITIONING['cross-attention'][0]} "
             f"Gflops (its text: 'roughly a 15% overhead'), in-context {PAPER_CONDITIONING['in-context'][0]}, "
             f"adaLN-Zero {PAPER_CONDITIONING['adaLN-Zero'][0]}; adaLN-Zero has the best FID at every stage "
             "of training (Fig. 5).")
    note = (
        f"At {r['model']}: width d = {r['width']}, {r['heads']} heads, {r['tokens']} image tokens, {r['layers']} "
        f"blocks. Cross-attention adds a second attention over the 2 condition tokens: "
        f"**{by['cross-attention']['overhead']:+.1%}** compute for the whole model. In-context makes the sequence "
        f"{by['in-context']['sequence']} tokens long: **{by['in-context']['overhead']:+.1%}**. adaLN-Zero's "
        "Linear(d, 6d) runs once per image, not per token, so it adds parameters and almost no compute." + paper
    )
    return r, table, note


@user_errors
def dit_stepper_unet(size, progress=gr.Progress()):
    """DiT-{size}/2 beside a diffusers UNet2DModel of about its size on the same 32x32x4 latent."""
    size = check_dit_size(size)
    progress(0, desc=f"sizing a U-Net to {dit_name(size, 2)} and counting both (meta device)")
    r = _counting().unet_vs_dit(size)
    d, u = r["dit"], r["unet"]
    table = [[d["model"], _m(d["params"]), _m(d["params_shared_embedders"]), round(d["macs"] / 1e9, 2),
              f"{d['layers']} blocks, width {d['width']}, {d['tokens']} tokens"],
             [u["model"], _m(u["params"]), _m(u["params"]), round(u["macs"] / 1e9, 2),
              "channels " + "/".join(map(str, u["channels"])) + " at " + "/".join(map(str, u["resolutions"])) + " px"]]
    ratio = d["macs"] / u["macs"]
    note = (
        f"Both on the same {r['input']} latent at batch 1. With about the same parameters, {d['model']} spends "
        f"**{ratio:.2f}×** the U-Net's multiply-accumulates: every one of its {d['layers']} blocks works on all "
        f"{d['tokens']} tokens, while the U-Net ({PAPERS['ldm']}-style) halves the resolution at each level and "
        "runs its widest layers on the smallest maps. The DiT paper finds that FID follows compute (Gflops) more "
        f"than parameters ({PAPERS['dit']}: 'DiTs with higher Gflops … consistently have lower FID')."
    )
    return r, table, note


def _flow_figure(pc) -> Figure:
    from matplotlib.figure import Figure

    c = pc.curves
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(c["tau_vp"], c["a_vp"], color="tab:blue", label="DDPM/VP: √ᾱ (signal)")
    left.plot(c["tau_vp"], c["b_vp"], color="tab:blue", ls="--", label="DDPM/VP: √(1−ᾱ) (noise)")
    left.plot(c["tau_rf"], c["a_rf"], color="tab:red", label="flow: 1 − σ (signal)")
    left.plot(c["tau_rf"], c["b_rf"], color="tab:red", ls="--", label="flow: σ (noise)")
    left.set_xlabel("normalised time: t / (T − 1) for DDPM, σ for the flow")
    left.set_title("x_τ = a(τ)·x₀ + b(τ)·ε", fontsize=9)
    left.legend(fontsize=7)
    (c1, r1, k1), (c2, r2, k2) = pc.pixels
    x0, eps = pc.x0.double(), pc.noise.double()
    for a, b, colour, name in ((c["a_vp"], c["b_vp"], "tab:blue", "DDPM/VP path"),
                               (c["a_rf"], c["b_rf"], "tab:red", "rectified-flow path")):
        right.plot(a * float(x0[c1, r1, k1]) + b * float(eps[c1, r1, k1]),
                   a * float(x0[c2, r2, k2]) + b * float(eps[c2, r2, k2]), color=colour, label=name)
    for states, colour in ((pc.vp_states, "tab:blue"), (pc.rf_states, "tab:red")):
        right.scatter([float(s[c1, r1, k1]) for s in states], [float(s[c2, r2, k2]) for s in states],
                      color=colour, s=12)
    right.scatter([float(x0[c1, r1, k1])], [float(x0[c2, r2, k2])], marker="*", s=120, color="black", label="x₀")
    right.scatter([float(eps[c1, r1, k1])], [float(eps[c2, r2, k2])], marker="x", s=60, color="black", label="ε")
    right.set_xlabel(f"pixel (row {r1}, col {k1}), red channel")
    right.set_ylabel(f"pixel (row {r2}, col {k2}), red channel")
    right.set_title("two pixels along each path; dots: the schedulers' steps", fontsize=9)
    right.legend(fontsize=7)
    return fig


@user_errors
def dit_stepper_flow(class_label, steps, seed, progress=gr.Progress()):
    """A real x₀ and one ε moved along the DDPM/VP path and the rectified-flow path, step by step."""
    steps, seed = check_path_steps(steps), check_seed(seed)
    compute = _compute(TINY_MODEL, progress)
    transformer, parts = compute.load_model(TINY_MODEL)
    cls = compute.class_index(class_label, parts.class_names)
    size = transformer.config.sample_size
    colour = list(COLORS)[seed % len(COLORS)]
    image, _ = sample_image(parts.class_names[cls], colour, size, seed)  # a real render of the class
    pc = compute.path_comparison(compute.image_to_tensor(image, size), steps, seed, parts.scheduler_config)
    prediction = parts.scheduler_config.get("prediction_type")
    vp = [(compute.picture(s, "image"), f"t={t}" if t >= 0 else "x₀") for s, t in
          zip(pc.vp_states, pc.vp_state_timesteps, strict=True)]
    rf = [(compute.picture(s, "image"), f"σ={sig:.3f}") for s, sig in zip(pc.rf_states, pc.flow_sigmas, strict=True)]
    stats = {"class": parts.class_names[cls], "steps": steps, "seed": seed,
             "ddim_timesteps": pc.ddim_timesteps, "ddim_alpha_bar": pc.ddim_alpha_bar,
             "vp_state_timesteps": pc.vp_state_timesteps, "vp_state_alpha_bar": pc.vp_state_alpha_bar,
             "flow_sigmas": pc.flow_sigmas, "flow_timesteps": pc.flow_timesteps,
             "length_ratio_vp": pc.length_ratio_vp, "length_ratio_rf": pc.length_ratio_rf,
             "final_error_rf": float((pc.rf_states[-1] - pc.x0).abs().max())}
    note = (
        f"One ε (seed {seed}) and one real {parts.class_names[cls]}. **DDPM/VP** ({PAPERS['ddpm']}; the tiny "
        f"model's {_schedule_name(parts.scheduler_config)} schedule): x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε; "
        "the squares of the two coefficients sum to 1, so the path bends: it is "
        f"**{pc.length_ratio_vp:.3f}×** as long as the straight segment from ε to x₀. **Rectified flow** "
        f"({PAPERS['rf']}; flow matching, {PAPERS['fm']}): x_σ = (1−σ)·x₀ + σ·ε, a straight line "
        f"(ratio {pc.length_ratio_rf:.3f}) with a constant velocity dx/dσ = ε − x₀, so an Euler step with the "
        "exact velocity never leaves it. The DDPM states sit at `DDIMScheduler`'s timesteps "
        f"({', '.join(map(str, pc.ddim_timesteps[:3]))}…); the flow states are made by "
        f"`FlowMatchEulerDiscreteScheduler.step` (σ = {', '.join(f'{s:.3f}' for s in pc.flow_sigmas[:3])}…, "
        f"shift 1) fed the exact ε − x₀, and land on x₀ (max error {stats['final_error_rf']:.1e}). "
        f"`{TINY_MODEL}` was trained on the DDPM path ({_parameterisation(prediction)}), not to predict a "
        "velocity, so this page compares the paths rather "
        f"than sampling it with a flow scheduler; SD3 trains on the straight path ({PAPERS['sd3']})."
    )
    return vp, rf, _flow_figure(pc), stats, note


@user_errors
def dit_stepper_flow_sample(class_label, steps, guidance_scale, seed, progress=gr.Progress()):
    """The tiny model sampled by the rectified-flow Euler scheduler, beside DDIM and DPM-Solver++ from the
    same noise and step count."""
    steps, guidance, seed = check_flow_steps(steps), check_guidance(guidance_scale), check_seed(seed)
    compute = _compute(TINY_MODEL, progress)
    progress(0.1, desc=f"flow-matching Euler: {steps} steps")
    fs = compute.flow_sample(class_label, steps, guidance, seed)
    progress(0.5, desc="DDIM and DPM-Solver++ from the same noise")
    ddim = compute.sample(class_label, steps, guidance, seed, "DDIM")
    dpm = compute.sample(class_label, steps, guidance, seed, "DPM-Solver++")
    flow_img = compute.picture(fs.final, "image")
    every = max(1, steps // 10)
    frames = [(compute.picture(x, "image"), f"σ={s:.3f}") for i, (x, s) in enumerate(zip(fs.states, fs.sigmas,
                                                                                        strict=True))
              if i % every == 0 or i == steps]

    def gap(a, b) -> float:  # mean |difference| in [-1, 1] pixel units
        return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).mean() / 127.5)

    stats = {"class": class_label, "steps": steps, "guidance": guidance, "seed": seed, "flow_sigmas": fs.sigmas,
             "ddpm_timesteps_asked": fs.vp_timesteps, "mean_abs_flow_vs_ddim": gap(flow_img, ddim),
             "mean_abs_flow_vs_dpm_solver": gap(flow_img, dpm), "mean_abs_ddim_vs_dpm_solver": gap(ddim, dpm)}
    note = (
        f"`{TINY_MODEL}` was trained on the DDPM path, so at each flow time σ the sampler asks it at the DDPM "
        "point on the same ray: x_vp = (√ᾱ + √(1−ᾱ))·x_σ with √(1−ᾱ)/√ᾱ = σ/(1−σ) (DDPM timestep "
        f"{fs.vp_timesteps[0]:.0f} for σ = {fs.sigmas[0]:.3f}, …, {fs.vp_timesteps[-1]:.0f} for σ = "
        f"{fs.sigmas[-2]:.3f}). Its guided x̂₀ gives ε̂ = (x_vp − √ᾱ·x̂₀)/√(1−ᾱ) and the velocity v = ε̂ − x̂₀, and "
        f"`FlowMatchEulerDiscreteScheduler.step` moves x_σ by (σ_next − σ)·v ({PAPERS['rf']}). All three samplers "
        "start from the same noise and integrate the same probability-flow ODE in different coordinates; mean "
        f"|difference| of the finished images: flow vs DPM-Solver++ {stats['mean_abs_flow_vs_dpm_solver']:.3f}, "
        f"flow vs DDIM {stats['mean_abs_flow_vs_ddim']:.3f} (pixels in [-1, 1]). Where a trajectory sits near a "
        "decision (which colour, which size), few steps can tip samplers to different images."
    )
    finals = [(flow_img, f"flow-matching Euler, {steps} steps"), (ddim, f"DDIM, {steps} steps"),
              (dpm, f"DPM-Solver++, {steps} steps")]
    return frames, finals, stats, note



# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    """The page's components and events, created in the current Blocks context: ``build()`` wraps them
    in a Blocks of their own; the hub renders them straight into its tab (one build per space, and no
    Blocks of its own, whose set-up costs gradio about 0.25 s: issue 14's start-up budget)."""
    facts = tiny_facts()  # the embedded model's config, scheduler config and metrics (JSON; no torch)
    size = facts.get("size")
    schedule = _schedule_name({"beta_schedule": facts.get("beta_schedule")})
    cited = f" ({PAPERS['iddpm']})" if schedule == "cosine" else ""
    gr.Markdown(_intro(facts))
    model_state = gr.State(TINY_MODEL)  # the model of every event; hidden from the API
    state = gr.State(None)  # this session's trajectory (never shared between users)
    with gr.Row():
        model = gr.Dropdown(_model_choices(facts), value=TINY_MODEL, label="model")
        class_label = gr.Dropdown(list(SHAPES), value="star", label="class")
        scheduler = gr.Dropdown(list(SCHEDULER_NAMES), value=DEFAULT_SCHEDULER, label="scheduler")
    with gr.Row():
        steps = gr.Slider(1, MAX_STEPS, value=DEFAULT_STEPS, step=1, label=f"steps (1–{MAX_STEPS})")
        guidance = gr.Slider(0, MAX_GUIDANCE, value=DEFAULT_GUIDANCE, step=0.5, label="guidance scale s",
                             info=GUIDANCE_HELP)
        seed = gr.Number(value=0, precision=0, label="seed", minimum=0, maximum=MAX_SEED)
    gr.Markdown(
        f"Schedulers are diffusers' own, rebuilt from the model's DDPM config: DDPM ({PAPERS['ddpm']}), "
        f"DDIM ({PAPERS['ddim']}), DPM-Solver++ ({PAPERS['dpm']}), Euler ({PAPERS['karras']}). "
        f"Guidance is classifier-free ({PAPERS['cfg']})."
    )
    controls = [class_label, steps, guidance, seed, scheduler, model_state]

    with gr.Tab("Step by step"):
        gr.Markdown("**Step** advances one step; **Run to end** streams every step into the timeline; "
                    "scrub it with the slider. Changing a control starts a new trajectory.")
        with gr.Row():
            reset_btn = gr.Button("Reset")
            step_btn = gr.Button("Step", variant="primary")
            run_btn = gr.Button("Run to end")
            sample_btn = gr.Button("Sample (final image only)")
        with gr.Row():
            x_t = gr.Image(label="x_t (input of this step)", type="pil", format="png", height=256)
            eps = gr.Image(label="predicted noise ε̂ (guided, ±3σ)", type="pil", format="png", height=256)
            x0 = gr.Image(label="predicted clean image x̂₀", type="pil", format="png", height=256)
            x_next = gr.Image(label="x_{t-1} (after the step)", type="pil", format="png", height=256)
        info = gr.Markdown()
        frame = gr.Slider(1, DEFAULT_STEPS, value=1, step=1, label="timeline: show step")
        timeline = gr.Gallery(label="timeline (x after each step)", columns=10, height=260, format="png",
                              object_fit="contain")
        final = gr.Image(label="sample (the endpoint dit_stepper_sample)", type="pil", format="png", height=256)

    with gr.Tab("Forward process"):
        gr.Markdown(
            f"Noising is one formula ({PAPERS['ddpm']}): x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, here with the tiny "
            f"model's {schedule} schedule{cited}. The plot compares it with DiT-XL/2's linear one."
        )
        with gr.Row():
            resized = f" (resized to {size}×{size})" if size else ""
            image = gr.Image(value=sample_examples()[0], label=f"image{resized}", height=256, type="pil")
            with gr.Column():
                t_slider = gr.Slider(0, facts.get("train_timesteps", 1000) - 1, value=500, step=1,
                                     label="timestep t")
                # precision=None: gradio passes 2.5 through, and forward() refuses it (precision=0 would round it)
                noise_seed = gr.Number(value=0, precision=None, step=1, label="noise seed")
                noise_btn = gr.Button("Add noise", variant="primary")
        gr.Examples([[p] for p in sample_examples()[:6]], inputs=[image])
        with gr.Row():
            f_x0 = gr.Image(label="x₀", type="pil", format="png", height=200)
            f_eps = gr.Image(label="ε ~ N(0, I)", type="pil", format="png", height=200)
            f_xt = gr.Image(label="x_t", type="pil", format="png", height=200)
        f_info = gr.Markdown()
        f_strip = gr.Gallery(label="the same x₀ and ε at several t", columns=8, height=180, format="png")
        f_plot = gr.Plot(label="noise schedule")
        f_files = downloads()

    with gr.Tab("Guidance side by side"):
        gr.Markdown("The same seed, scheduler and steps at s = 0 (unconditional), s = 1 (conditional) and "
                    "your s: ε = ε_uncond + s·(ε_cond − ε_uncond).")
        guide_btn = gr.Button("Compare", variant="primary")
        guide_gallery = gr.Gallery(label="s = 0 · 1 · yours", columns=3, height=300, format="png")

    with gr.Tab("Inside the DiT"):
        gr.Markdown(
            f"DiT ({PAPERS['dit']}) is a ViT on patches of the (latent) image. Each block is modulated by "
            "**adaLN-Zero**: the timestep and class embeddings are summed into c, and a Linear(SiLU(c)) gives "
            "a shift, a scale and a gate for the attention and the MLP branch: "
            "x ← x + gate·Attn(LN(x)·(1+scale)+shift). The gate's Linear starts at zero, so every block starts "
            "as the identity. The paper quotes DiT-XL/2 at **118.6 Gflops** (multiply-accumulates) and "
            "**675M parameters** (Table 4); the table below counts them on instantiated configs (meta device, "
            "no weights), hooking every Linear, Conv2d and the two attention matmuls."
        )
        arch_btn = gr.Button("Show", variant="primary")
        with gr.Row():
            grid = gr.Image(label="the sample cut into patches", type="pil", format="png", height=256)
            tokens = gr.Plot(label="tokens")
        embed_md = gr.Markdown()
        adaln_plot = gr.Plot(label="adaLN-Zero gates per block and timestep (your class)")
        cost = gr.Dataframe(label="parameters and multiply-accumulates per forward (batch 1)")
        arch_files = downloads()


    with gr.Tab("DiT scaling"):
        gr.Markdown(
            f"The paper's 12 models ({PAPERS['dit']}, Tables 1 and 4): sizes S, B, L, XL (depth/width/heads "
            + ", ".join(f"{k} {v[0]}/{v[1]}/{v[2]}" for k, v in DIT_SIZES.items())
            + f") at patch 2, 4 and 8 on {LATENT_SIZE}×{LATENT_SIZE}×{LATENT_CHANNELS} latents (256 px images "
            "through the SD VAE), 1000 classes. Each is a diffusers `DiTTransformer2DModel` built on the `meta` "
            "device (no memory behind its weights); parameters are summed and one forward at batch 1 is counted "
            "by `torch.utils.flop_counter.FlopCounterMode`. **GMACs = its FLOPs / 2.** The paper counts a "
            "multiply-add as one flop (W. Peebles, github.com/facebookresearch/DiT issue 14), so its "
            "'Gflops' are GMACs and stand beside ours; its FID-50K is after 400K training steps, without guidance. "
            "Halving the patch quadruples the tokens and about the compute, and leaves the parameters almost "
            "unchanged."
        )
        scaling_btn = gr.Button("Count the 12 DiTs", variant="primary")
        scaling_table = gr.Dataframe(headers=SCALING_HEADERS, label="DiT scaling: counted here vs Peebles & Xie (2023), Table 4")
        scaling_note = gr.Markdown()
        scaling_plot = gr.Plot(label="counted GMACs vs the paper")
        scaling_stats = gr.JSON(label="scaling stats (rows: model, patch, params, gmacs)", open=False, max_height=260)
        scaling_files = downloads()

    with gr.Tab("Conditioning"):
        gr.Markdown(
            f"Three ways to feed t and the class to a block ({PAPERS['dit']}, Sec. 3.2): **adaLN-Zero** "
            "(LayerNorm's scale and shift, plus a gate, regressed from t + class; the gate starts at zero), "
            "**cross-attention** (a second attention from the image tokens to the 2 tokens t and class) and "
            "**in-context** (t and class appended as 2 extra tokens). Each is one diffusers `BasicTransformerBlock` "
            "built on the meta device at the chosen DiT's width and token count and counted by FlopCounterMode; "
            "'whole model' swaps all blocks of the counted DiT."
        )
        with gr.Row():
            cond_size = gr.Dropdown(list(DIT_SIZES), value="XL", label="DiT size")
            cond_patch = gr.Dropdown(list(DIT_PATCHES), value=2, label="patch size")
            cond_btn = gr.Button("Count the three blocks", variant="primary")
        cond_table = gr.Dataframe(headers=CONDITIONING_HEADERS, label="conditioning mechanisms: one block, and the whole model")
        cond_note = gr.Markdown()
        cond_stats = gr.JSON(label="conditioning stats", open=False, max_height=260)
        cond_files = downloads()

    with gr.Tab("U-Net vs DiT"):
        gr.Markdown(
            "DiT replaced the U-Net of latent diffusion. Here a class-conditional diffusers `UNet2DModel` "
            f"({LATENT_SIZE}×{LATENT_SIZE}×{LATENT_CHANNELS} in, 4 levels of base×(1, 2, 3, 4) channels, "
            "self-attention at 16, 8 and 4 px) is given the base width (a multiple of 32) that brings its "
            "parameter count nearest the chosen DiT's at patch 2 (one shared embedder, as the paper counts), and both are "
            "counted the same way on the same input."
        )
        with gr.Row():
            unet_size = gr.Dropdown(list(DIT_SIZES), value="XL", label="DiT size (patch 2)")
            unet_btn = gr.Button("Count both", variant="primary")
        unet_table = gr.Dataframe(headers=UNET_HEADERS, label="U-Net against DiT on the same latent")
        unet_note = gr.Markdown()
        unet_stats = gr.JSON(label="U-Net vs DiT stats", open=False, max_height=260)
        unet_files = downloads()

    with gr.Tab("Flow matching"):
        gr.Markdown(
            f"Rectified flow ({PAPERS['rf']}) and flow matching ({PAPERS['fm']}) move data to noise on a straight "
            "line, x_σ = (1−σ)·x₀ + σ·ε, instead of the DDPM/VP path x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε. Both paths "
            "below start from the same noise and end at the same real render of the class; the step times are "
            "read from diffusers' `DDIMScheduler` (the tiny model's DDPM config) and `FlowMatchEulerDiscreteScheduler`."
        )
        with gr.Row():
            flow_class = gr.Dropdown(list(SHAPES), value="star", label="class (a real render)")
            flow_steps = gr.Slider(1, MAX_PATH_STEPS, value=DEFAULT_PATH_STEPS, step=1,
                                   label=f"scheduler steps (1–{MAX_PATH_STEPS})")
            flow_seed = gr.Number(value=0, precision=None, step=1, label="noise seed", minimum=0, maximum=MAX_SEED)
            flow_btn = gr.Button("Compare the paths", variant="primary")
        vp_gallery = gr.Gallery(label="DDPM/VP path, DDIM steps", columns=11, height=170, format="png",
                                object_fit="contain")
        rf_gallery = gr.Gallery(label="rectified-flow path, flow-matching Euler steps", columns=11, height=170,
                                format="png", object_fit="contain")
        flow_plot = gr.Plot(label="the two paths")
        flow_note = gr.Markdown()
        flow_stats = gr.JSON(label="flow stats", open=False, max_height=260)
        flow_files = downloads()
        gr.Markdown(
            "**A rectified-flow sampler on the tiny model.** diffusers' `FlowMatchEulerDiscreteScheduler` "
            "drives the DDPM-trained model through the change of variables x_σ = x_vp/(√ᾱ + √(1−ᾱ)), "
            "beside DDIM and DPM-Solver++ from the same noise (class, steps and seed from above)."
        )
        with gr.Row():
            flow_guidance = gr.Slider(0, MAX_GUIDANCE, value=DEFAULT_GUIDANCE, step=0.5, label="guidance scale s",
                                      info=GUIDANCE_HELP)
            flow_sample_btn = gr.Button("Sample with the flow scheduler", variant="primary")
        flow_frames = gr.Gallery(label="x_σ during the flow-matching Euler run", columns=11, height=170,
                                 format="png", object_fit="contain")
        flow_finals = gr.Gallery(label="the same noise, three samplers", columns=3, height=400, format="png",
                                 object_fit="contain")
        flow_sample_note = gr.Markdown()
        flow_sample_stats = gr.JSON(label="flow sampler stats", open=False, max_height=260)
        flow_sample_files = downloads()

    gr.Examples([["star", 25, 3.0, 0, "DDIM"], ["circle", 50, 1.0, 7, "DPM-Solver++"],
                 ["cross", 25, 5.0, 3, "Euler"], ["triangle", 100, 3.0, 1, "DDPM"]],
                inputs=[class_label, steps, guidance, seed, scheduler])

    # ---- events ----
    def choose_model(name):
        if name == XL_MODEL:
            return name, gr.Dropdown(choices=["207", "360", "387", "974", "88", "979"], value="207",
                                     allow_custom_value=True, label="ImageNet class id (0–999)")
        return name, gr.Dropdown(choices=list(SHAPES), value="star", allow_custom_value=False, label="class")

    model.change(choose_model, model, [model_state, class_label], api_visibility="private")
    panels = [x_t, eps, x0, x_next, info]
    # Value inputs reach the handlers as sent (raw_values), so their own checks answer bad API input.
    raw_values(reset_btn.click, reset, controls, [state, x_t, eps, x0, x_next, info, timeline, frame],
               api_name=f"{SLUG}_reset")
    raw_values(step_btn.click, step_once, [*controls, state], [state, *panels, timeline, frame],
               api_name=f"{SLUG}_step")
    raw_values(run_btn.click, run_to_end, [*controls, state], [state, *panels, timeline, frame],
               api_name=f"{SLUG}_run")
    raw_values(frame.release, show_frame, [frame, state], panels, api_name=f"{SLUG}_frame")
    raw_values(sample_btn.click, dit_stepper_sample, controls, final, api_name=f"{SLUG}_sample")
    # The plot and the table also come back as files (PNG, CSV): API callers get one more value, their paths.
    forward_outs = [f_x0, f_eps, f_xt, f_info, f_strip, f_plot]
    raw_values(noise_btn.click, with_downloads(forward, forward_outs), [image, t_slider, noise_seed],
               forward_outs + [f_files], api_name=f"{SLUG}_forward")
    raw_values(guide_btn.click, compare_guidance, controls, guide_gallery, api_name=f"{SLUG}_guidance")
    arch_outs = [grid, tokens, embed_md, adaln_plot, cost]
    raw_values(arch_btn.click, with_downloads(architecture, arch_outs), [class_label, seed, model_state],
               arch_outs + [arch_files], api_name=f"{SLUG}_architecture")

    scaling_outs = [scaling_stats, scaling_table, scaling_plot, scaling_note]
    raw_values(scaling_btn.click, with_downloads(dit_stepper_scaling, scaling_outs), [],
               scaling_outs + [scaling_files], api_name=f"{SLUG}_scaling")
    cond_outs = [cond_stats, cond_table, cond_note]
    raw_values(cond_btn.click, with_downloads(dit_stepper_conditioning, cond_outs), [cond_size, cond_patch],
               cond_outs + [cond_files], api_name=f"{SLUG}_conditioning")
    unet_outs = [unet_stats, unet_table, unet_note]
    raw_values(unet_btn.click, with_downloads(dit_stepper_unet, unet_outs), [unet_size],
               unet_outs + [unet_files], api_name=f"{SLUG}_unet")
    flow_outs = [vp_gallery, rf_gallery, flow_plot, flow_stats, flow_note]
    raw_values(flow_btn.click, with_downloads(dit_stepper_flow, flow_outs), [flow_class, flow_steps, flow_seed],
               flow_outs + [flow_files], api_name=f"{SLUG}_flow")
    flow_sample_outs = [flow_frames, flow_finals, flow_sample_stats, flow_sample_note]
    raw_values(flow_sample_btn.click, with_downloads(dit_stepper_flow_sample, flow_sample_outs),
               [flow_class, flow_steps, flow_guidance, flow_seed], flow_sample_outs + [flow_sample_files],
               api_name=f"{SLUG}_flow_sample")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
