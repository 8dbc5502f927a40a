"""vq-tiny-shapes: a tiny VQ-VAE that turns a 32x32 shape image into an 8x8 grid of discrete tokens.

VQ-VAE (van den Oord et al., 2017, "Neural Discrete Representation Learning"): a convolutional
encoder maps the image to an 8x8 grid of ``code_dim``-dimensional vectors; each vector is replaced by
its nearest entry of a learned codebook of ``codebook_size`` codes (the token is that entry's index);
a convolutional decoder draws the image back from the chosen entries. The loss is

    |x - x̂|²  +  |sg[z] - e|²  +  β |z - sg[e]|²

(reconstruction, codebook, and β-weighted commitment terms; sg = stop-gradient; gradients pass the
quantiser straight through). Codes that the encoder stops choosing are restarted on encoder outputs of
the current batch ("dead-code restarts", as in Dhariwal et al., 2020, Jukebox), so the codebook is used.

The model is a small ``torch.nn.Module`` saved as ``config.json`` + ``model.safetensors``
(``VQVAE.save_pretrained`` / ``VQVAE.from_pretrained``). diffusers' ``VQModel`` was measured first:
3.4 s per batch of 64 on this shared 2-core CPU, several times the model below: too slow to train here.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.training.loop import cosine_lr, progress, random_batches, seed_everything, write_model_card
from shared.training.pretrained import SafetensorsModel


@dataclass
class Config:
    image_size: int = 32
    grid: int = 8  # 8x8 tokens: each covers a 4x4-pixel patch
    channels: int = 32  # encoder/decoder width (2x at the 8x8 grid) (64 took about twice as long per step here)
    codebook_size: int = 1024
    code_dim: int = 8  # low-dimensional codes are easier to keep in use (Yu et al., 2022, ViT-VQGAN)
    beta: float = 0.25  # commitment weight (van den Oord et al., 2017)
    train_images: int = 20_000  # the first N training-split images of the "wide" distribution
    batch_size: int = 64
    steps: int = 4000
    lr: float = 3e-3
    warmup: int = 30
    usage_decay: float = 0.99  # per-step decay of each code's running use count
    restart_every: int = 10  # dead-code restarts every N steps...
    restart_below: float = 0.05  # ...of codes whose running count fell below this
    restart_until: float = 0.85  # no restarts in the last 15% of training: the decoder settles


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class VQVAE(SafetensorsModel, nn.Module):
    """Encoder (two stride-2 convs + 2 residual blocks) -> nearest-code quantiser -> decoder (2 residual
    blocks, then nearest-neighbour upsampling + 3x3 conv twice).
    Pixels in [-1, 1], (B, 3, 32, 32) -> tokens (B, 8, 8) in [0, codebook_size)."""

    def __init__(self, image_size: int = 32, grid: int = 8, channels: int = 64, codebook_size: int = 1024,
                 code_dim: int = 16, **_: object):
        super().__init__()
        if image_size // grid != 4:
            raise ValueError(f"this architecture downsamples by 4: image_size / grid must be 4, got {image_size}/{grid}")
        self.config = {"model_type": "vq-vae", "image_size": image_size, "grid": grid, "channels": channels,
                       "codebook_size": codebook_size, "code_dim": code_dim}
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.ReLU(), nn.Conv2d(c, 2 * c, 4, 2, 1),
            _Residual(2 * c), _Residual(2 * c), nn.ReLU(), nn.Conv2d(2 * c, code_dim, 1),
        )
        self.codebook = nn.Embedding(codebook_size, code_dim)
        nn.init.uniform_(self.codebook.weight, -1 / codebook_size, 1 / codebook_size)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, 2 * c, 3, padding=1), _Residual(2 * c), _Residual(2 * c), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * c, c, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, 3, 3, padding=1),
        )  # nearest upsampling + conv, as VQGAN's decoder (Esser et al., 2021): transposed convs left a checkerboard

    @property
    def codebook_size(self) -> int:
        return self.config["codebook_size"]

    @property
    def grid(self) -> int:
        return self.config["grid"]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> continuous codes (B, D, g, g)."""
        return self.encoder(x)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, g, g) -> the index of the nearest codebook entry at each position, (B, g, g)."""
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)  # (B*g*g, D)
        return torch.cdist(flat, self.codebook.weight).argmin(1).view(b, h, w)

    def lookup(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, g, g) ints -> the codebook entries, (B, D, g, g)."""
        return self.codebook(tokens).permute(0, 3, 1, 2)

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, g, g) ints -> images (B, 3, H, W), about [-1, 1]."""
        return self.decoder(self.lookup(tokens))

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> tokens (B, g, g)."""
        return self.nearest(self.encode(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (reconstruction, codebook loss, commitment loss, tokens (B, g, g))."""
        z = self.encode(x)  # (B, D, g, g)
        tokens = self.nearest(z)
        e = self.lookup(tokens)  # (B, D, g, g)
        codebook_loss = ((e - z.detach()) ** 2).mean()
        commitment = ((z - e.detach()) ** 2).mean()
        quantized = z + (e - z).detach()  # straight-through estimator
        return self.decoder(quantized), codebook_loss, commitment, tokens


def training_images(cfg: Config) -> torch.Tensor:
    """The first ``train_images`` training-split images of the wide distribution, (N, 3, H, W) in [-1, 1]."""
    from shared.data.shapes import ShapesDataset
    from shared.images import to_tensor

    images, _, _ = ShapesDataset("train", cfg.train_images, cfg.image_size, distribution="wide").arrays()
    return to_tensor(images)


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    """Train, save, evaluate and write the card. Single process (``grad_accum``/``rank_weights`` are
    accepted for the CLI's sake and must stay at their defaults)."""
    if (grad_accum or 1) != 1 or rank_weights:
        raise ValueError("vq-tiny-shapes trains in one process without gradient accumulation")
    cfg = cfg or Config()
    if steps is not None:
        cfg.steps = steps
    start = time.perf_counter()
    gen = seed_everything(seed)
    x_train = training_images(cfg)
    model = VQVAE(**asdict(cfg))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    usage = torch.zeros(cfg.codebook_size)  # running use count per code (unused codes restart at the first check)
    restarts = 0
    bar = progress(cfg.steps, "vq-tiny-shapes")
    for step, idx in enumerate(random_batches(len(x_train), cfg.batch_size, cfg.steps, gen)):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        x = x_train[idx]
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if step == 0:  # start the codebook on encoder outputs, not near zero
            with torch.no_grad():
                z = model.encode(x).permute(0, 2, 3, 1).reshape(-1, cfg.code_dim)
                pick = torch.randint(len(z), (cfg.codebook_size,), generator=gen)
                model.codebook.weight.copy_(z[pick])
        recon, codebook_loss, commitment, tokens = model(x)
        mse = ((recon - x) ** 2).mean()
        loss = mse + codebook_loss + cfg.beta * commitment
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            usage.mul_(cfg.usage_decay).add_(torch.bincount(tokens.flatten(), minlength=cfg.codebook_size)
                                             * (1 - cfg.usage_decay))
            if (step + 1) % cfg.restart_every == 0 and step < cfg.restart_until * cfg.steps:
                dead = (usage < cfg.restart_below).nonzero().flatten()
                if len(dead):
                    z = model.encode(x).permute(0, 2, 3, 1).reshape(-1, cfg.code_dim)
                    pick = torch.randint(len(z), (len(dead),), generator=gen)
                    model.codebook.weight[dead] = z[pick] + 0.01 * torch.randn(len(dead), cfg.code_dim, generator=gen)
                    usage[dead] = 1.0
                    restarts += len(dead)
        bar.update(1)
        if step % 25 == 0 or step == cfg.steps - 1:
            psnr = 10 * np.log10(4 / max(mse.item(), 1e-12))  # range 2 in [-1, 1]
            bar.set_postfix(psnr=f"{psnr:.1f}", live=int((usage >= cfg.restart_below).sum()), restarts=restarts)
    bar.close()
    model.eval()
    out = Path(out_dir)
    model.save_pretrained(out)

    from shared.models import evaluate  # the same evaluation as `python -m shared.models eval`

    metrics = evaluate("vq-tiny-shapes", path=out)
    metrics.pop("model", None)
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["train_steps"] = cfg.steps
    metrics["codes_restarted"] = restarts
    metrics["train_wall_seconds"] = round(time.perf_counter() - start, 1)
    metrics["torch_threads"] = torch.get_num_threads()
    write_card(out, cfg, metrics)
    return metrics


def write_card(out: Path, cfg: Config, metrics: dict) -> None:
    write_model_card(
        out, "vq-tiny-shapes",
        f"""A VQ-VAE (van den Oord et al., 2017) trained from scratch on the procedural shapes dataset
(`shared/data/shapes.py`, "wide" distribution): a {cfg.image_size}x{cfg.image_size} image becomes a
{cfg.grid}x{cfg.grid} grid of tokens (each covers a {cfg.image_size // cfg.grid}x{cfg.image_size // cfg.grid}-pixel patch),
each an index into a codebook of {cfg.codebook_size} entries of dimension {cfg.code_dim}.

- Architecture: conv encoder (stride-2 4x4 convs to width {cfg.channels} then {2 * cfg.channels}, two residual blocks,
  1x1 to {cfg.code_dim}), nearest-neighbour quantiser, decoder with two residual blocks and nearest upsampling + conv. A plain
  `torch.nn.Module` (`shared/training/vq_tiny_shapes.py: VQVAE`), saved as `config.json` + `model.safetensors`.
- Loss: |x - x̂|² + |sg[z] - e|² + {cfg.beta}·|z - sg[e]|² (commitment weight β = {cfg.beta}), straight-through gradients.
- Codebook use: codes whose running use count (decay {cfg.usage_decay} per step) falls below {cfg.restart_below} are
  restarted on encoder outputs of the batch every {cfg.restart_every} steps, up to {int(cfg.restart_until * 100)}% of training.
- Data: the first {cfg.train_images} training-split images, horizontal flips; {cfg.steps} steps of batch {cfg.batch_size},
  Adam lr {cfg.lr} (warm-up {cfg.warmup}, cosine).
- Metrics: `psnr` is the mean over test images of 10·log10(255² / MSE) on uint8 pixels; `codebook_usage` is the
  share of the {cfg.codebook_size} codes chosen at least once on the test split; `independent_renderer_psnr` is the
  same PSNR on shapes drawn by matplotlib (`shared/data/matplotlib_shapes.py`), a renderer it never saw.
- Config: `{asdict(cfg)}`
""",
        metrics,
        "python -m shared.training vq-tiny-shapes",
    )
