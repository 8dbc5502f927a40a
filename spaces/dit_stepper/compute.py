"""DiT denoising stepper: watch a Diffusion Transformer turn noise into an image, one step at a time.

What the tutorial teaches, each computed live:

- **The forward process** (Ho et al., 2020, DDPM): x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 - ᾱ_t)·ε, with
  the schedule ᾱ_t and the signal-to-noise ratio SNR(t) = ᾱ_t / (1 - ᾱ_t) (Kingma et al., 2021).
- **The reverse process**: at every step the transformer predicts the noise ε̂ (or v, Salimans &
  Ho, 2022) from x_t, t and the class; x̂_0 = (x_t - sqrt(1 - ᾱ_t)·ε̂) / sqrt(ᾱ_t) is its current guess
  of the clean image, and a diffusers scheduler (DDPM; DDIM, Song et al., 2021; DPM-Solver++,
  Lu et al., 2022; Euler, Karras et al., 2022) turns the prediction into x_{t-1}.
- **Classifier-free guidance** (Ho & Salimans, 2022): ε = ε_uncond + s·(ε_cond - ε_uncond), with the
  conditional and the null-class halves in one batch through the transformer.
- **The DiT itself** (Peebles & Xie, 2023, "Scalable Diffusion Models with Transformers"): the image
  (or VAE latent) is cut into p x p patches, each a token; every block is modulated by adaLN-Zero,
  whose shift, scale and gate come from the timestep + class embedding; parameters and
  multiply-accumulates per forward are counted on instantiated configs.

Two models: ``dit-tiny-shapes`` (pixel space, trained here on shapes; sizes in its config.json) and,
with network, ``facebook/DiT-XL-2-256`` (32x32x4 SD-VAE latents; x̂_0 is decoded through the VAE).
Choices, limits and input checks live in ``options.py`` (torch-free, for the page's start-up).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

from shared import validate
from shared.diffusion import StepResult, guided_step, initial_noise, make_scheduler
from shared.images import centre_square, to_tensor

from .options import (  # re-exported (see __all__): callers use compute.TINY_MODEL, compute.check_steps...
    DEFAULT_SCHEDULER,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_STEPS,
    MODELS,
    SCHEDULER_NAMES,
    TINY_MODEL,
    XL_MODEL,
    check_guidance,
    check_scheduler,
    check_seed,
    check_steps,
    shipped_json,
)

DISPLAY_SIZE = 256  # model-size samples are shown upscaled with nearest neighbour (exact pixels)

# DiT-XL/2 at 256 px (Peebles & Xie, 2023, Table 1 and 4): 28 blocks, width 1152, 16 heads, patch 2 on a
# 32x32x4 latent; it predicts the noise and a variance (out_channels 8); 1000 ImageNet classes.
DIT_XL2_CONFIG: dict = dict(
    num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
    sample_size=32, patch_size=2, num_embeds_ada_norm=1000,
)
# The DiT paper's linear schedule (beta 1e-4 to 0.02 over 1000 steps), to compare with the tiny model's cosine.
DIT_XL2_SCHEDULE: dict = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


# --------------------------------------------------------------------------------------
#                                   Models and inputs
# --------------------------------------------------------------------------------------

def load_model(name: str):
    """(transformer, parts) from the registry; parts has vae (None in pixel space), scheduler_config,
    class_names. Loaded once per process and shared read-only by every session."""
    from shared.models import load

    validate.choice(name, "model", MODELS)
    loaded = load(name)
    parts = loaded.processor
    if parts.vae is not None and parts.vae.device != loaded.model.device:
        parts.vae.to(loaded.model.device).eval()  # the registry moves the transformer; the VAE follows it
    return loaded.model, parts


def class_index(class_label, class_names: tuple[str, ...]) -> int:
    """The class id of a name (or, for the 1000 ImageNet classes, of its number)."""
    if len(class_names) <= 10:  # the shapes: the names are the choices
        return class_names.index(validate.choice(class_label, "class", class_names))
    if isinstance(class_label, str) and class_label in class_names:
        return class_names.index(class_label)
    if isinstance(class_label, str) and class_label.strip().isdigit():
        idx = int(class_label)
        if idx < len(class_names):
            return idx
    raise ValueError(f"unknown class {class_label!r}; choose a name or a number 0-{len(class_names) - 1}")


# --------------------------------------------------------------------------------------
#                                   Tensors -> pictures
# --------------------------------------------------------------------------------------

def _to_uint8(x: torch.Tensor, lo: float, hi: float) -> np.ndarray:
    """(C, H, W) values in [lo, hi] -> uint8 (H, W, 3); four latent channels show their first three."""
    x = x[:3].float().clamp(lo, hi)  # (3, H, W)
    x = torch.round((x - lo) / (hi - lo) * 255)
    return x.permute(1, 2, 0).to(torch.uint8).cpu().numpy()  # (H, W, 3)


def upscale(array: np.ndarray, size: int = DISPLAY_SIZE) -> Image.Image:
    """Nearest-neighbour upscaling: every model pixel becomes an exact block (deterministic)."""
    img = Image.fromarray(array, "RGB")
    return img if img.width >= size else img.resize((size, size), Image.NEAREST)


def picture(x: torch.Tensor, kind: str) -> Image.Image:
    """One (C, H, W) tensor as an image: 'image' in [-1, 1], 'noise' in [-3, 3] (±3σ)."""
    lo, hi = (-3.0, 3.0) if kind == "noise" else (-1.0, 1.0)
    return upscale(_to_uint8(x, lo, hi))


@torch.no_grad()
def decode(x0: torch.Tensor, parts) -> torch.Tensor:
    """x̂_0 in the model's space -> image in [-1, 1]: the identity in pixel space, the VAE for latents."""
    if parts.vae is None:
        return x0  # (B, 3, H, W)
    vae = parts.vae
    return vae.decode((x0 / parts.latent_scale).to(vae.device, vae.dtype)).sample.float()  # (B, 3, 8H, 8W)


# --------------------------------------------------------------------------------------
#                                   The stepper
# --------------------------------------------------------------------------------------

@dataclass
class Frame:
    """What one step shows: the input x_t, the predictions at it, and the result x_{t-1}."""

    index: int  # 1-based step number
    steps: int
    t: float  # training timestep of this step
    alpha_bar: float
    sigma: float  # sqrt((1 - ᾱ_t) / ᾱ_t)
    x_t: Image.Image  # the noisy input (in the DDPM scale sqrt(ᾱ)x_0 + sqrt(1-ᾱ)ε)
    eps: Image.Image  # guided predicted noise
    x0: Image.Image  # predicted clean image, decoded
    x_next: Image.Image  # x_{t-1}; after the last step this is the sample
    guidance: dict  # the arithmetic at one pixel, and mean |ε_cond - ε_uncond|


@dataclass
class StepperState:
    """One user's trajectory: kept in that session's gr.State, never shared."""

    model: str
    class_label: str
    class_id: int
    steps: int
    guidance: float
    seed: int
    scheduler_name: str
    scheduler: object  # a diffusers scheduler with its step counter
    x: torch.Tensor  # (1, C, H, W) the current sample x_t in the scheduler's own scale
    generator: torch.Generator  # the noise of x_T and of stochastic schedulers (DDPM)
    index: int = 0  # steps taken
    frames: list[Frame] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.index >= self.steps


def start(model: str, class_label: str, steps, guidance, seed, scheduler: str) -> StepperState:
    """Validate the controls and draw x_T ~ N(0, I) from the seed."""
    steps, guidance, seed = check_steps(steps), check_guidance(guidance), check_seed(seed)
    scheduler = check_scheduler(scheduler)
    transformer, parts = load_model(model)
    cls = class_index(class_label, parts.class_names)
    sched = make_scheduler(scheduler, parts.scheduler_config, steps)
    gen = torch.Generator().manual_seed(seed)
    c, size = transformer.config.in_channels, transformer.config.sample_size
    x = initial_noise((1, c, size, size), sched, gen)  # (1, C, H, W)
    return StepperState(model, parts.class_names[cls], cls, steps, guidance, seed, scheduler, sched, x, gen)


def _arithmetic(r: StepResult, s: float) -> dict:
    """ε = ε_uncond + s·(ε_cond - ε_uncond) at the pixel where the two predictions differ most."""
    diff = (r.eps_cond - r.eps_uncond)[0]  # (C, H, W)
    c, y, x = np.unravel_index(int(diff.abs().argmax()), tuple(diff.shape))
    u, k, e = (float(v[0, c, y, x]) for v in (r.eps_uncond, r.eps_cond, r.eps))
    return {"channel": int(c), "row": int(y), "col": int(x), "eps_uncond": u, "eps_cond": k, "scale": s,
            "eps": e, "mean_abs_difference": float(diff.abs().mean())}


def step(state: StepperState) -> Frame:
    """Advance ``state`` by one denoising step (in place) and return what the step computed."""
    if state.done:
        raise ValueError(f"all {state.steps} steps are done; press Reset to start again")
    transformer, parts = load_model(state.model)
    t = state.scheduler.timesteps[state.index]
    x_in = state.scheduler.scale_model_input(state.x, t)  # (1, C, H, W) in the DDPM scale
    labels = torch.tensor([state.class_id])
    device = transformer.device
    r = guided_step(transformer, state.scheduler, state.x.to(device), t, labels.to(device),
                    transformer.config.num_embeds_ada_norm, state.guidance, state.generator)
    state.x = r.x_prev.float().cpu()  # (1, C, H, W)
    state.index += 1
    last = state.done
    image_space = parts.vae is None
    frame = Frame(
        index=state.index, steps=state.steps, t=r.t, alpha_bar=r.alpha_bar, sigma=r.sigma,
        x_t=picture(x_in[0].cpu(), "image" if image_space else "noise"),
        eps=picture(r.eps[0].cpu(), "noise"),
        x0=picture(decode(r.x0, parts)[0].cpu(), "image"),
        x_next=picture(decode(state.x, parts)[0], "image") if (image_space or last) else picture(state.x[0], "noise"),
        guidance=_arithmetic(r, state.guidance),
    )
    state.frames.append(frame)
    return frame


def run_to_end(state: StepperState) -> Iterator[Frame]:
    """Every remaining step, one frame at a time (the UI streams them)."""
    while not state.done:
        yield step(state)


def final_image(state: StepperState) -> Image.Image:
    """The finished sample x_0 (after the last step)."""
    if not state.done:
        raise ValueError(f"{state.steps - state.index} steps remain")
    return state.frames[-1].x_next


def sample(class_label: str, steps, guidance, seed, scheduler: str, model: str = TINY_MODEL,
           on_step: Callable[[int, int], None] | None = None) -> Image.Image:
    """The final image of a full run; the same as the last frame of a stepped run with the same controls.
    ``on_step(i, steps)`` is called after each step (the page's progress bar)."""
    state = start(model, class_label, steps, guidance, seed, scheduler)
    for frame in run_to_end(state):
        if on_step is not None:
            on_step(frame.index, frame.steps)
    return final_image(state)


def guidance_scales(guidance) -> list[float]:
    """0 (unconditional), 1 (conditional, no guidance) and the chosen s, if it is neither."""
    guidance = check_guidance(guidance)
    return [0.0, 1.0] + ([guidance] if guidance not in (0.0, 1.0) else [])


def guidance_row(class_label: str, steps, guidance, seed, scheduler: str, model: str = TINY_MODEL,
                 on_step: Callable[[float, int, int], None] | None = None) -> list[tuple[float, Image.Image]]:
    """The same seed at each of ``guidance_scales(guidance)``. ``on_step(s, i, steps)`` is called after
    each step of each run."""
    scales = guidance_scales(guidance)
    return [(s, sample(class_label, steps, s, seed, scheduler, model,
                       None if on_step is None else lambda i, n, s=s: on_step(s, i, n))) for s in scales]


# --------------------------------------------------------------------------------------
#                                   The forward process and the schedule
# --------------------------------------------------------------------------------------

def alphas_cumprod(scheduler_config: dict) -> np.ndarray:
    """ᾱ_t for t = 0..T-1 from a diffusers DDPM config (the scheduler computes the betas)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(scheduler_config).alphas_cumprod.double().numpy()  # (T,)


def schedule_curves(scheduler_config: dict) -> dict:
    """t, ᾱ_t and SNR(t) = ᾱ_t / (1 - ᾱ_t) of a schedule."""
    ab = alphas_cumprod(scheduler_config)
    return {"t": np.arange(len(ab)), "alpha_bar": ab, "snr": ab / (1 - ab)}


@dataclass
class Noised:
    x0: Image.Image
    noise: Image.Image
    x_t: Image.Image
    t: int
    alpha_bar: float
    snr: float
    strip: list[tuple[int, Image.Image]]  # the same image and noise at several t


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL -> (3, size, size) in [-1, 1]: the centre square, box-filtered to the model's size, with
    the normalisation the model was trained with (shared.images.to_tensor)."""
    square = centre_square(image.convert("RGB")).resize((size, size), Image.BOX)
    return to_tensor(np.array(square))[0]  # (3, size, size); a writable copy, as torch.from_numpy wants


def forward_noise(image: Image.Image, t, seed, scheduler_config: dict, size: int,
                  strip_ts: tuple[int, ...] = (0, 100, 250, 400, 550, 700, 850, 999)) -> Noised:
    """x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 - ᾱ_t)·ε at the chosen t, and at several t with the same ε."""
    if image is None:
        raise ValueError("no image given: upload an image or pick a sample")
    ab = alphas_cumprod(scheduler_config)
    t, seed = validate.integer(t, "t", 0, len(ab) - 1), check_seed(seed)
    x0 = image_to_tensor(image, size)  # (3, size, size)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))  # (3, size, size)

    def noised(tt: int) -> torch.Tensor:
        a = float(ab[tt])
        return math.sqrt(a) * x0 + math.sqrt(1 - a) * eps  # (3, size, size)

    a = float(ab[t])
    return Noised(picture(x0, "image"), picture(eps, "noise"), picture(noised(t), "image"), t, a, a / (1 - a),
                  [(tt, picture(noised(tt), "image")) for tt in strip_ts if tt < len(ab)])


# --------------------------------------------------------------------------------------
#                                   Inside the DiT
# --------------------------------------------------------------------------------------

def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(C, H, W) -> (N, p·p·C) tokens, row-major over the grid; each token lists its pixels
    channel by channel, the order of the patch embedding's Conv2d weight."""
    c, h, w = x.shape
    x = x.reshape(c, h // p, p, w // p, p)  # (C, H/p, p, W/p, p)
    x = x.permute(1, 3, 0, 2, 4)  # (H/p, W/p, C, p, p)
    return x.reshape((h // p) * (w // p), c * p * p)  # (N, C·p·p)


def patch_grid(image: Image.Image, p: int, model_size: int) -> Image.Image:
    """The model-size image upscaled, with the p x p patch grid drawn on it."""
    scale = DISPLAY_SIZE // model_size
    img = image.copy()
    draw = ImageDraw.Draw(img)
    for k in range(0, model_size + 1, p):
        v = min(k * scale, DISPLAY_SIZE - 1)
        draw.line([(v, 0), (v, DISPLAY_SIZE)], fill=(255, 255, 255), width=1)
        draw.line([(0, v), (DISPLAY_SIZE, v)], fill=(255, 255, 255), width=1)
    return img


@torch.no_grad()
def patch_embedding(transformer, x: torch.Tensor) -> dict:
    """The DiT's first layer, two ways: its Conv2d (kernel = stride = p) and, equivalently,
    a Linear on the patchified tokens with the same weights. Both plus the position table."""
    p = transformer.config.patch_size
    tokens = patchify(x, p)  # (N, C·p·p)
    conv = transformer.pos_embed.proj
    w = conv.weight.reshape(conv.out_channels, -1)  # (D, C·p·p)
    by_linear = tokens @ w.T + conv.bias  # (N, D)
    by_conv = conv(x[None].to(conv.weight.dtype)).flatten(2).transpose(1, 2)[0]  # (N, D)
    return {"tokens": tokens, "by_linear": by_linear, "by_conv": by_conv,
            "pos": transformer.pos_embed.pos_embed[0],  # (N, D) fixed 2-D sin-cos table
            "patch_size": p, "grid": x.shape[-1] // p}


@torch.no_grad()
def adaln_modulation(transformer, class_id: int, timesteps: list[int]) -> dict:
    """adaLN-Zero in every block: c = embed(t) + embed(class); (shift, scale, gate) x (attention, MLP)
    = Linear(SiLU(c)). Returns the mean |value| of each of the six, per block and timestep."""
    names = ("shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp")
    dev = transformer.device
    ts = torch.tensor(timesteps, device=dev)  # (K,)
    cls = torch.full((len(timesteps),), class_id, device=dev)  # (K,)
    out = np.zeros((len(transformer.transformer_blocks), len(timesteps), 6))
    for i, block in enumerate(transformer.transformer_blocks):
        norm = block.norm1
        c = norm.emb(ts, cls, hidden_dtype=transformer.dtype)  # (K, D)
        mod = norm.linear(norm.silu(c))  # (K, 6D)
        for j, part in enumerate(mod.chunk(6, dim=1)):  # each (K, D)
            out[i, :, j] = part.abs().mean(dim=1).float().cpu().numpy()
    return {"names": names, "timesteps": list(timesteps), "mean_abs": out}  # (blocks, K, 6)


def build_on_meta(config: dict):
    """A DiTTransformer2DModel with no memory behind its weights: enough to count and trace."""
    from diffusers import DiTTransformer2DModel

    with torch.device("meta"):
        return DiTTransformer2DModel(**config)


def count_macs(config: dict, batch: int = 1) -> dict:
    """Multiply-accumulates of one forward, by hooks on a meta-device model: every Linear and
    Conv2d, plus the two attention matmuls (QKᵀ and AV, 2·N²·D per sample). Also parameters,
    both as diffusers stores them and as the paper counts them (diffusers keeps a copy of the
    timestep and class embedders in every block; DiT shares one)."""
    from diffusers.models.attention_processor import Attention

    model = build_on_meta(config)
    macs = {"linear": 0, "conv": 0, "attention": 0}

    def on_linear(m, inputs, output):
        macs["linear"] += output.numel() * m.in_features

    def on_conv(m, inputs, output):
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        macs["conv"] += output.numel() * k

    def on_attention(m, inputs, kwargs, output):
        hidden = inputs[0] if inputs else kwargs["hidden_states"]  # (B, N, D)
        b, n = hidden.shape[0], hidden.shape[1]
        macs["attention"] += 2 * b * n * n * m.inner_dim

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(on_linear))
        elif isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(on_conv))
        elif isinstance(m, Attention):
            hooks.append(m.register_forward_hook(on_attention, with_kwargs=True))
    c, s = config["in_channels"], config["sample_size"]
    with torch.no_grad():
        model(torch.empty(batch, c, s, s, device="meta"), timestep=torch.zeros(batch, device="meta"),
              class_labels=torch.zeros(batch, dtype=torch.long, device="meta"))
    for h in hooks:
        h.remove()

    total = sum(p.numel() for p in model.parameters())
    emb = model.transformer_blocks[0].norm1.emb
    per_block_embedder = sum(p.numel() for p in emb.parameters())
    t_mlp = emb.timestep_embedder
    embedder_macs = batch * (t_mlp.linear_1.in_features * t_mlp.linear_1.out_features
                             + t_mlp.linear_2.in_features * t_mlp.linear_2.out_features)
    layers = len(model.transformer_blocks)
    tokens = (s // config["patch_size"]) ** 2
    return {
        "macs": sum(macs.values()), **{f"macs_{k}": v for k, v in macs.items()},
        # diffusers runs the timestep MLP in every block and once more for the final layer; DiT once
        "macs_shared_embedders": sum(macs.values()) - layers * embedder_macs,
        "params": total, "params_shared_embedders": total - (layers - 1) * per_block_embedder,
        "tokens": tokens, "width": model.inner_dim, "layers": layers,
        "patch_size": config["patch_size"], "input": f"{s}x{s}x{c}",
    }


def tiny_config() -> dict:
    """The tiny model's architecture, read from its config.json (no weights loaded)."""
    cfg = shipped_json("config.json")
    if not cfg:
        raise ValueError(f"{TINY_MODEL} has no config.json; train it with `python -m shared.training {TINY_MODEL}`")
    keys = ("num_attention_heads", "attention_head_dim", "in_channels", "out_channels", "num_layers",
            "sample_size", "patch_size", "num_embeds_ada_norm")
    return {k: cfg[k] for k in keys}


__all__ = [
    "DEFAULT_SCHEDULER", "MAX_GUIDANCE", "MAX_SEED", "MAX_STEPS", "MODELS", "SCHEDULER_NAMES", "TINY_MODEL", "XL_MODEL",
    "check_guidance", "check_scheduler", "check_seed", "check_steps",
    "Frame", "StepperState", "start", "step", "run_to_end", "sample", "guidance_row", "forward_noise",
    "schedule_curves", "patchify", "count_macs",
]
