"""Gradio pieces that several spaces share: event wiring that validates raw input, and error translation.

Compute functions raise ``ValueError`` with a helpful message; ``user_errors`` turns those into
``gr.Error`` so the user sees the message in a modal and the server keeps serving.
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import processing_utils

from shared.images import load_image


def _save_pil_to_cache_atomically(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio's ``save_pil_to_cache`` with the file written under a temporary name and renamed into place.

    gradio names an output image's cache file by the hash of its bytes and rewrites that file in place on
    every request. Two users who get the same image (the default sample, say) then race: one request
    truncates the file while another's download is streaming it, and the client fails with "peer closed
    connection without sending complete message body" (issue 14: 30 errors in 376 calls with 16 clients).
    A rename is atomic, so a reader sees the old complete file or the new one; an existing file (same hash,
    same bytes) is only touched, as gradio's own ``save_file_to_cache`` does.
    """
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = folder / f"{name}.{format}"
    if path.exists():
        try:
            os.utime(path)  # gradio's delete_cache ages files by ctime
        except OSError:
            pass
        return str(path.resolve())
    fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(staging, path)
    return str(path.resolve())


# Installed when any page is built (every space imports this module); save_img_array_to_cache and the
# Image, Gallery and AnnotatedImage components all look the function up on the module at call time.
processing_utils.save_pil_to_cache = _save_pil_to_cache_atomically


def user_errors(fn: Callable) -> Callable:
    """Turn ``ValueError`` from compute code into ``gr.Error`` (works for generators too)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except ValueError as err:
                raise gr.Error(str(err)) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except ValueError as err:
            raise gr.Error(str(err)) from None
    return wrapper


# File inputs other than images would need gradio's own upload handling in the handler: refused.
_OTHER_FILE_INPUTS = (gr.File, gr.Audio, gr.Video, gr.Gallery, gr.Model3D)


def image_from_payload(payload: Any):
    """An image input's raw payload (gradio has already moved the upload into its cache and checked it
    came from the upload folder) -> RGB PIL image via ``shared.images.load_image``, or ``gr.Error``
    with what is wrong (an empty file, a text file named .png, a decompression bomb...)."""
    if payload is None:
        return None
    try:
        path = payload.get("path") if isinstance(payload, dict) else None
        if path:
            return load_image(path)
        url = payload.get("url") if isinstance(payload, dict) else None
        if url and url.startswith("data:") and "," in url:  # a pasted image arrives as a data URL
            import base64
            import binascii

            header, data = url.split(",", 1)
            try:
                raw = base64.b64decode(data, validate=True) if header.endswith(";base64") else data.encode()
            except binascii.Error:
                raise ValueError("the pasted image is not valid base64 data") from None
            return load_image(raw)
        raise ValueError("no image in the request")
    except ValueError as err:
        raise gr.Error(str(err)) from None
    except Exception as err:  # anything PIL raises on hostile input
        raise gr.Error(f"could not read the image: {err}") from None


def raw_values(trigger: Callable, fn: Callable, inputs: list, outputs: Any = None, **kwargs: Any):
    """``trigger(fn, inputs, outputs, preprocess=False, **kwargs)``, the one way this project wires an event:
    ``fn`` receives value inputs as sent and ``gr.Image`` inputs as RGB PIL images loaded here.

    - Values: an API call with 3.5, "abc", NaN or an unknown choice reaches ``fn``, whose validation
      (``compute.py``'s ``ValueError`` through ``user_errors``) answers in plain words. Gradio's own
      preprocessing would reject them with a generic message or round them silently
      (``gr.Number(precision=0)`` turns 2.5 into 2).
    - Images: gradio still moves uploads into its cache and checks them; ``image_from_payload`` then opens
      them, so a broken file gets a clear message instead of failing inside ``gr.Image``'s preprocessing.

    This replaces subclassing components to change ``preprocess``: the front end looks components up by
    class name, and a subclass does not render (issue 14: the DiT page showed no controls).
    ``trigger`` is a listener (``button.click``, ``dep.success``...) or ``functools.partial(gr.on, triggers)``.
    """
    components = list(inputs)
    others = [type(c).__name__ for c in components if isinstance(c, _OTHER_FILE_INPUTS)]
    if others:
        raise TypeError(f"raw_values loads images and passes values; {others} need gradio's preprocessing")
    images = {i for i, c in enumerate(components) if isinstance(c, gr.Image)}
    if not images:
        return trigger(fn, components, outputs, preprocess=False, **kwargs)

    def load_images(args: tuple) -> tuple:
        return tuple(image_from_payload(a) if i in images else a for i, a in enumerate(args))

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_handler(*args: Any, **kw: Any):
            yield from fn(*load_images(args), **kw)
        return trigger(gen_handler, components, outputs, preprocess=False, **kwargs)

    @functools.wraps(fn)
    def handler(*args: Any, **kw: Any):
        return fn(*load_images(args), **kw)
    return trigger(handler, components, outputs, preprocess=False, **kwargs)


def page(render: Callable[[gr.Blocks], None], title: str) -> gr.Blocks:
    """A space on its own: ``render(demo)`` inside a Blocks of its own (the hub renders it into a tab instead)."""
    with gr.Blocks(title=title) as demo:
        render(demo)
    return demo


def sample_examples() -> list[str]:
    """Paths of the shipped sample images, for ``gr.Examples``."""
    from shared.images import sample_paths

    return [str(p) for p in sample_paths()]


# --------------------------------------------------------------------------------------
#                     Downloads: every table as CSV, plot as PNG, stats as JSON
# --------------------------------------------------------------------------------------

_EXPORTABLE = (gr.Plot, gr.Dataframe, gr.JSON, gr.Label)


def downloads(label: str = "Download what you see (tables CSV, plots PNG, stats JSON)") -> gr.File:
    """The output that ``with_downloads`` fills: one file per table, plot and stats panel of an event
    (a low box: empty until the first run, it should not push the page's content down)."""
    return gr.File(label=label, file_count="multiple", interactive=False, height=140)


def _named_exports(outputs: list, values: tuple) -> list[tuple[str, Any]]:
    import pandas as pd

    from shared.exports import file_stem

    named = []
    for i, (component, value) in enumerate(zip(outputs, values, strict=True)):
        if not isinstance(component, _EXPORTABLE) or value is None:
            continue
        if isinstance(value, dict) and "__type__" in value:  # a gr.update(...), not a value
            continue
        if isinstance(component, gr.Dataframe) and isinstance(value, list):
            headers = component.headers if value and len(component.headers or []) == len(value[0]) else None
            value = pd.DataFrame(value, columns=headers)
        named.append((file_stem(component.label, f"output-{i + 1}"), value))
    return named


def with_downloads(fn: Callable, outputs: list) -> Callable:
    """``fn`` (returning values for ``outputs``) returning one more value: the paths of a CSV for each
    ``gr.Dataframe``, a PNG for each ``gr.Plot`` (matplotlib) and a JSON for each ``gr.JSON``/``gr.Label``
    among them, named after the component labels. Wire it with ``outputs + [downloads()]``.
    A generator's intermediate yields leave the files unchanged; they are written once, after its last yield."""
    from shared.exports import write_downloads

    outputs = list(outputs)

    def as_tuple(result: Any) -> tuple:
        return tuple(result) if len(outputs) > 1 else (result,)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any):
            last = None
            for result in fn(*args, **kwargs):
                last = as_tuple(result)
                yield (*last, gr.skip())
            if last is not None:
                yield (*[gr.skip()] * len(outputs), write_downloads(_named_exports(outputs, last)))
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        values = as_tuple(fn(*args, **kwargs))
        return (*values, write_downloads(_named_exports(outputs, values)))
    return wrapper
