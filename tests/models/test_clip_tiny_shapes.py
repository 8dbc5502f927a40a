"""clip-tiny-shapes meets its quality bars and loads like any Hub CLIP."""

from __future__ import annotations

import json

import pytest

from shared.data.shapes import COLORS, POSITIONS, SHAPES, SIZES
from shared.models import evaluate, local_path

NAME = "clip-tiny-shapes"


@pytest.fixture(scope="module")
def folder():
    path = local_path(NAME)
    assert (path / "model.safetensors").is_file(), f"no weights; run python -m shared.training {NAME}"
    return path


@pytest.mark.slow
def test_quality_bars(folder):
    metrics = evaluate(NAME)  # the same 1000 test images as `python -m shared.models eval`
    # Issue 13 asks for 0.95 and 0.95 on the wide distribution; the shipped weights measure 0.915 and 0.871
    # (the same recipe without Outlier Exposure: 0.932 and 0.906, but it flags 12% of photos; the classic-data
    # CLIP: 0.372 and 0.06), so these are regression floors and the issue stays open.
    assert metrics["zero_shot_shape_accuracy"] >= 0.9, metrics
    assert metrics["zero_shot_color_shape_accuracy"] >= 0.85, metrics
    assert metrics["retrieval_r1"] >= 0.5, metrics
    assert metrics["colors"] == len(COLORS)  # every colour of the data, new ones included
    # The shifted split (colour x background pairs never trained on) is reported, and far above chance (0.2).
    assert metrics["n_shifted"] >= 500 and metrics["shifted_zero_shot_shape_accuracy"] >= 0.85, metrics
    # The flag's false alarms are calibrated (2% on validation). With Outlier Exposure it catches noise and most
    # photos (1.0 and 0.73; the distance it flagged on before: 0.18 and 0.32).
    ood = metrics["ood"]
    assert ood["false_alarm_test"] <= 0.05 and ood["msp_threshold"] > 1 / len(SHAPES), metrics
    assert ood["detected_photos"] >= 0.6 and ood["detected_noise"] >= 0.8, metrics


def test_the_flags_shape_prompts_stay_as_distinct_as_any_template(folder):
    """Outlier Exposure flattens the outliers' softmax over the prompts ``OOD_PROMPT.format(shape)``. A first
    run let the text tower do that by collapsing those five prompts onto one another (mean cosine 0.997), which
    flattens every image's softmax; the prompts stay as far apart as those of a template OE never sees."""
    import torch
    from transformers import AutoProcessor, CLIPModel

    from shared.ood import OOD_PROMPT

    model = CLIPModel.from_pretrained(folder, use_safetensors=True).eval()
    processor = AutoProcessor.from_pretrained(folder)

    def mean_off_diagonal_cosine(template: str) -> float:
        tokens = processor(text=[template.format(s) for s in SHAPES], return_tensors="pt", padding=True)
        with torch.no_grad():
            t = torch.nn.functional.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)  # (5, P)
        return float((t @ t.T)[~torch.eye(len(SHAPES), dtype=torch.bool)].mean())

    flagged_with, other = mean_off_diagonal_cosine(OOD_PROMPT), mean_off_diagonal_cosine("a drawing of a {}")
    assert flagged_with < 0.9 and abs(flagged_with - other) < 0.15, (flagged_with, other)


def test_loads_with_auto_classes(folder):
    from transformers import AutoProcessor, AutoTokenizer, CLIPModel, CLIPProcessor, CLIPTokenizer

    processor = AutoProcessor.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert isinstance(processor, CLIPProcessor)
    assert isinstance(tokenizer, CLIPTokenizer)
    model = CLIPModel.from_pretrained(folder, use_safetensors=True)
    text = model.config.text_config
    assert (text.bos_token_id, text.eos_token_id, text.pad_token_id) == (
        tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert processor.image_processor.crop_size["height"] == model.config.vision_config.image_size


def test_tokenizer_gives_real_ids(folder):
    """Every caption word is one real token (not end-of-text), framed by start and end tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    words = ["a", "photo", "of", "the", "in", *SHAPES, *COLORS, *SIZES, *" ".join(POSITIONS).split()]
    for word in words:
        ids = tokenizer(word)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.convert_ids_to_tokens(ids[1:-1]) == [f"{word}</w>"], word
    caption = tokenizer("a small red star in the top left")["input_ids"]
    assert len(set(caption[1:-1])) == 8 and tokenizer.eos_token_id not in caption[1:-1]
    # unseen words fall back to byte pieces, never to end-of-text
    unseen = tokenizer("zebra")["input_ids"][1:-1]
    assert unseen and tokenizer.eos_token_id not in unseen and tokenizer.decode(unseen) == "zebra"


def test_model_card(folder):
    card = (folder / "README.md").read_text()
    assert "python -m shared.training clip-tiny-shapes" in card
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"zero_shot_shape_accuracy", "zero_shot_color_shape_accuracy", "retrieval_r1",
            "shifted_zero_shot_shape_accuracy", "train_wall_seconds", "ood"} <= set(metrics)
    assert (folder / "ood.safetensors").is_file()
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 10_000_000, f"embedded weights should stay small, got {size} bytes"
