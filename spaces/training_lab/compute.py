"""Training lab: train and fine-tune a real ViT on the CPU, with DeiT's knobs, and count LoRA parameters.

Everything here is a typed pure function of its arguments (and the seed): the page and the public API
call it, the tests check it against independent computations. Sources:

- ViT (Dosovitskiy et al., 2021); DeiT's recipe of mixup + cutmix, label smoothing, RandAugment and
  drop path for training ViTs on ImageNet-sized data (Touvron et al., 2021);
- learning rate: linear warm-up (Goyal et al., 2017) then cosine decay (Loshchilov & Hutter, 2017),
  with AdamW's decoupled weight decay (Loshchilov & Hutter, 2019);
- label smoothing (Szegedy et al., 2016); mixup (Zhang et al., 2018); cutmix (Yun et al., 2019);
  RandAugment (Cubuk et al., 2020); stochastic depth / drop path (Huang et al., 2016);
- LoRA (Hu et al., 2022) through ``peft``; training compute C ~ 6 N D (Kaplan et al., 2020, section 2.1)
  and model FLOPs utilisation (Chowdhery et al., 2022).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from shared import validate
from shared.data.shapes import SHAPES, SIZES, ShapesDataset
from shared.images import to_tensor
from shared.models import load, local_path

from . import options as o

CLASSES = {"shape": tuple(SHAPES), "size": tuple(SIZES)}


# --------------------------------------------------------------------------------------
#                                   Configuration
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    start: str = "pretrained"
    steps: int = o.DEFAULT_STEPS
    lr: float = o.DEFAULT_LR
    batch_size: int = o.DEFAULT_BATCH
    label_smoothing: float = o.DEFAULT_LABEL_SMOOTHING
    mixup_alpha: float = o.DEFAULT_MIXUP
    seed: int = 0
    cutmix_alpha: float = o.DEFAULT_CUTMIX
    warmup_steps: int = o.DEFAULT_WARMUP
    weight_decay: float = o.DEFAULT_WEIGHT_DECAY
    randaug_ops: int = o.DEFAULT_RANDAUG_OPS
    randaug_magnitude: int = o.DEFAULT_RANDAUG_MAGNITUDE
    drop_path: float = o.DEFAULT_DROP_PATH
    task: str = "shape"
    train_images: int = o.DEFAULT_SUBSET
    strategy: str = "full"  # "full", "linear_probe" or "lora"
    lora_rank: int = o.COMPARE_RANK


def make_config(start, steps, lr, batch_size, label_smoothing, mixup_alpha, seed, cutmix_alpha=o.DEFAULT_CUTMIX,
                warmup_steps=o.DEFAULT_WARMUP, weight_decay=o.DEFAULT_WEIGHT_DECAY, randaug_ops=o.DEFAULT_RANDAUG_OPS,
                randaug_magnitude=o.DEFAULT_RANDAUG_MAGNITUDE, drop_path=o.DEFAULT_DROP_PATH, task="shape",
                train_images=o.DEFAULT_SUBSET) -> TrainConfig:
    """A checked ``TrainConfig`` from raw values (an API call's or the page's); ``ValueError`` names the
    input and its allowed range."""
    steps = validate.integer(steps, "steps", 1, o.MAX_STEPS)
    return TrainConfig(
        start=validate.choice(start, "start", o.STARTS),
        steps=steps,
        lr=validate.number(lr, "learning rate", 0, o.MAX_LR, above=True),
        batch_size=validate.integer(batch_size, "batch size", 1, o.MAX_BATCH),
        label_smoothing=validate.number(label_smoothing, "label smoothing", 0, o.MAX_LABEL_SMOOTHING),
        mixup_alpha=validate.number(mixup_alpha, "mixup alpha", 0, o.MAX_MIX_ALPHA),
        seed=validate.integer(seed, "seed", 0, o.MAX_SEED),
        cutmix_alpha=validate.number(cutmix_alpha, "cutmix alpha", 0, o.MAX_MIX_ALPHA),
        warmup_steps=validate.integer(warmup_steps, "warm-up steps", 0, o.MAX_WARMUP),
        weight_decay=validate.number(weight_decay, "weight decay", 0, o.MAX_WEIGHT_DECAY),
        randaug_ops=validate.integer(randaug_ops, "RandAugment ops", 0, o.MAX_RANDAUG_OPS),
        randaug_magnitude=validate.integer(randaug_magnitude, "RandAugment magnitude", 0, o.MAX_RANDAUG_MAGNITUDE),
        drop_path=validate.number(drop_path, "drop path rate", 0, o.MAX_DROP_PATH),
        task=validate.choice(task, "task", o.TASKS),
        train_images=int(validate.choice(validate.integer(train_images, "training images"), "training images",
                                         o.SUBSETS)),
    )


# --------------------------------------------------------------------------------------
#                                   Schedule and loss
# --------------------------------------------------------------------------------------

def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total``: linear warm-up from peak/warmup to
    ``peak`` over ``warmup`` steps (Goyal et al., 2017), then half a cosine from ``peak`` to 0 over the
    remaining steps (Loshchilov & Hutter, 2017, with no restarts)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    rest = max(1, total - warmup)
    return 0.5 * peak * (1 + math.cos(math.pi * min(step - warmup, rest) / rest))


def soft_targets(labels: torch.Tensor, classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets with label smoothing: (1 - eps) * onehot + eps / K (Szegedy et al., 2016, section 7)."""
    onehot = F.one_hot(labels, classes).float()
    return onehot * (1 - smoothing) + smoothing / classes


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k t_k log softmax(z)_k (targets may be mixed and smoothed)."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


# --------------------------------------------------------------------------------------
#                                   Mixing and augmentation
# --------------------------------------------------------------------------------------

@dataclass
class Mixed:
    images: torch.Tensor  # (B, 3, H, W)
    targets: torch.Tensor  # (B, K) soft labels
    lam: float  # weight of each image's own label
    partner: torch.Tensor  # (B,) index of the image mixed in
    kind: str  # "none", "mixup" or "cutmix"
    box: tuple[int, int, int, int] | None = None  # cutmix's (y0, y1, x0, x1)


def mixup(x: torch.Tensor, targets: torch.Tensor, alpha: float, rng: np.random.Generator,
          gen: torch.Generator) -> Mixed:
    """mixup (Zhang et al., 2018): lam ~ Beta(alpha, alpha); x' = lam x + (1 - lam) x[perm], the same for
    the targets."""
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=gen)
    return Mixed(lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm], lam, perm, "mixup")


def cutmix(x: torch.Tensor, targets: torch.Tensor, alpha: float, rng: np.random.Generator,
           gen: torch.Generator) -> Mixed:
    """CutMix (Yun et al., 2019, section 3.1): a box of area (1 - lam) H W with lam ~ Beta(alpha, alpha),
    centred uniformly and clipped to the image, is pasted from x[perm]; lam is then recomputed from the
    pasted box's real area, and the targets mix with it."""
    _, _, h, w = x.shape
    lam = float(rng.beta(alpha, alpha))
    cut = math.sqrt(1 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    perm = torch.randperm(len(x), generator=gen)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return Mixed(out, lam * targets + (1 - lam) * targets[perm], lam, perm, "cutmix", (y0, y1, x0, x1))


def mix_batch(x: torch.Tensor, targets: torch.Tensor, mixup_alpha: float, cutmix_alpha: float,
              rng: np.random.Generator, gen: torch.Generator) -> Mixed:
    """DeiT's batch mixing (Touvron et al., 2021): mixup or cutmix, one of the two at random (p = 0.5)
    when both alphas are positive; nothing when both are 0."""
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return Mixed(x, targets, 1.0, torch.arange(len(x)), "none")
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < 0.5)
    return cutmix(x, targets, cutmix_alpha, rng, gen) if use_cutmix else mixup(x, targets, mixup_alpha, rng, gen)


def apply_op(img: torch.Tensor, op: str, magnitude: int, sign: float,
             gen: torch.Generator | None = None) -> torch.Tensor:
    """One RandAugment-style operation on an image (3, H, W) in [-1, 1] at ``magnitude`` 0..10.
    Every op keeps the shape class and its size class (the shapes' labels)."""
    m = magnitude / o.MAX_RANDAUG_MAGNITUDE
    if op == "identity":
        return img
    if op == "flip":
        return img.flip(-1)
    if op == "rotate90":
        return torch.rot90(img, 1 if sign > 0 else 3, dims=(1, 2))
    if op == "brightness":
        return (img + sign * 0.6 * m).clamp(-1, 1)
    if op == "contrast":
        mean = img.mean()
        return ((img - mean) * (1 + sign * 0.8 * m) + mean).clamp(-1, 1)
    if op == "saturation":
        grey = img.mean(0, keepdim=True)
        return ((img - grey) * (1 + sign * 0.9 * m) + grey).clamp(-1, 1)
    if op == "invert":
        return -img
    if op == "translate":
        shift = int(round(sign * 0.15 * m * img.shape[-1]))
        return torch.roll(img, shifts=(shift, shift), dims=(1, 2))
    if op == "noise":
        return (img + 0.3 * m * torch.randn(img.shape, generator=gen)).clamp(-1, 1)
    raise ValueError(f"unknown augmentation {op!r}; choose one of {list(o.RANDAUG_OPS)}")


def randaugment(x: torch.Tensor, n_ops: int, magnitude: int, gen: torch.Generator) -> tuple[torch.Tensor, list]:
    """RandAugment (Cubuk et al., 2020): each image gets ``n_ops`` operations drawn uniformly (with
    replacement) from ``RANDAUG_OPS``, all at one global ``magnitude``; returns the batch and the ops used."""
    if n_ops == 0:
        return x, [[] for _ in range(len(x))]
    out, used = [], []
    for img in x:
        picks = torch.randint(len(o.RANDAUG_OPS), (n_ops,), generator=gen).tolist()
        signs = (torch.rand(n_ops, generator=gen) < 0.5).tolist()
        ops = [o.RANDAUG_OPS[p] for p in picks]
        for op, s in zip(ops, signs, strict=True):
            img = apply_op(img, op, magnitude, 1.0 if s else -1.0, gen)
        out.append(img)
        used.append(ops)
    return torch.stack(out), used


# --------------------------------------------------------------------------------------
#                                   Drop path
# --------------------------------------------------------------------------------------

def drop_path(x: torch.Tensor, rate: float, gen: torch.Generator) -> torch.Tensor:
    """Stochastic depth on a residual branch (Huang et al., 2016): per sample, the branch output is 0 with
    probability ``rate`` and scaled by 1 / (1 - rate) otherwise, so its expectation is unchanged."""
    if rate <= 0:
        return x
    keep = 1.0 - rate
    mask = (torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), generator=gen) < keep).to(x.dtype)
    return x * mask / keep


class DropPath:
    """Drop path on every residual branch of a transformers ViT, through forward hooks.

    transformers' ``ViTLayer`` computes ``h = h + attention(ln(h))`` then ``h = h + mlp(ln(h))`` and has no
    drop path, so a hook scales each branch's output (the attention's and the MLP's) before the residual
    addition. Active in training mode only; ``rates`` rise linearly with depth from 0 to ``rate`` (DeiT).
    """

    def __init__(self, model, rate: float, gen: torch.Generator):
        self.gen = gen
        layers = _vit(model).encoder_layers
        n = len(layers)
        self.rates = [rate * i / max(1, n - 1) for i in range(n)]
        self.handles = []
        for layer, r in zip(layers, self.rates, strict=True):
            self.handles.append(layer.attention.register_forward_hook(self._hook(r)))
            self.handles.append(layer.mlp.register_forward_hook(self._hook(r)))

    def _hook(self, rate: float):
        def hook(module, args, output):
            if not module.training or rate <= 0:
                return None
            if isinstance(output, tuple):
                return (drop_path(output[0], rate, self.gen), *output[1:])
            return drop_path(output, rate, self.gen)
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@dataclass
class _VitParts:
    encoder_layers: list


def _vit(model) -> _VitParts:
    """The encoder layers of a ViTForImageClassification (also when wrapped by peft)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _VitParts(list(base.vit.layers if hasattr(base.vit, "layers") else base.vit.encoder.layer))


# --------------------------------------------------------------------------------------
#                                   Data
# --------------------------------------------------------------------------------------

def base_config() -> dict:
    """The embedded model's config.json (sizes of a scratch run too)."""
    return json.loads((local_path(o.BASE_MODEL) / "config.json").read_text())


def _labels(ds: ShapesDataset, task: str) -> np.ndarray:
    if task == "shape":
        return np.array([ds.spec(i).label for i in range(len(ds))], dtype=np.int64)
    sizes = list(SIZES)
    return np.array([sizes.index(ds.spec(i).size) for i in range(len(ds))], dtype=np.int64)


@functools.lru_cache(maxsize=6)
def dataset(split: str, n: int, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` shapes of ``split`` (samples 0..n-1, deterministic) at the model's size: images (n, 3, S, S) in
    [-1, 1] and the task's labels (n,)."""
    ds = ShapesDataset(split, length=n, size=int(base_config()["image_size"]))
    images, _, _ = ds.arrays()
    return to_tensor(images), torch.from_numpy(_labels(ds, task))


# --------------------------------------------------------------------------------------
#                                   Models
# --------------------------------------------------------------------------------------

def build_model(start: str, task: str, seed: int, strategy: str = "full", rank: int = o.COMPARE_RANK):
    """The model a run trains: a copy of the embedded ``vit-tiny-shapes`` (``pretrained``) or the same
    architecture freshly initialised from its config (``scratch``, seeded). A task other than ``shape``
    gets a new, seeded head. ``strategy``: ``full`` (every weight), ``linear_probe`` (the head only) or
    ``lora`` (rank-``rank`` adapters on q_proj and v_proj through ``peft``, plus the head)."""
    with _BUILD_LOCK:  # the initialisers draw from torch's global generator: one build at a time
        return _build_model(start, task, seed, strategy, rank)


_BUILD_LOCK = threading.Lock()


def _build_model(start: str, task: str, seed: int, strategy: str, rank: int):
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    if start == "pretrained":
        model = copy.deepcopy(load(o.BASE_MODEL, device="cpu").model)
    else:
        config = ViTConfig.from_pretrained(str(local_path(o.BASE_MODEL)))
        model = ViTForImageClassification(config)
    classes = len(CLASSES[task])
    if task != "shape":
        gen = torch.Generator().manual_seed(seed + 1)
        head = torch.nn.Linear(model.config.hidden_size, classes)
        with torch.no_grad():
            head.weight.normal_(0, 0.02, generator=gen)
            head.bias.zero_()
        model.classifier = head
        model.num_labels = classes
    model.train()
    if strategy == "linear_probe":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("classifier.")
    elif strategy == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0,
                                                 target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"]))
    return model


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((model(pixel_values=x[i:i + batch]).logits.argmax(-1) == y[i:i + batch]).sum())
    model.train(was)
    return correct / len(x)


def count_trainable(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------
#                                   Training
# --------------------------------------------------------------------------------------

@dataclass
class RunResult:
    history: list[dict] = field(default_factory=list)  # {step, loss, lr, (val_accuracy)}
    val_accuracy: float | None = None
    initial_val_accuracy: float | None = None
    seconds: float = 0.0
    steps_done: int = 0
    stopped: bool = False
    trainable: int = 0
    total: int = 0

    def stats(self, cfg: TrainConfig) -> dict:
        return {"start": cfg.start, "task": cfg.task, "strategy": cfg.strategy, "steps": cfg.steps,
                "steps_done": self.steps_done, "status": "stopped" if self.stopped else "finished",
                "val_accuracy": self.val_accuracy,
                "initial_val_accuracy": self.initial_val_accuracy, "seconds": round(self.seconds, 2),
                "trainable_params": self.trainable, "total_params": self.total,
                "val_images": o.VAL_IMAGES, "train_images": cfg.train_images, "torch_threads": torch.get_num_threads(),
                "config": asdict(cfg), "history": self.history}


def eval_steps(steps: int) -> set[int]:
    """Steps (1-based) after which validation accuracy is measured: about six times a run, at least every
    25 steps, and after the last."""
    every = max(1, min(steps // 6, 25))
    return {s for s in range(every, steps + 1, every)} | {steps}


def train(cfg: TrainConfig, on_step: Callable[[RunResult], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> RunResult:
    """Train per ``cfg`` on the CPU; ``on_step(result)`` after every step, ``should_stop()`` before each.

    Deterministic for a config on one machine: the data order (numpy, seeded), the initialisation
    (torch, seeded), the mixing, RandAugment and drop path (their own generators, seeded) all derive from
    ``cfg.seed``. Validation accuracy is measured on ``VAL_IMAGES`` held-out shapes."""
    t0 = time.perf_counter()
    x_train, y_train = dataset("train", cfg.train_images, cfg.task)
    x_val, y_val = dataset("val", o.VAL_IMAGES, cfg.task)
    classes = len(CLASSES[cfg.task])
    model = build_model(cfg.start, cfg.task, cfg.seed, cfg.strategy, cfg.lora_rank)
    hooks = DropPath(model, cfg.drop_path, torch.Generator().manual_seed(cfg.seed + 3)) if cfg.drop_path > 0 else None
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    result = RunResult()
    result.trainable, result.total = count_trainable(model)
    result.initial_val_accuracy = accuracy(model, x_val, y_val)
    order = rng.permutation(len(x_train))
    cursor = 0
    measure = eval_steps(cfg.steps)
    try:
        for step in range(cfg.steps):
            if should_stop is not None and should_stop():
                result.stopped = True
                break
            if cursor + cfg.batch_size > len(order):  # a new epoch: a fresh seeded order
                order, cursor = rng.permutation(len(x_train)), 0
            idx = torch.from_numpy(order[cursor:cursor + cfg.batch_size])
            cursor += cfg.batch_size
            x, _ = randaugment(x_train[idx], cfg.randaug_ops, cfg.randaug_magnitude, gen)
            mixed = mix_batch(x, soft_targets(y_train[idx], classes, cfg.label_smoothing), cfg.mixup_alpha,
                              cfg.cutmix_alpha, rng, gen)
            lr = lr_at(step, cfg.steps, cfg.lr, cfg.warmup_steps)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = soft_cross_entropy(model(pixel_values=mixed.images).logits, mixed.targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            row = {"step": step + 1, "loss": round(float(loss.detach()), 5), "lr": lr}
            if step + 1 in measure:
                row["val_accuracy"] = accuracy(model, x_val, y_val)
                result.val_accuracy = row["val_accuracy"]
            result.history.append(row)
            result.steps_done = step + 1
            result.seconds = time.perf_counter() - t0
            if on_step is not None:
                on_step(result)
    finally:
        if hooks is not None:
            hooks.remove()
    if result.stopped and result.steps_done and "val_accuracy" not in result.history[-1]:
        result.history[-1]["val_accuracy"] = result.val_accuracy = accuracy(model, x_val, y_val)
    if result.val_accuracy is None:
        result.val_accuracy = result.initial_val_accuracy
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------------------
#                                   Strategy comparison
# --------------------------------------------------------------------------------------

STRATEGY_LR = {"linear_probe": 1e-2, "lora": 2e-3, "full": 5e-4}  # usual orders: a head alone takes a larger lr


@functools.lru_cache(maxsize=4)
def compare_strategies(steps: int = o.COMPARE_STEPS, seed: int = 0, rank: int = o.COMPARE_RANK,
                       batch_size: int = o.COMPARE_BATCH, task: str = o.COMPARE_TASK) -> list[dict]:
    """Linear probe, LoRA and full fine-tune of the pretrained model on ``task`` (a new head), each for the
    same ``steps`` x ``batch_size`` images in the same order: trainable parameters and accuracy reached."""
    steps = validate.integer(steps, "steps", 1, o.MAX_STEPS)
    rows = []
    for strategy in ("linear_probe", "lora", "full"):
        cfg = TrainConfig(start="pretrained", steps=steps, lr=STRATEGY_LR[strategy], batch_size=batch_size,
                          label_smoothing=0.1, mixup_alpha=0.0, seed=seed, task=task, strategy=strategy,
                          lora_rank=rank)
        r = train(cfg)
        rows.append({"strategy": strategy, "trainable": r.trainable, "total": r.total,
                     "percent_trainable": round(100 * r.trainable / r.total, 3), "lr": cfg.lr, "steps": steps,
                     "batch_size": batch_size, "val_accuracy_before": r.initial_val_accuracy,
                     "val_accuracy": r.val_accuracy, "seconds": round(r.seconds, 1)})
    return rows


# --------------------------------------------------------------------------------------
#                                   LoRA counter
# --------------------------------------------------------------------------------------

def vit_b16_config():
    """ViT-B/16 as ``google/vit-base-patch16-224`` configures it (Dosovitskiy et al., 2021, Table 1: hidden
    768, 12 layers, 12 heads, MLP 3072; image 224, patch 16; 1000 ImageNet classes), written out here so
    the model can be built on the meta device with no download."""
    from transformers import ViTConfig

    return ViTConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                     image_size=224, patch_size=16, num_channels=3, qkv_bias=True, num_labels=1000)


def meta_model(name: str):
    """``ViTForImageClassification`` of ``name`` on the meta device (shapes only, no weights, no download)."""
    from transformers import ViTConfig, ViTForImageClassification

    config = vit_b16_config() if name == o.VIT_B16 else ViTConfig.from_pretrained(str(local_path(o.BASE_MODEL)))
    with torch.device("meta"):
        return ViTForImageClassification(config)


def preset_model(preset: str):
    """A ViT of ``VIT_PRESETS`` (Dosovitskiy et al., 2021, Table 1) at 224 px, 1000 classes, on the meta device."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=224, num_labels=1000, **o.VIT_PRESETS[preset])
    with torch.device("meta"):
        return ViTForImageClassification(config)


def linear_names(model) -> list[str]:
    """Names ``peft`` takes as ``target_modules``: the last part of the name of each ``nn.Linear``."""
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})


def parse_targets(target_modules, valid: list[str]) -> list[str]:
    if isinstance(target_modules, str):
        names = [t.strip() for t in target_modules.split(",") if t.strip()]
    elif isinstance(target_modules, (list, tuple)):
        names = [str(t).strip() for t in target_modules]
    else:
        names = []
    if not names:
        raise ValueError(f"target modules must be comma-separated module names; valid names: {', '.join(valid)}")
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown target modules {unknown}; valid names for this model: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def lora_params(model_name: str, rank, target_modules) -> dict:
    """Exact trainable and total parameters of ``model_name`` with LoRA (Hu et al., 2022) of ``rank`` on
    ``target_modules``, counted by ``peft`` itself (``get_nb_trainable_parameters``) on the model built on
    the meta device. Only the LoRA matrices A (r x d_in) and B (d_out x r) are trainable: no
    ``modules_to_save``, the base weights frozen."""
    from peft import LoraConfig, get_peft_model

    model_name = validate.choice(model_name, "model", o.LORA_MODELS)
    rank = validate.integer(rank, "rank", 1, o.MAX_RANK)
    model = meta_model(model_name)
    valid = linear_names(model)
    targets = parse_targets(target_modules, valid)
    adapted = [(n, m.in_features, m.out_features) for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in targets]
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=targets))
    trainable, total = peft_model.get_nb_trainable_parameters()
    return {"model": model_name, "rank": rank, "target_modules": targets, "trainable": int(trainable),
            "total": int(total), "percent": round(100 * trainable / total, 4), "adapted_linears": len(adapted),
            "valid_target_modules": valid,
            "per_module": [{"module": n, "d_in": i, "d_out": d} for n, i, d in adapted]}


# --------------------------------------------------------------------------------------
#                                   Cost of a pre-training run
# --------------------------------------------------------------------------------------

def preset_params(preset: str) -> int:
    model = preset_model(validate.choice(preset, "model", o.VIT_PRESETS))
    return sum(p.numel() for p in model.parameters())


def training_cost(params, images_seen, tokens_per_image, gpu: str, gpus, mfu) -> dict:
    """C ~ 6 N D training FLOPs (Kaplan et al., 2020, section 2.1: 2 N per token forward, 4 N backward;
    attention's sequence-length term left out), with D = images x tokens per image; time = C / (GPUs x
    dense peak x MFU). MFU: the share of the peak reached; PaLM reached 46.2 % (Chowdhery et al., 2022)."""
    params = validate.number(params, "parameters", 0, 1e13, above=True)
    images_seen = validate.number(images_seen, "images seen", 0, 1e13, above=True)
    tokens_per_image = validate.integer(tokens_per_image, "tokens per image", 1, 100_000)
    gpu = validate.choice(gpu, "GPU", o.GPUS)
    gpus = validate.integer(gpus, "GPUs", 1, o.MAX_GPUS)
    mfu = validate.number(mfu, "MFU", 0, 1, above=True)
    tokens = images_seen * tokens_per_image
    flops = 6 * params * tokens
    peak = o.GPUS[gpu]["dense"] * 1e12
    seconds = flops / (gpus * peak * mfu)
    return {"params": int(params), "images_seen": int(images_seen), "tokens_per_image": tokens_per_image,
            "tokens": tokens, "train_flops": flops, "gpu": gpu, "peak_dense_tflops": o.GPUS[gpu]["dense"],
            "peak_sparse_tflops_not_used": o.GPUS[gpu]["sparse"], "gpus": gpus, "mfu": mfu,
            "seconds": seconds, "hours": seconds / 3600, "days": seconds / 86400,
            "gpu_hours": seconds * gpus / 3600}
