"""Modern VLMs: how many visual tokens an image costs in seven VLM families, and what those tokens cost an LM.

Every count comes from a real ``transformers`` image processor built offline with the released settings of
its model (each value below cites the Hub file it comes from). Where the count is in the processor's output
shapes it is read from them (``pixel_values`` tiles, ``image_grid_thw``, ``rows``/``cols``); LLaVA-NeXT's
feature count is transformers' own ``LlavaNextProcessor._get_number_of_features``. torchvision is not
installed here, so transformers falls back to its PIL processors (``*ImageProcessorPil``): same resize
rules, same shapes.

The cost part uses Kaplan et al. (2020): a forward pass costs about 2·N FLOPs per token (N = non-embedding
parameters), and the KV cache holds 2 (K and V) · layers · kv_heads · head_dim numbers per token.

No UI-library import here; bad input raises ``ValueError`` with the limit it broke.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from shared import validate
from shared.cache import BoundedCache
from shared.images import load_image, pixels_key

from .options import (
    CUSTOM_LM,
    DTYPES,
    FAMILIES,
    IDEFICS3,
    IDEFICS3_CROP,
    IDEFICS3_TOKENS_PER_CROP,
    LLAVA15,
    LLAVA_NEXT,
    LM_PRESETS,
    OWN_LM,
    PALIGEMMA_SIZES,
    PATCH_14,
    QWEN2VL,
    QWEN2VL_MAX_ASPECT_RATIO,
    QWEN_PROCESSOR_MAX_PATCHES,
    check_custom,
    check_dtype,
    check_family,
    check_lm,
)


def _quiet(fn):
    """Build under the project's transformers import lock (first use imports modules lazily), without the
    'torchvision is not installed, using the PIL processor' notice on every page load."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from transformers.utils import logging

        from shared.models import TRANSFORMERS_IMPORT_LOCK

        with TRANSFORMERS_IMPORT_LOCK:
            level = logging.get_verbosity()
            logging.set_verbosity_error()
            try:
                return fn(*args, **kwargs)
            finally:
                logging.set_verbosity(level)
    return wrapper


@functools.cache
@_quiet
def processor(family: str):
    """The image processor of ``family``, built offline from its class with the released settings above."""
    import transformers as tf

    family = check_family(family)
    if family == "llava-1.5":
        return tf.CLIPImageProcessor(**LLAVA15)
    if family == "llava-next":
        return tf.LlavaNextImageProcessor(**LLAVA_NEXT)
    if family == "qwen2-vl":
        return tf.Qwen2VLImageProcessor(**QWEN2VL)
    if family == "idefics3":
        return tf.Idefics3ImageProcessor(**IDEFICS3)
    size = PALIGEMMA_SIZES[family]
    return tf.SiglipImageProcessor(size={"height": size, "width": size}, resample=3)


@functools.cache
@_quiet
def _llava_next_counter():
    """transformers' ``LlavaNextProcessor`` with only what ``_get_number_of_features`` reads (its image processor,
    patch size and extra-token count); its tokenizer is never touched by that method, so none is built."""
    from transformers import LlavaNextProcessor

    counter = object.__new__(LlavaNextProcessor)
    counter.image_processor = processor("llava-next")
    counter.patch_size = PATCH_14
    counter.num_additional_image_tokens = 1
    counter.vision_feature_select_strategy = "default"
    return counter


# --------------------------------------------------------------------------------------
#                                   Token counts
# --------------------------------------------------------------------------------------

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)


@dataclass(frozen=True)
class TokenCount:
    family: str
    visual_tokens: int
    resized: tuple[int, int]  # (height, width) the encoder's tiles are cut from (the canvas)
    tiles: int  # encoder passes: tiles + the base/global image where there is one; 1 without tiling
    original: tuple[int, int]  # (height, width) of the upload
    source: str  # what the count was read from
    formula: str  # the count written out
    tile_boxes: list[Box]  # each tile on the canvas (canvas pixels)
    content: Box  # where the image lies on the canvas (the rest is padding), canvas pixels
    seen: Box  # the part of the ORIGINAL image the encoder sees (a centre crop cuts the rest), original pixels
    token_grid: tuple[int, int] | None = None  # (rows, cols) of tokens over the canvas when one grid covers it
    global_image: bool = False  # one more encoder pass on the whole image squashed to one tile
    notes: list[str] = field(default_factory=list)

    def tile_boxes_original(self) -> list[Box]:
        """The tiles in original-image pixels (padding maps outside the image)."""
        cx0, cy0, cx1, cy1 = self.content
        sx0, sy0, sx1, sy1 = self.seen
        kx, ky = (sx1 - sx0) / (cx1 - cx0), (sy1 - sy0) / (cy1 - cy0)
        return [(sx0 + (x0 - cx0) * kx, sy0 + (y0 - cy0) * ky, sx0 + (x1 - cx0) * kx, sy0 + (y1 - cy0) * ky)
                for x0, y0, x1, y1 in self.tile_boxes]

    def stats(self) -> dict:
        r = lambda box: [round(float(v), 1) for v in box]  # noqa: E731
        return {
            "family": self.family, "label": FAMILIES[self.family][0], "visual_tokens": int(self.visual_tokens),
            "resized": [int(v) for v in self.resized], "tiles": int(self.tiles),
            "global_image_counted_as_tile": self.global_image,
            "original": [int(v) for v in self.original], "source": self.source, "formula": self.formula,
            "tile_boxes_canvas": [r(b) for b in self.tile_boxes],
            "tile_boxes_original": [r(b) for b in self.tile_boxes_original()],
            "content_on_canvas": r(self.content), "seen_in_original": r(self.seen),
            "token_grid": list(self.token_grid) if self.token_grid else None, "notes": self.notes,
        }


def _grid_boxes(rows: int, cols: int, th: float, tw: float) -> list[Box]:
    return [(c * tw, r * th, (c + 1) * tw, (r + 1) * th) for r in range(rows) for c in range(cols)]


def _pixel_shape(out) -> tuple[int, ...]:
    return tuple(np.asarray(out["pixel_values"]).shape)


def _llava15(image: Image.Image) -> TokenCount:
    w, h = image.size
    shape = _pixel_shape(processor("llava-1.5")(images=image, return_tensors="np"))  # (1, 3, 336, 336)
    ph, pw = shape[-2:]
    tokens = (ph // PATCH_14) * (pw // PATCH_14)  # + 1 CLS - 1 ("default" strategy drops it)
    side = min(w, h)  # shortest side to 336, then the centre 336x336: the centred square of the original
    seen = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    notes = ["centre crop: the " + ("left and right" if w > h else "top and bottom") + " of the image are cut off"
             ] if w != h else []
    return TokenCount("llava-1.5", tokens, (ph, pw), 1, (h, w), "pixel_values shape " + "×".join(map(str, shape)),
                      f"({ph}/14)·({pw}/14) = {tokens}", [(0, 0, pw, ph)], (0, 0, pw, ph), seen,
                      (ph // PATCH_14, pw // PATCH_14), notes=notes)


def _llava_next(image: Image.Image) -> TokenCount:
    from transformers.image_processing_utils import select_best_resolution

    w, h = image.size
    out = processor("llava-next")(images=image, return_tensors="np")
    shape = _pixel_shape(out)  # (1, n_tiles, 3, 336, 336): the base image first, then the tiles
    n_tiles = shape[1]
    th, tw = shape[-2:]
    counter = _llava_next_counter()
    features = counter._get_number_of_features(h, w, th, tw) - 1  # LlavaNextProcessor: "default" drops CLS
    bh, bw = select_best_resolution((h, w), LLAVA_NEXT["image_grid_pinpoints"])  # the canvas the tiles cover
    rows, cols = bh // th, bw // tw
    if 1 + rows * cols != n_tiles:
        raise RuntimeError(f"LLaVA-NeXT: {n_tiles} tiles in pixel_values, {rows}x{cols} + 1 expected")
    scale = min(bw / w, bh / h)  # the image is resized to fit the canvas, aspect kept, then padded centred
    nw, nh = min(math.ceil(w * scale), bw), min(math.ceil(h * scale), bh)
    content = ((bw - nw) / 2, (bh - nh) / 2, (bw + nw) / 2, (bh + nh) / 2)
    base = (th // PATCH_14) * (tw // PATCH_14)
    unpadded = features - base
    notes = [f"base image: the whole image squashed to {th}×{tw}, {base} tokens (counted as one of the "
             f"{n_tiles} tiles)",
             f"{rows}×{cols} tiles of {th} px on a {bh}×{bw} canvas; rows and columns of padding are removed "
             f"(unpadding) and each remaining row of features ends with a newline token: {unpadded} tokens"]
    return TokenCount("llava-next", features, (bh, bw), n_tiles, (h, w),
                      f"pixel_values shape {'×'.join(map(str, shape))}; LlavaNextProcessor._get_number_of_features",
                      f"{base} (base) + {unpadded} (unpadded tile features + one newline per row) = {features}",
                      _grid_boxes(rows, cols, th, tw), content, (0, 0, w, h), None, global_image=True, notes=notes)


def _qwen2vl(image: Image.Image) -> TokenCount:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    w, h = image.size
    ip = processor("qwen2-vl")
    factor = QWEN2VL["patch_size"] * QWEN2VL["merge_size"]
    try:
        rh, rw = smart_resize(h, w, factor=factor, min_pixels=QWEN2VL["min_pixels"], max_pixels=QWEN2VL["max_pixels"])
    except ValueError as err:  # "absolute aspect ratio must be smaller than 200"
        raise ValueError(f"Qwen2-VL refuses this {w}×{h} image: its processor needs the long side to be at most "
                         f"{QWEN2VL_MAX_ASPECT_RATIO} times the short side (the ratio here is {max(w, h) / min(w, h):.0f}:1); "
                         f"transformers says: {err}") from None
    patches = (rh // QWEN2VL["patch_size"]) * (rw // QWEN2VL["patch_size"])
    if patches <= QWEN_PROCESSOR_MAX_PATCHES:
        out = ip(images=image, return_tensors="np")
        t, gh, gw = (int(v) for v in np.asarray(out["image_grid_thw"])[0])
        source = f"image_grid_thw = [{t}, {gh}, {gw}] (pixel_values {'×'.join(map(str, _pixel_shape(out)))})"
    else:
        n = ip.get_number_of_image_patches(h, w, {})
        t, gh, gw = 1, rh // QWEN2VL["patch_size"], rw // QWEN2VL["patch_size"]
        if n != t * gh * gw:
            raise RuntimeError(f"Qwen2-VL: {n} patches from the processor, {gh}x{gw} from smart_resize")
        source = (f"Qwen2VLImageProcessor.get_number_of_image_patches = {n} (above {QWEN_PROCESSOR_MAX_PATCHES:,} "
                  "patches the pixels are not materialised)")
    merge = QWEN2VL["merge_size"] ** 2
    tokens = t * gh * gw // merge
    notes = [f"resized to {rh}×{rw} (both sides multiples of {factor}, pixels within "
             f"[{QWEN2VL['min_pixels']:,}, {QWEN2VL['max_pixels']:,}])"]
    return TokenCount("qwen2-vl", tokens, (rh, rw), 1, (h, w), source, f"{t}·{gh}·{gw} / 4 = {tokens}",
                      [(0, 0, rw, rh)], (0, 0, rw, rh), (0, 0, w, h), (gh // 2, gw // 2), notes=notes)


def _idefics3(image: Image.Image) -> TokenCount:
    w, h = image.size
    out = processor("idefics3")(images=image, return_tensors="np", return_row_col_info=True)
    shape = _pixel_shape(out)  # (1, n_crops, 3, 364, 364)
    n = shape[1]
    rows, cols = int(out["rows"][0][0]), int(out["cols"][0][0])
    if n != (rows * cols + 1 if rows else 1):
        raise RuntimeError(f"Idefics3: {n} crops, rows {rows} cols {cols}")
    tokens = n * IDEFICS3_TOKENS_PER_CROP
    crop = IDEFICS3_CROP
    if rows:
        canvas = (rows * crop, cols * crop)
        boxes = _grid_boxes(rows, cols, crop, crop)
        formula = f"({rows}·{cols} crops + 1 global) · 169 = {tokens}"
    else:
        canvas, boxes = (crop, crop), [(0, 0, crop, crop)]
        formula = f"1 · 169 = {tokens}"
    notes = [f"longest edge to {IDEFICS3['size']['longest_edge']}, then both sides up to multiples of {crop}: "
             f"{canvas[0]}×{canvas[1]}; the global image ({crop}×{crop}) is counted as one of the {n} tiles",
             "169 = (364/14)² / 2²: pixel shuffle with scale_factor 2 (the released config), "
             "not 3; image tokens only, not the row/column markers around them"]
    return TokenCount("idefics3", tokens, canvas, n, (h, w),
                      f"pixel_values shape {'×'.join(map(str, shape))}; rows {rows}, cols {cols}", formula, boxes,
                      (0, 0, canvas[1], canvas[0]), (0, 0, w, h), None, global_image=bool(rows), notes=notes)


def _paligemma(image: Image.Image, family: str) -> TokenCount:
    w, h = image.size
    shape = _pixel_shape(processor(family)(images=image, return_tensors="np"))  # (1, 3, N, N)
    ph, pw = shape[-2:]
    tokens = (ph // PATCH_14) * (pw // PATCH_14)
    notes = ["squashed to a square: the aspect ratio is not kept"] if w != h else []
    return TokenCount(family, tokens, (ph, pw), 1, (h, w), "pixel_values shape " + "×".join(map(str, shape)),
                      f"({ph}/14)·({pw}/14) = {tokens}", [(0, 0, pw, ph)], (0, 0, pw, ph), (0, 0, w, h),
                      (ph // PATCH_14, pw // PATCH_14), notes=notes)


# The page's details view asks for every family right after the endpoint counted one: counts are deterministic,
# so the chosen family's processor (up to a second for Qwen2-VL at 40 MP) runs once per image.
_COUNTS: BoundedCache[TokenCount] = BoundedCache(32)


def count_tokens(image: Image.Image, family: str) -> TokenCount:
    """Visual tokens of ``image`` in ``family``, from that family's real processor (see the module docstring)."""
    family = check_family(family)
    image = load_image(image)  # RGB; refuses < 2 px a side and > 8192 px / 40 MP with the limit
    return _COUNTS.get_or_create((family, pixels_key(image)), lambda: _count(image, family))[0]


def _count(image: Image.Image, family: str) -> TokenCount:
    if family == "llava-1.5":
        return _llava15(image)
    if family == "llava-next":
        return _llava_next(image)
    if family == "qwen2-vl":
        return _qwen2vl(image)
    if family == "idefics3":
        return _idefics3(image)
    return _paligemma(image, family)


def count_all(image: Image.Image) -> dict[str, TokenCount | str]:
    """Every family's count; a family that refuses the image (Qwen2-VL past QWEN2VL_MAX_ASPECT_RATIO) gives its message instead."""
    image = load_image(image)
    result: dict[str, TokenCount | str] = {}
    for family in FAMILIES:
        try:
            result[family] = count_tokens(image, family)
        except ValueError as err:
            result[family] = str(err)
    return result


# --------------------------------------------------------------------------------------
#                       Cost of the visual tokens in the LM
# --------------------------------------------------------------------------------------
# Released text configs, written into transformers config classes (each from the named repo's config.json).
LM_CONFIGS: dict[str, tuple[str, str, dict]] = {
    # lmsys/vicuna-7b-v1.5 config.json (LLaVA-1.5-7B's LM)
    "Vicuna-7B v1.5 (LLaVA-1.5)": ("LlamaConfig", "lmsys/vicuna-7b-v1.5", dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, tie_word_embeddings=False)),
    # mistralai/Mistral-7B-Instruct-v0.2 config.json (llava-hf/llava-v1.6-mistral-7b-hf's text_config names it)
    "Mistral-7B-Instruct v0.2 (LLaVA-NeXT)": ("MistralConfig", "mistralai/Mistral-7B-Instruct-v0.2", dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, tie_word_embeddings=False)),
    # Qwen/Qwen2-7B config.json (Qwen2-VL-7B's LM has the same sizes and vocab 152064)
    "Qwen2-7B (Qwen2-VL-7B)": ("Qwen2Config", "Qwen/Qwen2-7B", dict(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, tie_word_embeddings=False)),
    # meta-llama/Meta-Llama-3-8B config.json (Idefics3-8B-Llama3's LM)
    "Llama-3-8B (Idefics3-8B)": ("LlamaConfig", "meta-llama/Meta-Llama-3-8B", dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, tie_word_embeddings=False)),
    # google/gemma-2b config.json (PaliGemma-3B's LM; embeddings tied)
    "Gemma-2B (PaliGemma)": ("GemmaConfig", "google/gemma-2b", dict(
        vocab_size=256000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=18, num_attention_heads=8,
        num_key_value_heads=1, head_dim=256, tie_word_embeddings=True)),
}


@dataclass(frozen=True)
class LMSize:
    name: str
    source: str
    params: int  # all parameters (counted on the meta device; a custom LM: as typed)
    non_embedding: int  # Kaplan's N: without the token embedding and the output projection
    layers: int
    kv_heads: int
    head_dim: int
    attn_width: int  # heads · head_dim (Kaplan's d_attn)


def lm_config(name: str):
    import transformers as tf

    cls, _, values = LM_CONFIGS[name]
    return getattr(tf, cls)(**values)


@functools.cache
@_quiet
def lm_size(name: str) -> LMSize:
    """A preset LM's sizes: its released config in a transformers config class, the model instantiated on the
    meta device (no memory), its parameters summed."""
    name = check_lm(name)
    if name not in LM_CONFIGS:
        raise ValueError(f"{name!r} is not one preset LM; choose one of {list(LM_CONFIGS)}")
    import torch
    from transformers import AutoModelForCausalLM

    cfg = lm_config(name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    total = sum(p.numel() for p in model.parameters())  # tied weights are one parameter, counted once
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    embedding = emb.numel() + (0 if head is emb else head.numel())
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return LMSize(name, LM_CONFIGS[name][1], total, total - embedding, cfg.num_hidden_layers,
                  cfg.num_key_value_heads, head_dim, cfg.num_attention_heads * head_dim)


def custom_size(params_billion, layers, kv_heads, head_dim) -> LMSize:
    p, layers, kv_heads, head_dim = check_custom(params_billion, layers, kv_heads, head_dim)
    n = int(round(p * 1e9))
    return LMSize(CUSTOM_LM, "typed on the page", n, n, layers, kv_heads, head_dim, kv_heads * head_dim)


def prefill_flops(n_params: int, tokens: int) -> int:
    """Kaplan et al. (2020), Table 1: a forward pass costs about 2·N FLOPs per token (N non-embedding parameters),
    attention's context term left out."""
    return 2 * int(n_params) * int(tokens)


def attention_flops(layers: int, attn_width: int, tokens: int) -> int:
    """Kaplan et al. (2020), Table 1, the context term 2·n_layer·n_ctx·d_attn per token, with n_ctx = the tokens
    themselves: 2·n_layer·T²·d_attn for T tokens."""
    return 2 * int(layers) * int(tokens) ** 2 * int(attn_width)


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, bytes_per_element: int) -> int:
    """2 (K and V) · layers · kv_heads · head_dim · tokens · bytes per element."""
    return 2 * int(layers) * int(kv_heads) * int(head_dim) * int(tokens) * int(bytes_per_element)


@dataclass
class TokenCost:
    family: str
    tokens: int
    lm: LMSize
    dtype: str
    flops: int
    attention: int
    kv_bytes: int

    def row(self) -> dict:
        return {"family": self.family, "visual_tokens": self.tokens, "lm": self.lm.name,
                "lm_params": self.lm.params, "non_embedding_params": self.lm.non_embedding,
                "prefill_tflops": self.flops / 1e12, "attention_term_tflops": self.attention / 1e12,
                "attention_share": self.attention / (self.flops + self.attention) if self.flops else 0.0,
                "kv_cache_mb": self.kv_bytes / 2**20, "kv_dtype": self.dtype,
                "layers": self.lm.layers, "kv_heads": self.lm.kv_heads, "head_dim": self.lm.head_dim}


def token_cost(family: str, tokens: int, lm: LMSize, dtype: str) -> TokenCost:
    dtype = check_dtype(dtype)
    tokens = validate.integer(tokens, "visual tokens", 0)
    return TokenCost(family, tokens, lm, dtype, prefill_flops(lm.non_embedding, tokens),
                     attention_flops(lm.layers, lm.attn_width, tokens),
                     kv_cache_bytes(lm.layers, lm.kv_heads, lm.head_dim, tokens, DTYPES[dtype]))


def cost_table(image: Image.Image, lm: str, dtype: str, params_billion=None, layers=None, kv_heads=None,
               head_dim=None) -> dict[str, TokenCost | str]:
    """The cost of ``image``'s visual tokens in every family: in each family's own LM (``OWN_LM``), in one preset
    LM, or in a custom LM of the given size. A family that refuses the image gives its message instead."""
    lm = check_lm(lm)
    dtype = check_dtype(dtype)
    fixed = (custom_size(params_billion, layers, kv_heads, head_dim) if lm == CUSTOM_LM
             else None if lm == OWN_LM else lm_size(lm))
    rows: dict[str, TokenCost | str] = {}
    for family, count in count_all(image).items():
        if isinstance(count, str):
            rows[family] = count
            continue
        rows[family] = token_cost(family, count.visual_tokens, fixed or lm_size(own_lm(family)), dtype)
    return rows


def own_lm(family: str) -> str:
    """The preset whose LM ``family`` uses (PaliGemma at every size uses Gemma-2B)."""
    family = check_family(family)
    base = "paligemma-224" if family.startswith("paligemma") else family
    return next(name for name, fam in LM_PRESETS.items() if fam == base)


# --------------------------------------------------------------------------------------
#                       The closing note's table: python -m spaces.vlm_tokens.compute
# --------------------------------------------------------------------------------------
TABLE_SIZES: tuple[tuple[int, int], ...] = ((2, 2), (336, 336), (1600, 400), (400, 1600), (4000, 3000))


def size_table(sizes: tuple[tuple[int, int], ...] = TABLE_SIZES) -> list[dict]:
    """``visual_tokens`` (tiles) of a flat grey image of each (width, height) in every family."""
    rows = []
    for w, h in sizes:
        counts = count_all(Image.new("RGB", (w, h), (128, 128, 128)))
        rows.append({"size": f"{w}×{h}", **{f: (c.visual_tokens if not isinstance(c, str) else "refused")
                                            for f, c in counts.items()},
                     "tiles": {f: c.tiles for f, c in counts.items() if not isinstance(c, str)}})
    return rows


def _markdown(rows: list[dict]) -> str:
    head = "| image (w×h) | " + " | ".join(FAMILIES) + " |\n|---|" + "---|" * len(FAMILIES)
    body = [f"| {r['size']} | " + " | ".join(str(r[f]) for f in FAMILIES) + " |" for r in rows]
    return "\n".join([head, *body])


if __name__ == "__main__":
    print(_markdown(size_table()))
