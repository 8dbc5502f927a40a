"""vlm_tokens' public API through gradio_client on the launched hub: the count, the cost, the tiny VLM's answer,
and every bad input the issue names (a clear error, then a good call: the server keeps serving).

``vlm_tokens_count(image, family)`` -> stats; ``vlm_tokens_cost(image, lm, dtype, params_billion, layers,
kv_heads, head_dim)`` -> stats; ``vlm_tokens_answer(image, question)`` -> the answer text.
"""

from __future__ import annotations

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.images import sample_paths
from spaces.vlm_tokens import options

COUNT, COST, ANSWER = "/vlm_tokens_count", "/vlm_tokens_cost", "/vlm_tokens_answer"
PANORAMA = str(options.PANORAMA_SAMPLE)
SHAPE = str(sample_paths()[0])


def _good_count(client):
    s = client.predict(handle_file(PANORAMA), "idefics3", api_name=COUNT)
    assert s["visual_tokens"] == 5 * 169 and s["tiles"] == 5  # 4:1 panorama: 1x4 crops + the global image


def _good_answer(client):
    text = client.predict(handle_file(SHAPE), options.DEFAULT_QUESTION, api_name=ANSWER)
    assert isinstance(text, str)
    return text


def test_count_on_a_panorama(client):
    s = client.predict(handle_file(PANORAMA), "llava-next", api_name=COUNT)
    assert {"family", "visual_tokens", "resized", "tiles"} <= set(s)
    assert s["family"] == "llava-next" and s["resized"] == [336, 1008] and s["tiles"] == 4
    assert s["visual_tokens"] == 576 + 18 * 72 + 18  # base + 18 unpadded rows of 72 + 18 newlines (1200x300, 4:1)
    _good_count(client)


def test_count_on_the_space_url(space_client):
    s = space_client("vlm_tokens").predict(handle_file(SHAPE), "paligemma-448", api_name=COUNT)
    assert s["visual_tokens"] == 1024 and s["resized"] == [448, 448] and s["tiles"] == 1


@pytest.fixture
def bad_images(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    tiny, huge, thin = tmp_path / "tiny.png", tmp_path / "huge.png", tmp_path / "thin.png"
    Image.new("RGB", (1, 1)).save(tiny)
    Image.new("RGB", (9000, 10)).save(huge)
    Image.new("RGB", (500, 2)).save(thin)
    return {"fake": str(fake), "tiny": str(tiny), "huge": str(huge), "thin": str(thin)}


@pytest.mark.parametrize("image, family, message", [
    ("fake", "llava-1.5", "not an image"),
    ("tiny", "llava-1.5", "at least 2 pixels a side"),
    ("huge", "llava-1.5", "the limit is 8192 pixels a side"),
    ("thin", "qwen2-vl", "at most 200 times the short side"),
    (None, "gpt-4v", "choose one of .*'paligemma-896'"),
])
def test_bad_count_inputs_then_the_server_keeps_serving(client, bad_images, image, family, message):
    path = bad_images[image] if image else PANORAMA
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(path), family, api_name=COUNT)
    _good_count(client)


def test_cost_in_each_familys_own_lm_and_in_a_custom_lm(client):
    s = client.predict(handle_file(PANORAMA), options.OWN_LM, "fp16/bf16", 7, 32, 8, 128, api_name=COST)
    rows = {r["family"]: r for r in s["rows"]}
    assert set(rows) == set(options.FAMILIES) and not s["refused"]
    r = rows["llava-1.5"]
    assert r["visual_tokens"] == 576 and r["lm"].startswith("Vicuna")
    assert r["prefill_tflops"] == pytest.approx(2 * r["non_embedding_params"] * 576 / 1e12)
    assert r["kv_cache_mb"] == pytest.approx(2 * 32 * 32 * 128 * 576 * 2 / 2**20)
    c = client.predict(handle_file(PANORAMA), options.CUSTOM_LM, "fp32", 1, 4, 2, 64, api_name=COST)
    assert {r["family"]: r for r in c["rows"]}["paligemma-224"]["kv_cache_mb"] == pytest.approx(
        2 * 4 * 2 * 64 * 256 * 4 / 2**20)


@pytest.mark.parametrize("args, message", [
    ((options.OWN_LM, "int3", 7, 32, 8, 128), "KV-cache dtype"),
    (("gpt-5", "fp32", 7, 32, 8, 128), "choose one of"),
    ((options.CUSTOM_LM, "fp32", 7, 0, 8, 128), "layers must be an integer from 1 to 256, got 0"),
    ((options.CUSTOM_LM, "fp32", -1, 32, 8, 128), "parameters \\(billions\\) must be a finite number"),
])
def test_bad_cost_inputs_then_the_server_keeps_serving(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(PANORAMA), *args, api_name=COST)
    _good_count(client)


def test_answer_is_text_and_greedy_so_repeatable(client):
    assert _good_answer(client) == _good_answer(client)


@pytest.mark.parametrize("image, question, message", [
    ("fake", options.DEFAULT_QUESTION, "not an image"),
    (None, "   ", "the question is empty"),
    (None, "x" * (options.MAX_QUESTION_CHARS + 1), f"the limit is {options.MAX_QUESTION_CHARS}"),
    (None, (options.DEFAULT_QUESTION, "gpt-4o"), "choose one of .*'vlm-tiny-shapes'"),
])
def test_bad_answer_inputs_then_the_server_keeps_serving(client, bad_images, image, question, message):
    path = bad_images[image] if image else SHAPE
    args = question if isinstance(question, tuple) else (question,)  # the model is optional (the tiny VLM)
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(path), *args, api_name=ANSWER)
    _good_answer(client)


def test_five_sizes_table(client):
    table, files = client.predict(api_name="/vlm_tokens_sizes")
    rows = {r[0]: dict(zip(table["headers"], r, strict=True)) for r in table["data"]}
    assert list(rows) == ["2×2", "336×336", "1600×400", "400×1600", "4000×3000"]
    assert {r["llava-1.5"] for r in rows.values()} == {576}
    assert rows["2×2"]["idefics3"] == rows["336×336"]["idefics3"] == 17 * 169  # aspect ratio, not size
    assert rows["1600×400"]["idefics3"] == rows["400×1600"]["idefics3"] == 5 * 169
    assert len(files) == 1 and files[0].endswith(".csv")
