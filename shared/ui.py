"""Gradio pieces that several spaces share: a validating image input and error translation.

Compute functions raise ``ValueError`` with a helpful message; ``user_errors`` turns those into
``gr.Error`` so the user sees the message in a modal and the server keeps serving.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr

from shared.images import load_image


class ValidatedImage(gr.Image):
    """``gr.Image`` that validates the upload itself and hands the handler an RGB PIL image.

    Plain ``gr.Image`` opens the file in its own preprocessing, so an empty file, a text file
    named .png or a decompression bomb fails there with a generic error before any handler
    runs. Here every such file becomes a clear ``gr.Error``.
    """

    # The front end must see a plain "image" with gr.Image's props. Without these two, gradio names
    # the component "validatedimage" and reads its props from this *args/**kwargs signature, so
    # the browser shows no image input at all (label, value and sources are all dropped).
    is_template = True

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("type", "pil")
        kwargs["image_mode"] = None  # we convert every mode to RGB ourselves (shared.images.to_rgb)
        super().__init__(*args, **kwargs)

    def get_config(self, cls=None):  # type: ignore[override]
        return super().get_config(cls or gr.Image)

    def preprocess(self, payload):  # type: ignore[override]
        if payload is None:
            return None
        try:
            if payload.path:
                return load_image(payload.path)
            return load_image(super().preprocess(payload))  # data: URL payloads
        except ValueError as err:
            raise gr.Error(str(err)) from None
        except Exception as err:  # anything PIL raises on hostile input
            raise gr.Error(f"could not read the image: {err}") from None


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


# Inputs whose payload is a file reference, not the value: they need gradio's preprocessing (upload checks).
_FILE_INPUTS = (gr.Image, gr.File, gr.Audio, gr.Video, gr.Gallery, gr.Model3D)


def raw_values(trigger: Callable, fn: Callable, inputs: list, outputs: Any = None, **kwargs: Any):
    """``trigger(fn, inputs, outputs, preprocess=False, **kwargs)``: the handler receives its value inputs
    as sent, so an API call with 3.5, "abc", NaN or an unknown choice reaches ``fn``, whose validation
    (``compute.py``'s ``ValueError`` through ``user_errors``) answers in plain words.

    Gradio's preprocessing would otherwise reject such values with a generic message, or round them
    silently (``gr.Number(precision=0)`` turns 2.5 into 2). It replaces subclassing components to skip
    ``preprocess``: the front end looks components up by class name, and a subclass does not render
    (issue 14: the DiT page showed no controls). Events with file inputs keep gradio's preprocessing,
    which checks uploads; this refuses them.
    """
    files = [type(c).__name__ for c in inputs if isinstance(c, _FILE_INPUTS)]
    if files:
        raise TypeError(f"raw_values is for value inputs only; {files} need gradio's preprocessing: wire that "
                        "event normally and validate its values in the handler")
    return trigger(fn, list(inputs), outputs, preprocess=False, **kwargs)


def as_int(value: Any, name: str) -> int:
    """An integer from an API argument, refusing 3.5, "abc", NaN and bools."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError(f"{name} must be an integer, got {value!r}")


def sample_examples() -> list[str]:
    """Paths of the shipped sample images, for ``gr.Examples``."""
    from shared.images import sample_paths

    return [str(p) for p in sample_paths()]
