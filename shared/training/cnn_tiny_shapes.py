"""cnn-tiny-shapes: a tiny ResNet (He et al., 2016) that classifies the same shapes as vit-tiny-shapes.

It exists to be compared with ``vit-tiny-shapes`` on the ``cnn_vs_vit`` page, so it shares what can be
shared: the "wide" shapes distribution, image size 64, the same splits (train seed 0, validation 1,
test 2), the same augmentation (a random symmetry of the square, blur or noise on 30% of each batch),
label smoothing, AdamW with warm-up and cosine decay, and about the same number of parameters.

What differs, and the page says so: it trains far shorter (``steps`` below against the ViT's 32,000), on
fewer renders, with no curriculum (a CNN learned from the whole distribution at once in a short run) and
no Outlier Exposure phase; a ``transformers`` ``ResNetForImageClassification`` (basic blocks, the usual
7x7 stride-2 stem and 3x3 max-pool), so it loads through the same "image-classification" loader.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.data.shapes import SHAPES, ShapesDataset
from shared.images import to_tensor
from shared.training.loop import cosine_lr, progress, random_batches, seed_everything, write_model_card
from shared.training.vit_tiny_shapes import _augment, accuracy  # the ViT's augmentation and accuracy, shared

NAME = "cnn-tiny-shapes"


@dataclass
class Config:
    image_size: int = 64
    embedding_size: int = 32  # channels of the 7x7 stride-2 stem
    hidden_sizes: list[int] = field(default_factory=lambda: [32, 64, 152])  # one stage each; the last two stride 2
    depths: list[int] = field(default_factory=lambda: [2, 2, 1])  # basic blocks (two 3x3 convolutions) per stage
    train_images: int = 100_000
    batch_size: int = 64
    steps: int = 3_000
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 200
    label_smoothing: float = 0.1
    augment_fraction: float = 0.3  # share of each batch that gets blur or noise, as for the ViT
    eval_every: int = 500
    eval_images: int = 2_000


def build(cfg: Config):
    """The untrained ``ResNetForImageClassification`` of ``cfg``."""
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        num_channels=3, embedding_size=cfg.embedding_size, hidden_sizes=list(cfg.hidden_sizes),
        depths=list(cfg.depths), layer_type="basic", hidden_act="relu", downsample_in_first_stage=False,
        num_labels=len(SHAPES), id2label=dict(enumerate(SHAPES)), label2id={s: i for i, s in enumerate(SHAPES)},
    )
    return ResNetForImageClassification(config)


@torch.no_grad()
def evaluate(source: str, n: int = 2000, n_shifted: int = 1000, n_independent: int = 500) -> dict:
    """Top-1 accuracy on ``n`` test-split shapes, per background kind and size word, on the ``shifted`` split
    and on shapes drawn by matplotlib, with the model's own image processor (``shared.evaluation``'s
    ``classifier_accuracy`` reads ViT-only config keys and [CLS] features, so the CNN has its own)."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from shared.data import matplotlib_shapes

    model = AutoModelForImageClassification.from_pretrained(source, use_safetensors=True).eval()
    processor = AutoImageProcessor.from_pretrained(source)
    size = processor.size["height"]

    def predict(images: list) -> np.ndarray:
        out = []
        for start in range(0, len(images), 250):
            pixels = processor(images=images[start:start + 250], return_tensors="pt")["pixel_values"]
            out.append(model(pixel_values=pixels).logits.argmax(-1).numpy())
        return np.concatenate(out)

    def rate(pred: np.ndarray, labels: np.ndarray) -> float:
        return round(float((pred == labels).mean()), 4)

    ds = ShapesDataset("test", n, size=size)
    specs = [ds.spec(i) for i in range(n)]
    pred = predict([ds[i][0] for i in range(n)])
    labels = np.array([s.label for s in specs])
    by: dict[str, dict] = {"background": {}, "size": {}}
    for key in by:
        for value in sorted({getattr(s, key) for s in specs}):
            mask = np.array([getattr(s, key) == value for s in specs])
            by[key][value] = {"accuracy": rate(pred[mask], labels[mask]), "n": int(mask.sum())}
    shifted = ShapesDataset("shifted", n_shifted, size=size)
    shifted_pred = predict([shifted[i][0] for i in range(n_shifted)])
    drawings, drawing_labels = matplotlib_shapes.dataset(n_independent)
    return {
        "accuracy": rate(pred, labels), "n": n, "data_distribution": "wide", "image_size": size,
        "shifted_accuracy": rate(shifted_pred, np.array([shifted.spec(i).label for i in range(n_shifted)])),
        "n_shifted": n_shifted,
        "independent_renderer_accuracy": rate(predict(drawings), drawing_labels), "n_independent": n_independent,
        "by_background": by["background"], "by_size": by["size"],
    }


def _save(model, out: Path, cfg: Config) -> None:
    from transformers import ViTImageProcessor

    model.save_pretrained(out)
    ViTImageProcessor(  # resize to 64 and map [0, 255] to [-1, 1], as ``shared.images.to_tensor`` does
        do_resize=True, size={"height": cfg.image_size, "width": cfg.image_size},
        do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    ).save_pretrained(out)


def write_card(out: Path, cfg: Config, metrics: dict) -> None:
    vit = out.parent / "vit-tiny-shapes" / "metrics.json"
    vit_steps = json.loads(vit.read_text()).get("steps_trained") if vit.is_file() else None
    vs = f" (vit-tiny-shapes: {vit_steps} steps)" if vit_steps else ""
    write_model_card(
        out, NAME,
        f"""A `transformers` `ResNetForImageClassification` (He et al., 2016; basic blocks) trained from scratch on
the procedural shapes dataset (`shared/data/shapes.py`, the "wide" distribution, {cfg.image_size}x{cfg.image_size} pixels),
the same data as `vit-tiny-shapes`, as the CNN it is compared with on the `cnn_vs_vit` page.

- Architecture: 7x7 stride-2 stem of {cfg.embedding_size} channels and a 3x3 stride-2 max-pool, then stages of widths
  {cfg.hidden_sizes} with {cfg.depths} basic blocks (the last two stages stride 2); global average pooling and a linear head.
  {metrics.get("parameters")} parameters.
- Data: {metrics.get("train_images", cfg.train_images)} training renders (split seed 0), validation split seed 1, test split seed 2.
- Recipe: {cfg.steps} steps of batch {cfg.batch_size}{vs}, AdamW lr {cfg.lr} (warm-up {cfg.warmup}, cosine), weight decay
  {cfg.weight_decay}, label smoothing {cfg.label_smoothing}; each image gets a random symmetry of the square (rot90 x flip),
  and {cfg.augment_fraction:.0%} of each batch blur or noise (the ViT's augmentation). No curriculum, no Outlier Exposure:
  it trained far shorter than the ViT, so the comparison favours the ViT's budget.
- `independent_renderer_accuracy`: shapes drawn by matplotlib (`shared/data/matplotlib_shapes.py`).
- Config: `{asdict(cfg)}`
""",
        metrics, f"python -m shared.training {NAME}",
    )


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    """Train on one process (the recipe has no data-parallel or gradient-accumulation path)."""
    if (grad_accum or 1) != 1 or rank_weights:
        raise ValueError("cnn-tiny-shapes trains in one process without gradient accumulation")
    cfg = cfg or Config()
    if steps is not None:
        cfg.steps = steps
    start = time.perf_counter()
    gen = seed_everything(seed)
    out = Path(out_dir)
    n_train = min(cfg.train_images, cfg.steps * cfg.batch_size)  # a short run renders no more than it sees
    images, labels, _ = ShapesDataset("train", n_train, cfg.image_size).arrays()  # (N, 64, 64, 3) uint8, (N,)
    y_train = torch.from_numpy(labels)
    val_images, val_labels, _ = ShapesDataset("val", cfg.eval_images, cfg.image_size).arrays()
    x_val, y_val = to_tensor(val_images), torch.from_numpy(val_labels)  # (M, 3, 64, 64), (M,)

    model = build(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bar = progress(cfg.steps, NAME)
    for step, idx in enumerate(random_batches(n_train, cfg.batch_size, cfg.steps, gen)):
        model.train()
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        x = _augment(to_tensor(images[idx.numpy()]), cfg.augment_fraction, gen)  # (B, 3, 64, 64)
        loss = F.cross_entropy(model(pixel_values=x).logits, y_train[idx], label_smoothing=cfg.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        bar.update(1)
        if step % 100 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            bar.write(f"step {step + 1}: loss {loss.item():.4f}, val accuracy {accuracy(model, x_val, y_val):.4f}")
    bar.close()

    model.eval()
    _save(model, out, cfg)
    from shared.models import REGISTRY

    metrics = evaluate(str(out)) if NAME in REGISTRY else {}
    metrics["val_accuracy"] = round(accuracy(model, x_val, y_val), 4)
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["steps_trained"] = cfg.steps
    metrics["train_images"] = n_train
    metrics["data_distribution"] = "wide"
    metrics["train_wall_seconds"] = round(time.perf_counter() - start, 1)
    metrics["torch_threads"] = torch.get_num_threads()
    write_card(out, cfg, metrics)
    return metrics
