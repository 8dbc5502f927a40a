"""Autoregressive image generation: images as discrete tokens, drawn one token at a time.

What the tutorial computes, each for real:

- **Tokenize** (VQ-VAE, van den Oord et al., 2017): the embedded ``vq-tiny-shapes`` encodes a 32x32 image
  into an 8x8 grid of vectors and replaces each by the index of its nearest codebook entry; its decoder
  draws the image back from those entries. Reconstruction error: MSE and PSNR = 10·log10(255² / MSE).
- **Codebook usage**: how often each code is chosen over test-split images, and which image patches map to
  a chosen code (each token stands for a 4x4-pixel patch).
- **Generate** (DALL-E's second stage, Ramesh et al., 2021): the embedded decoder-only transformer ``ar-tiny-shapes`` samples
  the 64 codes in raster order after a class token: p(code_i | class, code_<i). Temperature T divides the
  logits before the softmax; top-k keeps the k most likely codes (Fan et al., 2018). T = 0 is defined as
  greedy decoding (the most likely code at every step).
- **Token arithmetic** at real scale: tokens, bits and generation cost (sequential passes x tokens per pass)
  of DALL-E, DiT and the tiny models here.
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

from shared.images import centre_square, to_tensor

from .options import (  # re-exported: callers use compute.check_seed...
    AR_MODEL,
    CLASSES,
    MAX_PATCHES_SHOWN,
    USAGE_IMAGES,
    VQ_MODEL,
    bits_per_token,
    check_class,
    check_code,
    check_guidance,
    check_seed,
    check_temperature,
    check_top_k,
)

__all__ = ["AR_MODEL", "VQ_MODEL", "check_class", "check_code", "check_seed", "check_temperature", "check_top_k"]

DISPLAY = 256  # model-size images are shown upscaled with nearest neighbour (exact pixels)


# --------------------------------------------------------------------------------------
#                                   Models
# --------------------------------------------------------------------------------------

def load_models():
    """(vq, ar): the tokenizer and the token model, loaded once per process (shared.models.load)."""
    from shared.models import load

    return load(VQ_MODEL, device="cpu").model, load(AR_MODEL, device="cpu").model


def load_tokenizer():
    from shared.models import load

    return load(VQ_MODEL, device="cpu").model


# --------------------------------------------------------------------------------------
#                                   Pixels
# --------------------------------------------------------------------------------------

def prepare(image: Image.Image, size: int) -> np.ndarray:
    """The centred square crop of ``image``, box-filtered to ``size`` x ``size``: uint8 (size, size, 3)."""
    if not isinstance(image, Image.Image):
        raise ValueError("no image given: upload an image (PNG, JPEG, WebP...) or pick a sample.")
    square = centre_square(image.convert("RGB"))
    return np.asarray(square.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def mse_psnr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean squared error over all pixels and channels, and PSNR = 10·log10(255² / MSE) in dB (inf if equal)."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return mse, (math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in about [-1, 1] -> uint8 (B, H, W, 3), rounded as a saved PNG would be."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def upscale(pixels: np.ndarray, size: int = DISPLAY) -> Image.Image:
    """Nearest-neighbour upscaling, so every model pixel stays a visible square."""
    return Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST)


def code_colours(codebook: int) -> np.ndarray:
    """A fixed colour per code id: hues stepped by the golden ratio, so neighbouring ids differ. (K, 3) uint8."""
    out = np.zeros((codebook, 3), dtype=np.uint8)
    for i in range(codebook):
        r, g, b = colorsys.hsv_to_rgb((i * 0.61803398875) % 1.0, 0.55 + 0.35 * ((i * 7) % 3) / 2, 0.95 - 0.3 * (i % 2))
        out[i] = (round(r * 255), round(g * 255), round(b * 255))
    return out


def token_grid_picture(tokens: np.ndarray, codebook: int, cell: int = 40, highlight: int | None = None) -> Image.Image:
    """The code ids as a coloured grid with the id written in each cell (``highlight``: outline that code)."""
    g_h, g_w = tokens.shape
    colours = code_colours(codebook)
    img = Image.new("RGB", (g_w * cell, g_h * cell), "white")
    draw = ImageDraw.Draw(img)
    for r in range(g_h):
        for c in range(g_w):
            t = int(tokens[r, c])
            box = (c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1)
            fill = tuple(int(v) for v in colours[t])
            draw.rectangle(box, fill=fill, outline=(255, 255, 255))
            dark = sum(fill) < 380
            draw.text((box[0] + 3, box[1] + cell // 3), str(t), fill=(255, 255, 255) if dark else (0, 0, 0))
            if highlight is not None and t == highlight:
                draw.rectangle(box, outline=(0, 0, 0), width=3)
    return img


# --------------------------------------------------------------------------------------
#                                   Tokenize
# --------------------------------------------------------------------------------------

@dataclass
class Encoding:
    pixels: np.ndarray  # (S, S, 3) uint8: what the tokenizer saw
    tokens: np.ndarray  # (g, g) ints
    recon: np.ndarray  # (S, S, 3) uint8
    codebook_size: int
    mse: float
    psnr: float

    @property
    def codes_used(self) -> int:
        return int(len(np.unique(self.tokens)))

    @property
    def stats(self) -> dict:
        g_h, g_w = self.tokens.shape
        return {
            "grid": [g_h, g_w], "tokens": self.tokens.astype(int).tolist(), "codebook_size": self.codebook_size,
            "codes_used": self.codes_used, "image_size": int(self.pixels.shape[0]),
            "patch_pixels": int(self.pixels.shape[0] // g_h), "mse": round(self.mse, 3),
            "psnr_db": None if math.isinf(self.psnr) else round(self.psnr, 2),
            "bits": round(g_h * g_w * bits_per_token(self.codebook_size), 1),
            "raw_bits": int(self.pixels.size * 8),
        }


@torch.no_grad()
def encode_pixels(vq, pixels: np.ndarray) -> Encoding:
    tokens = vq.tokenize(to_tensor(pixels))  # (1, g, g)
    recon = to_uint8(vq.decode_tokens(tokens))[0]
    mse, psnr = mse_psnr(pixels, recon)
    return Encoding(pixels, tokens[0].numpy(), recon, vq.codebook_size, mse, psnr)


def encode(image: Image.Image, vq=None) -> Encoding:
    """An image -> its token grid and reconstruction through the VQ-VAE."""
    vq = vq if vq is not None else load_tokenizer()
    return encode_pixels(vq, prepare(image, vq.config["image_size"]))


@functools.lru_cache(maxsize=2)
def _test_tokens(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, S, S, 3), tokens (n, g, g)) of the first ``n`` test-split images (cached)."""
    from shared.data.shapes import ShapesDataset

    vq = load_tokenizer()
    images, _, _ = ShapesDataset("test", n, vq.config["image_size"], distribution="wide").arrays()
    with torch.no_grad():
        tokens = vq.tokenize(to_tensor(images)).numpy()
    return images, tokens


def usage_counts(tokens: np.ndarray, codebook: int) -> np.ndarray:
    """How many times each code id occurs in ``tokens``: (K,) ints."""
    return np.bincount(np.asarray(tokens).ravel(), minlength=codebook)


def test_usage(n: int = USAGE_IMAGES) -> np.ndarray:
    vq = load_tokenizer()
    return usage_counts(_test_tokens(n)[1], vq.codebook_size)


@dataclass
class CodePatches:
    code: int
    count: int  # positions holding this code in the n test images
    images: int  # distinct images it occurs in
    n: int
    mosaic: Image.Image | None  # up to MAX_PATCHES_SHOWN source patches, each upscaled
    decoded: np.ndarray  # (S, S, 3): the decoder's drawing of a grid made only of this code

    @property
    def stats(self) -> dict:
        return {"code": self.code, "occurrences": self.count, "images": self.images, "test_images": self.n,
                "patches_shown": min(self.count, MAX_PATCHES_SHOWN)}


def patches_of(images: np.ndarray, tokens: np.ndarray, code: int, limit: int) -> list[np.ndarray]:
    """The pixel patches (p x p x 3) that tokenized to ``code``, in (image, row, column) order."""
    n, g, _ = tokens.shape
    p = images.shape[1] // g
    out = []
    for i, r, c in zip(*np.nonzero(tokens == code), strict=True):
        out.append(images[i, r * p:(r + 1) * p, c * p:(c + 1) * p])
        if len(out) >= limit:
            break
    return out


@torch.no_grad()
def nearest_code_view(code: int, n: int = USAGE_IMAGES) -> CodePatches:
    """Which image patches map to ``code`` (the nearest-code view) over ``n`` test images."""
    vq = load_tokenizer()
    code = check_code(code)
    images, tokens = _test_tokens(n)
    hits = tokens == code
    patches = patches_of(images, tokens, code, MAX_PATCHES_SHOWN)
    mosaic = None
    if patches:
        cols = 8
        rows = math.ceil(len(patches) / cols)
        cell, gap = 40, 4
        mosaic = Image.new("RGB", (cols * (cell + gap), rows * (cell + gap)), "white")
        for j, patch in enumerate(patches):
            mosaic.paste(Image.fromarray(patch).resize((cell, cell), Image.Resampling.NEAREST),
                         ((j % cols) * (cell + gap), (j // cols) * (cell + gap)))
    g = vq.grid
    decoded = to_uint8(vq.decode_tokens(torch.full((1, g, g), code, dtype=torch.long)))[0]
    return CodePatches(code, int(hits.sum()), int(hits.any(axis=(1, 2)).sum()), n, mosaic, decoded)


# --------------------------------------------------------------------------------------
#                                   Generate
# --------------------------------------------------------------------------------------

@dataclass
class Step:
    position: int  # 0..63, raster order
    chosen: int
    top_ids: list[int]
    top_probs: list[float]  # the distribution the code was drawn from (top-k, renormalised); T=1 for greedy


@dataclass
class Sampled:
    class_label: str
    temperature: float
    top_k: int
    seed: int
    tokens: np.ndarray  # (g, g)
    image: np.ndarray  # (S, S, 3) uint8
    steps: list[Step] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # partial image after each step
    guidance: float = 1.0  # classifier-free guidance scale (1: the conditional model alone)

    @property
    def stats(self) -> dict:
        g_h, g_w = self.tokens.shape
        return {"class": self.class_label, "temperature": self.temperature,
                "decoding": "greedy" if self.temperature == 0 else "top-k sampling",
                "top_k": self.top_k, "guidance_scale": self.guidance, "seed": self.seed, "grid": [g_h, g_w],
                "tokens": self.tokens.astype(int).tolist(), "codes_used": int(len(np.unique(self.tokens)))}


def top_k_distribution(logits: torch.Tensor, temperature: float, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, probs) of the k largest logits, probs = softmax(logits_topk / T) (renormalised over the k).
    T = 0 (greedy) reports the T = 1 distribution; the pick is then its first id."""
    vals, ids = logits.topk(top_k)
    return ids, torch.softmax(vals / (temperature if temperature > 0 else 1.0), dim=-1)


@torch.no_grad()
def sample_tokens(ar, class_id: int, codebook: int, n_tokens: int, temperature: float, top_k: int,
                  seed: int, on_step: Callable[[int, int], None] | None = None,
                  guidance: float = 1.0) -> tuple[torch.Tensor, list[Step]]:
    """Raster-order sampling of ``n_tokens`` codes after the class token ``codebook + class_id``, with a KV cache.
    ``guidance`` != 1 runs the unconditional pass beside it (classifier-free guidance; see
    ``shared.evaluation_vq.next_code_logits``): the distribution shown is the guided one."""
    from shared.evaluation_vq import next_code_logits, start_tokens

    gen = torch.Generator().manual_seed(seed)
    cls = start_tokens(ar, torch.tensor([codebook + class_id]), guidance)  # (1,), or (2,) when guided
    inp = cls[:, None]
    cache = None
    chosen: list[int] = []
    steps: list[Step] = []
    for i in range(n_tokens):
        logits, cache = next_code_logits(ar, inp, cls, cache, guidance, codebook)
        ids, probs = top_k_distribution(logits[0], temperature, top_k)
        pick = 0 if temperature == 0 else int(torch.multinomial(probs, 1, generator=gen))
        code = int(ids[pick])
        chosen.append(code)
        steps.append(Step(i, code, ids.tolist(), [round(float(p), 5) for p in probs]))
        inp = torch.tensor([[code]] * len(cls))
        if on_step is not None:
            on_step(i + 1, n_tokens)
    return torch.tensor(chosen), steps


@torch.no_grad()
def partial_frames(vq, tokens: torch.Tensor, grid: int) -> list[np.ndarray]:
    """The image after each step: the codes drawn so far, the rest filled with the first code (usually
    background) and dimmed to half grey, so the decoder has a full grid to draw. (n, S, S, 3) uint8."""
    n = len(tokens)
    grids = tokens[None].repeat(n, 1)  # (n, n)
    for s in range(n):
        grids[s, s + 1:] = tokens[0]
    pixels = to_uint8(vq.decode_tokens(grids.view(n, grid, grid))).astype(np.float32)  # (n, S, S, 3)
    p = pixels.shape[1] // grid
    for s in range(n - 1):
        mask = np.zeros((grid * grid,), dtype=bool)
        mask[s + 1:] = True
        mask = np.kron(mask.reshape(grid, grid), np.ones((p, p), dtype=bool))
        pixels[s][mask] = 0.5 * pixels[s][mask] + 0.5 * 128
    return [f.round().astype(np.uint8) for f in pixels]


def sample(class_label, temperature, top_k, seed, on_step: Callable[[int, int], None] | None = None,
           frames: bool = True, guidance=None) -> Sampled:
    """One image of class ``class_label``, token by token; the same seed gives the same tokens.
    ``guidance`` None: the scale class accuracy was measured at (the model's config.json)."""
    from shared.evaluation_vq import default_guidance

    class_label = check_class(class_label)
    temperature = check_temperature(temperature)
    top_k = check_top_k(top_k)
    seed = check_seed(seed)
    vq, ar = load_models()
    guidance = default_guidance(ar) if guidance is None else check_guidance(guidance)
    g = vq.grid
    tokens, steps = sample_tokens(ar, CLASSES.index(class_label), vq.codebook_size, g * g, temperature, top_k,
                                  seed, on_step, guidance)
    with torch.no_grad():
        image = to_uint8(vq.decode_tokens(tokens.view(1, g, g)))[0]
    return Sampled(class_label, temperature, top_k, seed, tokens.view(g, g).numpy(), image, steps,
                   partial_frames(vq, tokens, g) if frames else [], guidance)


# --------------------------------------------------------------------------------------
#                                   Token arithmetic
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenBudget:
    """One generator's sequence: image tokens, their codebook, a prefix, and how it is generated."""

    name: str
    source: str
    image_px: int
    grid: int
    codebook: int | None  # None: continuous latents (diffusion)
    prefix: int  # condition tokens before the image (text or class)
    steps: int | None = None  # diffusion steps; None for autoregressive decoding
    guidance_copies: int = 1  # 2 when classifier-free guidance runs a conditional and an unconditional pass

    @property
    def image_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def sequential_passes(self) -> int:
        """Forward passes one after another: one per image token (AR), one per step (diffusion)."""
        return self.image_tokens if self.steps is None else self.steps

    @property
    def token_passes(self) -> int:
        """Tokens pushed through the network for one image: AR with a KV cache processes each token once
        (prefix + image); diffusion processes the whole sequence at every step (steps x tokens x copies)."""
        if self.steps is None:
            return (self.prefix + self.image_tokens) * self.guidance_copies
        return self.steps * self.image_tokens * self.guidance_copies

    def row(self) -> dict:
        bits = self.image_tokens * bits_per_token(self.codebook) if self.codebook else None
        raw = self.image_px * self.image_px * 3 * 8
        return {
            "model": self.name, "source": self.source, "image": f"{self.image_px}x{self.image_px}",
            "token grid": f"{self.grid}x{self.grid}", "image tokens": self.image_tokens,
            "codebook": self.codebook if self.codebook else "continuous",
            "bits per image": round(bits) if bits else None,
            "compression vs 8-bit RGB": f"{raw / bits:.0f}x" if bits else None,
            "prefix tokens": self.prefix, "sequence": self.prefix + self.image_tokens,
            "sequential passes": self.sequential_passes, "tokens processed": self.token_passes,
        }


def budgets(vq_config: dict, dit: dict | None = None, ar_guidance: float = 1.0) -> list[TokenBudget]:
    """Ours (from the shipped configs; guided sampling runs a conditional and an unconditional row), DALL-E and
    DiT-XL/2 (paper figures), and the tiny DiT of this hub."""
    size, g, k = vq_config["image_size"], vq_config["grid"], vq_config["codebook_size"]
    rows = [
        TokenBudget("ar-tiny-shapes + vq-tiny-shapes", "this hub (config.json)", size, g, k, 1,
                    guidance_copies=1 if ar_guidance == 1 else 2),
        # Ramesh et al., 2021: 256x256 images, dVAE to a 32x32 grid over 8192 codes, after up to 256 BPE text tokens.
        TokenBudget("DALL-E", "Ramesh et al., 2021", 256, 32, 8192, 256),
        # Peebles & Xie, 2023: 256 px -> 32x32x4 SD-VAE latent, patch 2 -> 16x16 tokens; 250 DDPM sampling steps
        # for their FID numbers; classifier-free guidance doubles the batch.
        TokenBudget("DiT-XL/2 (diffusion)", "Peebles & Xie, 2023", 256, 16, None, 0, steps=250, guidance_copies=2),
    ]
    if dit:  # {"image_px", "grid", "steps"} from dit-tiny-shapes' config.json and metrics.json
        rows.append(TokenBudget("dit-tiny-shapes (diffusion)", "this hub (config.json, metrics.json)", dit["image_px"],
                                dit["grid"], None, 0, steps=dit["steps"], guidance_copies=2))
    return rows
