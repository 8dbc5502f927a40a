"""Video transformers: the maths, as typed pure functions (no UI library here).

- ``attention_cost``: tokens, attention multiply-accumulates and attention-matrix memory of three
  space-time attention patterns over tubelet tokens (the ``video_attention_cost`` endpoint);
- ``cost_curves``: the same as the clip grows in frames and in resolution;
- ``tubelets``: a clip cut into t x p x p tubelets, the input of the tubelet embedding;
- ``pick_clip`` and ``classify``: a held-out moving-shapes clip through the embedded video ViT, with its
  attention read from ``output_attentions=True`` (eager attention).

Cost formulas (MACs of the two attention matrix products only, Q·Kᵀ and A·V, projections excluded;
with h heads of d/h dimensions the head count cancels: h · n² · d/h = n² · d per product):

- joint space-time (ViViT model 1, Arnab et al., 2021; VideoMAE, Tong et al., 2022): one sequence of
  N = T'·S tokens per layer, T' = frames / tubelet, S = (image / patch)²: 2·N²·d per layer;
- divided space-time (TimeSformer, Bertasius et al., 2021): per layer, temporal attention over T' tokens
  at each of the S positions, then spatial attention over S tokens in each of the T' time steps:
  2·d·(S·T'² + T'·S²) per layer;
- factorised encoder (ViViT model 2, Arnab et al., 2021): a spatial encoder of L layers on each time step
  (2·d·T'·S² per layer), then a temporal encoder of L layers over the T' per-time-step representations
  (2·d·T'² per layer). Class tokens are left out everywhere, as the endpoint defines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared import validate

from .options import (
    ANY_DIRECTION,
    BYTES_FP32,
    CAPS,
    MAX_MATRIX_BYTES,
    MAX_TOKENS,
    MODE_NAMES,
    MODEL,
    check_clip_index,
)

# --------------------------------------------------------------------------------------
#                                   Cost of the three patterns
# --------------------------------------------------------------------------------------


def check_shape(frames, image_size, patch_size, tubelet) -> tuple[int, int, int, int]:
    """Clean (frames, image size, patch size, tubelet), or ``ValueError`` saying what is wrong."""
    f = validate.integer(frames, "frames", *CAPS["frames"])
    s = validate.integer(image_size, "image size", *CAPS["image_size"])
    p = validate.integer(patch_size, "patch size", *CAPS["patch_size"])
    t = validate.integer(tubelet, "tubelet", *CAPS["tubelet"])
    if f % t:
        raise ValueError(f"frames {f} is not divisible by the tubelet {t}: the tubelets must tile the clip in "
                         f"time (try {max(t, f - f % t)} or {f + t - f % t} frames)")
    if s % p:
        raise ValueError(f"image size {s} is not divisible by patch size {p}: the patches must tile each frame "
                         f"(try {max(p, s - s % p)} or {s + p - s % p})")
    return f, s, p, t


def _macs(mode: str, t: int, s: int, d: int, layers: int) -> tuple[int, int]:
    """(temporal, spatial-or-joint) attention MACs of all layers; see the module docstring."""
    if mode == "joint":
        n = t * s
        return 0, layers * 2 * n * n * d
    if mode == "divided":
        return layers * 2 * d * s * t * t, layers * 2 * d * t * s * s
    return layers * 2 * d * t * t, layers * 2 * d * t * s * s  # factorised: temporal encoder, spatial encoder


def _matrix_entries(mode: str, t: int, s: int) -> int:
    """Attention-matrix entries of the largest single layer, one head, batch 1:
    joint N²; divided S·T'² (temporal) + T'·S² (spatial), both inside one block; factorised T'·S²
    (a spatial-encoder layer; a temporal-encoder layer holds only T'²)."""
    if mode == "joint":
        return (t * s) ** 2
    if mode == "divided":
        return s * t * t + t * s * s
    return max(t * s * s, t * t)


def attention_cost(frames, image_size, patch_size, tubelet, hidden_size, layers, mode) -> dict:
    """The ``video_attention_cost`` stats: ``tokens`` (no class token), ``attention_macs`` (Q·Kᵀ plus A·V of
    all layers; factorised: both encoders, ``layers`` each) and ``attention_matrix_bytes`` (fp32, one layer,
    one head), with the grid and the temporal / spatial split."""
    f, size, p, tub = check_shape(frames, image_size, patch_size, tubelet)
    d = validate.integer(hidden_size, "hidden size", *CAPS["hidden_size"])
    n_layers = validate.integer(layers, "layers", *CAPS["layers"])
    mode = validate.choice(mode, "mode", MODE_NAMES)
    t, g = f // tub, size // p
    s = g * g
    tokens = t * s
    if tokens > MAX_TOKENS:
        raise ValueError(f"{tokens:,} tokens ({t} × {g} × {g}) is more than the cap of {MAX_TOKENS:,}: use "
                         "fewer frames, a longer tubelet, a larger patch or a smaller image")
    entries = _matrix_entries(mode, t, s)
    nbytes = entries * BYTES_FP32
    if nbytes > MAX_MATRIX_BYTES:
        raise ValueError(f"one layer's attention matrix would take {nbytes / 2**30:,.1f} GiB (fp32, one head) "
                         f"with {mode} attention over {tokens:,} tokens, more than the cap of "
                         f"{MAX_MATRIX_BYTES / 2**30:.0f} GiB: use fewer tokens or a factorised pattern")
    temporal, spatial = _macs(mode, t, s, d, n_layers)
    return {
        "mode": mode, "tokens": tokens, "grid": [t, g, g],
        "attention_macs": temporal + spatial,
        "attention_matrix_bytes": nbytes,
        "attention_matrix_entries": entries,
        "temporal_macs": temporal, "spatial_macs": spatial,  # joint: all in "spatial" (one space-time sequence)
        "frames": f, "image_size": size, "patch_size": p, "tubelet": tub, "hidden_size": d, "layers": n_layers,
        "attention_layers": n_layers * (2 if mode == "factorised" else 1),
    }


def cost_table(frame_counts, image_size, patch_size, tubelet, hidden_size, layers) -> list[dict]:
    """One row per frame count: every mode's GMACs and matrix MiB, and the joint / divided ratios."""
    rows = []
    for f in frame_counts:
        c = {m: attention_cost(f, image_size, patch_size, tubelet, hidden_size, layers, m) for m in MODE_NAMES}
        row = {"frames": f, "tokens": c["joint"]["tokens"]}
        for m in MODE_NAMES:
            row[f"{m} GMACs"] = round(c[m]["attention_macs"] / 1e9, 3)
        for m in MODE_NAMES:
            row[f"{m} matrix MiB"] = round(c[m]["attention_matrix_bytes"] / 2**20, 3)
        row["joint / divided MACs"] = round(c["joint"]["attention_macs"] / c["divided"]["attention_macs"], 2)
        row["joint / divided memory"] = round(c["joint"]["attention_matrix_bytes"]
                                              / c["divided"]["attention_matrix_bytes"], 2)
        rows.append(row)
    return rows


@dataclass
class Curves:
    frames: list[int]  # x of the frame sweep (image size fixed)
    sizes: list[int]  # x of the resolution sweep (frames fixed)
    by_frames: dict[str, dict[str, list]]  # mode -> {"macs": [...], "bytes": [...]}; None beyond a cap
    by_size: dict[str, dict[str, list]]
    fixed: dict


def _sweep(points, make) -> dict[str, dict[str, list]]:
    out = {m: {"macs": [], "bytes": []} for m in MODE_NAMES}
    for x in points:
        for m in MODE_NAMES:
            try:
                c = make(x, m)
                out[m]["macs"].append(c["attention_macs"])
                out[m]["bytes"].append(c["attention_matrix_bytes"])
            except ValueError:  # beyond a cap: a gap in the curve
                out[m]["macs"].append(None)
                out[m]["bytes"].append(None)
    return out


def cost_curves(frames, image_size, patch_size, tubelet, hidden_size, layers, points: int = 8) -> Curves:
    """Every mode's cost as the clip grows: frames = tubelet·2^k (image fixed) and image = patch·2^k·... up to
    ``points`` doublings from the smallest legal value (frames fixed). Points beyond a cap are None."""
    base = attention_cost(frames, image_size, patch_size, tubelet, hidden_size, layers, "joint")
    f, size, p, tub, d, n_layers = (base[k] for k in ("frames", "image_size", "patch_size", "tubelet",
                                                       "hidden_size", "layers"))
    frame_points = sorted({tub * 2**k for k in range(points)} | {f})
    size_points = sorted({p * 2**k for k in range(points) if p * 2**k <= CAPS["image_size"][1]} | {size})
    by_frames = _sweep(frame_points, lambda x, m: attention_cost(x, size, p, tub, d, n_layers, m))
    by_size = _sweep(size_points, lambda x, m: attention_cost(f, x, p, tub, d, n_layers, m))
    return Curves(frame_points, size_points, by_frames, by_size,
                  {"frames": f, "image_size": size, "patch_size": p, "tubelet": tub, "hidden_size": d,
                   "layers": n_layers})


# --------------------------------------------------------------------------------------
#                                   Tubelet tokenisation
# --------------------------------------------------------------------------------------


@dataclass
class Tubelets:
    clip: np.ndarray  # uint8 (T, H, W, 3)
    tubelet: int
    patch: int
    vectors: np.ndarray  # uint8 (T', g, g, t·p·p·3): each token's raw pixels, the tubelet embedding's input

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.vectors.shape[:3]

    @property
    def tokens(self) -> int:
        t, h, w = self.grid
        return t * h * w

    @property
    def stats(self) -> dict:
        t, h, w = self.grid
        f, size = self.clip.shape[0], self.clip.shape[1]
        return {"frames": f, "image_size": size, "tubelet": self.tubelet, "patch_size": self.patch,
                "grid": [t, h, w], "tokens": self.tokens, "values_per_token": int(self.vectors.shape[-1]),
                "formula": f"({f}/{self.tubelet}) x ({size}/{self.patch})^2 = {t} x {h} x {w} = {self.tokens}"}


def tubelets(clip: np.ndarray, patch_size, tubelet) -> Tubelets:
    """Cut ``clip`` (uint8 (T, H, W, 3), square frames) into non-overlapping tubelets of ``tubelet`` frames x
    ``patch_size`` x ``patch_size`` pixels (Arnab et al., 2021, "tubelet embedding"), in the order a
    stride-(t, p, p) 3-D convolution visits them: time, then rows, then columns."""
    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[1] != clip.shape[2]:
        raise ValueError(f"a clip must be (frames, size, size, 3), got shape {clip.shape}")
    f, size = clip.shape[0], clip.shape[1]
    f, size, p, tub = check_shape(f, size, patch_size, tubelet)
    if p > size or tub > f:
        raise ValueError(f"patch {p} and tubelet {tub} must fit the clip ({f} frames of {size} px)")
    t, g = f // tub, size // p
    v = clip.reshape(t, tub, g, p, g, p, 3).transpose(0, 2, 4, 1, 3, 5, 6)  # (T', g, g, t, p, p, 3)
    return Tubelets(clip, tub, p, v.reshape(t, g, g, tub * p * p * 3))


# --------------------------------------------------------------------------------------
#                                   The embedded model on held-out clips
# --------------------------------------------------------------------------------------


def pick_clip(index, direction=ANY_DIRECTION, frames: int = 16, size: int = 32, search: int = 400):
    """(test-split index, ClipSpec, uint8 clip (T, H, W, 3)): clip ``index`` of the test split, or the first
    one from ``index`` on that moves in ``direction`` (the test split is never trained on)."""
    from shared.data.moving_shapes import DIRECTIONS, clip_spec_at, render_clip

    index = check_clip_index(index)
    direction = validate.choice(direction, "direction", (ANY_DIRECTION, *DIRECTIONS))
    for i in range(index, index + search):
        spec = clip_spec_at("test", i, frames)
        if direction == ANY_DIRECTION or spec.direction_name == direction:
            return i, spec, render_clip(spec, size)
    raise ValueError(f"no test clip moving {direction} among indices {index}-{index + search - 1}")


@dataclass
class Classified:
    index: int
    true_direction: str
    caption: str
    clip: np.ndarray  # uint8 (T, H, W, 3)
    classes: list[str]
    probs: np.ndarray  # (classes,)
    attention: np.ndarray  # (layers, heads, N, N), rows sum to 1
    grid: tuple[int, int, int]  # (T', g, g)
    tubelet: int
    patch: int

    @property
    def predicted(self) -> str:
        return self.classes[int(self.probs.argmax())]

    def temporal_map(self, layer: int, head: int, row: int, col: int) -> np.ndarray:
        """(T', T'): attention from the token of patch (row, col) at time step i to the same patch at step j."""
        t, g, _ = self.grid
        pos = np.arange(t) * g * g + row * g + col  # token index of (time, row, col): time-major order
        return self.attention[layer, head][np.ix_(pos, pos)]

    def same_patch_share(self, layer: int, head: int, row: int, col: int) -> float:
        """Mean over time steps of the attention mass that the patch's tokens give to the same patch."""
        return float(self.temporal_map(layer, head, row, col).sum(-1).mean())


def check_probe(layer, head, row, col, facts: dict) -> tuple[int, int, int, int]:
    """Clean (layer, head, row, col) for the embedded model (1-based layer and head on the page)."""
    return (validate.integer(layer, "layer", 1, facts["layers"]) - 1,
            validate.integer(head, "head", 1, facts["heads"]) - 1,
            validate.integer(row, "patch row", 0, facts["grid"] - 1),
            validate.integer(col, "patch column", 0, facts["grid"] - 1))


def classify(index, direction=ANY_DIRECTION) -> Classified:
    """The embedded ``video-vit-tiny-shapes`` on one held-out clip: class probabilities and every layer's
    attention (eager attention, ``output_attentions=True``)."""
    import torch

    from shared.models import load
    from shared.training.video_vit_tiny_shapes import clips_to_pixels

    model = load(MODEL, device="cpu", attn="eager").model
    c = model.config
    i, spec, clip = pick_clip(index, direction, c.num_frames, c.image_size)
    with torch.no_grad():
        out = model(pixel_values=clips_to_pixels(clip[None]), output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise ValueError("the model returned no attention maps: it must run with eager attention")
    attention = torch.stack([a[0] for a in out.attentions]).float().numpy()  # (L, heads, N, N)
    classes = [c.id2label[k] for k in range(c.num_labels)]
    t, g = c.num_frames // c.tubelet_size, c.image_size // c.patch_size
    return Classified(i, spec.direction_name, spec.caption, clip, classes, out.logits[0].softmax(-1).numpy(),
                      attention, (t, g, g), c.tubelet_size, c.patch_size)
