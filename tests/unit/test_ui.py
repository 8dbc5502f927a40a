"""shared/ui.py: error translation, image payloads, raw_values wiring rules and the atomic image cache.
(The served behaviour of raw_values is in tests/api/test_ui_raw_values.py.)"""

from __future__ import annotations

import base64
import io
import os
import threading

import gradio as gr
import pytest
from gradio import processing_utils
from PIL import Image

from shared import ui


def test_user_errors_turns_value_errors_into_gr_errors_and_lets_others_through():
    @ui.user_errors
    def bad(x):
        if x == "value":
            raise ValueError("steps must be an integer")
        raise KeyError("a bug")

    with pytest.raises(gr.Error, match="steps must be an integer"):
        bad("value")
    with pytest.raises(KeyError):  # a bug stays a bug: it is not dressed up as a user error
        bad("other")


def test_user_errors_wraps_generators_too():
    @ui.user_errors
    def steps(n):
        yield 1
        raise ValueError(f"stopped at {n}")

    gen = steps(2)
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="stopped at 2"):
        next(gen)


def test_image_from_payload_reads_paths_and_data_urls(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGBA", (3, 2), (0, 0, 0, 0)).save(path)
    assert ui.image_from_payload(None) is None
    image = ui.image_from_payload({"path": str(path)})
    assert image.mode == "RGB" and image.size == (3, 2)
    buf = io.BytesIO()
    Image.new("RGB", (5, 4), "blue").save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert ui.image_from_payload({"url": url}).size == (5, 4)


def test_image_from_payload_explains_broken_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(gr.Error, match="not an image"):
        ui.image_from_payload({"path": str(text)})
    with pytest.raises(gr.Error, match="no image in the request"):
        ui.image_from_payload({"url": "https://example.com/x.png"})


def test_raw_values_refuses_inputs_it_cannot_load():
    with gr.Blocks():
        f, out = gr.File(), gr.Textbox()
        with pytest.raises(TypeError, match="File"):
            ui.raw_values(gr.Button().click, lambda x: x, [f], out)


def test_the_image_cache_writes_atomically_and_never_serves_a_partial_file(tmp_path):
    """Issue 14: gradio rewrote a shared cache file in place, so a concurrent download got half of it."""
    assert processing_utils.save_pil_to_cache is ui._save_pil_to_cache_atomically
    image = Image.effect_noise((256, 256), 64).convert("RGB")
    first = processing_utils.save_pil_to_cache(image, str(tmp_path), format="png")
    size = os.path.getsize(first)
    sizes, stop = [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            with open(first, "rb") as f:
                sizes.append(len(f.read()))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(200):  # the same image again and again, as two users asking for the default sample
            assert processing_utils.save_pil_to_cache(image, str(tmp_path), format="png") == first
    finally:
        stop.set()
        reader.join()
    assert sizes and set(sizes) == {size}
    assert not [p for p in os.listdir(os.path.dirname(first)) if p.startswith(".")]  # no staging leftovers
