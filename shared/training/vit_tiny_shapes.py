"""vit-tiny-shapes: a ~0.45M-parameter ViT (image 32, patch 4) that classifies shapes.

Recipe: AdamW, warm-up + cosine LR, label smoothing, horizontal flips, and blur/noise
augmentation on part of each batch so the classifier can also judge generated (slightly
blurry, noisy) samples, as the DiT evaluation needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from shared.data.shapes import DEFAULT_SIZE, SHAPES, ShapesDataset
from shared.training.loop import cosine_lr, progress, random_batches, seed_everything, to_tensor, write_model_card


@dataclass
class Config:
    image_size: int = DEFAULT_SIZE
    patch_size: int = 4  # 8x8 = 64 patch tokens + [CLS]
    hidden_size: int = 96
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    train_images: int = 40_000
    batch_size: int = 64
    # ViTs lack a CNN's locality prior: on these geometry-only labels a small CNN reaches 0.99 in
    # ~500 steps while every ViT variant tried sat near 0.27 at step 500, so the budget is long and
    # training stops at the first validation check that reaches target_val_accuracy.
    steps: int = 12_000
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 300
    label_smoothing: float = 0.1
    augment_fraction: float = 0.3  # share of each batch that gets blur or noise
    eval_every: int = 1_000  # validation, and a checkpoint in the output folder
    # Phase 2, run only when phase 1 ends below the target: a gentler run from its weights.
    finetune_steps: int = 4_000
    finetune_lr: float = 3e-4
    finetune_warmup: int = 100
    target_val_accuracy: float = 0.99  # deterministic early stop (checked every eval_every steps)
    eval_images: int = 2_000


def _augment(x: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Flip half the batch; blur or add noise to ``fraction`` of it. x: (B, 3, H, W) in [-1, 1]."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
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


def _phase(model, cfg: Config, steps: int, lr: float, warmup: int, gen: torch.Generator,
           data: tuple[torch.Tensor, ...], out: Path, desc: str) -> tuple[int, bool]:
    """One AdamW run with warm-up + cosine LR; stops at the first check >= target. -> (steps run, reached)."""
    x_train, y_train, x_val, y_val = data
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    bar = progress(steps, desc)
    for step, idx in enumerate(random_batches(len(x_train), cfg.batch_size, steps, gen)):
        model.train()
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        x = _augment(x_train[idx], cfg.augment_fraction, gen)  # (B, 3, 32, 32)
        logits = model(pixel_values=x).logits  # (B, num_classes)
        loss = F.cross_entropy(logits, y_train[idx], label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.update(1)
        if step % 100 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.eval_every == 0 or step == steps - 1:
            val = accuracy(model, x_val, y_val)
            bar.write(f"{desc} step {step + 1}: loss {loss.item():.4f}, val accuracy {val:.4f}")
            _save(model, out, cfg)
            if val >= cfg.target_val_accuracy:
                bar.close()
                return step + 1, True
    bar.close()
    return steps, False


def finetune(out_dir: str | Path, seed: int = 0, cfg: Config | None = None, model=None,
             data: tuple[torch.Tensor, ...] | None = None, report: bool = True) -> int:
    """Phase 2: a low-LR run from the phase-1 weights, seeded on its own (seed + 1) so that it
    depends only on those weights. Returns the steps it ran."""
    from transformers import ViTForImageClassification

    cfg = cfg or Config()
    out = Path(out_dir)
    if model is None:
        model = ViTForImageClassification.from_pretrained(out)
    if data is None:
        images, labels, _ = ShapesDataset("train", cfg.train_images, cfg.image_size).arrays()
        val_images, val_labels, _ = ShapesDataset("val", cfg.eval_images, cfg.image_size).arrays()
        data = (to_tensor(images), torch.from_numpy(labels), to_tensor(val_images), torch.from_numpy(val_labels))
    gen = seed_everything(seed + 1)
    steps, _ = _phase(model, cfg, cfg.finetune_steps, cfg.finetune_lr, cfg.finetune_warmup, gen, data, out,
                      "vit-tiny-shapes finetune")
    if report:
        _report(model, out, cfg, data, cfg.steps + steps)
    return steps


def _report(model, out: Path, cfg: Config, data: tuple[torch.Tensor, ...], steps_trained: int) -> dict:
    """Save the final weights, evaluate on the test split, write the model card."""
    from shared.models import evaluate  # the same evaluation as `python -m shared.models eval`

    model.eval()
    _save(model, out, cfg)
    metrics = evaluate("vit-tiny-shapes", path=out)
    metrics["val_accuracy"] = round(accuracy(model, data[2], data[3]), 4)
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["steps_trained"] = steps_trained
    write_model_card(
        out, "vit-tiny-shapes",
        f"""A `transformers` `ViTForImageClassification` trained from scratch on the procedural
shapes dataset (`shared/data/shapes.py`): {len(SHAPES)} classes ({", ".join(SHAPES)}), six colours,
three sizes, random position and rotation, plain / noisy / striped backgrounds, {cfg.image_size}x{cfg.image_size} pixels.

- Architecture: image {cfg.image_size}, patch {cfg.patch_size} ({(cfg.image_size // cfg.patch_size) ** 2} patches + [CLS]),
  width {cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads, MLP {cfg.intermediate_size}, learned 1-D position table.
- Data: {cfg.train_images} training renders (split seed 0), validation split seed 1, test split seed 2.
- Phase 1: {cfg.steps} steps of batch {cfg.batch_size}, AdamW lr {cfg.lr} (warm-up {cfg.warmup}, cosine), weight decay
  {cfg.weight_decay}, label smoothing {cfg.label_smoothing}, flips, blur/noise on {cfg.augment_fraction:.0%} of each batch.
- Phase 2 (only if phase 1 ends below {cfg.target_val_accuracy} validation accuracy): up to {cfg.finetune_steps} steps at
  lr {cfg.finetune_lr} from the phase-1 weights, seeded on its own; both phases stop at the first validation check
  (every {cfg.eval_every} steps) at or above {cfg.target_val_accuracy}. Steps trained in all: {steps_trained}.
- Why so long: without a CNN's locality prior the ViT first learns a shortcut (how much of the image is
  coloured) and only after ~3,000 steps starts to read geometry; a 3-layer CNN reaches 0.99 in ~500 steps.
- Config: `{asdict(cfg)}`
""",
        metrics,
        "python -m shared.training vit-tiny-shapes",
    )
    return metrics


def _save(model, out: Path, cfg: Config) -> None:
    from transformers import ViTImageProcessor

    model.save_pretrained(out)
    ViTImageProcessor(
        do_resize=True, size={"height": cfg.image_size, "width": cfg.image_size},
        do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    ).save_pretrained(out)


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None) -> dict:
    from transformers import ViTConfig, ViTForImageClassification

    cfg = cfg or Config()
    if steps is not None:
        cfg.steps = steps
    gen = seed_everything(seed)
    out = Path(out_dir)

    images, labels, _ = ShapesDataset("train", cfg.train_images, cfg.image_size).arrays()
    x_train, y_train = to_tensor(images), torch.from_numpy(labels)  # (N, 3, 32, 32), (N,)
    val_images, val_labels, _ = ShapesDataset("val", cfg.eval_images, cfg.image_size).arrays()
    x_val, y_val = to_tensor(val_images), torch.from_numpy(val_labels)
    data = (x_train, y_train, x_val, y_val)

    config = ViTConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=3,
        hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, intermediate_size=cfg.intermediate_size,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        num_labels=len(SHAPES), id2label=dict(enumerate(SHAPES)), label2id={s: i for i, s in enumerate(SHAPES)},
    )
    model = ViTForImageClassification(config)
    stopped_at, reached = _phase(model, cfg, cfg.steps, cfg.lr, cfg.warmup, gen, data, out, "vit-tiny-shapes")
    if not reached:
        stopped_at += finetune(out, seed=seed, cfg=cfg, model=model, data=data, report=False)
    return _report(model, out, cfg, data, stopped_at)
