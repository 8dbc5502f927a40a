"""Pieces every training recipe shares: seeding, batching, progress and the model card."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1] (mean 0.5, std 0.5 normalisation)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()  # (N, 3, H, W)
    return x / 127.5 - 1.0


def random_batches(n: int, batch_size: int, steps: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` index batches, reshuffling each epoch (drop-last)."""
    perm = torch.randperm(n, generator=gen)
    pos = 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos:pos + batch_size]
        pos += batch_size


def progress(steps: int, desc: str) -> tqdm:
    return tqdm(total=steps, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0)


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to zero (Loshchilov & Hutter, 2017)."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + np.cos(np.pi * t))


def write_model_card(out: Path, title: str, body: str, metrics: dict, command: str) -> None:
    """README.md (model card) plus metrics.json beside the weights."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    (out / "README.md").write_text(
        f"# {title}\n\n{body.strip()}\n\n## Metrics\n\n| metric | value |\n|---|---|\n{rows}\n\n"
        f"## Retrain\n\n```\n{command}\n```\n\nTrained {time.strftime('%Y-%m-%d')}; "
        "the command is deterministic (fixed seeds) on one machine; thread counts may move the last digits.\n"
    )
