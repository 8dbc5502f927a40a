"""Limits and defaults the V-JEPA page needs at start-up (no heavy import: the hub builds every page when it starts)."""

MODEL = "vjepa-tiny-shapes"  # the embedded tiny V-JEPA (shared/weights/vjepa-tiny-shapes)

# The masking endpoint: V-JEPA's setting by default (16 frames of 224 px, patch 16, tubelet 2; Bardes et al., 2024)
DEFAULT_FRAMES, MIN_FRAMES, MAX_FRAMES = 16, 1, 64
DEFAULT_IMAGE_SIZE, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 224, 8, 448
DEFAULT_PATCH, MIN_PATCH, MAX_PATCH = 16, 1, 64
DEFAULT_TUBELET, MIN_TUBELET, MAX_TUBELET = 2, 1, 8
MIN_GRID_SIDE = 4  # patches per side: below this a 15% block rounds to nothing (int(H*W*0.15) < 1 at 2x2)
MAX_TOKENS = 8192  # t*h*w token cap (V-JEPA's setting has 8*14*14 = 1568)
MAX_SEED = 2**31 - 1
DEFAULT_SEED = 0
DISPLAY_FRAME_PX = 96  # each drawn frame is scaled to at most this many pixels a side

# Ratio statistics ("Must show": 100 seeds at 16x224x224, patch 16, tubelet 2)
BENCH_SEEDS = 100
MIN_SEEDS, MAX_SEEDS = 1, 500
PAPER_RATIO = 0.90  # "an average masking ratio of ~90%" (Bardes et al., 2024)

# The objective on the tiny model: a test-split moving-shapes clip
DEFAULT_CLIP, MAX_CLIP = 0, 9999
