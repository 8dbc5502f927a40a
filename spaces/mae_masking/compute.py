"""The maths of the MAE page: masking, reconstruction, mask patterns, the mask-ratio sweep and contrastive views.

- Masked autoencoder (He et al., 2022): ViTMAE keeps ``int(L * (1 - ratio))`` of the L patches, those with
  the smallest ``noise``; the loss is the mean over masked patches of the per-pixel squared error.
  Every mask here goes through the model's own ``noise`` argument, so what is shown is what the model did.
- Block-wise masking: BEiT's Algorithm 1 (Bao et al., 2022); grid masking: MAE's grid-wise sampling
  (He et al., 2022, Figure 6).
- NT-Xent (Chen et al., 2020, eq. 1): l(i, j) = -log exp(s_ij / τ) / Σ_{k≠i} exp(s_ik / τ), s = cosine
  similarity, averaged over both views of every image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from shared import validate
from shared.training.mae_tiny_shapes import (
    features,
    init_positions,
    linear_probe,
    mask_ratio,
    masked_mse,
    mean_colour_fill,
    patchify,
)

from .options import (
    MAX_BATCH,
    MAX_RATIO,
    MAX_SEED,
    MAX_SWEEP_IMAGES,
    MAX_TAU,
    MIN_BATCH,
    MIN_RATIO,
    MIN_SWEEP_IMAGES,
    MIN_TAU,
    MODEL,
    PATTERNS,
)

# --------------------------------------------------------------------------------------
#                                   Inputs
# --------------------------------------------------------------------------------------


def check_ratio(value) -> float:
    return validate.number(value, "mask ratio", MIN_RATIO, MAX_RATIO)


def check_seed(value) -> int:
    return validate.integer(value, "seed", 0, MAX_SEED)


def check_image(image) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise ValueError("no image given: upload an image (PNG, JPEG, WebP...) or pick a sample.")
    return image.convert("RGB")


def kept(num_patches: int, ratio: float) -> int:
    """How many patches ViTMAE keeps visible: int(L * (1 - ratio)) (``ViTMAEEmbeddings.random_masking``)."""
    return int(num_patches * (1 - ratio))


def load(name: str = MODEL):
    from shared.models import load as load_model

    return load_model(name, device="cpu")


def grid_of(model) -> tuple[int, int, int]:
    """(image size, patch size, patches per side) from the model's config."""
    c = model.config
    size = c.image_size if isinstance(c.image_size, int) else c.image_size[0]
    p = c.patch_size if isinstance(c.patch_size, int) else c.patch_size[0]
    return size, p, size // p


def pixels(image: Image.Image, size: int, mean, std) -> torch.Tensor:
    """Centre square, resized to ``size`` (bicubic), normalised with the processor's mean and std: (1, 3, S, S)."""
    from shared.images import centre_square

    arr = np.asarray(centre_square(check_image(image)).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


def _norm(processor) -> tuple[list[float], list[float]]:
    return list(processor.image_mean), list(processor.image_std)


def to_image(x: torch.Tensor, mean, std) -> Image.Image:
    """(3, S, S) normalised -> PIL RGB."""
    arr = x.permute(1, 2, 0).numpy() * np.asarray(std) + np.asarray(mean)
    return Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))


def unpatchify(patches: torch.Tensor, p: int, g: int) -> torch.Tensor:
    """(L, p*p*3) -> (3, g*p, g*p), the inverse of ``patchify`` (ViTMAE's layout)."""
    return patches.reshape(g, g, p, p, 3).permute(4, 0, 2, 1, 3).reshape(3, g * p, g * p)


# --------------------------------------------------------------------------------------
#                                   Mask patterns (as noise)
# --------------------------------------------------------------------------------------

def random_noise(num_patches: int, seed: int) -> torch.Tensor:
    """(L,) uniform noise from ``seed``: MAE's random masking (He et al., 2022)."""
    return torch.rand(num_patches, generator=torch.Generator().manual_seed(seed))


def blockwise_mask(g: int, num_masked: int, seed: int, min_block: int = 4) -> np.ndarray:
    """BEiT's block-wise masking (Bao et al., 2022, Algorithm 1), scaled to a g x g grid: add rectangles of
    area s ~ U(min_block, max(min_block, num_masked - |M|)) and aspect r ~ U(0.3, 1/0.3) at random places
    until at least ``num_masked`` patches are covered. (g, g) bool."""
    rng = np.random.default_rng(seed)
    m = np.zeros((g, g), bool)
    for _ in range(1000):
        if m.sum() >= num_masked:
            break
        s = rng.uniform(min_block, max(min_block, num_masked - m.sum()) + 1e-9)
        r = math.exp(rng.uniform(math.log(0.3), math.log(1 / 0.3)))
        a = min(g, max(1, round(math.sqrt(s * r))))
        b = min(g, max(1, round(math.sqrt(s / r))))
        t, left = rng.integers(0, g - a + 1), rng.integers(0, g - b + 1)
        m[t:t + a, left:left + b] = True
    return m


def grid_mask(g: int, num_masked: int) -> np.ndarray:
    """MAE's grid-wise sampling (He et al., 2022, Figure 6): keep one patch per s x s cell, s = round(1/√(1-ratio)).
    (g, g) bool, True where masked before the exact count is enforced by ``pattern_noise``."""
    keep = g * g - num_masked
    s = max(1, round(math.sqrt(g * g / max(keep, 1))))
    lattice = np.zeros((g, g), bool)
    lattice[::s, ::s] = True
    return ~lattice


def pattern_noise(pattern: str, g: int, ratio: float, seed: int) -> torch.Tensor:
    """(L,) noise that makes ViTMAE mask ``pattern``: masked-by-pattern patches get noise in [1, 2), the others
    [0, 1), so argsort keeps the pattern's visible patches first. ViTMAE still masks exactly
    L - int(L (1 - ratio)) patches; where the pattern covers more or fewer, the random part decides."""
    pattern = validate.choice(pattern, "mask pattern", PATTERNS)
    L = g * g
    u = random_noise(L, seed)
    if pattern == "random":
        return u
    num_masked = L - kept(L, ratio)
    m = blockwise_mask(g, num_masked, seed) if pattern.startswith("block") else grid_mask(g, num_masked)
    return u + torch.from_numpy(m.reshape(-1).astype(np.float32))


# --------------------------------------------------------------------------------------
#                                   Reconstruction
# --------------------------------------------------------------------------------------

@dataclass
class Reconstruction:
    masked_image: Image.Image  # visible patches, masked ones grey
    pasted_image: Image.Image  # visible patches + the model's reconstruction of the masked ones
    prediction_image: Image.Image  # the decoder's output everywhere
    mask: np.ndarray  # (g, g) 1 = masked
    patch_loss: np.ndarray  # (g, g) per-pixel MSE of each patch (NaN where visible)
    baseline_patch_loss: np.ndarray  # (g, g) the same for the mean-colour fill
    loss: float
    baseline_loss: float
    ratio: float
    model: str
    extra: dict = field(default_factory=dict)

    @property
    def stats(self) -> dict:
        g = self.mask.shape[0]
        return {"num_patches": int(g * g), "num_masked": int(self.mask.sum()),
                "mask": self.mask.astype(int).tolist(), "loss": round(self.loss, 6),
                "baseline_loss": round(self.baseline_loss, 6), "mask_ratio": self.ratio,
                "kept": int(g * g - self.mask.sum()), "model": self.model, **self.extra}


@torch.no_grad()
def reconstruct(image: Image.Image, ratio: float, seed: int, pattern: str = "random", name: str = MODEL,
                loaded=None) -> Reconstruction:
    """Mask ``image`` the way ViTMAE does (noise from ``seed``, or a ``pattern``), reconstruct, measure.
    Losses are per-pixel MSE on masked patches in the model's normalised pixel space (He et al., 2022)."""
    image = check_image(image)
    ratio, seed = check_ratio(ratio), check_seed(seed)
    model, processor = loaded or load(name)
    size, p, g = grid_of(model)
    mean, std = _norm(processor)
    x = pixels(image, size, mean, std)
    noise = pattern_noise(pattern, g, ratio, seed)[None]
    with mask_ratio(model, ratio):
        out = model(pixel_values=x, noise=noise)
    target = patchify(x, p)  # (1, L, p*p*3)
    pred, mask = out.logits, out.mask  # (1, L, p*p*3), (1, L)
    if model.config.norm_pix_loss:  # the Hub model predicts per-patch normalised pixels: undo with the target's stats
        mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        pred = pred * (var + 1e-6) ** 0.5 + mu
    base = mean_colour_fill(target, mask)
    per = ((pred - target) ** 2).mean(-1)[0]  # (L,)
    per_base = ((base - target) ** 2).mean(-1)[0]
    m = mask[0].bool()
    grey = torch.zeros_like(target[0])  # normalised 0 = the processor's mean colour
    visible = torch.where(m[:, None], grey, target[0])
    pasted = torch.where(m[:, None], pred[0], target[0])
    nan = torch.full_like(per, float("nan"))
    return Reconstruction(
        masked_image=to_image(unpatchify(visible, p, g), mean, std),
        pasted_image=to_image(unpatchify(pasted, p, g), mean, std),
        prediction_image=to_image(unpatchify(pred[0], p, g), mean, std),
        mask=m.reshape(g, g).numpy().astype(np.uint8),
        patch_loss=torch.where(m, per, nan).reshape(g, g).numpy(),
        baseline_patch_loss=torch.where(m, per_base, nan).reshape(g, g).numpy(),
        loss=float(masked_mse(pred, target, mask)[0]), baseline_loss=float(masked_mse(base, target, mask)[0]),
        ratio=ratio, model=name, extra={"pattern": pattern, "seed": seed},
    )


def compare_patterns(image: Image.Image, ratio: float, seed: int, name: str = MODEL) -> list[Reconstruction]:
    """The same image at the same ratio under each of ``PATTERNS``, each measured."""
    loaded = load(name)
    return [reconstruct(image, ratio, seed, pattern, name, loaded) for pattern in PATTERNS]


# --------------------------------------------------------------------------------------
#                                   Why 75%: the sweep on a subset
# --------------------------------------------------------------------------------------

def sweep(ratios, n_images: int, seed: int = 0, name: str = MODEL, on_step=None) -> list[dict]:
    """For each eval ratio: masked MSE, mean-colour baseline MSE (``n_images`` test-split images) and the linear
    probe's accuracy on mean-pooled *visible* tokens (fit on ``n_images`` train-split images). The model was
    trained at one ratio: this sweeps the ratio at evaluation, not training (MAE's Figure 5 trains one model per ratio)."""
    from shared.data.shapes import ShapesDataset
    from shared.images import to_tensor

    n = validate.integer(n_images, "sweep images", MIN_SWEEP_IMAGES, MAX_SWEEP_IMAGES)
    ratios = [check_ratio(r) for r in ratios]
    if not ratios:
        raise ValueError(f"choose at least one mask ratio from {MIN_RATIO} to {MAX_RATIO}")
    model, processor = load(name)
    size, p, g = grid_of(model)
    test, y_test, _ = ShapesDataset("test", n, size).arrays()
    train, y_train, _ = ShapesDataset("train", n, size).arrays()
    x_test, x_train = to_tensor(test), to_tensor(train)
    y_test, y_train = torch.from_numpy(y_test).long(), torch.from_numpy(y_train).long()
    rows = []
    for i, r in enumerate(ratios):
        noise = torch.rand(n, g * g, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad(), mask_ratio(model, r):
            out = model(pixel_values=x_test, noise=noise)
        target = patchify(x_test, p)
        mse = float(masked_mse(out.logits, target, out.mask).mean())
        base = float(masked_mse(mean_colour_fill(target, out.mask), target, out.mask).mean())
        with torch.no_grad():
            acc = linear_probe(features(model.vit, x_train, r, seed + 1), y_train,
                               features(model.vit, x_test, r, seed + 2), y_test)
        rows.append({"mask ratio": r, "kept patches": kept(g * g, r), "masked MSE": round(mse, 4),
                     "mean-colour MSE": round(base, 4), "MSE / baseline": round(mse / base, 3),
                     "probe accuracy (visible tokens)": round(acc, 4)})
        if on_step:
            on_step(i + 1, len(ratios))
    return rows


# --------------------------------------------------------------------------------------
#                                   Contrastive views (SimCLR)
# --------------------------------------------------------------------------------------

def augment(image: Image.Image, seed: int, size: int = 64) -> Image.Image:
    """One SimCLR-style view (Chen et al., 2020, section 3 and Appendix A): a random resized crop (area
    0.3-1, aspect 3/4-4/3) resized to ``size``, a horizontal flip with probability 0.5, colour jitter
    (brightness, contrast, saturation 0.4 each) and greyscale with probability 0.2."""
    from PIL import ImageEnhance

    rng = np.random.default_rng(seed)
    img = check_image(image)
    w, h = img.size
    area = rng.uniform(0.3, 1.0) * w * h
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw, ch = min(w, round(math.sqrt(area * aspect))), min(h, round(math.sqrt(area / aspect)))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhancer(img).enhance(float(rng.uniform(0.6, 1.4)))
    if rng.random() < 0.2:
        img = img.convert("L").convert("RGB")
    return img


@torch.no_grad()
def embed(images: list[Image.Image], name: str = MODEL, loaded=None) -> torch.Tensor:
    """(N, D) unit-norm embeddings: the frozen encoder's mean-pooled patch tokens, no masking."""
    model, processor = loaded or load(name)
    size, _, _ = grid_of(model)
    mean, std = _norm(processor)
    x = torch.cat([pixels(im, size, mean, std) for im in images])
    return torch.nn.functional.normalize(features(model.vit, x, 0.0), dim=-1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """NT-Xent (Chen et al., 2020, eq. 1) over 2N views: z1[i] and z2[i] are the positive pair; each anchor's
    negatives are the other 2N - 2 views. Vectorised; the unit test checks it against an explicit double loop."""
    tau = validate.number(tau, "temperature", MIN_TAU, MAX_TAU)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).double(), dim=-1)  # (2N, D)
    n = len(z1)
    sim = z @ z.T / tau
    sim.fill_diagonal_(float("-inf"))  # k != i
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return float(torch.nn.functional.cross_entropy(sim, positive))


@dataclass
class Contrastive:
    view_a: Image.Image
    view_b: Image.Image
    similarities: list[dict]  # rows: other image -> cosine similarity to view A
    positive: float  # cos(view A, view B)
    loss: float
    random_encoder_loss: float
    batch: int
    tau: float


def contrastive(image: Image.Image, seed: int, batch: int, tau: float, name: str = MODEL) -> Contrastive:
    """Two views of ``image`` and ``batch - 1`` test-split shapes (two views each): cosine similarities under
    the trained encoder, and NT-Xent over the batch, beside the same loss under a randomly initialised encoder."""
    from shared.data.shapes import ShapesDataset

    image, seed = check_image(image), check_seed(seed)
    batch = validate.integer(batch, "batch", MIN_BATCH, MAX_BATCH)
    tau = validate.number(tau, "temperature", MIN_TAU, MAX_TAU)
    loaded = load(name)
    size, _, _ = grid_of(loaded.model)
    others = [ShapesDataset("test", batch - 1, size, offset=seed % 10_000)[i] for i in range(batch - 1)]
    images = [image] + [im for im, _, _ in others]
    a = [augment(im, 2 * seed * MAX_BATCH + 2 * i, size) for i, im in enumerate(images)]
    b = [augment(im, 2 * seed * MAX_BATCH + 2 * i + 1, size) for i, im in enumerate(images)]
    za, zb = embed(a, name, loaded), embed(b, name, loaded)
    rows = [{"image": f"test #{(seed % 10_000) + i} ({spec.caption})", "cosine to view A": round(float(za[0] @ zb[i + 1]), 4)}
            for i, (_, _, spec) in enumerate(others)]
    from transformers import ViTMAEForPreTraining

    torch.manual_seed(0)
    random_model = ViTMAEForPreTraining(loaded.model.config.__class__.from_dict(loaded.model.config.to_dict())).eval()
    init_positions(random_model)
    ra, rb = embed(a, name, (random_model, loaded.processor)), embed(b, name, (random_model, loaded.processor))
    return Contrastive(a[0], b[0], rows, float(za[0] @ zb[0]), nt_xent(za, zb, tau), nt_xent(ra, rb, tau), batch, tau)
