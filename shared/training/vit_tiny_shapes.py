"""vit-tiny-shapes: a small ViT (image 64, patch 8: an 8x8 grid) that classifies shapes.

It learns from the "wide" shapes distribution (backgrounds of any colour and five textures,
twelve shape colours, radii 0.10-0.45, outlines, blur and JPEG), because a model trained on
low-saturation backgrounds only learned "the least saturated colour is background" and failed on
a red star on a blue background (issue 13).

What made the first version learn in CPU minutes (each measured on 1000 validation shapes):

- A larger init std (0.1, not BERT's 0.02): at width 96, 0.02 leaves attention logits near zero,
  and the bilinear q.k gradient with them, so attention stays uniform for thousands of steps.
- Data over epochs: 150k renders and the eight symmetries of the square (rot90 x flip), which
  keep every class; with 60k renders and flips only, training loss fell to 0.07 while validation
  stalled at 0.94.
- Label smoothing and weight decay 0.1, AdamW with warm-up and cosine decay.
- Blur or noise on part of each batch, so the classifier can also judge generated (slightly blurry,
  noisy) samples, as the DiT evaluation needs.

The loop runs through ``accelerate`` (see ``shared.training.loop``): ``accelerate launch
--num_processes N -m shared.training vit-tiny-shapes`` trains the same model data-parallel.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.data.outliers import KINDS as OUTLIER_KINDS
from shared.data.outliers import arrays as outlier_arrays
from shared.data.shapes import SHAPES, ShapesDataset, is_easy
from shared.images import to_tensor
from shared.training.loop import (
    check_outlier_batch,
    cosine_lr,
    curriculum_batches,
    make_accelerator,
    micro_batches,
    progress,
    rank_slice,
    save_rank_weights,
    seed_everything,
    uniform_cross_entropy,
    write_model_card,
)


@dataclass
class Config:
    image_size: int = 64
    patch_size: int = 8  # 8x8 = 64 patch tokens + [CLS]
    hidden_size: int = 96
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    initializer_range: float = 0.1  # std of the initial weights (see the module docstring)
    train_images: int = 150_000
    batch_size: int = 64
    steps: int = 22_000
    # Curriculum: the first easy_steps draw only easy shapes (plain or gradient background, filled,
    # radius >= 0.18, no blur, noise or JPEG); the share of any-shape samples then rises linearly
    # until ramp_end. From scratch on the whole wide distribution, loss sat at chance (ln 5) for
    # 1200 steps; on easy shapes alone, validation accuracy was 0.39 after 800.
    easy_steps: int = 2_000
    ramp_end: int = 6_000
    grad_accum: int = 1  # micro-batches per optimizer step (the global batch stays batch_size)
    # Phase 2: a low-LR fine-tune on the whole distribution from phase 1's weights, with a fresh AdamW and
    # its own generator (seed + 1), so it can also be run alone on saved phase-1 weights (``finetune``).
    finetune_steps: int = 10_000
    finetune_lr: float = 3e-4
    # Outlier Exposure in phase 2 (Hendrycks et al., 2019): each step also sees outlier_batch non-shape
    # images (shared/data/outliers.py: procedural kinds and crops of bundled photos), pushed towards a
    # uniform softmax with this weight, so that low confidence flags photos and noise; without it the
    # model was as sure of them as of shapes.
    outlier_weight: float = 0.5
    outlier_batch: int = 32
    outlier_images: int = 20_000
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 300
    label_smoothing: float = 0.1
    augment_fraction: float = 0.3  # share of each batch that gets blur or noise
    eval_every: int = 2_000  # validation accuracy in the log, and a checkpoint in the output folder
    eval_images: int = 2_000


def _augment(x: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """A random symmetry of the square per image (rot90 x flip: every class keeps its label);
    blur or noise on ``fraction`` of the batch. x: (B, 3, H, W) in [-1, 1]."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    quarter_turns = torch.randint(0, 4, (b,), generator=gen)  # (B,)
    x = torch.stack([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])[quarter_turns, torch.arange(b)]
    pick = torch.rand(b, generator=gen) < fraction
    if pick.any():
        sigma = float(torch.empty(1).uniform_(0.4, 1.2, generator=gen))
        k = torch.arange(-2, 3, dtype=torch.float32)
        k = torch.exp(-(k**2) / (2 * sigma**2))
        k = k / k.sum()
        blurred = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"), k.view(1, 1, 1, 5).repeat(3, 1, 1, 1), groups=3)
        blurred = F.conv2d(F.pad(blurred, (0, 0, 2, 2), mode="reflect"), k.view(1, 1, 5, 1).repeat(3, 1, 1, 1), groups=3)
        noise_std = float(torch.empty(1).uniform_(0.02, 0.15, generator=gen))
        noisy = x + noise_std * torch.randn(x.shape, generator=gen)
        use_blur = torch.rand(b, generator=gen) < 0.5
        aug = torch.where(use_blur[:, None, None, None], blurred, noisy)
        x = torch.where(pick[:, None, None, None], aug, x)
    return x.clamp(-1, 1)


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += (model(pixel_values=x[i:i + batch_size]).logits.argmax(-1) == y[i:i + batch_size]).sum().item()
    return correct / len(x)


def _train_loop(acc, model, opt, cfg: Config, gen: torch.Generator, data: tuple[torch.Tensor, ...], out: Path,
                outliers: np.ndarray | None = None) -> None:
    """AdamW with warm-up + cosine LR; logs validation accuracy and checkpoints every ``eval_every`` steps.

    Training images stay uint8 (N, H, W, 3) and become floats a batch at a time (150k 64-px floats
    would be 7 GB)."""
    images_train, y_train, easy, x_val, y_val = data
    bar = progress(cfg.steps, "vit-tiny-shapes", disable=not acc.is_main_process)
    for step, idx in enumerate(curriculum_batches(easy, cfg.batch_size, cfg.steps, cfg.easy_steps, cfg.ramp_end, gen)):
        model.train()
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        x = _augment(to_tensor(images_train[idx]), cfg.augment_fraction, gen)  # (B, 3, 64, 64), same on every rank
        if outliers is None:
            x_out = x[:0]  # (0, 3, 64, 64): no outliers in phase 1
        else:
            pick = torch.randint(0, len(outliers), (cfg.outlier_batch,), generator=gen)
            x_out = _augment(to_tensor(outliers[pick.numpy()]), cfg.augment_fraction, gen)  # (O, 3, 64, 64)
        x, y = rank_slice(acc, x, y_train[idx])  # (B / ranks, 3, 64, 64), (B / ranks,)
        (x_out,) = rank_slice(acc, x_out)  # (O / ranks, 3, 64, 64)
        outs = x_out.chunk(cfg.grad_accum) if len(x_out) else [x_out] * cfg.grad_accum
        for (xm, ym), xom in zip(micro_batches(cfg.grad_accum, x, y), outs, strict=True):
            with acc.accumulate(model), acc.autocast():
                logits = model(pixel_values=torch.cat([xm, xom])).logits  # (b + o, num_classes)
                loss = F.cross_entropy(logits[:len(xm)], ym, label_smoothing=cfg.label_smoothing)
                if len(xom):  # Outlier Exposure: the outliers' softmax towards uniform
                    loss = loss + cfg.outlier_weight * uniform_cross_entropy(logits[len(xm):])  # (o, num_classes)
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
        bar.update(1)
        if step % 100 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if cfg.eval_every and ((step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps) and acc.is_main_process:
            plain = acc.unwrap_model(model)
            val = accuracy(plain, x_val.to(acc.device), y_val.to(acc.device))
            bar.write(f"step {step + 1}: loss {loss.item():.4f}, val accuracy {val:.4f}")
            _save(plain, out, cfg)
    bar.close()


def _report(model, out: Path, cfg: Config, data: tuple[torch.Tensor, ...], train_images: int, start: float,
            processes: int) -> dict:
    """Save the final weights, calibrate the OOD score, evaluate, write the model card."""
    from shared.models import evaluate  # the same evaluation as `python -m shared.models eval`
    from shared.ood import calibrate

    model.eval()
    _save(model, out, cfg)
    calibrate(out)  # ood.safetensors: what the pages use to flag unusual inputs
    metrics = evaluate("vit-tiny-shapes", path=out)
    metrics.pop("model", None)
    metrics["val_accuracy"] = round(accuracy(model, data[3], data[4]), 4)
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["steps_trained"] = cfg.steps + cfg.finetune_steps  # both phases
    metrics["train_images"] = train_images
    metrics["data_distribution"] = "wide"  # what shared.evaluation judges it on
    metrics["train_wall_seconds"] = round(time.perf_counter() - start, 1)  # rendering + training + evaluation
    metrics["processes"], metrics["torch_threads"] = processes, torch.get_num_threads()
    write_card(out, cfg, metrics)
    return metrics


def write_card(out: Path, cfg: Config, metrics: dict) -> None:
    """README.md (the model card) and metrics.json for weights trained with ``cfg``."""
    from shared.data.shapes import BACKGROUNDS, COLORS, SHIFTED_PAIRS, SIZES
    from shared.ood import TARGET_FALSE_ALARM

    grid = cfg.image_size // cfg.patch_size
    sizes = ", ".join(f"{k} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in SIZES.items())
    write_model_card(
        out, "vit-tiny-shapes",
        f"""A `transformers` `ViTForImageClassification` trained from scratch on the procedural
shapes dataset (`shared/data/shapes.py`, the "wide" distribution): {len(SHAPES)} classes ({", ".join(SHAPES)}),
{len(COLORS)} shape colours ({", ".join(COLORS)}) with jitter, backgrounds of any colour (at least a fixed RGB
distance from the shape) drawn {", ".join(BACKGROUNDS)}, radii as a share of the side ({sizes}), any rotation,
a little squash, varied star and cross proportions, some outlined shapes, and mild blur, pixel noise or JPEG
artefacts on a fraction of images; {cfg.image_size}x{cfg.image_size} pixels.

- Architecture: image {cfg.image_size}, patch {cfg.patch_size} ({grid}x{grid} = {grid * grid} patches + [CLS]),
  width {cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads, MLP {cfg.intermediate_size}, learned 1-D position table.
  The config sets `attn_implementation: eager`, so a plain `from_pretrained` returns attention maps.
- Data: {metrics.get("train_images", cfg.train_images)} training renders (split seed 0), validation split seed 1, test split seed 2.
  The `shifted` split (seed 3) holds only the (colour, background) pairs that training never saw:
  {", ".join(f"{c} on {b}" for c, b in sorted(SHIFTED_PAIRS))}.
- Recipe: {cfg.steps} steps of batch {cfg.batch_size}, AdamW lr {cfg.lr} (warm-up {cfg.warmup}, cosine), weight decay
  {cfg.weight_decay}, label smoothing {cfg.label_smoothing}, init std {cfg.initializer_range}; each image gets a random
  symmetry of the square (rot90 x flip), and {cfg.augment_fraction:.0%} of each batch blur or noise.
- Curriculum: the first {cfg.easy_steps} steps draw only easy shapes (plain or gradient background, filled, radius
  at least 0.18, no degradation); the share of any-shape samples then rises linearly to 1 at step {cfg.ramp_end}.
  Without it, loss stayed at chance (ln 5) for 1200 steps on the whole distribution.
- Phase 2: {cfg.finetune_steps} steps at lr {cfg.finetune_lr} (warm-up 100, cosine) from phase 1's weights with a fresh AdamW,
  every image, and Outlier Exposure (Hendrycks et al., 2019): each step also sees {cfg.outlier_batch} of {cfg.outlier_images}
  non-shape images (`shared/data/outliers.py`, kinds in turn: {", ".join(OUTLIER_KINDS)}; the photos are crops of
  six photos bundled with matplotlib and gradio, none of the evaluation's), pushed towards a uniform softmax
  with weight {cfg.outlier_weight}.
- Training runs through `accelerate` (`accelerate launch --num_processes N -m shared.training vit-tiny-shapes`
  trains the same model data-parallel); `train_wall_seconds` below is this run's time (rendering, training and
  evaluation) with `processes` processes of `torch_threads` threads each.
- Out-of-distribution flag (`ood.safetensors`, `shared/ood.py`): an image is flagged when its top softmax
  probability (Hendrycks & Gimpel, 2017, the score the Outlier Exposure paper uses) is below a threshold set to
  flag {TARGET_FALSE_ALARM:.0%} of 2000 validation shapes. The Mahalanobis distance of its [CLS] feature to the nearest
  class mean (Lee et al., 2018; fitted on 5000 training shapes) is calibrated the same way and reported, not
  flagged on. `ood` below: the false-alarm rate on the test split and the detection rate on noise images and on
  photos (scikit-image's samples, whole and cropped; never trained on), for the flag and for each score alone.
- `independent_renderer_accuracy`: shapes drawn by matplotlib (`shared/data/matplotlib_shapes.py`), a renderer
  that shares no code, geometry or colours with ours.
- Config: `{asdict(cfg)}`
""",
        metrics,
        "python -m shared.training vit-tiny-shapes",
    )


def _save(model, out: Path, cfg: Config) -> None:
    from transformers import ViTImageProcessor

    model.save_pretrained(out)
    # transformers defaults to SDPA attention, which returns no attention maps: with this key a plain
    # from_pretrained(path) answers output_attentions=True (at 17 tokens eager costs nothing), and
    # from_pretrained(path, attn_implementation="sdpa") still overrides it. save_pretrained drops the
    # setting, so it is written here.
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "attn_implementation": "eager"}, indent=2, sort_keys=True) + "\n")
    ViTImageProcessor(
        do_resize=True, size={"height": cfg.image_size, "width": cfg.image_size},
        do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    ).save_pretrained(out)


def finetune(acc, model, cfg: Config, seed: int, data: tuple[torch.Tensor, ...], out: Path):
    """Phase 2: ``cfg.finetune_steps`` steps at ``cfg.finetune_lr`` (warm-up 100, cosine) on every image,
    no curriculum, with Outlier Exposure, a fresh AdamW and generator seed + 1. Returns the prepared model."""
    phase2 = replace(cfg, steps=cfg.finetune_steps, lr=cfg.finetune_lr, warmup=100, easy_steps=0, ramp_end=0)
    gen = seed_everything(seed + 1)
    outliers = outlier_arrays(cfg.outlier_images, cfg.image_size) if cfg.outlier_weight > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=phase2.lr, weight_decay=cfg.weight_decay)
    model, opt = acc.prepare(model, opt)
    _train_loop(acc, model, opt, phase2, gen, data, out, outliers)
    return model


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    from transformers import ViTConfig, ViTForImageClassification

    cfg = cfg or Config()
    if steps is not None:  # a smoke run: phase 1 only, for this many steps
        cfg.steps, cfg.finetune_steps = steps, 0
    if grad_accum is not None:
        cfg.grad_accum = grad_accum
    acc = make_accelerator(cfg.grad_accum, cfg.batch_size)
    if cfg.finetune_steps and cfg.outlier_weight > 0:  # refused now, not after phase 1's hour
        check_outlier_batch(acc, cfg.outlier_batch, cfg.grad_accum)
    start = time.perf_counter()
    gen = seed_everything(seed)
    out = Path(out_dir)

    # A short run never sees more than steps x batch images, so it renders no more than that.
    n_train = min(cfg.train_images, cfg.steps * cfg.batch_size)
    train_set = ShapesDataset("train", n_train, cfg.image_size)
    images, labels, _ = train_set.arrays()  # (N, 64, 64, 3) uint8, (N,)
    easy = torch.tensor([is_easy(train_set.spec(i)) for i in range(n_train)])  # (N,) bool
    val_images, val_labels, _ = ShapesDataset("val", cfg.eval_images, cfg.image_size).arrays()
    x_val, y_val = to_tensor(val_images), torch.from_numpy(val_labels)  # (M, 3, 64, 64), (M,)
    data = (images, torch.from_numpy(labels), easy, x_val, y_val)

    config = ViTConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=3,
        hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, intermediate_size=cfg.intermediate_size,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=cfg.initializer_range,
        num_labels=len(SHAPES), id2label=dict(enumerate(SHAPES)), label2id={s: i for i, s in enumerate(SHAPES)},
    )
    model = ViTForImageClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model, opt = acc.prepare(model, opt)
    _train_loop(acc, model, opt, cfg, gen, data, out)
    if cfg.finetune_steps:
        model = finetune(acc, acc.unwrap_model(model), cfg, seed, data, out)
    if rank_weights:
        save_rank_weights(acc, model, out)
    acc.wait_for_everyone()
    metrics = _report(acc.unwrap_model(model).cpu(), out, cfg, data, n_train, start, acc.num_processes) \
        if acc.is_main_process else {}
    acc.wait_for_everyone()
    acc.end_training()
    return metrics
