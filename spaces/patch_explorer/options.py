"""Limits, choices and model facts that the patch explorer's page needs when it is built.

Torch-free on purpose: the hub imports every space's ``app.py`` and calls ``build()`` at start-up,
and issue 14 holds start-up to 1.3x a bare gradio app, so nothing here imports torch, transformers
or matplotlib. The maths modules take their limits from here too, so the page and the checks agree.
The trained model's facts (sizes, parameters, classes, training time) are read from the files
shipped beside its weights, never typed.
"""

from __future__ import annotations

import functools
import json

from shared import validate
from shared.models import local_path, shipped_metrics

# --------------------------------------------------------------------------------------
#                                   Limits
# --------------------------------------------------------------------------------------

MIN_IMAGE_SIZE = 8  # pixels a side
MAX_IMAGE_SIZE = 1024  # pixels a side: 1024/2 already gives 262,144 patch tokens
MIN_PATCH_SIZE = 2
MAX_WIDTH = 8192  # the largest published ViT width is 1664 (ViT-G/14); 8192 leaves room
CHANNELS = 3  # RGB: every input is converted to RGB by shared.images
MAX_PROJECTION_WEIGHTS = 2**24  # D * P^2 * C floats materialised for the projection demo
MAX_PROJECTION_OUTPUTS = 2**24  # N * D floats materialised for the projection demo
MAX_STRIP_TOKENS = 256  # tokens drawn in the sequence strip
COMPARE_PATCH_SIZES = (8, 16, 32)
MIN_GRID, MAX_GRID = 3, 32  # position-code grids, patches a side
MAX_TRANSFER_SIZE = 128  # px: resolution transfer renders and classifies at most this size
MIN_TEST_IMAGES, MAX_TEST_IMAGES = 50, 2000  # held-out shapes per resolution on the page

LEARNED_MODEL = "vit-tiny-shapes"
# ViT-B/16 is a Hub model, not shipped; its id names its patch size (16) and resolution (224), and
# its config.json (https://huggingface.co/google/vit-base-patch16-224) gives hidden_size 768.
VIT_B = "google/vit-base-patch16-224"
VIT_B_PATCH, VIT_B_SIZE, VIT_B_WIDTH = 16, 224, 768


def check_image_size(image_size: object) -> int:
    """The side of the square image fed to the model: an integer in [8, 1024]."""
    return validate.integer(image_size, "image size", MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)


def check_patch_size(patch_size: object, image_size: int) -> int:
    """A patch side from 2 up to the image size (then there is one patch)."""
    return validate.integer(patch_size, "patch size", MIN_PATCH_SIZE, image_size)


def check_width(width: object) -> int:
    """The embedding width D, an integer in [1, 8192] (ViT-B uses 768)."""
    return validate.integer(width, "width D", 1, MAX_WIDTH)


# --------------------------------------------------------------------------------------
#                                   The trained model's facts
# --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def tiny_config() -> dict:
    """vit-tiny-shapes' config.json (image size, patch size, width, classes...), read without torch.

    A checkout without the weights falls back to the recipe's defaults; only then is the recipe
    (and torch with it) imported, since without weights the trained model cannot run anyway.
    """
    path = local_path(LEARNED_MODEL) / "config.json"
    if path.is_file():
        return json.loads(path.read_text())
    from shared.training.vit_tiny_shapes import Config

    return {"image_size": Config.image_size, "patch_size": Config.patch_size, "hidden_size": Config.hidden_size,
            "num_hidden_layers": Config.num_hidden_layers}


def tiny_metrics() -> dict:
    """metrics.json written by training (parameters, accuracy, wall time), or {} without the weights."""
    return shipped_metrics(LEARNED_MODEL) or {}


def tiny_grid() -> int:
    """Patches a side of vit-tiny-shapes' learned position table."""
    c = tiny_config()
    return c["image_size"] // c["patch_size"]


# --------------------------------------------------------------------------------------
#                                   Choices (labels are the API's values too)
# --------------------------------------------------------------------------------------

RANDOM = "seeded random (untrained)"
SIN_COS_1D, SIN_COS_2D = "1D sin-cos", "2D sin-cos"
FILTER_MODES = ("principal components", "raw filters")
WIDTHS = [("192 · ViT-Ti", 192), ("384 · ViT-S", 384), ("768 · ViT-B", 768), ("1024 · ViT-L", 1024),
          ("1280 · ViT-H", 1280)]
IMAGE_SIZES = [32, 64, 224, 384, 512]


def learned() -> dict[str, str]:
    """Choice label -> registry name (shared/models.py). ViT-B/16 needs the Hub (or its local cache)."""
    return {
        f"{LEARNED_MODEL} (trained here, P={tiny_config()['patch_size']})": LEARNED_MODEL,
        f"{VIT_B} (P={VIT_B_PATCH}, D={VIT_B_WIDTH}; Hub)": VIT_B,
    }


def native_grids() -> dict[str, int]:
    """Registry name -> the grid its learned position table was trained on."""
    return {LEARNED_MODEL: tiny_grid(), VIT_B: VIT_B_SIZE // VIT_B_PATCH}


def position_kinds() -> list[str]:
    return [SIN_COS_1D, SIN_COS_2D, *(f"learned: {k}" for k in learned())]


def projection_sources() -> list[str]:
    return [RANDOM, *learned()]


def transfer_sizes() -> list[int]:
    """Resolutions offered for transfer: multiples of the patch size up to 128 px."""
    p = tiny_config()["patch_size"]
    return [p * k for k in (2, 3, 4, 5, 6, 8, 10, 12, 16) if p * k <= MAX_TRANSFER_SIZE]


# --------------------------------------------------------------------------------------
#                                   7 · Beyond the plain ViT (issue 23)
# --------------------------------------------------------------------------------------
# FLOPs and memory count a ViTForImageClassification (1000 classes, as ImageNet) with shared/vit_cost.py,
# the code the ViT anatomy page counts with; its caps (CAPS, MAX_TOKENS, MAX_PARAMS) apply here too.
COST_CLASSES = 1000
VIT_B16 = {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072, "image_size": 224, "patch_size": 16}
PRECISIONS: dict[str, int] = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}  # bytes per stored value
MAX_BATCH = 4096
MAX_GPU_GB = 4096.0
DEFAULT_BATCH, DEFAULT_PRECISION, DEFAULT_GPU_GB = 32, "bf16", 24.0
GB = 10**9  # "N GB" as GPU makers state it (decimal gigabytes)

# Interpolation mode in resolution transfer
INTERP_MODES = ("nearest", "bilinear", "bicubic")
INTERP_IMAGES = 200  # the fixed held-out set: the first 200 test-split shapes at each resolution

# Relative position: Swin-T's attention (Liu et al., 2021) and 2-D RoPE (Heo et al., 2024)
MIN_WINDOW, MAX_WINDOW = 2, 16
SWIN_T_HEADS = (3, 6, 12, 24)  # heads per stage of Swin-T (Liu et al., 2021, section 3.3)
SWIN_T_DEPTHS = (2, 2, 6, 2)
MIN_ROPE_DIM, MAX_ROPE_DIM = 4, 512  # head dimension, a multiple of 4 (two axes x (cos, sin) pairs)
MIN_ROPE_GRID, MAX_ROPE_GRID = 2, 32
ROPE_THETA = 100.0  # RoPE-Axial's base in Heo et al.'s code (naver-ai/rope-vit, compute_axial_cis)
MAX_ROPE_THETA = 1e6

# Hierarchical patches (Swin-style patch merging)
SWIN_STAGES = 4
MIN_SWIN_IMAGE, MAX_SWIN_IMAGE = 32, 1024
MIN_SWIN_PATCH, MAX_SWIN_PATCH = 1, 32
MAX_SWIN_DIM = 384  # Swin-L's C is 192
MAX_SWIN_TOKENS = 65_536  # stage-1 tokens (1024 px at patch 4)


def check_precision(precision: object) -> str:
    return validate.choice(precision, "precision", PRECISIONS)


def check_batch(batch_size: object) -> int:
    return validate.integer(batch_size, "batch size", 1, MAX_BATCH)


def check_gpu_gb(gb: object) -> float:
    return validate.number(gb, "GPU memory (GB)", 0, MAX_GPU_GB, above=True)


def check_interp_modes(modes: object) -> list[str]:
    return validate.choices(modes, "interpolation modes", INTERP_MODES)


def check_window(window: object) -> int:
    return validate.integer(window, "window size M", MIN_WINDOW, MAX_WINDOW)


def check_rope(head_dim: object, grid: object, theta: object) -> tuple[int, int, float]:
    d = validate.integer(head_dim, "head dimension", MIN_ROPE_DIM, MAX_ROPE_DIM)
    if d % 4:
        raise ValueError(f"head dimension must be a multiple of 4 for 2-D RoPE (a quarter of the dimensions per "
                         f"axis and per sin/cos), got {d}")
    g = validate.integer(grid, "RoPE grid", MIN_ROPE_GRID, MAX_ROPE_GRID)
    return d, g, validate.number(theta, "RoPE base θ", 1, MAX_ROPE_THETA, above=True)


def check_swin(image_size: object, patch_size: object, embed_dim: object, window: object) -> dict:
    """A Swin-T-shaped hierarchy's inputs, with the image a multiple of patch x 8 so that every merge is exact."""
    s = validate.integer(image_size, "image size", MIN_SWIN_IMAGE, MAX_SWIN_IMAGE)
    p = validate.integer(patch_size, "patch size", MIN_SWIN_PATCH, MAX_SWIN_PATCH)
    c = validate.integer(embed_dim, "embedding width C", 3, MAX_SWIN_DIM)
    m = validate.integer(window, "window size M", MIN_WINDOW, MAX_WINDOW)
    step = p * 2 ** (SWIN_STAGES - 1)
    if s % step:
        raise ValueError(f"image size {s} must be a multiple of patch size × 2^{SWIN_STAGES - 1} = {step}, so that "
                         f"every patch-merging step halves an even grid")
    if c % SWIN_T_HEADS[0]:
        raise ValueError(f"embedding width C must be a multiple of {SWIN_T_HEADS[0]} (Swin-T's stage-1 heads), got {c}")
    if (s // p) ** 2 > MAX_SWIN_TOKENS:
        raise ValueError(f"{(s // p) ** 2:,} stage-1 tokens is more than the cap of {MAX_SWIN_TOKENS:,}: "
                         "use a larger patch or a smaller image")
    return {"image_size": s, "patch_size": p, "embed_dim": c, "window_size": m}
