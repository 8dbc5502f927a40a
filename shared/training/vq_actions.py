"""vq-actions: a residual vector-quantised (VQ) action tokenizer, a codebook learned on action chunks.

The third way to turn a robot action chunk into tokens, beside uniform binning (RT-2 / OpenVLA) and
FAST (DCT + BPE). A (T, D) chunk is

1. normalised per dimension with the training set's 1st/99th percentiles (lo -> -1, hi -> +1, as
   OpenVLA and FAST normalise; the bounds are stored with the codebook);
2. cut along time into T / ``patch`` segments of ``patch`` steps per dimension; each segment of one
   dimension (``patch`` values) is one latent vector, and every dimension shares the codebooks (as
   binning shares its 256 tokens). A first trial coded 5 steps of all 7 dimensions jointly (35 values a
   vector): 20% mean error at 10 tokens per chunk and 5.6% at 40, against 3.6% at 35 tokens here;
3. replaced by its nearest entry of codebook 1 (the token), then the residual (vector minus that entry)
   by its nearest entry of codebook 2, and so on for ``levels`` codebooks: residual VQ (Juang & Gray,
   1982; used for audio tokens by SoundStream, Zeghidour et al., 2021). The first level alone is plain VQ.

Decoding adds the chosen entries of the levels kept and undoes the normalisation. Tokens per chunk =
(T / patch) x D x levels used, from a vocabulary of ``codebook_size`` per level. Token order: segment by
segment in time, all dimensions of a segment together, the levels of one vector next to each other.

Each codebook is learned by k-means (Lloyd, 1982) on the residuals the levels before it leave, with
dead-code restarts: a code that no vector chose is moved onto the vector the codebook currently
reconstructs worst (Jukebox, Dhariwal et al., 2020, restarts unused codes on random encoder outputs;
the worst-served vector is a deterministic variant of that rule). There
is no neural encoder: the "latent vectors" are the normalised segments themselves, so the model is the
codebooks plus the bounds (``config.json`` + ``model.safetensors``, a few hundred kB).

Data: ``shared.actions.generate_chunk``, the generator the page and ``fast-bpe-actions`` use, at the
page's default shape, 50 steps at 50 Hz (1 s), relative noise drawn from the FAST corpus's levels
(0-0.4). Held-out: the 50x7 chunks ``fast-bpe-actions`` is evaluated on (seeds 10,000,000 + i, noise
0, 0.05, 0.2 in turn); training seeds lie below 10,000,000.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.actions import ACTION_NAMES, from_unit, generate_chunk, quantile_bounds, to_unit
from shared.training.loop import progress, seed_everything, write_model_card
from shared.training.pretrained import SafetensorsModel

HELDOUT_SEED = 10_000_000  # held-out chunk i has seed HELDOUT_SEED + i (as fast-bpe-actions' evaluation)
HELDOUT_NOISE = (0.0, 0.05, 0.2)  # chunk i has noise HELDOUT_NOISE[i % 3]
CORPUS_NOISE = (0.0, 0.0, 0.02, 0.05, 0.1, 0.2, 0.4)  # shared.actions.corpus' noise levels


@dataclass
class Config:
    steps: int = 50  # chunk length T (1 s at 50 Hz: the page's default chunk)
    hz: float = 50.0
    patch: int = 10  # steps per latent vector: a token covers 10 steps of one dimension
    levels: int = 3  # residual codebooks; tokens per chunk = (steps / patch) x 7 x levels used
    codebook_size: int = 256  # entries per codebook: the same vocabulary as 256-bin tokenization
    train_chunks: int = 10_000  # 10,000 chunks x 5 segments x 7 dimensions = 350,000 training vectors
    iterations: int = 25  # Lloyd iterations per level
    quantile: float = 0.01  # normalise the 1st/99th percentiles of the training steps to -1/+1
    eval_chunks: int = 200


class ActionVQ(SafetensorsModel, nn.Module):
    """Residual VQ over time segments of normalised action chunks. ``encode`` / ``decode`` take and give
    numpy (float64); the codebooks are float32 buffers (``codebooks``: (levels, codebook_size, patch))."""

    def __init__(self, steps: int = 50, hz: float = 50.0, dims: int = 7, patch: int = 10, levels: int = 3,
                 codebook_size: int = 256, quantile: float = 0.01, **_: object):
        super().__init__()
        if steps % patch:
            raise ValueError(f"patch ({patch}) must divide the chunk length ({steps})")
        self.config = {"model_type": "action-residual-vq", "steps": steps, "hz": hz, "dims": dims, "patch": patch,
                       "levels": levels, "codebook_size": codebook_size, "quantile": quantile,
                       "action_names": list(ACTION_NAMES) if dims == len(ACTION_NAMES) else None}
        self.register_buffer("lo", torch.zeros(dims, dtype=torch.float64))
        self.register_buffer("hi", torch.ones(dims, dtype=torch.float64))
        self.register_buffer("codebooks", torch.zeros(levels, codebook_size, patch))

    # -- sizes ------------------------------------------------------------------------------
    @property
    def patch(self) -> int:
        return self.config["patch"]

    @property
    def dims(self) -> int:
        return self.config["dims"]

    @property
    def levels(self) -> int:
        return self.config["levels"]

    @property
    def codebook_size(self) -> int:
        return self.config["codebook_size"]

    def tokens_per_chunk(self, steps: int, levels: int | None = None) -> int:
        return steps // self.patch * self.dims * (self.levels if levels is None else levels)

    # -- numpy views --------------------------------------------------------------------------
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo.double().cpu().numpy(), self.hi.double().cpu().numpy()

    def books(self) -> np.ndarray:
        return self.codebooks.double().cpu().numpy()  # (L, K, patch)

    # -- tokenizer ------------------------------------------------------------------------------
    def segments(self, actions: np.ndarray) -> np.ndarray:
        """(T, D) -> normalised segments (T / patch x D, patch): row s x D + d holds steps
        s x patch ... (s + 1) x patch - 1 of dimension d."""
        steps, dims = actions.shape
        if dims != self.dims or steps % self.patch:
            raise ValueError(f"this codebook takes chunks of D = {self.dims} dimensions and a length T that "
                             f"{self.patch} divides; got shape ({steps}, {dims})")
        unit = to_unit(actions, *self.bounds())  # (T, D)
        return unit.reshape(steps // self.patch, self.patch, dims).transpose(0, 2, 1).reshape(-1, self.patch)

    def encode(self, actions: np.ndarray, levels: int | None = None) -> np.ndarray:
        """(T, D) -> tokens (T / patch x D, levels): per segment, the nearest code of each level in turn
        (nearest to what the levels before left over)."""
        levels = self.levels if levels is None else levels
        residual = self.segments(actions)  # (S, P)
        books = self.books()
        tokens = np.empty((len(residual), levels), dtype=np.int64)
        for level in range(levels):
            c = books[level]  # (K, P)
            d2 = (residual ** 2).sum(1, keepdims=True) - 2 * residual @ c.T + (c ** 2).sum(1)  # (S, K)
            tokens[:, level] = d2.argmin(1)
            residual = residual - c[tokens[:, level]]
        return tokens

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens (S, levels), S = T / patch x D -> (T, D) in original units: the sum of the chosen entries."""
        tokens = np.asarray(tokens, dtype=np.int64)
        books = self.books()
        if tokens.ndim != 2 or not 1 <= tokens.shape[1] <= self.levels:
            raise ValueError(f"tokens must be (segments, levels) with 1 to {self.levels} levels")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise ValueError(f"VQ token ids must be in [0, {self.codebook_size - 1}]")
        if len(tokens) % self.dims:
            raise ValueError(f"the number of segments must be a multiple of D = {self.dims}")
        unit = sum(books[level][tokens[:, level]] for level in range(tokens.shape[1]))  # (S, P)
        unit = unit.reshape(-1, self.dims, self.patch).transpose(0, 2, 1).reshape(-1, self.dims)  # (T, D)
        return from_unit(unit, *self.bounds())


# ------------------------------------------------------------------------------------------
#                                   Data
# ------------------------------------------------------------------------------------------

def training_chunks(n: int, cfg: Config, seed: int = 0) -> list[np.ndarray]:
    """``n`` generated (steps, 7) chunks at ``cfg.hz``, noise from the FAST corpus's levels, seeds below
    HELDOUT_SEED (so none is a held-out chunk)."""
    rng = np.random.default_rng(seed)
    return [generate_chunk(int(rng.integers(HELDOUT_SEED)), cfg.steps, cfg.hz, float(rng.choice(CORPUS_NOISE)),
                           bandwidth_hz=min(1.5, cfg.hz / 2)) for _ in range(n)]


def heldout_chunks(n: int, steps: int = 50, hz: float = 50.0) -> list[np.ndarray]:
    """The held-out chunks of ``fast-bpe-actions``' evaluation: seed HELDOUT_SEED + i, noise 0, 0.05, 0.2."""
    return [generate_chunk(HELDOUT_SEED + i, steps, hz, HELDOUT_NOISE[i % 3]) for i in range(n)]


# ------------------------------------------------------------------------------------------
#                                   k-means with dead-code restarts
# ------------------------------------------------------------------------------------------

def _sq_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)  # (N, K)


def kmeans(x: torch.Tensor, k: int, iterations: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
    """Lloyd's k-means on (N, d) ``x``, initialised on ``k`` distinct random vectors. After each assignment
    every code no vector chose is restarted on the vectors with the largest error (one code each), then
    each code moves to the mean of its vectors. Returns (codebook (k, d), restarts made)."""
    codes = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    restarts = 0
    for _ in range(iterations):
        d2 = _sq_distances(x, codes)  # (N, k)
        assign = d2.argmin(1)  # (N,)
        counts = torch.bincount(assign, minlength=k)
        dead = torch.nonzero(counts == 0).flatten()
        if len(dead):
            error = d2.gather(1, assign[:, None]).squeeze(1)  # (N,) each vector's squared error
            worst = torch.topk(error, len(dead)).indices
            assign[worst] = dead  # the worst-served vectors found a code of their own
            counts = torch.bincount(assign, minlength=k)
            restarts += len(dead)
        sums = torch.zeros_like(codes).index_add_(0, assign, x)
        codes = sums / counts.clamp(min=1)[:, None].to(x.dtype)
    return codes, restarts


# ------------------------------------------------------------------------------------------
#                                   Evaluation
# ------------------------------------------------------------------------------------------

def relative_errors(original: np.ndarray, decoded: np.ndarray) -> tuple[float, float]:
    """(mean, max) |decoded - original| / the chunk's range in that dimension (a constant dimension: 1)."""
    span = np.ptp(original, 0)
    err = np.abs(decoded - original) / np.where(span > 0, span, 1.0)
    return float(err.mean()), float(err.max())


def evaluate(source: str, n: int = 200) -> dict:
    """Held-out reconstruction error at each number of levels, tokens per chunk, and codebook usage."""
    model = ActionVQ.from_pretrained(source)
    cfg = model.config
    chunks = heldout_chunks(n, cfg["steps"], cfg["hz"])
    tokens = [model.encode(x) for x in chunks]  # (S, L) each
    out: dict = {"codebook_size": model.codebook_size, "levels": model.levels, "patch_steps": model.patch,
                 "chunk_shape": f"{cfg['steps']}x{model.dims}", "n": n}
    by_level = {}
    for level in range(1, model.levels + 1):
        rel = [relative_errors(x, model.decode(t[:, :level])) for x, t in zip(chunks, tokens, strict=True)]
        mae = [float(np.abs(model.decode(t[:, :level]) - x).mean()) for x, t in zip(chunks, tokens, strict=True)]
        by_level[f"levels_{level}"] = {
            "tokens_per_chunk": model.tokens_per_chunk(cfg["steps"], level),
            "relative_mean_error": round(float(np.mean([r[0] for r in rel])), 5),
            "relative_max_error": round(float(np.mean([r[1] for r in rel])), 4),
            "mean_abs_error": float(f"{np.mean(mae):.4g}"),
        }
    all_tokens = np.concatenate(tokens)  # (n * S, L)
    usage = {}
    for level in range(model.levels):
        counts = np.bincount(all_tokens[:, level], minlength=model.codebook_size)
        p = counts[counts > 0] / counts.sum()
        usage[f"level_{level + 1}"] = {"codes_used": int((counts > 0).sum()),
                                       "perplexity": round(float(np.exp(-(p * np.log(p)).sum())), 1)}
    full = by_level[f"levels_{model.levels}"]
    out.update({
        "tokens_per_chunk": full["tokens_per_chunk"],
        "relative_mean_error": full["relative_mean_error"],
        "relative_mean_error_1_level": by_level["levels_1"]["relative_mean_error"],
        "codes_used_level_1": usage["level_1"]["codes_used"],
        "by_levels": by_level,
        "codebook_usage": usage,
    })
    return out


# ------------------------------------------------------------------------------------------
#                                   Training
# ------------------------------------------------------------------------------------------

def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    """Learn the codebooks and save them; ``steps`` overrides the Lloyd iterations per level (smoke runs
    also use fewer chunks: 50 per iteration asked, at least 200)."""
    import os

    if grad_accum not in (None, 1) or rank_weights:
        raise ValueError("vq-actions is learned by k-means, not gradient steps: --grad-accum and "
                         "--rank-weights apply only to the gradient-trained models")
    if int(os.environ.get("RANK", "0")) != 0:
        return {}
    cfg = cfg or Config()
    if steps is not None:
        cfg.iterations = steps
        cfg.train_chunks = min(cfg.train_chunks, max(200, 50 * steps))
    gen = seed_everything(seed)
    start = time.perf_counter()
    out = Path(out_dir)

    chunks = training_chunks(cfg.train_chunks, cfg, seed)
    dims = chunks[0].shape[1]
    model = ActionVQ(cfg.steps, cfg.hz, dims, cfg.patch, cfg.levels, cfg.codebook_size, cfg.quantile)
    lo, hi = quantile_bounds(np.concatenate(chunks), cfg.quantile)  # (D,), (D,) over every training step
    model.lo.copy_(torch.from_numpy(lo))
    model.hi.copy_(torch.from_numpy(hi))
    x = torch.from_numpy(np.concatenate([model.segments(c) for c in chunks])).float()  # (N, patch)
    restarts, mse = [], []
    bar = progress(cfg.levels, "vq-actions levels")
    for level in range(cfg.levels):
        codes, r = kmeans(x, cfg.codebook_size, cfg.iterations, gen)
        model.codebooks[level] = codes
        x = x - codes[_sq_distances(x, codes).argmin(1)]  # the residual the next level codes
        restarts.append(r)
        mse.append(round(float((x ** 2).mean()), 6))
        bar.update(1)
    bar.close()
    model.save_pretrained(out)

    metrics = evaluate(str(out), n=cfg.eval_chunks)
    metrics.update({
        "parameters": int(model.codebooks.numel() + model.lo.numel() + model.hi.numel()),
        "train_vectors": int(len(x)), "train_chunks": cfg.train_chunks,
        "train_residual_mse_by_level": mse, "dead_code_restarts_by_level": restarts,
        "train_wall_seconds": round(time.perf_counter() - start, 1), "torch_threads": torch.get_num_threads(),
    })
    write_card(out, cfg, seed, metrics)
    return metrics


def write_card(out: Path, cfg: Config, seed: int, metrics: dict) -> None:
    per_level = ", ".join(f"{v['tokens_per_chunk']} tokens: {100 * v['relative_mean_error']:.2f}%"
                          for v in metrics["by_levels"].values())
    write_model_card(
        out, "vq-actions",
        f"""A residual vector-quantised action tokenizer learned here by k-means on generated action chunks
(`shared/training/vq_actions.py`; residual VQ: Juang & Gray, 1982; k-means: Lloyd, 1982; dead codes
restarted on the worst-served vector, a deterministic variant of Jukebox's random restarts, Dhariwal et al., 2020).

- **Tokens.** A {cfg.steps}x7 chunk ({cfg.hz:g} Hz) is normalised per dimension by the training set's
  {round(100 * cfg.quantile)}st/{round(100 * (1 - cfg.quantile))}th percentiles (stored as `lo`, `hi`),
  cut into segments of {cfg.patch} steps of one dimension ({cfg.steps // cfg.patch} x 7 = {cfg.steps // cfg.patch * 7}
  segments), and each segment is coded by {cfg.levels} residual codebooks of {cfg.codebook_size} entries shared by
  all dimensions: {cfg.steps // cfg.patch * 7} to {cfg.steps // cfg.patch * 7 * cfg.levels} tokens per chunk,
  depending on the levels kept.
- **Learning.** Level by level, {cfg.iterations} Lloyd iterations on the residuals of the levels before,
  initialised on distinct random training vectors; codes no vector chose are restarted on the worst-served
  vectors.
- **Data.** {cfg.train_chunks:,} chunks from `shared.actions.generate_chunk` (seed {seed}; seeds below
  {HELDOUT_SEED:,}; noise from the FAST corpus's levels 0-0.4). Held out: the {cfg.eval_chunks} chunks
  `fast-bpe-actions` is evaluated on (seeds {HELDOUT_SEED:,} + i, noise 0, 0.05, 0.2 in turn).
- **Error** is |decoded - original| as a fraction of each chunk's range in each dimension, averaged:
  {per_level}.
- Config: `{asdict(cfg)}`

Load it with `shared.models.load("vq-actions").model` (an `ActionVQ`: `encode(actions)`, `decode(tokens)`).
""",
        metrics,
        "python -m shared.training vq-actions",
    )
