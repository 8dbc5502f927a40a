"""mae-tiny-shapes: a tiny masked autoencoder (He et al., 2022) on shapes, image 64, patch 8 (an 8x8 grid).

``transformers``' ``ViTMAEForPreTraining``: the encoder sees only the visible 25% of the patches (mask
ratio 0.75), a narrow decoder fills in the rest, and the loss is the per-pixel MSE on the masked patches
in the model's normalised pixel space ([-1, 1]: mean 0.5, std 0.5). ``norm_pix_loss=False`` so the
reconstructions are pixels, not per-patch normalised targets (which would leak each masked patch's own
mean and variance into what the page shows).

Data: the "wide" shapes distribution (``shared/data/shapes.py``) with the eight symmetries of the square.

``evaluate(path)`` (``python -m shared.models eval mae-tiny-shapes``) measures, on the test split:

- ``masked_mse``: the model's masked-patch MSE at ratio 0.75, one fixed seeded mask per image;
- ``baseline_mse``: the same for filling each masked patch with the mean colour of the visible ones;
- ``linear_probe_accuracy``: a softmax regression (torch, L-BFGS) on the frozen encoder's mean-pooled patch
  tokens, no masking, trained on ``probe_train`` train-split images and tested on ``probe_test`` test images;
- ``random_encoder_probe_accuracy``: the same probe on a randomly initialised encoder of the same config;
- ``sweep``: masked MSE, baseline and probe accuracy (on visible tokens only) at eval mask ratios 0.1..0.9.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from shared.data.shapes import SHAPES, ShapesDataset
from shared.images import to_tensor
from shared.training.loop import cosine_lr, progress, random_batches, seed_everything, write_model_card


@dataclass
class Config:
    image_size: int = 64
    patch_size: int = 8  # 8x8 = 64 patches
    hidden_size: int = 96
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 384
    decoder_hidden_size: int = 64
    decoder_num_hidden_layers: int = 2
    decoder_num_attention_heads: int = 4
    decoder_intermediate_size: int = 256
    mask_ratio: float = 0.75
    # About 0.07-0.2 s per step of batch 64 on 2 CPU cores (0.9 s under heavy load): 12,000 steps, 15-40 min.
    train_images: int = 64_000
    batch_size: int = 64
    steps: int = 12_000
    # Safety stop: the loop ends after this many minutes even if steps remain (the run stays seeded; the card
    # and metrics.json record the steps actually trained). None: no cap.
    max_train_minutes: float | None = None
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    warmup: int = 100


EVAL_RATIO = 0.75
SWEEP_RATIOS = (0.1, 0.25, 0.5, 0.75, 0.9)
PROBE_TRAIN, PROBE_TEST, MSE_IMAGES = 2000, 1000, 1000

_RATIO_LOCK = threading.Lock()  # config.mask_ratio is read at call time: one ratio per call at a time


@contextmanager
def mask_ratio(model, ratio: float):
    """Run ``model`` (ViTMAEModel or ViTMAEForPreTraining) at ``ratio``: ViTMAE reads ``config.mask_ratio``
    inside ``random_masking`` (keeps ``int(L * (1 - ratio))`` patches), so it is set for the call under a lock."""
    with _RATIO_LOCK:
        config = model.config
        old = config.mask_ratio
        config.mask_ratio = float(ratio)
        try:
            yield model
        finally:
            config.mask_ratio = old


def seeded_noise(n: int, num_patches: int, seed: int) -> torch.Tensor:
    """(n, L) uniform noise from a seeded generator: ViTMAE keeps the patches with the smallest noise."""
    return torch.rand(n, num_patches, generator=torch.Generator().manual_seed(seed))


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    k = torch.randint(0, 4, (b,), generator=gen)
    return torch.stack([torch.rot90(x, q, dims=(2, 3)) for q in range(4)])[k, torch.arange(b)]


def make_config(cfg: Config):
    from transformers import ViTMAEConfig

    return ViTMAEConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=3, hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size, decoder_hidden_size=cfg.decoder_hidden_size,
        decoder_num_hidden_layers=cfg.decoder_num_hidden_layers,
        decoder_num_attention_heads=cfg.decoder_num_attention_heads,
        decoder_intermediate_size=cfg.decoder_intermediate_size, mask_ratio=cfg.mask_ratio, norm_pix_loss=False,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )


def init_positions(model, std: float = 0.02) -> None:
    """Fixed 2-D sin-cos positions in the encoder and decoder, and N(0, std) [CLS] and mask tokens (He et al., 2022).

    transformers 5.24 builds ``ViTMAEForPreTraining(config)`` with all four at zero (measured: the encoder's
    ``initialize_weights`` is skipped and the decoder's positions are zeroed). With no positions the decoder's
    mask tokens are identical, so every masked patch gets the same prediction and training settles on the mean
    colour (our first run: masked MSE 0.1262 against the mean-colour baseline's 0.127, probe at chance)."""
    from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

    g = int(model.vit.embeddings.patch_embeddings.num_patches ** 0.5)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in (model.vit.embeddings.position_embeddings, model.decoder.decoder_pos_embed):
            pos = build_2d_sinusoidal_position_embedding(g, g, param.shape[-1], cls_token=True)
            half = pos.shape[-1] // 2  # the same half swap as transformers' own initialize_weights
            param.copy_(torch.cat([pos[..., half:], pos[..., :half]], dim=-1)[None])
            param.requires_grad_(False)
        for param in (model.vit.embeddings.cls_token, model.decoder.mask_token):
            param.copy_(torch.randn(param.shape, generator=gen) * std)


# --------------------------------------------------------------------------------------
#                                   Evaluation
# --------------------------------------------------------------------------------------

def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(N, 3, H, W) -> (N, L, p*p*3), patches row-major, pixels (row, col, channel): ViTMAE's layout."""
    n, c, h, w = x.shape
    g, k = h // p, w // p
    return x.reshape(n, c, g, p, k, p).permute(0, 2, 4, 3, 5, 1).reshape(n, g * k, p * p * c)


def mean_colour_fill(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Baseline prediction: each masked patch filled with the mean colour of the visible patches.
    target (N, L, p*p*3), mask (N, L) with 1 = masked."""
    n, L, d = target.shape
    pix = target.reshape(n, L, d // 3, 3)
    vis = (1 - mask)[:, :, None, None]  # (N, L, 1, 1)
    mean = (pix * vis).sum((1, 2)) / (vis.sum((1, 2)) * (d // 3)).clamp_min(1)  # (N, 3)
    return mean[:, None, None, :].expand(n, L, d // 3, 3).reshape(n, L, d)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: mean over masked patches of the per-pixel squared error (ViTMAE's loss, He et al., 2022)."""
    per_patch = ((pred - target) ** 2).mean(-1)  # (N, L)
    return (per_patch * mask).sum(-1) / mask.sum(-1)


@torch.no_grad()
def reconstruct_batch(model, x: torch.Tensor, ratio: float, noise: torch.Tensor, batch: int = 250):
    """(pred patches, mask) for images x at ``ratio`` with ``noise``."""
    preds, masks = [], []
    with mask_ratio(model, ratio):
        for i in range(0, len(x), batch):
            out = model(pixel_values=x[i:i + batch], noise=noise[i:i + batch])
            preds.append(out.logits)
            masks.append(out.mask)
    return torch.cat(preds), torch.cat(masks)


@torch.no_grad()
def features(encoder, x: torch.Tensor, ratio: float = 0.0, seed: int = 0, batch: int = 250) -> torch.Tensor:
    """Mean-pooled patch tokens of the encoder (no [CLS]); ``ratio`` 0: every patch, in order."""
    L = encoder.embeddings.patch_embeddings.num_patches
    if ratio == 0:
        noise = torch.arange(L, dtype=torch.float32).expand(len(x), L)
    else:
        noise = seeded_noise(len(x), L, seed)
    out = []
    with mask_ratio(encoder, ratio):
        for i in range(0, len(x), batch):
            h = encoder(pixel_values=x[i:i + batch], noise=noise[i:i + batch]).last_hidden_state
            out.append(h[:, 1:].mean(1))
    return torch.cat(out)


def linear_probe(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor,
                 l2: float = 1e-3, iters: int = 200) -> float:
    """Test accuracy of multinomial logistic regression (softmax + cross-entropy, L2 ``l2``) on standardised
    features, fitted by full-batch L-BFGS from zeros (deterministic)."""
    mu, sd = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    a, b = ((f_train - mu) / sd).double(), ((f_test - mu) / sd).double()
    k = int(max(y_train.max(), y_test.max())) + 1
    w = torch.zeros(a.shape[1], k, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(a @ w + bias, y_train) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((b @ w + bias).argmax(-1) == y_test).double().mean())


def _split(split: str, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, _ = ShapesDataset(split, n, size).arrays()
    return to_tensor(images), torch.from_numpy(labels).long()


def evaluate(source: str, n: int = MSE_IMAGES, probe_train: int = PROBE_TRAIN, probe_test: int = PROBE_TEST,
             sweep: tuple[float, ...] = SWEEP_RATIOS, seed: int = 0) -> dict:
    """The eval JSON of ``python -m shared.models eval mae-tiny-shapes`` (see the module docstring)."""
    from transformers import ViTMAEForPreTraining

    torch.manual_seed(seed)
    model = ViTMAEForPreTraining.from_pretrained(source, use_safetensors=True).eval()
    size, p = model.config.image_size, model.config.patch_size
    L = (size // p) ** 2
    x_test, y_test = _split("test", max(n, probe_test), size)
    x_train, y_train = _split("train", probe_train, size)
    torch.manual_seed(seed)
    random_model = ViTMAEForPreTraining(model.config.__class__.from_dict(model.config.to_dict())).eval()
    init_positions(random_model)  # initialised as training starts (see init_positions)

    def mse_at(ratio: float) -> tuple[float, float]:
        x = x_test[:n]
        pred, mask = reconstruct_batch(model, x, ratio, seeded_noise(len(x), L, seed))
        target = patchify(x, p)
        return (float(masked_mse(pred, target, mask).mean()),
                float(masked_mse(mean_colour_fill(target, mask), target, mask).mean()))

    def probe(m, ratio: float = 0.0) -> float:
        return linear_probe(features(m.vit, x_train, ratio, seed + 1), y_train,
                            features(m.vit, x_test[:probe_test], ratio, seed + 2), y_test[:probe_test])

    mse, base = mse_at(EVAL_RATIO)
    rows = {}
    for r in sweep:
        m_r, b_r = (mse, base) if r == EVAL_RATIO else mse_at(r)
        rows[f"{r:g}"] = {"masked_mse": round(m_r, 4), "baseline_mse": round(b_r, 4),
                          "probe_accuracy_visible_only": round(probe(model, r), 4)}
    return {
        "masked_mse": round(mse, 4), "baseline_mse": round(base, 4), "mse_ratio": round(mse / base, 3),
        "eval_mask_ratio": EVAL_RATIO, "mse_images": n,
        "linear_probe_accuracy": round(probe(model), 4),
        "random_encoder_probe_accuracy": round(probe(random_model), 4),
        "probe_train_images": probe_train, "probe_test_images": probe_test, "probe_classes": len(SHAPES),
        "sweep": rows,
    }


# --------------------------------------------------------------------------------------
#                                   Training
# --------------------------------------------------------------------------------------

def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    """Single process: the tiny model trains in minutes, so the recipe has no data-parallel path."""
    from transformers import ViTImageProcessor, ViTMAEForPreTraining

    if (grad_accum or 1) != 1 or rank_weights:
        raise ValueError("mae-tiny-shapes trains in one process without gradient accumulation")
    cfg = cfg or Config()
    if steps is not None:
        cfg.steps = steps
    start = time.perf_counter()
    gen = seed_everything(seed)
    out = Path(out_dir)
    n_train = min(cfg.train_images, cfg.steps * cfg.batch_size)
    images, _, _ = ShapesDataset("train", n_train, cfg.image_size).arrays()  # (N, 64, 64, 3) uint8
    model = ViTMAEForPreTraining(make_config(cfg))
    init_positions(model)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    bar = progress(cfg.steps, "mae-tiny-shapes")
    model.train()
    loop_start, trained = time.perf_counter(), 0
    for step, idx in enumerate(random_batches(n_train, cfg.batch_size, cfg.steps, gen)):
        if cfg.max_train_minutes is not None and time.perf_counter() - loop_start > 60 * cfg.max_train_minutes:
            bar.write(f"stopping at step {step}: the {cfg.max_train_minutes}-minute cap")
            break
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        x = _augment(to_tensor(images[idx.numpy()]), gen)
        noise = torch.rand(len(x), model.vit.embeddings.patch_embeddings.num_patches, generator=gen)
        loss = model(pixel_values=x, noise=noise).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        bar.update(1)
        trained = step + 1
        if step % 50 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    model.eval()
    model.save_pretrained(out)
    ViTImageProcessor(do_resize=True, size={"height": cfg.image_size, "width": cfg.image_size}, do_normalize=True,
                      image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(out)
    train_seconds = round(time.perf_counter() - start, 1)
    small = steps is not None
    metrics = evaluate(str(out), n=100 if small else MSE_IMAGES, probe_train=200 if small else PROBE_TRAIN,
                       probe_test=100 if small else PROBE_TEST)
    metrics.update(final_train_loss=round(loss.item(), 4), steps_trained=trained, steps_planned=cfg.steps,
                   batch_size=cfg.batch_size,
                   train_images=n_train, parameters=sum(q.numel() for q in model.parameters()),
                   encoder_parameters=sum(q.numel() for q in model.vit.parameters()),
                   data_distribution="wide", train_wall_seconds=train_seconds,
                   torch_threads=torch.get_num_threads())
    write_card(out, cfg, metrics)
    return metrics


def write_card(out: Path, cfg: Config, metrics: dict) -> None:
    g = cfg.image_size // cfg.patch_size
    write_model_card(
        out, "mae-tiny-shapes",
        f"""A `transformers` `ViTMAEForPreTraining` (masked autoencoder, He et al., 2022) trained from scratch on the
"wide" procedural shapes distribution (`shared/data/shapes.py`), {cfg.image_size}x{cfg.image_size} pixels.

- Encoder: patch {cfg.patch_size} ({g}x{g} = {g * g} patches), width {cfg.hidden_size}, {cfg.num_hidden_layers} layers,
  {cfg.num_attention_heads} heads, MLP {cfg.intermediate_size}; fixed 2-D sin-cos positions.
- Decoder: width {cfg.decoder_hidden_size}, {cfg.decoder_num_hidden_layers} layers, {cfg.decoder_num_attention_heads} heads.
- Mask ratio {cfg.mask_ratio} (ViTMAE keeps `int(L * (1 - ratio))` patches), `norm_pix_loss=False`: the loss is
  the per-pixel MSE on masked patches in the [-1, 1] pixel space (mean 0.5, std 0.5).
- Recipe: {metrics.get("steps_trained")} steps (of {cfg.steps} planned) of batch {cfg.batch_size} over {metrics.get("train_images")} train-split renders, each
  with a random symmetry of the square; AdamW (0.9, 0.95) lr {cfg.lr}, warm-up {cfg.warmup}, cosine, weight decay
  {cfg.weight_decay}; one process, `torch_threads` threads.
- Evaluation (`python -m shared.models eval mae-tiny-shapes`): `masked_mse` and the mean-colour `baseline_mse` on
  {metrics.get("mse_images")} test-split images at ratio {EVAL_RATIO} (seeded masks); linear probe = softmax
  regression (L-BFGS, L2) on mean-pooled encoder patch tokens with no masking, {metrics.get("probe_train_images")}
  train-split images to fit, {metrics.get("probe_test_images")} test-split images to score;
  `random_encoder_probe_accuracy` is the same probe on a randomly initialised encoder of this config.
  `sweep`: the same model (trained at {cfg.mask_ratio}) evaluated at other mask ratios, and the probe on the visible
  tokens only; this is not the paper's Figure 5, which trains one model per ratio.
- Config: `{asdict(cfg)}`
""",
        metrics,
        "python -m shared.training mae-tiny-shapes",
    )
