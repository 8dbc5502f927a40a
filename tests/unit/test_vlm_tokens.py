"""vlm_tokens' maths against independent computations.

- Token counts: each family's FULL ``transformers`` processor (LlavaProcessor, LlavaNextProcessor,
  Qwen2VLProcessor, Idefics3Processor, PaliGemmaProcessor), built here offline with a minimal word-level
  tokenizer and the released settings typed again below (not imported from compute.py), is run on a prompt
  with the image placeholder; the image tokens in its ``input_ids`` are counted (Idefics3: the ``<image>``
  tokens only, not the row/column markers, ``<fake_token_around_image>`` or ``<global-img>``).
- Cost: KV-cache bytes against the real ``past_key_values`` of a tiny GQA Llama; 2·N·T against
  ``torch.utils.flop_counter.FlopCounterMode``; a meta-device parameter count against the Gemma report.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from shared.models import local_path
from spaces.vlm_tokens import app, compute, options

# (width, height): tiny (1x1 is refused by the image check, 2x2 is the smallest allowed), square, 4:1
# panorama, 1:4 tall, a 12 MP photo
SIZES = [(2, 2), (336, 336), (1600, 400), (400, 1600), (4000, 3000)]
FAMILIES = list(options.FAMILIES)


def _tokenizer(specials: list[str], **extra):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0}
    for word in ["USER:", "What", "is", "this?", *specials]:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", additional_special_tokens=specials,
                                   **extra)


@pytest.fixture(scope="module")
def processors():
    """family -> (full processor, prompt, image token). Settings from each model's released preprocessor_config.json
    and processor_config.json (llava-hf/llava-1.5-7b-hf, llava-hf/llava-v1.6-mistral-7b-hf, Qwen/Qwen2-VL-7B-Instruct,
    HuggingFaceM4/Idefics3-8B-Llama3, google/paligemma-3b-pt-224/448/896)."""
    import transformers as tf
    from transformers.processing_utils import ProcessorMixin

    clip = tf.CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}, resample=3)
    llava = tf.LlavaProcessor(image_processor=clip, tokenizer=_tokenizer(["<image>"]), patch_size=14,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1)
    next_ip = tf.LlavaNextImageProcessor(
        size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}, resample=3,
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]])
    llava_next = tf.LlavaNextProcessor(image_processor=next_ip, tokenizer=_tokenizer(["<image>"]), patch_size=14,
                                       vision_feature_select_strategy="default", num_additional_image_tokens=1)
    # Without torchvision transformers cannot even name its video-processor base class, so the class check of
    # Qwen2VLProcessor's (absent) video processor is skipped; the image path is untouched.
    original = ProcessorMixin.check_argument_for_proper_class

    def check(self, name, arg):
        return None if (name == "video_processor" and arg is None) else original(self, name, arg)

    ProcessorMixin.check_argument_for_proper_class = check
    try:
        qwen = tf.Qwen2VLProcessor(
            image_processor=tf.Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056),
            tokenizer=_tokenizer(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"]))
    finally:
        ProcessorMixin.check_argument_for_proper_class = original
    idefics = tf.Idefics3Processor(
        image_processor=tf.Idefics3ImageProcessor(size={"longest_edge": 1456}, max_image_size={"longest_edge": 364},
                                                  resample=1),
        tokenizer=_tokenizer(["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]),
        image_seq_len=169)
    result = {
        "llava-1.5": (llava, "USER: <image> What", "<image>"),
        "llava-next": (llava_next, "USER: <image> What", "<image>"),
        "qwen2-vl": (qwen, "<|vision_start|><|image_pad|><|vision_end|> What", "<|image_pad|>"),
        "idefics3": (idefics, "USER: <image> What", "<image>"),
    }
    for size in (224, 448, 896):
        siglip = tf.SiglipImageProcessor(size={"height": size, "width": size}, resample=3)
        siglip.image_seq_length = {224: 256, 448: 1024, 896: 4096}[size]  # the repos' image_seq_length
        pali = tf.PaliGemmaProcessor(image_processor=siglip, tokenizer=_tokenizer(
            ["<bos>", "<eos>", "<pad>"], bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"))
        result[f"paligemma-{size}"] = (pali, "<image><bos>What", "<image>")
    return result


def _processor_count(processors, family: str, image: Image.Image) -> tuple[int, dict]:
    proc, prompt, token = processors[family]
    out = proc(text=[prompt], images=[image], return_tensors="np")
    return int((out["input_ids"] == proc.tokenizer.convert_tokens_to_ids(token)).sum()), out


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_family_counts_the_image_tokens_its_full_processor_puts_in_the_prompt(processors, size):
    image = Image.new("RGB", size, (90, 140, 200))
    for family in FAMILIES:
        expected, out = _processor_count(processors, family, image)
        got = compute.count_tokens(image, family)
        assert got.visual_tokens == expected, (family, size)
        pixels = np.asarray(out["pixel_values"])
        if family in ("llava-next", "idefics3"):  # one entry per tile, the base/global image included
            assert got.tiles == pixels.shape[1], family
        elif family == "qwen2-vl":
            _, gh, gw = np.asarray(out["image_grid_thw"])[0]
            assert list(got.resized) == [gh * 14, gw * 14] and got.tiles == 1
        else:
            assert got.tiles == 1 and list(got.resized) == list(pixels.shape[-2:])


def test_published_per_family_formulas():
    """LLaVA-1.5 (336/14)² = 576; PaliGemma (size/14)²; Idefics3 169 = (364/14)² / scale_factor², scale_factor 2 in
    transformers' Idefics3Config (as in the released config), not 3."""
    from transformers import Idefics3Config

    image = Image.new("RGB", (640, 480))
    assert compute.count_tokens(image, "llava-1.5").visual_tokens == 24 * 24 == 576
    for size in (224, 448, 896):
        assert compute.count_tokens(image, f"paligemma-{size}").visual_tokens == (size // 14) ** 2
    scale = Idefics3Config().scale_factor
    assert scale == 2 and (364 // 14) ** 2 // scale**2 == 169
    c = compute.count_tokens(image, "idefics3")  # 640x480 -> 1456x1092 = (4·364)x(3·364): 3x4 crops + global
    assert c.visual_tokens == (3 * 4 + 1) * 169 and c.tiles == 13 and c.resized == (1092, 1456)


def test_idefics3_count_depends_on_the_aspect_ratio_not_the_size():
    square = {compute.count_tokens(Image.new("RGB", (s, s)), "idefics3").visual_tokens for s in (2, 50, 500, 1456)}
    wide = {compute.count_tokens(Image.new("RGB", (4 * s, s)), "idefics3").visual_tokens for s in (10, 100, 1000)}
    assert square == {17 * 169} and wide == {5 * 169}


def test_llava_next_tiles_cover_the_image_and_the_breakdown_adds_up():
    c = compute.count_tokens(Image.new("RGB", (1600, 400)), "llava-next")
    assert c.resized == (336, 1008) and c.tiles == 4 and len(c.tile_boxes) == 3
    boxes = np.array(c.tile_boxes_original())
    assert boxes[:, 0].min() <= 0 and boxes[:, 2].max() >= 1600 and boxes[:, 1].min() <= 0 and boxes[:, 3].max() >= 400
    # by hand (Liu et al., 2024, LLaVA-NeXT's unpadding): base 24x24 = 576; the canvas is 24x72 patches; the 4:1
    # image scaled to 72 patches wide is 400*72/1600 = 18 patches high, so the 3 padding rows above and below are
    # dropped: 18 rows of 72 features, each row ending with a newline token
    assert c.visual_tokens == 576 + 18 * 72 + 18


def test_idefics3_crops_tile_the_original_exactly():
    c = compute.count_tokens(Image.new("RGB", (1000, 700)), "idefics3")
    boxes = np.array(c.tile_boxes_original())
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum()
    assert area == pytest.approx(1000 * 700) and c.tiles == len(boxes) + 1


def test_qwen2vl_refuses_200_to_1_with_the_limit_while_the_others_count():
    image = Image.new("RGB", (500, 2))
    with pytest.raises(ValueError, match="at most 200 times"):
        compute.count_tokens(image, "qwen2-vl")
    counts = compute.count_all(image)
    assert isinstance(counts["qwen2-vl"], str) and "200" in counts["qwen2-vl"]
    assert all(not isinstance(counts[f], str) for f in FAMILIES if f != "qwen2-vl")


def test_qwen2vl_aspect_limit_is_where_transformers_refuses():
    """options.QWEN2VL_MAX_ASPECT_RATIO against transformers' own smart_resize: exactly that ratio passes, one
    factor more is refused; the count follows it (28 px is one merged patch, the smallest side it keeps)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    q, r = options.QWEN2VL, options.QWEN2VL_MAX_ASPECT_RATIO
    factor = q["patch_size"] * q["merge_size"]
    bounds = {"factor": factor, "min_pixels": q["min_pixels"], "max_pixels": q["max_pixels"]}
    assert smart_resize(factor, factor * r, **bounds)
    with pytest.raises(ValueError):
        smart_resize(factor, factor * r + factor, **bounds)
    assert compute.count_tokens(Image.new("RGB", (factor * r, factor)), "qwen2-vl").visual_tokens > 0
    with pytest.raises(ValueError, match=f"at most {r} times"):
        compute.count_tokens(Image.new("RGB", (factor * r + factor, factor)), "qwen2-vl")


def test_qwen2vl_patch_row_is_what_the_intro_says():
    """The intro's floats per patch (3 x temporal x patch²) is the width of the processor's pixel_values."""
    out = compute.processor("qwen2-vl")(images=Image.new("RGB", (56, 56)), return_tensors="np")
    q = options.QWEN2VL
    floats = 3 * q["temporal_patch_size"] * q["patch_size"] ** 2
    assert np.asarray(out["pixel_values"]).shape[-1] == floats
    assert f"as {floats} floats" in app._count_intro()
    # The intro's megabytes at the pixel cap, from the bytes the processor really allocates per patch here.
    per_patch = np.asarray(out["pixel_values"], dtype=np.float32).nbytes / np.asarray(out["pixel_values"]).shape[0]
    patches_at_cap = q["max_pixels"] / q["patch_size"] ** 2  # the cap is a whole number of patches
    assert f"({per_patch * patches_at_cap / 1e6:.0f} MB of float32" in app._count_intro()


@pytest.mark.parametrize("size, message", [((1, 1), "at least 2 pixels a side"), ((9000, 10), "8192 pixels a side")])
def test_tiny_and_huge_images_are_refused_with_the_limit(size, message):
    with pytest.raises(ValueError, match=message):
        compute.count_tokens(Image.new("RGB", size), "llava-1.5")


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(ValueError, match="paligemma-896"):
        compute.count_tokens(Image.new("RGB", (8, 8)), "gpt-4v")


def test_stats_have_the_endpoint_keys_and_are_json():
    s = compute.count_tokens(Image.new("RGB", (1600, 400)), "idefics3").stats()
    assert {"family", "visual_tokens", "resized", "tiles"} <= set(s)
    assert s["resized"] == [364, 1456] and s["tiles"] == 5 and json.loads(json.dumps(s)) == s


# --------------------------------------------------------------------------------------
#                                   Cost
# --------------------------------------------------------------------------------------

def _tiny_llama(kv_heads: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=64)
    cfg._attn_implementation = "eager"
    return LlamaForCausalLM(cfg).eval(), cfg


@pytest.mark.parametrize("dtype, name", [(torch.float32, "fp32"), (torch.bfloat16, "fp16/bf16")])
def test_kv_cache_bytes_match_a_real_cache_with_grouped_query_attention(dtype, name):
    model, cfg = _tiny_llama(kv_heads=2)
    model = model.to(dtype)
    tokens = 11
    with torch.no_grad():
        cache = model(torch.arange(tokens)[None], use_cache=True).past_key_values
    tensors = [t for layer in cache.layers for t in (layer.keys, layer.values)]
    real = sum(t.numel() * t.element_size() for t in tensors)
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    assert real == compute.kv_cache_bytes(cfg.num_hidden_layers, 2, head_dim, tokens, options.DTYPES[name])


def test_prefill_flops_against_the_flop_counter():
    """FlopCounterMode on the tiny LM's transformer (no embedding, no output projection: Kaplan's N) at 8 tokens:
    exactly 2·(linear weights)·T plus QKᵀ and AV (4·L·T²·d_attn); 2·N·T is within 5% of it."""
    from torch.utils.flop_counter import FlopCounterMode

    model, cfg = _tiny_llama()
    tokens = 8
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.model(input_ids=torch.arange(tokens)[None])
    counted = counter.get_total_flops()
    linear = sum(m.weight.numel() for m in model.model.layers.modules() if isinstance(m, torch.nn.Linear))
    attention = 4 * cfg.num_hidden_layers * tokens**2 * cfg.hidden_size
    assert counted == 2 * linear * tokens + attention
    non_embedding = sum(p.numel() for p in model.model.parameters()) - model.model.embed_tokens.weight.numel()
    assert compute.prefill_flops(non_embedding, tokens) == pytest.approx(counted, rel=0.05)
    # Kaplan's context term counts QKᵀ only (2·L·T²·d_attn); the counter sees QKᵀ and AV
    assert 2 * compute.attention_flops(cfg.num_hidden_layers, cfg.hidden_size, tokens) == attention


def test_meta_device_count_matches_the_gemma_report():
    """Gemma Team (2024), Table 2: Gemma 2B has 1,981,884,416 non-embedding parameters."""
    gemma = compute.lm_size("Gemma-2B (PaliGemma)")
    assert gemma.non_embedding == 1_981_884_416
    assert (gemma.layers, gemma.kv_heads, gemma.head_dim) == (18, 1, 256)
    llama3 = compute.lm_size("Llama-3-8B (Idefics3-8B)")  # "8B" on its model card
    assert round(llama3.params / 1e9) == 8 and llama3.kv_heads == 8


def test_cost_table_uses_each_familys_own_lm_and_a_custom_one():
    image = Image.new("RGB", (336, 336))
    own = compute.cost_table(image, options.OWN_LM, "fp16/bf16")
    mistral = own["llava-next"]
    assert mistral.lm.name.startswith("Mistral") and own["paligemma-896"].lm.name.startswith("Gemma")
    # 2 (K, V) x 32 layers x 8 kv heads x 128 x T tokens x 2 bytes
    assert mistral.kv_bytes == 2 * 32 * 8 * 128 * mistral.tokens * 2
    custom = compute.cost_table(image, options.CUSTOM_LM, "fp8/int8", 1.5, 10, 2, 64)
    assert custom["llava-1.5"].flops == 2 * 1_500_000_000 * 576
    assert custom["llava-1.5"].kv_bytes == 2 * 10 * 2 * 64 * 576
    with pytest.raises(ValueError, match="layers must be an integer from 1 to 256"):
        compute.cost_table(image, options.CUSTOM_LM, "fp32", 1.0, 0, 2, 64)
    with pytest.raises(ValueError, match="fp16/bf16"):
        compute.cost_table(image, options.OWN_LM, "int3")


# --------------------------------------------------------------------------------------
#                                   What the page states
# --------------------------------------------------------------------------------------

def test_page_facts_match_the_shipped_files():
    config = json.loads((local_path(options.VLM_MODEL) / "config.json").read_text())
    metrics = json.loads((local_path(options.VLM_MODEL) / "metrics.json").read_text())
    text = app._vlm_intro(options.vlm_facts())
    v, t = config["vision_config"], config["text_config"]
    assert f"{v['image_size']} px, patch {v['patch_size']}" in text
    assert f"{t['num_hidden_layers']} layers, width {t['hidden_size']}" in text
    assert f"{t['vocab_size']}-word vocabulary" in text and f"{metrics['parameters']:,} parameters" in text
    held = {k[: -len("_accuracy")]: v for k, v in metrics.items() if k.endswith("_accuracy") and not isinstance(v, dict)}
    for table in (held, metrics["shifted_accuracy"], metrics["independent_renderer_accuracy"]):
        assert table
        for kind, value in table.items():
            assert f"{kind} {value:.1%}" in text
    assert f"on {metrics['n']} held-out images: shape {held['shape']:.1%}" in text
    intro = app._count_intro()
    assert "`scale_factor` 2, not 3" in intro and "at least 2×2" in intro and "8,192" in intro


def test_counts_are_cached_per_image_and_family():
    """The details view recounts every family after the endpoint: the chosen one comes from the cache, while another
    family, or one changed pixel, runs the processor again."""
    image = Image.new("RGB", (300, 200), (10, 20, 30))
    first = compute.count_tokens(image, "llava-next")
    assert compute.count_tokens(image.copy(), "llava-next") is first
    assert compute.count_all(image)["llava-next"] is first
    assert compute.count_tokens(image, "idefics3") is not first
    changed = image.copy()
    changed.putpixel((0, 0), (11, 20, 30))
    again = compute.count_tokens(changed, "llava-next")
    assert again is not first and again.visual_tokens == first.visual_tokens
