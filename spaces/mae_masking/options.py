"""Limits and defaults the MAE page needs at start-up (no heavy import: the hub builds every page when it starts)."""

MODEL = "mae-tiny-shapes"  # the embedded masked autoencoder (shared/weights/mae-tiny-shapes)
HUB_MODEL = "facebook/vit-mae-base"  # the same loader, with network (He et al., 2022)

MIN_RATIO, MAX_RATIO = 0.05, 0.95  # the mask-ratio slider and the API's accepted range
DEFAULT_RATIO = 0.75  # MAE's ratio (He et al., 2022)
MAX_SEED = 2**31 - 1
DEFAULT_SEED = 0

PATTERNS = ("random", "block-wise (BEiT)", "grid")

SWEEP_RATIOS = (0.1, 0.25, 0.5, 0.75, 0.9)  # the eval ratios of the shipped sweep (metrics.json)
MIN_SWEEP_IMAGES, MAX_SWEEP_IMAGES, DEFAULT_SWEEP_IMAGES = 20, 400, 100

MIN_BATCH, MAX_BATCH, DEFAULT_BATCH = 2, 32, 8  # contrastive batch (images; each gives two views)
MIN_TAU, MAX_TAU, DEFAULT_TAU = 0.05, 2.0, 0.5  # NT-Xent temperature τ
MODELS = (MODEL, HUB_MODEL)
