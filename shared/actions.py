"""Robot action chunks: a seeded generator of realistic 7-D chunks, and a parser for user data.

An *action chunk* is a (T, D) array: T control steps of a D-dimensional action. The generated
chunks follow the common 7-D end-effector layout of Open X-Embodiment / OpenVLA data:
six end-effector deltas per step (translation in metres, rotation in radians) plus an absolute
gripper command (1 = open, 0 = closed) that switches a few times per second at most.

The deltas are velocities integrated over one control period, v(t) / hz, where v(t) is a sum of
a few low-frequency sinusoids (a smooth arm motion). Because the motion lives in seconds, a
higher control frequency samples the same motion more densely, so consecutive actions become
more alike. That redundancy is what FAST (Pertsch et al., 2025) compresses.

FAST's front end lives here once, for the space and for the BPE recipe
(``shared/training/fast_bpe_actions.py``): bounds, normalisation, DCT-II, scale-and-round, the
integer <-> character map, and the byte table of byte-level BPE. ``corpus`` is the BPE's training
set, and ``corpus_bounds`` its per-dimension 1st/99th percentiles ("dataset bounds").

``parse_actions`` turns CSV text, NPY bytes or files, or JSON (a list of T lists of D numbers)
into a float64 (T, D) array, and raises ``ValueError`` saying what is allowed otherwise.

numpy only at import: the hub imports this module at start-up, so scipy is imported where the DCT runs.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path

import numpy as np

from shared import validate as check

ACTION_NAMES: tuple[str, ...] = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
MAX_STEPS = 1000  # longest chunk accepted (steps, T)
MAX_DIMS = 32  # widest action accepted (dimensions, D)
MIN_STEPS = 2  # a single step has no temporal structure to tokenize
MAX_TEXT_CHARS = 2_000_000  # pasted or uploaded text larger than this is refused
MAX_FILE_BYTES = 8_000_000
SEED_MAX = 2**32 - 1

# ------------------------------------------------------------------------------------------
#                                   Generated chunks
# ------------------------------------------------------------------------------------------

TRANSLATION_SPEED = (0.05, 0.25)  # m/s, amplitude range of each sinusoid (a slow tabletop arm)
ROTATION_SPEED = (0.1, 0.6)  # rad/s
GRIPPER_SWITCH_RATE = 1.0  # expected open/close switches per second


def generate_chunk(seed: int = 0, steps: int = 50, hz: float = 50.0, noise: float = 0.0,
                   bandwidth_hz: float = 1.5, components: int = 3) -> np.ndarray:
    """A (steps, 7) chunk: 6 smooth end-effector deltas plus a binary gripper.

    ``noise`` is the standard deviation of added Gaussian noise relative to each delta
    dimension's own spread (0 = perfectly smooth, 1 = noise as large as the motion); the gripper
    stays clean because grippers are commanded open or closed. ``bandwidth_hz`` is the highest
    frequency of the arm motion, in cycles per second of robot time.
    """
    steps, hz, noise = _check_generator_args(steps, hz, noise, bandwidth_hz, components)
    rng = np.random.default_rng(check.integer(seed, "seed", 0, SEED_MAX))
    t = np.arange(steps) / hz  # (T,) seconds
    actions = np.zeros((steps, 7))
    for d in range(6):
        low, high = TRANSLATION_SPEED if d < 3 else ROTATION_SPEED
        amp = rng.uniform(low, high, size=components) / np.arange(1, components + 1)  # slower parts dominate
        freq = rng.uniform(0.1, bandwidth_hz, size=components)  # (K,) Hz
        phase = rng.uniform(0, 2 * np.pi, size=components)
        velocity = (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None, :] + phase[:, None])).sum(0)  # (T,)
        velocity += rng.uniform(-0.3, 0.3) * high  # a steady drift towards the goal
        actions[:, d] = velocity / hz  # per-step delta = velocity x control period
    actions[:, 6] = _gripper(rng, steps, hz)
    if noise > 0:
        spread = actions[:, :6].std(axis=0) + 1e-12  # (6,)
        actions[:, :6] += rng.normal(size=(steps, 6)) * noise * spread
    return actions


def _gripper(rng: np.random.Generator, steps: int, hz: float) -> np.ndarray:
    """Open (1) or closed (0), switching at random instants (a Poisson process in seconds)."""
    state = float(rng.integers(0, 2))
    duration = steps / hz
    switches = np.sort(rng.uniform(0, duration, size=min(4, rng.poisson(GRIPPER_SWITCH_RATE * duration))))
    t = np.arange(steps) / hz
    flips = (t[:, None] >= switches[None, :]).sum(1)  # (T,) switches passed so far
    return np.where(flips % 2 == 0, state, 1.0 - state)


def _check_generator_args(steps, hz, noise, bandwidth_hz, components) -> tuple[int, float, float]:
    steps = check.integer(steps, "steps", MIN_STEPS, MAX_STEPS)
    hz = check.number(hz, "control frequency (Hz)", 1, 1000)
    noise = check.number(noise, "noise (relative to the motion's spread)", 0, 5)
    check.number(bandwidth_hz, "bandwidth (Hz)", 0.1, hz / 2, above=True)  # Nyquist: at most half the rate
    check.integer(components, "components", 1, 16)
    return steps, hz, noise


def corpus(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` varied chunks for training a tokenizer: 1-second chunks at 10-50 Hz (FAST's
    recommended input), some shorter or longer, with noise from none to moderate."""
    rng = np.random.default_rng(seed)
    chunks = []
    for _ in range(n):
        hz = float(rng.choice([10, 15, 20, 25, 30, 40, 50]))
        seconds = float(rng.choice([0.5, 1.0, 1.0, 1.0, 2.0]))
        steps = max(MIN_STEPS, int(round(hz * seconds)))
        noise = float(rng.choice([0.0, 0.0, 0.02, 0.05, 0.1, 0.2, 0.4]))
        chunks.append(generate_chunk(int(rng.integers(2**31)), steps, hz, noise,
                                     bandwidth_hz=min(2.5, hz / 2)))
    return chunks


# ------------------------------------------------------------------------------------------
#                  Bounds: per chunk, or over the dataset (the BPE's corpus)
# ------------------------------------------------------------------------------------------

DATASET_SEED = 0  # the corpus seed of `python -m shared.training fast-bpe-actions` (its model card)


def quantile_bounds(actions: np.ndarray, q: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (lo, hi) = (q, 1 - q) quantiles over every step of ``actions`` (T, D).

    Over one chunk these are per-chunk bounds; over a whole dataset, the statistics OpenVLA and
    FAST normalise with. A dimension whose quantiles coincide (say a gripper closed for fewer than
    1% of steps) falls back to its min and max; a constant dimension gets a span of 1.
    """
    lo, hi = np.quantile(actions, q, axis=0), np.quantile(actions, 1 - q, axis=0)  # (D,), (D,)
    flat = hi <= lo
    lo, hi = np.where(flat, actions.min(0), lo), np.where(flat, actions.max(0), hi)
    hi = np.where(hi <= lo, lo + 1.0, hi)
    return lo, hi


@functools.lru_cache(maxsize=4)
def corpus_bounds(n: int, seed: int = DATASET_SEED, q: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Dataset bounds: ``quantile_bounds`` over every step of ``corpus(n, seed)`` (computed once, a few
    seconds for 20,000 chunks), as OpenVLA computes ``np.quantile(actions, 0.01, axis=0)`` over all
    actions of its training set. Read-only arrays: the cache hands the same ones to every caller."""
    lo, hi = quantile_bounds(np.concatenate(corpus(n, seed)), q)  # (D,), (D,) over (sum of T, D)
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


def to_unit(actions: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Map lo -> -1 and hi -> +1 per dimension (values beyond the bounds go past +-1, unclipped)."""
    return 2.0 * (actions - lo) / (hi - lo) - 1.0


def from_unit(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (x + 1.0) * 0.5 * (hi - lo)


# ------------------------------------------------------------------------------------------
#                  FAST's front end (shared by the space and its BPE recipe)
# ------------------------------------------------------------------------------------------
# FAST (Pertsch et al., 2025) feeds integer DCT coefficients to a byte-level BPE by turning each
# integer into one Unicode character. The reference processor shifts by the smallest coefficient
# of its training corpus and clamps anything lower to it, which silently loses coefficients at
# larger scales. Here a zig-zag map (0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4, ...) gives every
# integer its own character, so encode -> decode is exact at any scale. UTF-16 surrogates
# (U+D800-U+DFFF) are not characters, so codes from there on are moved past them.

_SURROGATES = (0xD800, 0xE000)
MAX_CODE = 0x10FFFF - (_SURROGATES[1] - _SURROGATES[0])
MAX_COEFFICIENT = MAX_CODE // 2  # largest |integer| that has a character


def fast_grid(actions: np.ndarray, scale: float, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients x scale before rounding, rounded integers), both (T, D) with row k = frequency k:
    normalise (lo -> -1, hi -> +1), DCT-II along time per dimension, multiply by ``scale``, round."""
    from scipy.fft import dct

    coefficients = dct(to_unit(actions, lo, hi), type=2, axis=0, norm="ortho") * scale  # (T, D)
    return coefficients, np.round(coefficients).astype(np.int64)  # rounding: FAST's only lossy step


def grid_actions(rounded: np.ndarray, scale: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Inverse of ``fast_grid`` after rounding: / scale, inverse DCT per dimension, original units (T, D)."""
    from scipy.fft import idct

    return from_unit(idct(rounded / scale, type=2, axis=0, norm="ortho"), lo, hi)  # (T, D)


def grid_text(rounded: np.ndarray) -> str:
    """A (T, D) integer grid as FAST's string: coefficient k of every dimension before k + 1."""
    return coefficients_to_text(np.asarray(rounded).reshape(-1))  # row-major = frequency-major


def chunk_text(actions: np.ndarray, scale: float, quantile: float = 0.01) -> str:
    """One chunk -> the string the shipped BPE was trained on (bounds: the chunk's own quantiles)."""
    return grid_text(fast_grid(actions, scale, *quantile_bounds(actions, quantile))[1])


def coefficients_to_text(values: np.ndarray) -> str:
    """Integers -> one character each (zig-zag code, surrogates skipped)."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and np.abs(values).max() > MAX_COEFFICIENT:
        raise ValueError(f"a rounded DCT coefficient is {int(np.abs(values).max()):,}, beyond the "
                         f"{MAX_COEFFICIENT:,} that have a character; lower the scale or remove outliers")
    codes = np.where(values >= 0, 2 * values, -2 * values - 1)  # zig-zag
    codes = np.where(codes >= _SURROGATES[0], codes + (_SURROGATES[1] - _SURROGATES[0]), codes)
    return "".join(map(chr, codes.tolist()))


def text_to_coefficients(text: str) -> np.ndarray:
    """Inverse of ``coefficients_to_text``; characters in the surrogate range are refused."""
    codes = np.fromiter(map(ord, text), dtype=np.int64, count=len(text))
    if ((codes >= _SURROGATES[0]) & (codes < _SURROGATES[1])).any():
        raise ValueError("the text holds surrogate code points, which no coefficient maps to")
    codes = np.where(codes >= _SURROGATES[1], codes - (_SURROGATES[1] - _SURROGATES[0]), codes)
    return np.where(codes % 2 == 0, codes // 2, -(codes + 1) // 2)


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table that byte-level BPE works on (Radford et al., 2019):
    printable Latin-1 bytes stand for themselves, the other 68 take U+0100 onwards in byte order."""
    keep = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)}
    others = iter(range(256, 512))
    return {b: chr(b) if b in keep else chr(next(others)) for b in range(256)}


@functools.cache
def _byte_of_symbol() -> dict[str, int]:
    return {symbol: b for b, symbol in bytes_to_unicode().items()}


def bpe_bytes(bpe, ids: list[int]) -> bytes:
    """The raw bytes that byte-level BPE ids stand for (``bpe``: a ``tokenizers.Tokenizer``; each id
    is a run of byte symbols). Unlike ``bpe.decode`` this keeps bytes that are not valid UTF-8."""
    byte_of = _byte_of_symbol()
    return bytes(byte_of[symbol] for i in ids for symbol in bpe.id_to_token(int(i)))


# ------------------------------------------------------------------------------------------
#                                   User data
# ------------------------------------------------------------------------------------------

FORMATS_HELP = ("a JSON list of T lists of D numbers, CSV text with one step per row (an optional "
                "header row of names), or a .npy file of shape (T, D)")


def parse_actions(value: object) -> np.ndarray:
    """User data -> float64 (T, D), with 2 <= T <= MAX_STEPS and 1 <= D <= MAX_DIMS, all finite.

    ``value`` may be JSON or CSV text, NPY bytes, a ``Path`` to a .npy/.csv/.json/.txt file,
    a nested list, or an array. A ``str`` is always parsed as text, never opened as a path.
    """
    if value is None:
        raise ValueError(f"no actions given; provide {FORMATS_HELP}")
    if isinstance(value, np.ndarray):
        return validate(value)
    if isinstance(value, (list, tuple)):
        return _from_nested(value)
    if isinstance(value, Path):  # a string is always data, never a path: an API caller must not read server files
        return parse_file(value)
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if raw.startswith(b"\x93NUMPY"):
            return _from_npy(raw)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"the data is neither a .npy file nor UTF-8 text; provide {FORMATS_HELP}") from None
    if not isinstance(value, str):
        raise ValueError(f"unsupported input type {type(value).__name__}; provide {FORMATS_HELP}")
    return parse_text(value)


def parse_file(path: str | Path) -> np.ndarray:
    """A .npy, .csv, .json or .txt file -> (T, D)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"file not found: {path.name}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
    raw = path.read_bytes()
    if raw.startswith(b"\x93NUMPY"):
        return _from_npy(raw)
    if path.suffix.lower() == ".npy":
        raise ValueError("the .npy file is not a valid NumPy array file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is neither a .npy file nor UTF-8 text; provide {FORMATS_HELP}") from None
    return parse_text(text)


def parse_text(text: str) -> np.ndarray:
    """JSON (if it starts with ``[``) or CSV text -> (T, D)."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    text = text.strip().lstrip("\ufeff")
    if not text:
        raise ValueError(f"the action chunk is empty; provide {FORMATS_HELP}")
    if text.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"invalid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                             "expected a list of T lists of D numbers") from None
        return _from_nested(data)
    return _from_csv(text)


def _from_npy(raw: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as err:  # corrupted header, object arrays (pickles are refused)
        raise ValueError(f"could not read the .npy data ({err}); it must be a numeric (T, D) array") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise ValueError(f"the .npy array has dtype {getattr(array, 'dtype', '?')}; it must hold numbers")
    return validate(array)


def _from_nested(data: object) -> np.ndarray:
    if not isinstance(data, (list, tuple)):
        raise ValueError("expected a list of T lists of D numbers")
    if len(data) == 0:
        raise ValueError("the action chunk is empty (no steps)")
    if len(data) > MAX_STEPS:
        raise ValueError(f"the chunk has {len(data)} steps; at most {MAX_STEPS} are allowed")
    if not all(isinstance(row, (list, tuple)) for row in data):
        raise ValueError("expected a list of T lists of D numbers (each step must be a list)")
    widths = {len(row) for row in data}
    if len(widths) > 1:
        first = len(data[0])
        bad = next(i for i, row in enumerate(data) if len(row) != first)
        raise ValueError(f"ragged rows: step 0 has {first} values but step {bad} has {len(data[bad])}; "
                         "every step must have the same number of dimensions")
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"step {i}, dimension {j} is {v!r}, not a number")
    return validate(np.asarray(data, dtype=np.float64).reshape(len(data), -1))


def _from_csv(text: str) -> np.ndarray:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"the action chunk is empty; provide {FORMATS_HELP}")
    sample = lines[0]
    delimiter = next((d for d in (",", ";", "\t") if d in sample), None)
    if delimiter is None:
        rows = [line.split() for line in lines]
    else:
        rows = [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=delimiter)]
    header = int(len(rows) > 1 and all(not _is_number(cell) for cell in rows[0]))
    rows = rows[header:]  # skip a header row of column names
    if len(rows) > MAX_STEPS:
        raise ValueError(f"the chunk has {len(rows)} steps; at most {MAX_STEPS} are allowed")
    widths = [len(r) for r in rows]
    if len(set(widths)) > 1:
        bad = next(i for i, w in enumerate(widths) if w != widths[0])
        raise ValueError(f"ragged rows: CSV row 0 has {widths[0]} values but row {bad} has {widths[bad]}; "
                         "every step must have the same number of dimensions")
    values = np.empty((len(rows), widths[0]))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if not _is_number(cell):
                raise ValueError(f"non-numeric CSV value {cell!r} at line {i + header + 1}, column {j + 1}; "
                                 "every cell must be a number")
            values[i, j] = float(cell)
    return validate(values)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return cell.strip() != ""


def validate(array: np.ndarray) -> np.ndarray:
    """Check shape limits and finiteness; return a float64 (T, D) copy."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"actions must be numbers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"actions must be a 2-D (T steps, D dimensions) array, got shape {array.shape}")
    steps, dims = array.shape
    if steps == 0 or dims == 0:
        raise ValueError(f"the action chunk is empty (shape {array.shape})")
    if steps < MIN_STEPS:
        raise ValueError(f"the chunk has a single step; at least {MIN_STEPS} steps are needed "
                         "(tokenizers compress along time)")
    if steps > MAX_STEPS:
        raise ValueError(f"the chunk has {steps} steps; at most {MAX_STEPS} are allowed")
    if dims > MAX_DIMS:
        raise ValueError(f"the chunk has {dims} dimensions; at most {MAX_DIMS} are allowed")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        i, j = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"the chunk contains NaN or infinite values (first at step {i}, dimension {j}); "
                         "all values must be finite")
    return array


def to_json(actions: np.ndarray, decimals: int = 6) -> str:
    """A chunk as the JSON text ``parse_actions`` reads back."""
    return json.dumps(np.round(actions, decimals).tolist())


def to_csv(actions: np.ndarray, names: tuple[str, ...] | None = None, decimals: int = 6) -> str:
    """A chunk as CSV text, with a header row when ``names`` are given."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if names:
        writer.writerow(names)
    writer.writerows(np.round(actions, decimals).tolist())
    return out.getvalue()
