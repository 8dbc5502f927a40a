"""shared.ui.raw_values: bad API values reach the handler, whose message the caller sees; images arrive as
RGB PIL images, and broken files get a clear message; the page's components stay gradio's own classes (so
the front end renders them); other file inputs are refused."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from shared import validate
from shared.ui import raw_values, user_errors
from tests.serving import BackgroundServer


@user_errors
def _double(n, choice):
    n = validate.integer(n, "n")
    choice = validate.choice(choice, "choice", ["a", "b"])
    return f"{2 * n}{choice}"


@pytest.fixture(scope="module")
def client():
    with gr.Blocks() as demo:
        n = gr.Number(value=1, precision=0)
        choice = gr.Dropdown(["a", "b"], value="a")
        out = gr.Textbox()
        raw_values(gr.Button("go").click, _double, [n, choice], out, api_name="double")
        image = gr.Image(type="pil")
        raw_values(gr.Button("size").click, lambda im: f"{im.mode} {im.size[0]}x{im.size[1]}", [image], out,
                   api_name="size")
    app = gr.mount_gradio_app(__import__("fastapi").FastAPI(), demo, path="/")
    with BackgroundServer(app) as server:
        yield Client(server.url, verbose=False)


def test_good_values_pass_through(client):
    assert client.predict(21, "b", api_name="/double") == "42b"


@pytest.mark.parametrize("n, choice, match", [
    (2.5, "a", "n must be an integer, got 2.5"),  # gr.Number(precision=0) alone would round it to 2
    ("abc", "a", "n must be an integer, got 'abc'"),
    (3, "zzz", r"unknown choice 'zzz'; choose one of \['a', 'b'\]"),
])
def test_bad_values_get_the_handlers_message_and_the_server_keeps_serving(client, n, choice, match):
    with pytest.raises(AppError, match=match):
        client.predict(n, choice, api_name="/double")
    assert client.predict(1, "a", api_name="/double") == "2a"


def test_images_arrive_as_rgb_and_broken_files_get_a_clear_message(client, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    Image.new("LA", (7, 5)).save(tmp_path / "grey_alpha.png")
    assert client.predict(handle_file(str(tmp_path / "grey_alpha.png")), api_name="/size") == "RGB 7x5"
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(AppError, match="(?i)image"):
        client.predict(handle_file(str(tmp_path / "empty.png")), api_name="/size")
    assert client.predict(1, "a", api_name="/double") == "2a"


def test_other_file_inputs_are_refused():
    with gr.Blocks():
        with pytest.raises(TypeError, match="loads images and passes values"):
            raw_values(gr.Button().click, lambda x: x, [gr.File()], gr.Textbox())
