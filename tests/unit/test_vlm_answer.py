"""spaces/vlm_tokens/vlm.py: the visible greedy loop of the tiny VLM, checked against transformers' own
``generate`` and against attention recomputed without the KV cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from shared.data import matplotlib_shapes
from shared.data.shapes import render, spec_at
from shared.models import available_offline, load
from shared.training import vlm_tiny_shapes as recipe
from spaces.vlm_tokens import options, vlm

MODEL = options.VLM_MODEL
pytestmark = pytest.mark.skipif(not available_offline(MODEL), reason="not trained: python -m shared.training vlm-tiny-shapes")


@pytest.fixture(scope="module")
def shape_image():
    return render(spec_at("test", 7), 64)


@pytest.fixture(scope="module")
def loaded():
    return load(MODEL, attn="eager")


def test_example_questions_are_the_trained_first_phrasings():
    """The page's examples are questions the model was trained on (the evaluation asks these phrasings)."""
    firsts = [recipe.QUESTIONS[k][0] for k in recipe.QUESTION_KINDS]
    assert list(options.EXAMPLE_QUESTIONS[:3]) == firsts[:3]
    assert options.EXAMPLE_QUESTIONS[3] == firsts[3].format(colour="red", shape="star")


@pytest.mark.parametrize("question, message", [
    ("", "empty"), ("   \n ", "empty"), ("x" * (options.MAX_QUESTION_CHARS + 1), str(options.MAX_QUESTION_CHARS)),
    (None, "text"), (42, "text"),
])
def test_bad_questions_are_refused(shape_image, question, message):
    with pytest.raises(ValueError, match=message):
        vlm.answer(shape_image, question)


def test_a_question_at_the_cap_is_answered(shape_image):
    words = ("what shape is in the image ? " * 10)[:options.MAX_QUESTION_CHARS]
    assert len(words.strip()) <= options.MAX_QUESTION_CHARS
    assert vlm.answer(shape_image, words).tokens


def test_unknown_model_lists_the_choices(shape_image):
    with pytest.raises(ValueError, match="vlm-tiny-shapes"):
        vlm.answer(shape_image, "What shape is in the image?", model="no-such-vlm")


@pytest.mark.parametrize("question", options.EXAMPLE_QUESTIONS)
def test_greedy_loop_matches_generate(loaded, shape_image, question):
    """The hand-written loop (prompt pass, then one token at a time on the KV cache) gives the tokens that
    transformers' ``generate(do_sample=False)`` gives."""
    model, processor = loaded
    got = vlm.answer(shape_image, question)
    inputs = processor(images=[shape_image], text=[recipe.PROMPT.format(question=question)], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=options.MAX_NEW_TOKENS, do_sample=False,
                             pad_token_id=processor.tokenizer.pad_token_id)
    expected = processor.tokenizer.convert_ids_to_tokens(out[0, inputs["input_ids"].shape[1]:].tolist())
    assert got.tokens == expected
    assert got.text == processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_attention_maps_match_a_forward_pass_without_cache(loaded, shape_image):
    """Each step's map = the attention row of that position in ONE forward pass over prompt + generated tokens
    (no KV cache), over the image positions, mean over heads and layers."""
    model, processor = loaded
    got = vlm.answer(shape_image, "Where is the shape?")
    inputs = processor(images=[shape_image], text=[recipe.PROMPT.format(question="Where is the shape?")],
                       return_tensors="pt")
    ids = processor.tokenizer.convert_tokens_to_ids(got.tokens)
    full = torch.cat([inputs["input_ids"], torch.tensor([ids])], dim=1)  # (1, T + n)
    with torch.no_grad():
        out = model(input_ids=full, attention_mask=torch.ones_like(full), pixel_values=inputs["pixel_values"],
                    output_attentions=True)
    image_pos = (inputs["input_ids"][0] == model.config.image_token_id).nonzero().flatten()
    t = inputs["input_ids"].shape[1]
    layers = torch.stack(out.attentions)[:, 0]  # (L, H, T + n, T + n)
    for step in range(len(got.tokens)):
        row = layers[:, :, t - 1 + step, image_pos].mean(dim=(0, 1)).numpy()  # (n_image,)
        np.testing.assert_allclose(got.attention[step].reshape(-1), row, atol=1e-5)
    assert got.attention.shape == (len(got.tokens), *got.grid)
    assert np.all(got.attention.sum(axis=(1, 2)) <= 1 + 1e-5)


def test_prompt_tokens_expand_the_image_placeholder(loaded, shape_image):
    model, _ = loaded
    got = vlm.answer(shape_image, "What colour is the shape?")
    vision = model.config.vision_config
    n = (vision.image_size // vision.patch_size) ** 2  # CLS dropped ("default" feature selection)
    start, end = got.image_span
    assert end - start == n == got.grid[0] * got.grid[1]
    assert got.prompt_tokens[start:end] == ["<image>"] * n
    assert "<image>" not in got.prompt_tokens[:start] + got.prompt_tokens[end:]
    assert got.prompt_tokens[-2:] == ["assistant", ":"]


def test_top_alternatives_are_a_distribution(shape_image):
    got = vlm.answer(shape_image, "What shape is in the image?")
    for step, token in zip(got.top, got.tokens, strict=True):
        probs = [p for _, p in step]
        assert len(step) == vlm.TOP_K and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert step[0][0] == token  # greedy


def test_unknown_words_are_reported(shape_image):
    got = vlm.answer(shape_image, "What colour is the wobbly blob?")
    assert got.unknown_words == ["wobbly", "blob"]
    assert vlm.answer(shape_image, "what COLOUR is the shape?").unknown_words == []


def test_stats_are_json_and_say_what_was_answered(shape_image):
    got = vlm.answer(shape_image, "What shape is in the image?")
    stats = json.loads(json.dumps(got.stats()))
    assert stats["answer"] == got.text and stats["image_tokens"] == 64 and stats["grid"] == [8, 8]
    assert stats["unusual_input"] in (True, False)


def test_any_image_mode_and_size_is_accepted():
    """A user's upload: an RGBA drawing at 300x200 from another renderer goes through the processor's resize."""
    drawing = matplotlib_shapes.drawing(3, size=200).image.resize((300, 200)).convert("RGBA")
    got = vlm.answer(drawing, "What shape is in the image?")
    assert got.image.size == (64, 64) and got.tokens


def test_every_answer_carries_the_calibrated_ood_check(shape_image):
    """The tower is clip-tiny-shapes', so its calibrated check (shared.ood) runs on the same image: a held-out
    test shape is not flagged, and the message says how much that is worth."""
    shape = vlm.answer(shape_image, "What shape is in the image?")
    assert shape.ood_unusual is False and shape.ood_message.startswith("Not flagged")
    assert "photos" in shape.ood_message


def test_a_photo_of_a_cat_is_flagged():
    """Chelsea the cat gets an answer (the model knows only shapes), and the page says it is unlike them (issue 13)."""
    skimage_data = pytest.importorskip("skimage.data")
    cat = vlm.answer(Image.fromarray(skimage_data.chelsea()), "What shape is in the image?")
    assert cat.ood_unusual is True and "unlike" in cat.ood_message and "5 shapes" in cat.ood_message


def test_a_repeated_request_is_decoded_once(shape_image):
    """The page's click asks for the answer twice (the endpoint's text, then the drawn details): greedy decoding
    is deterministic, so the second request gets the first's result, not a second decode."""
    first = vlm.answer(shape_image, "Where is the shape?")
    assert vlm.answer(shape_image.copy(), "Where is the shape?") is first
    assert vlm.answer(shape_image, "What shape is in the image?") is not first
    other = render(spec_at("test", 8), 64)
    assert vlm.answer(other, "Where is the shape?") is not first
