"""Limits, defaults and cited figures the training lab needs at start-up (no torch, no matplotlib: the
hub builds every page when it starts)."""

BASE_MODEL = "vit-tiny-shapes"  # the embedded ViT every run starts from (its config.json sizes a scratch run)
VIT_B16 = "google/vit-base-patch16-224"

STARTS = ("pretrained", "scratch")
TASKS = ("shape", "size")  # "shape": the base model's own classes; "size": small / medium / large (a new head)
SUBSETS = (500, 2000)  # training images rendered (seeded) from the shapes "train" split
DEFAULT_SUBSET = 2000
VAL_IMAGES = 200  # held-out shapes ("val" split) for the validation accuracy

# Caps of a live run (CPU, shared by every visitor).
MAX_STEPS = 400
DEFAULT_STEPS = 60
MAX_BATCH = 128
DEFAULT_BATCH = 32
MAX_LR = 1.0
DEFAULT_LR = 1e-4  # pretrained: a gentle fine-tune (5e-4 with a fresh AdamW knocked 0.945 down to 0.925 in 200 steps)
SCRATCH_LR = 1e-3  # scratch: the embedded recipe's peak
START_LR = {"pretrained": DEFAULT_LR, "scratch": SCRATCH_LR}  # the page sets lr when "start from" changes
MAX_WARMUP = 200
DEFAULT_WARMUP = 10
MAX_WEIGHT_DECAY = 1.0
DEFAULT_WEIGHT_DECAY = 0.05
MAX_LABEL_SMOOTHING = 0.5
DEFAULT_LABEL_SMOOTHING = 0.1
MAX_MIX_ALPHA = 2.0
DEFAULT_MIXUP = 0.2
DEFAULT_CUTMIX = 0.0
MAX_RANDAUG_OPS = 4
DEFAULT_RANDAUG_OPS = 0
MAX_RANDAUG_MAGNITUDE = 10
DEFAULT_RANDAUG_MAGNITUDE = 5
MAX_DROP_PATH = 0.5
DEFAULT_DROP_PATH = 0.0
MAX_SEED = 2**31 - 1

MAX_CONCURRENT_RUNS = 2  # live runs at once, all users together
UPDATE_SECONDS = 1.0  # the curves refresh at most this often
ABANDONED_SECONDS = 5.0  # a run nobody has polled for this long stops (the page was closed)

# LoRA counter
LORA_MODELS = (BASE_MODEL, VIT_B16)
MAX_RANK = 256
DEFAULT_RANK = 8
DEFAULT_TARGETS = "q_proj,v_proj"  # the query and value projections, as in Hu et al. (2022)

# Strategy comparison (same steps, batch and data for each strategy)
COMPARE_STEPS = 100
COMPARE_BATCH = 32
COMPARE_TASK = "size"
COMPARE_RANK = 8

RANDAUG_OPS = ("identity", "flip", "rotate90", "brightness", "contrast", "saturation", "invert", "translate", "noise")

# Augmentation preview
PREVIEW_IMAGES = 8
AUGMENTATIONS = ("randaugment", "mixup", "cutmix")

# Cost estimator. Peak dense / sparse tensor throughput in TFLOP/s, as the vendors' datasheets state them
# (the sparse figure assumes 2:4 structured sparsity, which training does not use).
GPUS = {
    "NVIDIA A100 SXM (BF16)": {"dense": 312.0, "sparse": 624.0, "source": "NVIDIA A100 Tensor Core GPU datasheet"},
    "NVIDIA H100 SXM (BF16)": {"dense": 989.4, "sparse": 1978.9, "source": "NVIDIA H100 Tensor Core GPU datasheet"},
}
DEFAULT_GPU = "NVIDIA A100 SXM (BF16)"
DEFAULT_MFU = 0.40  # assumed; PaLM reached 46.2 % (Chowdhery et al., 2022)
PALM_MFU = 0.462
# ViT sizes of Dosovitskiy et al. (2021), Table 1: (layers, hidden, MLP, heads); the parameter counts are
# counted on the model built from these on the meta device, not typed.
VIT_PRESETS = {
    "ViT-B/16": {"num_hidden_layers": 12, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                 "patch_size": 16},
    "ViT-L/16": {"num_hidden_layers": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                 "patch_size": 16},
    "ViT-H/14": {"num_hidden_layers": 32, "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 16,
                 "patch_size": 14},
}
DEFAULT_PRESET = "ViT-B/16"
DEFAULT_IMAGES_SEEN = 1_281_167 * 300  # 300 epochs of ImageNet-1k's training set, DeiT's schedule
DEFAULT_GPUS = 8
MAX_GPUS = 100_000

PAPERS = {
    "vit": "Dosovitskiy et al., 2021",
    "deit": "Touvron et al., 2021",
    "cosine": "Loshchilov & Hutter, 2017",
    "adamw": "Loshchilov & Hutter, 2019",
    "warmup": "Goyal et al., 2017",
    "smoothing": "Szegedy et al., 2016",
    "mixup": "Zhang et al., 2018",
    "cutmix": "Yun et al., 2019",
    "randaugment": "Cubuk et al., 2020",
    "droppath": "Huang et al., 2016",
    "lora": "Hu et al., 2022",
    "kaplan": "Kaplan et al., 2020",
    "palm": "Chowdhery et al., 2022",
}
