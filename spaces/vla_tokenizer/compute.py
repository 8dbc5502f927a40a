"""Robot actions as tokens: uniform 256-bin tokenization against FAST (DCT + BPE), measured.

A vision-language-action model (VLA) emits robot actions as tokens of a language model. This
tutorial compares the two tokenizers autoregressive VLAs use, on the same (T, D) action chunk:

- **bin256** (RT-2, Brohan et al., 2023; OpenVLA, Kim et al., 2024): normalise each dimension to
  [lo, hi] (min-max, or the 1st/99th percentiles as OpenVLA), cut it into 256 equal bins,
  token = clip(floor((a - lo) / (hi - lo) * 256), 0, 255), decode to the bin centre. One token per
  dimension per step, so T x D tokens; the vocabulary is 256 tokens shared by every dimension
  (not 256^D). Error at most half a bin width inside [lo, hi].
- **FAST** (Pertsch et al., 2025, arXiv:2501.09747): quantile-normalise to [-1, 1], DCT-II along
  time per dimension, multiply by ``scale`` and round, flatten low frequencies first across
  dimensions, then a byte-level BPE (vocabulary 1024, ``shared/weights/fast-bpe-actions``) merges
  frequent runs. Smooth motion has few non-zero low-frequency coefficients, so it compresses well;
  rounding makes it lossy, and ``scale`` trades accuracy against length. One token stands for a
  variable number of coefficients, so changing one token can shift every coefficient after it.

Decoding inverts every step: BPE ids -> bytes -> characters -> integers -> / scale -> inverse DCT
-> denormalise. Errors are measured in the original units of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import dct, idct

from shared.actions import (
    MAX_STEPS,
    coefficients_to_text,
    from_unit,
    quantile_bounds,
    text_to_coefficients,
    to_unit,
    validate,
)

N_BINS = 256  # RT-2 / OpenVLA: 256 bins per dimension, one shared vocabulary of 256 tokens
FAST_VOCAB = 1024  # FAST's BPE vocabulary (Pertsch et al., 2025)
DEFAULT_SCALE = 10.0  # FAST's default scale
MAX_SCALE = 1000.0
METHODS: tuple[str, ...] = ("bin256", "fast")
BIN_NORMS: tuple[str, ...] = ("minmax", "quantile")
TOKENIZER = "fast-bpe-actions"  # the registry name of the BPE (shared/weights/fast-bpe-actions)
QUANTILE = 0.01  # 1st and 99th percentiles
SWEEP_SCALES: tuple[float, ...] = (1, 2, 3, 5, 10, 20, 50, 100, 200)
NOISE_LEVELS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def check_scale(scale: float) -> float:
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a number, got {scale!r}") from None
    if not np.isfinite(scale) or scale <= 0 or scale > MAX_SCALE:
        raise ValueError(f"scale must be greater than 0 and at most {MAX_SCALE:g}, got {scale}")
    return scale


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    return method


# ------------------------------------------------------------------------------------------
#                          Uniform binning (RT-2 / OpenVLA)
# ------------------------------------------------------------------------------------------

@dataclass
class BinResult:
    tokens: np.ndarray  # (T, D) ints in [0, 255]
    decoded: np.ndarray  # (T, D) bin centres
    lo: np.ndarray  # (D,)
    hi: np.ndarray  # (D,)

    @property
    def width(self) -> np.ndarray:  # (D,) bin width per dimension
        return (self.hi - self.lo) / N_BINS

    @property
    def flat_tokens(self) -> list[int]:  # step by step, all dimensions of a step together
        return self.tokens.reshape(-1).tolist()


def bin_bounds(actions: np.ndarray, norm: str = "minmax") -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension [lo, hi]: min-max, or the 1st/99th percentiles (OpenVLA; values outside clip)."""
    if norm == "minmax":
        return actions.min(0), actions.max(0)
    if norm == "quantile":
        return np.quantile(actions, QUANTILE, axis=0), np.quantile(actions, 1 - QUANTILE, axis=0)
    raise ValueError(f"unknown normalisation {norm!r}; choose one of {list(BIN_NORMS)}")


def bin_encode(actions: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """token = clip(floor((a - lo) / (hi - lo) * 256), 0, 255); a constant dimension gets token 0."""
    span = np.where(hi > lo, hi - lo, 1.0)  # (D,)
    return np.clip(np.floor((actions - lo) / span * N_BINS), 0, N_BINS - 1).astype(np.int64)  # (T, D)


def bin_decode(tokens: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Token k -> centre of bin k, lo + (k + 0.5) * (hi - lo) / 256 (a constant dimension -> lo)."""
    return lo + (np.asarray(tokens) + 0.5) * (hi - lo) / N_BINS  # (T, D)


def bin256(actions: np.ndarray, norm: str = "minmax") -> BinResult:
    lo, hi = bin_bounds(actions, norm)
    tokens = bin_encode(actions, lo, hi)
    return BinResult(tokens, bin_decode(tokens, lo, hi), lo, hi)


# ------------------------------------------------------------------------------------------
#                          FAST: DCT + scale/round + byte-level BPE
# ------------------------------------------------------------------------------------------

def load_bpe():
    """The trained byte-level BPE (a ``tokenizers.Tokenizer``), loaded once through the registry."""
    from shared.models import load

    return load(TOKENIZER, device="cpu").processor.backend_tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table that byte-level BPE works on (Radford et al., 2019)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_BYTE_OF_SYMBOL = {symbol: b for b, symbol in _bytes_to_unicode().items()}


def bpe_bytes(bpe, ids: list[int]) -> bytes:
    """The raw bytes the BPE ids stand for (each id is a run of byte symbols)."""
    return bytes(_BYTE_OF_SYMBOL[symbol] for i in ids for symbol in bpe.id_to_token(int(i)))


@dataclass
class FastResult:
    tokens: list[int]  # BPE ids
    lo: np.ndarray  # (D,) normalisation bounds (1st/99th percentiles)
    hi: np.ndarray  # (D,)
    normalised: np.ndarray  # (T, D) in about [-1, 1]
    coefficients: np.ndarray  # (T, D) DCT coefficients x scale, before rounding (row k = frequency k)
    rounded: np.ndarray  # (T, D) integers
    text: str  # one character per coefficient, frequency-major
    decoded: np.ndarray  # (T, D) in original units
    scale: float


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


def fast_encode(actions: np.ndarray, scale: float = DEFAULT_SCALE, bpe=None) -> FastResult:
    """Encode one chunk with FAST and decode it back (so the result carries its error)."""
    scale = check_scale(scale)
    bpe = bpe or load_bpe()
    lo, hi = quantile_bounds(actions, QUANTILE)  # (D,), (D,)
    normalised = to_unit(actions, lo, hi)  # (T, D), 1st/99th percentiles -> -1/+1
    coefficients = dct(normalised, type=2, axis=0, norm="ortho") * scale  # (T, D), row k = frequency k
    rounded = np.round(coefficients).astype(np.int64)  # (T, D), the only lossy step
    text = coefficients_to_text(rounded.reshape(-1))  # (T*D,) chars: all dims of frequency 0, then 1, ...
    encoding = bpe.encode(text)
    decoded = fast_decode(encoding.ids, actions.shape, scale, lo, hi, bpe)
    return FastResult(encoding.ids, lo, hi, normalised, coefficients, rounded, text, decoded.actions, scale)


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
    raw = bpe_bytes(bpe, tokens)
    text = raw.decode("utf-8", errors="surrogateescape")  # a bad byte becomes a lone surrogate U+DC80..DCFF
    invalid = sum(0xDC80 <= ord(c) <= 0xDCFF for c in text)
    text = "".join(c for c in text if not 0xDC80 <= ord(c) <= 0xDCFF)
    values = text_to_coefficients(text)  # (n,)
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
    normalised = idct(rounded / scale, type=2, axis=0, norm="ortho")  # (T, D)
    return FastDecoding(from_unit(normalised, lo, hi), rounded, read, expected, invalid, "; ".join(notes))


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
    """The public endpoint's result: tokens, num_tokens, decoded (T x D) and the errors."""
    method = check_method(method)
    scale = check_scale(scale)  # validated for both methods, used by FAST
    actions = validate(actions)
    if method == "bin256":
        result = bin256(actions, "minmax")
        tokens, decoded = result.flat_tokens, result.decoded
        extra = {"vocab_size": N_BINS, "normalisation": "min-max per dimension",
                 "bin_width": result.width.tolist()}
    else:
        result = fast_encode(actions, scale)
        tokens, decoded = result.tokens, result.decoded
        extra = {"vocab_size": FAST_VOCAB, "normalisation": "1st/99th percentile per dimension -> [-1, 1]",
                 "scale": scale, "nonzero_coefficients": int(np.count_nonzero(result.rounded))}
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
    bins: BinResult
    fast: FastResult
    bin_errors: dict
    fast_errors: dict

    @property
    def ratio(self) -> float:  # bin256 tokens per FAST token
        return self.bins.tokens.size / max(1, len(self.fast.tokens))


def compare(actions: np.ndarray, scale: float = DEFAULT_SCALE, bin_norm: str = "minmax") -> Comparison:
    actions = validate(actions)
    bins = bin256(actions, bin_norm)
    fast = fast_encode(actions, scale)
    return Comparison(actions, bins, fast, abs_errors(actions, bins.decoded), abs_errors(actions, fast.decoded))


def table_rows(c: Comparison, names: list[str]) -> list[list]:
    """One row per dimension: range, bin width, bin256 max/mean error, FAST max/mean error, non-zero
    rounded DCT coefficients. Errors in the dimension's own units."""
    rows = []
    rng = c.actions.max(0) - c.actions.min(0)
    for d, name in enumerate(names):
        rows.append([
            name, float(rng[d]), float(c.bins.width[d]),
            c.bin_errors["per_dim_max_abs_error"][d], c.bin_errors["per_dim_mean_abs_error"][d],
            c.fast_errors["per_dim_max_abs_error"][d], c.fast_errors["per_dim_mean_abs_error"][d],
            int(np.count_nonzero(c.fast.rounded[:, d])),
        ])
    return rows


def dim_names(dims: int) -> list[str]:
    from shared.actions import ACTION_NAMES

    return list(ACTION_NAMES) if dims == len(ACTION_NAMES) else [f"a{d}" for d in range(dims)]


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


def scale_sweep(actions: np.ndarray, scales: tuple[float, ...] = SWEEP_SCALES) -> list[dict]:
    """FAST at each scale: token count and error (original units, and relative to each range)."""
    actions = validate(actions)
    bpe = load_bpe()
    rows = []
    for s in scales:
        fast = fast_encode(actions, s, bpe)
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
                seed: int = 0) -> list[dict]:
    """FAST token count as noise is added to a chunk (bin256 stays T x D whatever the noise)."""
    actions = validate(actions)
    bpe = load_bpe()
    rows = []
    for level in levels:
        noisy = add_noise(actions, level, seed)
        fast = fast_encode(noisy, scale, bpe)
        rows.append({"noise": float(level), "fast_tokens": len(fast.tokens), "bin256_tokens": noisy.size,
                     "nonzero_coefficients": int(np.count_nonzero(fast.rounded))})
    return rows


def frequency_sweep(seed: int, seconds: float = 1.0, rates: tuple[float, ...] = (5, 10, 15, 20, 30, 50, 100, 200),
                    noise: float = 0.0, scale: float = DEFAULT_SCALE) -> list[dict]:
    """The same robot motion sampled at several control frequencies: bin256 grows with T, FAST
    stays nearly flat because a denser sampling of a smooth motion adds no new frequencies."""
    from shared.actions import generate_chunk

    bpe = load_bpe()
    rows = []
    for hz in rates:
        steps = int(round(seconds * hz))
        if steps < 2 or steps > MAX_STEPS:
            continue
        chunk = generate_chunk(seed, steps, hz, noise, bandwidth_hz=min(1.5, hz / 2))
        rows.append({"hz": float(hz), "steps": steps, "bin256_tokens": chunk.size,
                     "fast_tokens": len(fast_encode(chunk, scale, bpe).tokens)})
    return rows


# ------------------------------------------------------------------------------------------
#                          Brittleness: change one token, decode
# ------------------------------------------------------------------------------------------

def perturb(actions: np.ndarray, scale: float = DEFAULT_SCALE, index: int = 0, delta: int = 1,
            bin_norm: str = "minmax") -> dict:
    """Add ``delta`` to token ``index`` of each tokenizer's sequence and decode both.

    bin256: one entry moves by ``delta`` bin widths and nothing else changes. FAST: the token
    may stand for a different number of coefficients, so everything after it shifts to other
    frequencies and dimensions, and a one-coefficient change spreads over the whole time axis.
    """
    actions = validate(actions)
    scale = check_scale(scale)
    if isinstance(index, bool) or int(index) != index or isinstance(delta, bool) or int(delta) != delta:
        raise ValueError("index and delta must be integers")
    index, delta = int(index), int(delta)
    if delta == 0:
        raise ValueError("delta must not be 0 (it is the change applied to one token id)")
    bpe = load_bpe()
    c = compare(actions, scale, bin_norm)
    steps, dims = actions.shape

    # bin256: one id in [0, 255]
    b_flat = c.bins.tokens.reshape(-1).copy()  # (T*D,)
    b_index = min(max(index, 0), b_flat.size - 1)
    b_old = int(b_flat[b_index])
    b_new = b_old + delta if 0 <= b_old + delta < N_BINS else b_old - delta  # stay inside [0, 255]
    b_flat[b_index] = int(np.clip(b_new, 0, N_BINS - 1))
    b_decoded = bin_decode(b_flat.reshape(steps, dims), c.bins.lo, c.bins.hi)  # (T, D)

    # FAST: one BPE id in [0, vocab)
    vocab = bpe.get_vocab_size()
    f_tokens = list(c.fast.tokens)
    f_index = min(max(index, 0), len(f_tokens) - 1)
    f_old = f_tokens[f_index]
    f_tokens[f_index] = (f_old + delta) % vocab
    f_dec = fast_decode(f_tokens, (steps, dims), scale, c.fast.lo, c.fast.hi, bpe)

    b_change = np.abs(b_decoded - c.bins.decoded)  # (T, D)
    f_change = np.abs(f_dec.actions - c.fast.decoded)  # (T, D)
    span = np.where(np.ptp(actions, 0) > 0, np.ptp(actions, 0), 1.0)
    return {
        "bin256": {"index": b_index, "old_id": b_old, "new_id": int(b_flat[b_index]),
                   "changed_entries": int(np.count_nonzero(b_change > 1e-12)),
                   "max_change": float(b_change.max()), "max_change_relative": float((b_change / span).max()),
                   "change": b_change, "decoded": b_decoded},
        "fast": {"index": f_index, "old_id": int(f_old), "new_id": int(f_tokens[f_index]),
                 "old_piece": list(map(int, text_to_coefficients(_piece(bpe, f_old)))),
                 "new_piece": list(map(int, text_to_coefficients(_piece(bpe, f_tokens[f_index])))),
                 "coefficients_read": f_dec.coefficients_read, "expected": f_dec.expected,
                 "invalid_bytes": f_dec.invalid_bytes, "note": f_dec.note,
                 "changed_coefficients": int(np.count_nonzero(f_dec.rounded != c.fast.rounded)),
                 "changed_entries": int(np.count_nonzero(f_change > 1e-12)),
                 "max_change": float(f_change.max()), "max_change_relative": float((f_change / span).max()),
                 "change": f_change, "decoded": f_dec.actions},
        "comparison": c,
    }


def _piece(bpe, token_id: int) -> str:
    """The characters one token stands for, if its bytes are complete UTF-8 (else only the valid ones)."""
    text = bpe_bytes(bpe, [token_id]).decode("utf-8", errors="surrogateescape")
    return "".join(c for c in text if not 0xDC80 <= ord(c) <= 0xDCFF)
