"""The path a Hub VLM takes (issue 18: "with network the same page takes a real small VLM, e.g.
HuggingFaceTB/SmolVLM-256M-Instruct, through the same loader"), exercised offline on a tiny, randomly
initialised model of SmolVLM's architecture (Idefics3: image splitting, pixel shuffle, a chat template),
saved as a folder and loaded by ``shared.models.load`` like any registered model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import shared.models as models
from spaces.vlm_tokens import vlm

NAME = "tiny-idefics3-random"
CHAT_TEMPLATE = (  # SmolVLM's layout, shortened: "User:<image>question<end_of_utterance>\nAssistant:"
    "{% for m in messages %}{{ m['role'] | capitalize }}:{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _tokenizer():
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tok_models
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "<s>", "</s>", "<global-img>", "User", "Assistant", ":", "?", "what", "shape",
             "is", "this", "\n", "star", "circle"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    core = Tokenizer(tok_models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                  eos_token="</s>")
    tok.add_special_tokens({"additional_special_tokens": ["<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7)
                                                                            for j in range(1, 7)]})
    return tok


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    folder = tmp_path_factory.mktemp("weights")
    image_size, patch, scale = 32, 8, 2  # (32 / 8)^2 / 2^2 = 4 image tokens per crop
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(size={"longest_edge": 2 * image_size},
                                               max_image_size={"longest_edge": image_size}),
        tokenizer=_tokenizer(), image_seq_len=(image_size // patch) ** 2 // scale ** 2, chat_template=CHAT_TEMPLATE)
    tok = processor.tokenizer
    config = Idefics3Config(
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": image_size, "patch_size": patch},
        text_config={"model_type": "llama", "vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id},
        scale_factor=scale, image_token_id=tok.convert_tokens_to_ids("<image>"), pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder / NAME, safe_serialization=True)
    processor.save_pretrained(folder / NAME)
    spec = models.ModelSpec(task="image-text-to-text", source=models.EMBEDDED, description="test only")
    mp = pytest.MonkeyPatch()
    mp.setattr(models, "WEIGHTS_DIR", folder)
    mp.setitem(models.REGISTRY, NAME, spec)
    yield processor
    mp.undo()
    models.clear_cache()


def test_a_chat_template_vlm_answers_through_the_same_loop(registered):
    """Image splitting gives crops of 4 tokens each (not one square grid): the attention is per image token."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    got = vlm.answer(image, "what shape is this ?", model=NAME, max_new_tokens=3)
    assert got.model == NAME and 1 <= len(got.tokens) <= 3
    start, end = got.image_span
    n_image = got.prompt_tokens.count("<image>")
    assert n_image % 4 == 0 and n_image > 4  # several crops plus the global image
    assert got.grid is None and got.attention.shape == (len(got.tokens), n_image)
    assert got.prompt_tokens[0] == "User" and "Assistant" in got.prompt_tokens[end:]
    assert got.ood_message is None and got.ood_unusual is None  # no calibration shipped for this model
    assert np.all(got.attention.sum(axis=1) <= 1 + 1e-5)


def test_the_loop_matches_generate_on_that_model(registered):
    model, processor = models.load(NAME, attn="eager")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    got = vlm.answer(image, "what shape is this ?", model=NAME, max_new_tokens=4)
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what shape is this ?"}]}],
        add_generation_prompt=True)
    inputs = processor(images=[image], text=[prompt], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    assert got.tokens == processor.tokenizer.convert_ids_to_tokens(new)[:len(got.tokens)]
