"""DiT Denoising Stepper: the Gradio page. The maths lives in compute.py (and shared/diffusion.py)."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from shared.data.shapes import COLORS, SHAPES, sample_image
from shared.device import gpu
from shared.models import local_path, shipped_metrics
from shared.ui import as_int, raw_values, sample_examples, user_errors

from . import compute

SLUG = "dit_stepper"
TITLE = "DiT Denoising Stepper"
WEIGHTS: tuple[str, ...] = (compute.TINY_MODEL,)

MODEL_CHOICES = [
    ("dit-tiny-shapes (trained here: 32x32 pixels, patch 4)", compute.TINY_MODEL),
    ("facebook/DiT-XL-2-256 (Hub: 256 px ImageNet via SD-VAE latents)", compute.XL_MODEL),
]
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
}
GUIDANCE_HELP = "s = 0: unconditional, s = 1: conditional, s > 1: pushed further toward the class"


# --------------------------------------------------------------------------------------
#                                   Text and figures
# --------------------------------------------------------------------------------------

def _frame_markdown(f: compute.Frame) -> str:
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


def _panels(f: compute.Frame):
    return f.x_t, f.eps, f.x0, f.x_next, _frame_markdown(f)


def _timeline(state: compute.StepperState) -> list[tuple]:
    return [(f.x_next, f"{f.index}: t={f.t:g}") for f in state.frames]


def _schedule_figure(curves: dict[str, dict], t: int | None = None) -> Figure:
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

def _controls(class_label, steps, guidance_scale, seed, scheduler, model):
    return (model or compute.TINY_MODEL, class_label, as_int(steps, "steps"), guidance_scale,
            as_int(seed, "seed"), scheduler)


def _same_controls(state: compute.StepperState | None, controls) -> bool:
    if state is None:
        return False
    model, class_label, steps, guidance, seed, scheduler = controls
    return (state.model, state.class_label, state.steps, state.guidance, state.seed, state.scheduler_name) == (
        model, class_label, steps, compute.check_guidance(guidance), seed, scheduler)


@user_errors
def reset(class_label, steps, guidance_scale, seed, scheduler, model):
    """Draw x_T from the seed; show it and clear the timeline."""
    state = compute.start(*_controls(class_label, steps, guidance_scale, seed, scheduler, model))
    x_T = compute.picture(state.scheduler.scale_model_input(state.x, state.scheduler.timesteps[0])[0], "noise")
    info = (f"x_T ~ N(0, I) drawn from seed {state.seed}; {state.steps} {state.scheduler_name} steps ahead, "
            f"guidance s = {state.guidance:g}. Press **Step**.")
    return state, x_T, None, None, None, info, [], gr.Slider(minimum=1, maximum=max(2, state.steps), value=1)


@gpu(duration=60)
def _one_step(state):
    return compute.step(state)


@user_errors
def step_once(class_label, steps, guidance_scale, seed, scheduler, model, state):
    """One denoising step (a new trajectory starts when the controls changed)."""
    controls = _controls(class_label, steps, guidance_scale, seed, scheduler, model)
    if not _same_controls(state, controls):
        state = compute.start(*controls)
    frame = _one_step(state)
    return (state, *_panels(frame), _timeline(state),
            gr.Slider(minimum=1, maximum=max(2, len(state.frames)), value=frame.index))


@user_errors
def run_to_end(class_label, steps, guidance_scale, seed, scheduler, model, state, progress=gr.Progress()):
    """Stream every remaining step into the panels and the timeline."""
    controls = _controls(class_label, steps, guidance_scale, seed, scheduler, model)
    if not _same_controls(state, controls) or state.done:
        state = compute.start(*controls)
    every = max(1, state.steps // 25)  # refresh the timeline about 25 times, whatever the step count
    for frame in progress.tqdm(compute.run_to_end(state), total=state.steps - state.index, desc="denoising"):
        timeline = _timeline(state) if frame.index % every == 0 or state.done else gr.skip()
        yield (state, *_panels(frame), timeline,
               gr.Slider(minimum=1, maximum=max(2, len(state.frames)), value=frame.index))


@user_errors
def show_frame(index, state):
    """Scrub the timeline: the four panels of a stored step."""
    if state is None or not state.frames:
        raise ValueError("no steps yet: press Step or Run to end first")
    index = as_int(index, "frame")
    if not 1 <= index <= len(state.frames):
        raise ValueError(f"frame must be from 1 to {len(state.frames)}, got {index}")
    return _panels(state.frames[index - 1])


@gpu(duration=120)
@user_errors
def dit_stepper_sample(class_label: str, steps: int, guidance_scale: float, seed: int, scheduler: str,
                       model: str = compute.TINY_MODEL):
    """The final image for (class, steps, guidance, seed, scheduler); deterministic for a seed."""
    model, class_label, steps, guidance_scale, seed, scheduler = _controls(
        class_label, steps, guidance_scale, seed, scheduler, model)
    return compute.sample(class_label, steps, guidance_scale, seed, scheduler, model)


@gpu(duration=240)
@user_errors
def compare_guidance(class_label, steps, guidance_scale, seed, scheduler, model, progress=gr.Progress()):
    """The same seed at guidance 0, 1 and the chosen scale."""
    model, class_label, steps, guidance_scale, seed, scheduler = _controls(
        class_label, steps, guidance_scale, seed, scheduler, model)
    progress(0, desc="sampling at three guidance scales")
    row = compute.guidance_row(class_label, steps, guidance_scale, seed, scheduler, model)
    return [(img, f"s = {s:g}") for s, img in row]


def _schedule_curves(model: str) -> dict[str, dict]:
    _, parts = compute.load_model(compute.TINY_MODEL)
    curves = {"dit-tiny-shapes (cosine)": compute.schedule_curves(parts.scheduler_config),
              "DiT-XL/2 (linear 1e-4..0.02)": compute.schedule_curves(compute.DIT_XL2_SCHEDULE)}
    return curves


@user_errors
def forward(image, t, seed):
    """Noise the image to step t with the tiny model's schedule; the schedule plot."""
    t, seed = as_int(t, "t"), as_int(seed, "seed")
    _, parts = compute.load_model(compute.TINY_MODEL)
    n = compute.forward_noise(image, t, seed, parts.scheduler_config)
    info = (f"x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε with t = {n.t}: ᾱ_t = {n.alpha_bar:.4g}, "
            f"√ᾱ_t = {n.alpha_bar ** 0.5:.4f}, √(1−ᾱ_t) = {(1 - n.alpha_bar) ** 0.5:.4f}, SNR = {n.snr:.4g}")
    strip = [(img, f"t = {tt}") for tt, img in n.strip]
    return n.x0, n.noise, n.x_t, info, strip, _schedule_figure(_schedule_curves(compute.TINY_MODEL), t)


@user_errors
def architecture(class_label, seed, model, progress=gr.Progress()):
    """Patchify a real shape, check the patch embedding two ways, adaLN-Zero per block, and the cost table."""
    seed = compute.check_seed(as_int(seed, "seed"))
    transformer, parts = compute.load_model(compute.TINY_MODEL)  # the trained tiny model is the one dissected
    if model == compute.XL_MODEL:
        class_label = parts.class_names[0]
    cls = compute.class_index(class_label, parts.class_names)
    size, p = transformer.config.sample_size, transformer.config.patch_size
    colour = list(COLORS)[seed % len(COLORS)]
    image, _ = sample_image(parts.class_names[cls], colour, size, seed)  # a real render of the class
    x = compute.image_to_tensor(image, size)  # (3, 32, 32)
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
    ts = [999, 750, 500, 250, 100, 0]
    mod = compute.adaln_modulation(transformer, cls, ts)
    progress(0.6, desc="counting parameters and MACs")
    rows = []
    for name, cfg in (("dit-tiny-shapes", compute.tiny_config()), ("DiT-XL/2, 256 px", compute.DIT_XL2_CONFIG)):
        r = compute.count_macs(cfg)
        rows.append([name, r["input"], r["patch_size"], r["tokens"], r["width"], r["layers"],
                     f"{r['params_shared_embedders'] / 1e6:.3f} M", f"{r['params'] / 1e6:.3f} M",
                     f"{r['macs_shared_embedders'] / 1e9:.4f}", f"{r['macs'] / 1e9:.4f}"])
    table = {"headers": ["model", "input", "patch", "tokens", "width", "blocks", "params (DiT counting)",
                         "params (diffusers)", "GMACs / forward (DiT)", "GMACs (diffusers)"], "data": rows}
    return grid, _tokens_figure(emb["tokens"].numpy(), p), embed_md, _adaln_figure(mod), table


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def _tiny_size() -> int:
    """The embedded DiT's image side, from its config (sample_size: pixels in pixel space)."""
    path = local_path(compute.TINY_MODEL) / "config.json"
    return json.loads(path.read_text())["sample_size"] if path.is_file() else 32


def _parameterisation() -> str:
    """What the embedded model's output is, from its scheduler config (read at build; no model load)."""
    path = local_path(compute.TINY_MODEL) / "scheduler" / "scheduler_config.json"
    kind = json.loads(path.read_text()).get("prediction_type") if path.is_file() else None
    return {
        "v_prediction": f"it predicts v = √ᾱ·ε − √(1−ᾱ)·x₀, {PAPERS['v']}",
        "sample": f"it predicts the clean image x₀ itself, {PAPERS['x']}",
        "epsilon": f"it predicts the noise ε, {PAPERS['ddpm']}",
    }.get(kind, "trained here")


def _quality_note() -> str:
    """How often the embedded model draws the class it was asked for, from its model card's metrics."""
    m = shipped_metrics(compute.TINY_MODEL)
    if not m or "class_accuracy" not in m:
        return ""
    return (f"\n\n**How good is the tiny model?** Of {m['n']} samples ({m['steps']} {m.get('scheduler', 'DDIM')} steps, guidance "
            f"{m['guidance']:g}), the shapes classifier `vit-tiny-shapes` recognises the requested shape in "
            f"**{m['class_accuracy']:.0%}** ({m['class_accuracy_guidance0']:.0%} without guidance; chance is "
            f"{1 / len(SHAPES):.0%}). It is a 2M-parameter model trained on a 2-core CPU, so "
            "expect ragged corners and the odd blob. Measured by `python -m shared.models eval dit-tiny-shapes`.")


def build() -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            f"A Diffusion Transformer ({PAPERS['dit']}) turns noise into an image over a few dozen steps. "
            "Step through it: at every step the transformer looks at x_t and predicts either the noise ε̂ or the "
            "clean image x̂₀ (each gives the other: x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t), and a scheduler moves x_t "
            f"toward x̂₀. The embedded model is a tiny DiT trained here on {_tiny_size()}×{_tiny_size()} shapes "
            f"(pixel space; {_parameterisation()}); with network, "
            "the real DiT-XL/2 runs the same loop on VAE latents."
            + _quality_note()
        )
        model_state = gr.State(compute.TINY_MODEL)  # the model of every event; hidden from the API
        state = gr.State(None)  # this session's trajectory (never shared between users)
        with gr.Row():
            model = gr.Dropdown(MODEL_CHOICES, value=compute.TINY_MODEL, label="model")
            class_label = gr.Dropdown(list(SHAPES), value="star", label="class")
            scheduler = gr.Dropdown(list(compute.SCHEDULER_NAMES), value=compute.DEFAULT_SCHEDULER,
                                    label="scheduler")
        with gr.Row():
            steps = gr.Slider(1, compute.MAX_STEPS, value=25, step=1, label=f"steps (1–{compute.MAX_STEPS})")
            guidance = gr.Slider(0, compute.MAX_GUIDANCE, value=3.0, step=0.5, label="guidance scale s",
                                 info=GUIDANCE_HELP)
            seed = gr.Number(value=0, precision=0, label="seed", minimum=0, maximum=compute.MAX_SEED)
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
            frame = gr.Slider(1, 25, value=1, step=1, label="timeline: show step")
            timeline = gr.Gallery(label="timeline (x after each step)", columns=10, height=260, format="png",
                                  object_fit="contain")
            final = gr.Image(label="sample (the endpoint dit_stepper_sample)", type="pil", format="png", height=256)

        with gr.Tab("Forward process"):
            gr.Markdown(
                f"Noising is one formula ({PAPERS['ddpm']}): x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, here with the tiny "
                f"model's cosine schedule ({PAPERS['iddpm']}). The plot compares it with DiT-XL/2's linear one."
            )
            with gr.Row():
                image = gr.Image(label=f"image (resized to {_tiny_size()}×{_tiny_size()})", height=256, type="pil")
                with gr.Column():
                    t_slider = gr.Slider(0, 999, value=500, step=1, label="timestep t")
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

        gr.Examples([["star", 25, 3.0, 0, "DDIM"], ["circle", 50, 1.0, 7, "DPM-Solver++"],
                     ["cross", 25, 5.0, 3, "Euler"], ["triangle", 100, 3.0, 1, "DDPM"]],
                    inputs=[class_label, steps, guidance, seed, scheduler])

        # ---- events ----
        def choose_model(name):
            if name == compute.XL_MODEL:
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
        raw_values(noise_btn.click, forward, [image, t_slider, noise_seed], [f_x0, f_eps, f_xt, f_info, f_strip, f_plot],
                   api_name=f"{SLUG}_forward")
        raw_values(guide_btn.click, compare_guidance, controls, guide_gallery, api_name=f"{SLUG}_guidance")
        raw_values(arch_btn.click, architecture, [class_label, seed, model_state],
                   [grid, tokens, embed_md, adaln_plot, cost], api_name=f"{SLUG}_architecture")
    return demo


if __name__ == "__main__":
    build().launch()
