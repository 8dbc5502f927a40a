"""Modern VLMs: limits, defaults and input checks the page needs at start-up.

Torch-free on purpose: the hub imports every space's ``app.py`` and builds its page at start-up.
``compute.py`` and ``vlm.py`` import from here, so each constant and check is defined once.
"""

from __future__ import annotations

import json
from pathlib import Path

# --------------------------------------------------------------------------------------
#      Released processor settings (each value cited with its Hub file; compute.py builds them, the page quotes them)
# --------------------------------------------------------------------------------------
# llava-hf/llava-1.5-7b-hf preprocessor_config.json: CLIPImageProcessor, size {"shortest_edge": 336},
# crop_size {"height": 336, "width": 336}, do_center_crop true, resample 3 (bicubic).
# Its processor_config.json: patch_size 14, vision_feature_select_strategy "default" (CLS dropped),
# num_additional_image_tokens 1 (CLS).
LLAVA15 = {"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}, "do_center_crop": True,
           "resample": 3}
PATCH_14 = 14  # CLIP ViT-L/14 and SigLIP So400m/14 (vision_config.patch_size of every repo below)

# llava-hf/llava-v1.6-mistral-7b-hf preprocessor_config.json: LlavaNextImageProcessor, size {"shortest_edge": 336},
# crop_size 336x336, resample 3, image_grid_pinpoints (also in its config.json) as below.
# Its processor_config.json: patch_size 14, vision_feature_select_strategy "default", num_additional_image_tokens 1.
LLAVA_NEXT = {"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}, "resample": 3,
              "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]}
LLAVA_NEXT_TILE = 336

# Qwen/Qwen2-VL-7B-Instruct preprocessor_config.json: Qwen2VLImageProcessor, min_pixels 3136, max_pixels 12845056,
# patch_size 14, temporal_patch_size 2, merge_size 2.
QWEN2VL = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
# transformers' smart_resize for Qwen2-VL refuses an image whose long side is more than this many times its short
# side (models/qwen2_vl/image_processing_pil_qwen2_vl.py; tests/unit/test_vlm_tokens.py checks both sides of it).
QWEN2VL_MAX_ASPECT_RATIO = 200

# HuggingFaceM4/Idefics3-8B-Llama3 preprocessor_config.json: Idefics3ImageProcessor, do_image_splitting true,
# size {"longest_edge": 1456}, max_image_size {"longest_edge": 364}, resample 1.
# Its processor_config.json: image_seq_len 169 = (364 / 14)² / scale_factor², with scale_factor 2 in its
# config.json (transformers' Idefics3Config default too). SmolVLM-Instruct (2B), built on the same architecture with 384-px
# crops, uses scale_factor 3 and 81 tokens per crop.
IDEFICS3 = {"size": {"longest_edge": 1456}, "max_image_size": {"longest_edge": 364}, "resample": 1,
            "do_image_splitting": True}
IDEFICS3_CROP = 364
IDEFICS3_SCALE_FACTOR = 2
IDEFICS3_TOKENS_PER_CROP = (IDEFICS3_CROP // PATCH_14) ** 2 // IDEFICS3_SCALE_FACTOR ** 2  # 169

# google/paligemma-3b-pt-{224,448,896} preprocessor_config.json: SiglipImageProcessor, size {"height": N,
# "width": N}, resample 3; image_seq_length (N / 14)² = 256, 1024, 4096.
PALIGEMMA_SIZES = {"paligemma-224": 224, "paligemma-448": 448, "paligemma-896": 896}


# --------------------------------------------------------------------------------------
#                                   The tiny VLM
# --------------------------------------------------------------------------------------

VLM_MODEL = "vlm-tiny-shapes"
MAX_QUESTION_CHARS = 200  # the tiny VLM's questions are a few words; a cap keeps the prompt within its positions
MAX_NEW_TOKENS = 8  # its longest answer, "a blue star , so no" and </s>, is 7 tokens
# The first phrasing of each question kind it was trained on (shared/training/vlm_tiny_shapes.py, a test checks).
EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "What shape is in the image?",
    "What colour is the shape?",
    "Where is the shape?",
    "Is there a red star?",
)
DEFAULT_QUESTION = EXAMPLE_QUESTIONS[0]


def check_question(question: object) -> str:
    """The question, stripped; refuses non-text, empty and over-long questions with the cap."""
    if not isinstance(question, str):
        raise ValueError(f"the question must be text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise ValueError("the question is empty; ask for example " + " or ".join(f"'{q}'" for q in EXAMPLE_QUESTIONS[:2]))
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return text


# --------------------------------------------------------------------------------------
#                       Visual-token counts: the seven families
# --------------------------------------------------------------------------------------
# family -> (label on the page, what its processor does). The released settings each processor is built
# with, and the Hub repo every value comes from, are written in compute.py beside the construction.
FAMILIES: dict[str, tuple[str, str]] = {
    "llava-1.5": ("LLaVA-1.5", "CLIP ViT-L/14 at 336 px: shortest side to 336, centre crop, 24×24 patches"),
    "llava-next": ("LLaVA-NeXT (v1.6)", "any-resolution: best grid pinpoint, 336-px tiles + the base image, "
                   "unpadding and one newline token per row"),
    "qwen2-vl": ("Qwen2-VL", "dynamic resolution: both sides to multiples of 28, 14-px patches, 2×2 merge"),
    "idefics3": ("Idefics3", "longest edge to 1456, 364-px crops + the global image, 169 tokens per crop"),
    "paligemma-224": ("PaliGemma 224", "SigLIP So400m/14, squashed to 224×224"),
    "paligemma-448": ("PaliGemma 448", "SigLIP So400m/14, squashed to 448×448"),
    "paligemma-896": ("PaliGemma 896", "SigLIP So400m/14, squashed to 896×896"),
}
DEFAULT_FAMILY = "llava-next"

# Qwen2-VL's processor holds every 14-px patch of the resized image as 1176 floats (3 channels x 2 frames x
# 14 x 14): at its max_pixels that is 65,536 x 1176 float32 = 308 MB per request. Above this many patches the
# count comes from the same processor's own get_number_of_image_patches (its smart_resize, no pixels).
QWEN_PROCESSOR_MAX_PATCHES = 16_384  # 77 MB of pixel_values, about 4,100 visual tokens

# --------------------------------------------------------------------------------------
#                       Cost of the visual tokens: LM presets and caps
# --------------------------------------------------------------------------------------
# preset -> the family whose LM it is. The configurations (cited) are in compute.py; the parameter count
# is counted on the model instantiated on the meta device, never typed.
LM_PRESETS: dict[str, str] = {
    "Vicuna-7B v1.5 (LLaVA-1.5)": "llava-1.5",
    "Mistral-7B-Instruct v0.2 (LLaVA-NeXT)": "llava-next",
    "Qwen2-7B (Qwen2-VL-7B)": "qwen2-vl",
    "Llama-3-8B (Idefics3-8B)": "idefics3",
    "Gemma-2B (PaliGemma)": "paligemma-224",
}
OWN_LM = "each family's own LM"
CUSTOM_LM = "custom"
LM_NAMES: tuple[str, ...] = (OWN_LM, *LM_PRESETS, CUSTOM_LM)
DEFAULT_LM = OWN_LM
# bytes per element of the KV cache
DTYPES: dict[str, int] = {"fp16/bf16": 2, "fp8/int8": 1, "fp32": 4}
DEFAULT_DTYPE = "fp16/bf16"
# custom LM: (low, high, default)
CUSTOM_CAPS: dict[str, tuple[float, float, float]] = {
    "params_billion": (0.001, 2000.0, 7.0),
    "layers": (1, 256, 32),
    "kv_heads": (1, 256, 8),
    "head_dim": (1, 1024, 128),
}


def family_label(family: str) -> str:
    return FAMILIES[family][0]


def check_family(family: object) -> str:
    from shared import validate

    return validate.choice(family, "family", FAMILIES)


def check_lm(name: object) -> str:
    from shared import validate

    return validate.choice(name, "LM", LM_NAMES)


def check_dtype(name: object) -> str:
    from shared import validate

    return validate.choice(name, "KV-cache dtype", DTYPES)


def check_custom(params_billion: object, layers: object, kv_heads: object, head_dim: object) -> tuple:
    """The custom LM's size, each within its cap (named in the message)."""
    from shared import validate

    lo, hi, _ = CUSTOM_CAPS["params_billion"]
    p = validate.number(params_billion, "parameters (billions)", lo, hi)
    ints = [validate.integer(v, name.replace("_", " "), int(CUSTOM_CAPS[name][0]), int(CUSTOM_CAPS[name][1]))
            for v, name in ((layers, "layers"), (kv_heads, "kv_heads"), (head_dim, "head_dim"))]
    return (p, *ints)


# --------------------------------------------------------------------------------------
#                       The tiny VLM's shipped facts (read, never typed)
# --------------------------------------------------------------------------------------
def _vlm_models() -> tuple[str, ...]:
    from shared.models import names

    return tuple(names("image-text-to-text"))


VLM_MODELS: tuple[str, ...] = _vlm_models()  # the tiny VLM first, then Hub VLMs (with network)


def check_vlm(model: object) -> str:
    from shared import validate

    return validate.choice(model, "model", VLM_MODELS)


VLM_WEIGHTS: tuple[str, ...] = (VLM_MODEL, "clip-tiny-shapes")  # the answer's OOD check uses clip-tiny-shapes
PANORAMA_SAMPLE = Path(__file__).resolve().parent / "samples" / "panorama_4x1.jpg"


def vlm_facts() -> dict:
    """config.json and metrics.json of the tiny VLM ({} before it is trained)."""
    from shared.models import local_path, shipped_metrics

    path = local_path(VLM_MODEL) / "config.json"
    if not path.is_file():
        return {}
    c = json.loads(path.read_text())
    v, t = c["vision_config"], c["text_config"]
    return {"image": v["image_size"], "patch": v["patch_size"], "grid": v["image_size"] // v["patch_size"],
            "vision_width": v["hidden_size"], "vision_layers": v["num_hidden_layers"],
            "feature_layer": c.get("vision_feature_layer"), "projector": c.get("projector_hidden_act"),
            "lm_width": t["hidden_size"], "lm_layers": t["num_hidden_layers"], "lm_heads": t["num_attention_heads"],
            "vocab": t["vocab_size"], "image_tokens": c.get("image_seq_length"),
            "metrics": shipped_metrics(VLM_MODEL) or {}}


def vlm_accuracies(metrics: dict) -> dict[str, dict[str, float]]:
    """metrics.json's accuracy per question kind: on held-out images (``<kind>_accuracy``), on the shifted split
    and on matplotlib-drawn shapes (one dict each)."""
    held = {k.removesuffix("_accuracy"): v for k, v in metrics.items()
            if k.endswith("_accuracy") and isinstance(v, (int, float))}
    return {"held-out": held, "shifted": metrics.get("shifted_accuracy") or {},
            "independent": metrics.get("independent_renderer_accuracy") or {}}
