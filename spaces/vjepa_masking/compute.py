"""V-JEPA's multi-block masks and its objective, computed for real.

- Masks: ``shared.training.vjepa_tiny_shapes.MultiBlockMaskGenerator``, a line-by-line port of
  facebookresearch/jepa ``src/masks/multiblock3d.py`` (commit 51c59d518fc63c08464af6de585f78ac0c7ed4d5) with the
  two mask types of ``configs/pretrain/vitl16.yaml`` (Bardes et al., 2024): short-range = union of 8 blocks of
  spatial scale 0.15, long-range = union of 2 blocks of scale 0.7, aspect ratio 0.75-1.5, temporal scale 1.0 (each
  block spans the whole clip). The training recipe uses the same class, so the page shows the masks the model saw.
- Objective: the shipped ``vjepa-tiny-shapes`` on one clip: context encoder -> predictor -> L1 against the EMA
  target encoder's layer-normed features on the target tokens (``app/vjepa/train.py``), beside pixel losses on the
  same clip and mask.

No UI-library import; bad input raises ``ValueError`` through ``shared.validate``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import numpy as np

from shared import validate

from . import options

# --------------------------------------------------------------------------------------
#                                   Inputs
# --------------------------------------------------------------------------------------


def check_grid(frames, image_size, patch_size, tubelet) -> tuple[int, int, int, int, tuple[int, int, int]]:
    """Clean (frames, image_size, patch_size, tubelet, (t, h, w) token grid) or ``ValueError``."""
    frames = validate.integer(frames, "frames", options.MIN_FRAMES, options.MAX_FRAMES)
    image_size = validate.integer(image_size, "image size", options.MIN_IMAGE_SIZE, options.MAX_IMAGE_SIZE)
    patch_size = validate.integer(patch_size, "patch size", options.MIN_PATCH, options.MAX_PATCH)
    tubelet = validate.integer(tubelet, "tubelet", options.MIN_TUBELET, options.MAX_TUBELET)
    if frames % tubelet:
        raise ValueError(f"frames ({frames}) must be divisible by the tubelet ({tubelet}): each token spans "
                         f"{tubelet} frames; try {max(tubelet, frames - frames % tubelet)} frames")
    if image_size % patch_size:
        raise ValueError(f"image size ({image_size}) must be divisible by the patch size ({patch_size}); try "
                         f"{max(patch_size, image_size - image_size % patch_size)}")
    side = image_size // patch_size
    if side < options.MIN_GRID_SIDE:
        raise ValueError(f"the patch grid must be at least {options.MIN_GRID_SIDE}x{options.MIN_GRID_SIDE} "
                         f"(a 15% block of a smaller grid rounds to no patch), got {side}x{side} from image size "
                         f"{image_size} and patch size {patch_size}")
    grid = (frames // tubelet, side, side)
    tokens = grid[0] * side * side
    if tokens > options.MAX_TOKENS:
        raise ValueError(f"{grid[0]}x{side}x{side} = {tokens} tokens is above the cap of {options.MAX_TOKENS}; "
                         "use fewer frames, a larger tubelet or a larger patch")
    return frames, image_size, patch_size, tubelet, grid


def check_seed(seed) -> int:
    return validate.integer(seed, "seed", 0, options.MAX_SEED)


# --------------------------------------------------------------------------------------
#                                   Masks
# --------------------------------------------------------------------------------------

@dataclass
class Masks:
    """Both mask types of one seed on a (t, h, w) token grid; 1 = a target token hidden from the context encoder."""

    grid: tuple[int, int, int]
    short_range: np.ndarray  # (t, h, w) int
    long_range: np.ndarray  # (t, h, w) int
    short_block: tuple[int, int, int]  # (t, h, w) of each of the 8 blocks this seed drew
    long_block: tuple[int, int, int]

    @property
    def short_range_ratio(self) -> float:
        return float(self.short_range.mean())

    @property
    def long_range_ratio(self) -> float:
        return float(self.long_range.mean())

    @property
    def stats(self) -> dict:
        """The endpoint's JSON: ``mask`` and ``masked_ratio`` are the long-range type."""
        return {"grid": list(self.grid), "mask": self.long_range.tolist(), "masked_ratio": round(self.long_range_ratio, 6),
                "short_range_mask": self.short_range.tolist(),
                "short_range_ratio": round(self.short_range_ratio, 6),
                "tokens": int(np.prod(self.grid)),
                "long_range_block_thw": list(self.long_block), "short_range_block_thw": list(self.short_block),
                "long_range_context_tokens": int((1 - self.long_range).sum()),
                "short_range_context_tokens": int((1 - self.short_range).sum())}


def sample_masks(grid: tuple[int, int, int], seed: int) -> Masks:
    """The short-range then the long-range mask of ``seed`` (one torch generator drives both, in that order:
    the order of ``vitl16.yaml``'s mask list). Each is ``num_blocks`` blocks of one sampled size, multiplied
    into a context mask and resampled while no context is left, exactly as ``_MaskGenerator.__call__``."""
    import torch

    from shared.training.vjepa_tiny_shapes import LONG_RANGE, SHORT_RANGE, MultiBlockMaskGenerator

    g = torch.Generator().manual_seed(int(seed))
    out = []
    for cfg in (SHORT_RANGE, LONG_RANGE):
        (context,), size = MultiBlockMaskGenerator(*grid, cfg).context_masks(1, g)
        out.append(((1 - context.numpy()).astype(np.int64), size))
    (short, s_size), (long_, l_size) = out
    return Masks(tuple(grid), short, long_, s_size, l_size)


def mask_for(frames, image_size, patch_size, tubelet, seed) -> Masks:
    """Validated inputs -> ``Masks`` (the endpoint ``vjepa_masking_mask``'s maths)."""
    *_, grid = check_grid(frames, image_size, patch_size, tubelet)
    return sample_masks(grid, check_seed(seed))


def ratio_stats(seeds: int = options.BENCH_SEEDS, frames: int = options.DEFAULT_FRAMES,
                image_size: int = options.DEFAULT_IMAGE_SIZE, patch_size: int = options.DEFAULT_PATCH,
                tubelet: int = options.DEFAULT_TUBELET) -> dict:
    """Each type's masking ratio over seeds 0..seeds-1 (mean, min, max), with the block sizes drawn and the
    ratio that blocks placed independently of each other would give, ``1 - (1 - a)^n`` (a = block area / grid
    area, averaged over the seeds; it ignores that a block never crosses the border, so edges are hit less)."""
    seeds = validate.integer(seeds, "seeds", options.MIN_SEEDS, options.MAX_SEEDS)
    *_, grid = check_grid(frames, image_size, patch_size, tubelet)
    area = grid[1] * grid[2]
    rows = {"short-range": [], "long-range": []}
    blocks = {"short-range": [], "long-range": []}
    for s in range(seeds):
        m = sample_masks(grid, s)
        rows["short-range"].append(m.short_range_ratio)
        rows["long-range"].append(m.long_range_ratio)
        blocks["short-range"].append(m.short_block)
        blocks["long-range"].append(m.long_block)
    from shared.training.vjepa_tiny_shapes import LONG_RANGE, SHORT_RANGE

    out = {}
    for name, cfg in (("short-range", SHORT_RANGE), ("long-range", LONG_RANGE)):
        r = np.array(rows[name])
        a = np.array([b[1] * b[2] / area for b in blocks[name]])
        out[name] = {"blocks": cfg.num_blocks, "spatial_scale": cfg.spatial_scale[0],
                     "mean": round(float(r.mean()), 4), "min": round(float(r.min()), 4), "max": round(float(r.max()), 4),
                     "std": round(float(r.std()), 4), "mean_block_area": round(float(a.mean()), 4),
                     "independent_blocks_estimate": round(float(np.mean(1 - (1 - a) ** cfg.num_blocks)), 4)}
    both = np.array(rows["short-range"] + rows["long-range"])
    return {"grid": list(grid), "seeds": seeds, "types": out, "per_seed": {k: [round(v, 6) for v in r]
                                                                              for k, r in rows.items()},
            "mean_of_both_types": round(float(both.mean()), 4), "paper_average": options.PAPER_RATIO}


COLLATOR_BATCH = 24  # vitl16.yaml data.batch_size: clips per data loader, the batch one MaskCollator call masks


def collator_stats(seeds: int = options.BENCH_SEEDS, batch_size: int = COLLATOR_BATCH,
                   frames: int = options.DEFAULT_FRAMES, image_size: int = options.DEFAULT_IMAGE_SIZE,
                   patch_size: int = options.DEFAULT_PATCH, tubelet: int = options.DEFAULT_TUBELET) -> dict:
    """What the encoder actually sees in training. ``_MaskGenerator.__call__`` cuts every clip's context index
    list to the batch's shortest (``cm[:min_keep_enc]``) and every target list to the shortest target list, so
    per batch the share of tokens *withheld from the context encoder* is ``1 - min_keep_enc / N`` (set by the
    clip with the least context) and the share *predicted* is ``min_keep_pred / N``. Over ``seeds`` batches
    (seed s drives batch s), per type: mean, min and max of both."""
    import torch

    from shared.training.vjepa_tiny_shapes import MASK_TYPES, MultiBlockMaskGenerator

    seeds = validate.integer(seeds, "seeds", options.MIN_SEEDS, options.MAX_SEEDS)
    batch_size = validate.integer(batch_size, "batch size", 1, 256)
    *_, grid = check_grid(frames, image_size, patch_size, tubelet)
    n = int(np.prod(grid))
    out = {}
    for cfg in MASK_TYPES:
        gen = MultiBlockMaskGenerator(*grid, cfg)
        hidden, predicted = [], []
        for s in range(seeds):
            enc, pred = gen(batch_size, torch.Generator().manual_seed(s))
            hidden.append(1 - enc.shape[1] / n)
            predicted.append(pred.shape[1] / n)
        h, p = np.array(hidden), np.array(predicted)
        out[cfg.name] = {"withheld_from_encoder": {"mean": round(float(h.mean()), 4), "min": round(float(h.min()), 4),
                                                   "max": round(float(h.max()), 4)},
                         "predicted_targets": {"mean": round(float(p.mean()), 4), "min": round(float(p.min()), 4),
                                               "max": round(float(p.max()), 4)}}
    both = np.mean([v["withheld_from_encoder"]["mean"] for v in out.values()])
    return {"grid": list(grid), "batches": seeds, "batch_size": batch_size, "types": out,
            "withheld_mean_of_both_types": round(float(both), 4), "paper_average": options.PAPER_RATIO}


# --------------------------------------------------------------------------------------
#                                   Drawing
# --------------------------------------------------------------------------------------

def demo_clip(frames: int, image_size: int, index: int = options.DEFAULT_CLIP) -> np.ndarray:
    """Test-split moving-shapes clip ``index``: uint8 (frames, image_size, image_size, 3). One frame clips
    are drawn as the first frame of a two-frame clip (the dataset needs two)."""
    from shared.data.moving_shapes import clip_spec_at, render_clip

    spec = clip_spec_at("test", index, max(2, frames))
    return render_clip(spec, image_size)[:frames]


def _shade(frame: np.ndarray, target: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Frame (S, S, 3) with target cells (h, w) of 1 blended 70% towards ``colour`` and a grid drawn."""
    s = frame.shape[0]
    h, w = target.shape
    ys = (np.arange(s) * h) // s
    xs = (np.arange(s) * w) // s
    cell = target[ys][:, xs].astype(bool)  # (S, S)
    out = frame.astype(np.float32)
    out[cell] = 0.3 * out[cell] + 0.7 * np.array(colour, np.float32)
    edge_y = np.r_[False, ys[1:] != ys[:-1]]
    edge_x = np.r_[False, xs[1:] != xs[:-1]]
    out[edge_y, :] = 0.6 * out[edge_y, :] + 0.4 * 255
    out[:, edge_x] = 0.6 * out[:, edge_x] + 0.4 * 255
    return out.clip(0, 255).astype(np.uint8)


LONG_COLOUR = (230, 60, 40)  # targets of the long-range mask
SHORT_COLOUR = (40, 110, 230)  # targets of the short-range mask


def draw(clip: np.ndarray, masks: Masks, tubelet: int, frame_px: int = options.DISPLAY_FRAME_PX):
    """PIL image, one column per token time step (its first frame): row 1 the clip, row 2 the long-range
    targets (red: hidden from the context encoder), row 3 the short-range targets (blue)."""
    from PIL import Image

    t = masks.grid[0]
    side = min(frame_px, clip.shape[1])
    gap = 2
    canvas = np.full((3 * side + 2 * gap, t * side + (t - 1) * gap, 3), 255, np.uint8)
    for k in range(t):
        frame = np.asarray(Image.fromarray(clip[k * tubelet]).resize((side, side), Image.BILINEAR))
        x0 = k * (side + gap)
        canvas[:side, x0:x0 + side] = frame
        canvas[side + gap:2 * side + gap, x0:x0 + side] = _shade(frame, masks.long_range[k], LONG_COLOUR)
        canvas[2 * (side + gap):, x0:x0 + side] = _shade(frame, masks.short_range[k], SHORT_COLOUR)
    return Image.fromarray(canvas)


def masked_clip(frames, image_size, patch_size, tubelet, seed, clip_index: int = options.DEFAULT_CLIP):
    """(PIL image of the clip with both masks, ``Masks``): the endpoint's maths."""
    frames, image_size, patch_size, tubelet, grid = check_grid(frames, image_size, patch_size, tubelet)
    masks = sample_masks(grid, check_seed(seed))
    return draw(demo_clip(frames, image_size, clip_index), masks, tubelet), masks


# --------------------------------------------------------------------------------------
#                                   Objective on the tiny model
# --------------------------------------------------------------------------------------

def tubelets(clip: np.ndarray, tubelet: int, patch: int) -> np.ndarray:
    """uint8 (T, S, S, 3) -> float (t*h*w, tubelet*patch*patch*3) in [-1, 1], tokens in (t, h, w) order (the
    Conv3d embedding's order), pixels (frame, row, col, channel)."""
    x = clip.astype(np.float64) / 127.5 - 1.0
    T, S, _, C = x.shape
    t, g = T // tubelet, S // patch
    x = x.reshape(t, tubelet, g, patch, g, patch, C).transpose(0, 2, 4, 1, 3, 5, 6)
    return x.reshape(t * g * g, tubelet * patch * patch * C)


@dataclass
class TypeLoss:
    """One mask type on one clip: latent and pixel losses on its target tokens."""

    name: str
    target: np.ndarray  # (t, h, w) 1 = target
    latent_l1: float  # the trained predictor vs the EMA targets (the V-JEPA loss)
    latent_l1_context_mean: float  # predicting every target token as the mean target feature of the context
    latent_l1_untrained: float  # the same model at its seeded initialisation
    latent_token_error: np.ndarray  # (t, h, w) mean |z - h| per target token (NaN on context)
    pixel_mse_context_mean: float  # fill each target tubelet with the mean colour of the context tubelets
    pixel_mse_token_mean_oracle: float  # fill each target tubelet with its own mean colour (needs the answer)
    pixel_token_error: np.ndarray  # (t, h, w) per-token MSE of the context-mean fill (NaN on context)


@dataclass
class Objective:
    clip: np.ndarray  # uint8 (T, S, S, 3)
    direction: str
    masks: Masks
    losses: list[TypeLoss]
    model_loss: float  # mean over the two types: V-JEPA's loss_fn

    @property
    def stats(self) -> dict:
        return {"clip": {"split": "test", "direction": self.direction, "frames": int(self.clip.shape[0]),
                         "size": int(self.clip.shape[1])},
                "grid": list(self.masks.grid), "vjepa_loss_mean_of_types": round(self.model_loss, 5),
                **{x.name: {"target_tokens": int(x.target.sum()), "masked_ratio": round(float(x.target.mean()), 4),
                            "latent_l1": round(x.latent_l1, 5),
                            "latent_l1_context_mean_baseline": round(x.latent_l1_context_mean, 5),
                            "latent_l1_untrained_model": round(x.latent_l1_untrained, 5),
                            "pixel_mse_context_mean_fill": round(x.pixel_mse_context_mean, 5),
                            "pixel_mse_own_mean_oracle": round(x.pixel_mse_token_mean_oracle, 5)}
                   for x in self.losses}}


def _model(name: str = options.MODEL):
    from shared.models import load

    return load(name, device="cpu").model


def _untrained(config: dict):
    """The model at its seeded initialisation (``random_model``), built once per config."""
    from shared.training.vjepa_tiny_shapes import random_model

    key = json.dumps(config, sort_keys=True)
    with _UNTRAINED_LOCK:
        if key not in _UNTRAINED:
            _UNTRAINED.clear()
            _UNTRAINED[key] = random_model(config)
        return _UNTRAINED[key]


_UNTRAINED: dict = {}
_UNTRAINED_LOCK = threading.Lock()


def objective(clip_index, seed, model=None) -> Objective:
    """The V-JEPA objective of the shipped tiny model on test clip ``clip_index`` with the masks of ``seed``
    on its token grid, per mask type, beside baselines:

    - latent: L1 of the trained context encoder + predictor against the EMA target encoder's layer-normed
      features on the target tokens; the same for a constant prediction (the mean target feature over the
      context tokens) and for the model at its seeded initialisation (targets from its own target encoder);
    - pixels: per-pixel MSE on the target tubelets (pixels in [-1, 1]) of filling them with the mean colour of
      the context, and of the oracle that knows each target tubelet's own mean colour: what is left is the
      texture, edges and noise inside each tubelet that a pixel decoder would have to reproduce."""
    import torch

    from shared.data.moving_shapes import DIRECTIONS, clip_spec_at, render_clip
    from shared.training.vjepa_tiny_shapes import MASK_TYPES, clips_to_tensor, gather_tokens

    clip_index = validate.integer(clip_index, "clip index", 0, options.MAX_CLIP)
    seed = check_seed(seed)
    model = model or _model()
    c = model.config
    spec = clip_spec_at("test", clip_index, c["frames"])
    clip = render_clip(spec, c["image_size"])
    masks = sample_masks(model.grid, seed)
    x = clips_to_tensor(clip[None])
    pix = tubelets(clip, c["tubelet_size"], c["patch_size"])  # (N, P)
    untrained = _untrained(c)
    losses = []
    with torch.no_grad():
        h = model.targets(x)[0]  # (N, D)
        h0 = untrained.targets(x)[0]
        for i, (cfg, target) in enumerate(zip(MASK_TYPES, (masks.short_range, masks.long_range), strict=True)):
            flat = target.reshape(-1)
            tgt = torch.from_numpy(np.flatnonzero(flat))[None]
            ctx = torch.from_numpy(np.flatnonzero(1 - flat))[None]
            z = model.predict(x, ctx, tgt, i)[0]  # (K, D)
            ht = gather_tokens(h[None], tgt)[0]
            err = (z - ht).abs().mean(-1).numpy()  # (K,)
            const = h[ctx[0]].mean(0, keepdim=True)
            z0 = untrained.predict(x, ctx, tgt, i)[0]
            tok = np.full(flat.shape, np.nan)
            tok[flat == 1] = err
            fill = pix[flat == 0].reshape(-1, 3).mean(0)  # context mean colour (3,)
            tp = pix[flat == 1].reshape(flat.sum(), -1, 3)  # (K, pixels, 3)
            per_tok = ((tp - fill) ** 2).mean((1, 2))
            own = ((tp - tp.mean(1, keepdims=True)) ** 2).mean((1, 2))
            ptok = np.full(flat.shape, np.nan)
            ptok[flat == 1] = per_tok
            losses.append(TypeLoss(
                cfg.name, target, latent_l1=float(err.mean()),
                latent_l1_context_mean=float((const - ht).abs().mean()),
                latent_l1_untrained=float((z0 - gather_tokens(h0[None], tgt)[0]).abs().mean()),
                latent_token_error=tok.reshape(target.shape), pixel_mse_context_mean=float(per_tok.mean()),
                pixel_mse_token_mean_oracle=float(own.mean()), pixel_token_error=ptok.reshape(target.shape)))
    return Objective(clip, DIRECTIONS[spec.direction], masks, losses,
                     float(np.mean([x.latent_l1 for x in losses])))


def momentum_curve(steps: int, ema: tuple[float, float], ipe_scale: float) -> np.ndarray:
    """V-JEPA's EMA momentum per training step (``app/vjepa/train.py``; see ``momentum_schedule``)."""
    from shared.training.vjepa_tiny_shapes import momentum_schedule

    steps = validate.integer(steps, "steps", 1, 10_000_000)
    return momentum_schedule(steps, tuple(ema), ipe_scale)
