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

import copy
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

from shared import validate
from shared.diffusion import StepResult, guided_step, initial_noise, make_scheduler, to_eps_x0
from shared.images import centre_square, to_tensor

from .options import (  # re-exported (see __all__): callers use compute.TINY_MODEL, compute.check_steps...
    CONDITIONING_BLOCKS,
    DEFAULT_SCHEDULER,
    DIT_PATCHES,
    DIT_SIZES,
    IMAGENET_CLASSES,
    LATENT_CHANNELS,
    LATENT_SIZE,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_STEPS,
    MODELS,
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


# --------------------------------------------------------------------------------------
#             The DiT family, conditioning, U-Net against DiT, flow matching (issue 23)
# --------------------------------------------------------------------------------------

def dit_config(size: str, patch: int) -> dict:
    """DiT-{size}/{patch} on 32x32x4 latents (256 px through the SD VAE), 1000 classes, predicting the
    noise and a variance (out_channels 8): Peebles & Xie (2023), Table 1, in diffusers' config keys."""
    size, patch = check_dit_size(size), check_dit_patch(patch)
    depth, width, heads = DIT_SIZES[size]
    return dict(num_attention_heads=heads, attention_head_dim=width // heads, in_channels=LATENT_CHANNELS,
                out_channels=2 * LATENT_CHANNELS, num_layers=depth, sample_size=LATENT_SIZE, patch_size=patch,
                num_embeds_ada_norm=IMAGENET_CLASSES)


def flop_count(model, *args, **kwargs) -> int:
    """FLOPs of one forward ``model(*args, **kwargs)`` as ``torch.utils.flop_counter.FlopCounterMode`` counts
    them: matrix products (2 per multiply-add), convolutions and attention; element-wise work is not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return int(counter.get_total_flops())


def _dit_inputs(config: dict, batch: int = 1) -> tuple[tuple, dict]:
    c, s = config["in_channels"], config["sample_size"]
    return ((torch.empty(batch, c, s, s, device="meta"),),
            {"timestep": torch.zeros(batch, device="meta"),
             "class_labels": torch.zeros(batch, dtype=torch.long, device="meta")})


@functools.cache
def dit_cost(size: str, patch: int) -> dict:
    """Parameters and MACs (FlopCounterMode FLOPs / 2, one forward at batch 1) of DiT-{size}/{patch} built
    on the meta device, and what diffusers' per-block embedders add. Cached: 12 configurations at most.

    diffusers' ``AdaLayerNormZero`` gives every block its own ``CombinedTimestepLabelEmbeddings`` (a timestep
    MLP 256 -> d -> d and a (classes + 1) x d class table); the paper's DiT has one, shared. So diffusers
    stores L copies where DiT stores 1, and runs the timestep MLP L + 1 times (each block, and block 0's
    again for the final layer) where DiT runs it once."""
    config = dit_config(size, patch)
    model = build_on_meta(config)
    args, kwargs = _dit_inputs(config)
    flops = flop_count(model, *args, **kwargs)
    params = sum(p.numel() for p in model.parameters())
    emb = model.transformer_blocks[0].norm1.emb
    t_mlp = sum(p.numel() for p in emb.timestep_embedder.parameters())
    table = sum(p.numel() for p in emb.class_embedder.parameters())
    layers, width = config["num_layers"], model.inner_dim
    t_mlp_macs = emb.timestep_embedder.linear_1.in_features * width + width * width  # batch 1
    return {
        "model": dit_name(size, patch), "size": size, "patch": config["patch_size"], "layers": layers,
        "width": width, "heads": config["num_attention_heads"], "tokens": (config["sample_size"] // patch) ** 2,
        "params": int(params), "flops": flops, "macs": flops // 2,
        "embedder_params": t_mlp + table, "timestep_mlp_params": t_mlp, "class_table_params": table,
        "embedder_copies": layers, "params_shared_embedders": int(params - (layers - 1) * (t_mlp + table)),
        "macs_shared_embedders": flops // 2 - layers * t_mlp_macs, "timestep_mlp_macs": t_mlp_macs,
    }


def scaling_table() -> dict:
    """The 12 DiTs (S, B, L, XL x patch 2, 4, 8) counted on meta-device models, beside the paper's Table 4.
    ``rows`` is the endpoint's contract: ``{model, patch, params, gmacs}``; ``details`` adds the rest."""
    rows, details = [], []
    for size in DIT_SIZES:
        for patch in DIT_PATCHES:
            c = dit_cost(size, patch)
            rows.append({"model": c["model"], "patch": patch, "params": c["params"], "gmacs": c["macs"] / 1e9})
            gflops, paper_params, fid = PAPER_TABLE4[c["model"]]
            details.append({**c, "gmacs": c["macs"] / 1e9, "gmacs_shared_embedders": c["macs_shared_embedders"] / 1e9,
                            "paper_gflops": gflops, "paper_params_m": paper_params, "paper_fid50k": fid})
    xl = dit_cost("XL", 2)
    extra = (xl["embedder_copies"] - 1) * xl["embedder_params"]
    gap = {"model": xl["model"], "params_diffusers": xl["params"], "embedder_params_per_block": xl["embedder_params"],
           "timestep_mlp_params": xl["timestep_mlp_params"], "class_table_params": xl["class_table_params"],
           "copies": xl["embedder_copies"], "extra_copies": xl["embedder_copies"] - 1, "extra_params": extra,
           "params_one_embedder": xl["params_shared_embedders"], "paper_params_m": PAPER_TABLE4[xl["model"]][1]}
    return {"rows": rows, "details": details, "embedder_gap": gap,
            "input": f"{LATENT_SIZE}x{LATENT_SIZE}x{LATENT_CHANNELS}", "classes": IMAGENET_CLASSES, "batch": 1,
            "counting": "torch.utils.flop_counter.FlopCounterMode on the meta device; GMACs = FLOPs / 2 / 1e9"}


def conditioning_block(kind: str, width: int, heads: int):
    """One diffusers ``BasicTransformerBlock`` for a conditioning mechanism (Peebles & Xie, 2023, Sec. 3.2),
    on the meta device, built as ``DiTTransformer2DModel`` builds its blocks (bias, GELU-tanh MLP of 4d):

    - ``adaLN-Zero``: ``norm_type="ada_norm_zero"``; the block regresses shift, scale and gate from t + class
      (and, in diffusers, holds its own timestep and class embedder);
    - ``cross-attention``: a plain pre-LN block plus a cross-attention layer to the 2 tokens (t, class);
    - ``in-context``: a plain pre-LN block; t and class ride along as 2 extra tokens of the sequence."""
    from diffusers.models.attention import BasicTransformerBlock

    kind = validate.choice(kind, "conditioning", CONDITIONING_BLOCKS)
    common = dict(dim=width, num_attention_heads=heads, attention_head_dim=width // heads, dropout=0.0,
                  activation_fn="gelu-approximate", attention_bias=True)
    with torch.device("meta"):
        if kind == "adaLN-Zero":
            return BasicTransformerBlock(**common, num_embeds_ada_norm=IMAGENET_CLASSES, norm_type="ada_norm_zero",
                                         norm_elementwise_affine=False)
        if kind == "cross-attention":
            return BasicTransformerBlock(**common, cross_attention_dim=width, norm_type="layer_norm")
        return BasicTransformerBlock(**common, norm_type="layer_norm")


def conditioning_cost(kind: str, width: int, heads: int, tokens: int, cond_tokens: int = 2) -> dict:
    """Parameters and MACs (FlopCounterMode / 2) of one conditioning block on ``tokens`` image tokens, batch 1."""
    block = conditioning_block(kind, width, heads)
    x = torch.empty(1, tokens, width, device="meta")
    cond = torch.empty(1, cond_tokens, width, device="meta")  # the embeddings of t and the class
    if kind == "adaLN-Zero":
        kw = {"timestep": torch.zeros(1, device="meta"), "class_labels": torch.zeros(1, dtype=torch.long, device="meta")}
        flops, seq = flop_count(block, x, **kw), tokens
    elif kind == "cross-attention":
        flops, seq = flop_count(block, x, encoder_hidden_states=cond), tokens
    else:
        flops, seq = flop_count(block, torch.cat([x, cond], dim=1)), tokens + cond_tokens
    params = sum(p.numel() for p in block.parameters())
    embedder = sum(p.numel() for p in block.norm1.emb.parameters()) if kind == "adaLN-Zero" else 0
    t_mlp_macs = (256 * width + width * width) if kind == "adaLN-Zero" else 0  # the block's own timestep MLP
    return {"block": kind, "params": int(params), "embedder_params": int(embedder), "macs": flops // 2,
            "embedder_macs": t_mlp_macs, "sequence": seq}


def conditioning_table(size: str = "XL", patch: int = 2) -> dict:
    """The three mechanisms at DiT-{size}/{patch}'s width and token count: one block counted, and the whole
    model estimated as the counted adaLN-Zero DiT (one shared embedder) with every block swapped:
    model - L x (adaLN-Zero block without its embedder) + L x (this block). The paper's XL/2 figures beside."""
    dit = dit_cost(check_dit_size(size), check_dit_patch(patch))
    width, heads, tokens, layers = dit["width"], dit["heads"], dit["tokens"], dit["layers"]
    base = conditioning_cost("adaLN-Zero", width, heads, tokens)
    base_params, base_macs = base["params"] - base["embedder_params"], base["macs"] - base["embedder_macs"]
    rows = []
    for kind in CONDITIONING_BLOCKS:
        c = conditioning_cost(kind, width, heads, tokens)
        own_params, own_macs = c["params"] - c["embedder_params"], c["macs"] - c["embedder_macs"]
        model_params = dit["params_shared_embedders"] + layers * (own_params - base_params)
        model_macs = dit["macs_shared_embedders"] + layers * (own_macs - base_macs)
        paper = PAPER_CONDITIONING[kind] if dit["model"] == "DiT-XL/2" else None
        rows.append({**c, "model_params": int(model_params), "model_gmacs": model_macs / 1e9,
                     "overhead": model_macs / dit["macs_shared_embedders"] - 1,
                     "paper_gflops": paper[0] if paper else None, "paper_params_m": paper[1] if paper else None,
                     "paper_fid50k": paper[2] if paper else None})
    return {"model": dit["model"], "width": width, "heads": heads, "tokens": tokens, "layers": layers, "rows": rows}


def unet_config(base: int) -> dict:
    """A class-conditional diffusers ``UNet2DModel`` on the DiT's 32x32x4 latents: 4 levels of base x (1, 2, 3, 4)
    channels (32, 16, 8, 4 px), 2 ResNet blocks per level, self-attention (64-channel heads) at 16, 8 and 4 px,
    8 output channels like DiT (noise and variance). A latent-diffusion-style U-Net (Rombach et al., 2022)."""
    base = validate.integer(base, "U-Net base channels", 32, 1024)
    if base % 32:
        raise ValueError(f"U-Net base channels must be a multiple of 32 (GroupNorm's 32 groups), got {base}")
    return dict(sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=2 * LATENT_CHANNELS,
                layers_per_block=2, block_out_channels=(base, 2 * base, 3 * base, 4 * base),
                down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                attention_head_dim=64, num_class_embeds=IMAGENET_CLASSES)


def build_unet_on_meta(config: dict):
    from diffusers import UNet2DModel

    with torch.device("meta"):
        return UNet2DModel(**config)


def unet_params(base: int) -> int:
    return int(sum(p.numel() for p in build_unet_on_meta(unet_config(base)).parameters()))


def unet_base_for(target_params: int) -> int:
    """The base width (a multiple of 32) whose U-Net has the parameter count nearest ``target_params``.
    Every layer's parameters are c_in·c_out, c or constant, so params(b) = A·b² + B·b + C exactly: three
    small models fix A, B, C and the nearest multiple of 32 is read off the quadratic."""
    xs = np.array([32.0, 64.0, 96.0])
    coef = np.polyfit(xs, [unet_params(int(b)) for b in xs], 2)  # exact through 3 points
    candidates = np.arange(32, 1024 + 1, 32)
    return int(candidates[np.argmin(np.abs(np.polyval(coef, candidates) - target_params))])


def unet_vs_dit(size: str = "XL") -> dict:
    """DiT-{size}/2 and a U-Net of about its size (the paper's parameter count, one shared embedder) on the
    same 32x32x4 input, batch 1: parameters and MACs (FlopCounterMode / 2) of both. Cached per size."""
    return copy.deepcopy(_unet_vs_dit(check_dit_size(size)))


@functools.cache
def _unet_vs_dit(size: str) -> dict:
    dit = dit_cost(size, 2)
    base = unet_base_for(dit["params_shared_embedders"])
    config = unet_config(base)
    unet = build_unet_on_meta(config)
    x = torch.empty(1, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE, device="meta")
    flops = flop_count(unet, x, torch.zeros(1, device="meta"),
                       class_labels=torch.zeros(1, dtype=torch.long, device="meta"))
    unet_row = {"model": f"U-Net, base {base}", "params": int(sum(p.numel() for p in unet.parameters())),
                "macs": flops // 2, "base": base, "channels": list(config["block_out_channels"]),
                "resolutions": [LATENT_SIZE >> i for i in range(len(config["block_out_channels"]))]}
    dit_row = {"model": dit["model"], "params": dit["params"], "params_shared_embedders": dit["params_shared_embedders"],
               "macs": dit["macs"], "tokens": dit["tokens"], "width": dit["width"], "layers": dit["layers"]}
    return {"input": f"{LATENT_SIZE}x{LATENT_SIZE}x{LATENT_CHANNELS}", "dit": dit_row, "unet": unet_row}


@dataclass
class PathComparison:
    """A real x₀ and one ε, moved along the two probability paths, with the schedulers' own times."""

    x0: torch.Tensor  # (3, H, W) in [-1, 1]
    noise: torch.Tensor  # (3, H, W)
    ddim_timesteps: list[int]  # DDIMScheduler.timesteps (the tiny model's DDPM config)
    ddim_alpha_bar: list[float]  # ᾱ at each of them
    vp_state_timesteps: list[int]  # the DDIM timesteps, then -1 for x₀ itself
    vp_state_alpha_bar: list[float]  # ᾱ there (1 for x₀)
    vp_states: list[torch.Tensor]  # √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at each of them
    flow_sigmas: list[float]  # FlowMatchEulerDiscreteScheduler.sigmas (ends at 0)
    flow_timesteps: list[float]
    rf_states: list[torch.Tensor]  # x at each flow step, driven by its .step with the exact velocity ε − x₀
    curves: dict  # dense τ in [0, 1]: a(τ), b(τ) of x_τ = a·x₀ + b·ε on both paths
    length_ratio_vp: float  # path length / ‖ε − x₀‖ (1 for a straight line)
    length_ratio_rf: float
    pixels: tuple[tuple[int, int, int], tuple[int, int, int]]  # two (channel, row, col) for the 2-D view


def path_comparison(x0: torch.Tensor, steps, seed, scheduler_config: dict) -> PathComparison:
    """The DDPM / VP path x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (Ho et al., 2020; here the tiny model's schedule) against
    the rectified-flow path x_σ = (1−σ)·x₀ + σ·ε (Liu et al., 2023; Lipman et al., 2023), whose velocity
    dx/dσ = ε − x₀ is constant, so one Euler step is exact. The VP states sit at ``DDIMScheduler``'s timesteps
    (the tiny model's DDPM config); the flow states are made by ``FlowMatchEulerDiscreteScheduler.step`` fed the
    exact velocity, at its own sigmas."""
    from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler

    steps, seed = check_path_steps(steps), check_seed(seed)
    x0 = x0.double()
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).double()  # (3, H, W)
    T = int(scheduler_config.get("num_train_timesteps", 1000))

    ddim = DDIMScheduler.from_config(dict(scheduler_config))
    ddim.set_timesteps(steps)
    ab = ddim.alphas_cumprod.double()  # (T,)
    # the VP path at the DDIM sampler's timesteps, then x₀ itself (t = -1 stands for ᾱ = 1)
    where = [int(t) for t in ddim.timesteps] + [-1]
    vp = [x0 if t < 0 else ab[t].sqrt() * x0 + (1 - ab[t]).sqrt() * eps for t in where]

    flow = FlowMatchEulerDiscreteScheduler(num_train_timesteps=T, shift=1.0)
    flow.set_timesteps(steps)
    sigmas = [float(s) for s in flow.sigmas]
    x = sigmas[0] * eps + (1 - sigmas[0]) * x0
    rf = [x]
    for t in flow.timesteps:
        x = flow.step(eps - x0, t, x).prev_sample  # x + (σ_next − σ)·(ε − x₀)
        rf.append(x)

    # dense curves in normalised time τ: VP τ = t / (T − 1) over every training step, RF τ = σ
    tau_vp = np.arange(T) / (T - 1)
    a_vp, b_vp = np.sqrt(ab.numpy()), np.sqrt(1 - ab.numpy())
    tau_rf = np.linspace(0, 1, T)
    a_rf, b_rf = 1 - tau_rf, tau_rf
    gap = float((eps - x0).norm())

    def length(a: np.ndarray, b: np.ndarray) -> float:
        """Length of the polyline a_k·x₀ + b_k·ε (k = 0..T-1) in pixel space."""
        steps_ = np.diff(a)[:, None] * x0.flatten().numpy() + np.diff(b)[:, None] * eps.flatten().numpy()
        return float(np.linalg.norm(steps_, axis=1).sum())

    # two pixels for the 2-D view: the brightest and the darkest value of x₀'s first channel
    flat = x0[0].flatten()
    w = x0.shape[-1]
    hi, lo = int(flat.argmax()), int(flat.argmin())
    return PathComparison(
        x0=x0.float(), noise=eps.float(), ddim_timesteps=[int(t) for t in ddim.timesteps],
        ddim_alpha_bar=[float(ab[int(t)]) for t in ddim.timesteps], vp_state_timesteps=where,
        vp_state_alpha_bar=[float(ab[t]) if t >= 0 else 1.0 for t in where],
        vp_states=[s.float() for s in vp],
        flow_sigmas=sigmas, flow_timesteps=[float(t) for t in flow.timesteps], rf_states=[s.float() for s in rf],
        curves={"tau_vp": tau_vp, "a_vp": a_vp, "b_vp": b_vp, "tau_rf": tau_rf, "a_rf": a_rf, "b_rf": b_rf},
        length_ratio_vp=length(a_vp, b_vp) / gap, length_ratio_rf=length(a_rf, b_rf) / gap,
        pixels=((0, hi // w, hi % w), (0, lo // w, lo % w)),
    )


def vp_alpha_bar_for_sigma(sigma: float, alphas_cumprod: np.ndarray) -> tuple[float, float]:
    """(ᾱ, t) of the DDPM point on the flow point's ray. x_rf = x_vp / (a + b) with a = √ᾱ, b = √(1−ᾱ) puts
    x_vp = a·x₀ + b·ε at σ = b / (a + b), so b / a = σ / (1 − σ) and ᾱ = 1 / (1 + (σ / (1 − σ))²). Clamped to
    the training range [ᾱ_{T−1}, ᾱ_0]; t is the (fractional) timestep where the ᾱ table takes that value."""
    ab = np.asarray(alphas_cumprod, dtype=np.float64)  # (T,), decreasing
    target = 1.0 if sigma <= 0 else 0.0 if sigma >= 1 else 1 / (1 + (sigma / (1 - sigma)) ** 2)
    target = float(np.clip(target, ab[-1], ab[0]))
    t = float(np.interp(target, ab[::-1], np.arange(len(ab))[::-1]))
    return target, t


@dataclass
class FlowSample:
    """A rectified-flow Euler run on the DDPM-trained tiny model, and the same noise through DDIM."""

    states: list[torch.Tensor]  # (C, H, W) x_σ after each flow step, starting from ε
    sigmas: list[float]  # FlowMatchEulerDiscreteScheduler.sigmas
    vp_timesteps: list[float]  # the DDPM timestep the model was asked at, per step
    final: torch.Tensor  # (C, H, W)
    noise: torch.Tensor  # (C, H, W) the shared ε


@torch.no_grad()
def flow_sample(class_label: str, steps, guidance, seed, model: str = TINY_MODEL) -> FlowSample:
    """Sample the DDPM-trained model with diffusers' ``FlowMatchEulerDiscreteScheduler`` (rectified flow,
    Liu et al., 2023): at each σ the flow point x_σ is mapped to the DDPM point x_vp = (a + b)·x_σ on the same
    ray (``vp_alpha_bar_for_sigma``), the model's guided x̂₀ there (classifier-free guidance, clipped to [-1, 1]
    as its scheduler config asks) gives ε̂ = (x_vp − a·x̂₀)/b, and the velocity v = ε̂ − x̂₀ drives the Euler
    step x ← x + (σ_next − σ)·v. The noise ε is drawn as the DDPM samplers draw x_T for the same seed."""
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

    steps, guidance, seed = check_flow_steps(steps), check_guidance(guidance), check_seed(seed)
    transformer, parts = load_model(model)
    if parts.vae is not None:
        raise ValueError("the flow sampler runs on the pixel-space tiny model only")
    cls = class_index(class_label, parts.class_names)
    config = parts.scheduler_config
    ab_table = DDPMScheduler.from_config(config).alphas_cumprod.double().numpy()  # (T,)
    flow = FlowMatchEulerDiscreteScheduler(num_train_timesteps=len(ab_table), shift=1.0)
    flow.set_timesteps(steps)
    c, size = transformer.config.in_channels, transformer.config.sample_size
    eps = torch.randn((1, c, size, size), generator=torch.Generator().manual_seed(seed))  # (1, C, H, W)
    dev, null = transformer.device, transformer.config.num_embeds_ada_norm
    labels = torch.tensor([cls, null], device=dev)  # (2,)
    x, states, ts = eps.clone(), [eps[0].clone()], []
    for i, t_flow in enumerate(flow.timesteps):
        sigma = float(flow.sigmas[i])
        ab, t_vp = vp_alpha_bar_for_sigma(sigma, ab_table)
        a, b = ab ** 0.5, (1 - ab) ** 0.5
        x_vp = (a + b) * x  # (1, C, H, W), the DDPM scale the model was trained on
        out = transformer(torch.cat([x_vp, x_vp]).to(dev, transformer.dtype), timestep=torch.full((2,), t_vp, device=dev),
                          class_labels=labels).sample[:, :c].float().cpu()  # (2, C, H, W)
        guided = out[1:] + guidance * (out[:1] - out[1:])  # (1, C, H, W)
        _, x0 = to_eps_x0(guided, x_vp, ab, config.get("prediction_type", "epsilon"))
        if config.get("clip_sample"):
            x0 = x0.clamp(-config.get("clip_sample_range", 1.0), config.get("clip_sample_range", 1.0))
        eps_hat = (x_vp - a * x0) / b
        x = flow.step(eps_hat - x0, t_flow, x).prev_sample  # x + (σ_next − σ)·v
        states.append(x[0].clone())
        ts.append(t_vp)
    return FlowSample(states=states, sigmas=[float(s) for s in flow.sigmas], vp_timesteps=ts, final=x[0],
                      noise=eps[0])


__all__ = [
    "DEFAULT_SCHEDULER", "MAX_GUIDANCE", "MAX_SEED", "MAX_STEPS", "MODELS", "SCHEDULER_NAMES", "TINY_MODEL", "XL_MODEL",
    "check_guidance", "check_scheduler", "check_seed", "check_steps",
    "Frame", "StepperState", "start", "step", "run_to_end", "sample", "guidance_row", "forward_noise",
    "schedule_curves", "patchify", "count_macs",
    "dit_config", "dit_cost", "scaling_table", "conditioning_cost", "conditioning_table", "unet_config",
    "unet_vs_dit", "path_comparison", "PathComparison", "flow_sample", "FlowSample", "vp_alpha_bar_for_sigma",
]
