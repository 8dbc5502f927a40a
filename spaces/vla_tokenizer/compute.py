"""Robot actions as tokens: uniform 256-bin tokenization against FAST (DCT + BPE), measured.

A vision-language-action model (VLA) emits robot actions as tokens of a language model. This
tutorial compares the two tokenizers autoregressive VLAs use, on the same (T, D) action chunk:

- **bin256** (RT-2, Brohan et al., 2023; OpenVLA, Kim et al., 2024): cut each dimension's
  [lo, hi] into 256 equal bins, token = clip(floor((a - lo) / (hi - lo) * 256), 0, 255), decode
  to the bin centre. One token per dimension per step, so T x D tokens; the vocabulary is 256
  tokens shared by every dimension (not 256^D). The error is at most half a bin width *inside*
  [lo, hi]; a value outside is clipped to the first or last bin and its error grows with its
  distance from the bound.
- **FAST** (Pertsch et al., 2025, arXiv:2501.09747): normalise (lo -> -1, hi -> +1), DCT-II along
  time per dimension, multiply by ``scale`` and round, flatten low frequencies first across
  dimensions, then a byte-level BPE (``shared/weights/fast-bpe-actions``) merges frequent runs.
  Smooth motion has few non-zero low-frequency coefficients, so it compresses well; rounding
  makes it lossy, and ``scale`` trades accuracy against length. One token stands for a variable
  number of coefficients, so changing one token can shift every coefficient after it.

**Bounds.** OpenVLA and FAST take lo and hi from the *training set* (1st/99th percentiles of each
dimension over all its actions; OpenVLA clips to them, openpi's FAST pipeline does not). ``bounds``
chooses ``"chunk"`` (bin256: the chunk's min and max; FAST: the chunk's own percentiles, as the
shipped BPE was trained) or ``"dataset"`` (both: the percentiles over the BPE's training corpus,
``shared.actions.corpus_bounds``). The FAST front end itself is ``shared.actions`` (one copy for
this space and the BPE recipe); this module adds the BPE, decoding with repairs, errors and sweeps.

Decoding inverts every step: BPE ids -> bytes -> characters -> integers -> / scale -> inverse DCT
-> denormalise. Errors are measured in the original units of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared import actions as A
from shared import validate as check
from shared.actions import MAX_STEPS, validate

from .options import (
    BIN_COUNTS,
    BOUNDS,
    EULER_MAX,
    FLOW_TIMES_DEFAULT,
    FLOW_TIMES_MAX,
    HELDOUT_DEFAULT,
    HELDOUT_MAX,
    MAX_IMAGE_SIZE,
    MAX_PROMPT_TOKENS,
    MAX_SCALE,
    METHODS,
    N_BINS,
    NOISE_LEVELS,
    OPENVLA_ACTION_DIMS,
    OPENVLA_IMAGE_SIZE,
    OPENVLA_PATCH,
    PI0_ACTION_DIM,
    PI0_CAMERAS,
    PI0_EULER_STEPS,
    PI0_HORIZON,
    PI0_PROMPT_TOKENS,
    PI0_STATE_TOKENS,
    PROMPT_TOKENS_DEFAULT,
    RATES_HZ,
    SWEEP_SCALES,
    TOKENIZER,
    TRADEOFF_SCALES,
    VQ_TOKENIZER,
    tokenizer,
    vq_facts,
)

FAST_VOCAB = tokenizer().vocab_size  # read from the shipped fast_config.json
DEFAULT_SCALE = tokenizer().scale  # the scale the shipped BPE's training text was made at
QUANTILE = tokenizer().quantile  # bounds = the (q, 1 - q) quantiles


def check_scale(scale: object) -> float:
    return check.number(scale, "scale", 0, MAX_SCALE, above=True)


def check_method(method: object) -> str:
    return check.choice(method, "method", METHODS)


def check_bounds(bounds: object) -> str:
    return check.choice(bounds, "bounds", BOUNDS)


def check_bins(n_bins: object) -> int:
    """One of BIN_COUNTS; an integer-valued number or digit string is accepted (API clients send 256.0)."""
    wanted = f"bin count must be one of {', '.join(map(str, BIN_COUNTS))}"
    try:
        n = check.integer(n_bins, "bin count", 1, max(BIN_COUNTS))
    except ValueError:
        raise ValueError(f"{wanted}, got {n_bins!r}") from None
    if n not in BIN_COUNTS:
        raise ValueError(f"unknown bin count {n}: {wanted}")
    return n


# ------------------------------------------------------------------------------------------
#                          Bounds: per chunk or over the dataset
# ------------------------------------------------------------------------------------------

def dataset_bounds() -> tuple[np.ndarray, np.ndarray]:
    """The 1st/99th percentiles of each dimension over every step of the BPE's training corpus
    (as many chunks as its metrics.json says, the recipe's seed); computed once per process."""
    t = tokenizer()
    return A.corpus_bounds(t.corpus_chunks, A.DATASET_SEED, t.quantile)


def bounds_for(actions: np.ndarray, bounds: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per dimension. Per chunk, bin256 takes the min and max (nothing clips) and FAST the
    chunk's own quantiles (how the shipped BPE's text was made); dataset bounds are shared by both."""
    if check_bounds(bounds) == "dataset":
        dims = len(A.ACTION_NAMES)
        if actions.shape[1] != dims:
            raise ValueError(f"dataset bounds are the {tokenizer().percentiles} percentiles of the {dims}-D "
                             f"generated corpus ({', '.join(A.ACTION_NAMES)}); this chunk has "
                             f"{actions.shape[1]} dimensions: choose per-chunk bounds")
        return dataset_bounds()
    if check_method(method) == "bin256":
        return actions.min(0), actions.max(0)
    return A.quantile_bounds(actions, QUANTILE)


# ------------------------------------------------------------------------------------------
#                          Uniform binning (RT-2 / OpenVLA)
# ------------------------------------------------------------------------------------------

@dataclass
class BinResult:
    tokens: np.ndarray  # (T, D) ints in [0, 255]
    decoded: np.ndarray  # (T, D) bin centres
    lo: np.ndarray  # (D,)
    hi: np.ndarray  # (D,)
    clipped: np.ndarray  # (T, D) bool: outside [lo, hi], so binned to the first or last bin
    n_bins: int = N_BINS

    @property
    def width(self) -> np.ndarray:  # (D,) bin width per dimension
        return (self.hi - self.lo) / self.n_bins

    @property
    def flat_tokens(self) -> list[int]:  # step by step, all dimensions of a step together
        return self.tokens.reshape(-1).tolist()


def bin_encode(actions: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """token = clip(floor((a - lo) / (hi - lo) * n), 0, n - 1) with n = 256 by default; a constant
    dimension gets token 0."""
    span = np.where(hi > lo, hi - lo, 1.0)  # (D,)
    return np.clip(np.floor((actions - lo) / span * n_bins), 0, n_bins - 1).astype(np.int64)  # (T, D)


def bin_decode(tokens: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Token k -> centre of bin k, lo + (k + 0.5) * (hi - lo) / n (a constant dimension -> lo)."""
    return lo + (np.asarray(tokens) + 0.5) * (hi - lo) / n_bins  # (T, D)


def bin256(actions: np.ndarray, bounds: str = "chunk") -> BinResult:
    return bins(actions, N_BINS, bounds)


def bins(actions: np.ndarray, n_bins: int, bounds: str = "chunk") -> BinResult:
    """Uniform binning at ``n_bins`` (64, 256 or 1024) per dimension, same bounds as bin256."""
    n_bins = check_bins(n_bins)
    lo, hi = bounds_for(actions, bounds, "bin256")
    tokens = bin_encode(actions, lo, hi, n_bins)
    return BinResult(tokens, bin_decode(tokens, lo, hi, n_bins), lo, hi, (actions < lo) | (actions > hi), n_bins)


def clip_errors(original: np.ndarray, result: BinResult) -> dict:
    """bin256's error split at the bounds: at most half a bin inside them, unbounded outside."""
    err = np.abs(result.decoded - original)  # (T, D)
    inside, outside = np.where(result.clipped, 0.0, err), np.where(result.clipped, err, 0.0)
    return {
        "max_abs_error_inside_bounds": float(inside.max()),
        "clipped_values": int(result.clipped.sum()),
        "max_abs_error_clipped": float(outside.max()),  # 0 when nothing was clipped
        "per_dim_clipped_values": result.clipped.sum(0).tolist(),
        "per_dim_max_abs_error_clipped": outside.max(0).tolist(),
    }


# ------------------------------------------------------------------------------------------
#                          FAST: DCT + scale/round + byte-level BPE
# ------------------------------------------------------------------------------------------

def load_bpe():
    """The trained byte-level BPE (a ``tokenizers.Tokenizer``), loaded once through the registry."""
    from shared.models import load

    return load(TOKENIZER, device="cpu").processor.backend_tokenizer


@dataclass
class FastResult:
    tokens: list[int]  # BPE ids
    lo: np.ndarray  # (D,) normalisation bounds: lo -> -1, hi -> +1
    hi: np.ndarray  # (D,)
    coefficients: np.ndarray  # (T, D) DCT coefficients x scale, before rounding (row k = frequency k)
    rounded: np.ndarray  # (T, D) integers
    text: str  # one character per coefficient, frequency-major
    decoded: np.ndarray  # (T, D) in original units
    scale: float
    outside: np.ndarray  # (T, D) bool: beyond the bounds, so normalised past +-1 (FAST does not clip)


@dataclass
class FastDecoding:
    actions: np.ndarray  # (T, D)
    rounded: np.ndarray  # (T, D) integer coefficients read back (after padding or trimming)
    coefficients_read: int  # how many the tokens held
    expected: int  # T x D
    invalid_bytes: int  # bytes that were not valid UTF-8 (dropped)
    note: str  # what had to be repaired, or "" if the tokens decoded to a full grid

    @property
    def valid(self) -> bool:
        return not self.note


def fast_encode(actions: np.ndarray, scale: float = DEFAULT_SCALE, bpe=None, bounds: str = "chunk") -> FastResult:
    """Encode one chunk with FAST and decode it back (so the result carries its error)."""
    scale = check_scale(scale)
    bpe = bpe or load_bpe()
    lo, hi = bounds_for(actions, bounds, "fast")  # (D,), (D,)
    coefficients, rounded = A.fast_grid(actions, scale, lo, hi)  # (T, D) each
    text = A.grid_text(rounded)  # (T*D,) chars: all dims of frequency 0, then 1, ...
    ids = bpe.encode(text).ids
    decoded = fast_decode(ids, actions.shape, scale, lo, hi, bpe)
    return FastResult(ids, lo, hi, coefficients, rounded, text, decoded.actions, scale, (actions < lo) | (actions > hi))


def fast_decode(tokens: list[int], shape: tuple[int, int], scale: float, lo: np.ndarray, hi: np.ndarray,
                bpe=None) -> FastDecoding:
    """BPE ids -> bytes -> characters -> integers -> / scale -> inverse DCT -> original units.

    Ids that do not form valid UTF-8 lose those bytes, and a sequence that holds more or fewer
    than T x D coefficients is trimmed or padded with zeros (a zero coefficient adds nothing):
    FAST's reference decoder gives up on such sequences and returns zeros for the whole chunk.
    """
    bpe = bpe or load_bpe()
    steps, dims = shape
    vocab = bpe.get_vocab_size()
    if any(not 0 <= int(t) < vocab for t in tokens):
        raise ValueError(f"FAST token ids must be in [0, {vocab - 1}]")
    raw = A.bpe_bytes(bpe, tokens)
    text = raw.decode("utf-8", errors="surrogateescape")  # a bad byte becomes a lone surrogate U+DC80..DCFF
    invalid = sum(0xDC80 <= ord(c) <= 0xDCFF for c in text)
    text = "".join(c for c in text if not 0xDC80 <= ord(c) <= 0xDCFF)
    values = A.text_to_coefficients(text)  # (n,)
    expected, read = steps * dims, len(values)
    notes = []
    if invalid:
        notes.append(f"{invalid} byte(s) were not valid UTF-8 and were dropped")
    if len(values) < expected:
        notes.append(f"the tokens hold {len(values)} coefficients, not {expected}: padded with zeros")
        values = np.concatenate([values, np.zeros(expected - len(values), dtype=np.int64)])
    elif len(values) > expected:
        notes.append(f"the tokens hold {len(values)} coefficients, not {expected}: trimmed")
    rounded = values[:expected].reshape(steps, dims)  # (T, D)
    return FastDecoding(A.grid_actions(rounded, scale, lo, hi), rounded, read, expected, invalid, "; ".join(notes))


# ------------------------------------------------------------------------------------------
#                          Errors, the public encoder, the side-by-side table
# ------------------------------------------------------------------------------------------

def abs_errors(original: np.ndarray, decoded: np.ndarray) -> dict:
    """Max and mean |decoded - original|, overall and per dimension, in the input's units."""
    err = np.abs(decoded - original)  # (T, D)
    return {
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "per_dim_max_abs_error": err.max(0).tolist(),
        "per_dim_mean_abs_error": err.mean(0).tolist(),
    }


def encode(actions: np.ndarray, method: str, scale: float = DEFAULT_SCALE) -> dict:
    """The public endpoint's result: tokens, num_tokens, decoded (T x D) and the errors (per-chunk bounds)."""
    method = check_method(method)
    scale = check_scale(scale)  # validated for both methods, used by FAST
    actions = validate(actions)
    if method == "bin256":
        result = bin256(actions)
        tokens, decoded = result.flat_tokens, result.decoded
        extra = {"vocab_size": N_BINS, "normalisation": "min-max of this chunk per dimension",
                 "bin_width": result.width.tolist()}
    else:
        result = fast_encode(actions, scale)
        tokens, decoded = result.tokens, result.decoded
        extra = {"vocab_size": FAST_VOCAB, "scale": scale,
                 "normalisation": f"{tokenizer().percentiles} percentiles of this chunk per dimension -> [-1, 1]",
                 "nonzero_coefficients": int(np.count_nonzero(result.rounded))}
    return {
        "method": method,
        "shape": list(actions.shape),
        "tokens": [int(t) for t in tokens],
        "num_tokens": len(tokens),
        "decoded": decoded.tolist(),
        **abs_errors(actions, decoded),
        **extra,
    }


@dataclass
class Comparison:
    actions: np.ndarray  # (T, D)
    bounds: str
    bins: BinResult
    fast: FastResult
    bin_errors: dict
    fast_errors: dict

    @property
    def ratio(self) -> float:  # bin256 tokens per FAST token
        return self.bins.tokens.size / max(1, len(self.fast.tokens))


def compare(actions: np.ndarray, scale: float = DEFAULT_SCALE, bounds: str = "chunk", bpe=None) -> Comparison:
    actions = validate(actions)
    bins = bin256(actions, bounds)
    fast = fast_encode(actions, scale, bpe, bounds)
    bin_errors = {**abs_errors(actions, bins.decoded), **clip_errors(actions, bins)}
    return Comparison(actions, bounds, bins, fast, bin_errors, abs_errors(actions, fast.decoded))


def table_rows(c: Comparison, names: list[str]) -> list[list]:
    """One row per dimension, columns as ``options.TABLE_HEADERS``; errors in the dimension's own units."""
    rows = []
    rng = c.actions.max(0) - c.actions.min(0)
    b, f = c.bin_errors, c.fast_errors
    inside = np.where(c.bins.clipped, 0.0, np.abs(c.bins.decoded - c.actions)).max(0)  # (D,)
    for d, name in enumerate(names):
        rows.append([
            name, float(rng[d]), float(c.bins.width[d]), float(inside[d]), b["per_dim_mean_abs_error"][d],
            int(b["per_dim_clipped_values"][d]), b["per_dim_max_abs_error_clipped"][d],
            f["per_dim_max_abs_error"][d], f["per_dim_mean_abs_error"][d], int(np.count_nonzero(c.fast.rounded[:, d])),
        ])
    return rows


def dim_names(dims: int) -> list[str]:
    return list(A.ACTION_NAMES) if dims == len(A.ACTION_NAMES) else [f"a{d}" for d in range(dims)]


# ------------------------------------------------------------------------------------------
#                          Sweeps: scale, noise, control frequency
# ------------------------------------------------------------------------------------------

def relative_error(original: np.ndarray, decoded: np.ndarray) -> tuple[float, float]:
    """(mean, max) |error| as a fraction of each dimension's range, so dimensions in different
    units can share one axis; averaged (or maximised) over dimensions."""
    span = original.max(0) - original.min(0)
    span = np.where(span > 0, span, 1.0)
    err = np.abs(decoded - original) / span  # (T, D)
    return float(err.mean()), float(err.max())


def scale_sweep(actions: np.ndarray, scales: tuple[float, ...] = SWEEP_SCALES, bounds: str = "chunk",
                bpe=None) -> list[dict]:
    """FAST at each scale: token count and error (original units, and relative to each range)."""
    actions = validate(actions)
    bpe = bpe or load_bpe()
    rows = []
    for s in scales:
        fast = fast_encode(actions, s, bpe, bounds)
        err = abs_errors(actions, fast.decoded)
        rel_mean, rel_max = relative_error(actions, fast.decoded)
        rows.append({"scale": float(s), "num_tokens": len(fast.tokens),
                     "max_abs_error": err["max_abs_error"], "mean_abs_error": err["mean_abs_error"],
                     "relative_mean_error": rel_mean, "relative_max_error": rel_max,
                     "nonzero_coefficients": int(np.count_nonzero(fast.rounded))})
    return rows


def add_noise(actions: np.ndarray, level: float, seed: int = 0) -> np.ndarray:
    """Gaussian noise with std = level x each dimension's std; binary dimensions (a gripper) untouched."""
    rng = np.random.default_rng(seed)
    noisy = actions + rng.normal(size=actions.shape) * level * actions.std(0)  # (T, D)
    binary = np.array([len(np.unique(actions[:, d])) <= 2 for d in range(actions.shape[1])])
    return np.where(binary, actions, noisy)


def noise_sweep(actions: np.ndarray, scale: float = DEFAULT_SCALE, levels: tuple[float, ...] = NOISE_LEVELS,
                seed: int = 0, bounds: str = "chunk", bpe=None) -> list[dict]:
    """FAST token count as noise is added to a chunk (bin256 stays T x D whatever the noise)."""
    actions = validate(actions)
    bpe = bpe or load_bpe()
    rows = []
    for level in levels:
        noisy = add_noise(actions, level, seed)
        fast = fast_encode(noisy, scale, bpe, bounds)
        rows.append({"noise": float(level), "fast_tokens": len(fast.tokens), "bin256_tokens": noisy.size,
                     "nonzero_coefficients": int(np.count_nonzero(fast.rounded))})
    return rows


def frequency_sweep(seed: int, seconds: float = 1.0, rates: tuple[float, ...] = RATES_HZ, noise: float = 0.0,
                    scale: float = DEFAULT_SCALE, bounds: str = "chunk", bpe=None) -> list[dict]:
    """The same robot motion (``seconds`` long) sampled at several control frequencies: bin256 grows
    with T, FAST stays nearly flat because a denser sampling of a smooth motion adds no new frequencies.
    Rates whose step count falls outside [2, MAX_STEPS] are left out."""
    seconds = check.number(seconds, "duration (s)", 0, None, above=True)
    bpe = bpe or load_bpe()
    rows = []
    for hz in rates:
        steps = int(round(seconds * hz))
        if steps < A.MIN_STEPS or steps > MAX_STEPS:
            continue
        chunk = A.generate_chunk(seed, steps, hz, noise, bandwidth_hz=min(1.5, hz / 2))
        rows.append({"hz": float(hz), "steps": steps, "seconds": steps / hz, "bin256_tokens": chunk.size,
                     "fast_tokens": len(fast_encode(chunk, scale, bpe, bounds).tokens)})
    return rows


# ------------------------------------------------------------------------------------------
#                          Brittleness: change one token, decode
# ------------------------------------------------------------------------------------------

def perturb(actions: np.ndarray, scale: float = DEFAULT_SCALE, index: int = 0, delta: int = 1,
            bounds: str = "chunk") -> dict:
    """Add ``delta`` to token ``index`` of each tokenizer's sequence and decode both.

    bin256: the one value of that step and dimension moves by the bins its id moved (``delta``,
    or ``-delta`` when ``+delta`` would leave [0, 255], then clipped to it), times its bin width;
    nothing else changes. FAST: the token may stand for a different number of coefficients, so
    everything after it shifts to other frequencies and dimensions, and a one-coefficient change
    spreads over the whole time axis. FAST's sequence is shorter: an index past its end takes its
    last token.
    """
    actions = validate(actions)
    scale = check_scale(scale)
    steps, dims = actions.shape
    index = check.integer(index, "token index", 0, steps * dims - 1)
    bpe = load_bpe()
    vocab = bpe.get_vocab_size()
    delta = check.integer(delta, "delta", -(vocab - 1), vocab - 1)
    if delta == 0:
        raise ValueError("delta must not be 0 (it is the change applied to one token id)")
    c = compare(actions, scale, bounds, bpe)
    span = np.where(np.ptp(actions, 0) > 0, np.ptp(actions, 0), 1.0)  # (D,)

    # bin256: one id in [0, 255]
    b_flat = c.bins.tokens.reshape(-1).copy()  # (T*D,)
    b_old = int(b_flat[index])
    reflected = not 0 <= b_old + delta < N_BINS
    b_flat[index] = int(np.clip(b_old - delta if reflected else b_old + delta, 0, N_BINS - 1))
    b_decoded = bin_decode(b_flat.reshape(steps, dims), c.bins.lo, c.bins.hi)  # (T, D)
    b_change = np.abs(b_decoded - c.bins.decoded)  # (T, D)

    # FAST: one BPE id in [0, vocab)
    f_tokens = list(c.fast.tokens)
    f_index = min(index, len(f_tokens) - 1)
    f_old = f_tokens[f_index]
    f_tokens[f_index] = (f_old + delta) % vocab
    f_dec = fast_decode(f_tokens, (steps, dims), scale, c.fast.lo, c.fast.hi, bpe)
    f_change = np.abs(f_dec.actions - c.fast.decoded)  # (T, D)

    def moved(change: np.ndarray) -> int:
        return int(np.count_nonzero(change > 1e-9 * span))

    return {
        "bin256": {"index": index, "step": index // dims, "dimension": index % dims,
                   "old_id": b_old, "new_id": int(b_flat[index]), "requested_delta": delta,
                   "bins_moved": int(b_flat[index]) - b_old, "reflected": reflected, "bin_width": float(c.bins.width[index % dims]),
                   "changed_entries": moved(b_change), "max_change": float(b_change.max()),
                   "max_change_relative": float((b_change / span).max()), "change": b_change, "decoded": b_decoded},
        "fast": {"index": f_index, "index_clipped": f_index != index, "old_id": int(f_old),
                 "new_id": int(f_tokens[f_index]),
                 "old_piece": list(map(int, A.text_to_coefficients(_piece(bpe, f_old)))),
                 "new_piece": list(map(int, A.text_to_coefficients(_piece(bpe, f_tokens[f_index])))),
                 "coefficients_read": f_dec.coefficients_read, "expected": f_dec.expected,
                 "invalid_bytes": f_dec.invalid_bytes, "note": f_dec.note,
                 "changed_coefficients": int(np.count_nonzero(f_dec.rounded != c.fast.rounded)),
                 "changed_entries": moved(f_change), "max_change": float(f_change.max()),
                 "max_change_relative": float((f_change / span).max()), "change": f_change, "decoded": f_dec.actions},
        "comparison": c,
    }


def _piece(bpe, token_id: int) -> str:
    """The characters one token stands for, if its bytes are complete UTF-8 (else only the valid ones)."""
    text = A.bpe_bytes(bpe, [token_id]).decode("utf-8", errors="surrogateescape")
    return "".join(c for c in text if not 0xDC80 <= ord(c) <= 0xDCFF)


# ------------------------------------------------------------------------------------------
#      Issue 23: the VQ tokenizer, bins vs FAST vs VQ on held-out chunks, sequence, flow
# ------------------------------------------------------------------------------------------
# The VQ tokenizer (shared/training/vq_actions.py) normalises with its training set's percentiles,
# cuts each dimension into segments of `patch` steps and codes each segment with residual codebooks
# (Juang & Gray, 1982). Its tokens: segment by segment in time, the dimensions of a segment together,
# the levels of a segment's vector next to each other.

def load_vq():
    """The shipped ``ActionVQ`` (codebooks + bounds), loaded once through the registry."""
    from shared.models import load

    return load(VQ_TOKENIZER, device="cpu").model


def check_levels(levels: object, vq=None) -> int:
    most = vq.levels if vq is not None else vq_facts().levels
    return check.integer(levels, "VQ levels", 1, most)


def vq_fits(actions: np.ndarray, vq) -> str:
    """'' if the codebook can code this chunk, else why not (it takes D = 7 and T a multiple of the patch)."""
    steps, dims = actions.shape
    if dims != vq.dims:
        return f"the codebook was learned on {vq.dims}-D chunks; this chunk has {dims} dimensions"
    if steps % vq.patch:
        return f"the codebook codes segments of {vq.patch} steps; T = {steps} is not a multiple of {vq.patch}"
    return ""


@dataclass
class VQResult:
    tokens: np.ndarray  # (segments, levels) ids in [0, codebook_size)
    decoded: np.ndarray  # (T, D)
    levels: int

    @property
    def flat_tokens(self) -> list[int]:
        return self.tokens.reshape(-1).tolist()


def vq_encode(actions: np.ndarray, levels: int | None = None, vq=None) -> VQResult:
    """Encode with the first ``levels`` codebooks and decode back."""
    vq = vq or load_vq()
    actions = validate(actions)
    levels = check_levels(vq.levels if levels is None else levels, vq)
    why = vq_fits(actions, vq)
    if why:
        raise ValueError(f"VQ: {why}")
    tokens = vq.encode(actions, levels)
    return VQResult(tokens, vq.decode(tokens), levels)


def heldout(n: object) -> list[np.ndarray]:
    """The held-out 50x7 chunks both shipped tokenizers are evaluated on (seed 10,000,000 + i; noise 0,
    0.05, 0.2 in turn), never in either's training data."""
    from shared.training.vq_actions import heldout_chunks

    return heldout_chunks(check.integer(n, "held-out chunks", 1, HELDOUT_MAX))


def _row(method: str, setting: str, vocab: int, tokens: list[int], originals: list, decodeds: list) -> dict:
    rel = [relative_error(x, y) for x, y in zip(originals, decodeds, strict=True)]
    mean_tokens = float(np.mean(tokens))
    return {"method": method, "setting": setting, "tokens_per_chunk": mean_tokens, "vocabulary": vocab,
            "bits_per_chunk": mean_tokens * float(np.log2(vocab)),
            "relative_mean_error": float(np.mean([r[0] for r in rel])),
            "relative_max_error": float(np.mean([r[1] for r in rel])),
            "mean_abs_error": float(np.mean([np.abs(y - x).mean() for x, y in zip(originals, decodeds, strict=True)]))}


def tradeoff(n: object = HELDOUT_DEFAULT, bounds: str = "chunk", bpe=None, vq=None,
             scales: tuple[float, ...] = TRADEOFF_SCALES) -> list[dict]:
    """Error against tokens per chunk on ``n`` held-out chunks: binning at each of BIN_COUNTS, FAST at
    each scale, VQ with 1 to all its levels. Errors are |decoded - original| as a fraction of each
    chunk's range per dimension (mean over entries, then over chunks; "max": the chunk's worst entry,
    averaged over chunks). ``bounds`` applies to binning and FAST; VQ always uses its training bounds."""
    bounds = check_bounds(bounds)
    chunks = heldout(n)
    bpe, vq = bpe or load_bpe(), vq or load_vq()
    rows = []
    for n_bins in BIN_COUNTS:
        decoded = [bins(x, n_bins, bounds).decoded for x in chunks]
        rows.append(_row(f"bin{n_bins}", f"{n_bins} bins, {bounds} bounds", n_bins, [x.size for x in chunks],
                         chunks, decoded))
    for s in scales:
        fast = [fast_encode(x, s, bpe, bounds) for x in chunks]
        rows.append(_row("fast", f"scale {s:g}, {bounds} bounds", FAST_VOCAB, [len(f.tokens) for f in fast],
                         chunks, [f.decoded for f in fast]))
    codes = [vq.encode(x) for x in chunks]  # all levels once; fewer levels = the first columns
    for level in range(1, vq.levels + 1):
        rows.append(_row("vq", f"{level} level{'s' if level > 1 else ''}, training bounds", vq.codebook_size,
                         [c[:, :level].size for c in codes], chunks, [vq.decode(c[:, :level]) for c in codes]))
    return rows


def three_way(actions: np.ndarray, n_bins: object = N_BINS, scale: float = DEFAULT_SCALE, levels: object = None,
              bpe=None, vq=None) -> dict:
    """One chunk through binning (``n_bins``, per-chunk min/max), FAST (``scale``, per-chunk percentiles) and
    VQ (``levels``, its training bounds); VQ is left out with the reason when the chunk's shape does not fit."""
    actions = validate(actions)
    n_bins, scale = check_bins(n_bins), check_scale(scale)
    vq = vq or load_vq()
    levels = check_levels(vq.levels if levels is None else levels, vq)
    b = bins(actions, n_bins)
    f = fast_encode(actions, scale, bpe or load_bpe())
    out = {"actions": actions, "bins": b, "fast": f, "vq": None, "vq_note": vq_fits(actions, vq), "levels": levels}
    if not out["vq_note"]:
        out["vq"] = vq_encode(actions, levels, vq)
        if actions.shape[0] != vq.config["steps"]:
            out["vq_note"] = (f"the codebook was learned on {vq.config['steps']}-step chunks at {vq.config['hz']:g} Hz; "
                              f"this one has {actions.shape[0]} steps, so its segments may look unlike the training ones")
    return out


def three_rows(out: dict) -> list[dict]:
    x = out["actions"]
    rows = [("bin", f"{out['bins'].n_bins} bins, per-chunk min/max", out["bins"].n_bins, out["bins"].tokens.size,
             out["bins"].decoded),
            ("fast", f"scale {out['fast'].scale:g}, per-chunk percentiles", FAST_VOCAB, len(out["fast"].tokens),
             out["fast"].decoded)]
    if out["vq"] is not None:
        rows.append(("vq", f"{out['vq'].levels} level(s), training bounds", load_vq().codebook_size,
                     out["vq"].tokens.size, out["vq"].decoded))
    result = []
    for method, setting, vocab, tokens, decoded in rows:
        mean, worst = relative_error(x, decoded)
        result.append({"method": method, "setting": setting, "tokens": int(tokens), "vocabulary": int(vocab),
                       "relative_mean_error": mean, "relative_max_error": worst,
                       "max_abs_error": float(np.abs(decoded - x).max())})
    return result


# ------------------------------------------------------------------------------------------
#                          Where action tokens sit in a VLA's sequence
# ------------------------------------------------------------------------------------------

def image_tokens(image_size: object, patch: int = OPENVLA_PATCH) -> int:
    """Patches of a square image: (image_size / patch)^2 (a ViT's token count; Dosovitskiy et al., 2021)."""
    size = check.integer(image_size, "image size (px)", patch, MAX_IMAGE_SIZE)
    if size % patch:
        raise ValueError(f"image size must be a multiple of the patch size {patch}, got {size}")
    return (size // patch) ** 2


def sequence_layout(actions: np.ndarray, scale: float = DEFAULT_SCALE, image_size: object = OPENVLA_IMAGE_SIZE,
                    prompt_tokens: object = PROMPT_TOKENS_DEFAULT, bpe=None, vq=None) -> list[dict]:
    """Token counts per segment of the sequence, one row per layout:

    - OpenVLA as published: <BOS>, the image's patch tokens (after <BOS>, before the text), the prompt,
      7 action tokens (one step, 256 bins) and the stop token </s>;
    - the same model emitting this whole chunk with binning (T x D tokens), FAST or the VQ;
    - pi0: three 224 px cameras (SigLIP So400m/14 -> 256 tokens each), its 48 padded prompt positions, one
      state token and 50 action positions that carry continuous vectors (flow matching): no action vocabulary.
    """
    actions = validate(actions)
    scale = check_scale(scale)
    image = image_tokens(image_size)
    prompt = check.integer(prompt_tokens, "prompt tokens", 1, MAX_PROMPT_TOKENS)
    fast = fast_encode(actions, scale, bpe or load_bpe())
    vq = vq or load_vq()
    t, d = actions.shape

    def openvla(name: str, action: int, note: str) -> dict:
        return {"layout": name, "bos": 1, "image": image, "prompt": prompt, "state": 0, "action": action, "stop": 1,
                "total": 1 + image + prompt + action + 1, "note": note}

    rows = [openvla("OpenVLA, one step (published)", OPENVLA_ACTION_DIMS, "7-DoF, 256 bins: 7 tokens"),
            openvla("OpenVLA emitting this chunk, bin256", t * d, f"T x D = {t} x {d}"),
            openvla(f"OpenVLA emitting this chunk, FAST scale {scale:g}", len(fast.tokens), "BPE ids")]
    why = vq_fits(actions, vq)
    if not why:
        rows.append(openvla("OpenVLA emitting this chunk, VQ (all levels)", vq.tokens_per_chunk(t), "codebook ids"))
    pi0_image = PI0_CAMERAS * image_tokens(OPENVLA_IMAGE_SIZE)
    rows.append({"layout": "pi0 (flow matching)", "bos": 0, "image": pi0_image, "prompt": PI0_PROMPT_TOKENS,
                 "state": PI0_STATE_TOKENS, "action": PI0_HORIZON, "stop": 0,
                 "total": pi0_image + PI0_PROMPT_TOKENS + PI0_STATE_TOKENS + PI0_HORIZON,
                 "note": f"{PI0_HORIZON} continuous {PI0_ACTION_DIM}-D vectors, no vocabulary"})
    return rows


# ------------------------------------------------------------------------------------------
#                          Flow matching (pi0): continuous actions, no tokens
# ------------------------------------------------------------------------------------------

def zscore(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalised, mean, std) per dimension; a constant dimension gets std 1 (openpi normalises pi0's
    actions by the training set's mean and std; here the chunk's own)."""
    mean, std = actions.mean(0), actions.std(0)
    std = np.where(std > 0, std, 1.0)
    return (actions - mean) / std, mean, std


def flow_times(count: object) -> np.ndarray:
    count = check.integer(count, "number of tau values", 2, FLOW_TIMES_MAX)
    return np.linspace(0.0, 1.0, count)


def flow_path(actions: np.ndarray, seed: object = 0, count: object = FLOW_TIMES_DEFAULT,
              euler_steps: object = PI0_EULER_STEPS) -> dict:
    """The straight probability path of flow matching (Lipman et al., 2023; Liu et al., 2023) for this chunk,
    in the pi0 paper's convention: x_tau = tau * chunk + (1 - tau) * noise, tau = 0 pure noise, tau = 1 the
    chunk (openpi's code runs time the other way, t = 1 - tau). The target velocity is
    u = d x_tau / d tau = chunk - noise, the same at every tau of this path. ``euler_steps`` Euler steps
    x <- x + u / steps from the noise land on the chunk (exactly: the path is straight).
    Everything is in z-scored units (the chunk's own mean and std per dimension)."""
    actions = validate(actions)
    seed = check.integer(seed, "noise seed", 0, A.SEED_MAX)
    taus = flow_times(count)
    steps = check.integer(euler_steps, "Euler steps", 1, EULER_MAX)
    chunk, mean, std = zscore(actions)
    noise = np.random.default_rng(seed).standard_normal(chunk.shape)  # (T, D)
    path = np.stack([tau * chunk + (1 - tau) * noise for tau in taus])  # (K, T, D)
    velocity = chunk - noise  # (T, D)
    x = noise.copy()
    euler = [x.copy()]
    for _ in range(steps):
        x = x + velocity / steps
        euler.append(x.copy())
    return {"taus": taus, "chunk": chunk, "noise": noise, "path": path, "velocity": velocity,
            "euler": np.stack(euler), "euler_steps": steps, "mean": mean, "std": std,
            "euler_max_error": float(np.abs(euler[-1] - chunk).max())}
