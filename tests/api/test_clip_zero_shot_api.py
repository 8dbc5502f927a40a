"""The CLIP space's public endpoints through gradio_client, including every bad input the issue names,
the files each event offers for download, and two clients at once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.data.shapes import SHAPES, render, spec_at
from shared.images import sample_paths
from tests.serving import call_concurrently

CLASSIFY = "/clip_zero_shot_classify"
LABELS = ", ".join(SHAPES)
TEMPLATE = "a photo of a {}"


def _top(result) -> str:
    """The top label of a gr.Label value (the client returns {'label': ..., 'confidences': [...]})."""
    return result["label"]


def _probabilities(result) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in result["confidences"]}


def _classify_with_files(client, path, labels=LABELS, template=TEMPLATE):
    """(gr.Label value, paths of the downloadable files)."""
    return client.predict(handle_file(str(path)), labels, template, api_name=CLASSIFY)


def _classify(client, path, labels=LABELS, template=TEMPLATE):
    return _classify_with_files(client, path, labels, template)[0]


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
    figure, summary, hard, gallery, files = client.predict(6, 0, "clip-tiny-shapes", api_name="/clip_zero_shot_batch")
    assert "Symmetric InfoNCE loss" in summary
    assert len(gallery) == 6 and len(hard["data"]) == 5


@pytest.mark.parametrize("n, start, model, message", [
    (1, 0, "clip-tiny-shapes", r"batch size must be an integer from 2 to 64, got 1"),
    (2.5, 0, "clip-tiny-shapes", r"batch size must be an integer from 2 to 64, got 2.5"),
    (4, "abc", "clip-tiny-shapes", r"start index must be an integer from 0 to 1000000, got 'abc'"),
    (4, 0, "vit-tiny-shapes", r"unknown model 'vit-tiny-shapes'"),
])
def test_batch_refuses_bad_values_in_plain_words(client, n, start, model, message):
    with pytest.raises(AppError, match=message):
        client.predict(n, start, model, api_name="/clip_zero_shot_batch")


def test_locate_endpoint(client):
    figure, note, files = client.predict(handle_file(str(sample_paths()[0])), "circle", TEMPLATE, "clip-tiny-shapes",
                                         api_name="/clip_zero_shot_locate")
    assert "[CLS] cosine" in note
    assert [Path(f).suffix for f in files] == [".png"] and Image.open(files[0]).format == "PNG"


def test_batch_downloads_read_back_to_what_is_shown(client):
    """The heatmap as a PNG and the hard-negatives table as a CSV with the rows the page shows."""
    figure, summary, hard, gallery, files = client.predict(8, 3, "clip-tiny-shapes", api_name="/clip_zero_shot_batch")
    by_suffix = {Path(f).suffix: f for f in files}
    assert sorted(by_suffix) == [".csv", ".png"] and len(files) == 2
    assert Image.open(by_suffix[".png"]).format == "PNG"
    table = pd.read_csv(by_suffix[".csv"])
    assert list(table.columns) == hard["headers"]
    assert table.values.tolist() == hard["data"]


def test_classify_download_is_the_probabilities_shown(client):
    path = next(p for p in sample_paths() if p.stem.endswith("circle"))
    shown, files = _classify_with_files(client, path)
    assert [Path(f).suffix for f in files] == [".json"]
    assert json.loads(Path(files[0]).read_text()) == pytest.approx(_probabilities(shown), abs=1e-6)


def test_two_clients_at_once_each_get_their_own_answer(client, space_client):
    """The hub's client and one on the space's own URL, released together, each with its own image."""
    paths = [p for p in sample_paths() if p.stem.split("_")[-1] in ("star", "square")]
    clients = [client, space_client("clip_zero_shot")]
    results = call_concurrently([lambda c=c, p=p: _classify(c, p) for c, p in zip(clients, paths, strict=True)])
    assert [_top(r) for r in results] == [p.stem.split("_")[-1] for p in paths]


def test_hub_model_offline_gives_a_clear_error(client):
    with pytest.raises(AppError, match="clip-tiny-shapes"):
        client.predict(6, 0, "openai/clip-vit-base-patch32", api_name="/clip_zero_shot_batch")


# --------------------------------------------------------------------------------------
#                 Issue 23: embedding map, maths, temperature, search, architecture
# --------------------------------------------------------------------------------------

MODEL = "clip-tiny-shapes"


def test_new_views_through_the_api(client):
    """Each new endpoint answers with the page's defaults and offers its downloads."""
    plot, stats, summary, files = client.predict(6, 0, handle_file(str(sample_paths()[0])), MODEL,
                                                 api_name="/clip_zero_shot_map")
    assert len(stats["coords"]) == 13 and "Explained variance" in summary
    assert sorted(Path(f).suffix for f in files) == [".json", ".png"]
    steps, table, files = client.predict(handle_file(str(sample_paths()[0])), LABELS, TEMPLATE, MODEL,
                                         api_name="/clip_zero_shot_maths")
    assert "Raw dot product" in steps and len(table["data"]) == len(SHAPES)
    plot, summary, table, files = client.predict(6, 0, 0.07, MODEL, api_name="/clip_zero_shot_temperature")
    assert "Loss at τ = 0.07" in summary and [Path(f).suffix for f in files] == [".png", ".csv"]
    hits, table, note, files = client.predict("a large red star", 4, MODEL, api_name="/clip_zero_shot_search")
    assert len(hits) == 4 and len(table["data"]) == 4
    params, macs, stats, note, files = client.predict(MODEL, api_name="/clip_zero_shot_architecture")
    metrics = json.loads((Path(__file__).resolve().parents[2] / "shared/weights" / MODEL / "metrics.json").read_text())
    assert stats["total_parameters"] == metrics["parameters"] and stats["macs_per_image"] > 0


@pytest.mark.parametrize("endpoint, args, message", [
    ("map", (0, 0), r"batch size must be an integer from 2 to 64, got 0"),
    ("map", (-4, 0), r"batch size must be an integer from 2 to 64, got -4"),
    ("map", ("nan", 0), r"batch size must be an integer from 2 to 64, got 'nan'"),
    ("map", (3.5, 0), r"batch size must be an integer from 2 to 64, got 3.5"),
    ("map", (65, 0), r"batch size must be an integer from 2 to 64, got 65"),
    ("map", (4, 1_000_001), r"start index must be an integer from 0 to 1000000, got 1000001"),
    ("temperature", (4, 0, 0), r"temperature τ must be a finite number from 0.001 to 2, got 0"),
    ("temperature", (4, 0, -0.1), r"temperature τ must be a finite number from 0.001 to 2, got -0.1"),
    ("temperature", (4, 0, "nan"), r"temperature τ must be a finite number from 0.001 to 2, got nan"),
    ("temperature", (4, 0, 2.5), r"temperature τ must be a finite number from 0.001 to 2, got 2.5"),
    ("temperature", (2.5, 0, 0.07), r"batch size must be an integer from 2 to 64, got 2.5"),
    ("search", ("a star", 0), r"top k must be an integer from 1 to 12, got 0"),
    ("search", ("a star", -1), r"top k must be an integer from 1 to 12, got -1"),
    ("search", ("a star", "nan"), r"top k must be an integer from 1 to 12, got 'nan'"),
    ("search", ("a star", 1.5), r"top k must be an integer from 1 to 12, got 1.5"),
    ("search", ("a star", 13), r"top k must be an integer from 1 to 12, got 13"),
    ("search", ("  ", 3), r"no query given"),
    ("architecture", (), r"unknown model 'vit-tiny-shapes'"),
])
def test_new_views_refuse_bad_values_in_plain_words(client, endpoint, args, message):
    if endpoint == "map":
        args = (*args, None, MODEL)
    elif endpoint == "architecture":
        args = ("vit-tiny-shapes",)
    else:
        args = (*args, MODEL)
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=f"/clip_zero_shot_{endpoint}")


def test_the_server_keeps_serving_after_the_bad_values(client):
    hits, *_ = client.predict("a star", 1, MODEL, api_name="/clip_zero_shot_search")
    assert len(hits) == 1
