"""The CLIP space's public endpoints through gradio_client, including every bad input the issue names."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from shared.data.shapes import SHAPES, render, spec_at
from shared.images import sample_paths

CLASSIFY = "/clip_zero_shot_classify"
LABELS = ", ".join(SHAPES)
TEMPLATE = "a photo of a {}"


def _top(result) -> str:
    """The top label of a gr.Label value (the client returns {'label': ..., 'confidences': [...]})."""
    return result["label"]


def _probabilities(result) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in result["confidences"]}


def _classify(client, path, labels=LABELS, template=TEMPLATE):
    return client.predict(handle_file(str(path)), labels, template, api_name=CLASSIFY)


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_ranks_the_right_shape_first_for_samples(client, path):
    result = _classify(client, path)
    assert _top(result) == path.stem.split("_")[-1]
    assert sum(_probabilities(result).values()) == pytest.approx(1.0, abs=1e-3)


def test_ranks_dataset_renders(client, tmp_path):
    hits = 0
    for i in range(10):
        spec = spec_at("test", 500 + i)
        path = tmp_path / f"render_{i}.png"
        render(spec, 64).save(path)
        hits += _top(_classify(client, path)) == spec.shape
    assert hits >= 9


def test_prompt_ensemble_and_colour_labels(client):
    path = next(p for p in sample_paths() if p.stem.endswith("star"))
    color = path.stem.split("_")[0]
    labels = f"{color} star, {color} circle, green star, blue cross"
    result = _classify(client, path, labels, "a photo of a {}\nan image of a {}\na {}")
    assert _top(result) == f"{color} star"


@pytest.mark.parametrize("labels, template, message", [
    ("", TEMPLATE, "no labels"),
    ("star", TEMPLATE, "softmax over one label"),
    ("star, circle, star", TEMPLATE, "duplicate labels"),
    (",".join(f"label {i}" for i in range(257)), TEMPLATE, "maximum is 256"),
    (LABELS, "a photo of a shape", "has no {}"),
])
def test_bad_labels_and_templates(client, labels, template, message):
    with pytest.raises(AppError, match=message):
        _classify(client, sample_paths()[0], labels, template)
    assert _top(_classify(client, sample_paths()[0])) in SHAPES  # the server keeps serving


def test_non_image_file(client, tmp_path: Path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    with pytest.raises(AppError, match="not an image"):
        _classify(client, fake)
    assert _top(_classify(client, sample_paths()[0])) in SHAPES


def test_label_longer_than_context_is_truncated_not_refused(client):
    long_label = "star " + "very " * 60 + "bright"
    result = _classify(client, sample_paths()[0], f"circle, {long_label}")
    assert set(_probabilities(result)) == {"circle", long_label}


def test_batch_endpoint(client):
    figure, summary, hard, gallery = client.predict(6, 0, "clip-tiny-shapes", api_name="/clip_zero_shot_batch")
    assert "Symmetric InfoNCE loss" in summary
    assert len(gallery) == 6 and len(hard["data"]) == 5
    with pytest.raises(AppError, match="minimum value 2|between 2 and 64"):  # the slider checks bounds itself
        client.predict(1, 0, "clip-tiny-shapes", api_name="/clip_zero_shot_batch")


def test_locate_endpoint(client):
    figure, note = client.predict(handle_file(str(sample_paths()[0])), "circle", TEMPLATE, "clip-tiny-shapes",
                                  api_name="/clip_zero_shot_locate")
    assert "[CLS] cosine" in note


def test_hub_model_offline_gives_a_clear_error(client):
    with pytest.raises(AppError, match="clip-tiny-shapes"):
        client.predict(6, 0, "openai/clip-vit-base-patch32", api_name="/clip_zero_shot_batch")
