"""Pieces every training recipe shares: seeding, batching, the accelerate set-up, progress and the model card.

Data parallelism follows one rule, so that N processes train the same model as one: every rank draws
the same global batch and the same augmentation from the same seeded generator, then keeps its own
slice (``rank_slice``). DDP averages the slices' gradients, which is the global batch's mean gradient.
"""

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


def random_batches(n: int, batch_size: int, steps: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` index batches, reshuffling each epoch (drop-last)."""
    perm = torch.randperm(n, generator=gen)
    pos = 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos:pos + batch_size]
        pos += batch_size


def curriculum_batches(easy: torch.Tensor, batch_size: int, steps: int, easy_steps: int, ramp_end: int,
                       gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Per step, ``batch_size`` indices drawn with replacement: each from the easy pool (``easy`` is a
    (N,) bool mask) with probability 1 until ``easy_steps``, falling linearly to 0 at ``ramp_end``,
    else from all N (a curriculum, Bengio et al., 2009)."""
    easy_pool = torch.nonzero(easy).flatten()  # (E,)
    if len(easy_pool) == 0:
        raise ValueError("the curriculum's easy pool is empty; render more training images")
    for step in range(steps):
        p_easy = min(1.0, max(0.0, (ramp_end - step) / max(1, ramp_end - easy_steps)))
        any_idx = torch.randint(0, len(easy), (batch_size,), generator=gen)  # (B,)
        easy_idx = easy_pool[torch.randint(0, len(easy_pool), (batch_size,), generator=gen)]  # (B,)
        yield torch.where(torch.rand(batch_size, generator=gen) < p_easy, easy_idx, any_idx)


def gather_with_grad(acc, x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``x`` along dim 0, rank order, keeping the autograd graph (a contrastive
    loss needs every negative; OpenCLIP's ``gather_with_grad``). One process: ``x`` itself."""
    if acc.num_processes == 1:
        return x
    import torch.distributed.nn.functional as dist_fn

    return torch.cat(dist_fn.all_gather(x), dim=0)


def check_outlier_batch(acc, outlier_batch: int, grad_accum: int) -> None:
    """Refuse, before any work, an outlier batch that does not share out evenly over processes x micro-batches."""
    if outlier_batch % (acc.num_processes * grad_accum):
        raise ValueError(f"outlier batch {outlier_batch} does not split into {acc.num_processes} processes x "
                         f"{grad_accum} accumulation steps; choose a multiple of {acc.num_processes * grad_accum}")


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of softmax(logits) to the uniform distribution: logsumexp(z) - mean(z) per row.
    Outlier Exposure's term for classifiers (Hendrycks et al., 2019, eq. 1 with their softmax loss).
    (N, C) -> ()"""
    return (torch.logsumexp(logits, -1) - logits.mean(-1)).mean()


def progress(steps: int, desc: str, disable: bool = False) -> tqdm:
    return tqdm(total=steps, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0, disable=disable)


def make_accelerator(grad_accum: int = 1, batch_size: int | None = None):
    """An ``accelerate.Accelerator``: device placement, DDP under ``accelerate launch``, mixed
    precision from ``accelerate launch --mixed_precision`` (or its config), and ``grad_accum``
    micro-batches per optimizer step. ``batch_size`` (the global batch) must split evenly.

    With no GPU, ``cpu=True``: then several processes (``accelerate launch --multi_gpu
    --num_processes N``, which runs torchrun) join over gloo. accelerate 1.15's ``--cpu`` flag
    uses its single-process launcher unless given an MPI hostfile, so it starts one process."""
    from accelerate import Accelerator

    if grad_accum < 1:
        raise ValueError(f"grad_accum must be at least 1, got {grad_accum}")
    no_gpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    acc = Accelerator(cpu=no_gpu, gradient_accumulation_steps=grad_accum)
    if batch_size is not None and batch_size % (acc.num_processes * grad_accum):
        raise ValueError(f"batch size {batch_size} does not split into {acc.num_processes} processes x "
                         f"{grad_accum} accumulation steps; choose a multiple of {acc.num_processes * grad_accum}")
    return acc


def rank_slice(acc, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's share of a global batch (every rank drew the same one), moved to its device."""
    return tuple(t[acc.process_index::acc.num_processes].to(acc.device) for t in tensors)


def micro_batches(grad_accum: int, *tensors: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """Split a rank's batch into ``grad_accum`` equal micro-batches."""
    return list(zip(*(t.chunk(grad_accum) for t in tensors), strict=True))


def save_rank_weights(acc, model, out: Path) -> None:
    """Every rank writes the weights it holds to OUT/ranks/rank<i>.safetensors, so a test (or a person)
    can check that data-parallel ranks ended identical."""
    from safetensors.torch import save_file

    folder = out / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone().contiguous() for k, v in acc.unwrap_model(model).state_dict().items()}
    save_file(state, str(folder / f"rank{acc.process_index}.safetensors"))


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to zero (Loshchilov & Hutter, 2017)."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + np.cos(np.pi * t))


def _metrics_markdown(metrics: dict) -> str:
    """Scalars as one table; each nested dict as its own table (a dict of dicts gets one column per inner key)."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items() if not isinstance(v, dict))
    parts = [f"| metric | value |\n|---|---|\n{rows}"]
    for name, table in metrics.items():
        if not isinstance(table, dict):
            continue
        if all(isinstance(v, dict) for v in table.values()):
            columns = list(dict.fromkeys(c for v in table.values() for c in v))
            body = "\n".join(f"| {k} | " + " | ".join(str(v.get(c, "")) for c in columns) + " |" for k, v in table.items())
            parts.append(f"### {name}\n\n| {name.removeprefix('by_')} | " + " | ".join(columns) + " |\n|"
                         + "---|" * (len(columns) + 1) + f"\n{body}")
        else:
            body = "\n".join(f"| {k} | {v} |" for k, v in table.items())
            parts.append(f"### {name}\n\n| metric | value |\n|---|---|\n{body}")
    return "\n\n".join(parts)


def write_model_card(out: Path, title: str, body: str, metrics: dict, command: str) -> None:
    """README.md (model card) plus metrics.json beside the weights."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(
        f"# {title}\n\n{body.strip()}\n\n## Metrics\n\n{_metrics_markdown(metrics)}\n\n"
        f"## Retrain\n\n```\n{command}\n```\n\nTrained {time.strftime('%Y-%m-%d')}; "
        "the command is deterministic (fixed seeds) on one machine; thread counts may move the last digits.\n"
    )
