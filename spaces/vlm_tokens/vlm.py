"""A VLM answering live: greedy decoding, one token at a time, with what each token looked at.

LLaVA (Liu et al., 2023) feeds an LM the projected patch features of a vision tower in place of the
``<image>`` tokens of its prompt; the LM then generates the answer like any causal LM. This module runs that
loop in the open (the diffusers way: the loop is visible, not hidden in ``generate``):

1. the processor expands ``<image>`` into one token per patch feature and prepares the pixels;
2. a forward pass over the whole prompt fills the KV cache; the last position's logits give token 1;
3. each next step feeds only the new token, reusing the cache (greedy: the most probable token wins);
4. at every step the LM's attention from the new token to the image positions, averaged over layers and heads,
   is the text->image attention map shown over the image grid.

The default model is ``vlm-tiny-shapes`` (trained here; ``shared/training/vlm_tiny_shapes.py``); a Hub VLM with
a chat template (e.g. ``HuggingFaceTB/SmolVLM-256M-Instruct``) goes through the same loader and loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from shared import validate
from shared.cache import BoundedCache
from shared.images import load_image, pixels_key
from shared.models import TRANSFORMERS_IMPORT_LOCK, kv_cache_name, load, names

from .options import MAX_NEW_TOKENS, VLM_MODEL, check_question

TOP_K = 5  # alternatives shown per generated token
OOD_MODEL = "clip-tiny-shapes"  # the tiny VLM's vision tower comes from it, so does its calibrated OOD check


@dataclass(frozen=True)
class Answer:
    text: str  # the answer, special tokens removed
    tokens: list[str]  # the generated tokens in order ("</s>" included when produced)
    top: list[list[tuple[str, float]]]  # per generated token, the top-5 (token, probability) of that step
    prompt_tokens: list[str]  # the prompt as the LM sees it, "<image>" expanded into one token per image feature
    image_span: tuple[int, int]  # [start, end) of the image tokens in prompt_tokens
    grid: tuple[int, int] | None  # (rows, cols) of the image tokens; None when they are not one square grid
    attention: np.ndarray  # (len(tokens), rows, cols), or (len(tokens), n_image_tokens) without a grid
    image: Image.Image  # the image as the vision tower saw it (for the tiny VLM: resized and cropped to 64 px)
    model: str
    unknown_words: list[str]  # question words outside the model's vocabulary (word-level tokenizers only)
    ood_message: str | None  # the calibrated out-of-distribution check on the image (None: no calibration)
    ood_unusual: bool | None

    def stats(self) -> dict:
        return {
            "model": self.model, "answer": self.text, "tokens": self.tokens,
            "top": [[[t, round(p, 4)] for t, p in step] for step in self.top],
            "prompt_tokens": len(self.prompt_tokens), "image_tokens": self.image_span[1] - self.image_span[0],
            "image_span": list(self.image_span), "grid": list(self.grid) if self.grid else None,
            "attention_to_image": [round(float(a.sum()), 4) for a in self.attention],
            "unknown_words": self.unknown_words, "unusual_input": self.ood_unusual,
        }


def check_model(model: str) -> str:
    return validate.choice(model, "model", names("image-text-to-text"))


def _prompt(processor, question: str) -> str:
    """LLaVA's plain prompt for the tiny VLM (no chat template); a Hub VLM's own chat template otherwise."""
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return processor.apply_chat_template(messages, add_generation_prompt=True)
    from shared.training.vlm_tiny_shapes import PROMPT

    return PROMPT.format(question=question)


def _unknown_words(tokenizer, question: str) -> list[str]:
    unk = tokenizer.unk_token_id
    if unk is None:
        return []
    words = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(question) \
        if tokenizer.backend_tokenizer.pre_tokenizer is not None else []
    return [w for w, _ in words if tokenizer.convert_tokens_to_ids(w.lower()) == unk]


def _seen_image(processor, pixel_values: torch.Tensor, fallback: Image.Image) -> Image.Image:
    """Undo the processor's normalisation of a (1, 3, H, W) input; other layouts (tiles) show the upload."""
    ip = processor.image_processor
    if pixel_values.ndim != 4 or not hasattr(ip, "image_mean"):
        return fallback
    mean = torch.tensor(ip.image_mean).view(3, 1, 1)
    std = torch.tensor(ip.image_std).view(3, 1, 1)
    x = (pixel_values[0].float().cpu() * std + mean).clamp(0, 1)  # (3, H, W)
    return Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def _ood(image: Image.Image, model: str) -> tuple[str | None, bool | None]:
    """clip-tiny-shapes' calibrated check (``shared.ood``) for the tiny VLM, whose tower started as its tower."""
    from shared import ood
    from shared.data.shapes import SHAPES

    if model != VLM_MODEL or ood.stats_for(OOD_MODEL) is None:
        return None, None
    clip, clip_processor = load(OOD_MODEL)
    logits, emb = ood.clip_image_features(clip, clip_processor, [image])  # (1, 5), (1, P)
    v = ood.classifier_verdict(OOD_MODEL, logits, emb, SHAPES, msp_name=ood.CLIP_SCORE_NAME)
    return v.message, v.unusual


# One click runs the public endpoint (the answer text), then the details view (the same answer, drawn): the second
# reads the first's result here instead of decoding again (which takes seconds for a Hub VLM).
_ANSWERS: BoundedCache[Answer] = BoundedCache(8)


def answer(image: Image.Image, question: str, model: str = VLM_MODEL,
           max_new_tokens: int = MAX_NEW_TOKENS) -> Answer:
    """Greedy answer of ``model`` to ``question`` about ``image``, token by token, with attention over the image.
    Greedy decoding is deterministic, so a repeated request is served from a small cache."""
    question = check_question(question)
    model_name = check_model(model)
    max_new_tokens = validate.integer(max_new_tokens, "max_new_tokens", 1, 64)
    image = load_image(image)
    key = (model_name, question, max_new_tokens, pixels_key(image))
    return _ANSWERS.get_or_create(key, lambda: _decode(image, question, model_name, max_new_tokens))[0]


@torch.no_grad()
def _decode(image: Image.Image, question: str, model_name: str, max_new_tokens: int) -> Answer:
    """The loop itself (see the module docstring)."""
    vlm, processor = load(model_name, attn="eager")  # eager: SDPA returns no attention weights
    tokenizer = processor.tokenizer
    with TRANSFORMERS_IMPORT_LOCK:  # the processor's first call may import transformers modules
        inputs = processor(images=[image], text=[_prompt(processor, question)], return_tensors="pt")
    ids = inputs["input_ids"][0]  # (T,)
    image_id = vlm.config.image_token_id
    where = torch.nonzero(ids == image_id).flatten()  # positions of the image tokens
    start, end = int(where[0]), int(where[-1]) + 1
    n_image = end - start
    side = math.isqrt(n_image)
    grid = (side, side) if side * side == n_image and len(where) == n_image else None
    device = next(vlm.parameters()).device
    inputs = {k: v.to(device) for k, v in inputs.items()}

    cache = kv_cache_name(vlm)
    tokens, top, maps = [], [], []
    out = vlm(**inputs, use_cache=True, output_attentions=True)  # the prompt: fills the KV cache
    mask = inputs["attention_mask"]
    for _ in range(max_new_tokens):
        probs = out.logits[0, -1].float().softmax(-1)  # (V,) next-token distribution
        p, idx = probs.topk(TOP_K)
        top.append([(tokenizer.convert_ids_to_tokens(int(i)), float(q)) for q, i in zip(p, idx, strict=True)])
        # each layer's attention (1, H, q, T): the last query row, image positions, mean over heads then layers
        att = torch.stack([a[0, :, -1, where].float().mean(0) for a in out.attentions]).mean(0)  # (n_image,)
        maps.append(att.cpu().numpy())
        nxt = idx[:1]  # greedy
        tokens.append(tokenizer.convert_ids_to_tokens(int(nxt)))
        if int(nxt) == tokenizer.eos_token_id:
            break
        mask = torch.cat([mask, mask.new_ones((1, 1))], dim=1)
        out = vlm(input_ids=nxt[None], attention_mask=mask, use_cache=True, output_attentions=True,
                  **{cache: getattr(out, cache)})
    attention = np.stack(maps)  # (steps, n_image)
    if grid is not None:
        attention = attention.reshape(len(maps), *grid)
    ids_out = tokenizer.convert_tokens_to_ids(tokens)
    text = tokenizer.decode(ids_out, skip_special_tokens=True).strip()
    ood_message, ood_unusual = _ood(image, model_name)
    return Answer(text, tokens, top, tokenizer.convert_ids_to_tokens(ids.tolist()), (start, end), grid, attention,
                  _seen_image(processor, inputs["pixel_values"], image), model_name,
                  _unknown_words(tokenizer, question), ood_message, ood_unusual)
