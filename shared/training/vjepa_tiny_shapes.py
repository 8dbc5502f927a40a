"""vjepa-tiny-shapes: a tiny V-JEPA (Bardes et al., 2024) trained on moving-shapes clips.

V-JEPA learns by predicting, in feature space, what a video hides: the clip is cut into t x p x p tubelets
(tokens); a multi-block mask (``MultiBlockMaskGenerator``, a port of the released generator) hides a target set
of tokens that spans the whole clip in time; the *context encoder* sees only the other tokens; a narrow
*predictor* receives the context tokens plus one learned mask token per hidden position (with its 3-D position)
and predicts, for each hidden token, the *target encoder*'s layer-normed output there. The loss is the L1
distance in that latent space, averaged over the two mask types (short-range and long-range). The target
encoder is an exponential moving average (EMA) of the context encoder with momentum rising linearly from 0.998
to 1.0 (no gradient flows into it). Sources, facebookresearch/jepa at commit
51c59d518fc63c08464af6de585f78ac0c7ed4d5: ``src/masks/multiblock3d.py`` (masks), ``app/vjepa/train.py``
(``forward_target``: ``F.layer_norm`` of the target features; ``loss_fn``: ``mean(|z - h|)``; the momentum
schedule ``ema[0] + i * (ema[1] - ema[0]) / (ipe * epochs * ipe_scale)``), ``src/models/predictor.py`` (one
mask token per mask type, zero-initialised), ``src/models/utils/pos_embs.py`` (3-D sin-cos positions,
``uniform_power=True``) and ``configs/pretrain/vitl16.yaml`` (mask and EMA settings).

Sizes here: 16 frames of 32 px, tubelet 2, patch 8 -> 8 x 4 x 4 = 128 tokens; encoder width 64 x 3 layers,
predictor width 32 x 2 layers (see ``Config``). The masks are the paper's settings on this 4 x 4 grid.

``evaluate(path)`` (``python -m shared.models eval vjepa-tiny-shapes``): a linear probe for the motion direction
(8 classes) on the frozen target encoder's mean-pooled tokens (the encoder V-JEPA evaluates: its frozen-eval
code loads ``checkpoint_key='target_encoder'``), fitted on train-split clips and scored on test-split clips,
against the same probe on the untrained encoder built from the same seed.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shared.training.loop import cosine_lr, progress, random_batches, seed_everything, write_model_card
from shared.training.pretrained import SafetensorsModel

JEPA_COMMIT = "51c59d518fc63c08464af6de585f78ac0c7ed4d5"  # facebookresearch/jepa, the code this file ports


# --------------------------------------------------------------------------------------
#                                   Config
# --------------------------------------------------------------------------------------

@dataclass
class MaskConfig:
    """One mask type of ``configs/pretrain/vitl16.yaml`` (``mask:`` list entry)."""

    name: str
    num_blocks: int
    spatial_scale: tuple[float, float]
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    max_temporal_keep: float = 1.0
    max_keep: int | None = None


# The two mask types of V-JEPA's pre-training config (configs/pretrain/vitl16.yaml), in its order.
SHORT_RANGE = MaskConfig("short-range", num_blocks=8, spatial_scale=(0.15, 0.15))
LONG_RANGE = MaskConfig("long-range", num_blocks=2, spatial_scale=(0.7, 0.7))
MASK_TYPES = (SHORT_RANGE, LONG_RANGE)


@dataclass
class Config:
    frames: int = 16
    image_size: int = 32
    patch_size: int = 8
    tubelet_size: int = 2  # 8 x 4 x 4 = 128 tokens
    hidden_size: int = 64
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    mlp_ratio: int = 4
    predictor_hidden_size: int = 32  # "narrow": half the encoder's width
    predictor_num_hidden_layers: int = 2
    predictor_num_attention_heads: int = 4
    ema: tuple[float, float] = (0.998, 1.0)  # vitl16.yaml optimization.ema
    ipe_scale: float = 1.25  # vitl16.yaml: the EMA and lr schedules are stretched over 1.25x the real steps
    # Measured: 0.06 s per step of batch 16 on 8 uncontended CPU threads (5000 steps: 308 s), 0.2-0.5 s on 2
    # shared cores (17-40 min). 2000 steps left the all-token probe at 0.26 against 0.23 untrained; 5000: 0.39.
    train_clips: int = 4096
    batch_size: int = 16
    steps: int = 5000
    lr: float = 6e-4
    weight_decay: float = 0.04  # vitl16.yaml's starting weight decay
    warmup: int = 100
    clip_grad: float = 10.0  # vitl16.yaml
    max_train_minutes: float | None = 45.0  # safety stop; metrics.json records the steps actually trained
    seed: int = 0

    @property
    def grid(self) -> tuple[int, int, int]:
        return (self.frames // self.tubelet_size, self.image_size // self.patch_size,
                self.image_size // self.patch_size)


def model_config(cfg: Config) -> dict:
    """The HF-style config.json of the model (architecture and the seed its weights were initialised from)."""
    keys = ("frames", "image_size", "patch_size", "tubelet_size", "hidden_size", "num_hidden_layers",
            "num_attention_heads", "mlp_ratio", "predictor_hidden_size", "predictor_num_hidden_layers",
            "predictor_num_attention_heads", "seed")
    c = {"model_type": "vjepa-tiny", "architectures": ["VJEPA"], **{k: getattr(cfg, k) for k in keys}}
    c["ema"] = list(cfg.ema)
    c["ipe_scale"] = cfg.ipe_scale
    c["masks"] = [asdict(m) for m in MASK_TYPES]
    c["jepa_commit"] = JEPA_COMMIT
    return c


# --------------------------------------------------------------------------------------
#                 Masks: a port of src/masks/multiblock3d.py (_MaskGenerator)
# --------------------------------------------------------------------------------------

@dataclass
class MultiBlockMaskGenerator:
    """``_MaskGenerator`` of facebookresearch/jepa ``src/masks/multiblock3d.py`` for one mask type, on a
    ``duration x height x width`` token grid. Differences, both for reproducibility: one seeded
    ``torch.Generator`` drives every draw (the original seeds the block *size* with an iteration counter and
    draws block *positions* from torch's global generator), and the resampling loop gives up after
    ``max_tries`` (the original loops forever when every draw covers the whole grid)."""

    duration: int
    height: int
    width: int
    cfg: MaskConfig
    max_tries: int = 1000
    max_context_duration: int = field(init=False)

    def __post_init__(self):
        # "Context mask will only span the first X frames" (1.0 in the config: the whole clip)
        self.max_context_duration = max(1, int(self.duration * self.cfg.max_temporal_keep))

    def sample_block_size(self, g: torch.Generator) -> tuple[int, int, int]:
        """``_sample_block_size``: (t, h, w) of every block of this call."""
        min_t, max_t = self.cfg.temporal_scale
        temporal_mask_scale = min_t + torch.rand(1, generator=g).item() * (max_t - min_t)
        t = max(1, int(self.duration * temporal_mask_scale))
        min_s, max_s = self.cfg.spatial_scale
        spatial_mask_scale = min_s + torch.rand(1, generator=g).item() * (max_s - min_s)
        spatial_num_keep = int(self.height * self.width * spatial_mask_scale)
        min_ar, max_ar = self.cfg.aspect_ratio
        aspect_ratio = min_ar + torch.rand(1, generator=g).item() * (max_ar - min_ar)
        h = int(round(math.sqrt(spatial_num_keep * aspect_ratio)))
        w = int(round(math.sqrt(spatial_num_keep / aspect_ratio)))
        return t, min(h, self.height), min(w, self.width)

    def sample_block_mask(self, size: tuple[int, int, int], g: torch.Generator) -> torch.Tensor:
        """``_sample_block_mask``: int32 (T, H, W), 0 inside one block (hidden), 1 elsewhere."""
        t, h, w = size
        top = int(torch.randint(0, self.height - h + 1, (1,), generator=g))
        left = int(torch.randint(0, self.width - w + 1, (1,), generator=g))
        start = int(torch.randint(0, self.duration - t + 1, (1,), generator=g))
        mask = torch.ones((self.duration, self.height, self.width), dtype=torch.int32)
        mask[start:start + t, top:top + h, left:left + w] = 0
        if self.max_context_duration < self.duration:
            mask[self.max_context_duration:, :, :] = 0
        return mask

    def context_masks(self, batch_size: int, g: torch.Generator) -> tuple[list[torch.Tensor], tuple[int, int, int]]:
        """``__call__`` before the index lists: one block size per call, then per clip the product of
        ``num_blocks`` block masks (1 = context, 0 = target), resampled while it leaves no context."""
        size = self.sample_block_size(g)
        masks = []
        for _ in range(batch_size):
            for _ in range(self.max_tries):
                mask_e = torch.ones((self.duration, self.height, self.width), dtype=torch.int32)
                for _ in range(self.cfg.num_blocks):
                    mask_e *= self.sample_block_mask(size, g)
                if mask_e.any():  # empty_context = len(mask_e) == 0
                    masks.append(mask_e)
                    break
            else:
                raise ValueError(f"{self.cfg.name} masks of {size[1]}x{size[2]} blocks leave no context on a "
                                 f"{self.height}x{self.width} grid in {self.max_tries} draws; use a finer grid")
        return masks, size

    def __call__(self, batch_size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(context indices (B, Ke), target indices (B, Kp)) into the flattened T*H*W tokens, each clip's
        lists cut to the batch's shortest, as the original collator does (``cm[:min_keep]``)."""
        masks, _ = self.context_masks(batch_size, g)
        enc = [torch.nonzero(m.flatten()).squeeze(1) for m in masks]
        pred = [torch.argwhere(m.flatten() == 0).squeeze(1) for m in masks]
        keep_enc = min(len(e) for e in enc)
        if self.cfg.max_keep is not None:
            keep_enc = min(keep_enc, self.cfg.max_keep)
        keep_pred = min(len(p) for p in pred)
        return torch.stack([e[:keep_enc] for e in enc]), torch.stack([p[:keep_pred] for p in pred])


# --------------------------------------------------------------------------------------
#                                   Model
# --------------------------------------------------------------------------------------

def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """``get_1d_sincos_pos_embed_from_grid`` (pos_embs.py): (M,) positions -> (M, dim), sin then cos."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=float) / (dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_3d(dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """``get_3d_sincos_pos_embed(..., uniform_power=True)`` for a (T, H, W) grid -> (T*H*W, dim), tokens in
    (t, h, w) order: each axis gets ``ceil(dim / 6) * 2`` channels, [time, height, width], cut to ``dim``."""
    t, h, w = grid
    gd, gh, gw = np.meshgrid(np.arange(t, dtype=float), np.arange(h, dtype=float), np.arange(w, dtype=float),
                             indexing="ij")
    d = int(np.ceil(dim / 6) * 2)
    emb = np.concatenate([sincos_1d(d, gd), sincos_1d(d, gh), sincos_1d(d, gw)], axis=1)[:, :dim]
    return torch.from_numpy(emb).float()


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``apply_masks``: (B, N, D) tokens, (B, K) indices -> (B, K, D)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) (GELU), as in the ViT."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """Video ViT: Conv3d tubelet embedding (kernel = stride = (t, p, p)), fixed 3-D sin-cos positions,
    pre-norm blocks, final LayerNorm. ``keep`` (B, K): run on those tokens only (the context)."""

    def __init__(self, c: dict):
        super().__init__()
        self.grid = (c["frames"] // c["tubelet_size"], c["image_size"] // c["patch_size"],
                     c["image_size"] // c["patch_size"])
        p, t, d = c["patch_size"], c["tubelet_size"], c["hidden_size"]
        self.patch_embed = nn.Conv3d(3, d, kernel_size=(t, p, p), stride=(t, p, p))
        self.register_buffer("pos_embed", sincos_3d(d, self.grid)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(d, c["num_attention_heads"], c["mlp_ratio"])
                                    for _ in range(c["num_hidden_layers"]))
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> (B, N, D) embedded tubelets with positions, (t, h, w) order."""
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        z = self.tokens(x)
        if keep is not None:
            z = gather_tokens(z, keep)
        for blk in self.blocks:
            z = blk(z)
        return self.norm(z)


class Predictor(nn.Module):
    """The narrow predictor (``src/models/predictor.py``): context tokens projected to its width plus their
    positions, one learned mask token per target position (one per mask type, zero-initialised) plus its
    position; blocks, LayerNorm, projection back to the encoder's width; outputs at the target positions."""

    def __init__(self, c: dict, num_mask_tokens: int = len(MASK_TYPES)):
        super().__init__()
        grid = (c["frames"] // c["tubelet_size"], c["image_size"] // c["patch_size"],
                c["image_size"] // c["patch_size"])
        d, dp = c["hidden_size"], c["predictor_hidden_size"]
        self.embed = nn.Linear(d, dp)
        self.mask_tokens = nn.Parameter(torch.zeros(num_mask_tokens, dp))
        self.register_buffer("pos_embed", sincos_3d(dp, grid)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(dp, c["predictor_num_attention_heads"], c["mlp_ratio"])
                                    for _ in range(c["predictor_num_hidden_layers"]))
        self.norm = nn.LayerNorm(dp, eps=1e-6)
        self.proj = nn.Linear(dp, d)

    def forward(self, z: torch.Tensor, ctx: torch.Tensor, tgt: torch.Tensor, mask_index: int) -> torch.Tensor:
        b = z.shape[0]
        pos = self.pos_embed.expand(b, -1, -1)
        x = self.embed(z) + gather_tokens(pos, ctx)
        m = self.mask_tokens[mask_index].expand(b, tgt.shape[1], -1) + gather_tokens(pos, tgt)
        x = torch.cat([x, m], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.proj(self.norm(x)[:, z.shape[1]:])


class VJEPA(SafetensorsModel, nn.Module):
    """Context encoder, EMA target encoder (a copy at initialisation; never given gradients) and predictor."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.encoder = Encoder(config)
        self.predictor = Predictor(config)
        self.target_encoder = copy.deepcopy(self.encoder)
        for q in self.target_encoder.parameters():
            q.requires_grad_(False)

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.encoder.grid

    @torch.no_grad()
    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """``forward_target``: the target encoder on every token, layer-normed over features (no affine)."""
        h = self.target_encoder(x)
        return F.layer_norm(h, (h.size(-1),))

    def predict(self, x: torch.Tensor, ctx: torch.Tensor, tgt: torch.Tensor, mask_index: int) -> torch.Tensor:
        """``forward_context``: context encoder on ``ctx`` tokens, predictor at ``tgt`` positions -> (B, Kt, D)."""
        return self.predictor(self.encoder(x, ctx), ctx, tgt, mask_index)

    @staticmethod
    def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``loss_fn`` with ``loss_exp = 1``: mean |z - h| over targets and features."""
        return torch.mean(torch.abs(pred - target))

    @torch.no_grad()
    def ema_update(self, momentum: float) -> None:
        """target <- m * target + (1 - m) * context, parameter by parameter."""
        for q, k in zip(self.encoder.parameters(), self.target_encoder.parameters(), strict=True):
            k.mul_(momentum).add_((1.0 - momentum) * q.detach())

    @classmethod
    def from_config(cls, config: dict) -> VJEPA:
        return cls(config)


def momentum_schedule(steps: int, ema: tuple[float, float] = (0.998, 1.0), ipe_scale: float = 1.25) -> np.ndarray:
    """V-JEPA's EMA momentum per step (``app/vjepa/train.py``): ``ema[0] + i * (ema[1] - ema[0]) /
    (steps * ipe_scale)`` for i = 0..steps-1 (stretched by ``ipe_scale``, so it ends below ``ema[1]``)."""
    i = np.arange(steps, dtype=float)
    return ema[0] + i * (ema[1] - ema[0]) / (steps * ipe_scale)


def clips_to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> float (N, 3, T, H, W) in [-1, 1] (mean 0.5, std 0.5, as every model here)."""
    x = torch.from_numpy(np.ascontiguousarray(clips))
    return x.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def jepa_loss(model: VJEPA, x: torch.Tensor, masks: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The V-JEPA loss of a batch: mean over mask types of the L1 between the predictor's outputs and the
    layer-normed target features at the target tokens."""
    h = model.targets(x)
    losses = [model.l1(model.predict(x, ctx, tgt, i), gather_tokens(h, tgt)) for i, (ctx, tgt) in enumerate(masks)]
    return sum(losses) / len(losses)


# --------------------------------------------------------------------------------------
#                                   Evaluation
# --------------------------------------------------------------------------------------

PROBE_TRAIN, PROBE_TEST = 2000, 1000


@torch.no_grad()
def features(encoder: Encoder, x: torch.Tensor, batch: int = 200, pool: bool = True) -> torch.Tensor:
    """Output tokens of ``encoder`` on every token (no masking): mean-pooled (N, D), or with ``pool=False``
    every token's features concatenated in (t, h, w) order, (N, T*H*W*D): a linear probe on those can read
    where and when, which a mean over tokens throws away."""
    out = []
    for i in range(0, len(x), batch):
        z = encoder(x[i:i + batch])
        out.append(z.mean(1) if pool else z.flatten(1))
    return torch.cat(out)


def linear_probe(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor,
                 classes: int, l2: float = 1e-3, iters: int = 300) -> float:
    """Test accuracy of a softmax regression (cross-entropy + L2) on standardised features, fitted by
    full-batch L-BFGS from zeros (deterministic)."""
    mu, sd = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    a, b = ((f_train - mu) / sd).double(), ((f_test - mu) / sd).double()
    w = torch.zeros(a.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ w + bias, y_train) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((b @ w + bias).argmax(-1) == y_test).double().mean())


def random_model(config: dict) -> VJEPA:
    """The untrained model: built right after seeding torch with the training seed, as ``train`` does."""
    torch.manual_seed(int(config.get("seed", 0)))
    return VJEPA(config).eval()


def evaluate(source: str, probe_train: int = PROBE_TRAIN, probe_test: int = PROBE_TEST) -> dict:
    """The eval JSON of ``python -m shared.models eval vjepa-tiny-shapes`` (see the module docstring)."""
    from shared.data.moving_shapes import DIRECTIONS, MovingShapesDataset

    model = VJEPA.from_pretrained(source)
    c = model.config
    tr, y_tr, _ = MovingShapesDataset("train", probe_train, c["frames"], c["image_size"]).arrays()
    te, y_te, _ = MovingShapesDataset("test", probe_test, c["frames"], c["image_size"]).arrays()
    x_tr, x_te = clips_to_tensor(tr), clips_to_tensor(te)
    y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)
    k = len(DIRECTIONS)

    def probe(enc: Encoder, pool: bool = True) -> float:
        return linear_probe(features(enc, x_tr, pool=pool), y_tr, features(enc, x_te, pool=pool), y_te, k)

    rand = random_model(c)
    return {
        "direction_probe_accuracy": round(probe(model.target_encoder), 4),
        "random_encoder_direction_probe_accuracy": round(probe(rand.target_encoder), 4),
        "context_encoder_direction_probe_accuracy": round(probe(model.encoder), 4),
        "all_tokens_direction_probe_accuracy": round(probe(model.target_encoder, pool=False), 4),
        "random_encoder_all_tokens_direction_probe_accuracy": round(probe(rand.target_encoder, pool=False), 4),
        "chance": round(1 / k, 4), "probe_classes": k, "probe_train_clips": probe_train,
        "probe_test_clips": probe_test, "probe_features": "mean-pooled target-encoder tokens, no masking",
        "all_tokens_probe_features": "every target-encoder token's features concatenated (t, h, w order)",
    }


# --------------------------------------------------------------------------------------
#                                   Training
# --------------------------------------------------------------------------------------

def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    """Train, save, evaluate and write the card (one process)."""
    from shared.data.moving_shapes import MovingShapesDataset

    if (grad_accum or 1) != 1 or rank_weights:
        raise ValueError("vjepa-tiny-shapes trains in one process without gradient accumulation")
    cfg = cfg or Config()
    if steps is not None:
        cfg.steps = steps
    cfg.seed = seed
    start = time.perf_counter()
    gen = seed_everything(seed)
    out = Path(out_dir)
    n_train = min(cfg.train_clips, max(cfg.batch_size, cfg.steps * cfg.batch_size))
    clips, _, _ = MovingShapesDataset("train", n_train, cfg.frames, cfg.image_size).arrays()
    model = VJEPA(model_config(cfg))  # built right after seeding: random_model() rebuilds this init
    t, h, w = model.grid
    generators = [MultiBlockMaskGenerator(t, h, w, m) for m in MASK_TYPES]
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999))
    schedule_len = int(cfg.steps * cfg.ipe_scale)
    momenta = momentum_schedule(cfg.steps, cfg.ema, cfg.ipe_scale)
    bar = progress(cfg.steps, "vjepa-tiny-shapes")
    model.train()
    loop_start, trained, curve = time.perf_counter(), 0, []
    for step, idx in enumerate(random_batches(n_train, cfg.batch_size, cfg.steps, gen)):
        if cfg.max_train_minutes is not None and time.perf_counter() - loop_start > 60 * cfg.max_train_minutes:
            bar.write(f"stopping at step {step}: the {cfg.max_train_minutes}-minute cap")
            break
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, schedule_len, cfg.lr, cfg.warmup)
        x = clips_to_tensor(clips[idx.numpy()])
        loss = jepa_loss(model, x, [g(len(x), gen) for g in generators])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
        model.ema_update(float(momenta[step]))
        bar.update(1)
        trained = step + 1
        if step % 25 == 0 or step == cfg.steps - 1:
            curve.append([step, round(loss.item(), 4)])
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    model.eval()
    model.save_pretrained(out)
    train_seconds = round(time.perf_counter() - start, 1)
    small = steps is not None and steps < 100
    metrics = evaluate(str(out), probe_train=64 if small else PROBE_TRAIN, probe_test=32 if small else PROBE_TEST)
    metrics.update(final_train_loss=round(loss.item(), 4), loss_curve=curve, steps_trained=trained,
                   steps_planned=cfg.steps, batch_size=cfg.batch_size, train_clips=n_train,
                   final_momentum=round(float(momenta[trained - 1]), 6),
                   parameters=sum(q.numel() for q in model.parameters()),
                   encoder_parameters=sum(q.numel() for q in model.encoder.parameters()),
                   predictor_parameters=sum(q.numel() for q in model.predictor.parameters()),
                   train_wall_seconds=train_seconds, torch_threads=torch.get_num_threads())
    write_card(out, cfg, metrics)
    return metrics


def write_card(out: Path, cfg: Config, metrics: dict) -> None:
    t, h, w = cfg.grid
    m = {k: v for k, v in metrics.items() if k != "loss_curve"}
    write_model_card(
        out, "vjepa-tiny-shapes",
        f"""A tiny V-JEPA (Bardes et al., 2024) trained from scratch on moving-shapes clips
(`shared/data/moving_shapes.py`, train split), {cfg.frames} frames of {cfg.image_size}x{cfg.image_size} px.
Plain PyTorch modules in `shared/training/vjepa_tiny_shapes.py` (`VJEPA`), saved as `config.json` +
`model.safetensors`; they port facebookresearch/jepa at commit {JEPA_COMMIT}.

- Tokens: tubelets {cfg.tubelet_size}x{cfg.patch_size}x{cfg.patch_size} -> a {t}x{h}x{w} grid ({t * h * w} tokens), fixed
  3-D sin-cos positions (`uniform_power=True`).
- Context encoder and EMA target encoder: width {cfg.hidden_size}, {cfg.num_hidden_layers} pre-norm blocks,
  {cfg.num_attention_heads} heads; predictor: width {cfg.predictor_hidden_size}, {cfg.predictor_num_hidden_layers}
  blocks, one zero-initialised mask token per mask type.
- Masks: V-JEPA's two multi-block types (configs/pretrain/vitl16.yaml) on this grid: short-range = union of 8
  blocks of spatial scale 0.15, long-range = union of 2 blocks of scale 0.7, aspect ratio 0.75-1.5, every block
  spanning all {t} time steps; each type is its own target with its complement as the context.
- Loss: L1 between the predictor's outputs and the layer-normed target-encoder features on the target tokens,
  averaged over the two types. EMA momentum {cfg.ema[0]} -> {cfg.ema[1]} linear over `steps x {cfg.ipe_scale}`
  (ends at {metrics.get("final_momentum")}).
- Recipe: {metrics.get("steps_trained")} steps (of {cfg.steps} planned) of batch {cfg.batch_size} over
  {metrics.get("train_clips")} train clips; AdamW lr {cfg.lr}, warm-up {cfg.warmup}, cosine over the stretched
  schedule, weight decay {cfg.weight_decay}, gradient clip {cfg.clip_grad}; seed {cfg.seed}.
- Evaluation (`python -m shared.models eval vjepa-tiny-shapes`): linear probe (softmax regression, L-BFGS, L2)
  for the motion direction (8 classes) on the frozen target encoder's mean-pooled tokens,
  {metrics.get("probe_train_clips")} train clips to fit, {metrics.get("probe_test_clips")} test clips to score,
  against the same probe on the untrained encoder of the same seed; `all_tokens_*`: the same probe on every
  token's features concatenated instead of their mean (a mean over tokens discards where and when, i.e. motion).
- Config: `{asdict(cfg)}`
""",
        m,
        "python -m shared.training vjepa-tiny-shapes",
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")  # the card omits the curve; the JSON keeps it
