"""vlm-tiny-shapes (issue 18): the shipped folder, its quality bars, its parts, and a smoke training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from shared.data import matplotlib_shapes
from shared.data.shapes import COLORS, SHAPES, render, spec_at
from shared.models import available_offline, evaluate, load, local_path, resolve
from shared.training import vlm_tiny_shapes as recipe

NAME = "vlm-tiny-shapes"
needs_weights = pytest.mark.skipif(not available_offline(NAME), reason=f"not trained: python -m shared.training {NAME}")


@needs_weights
def test_shipped_model_meets_the_bars():
    """Issue 18: shape >= 0.95, colour >= 0.95, position >= 0.8 on held-out images; aim >= 0.8 on shapes drawn
    by matplotlib (an independent renderer)."""
    m = json.loads((local_path(NAME) / "metrics.json").read_text())
    acc = {kind: m[f"{kind}_accuracy"] for kind in recipe.QUESTION_KINDS}
    assert m["n"] >= 2000  # at 500 the standard error (0.01) spans the 0.95 bar
    assert acc["shape"] >= 0.95 and acc["colour"] >= 0.95 and acc["position"] >= 0.8, acc
    independent = m["independent_renderer_accuracy"]
    assert min(independent[k] for k in ("shape", "colour", "position")) >= 0.8, independent


@needs_weights
@pytest.mark.slow
def test_eval_reproduces_the_shipped_metrics():
    shipped = json.loads((local_path(NAME) / "metrics.json").read_text())
    got = evaluate(NAME, n=150, n_independent=60)
    for kind in recipe.QUESTION_KINDS:
        key = f"{kind}_accuracy"
        assert abs(got[key] - shipped[key]) <= 0.06, (key, got[key], shipped[key])


def test_tower_starts_as_clip_tiny_shapes():
    """build_model copies clip-tiny-shapes' vision weights into LLaVA's tower, key for key."""
    from transformers import CLIPModel

    clip_path = resolve(recipe.VISION_TOWER)
    model = recipe.build_model(recipe.Config(), clip_path, recipe.build_tokenizer())
    clip = CLIPModel.from_pretrained(clip_path, use_safetensors=True)
    tower = model.model.vision_tower.state_dict()
    assert set(tower) == set(clip.vision_model.state_dict())
    for key, value in clip.vision_model.state_dict().items():
        torch.testing.assert_close(tower[key], value, rtol=0, atol=0)


@needs_weights
def test_shipped_parts_are_llava():
    """LLaVA's classes; the processor expands <image> into one token per patch (CLS dropped)."""
    from transformers import LlavaForConditionalGeneration

    model, processor = load(NAME, device="cpu")
    assert isinstance(model, LlavaForConditionalGeneration)
    v = model.config.vision_config
    n = (v.image_size // v.patch_size) ** 2
    ids = processor(images=[render(spec_at("test", 0), 64)], text=[recipe.PROMPT.format(question="Where is it?")],
                    return_tensors="pt")["input_ids"][0]
    assert int((ids == model.config.image_token_id).sum()) == n == model.config.image_seq_length
    card = (local_path(NAME) / "README.md").read_text()
    assert f"python -m shared.training {NAME}" in card
    size = sum(f.stat().st_size for f in local_path(NAME).rglob("*") if f.is_file())
    assert size < 10e6


def test_questions_and_answers_are_right_about_the_image():
    """Answers come from the spec the image is rendered from; the yes/no kind names what is there, then answers,
    balanced between yes and no; a "no" question names another colour or shape."""
    rng = np.random.default_rng(0)
    yes = 0
    for i in range(200):
        spec = spec_at("train", i)
        assert recipe.question_for("shape", spec, rng)[1] == spec.shape
        assert recipe.question_for("colour", spec, rng)[1] == spec.color
        assert recipe.question_for("position", spec, rng)[1] == spec.position
        q, a = recipe.question_for("exists", spec, rng, phrasing=0)
        words = q.lower().rstrip("?").split()
        colour, shape = words[3], words[4]
        assert colour in COLORS and shape in SHAPES
        verdict = "yes" if (colour, shape) == (spec.color, spec.shape) else "no"
        assert a == f"a {spec.color} {spec.shape} , so {verdict}"
        yes += verdict == "yes"
    assert 70 <= yes <= 130


def test_tokenizer_covers_every_question_and_answer():
    tok = recipe.build_tokenizer()
    unk = tok.unk_token_id
    rng = np.random.default_rng(1)
    for i in range(100):
        spec = spec_at("train", i)
        for kind in recipe.QUESTION_KINDS:
            for phrasing in range(len(recipe.QUESTIONS[kind])):
                q, a = recipe.question_for(kind, spec, rng, phrasing)
                ids = tok(recipe.PROMPT.format(question=q) + f" {a}</s>", add_special_tokens=False)["input_ids"]
                assert unk not in ids, (q, a)
    assert tok.decode(tok("top left</s>", add_special_tokens=False)["input_ids"], skip_special_tokens=True) == "top left"


def test_labels_cover_only_the_answer():
    processor = recipe.build_processor(resolve(recipe.VISION_TOWER))
    images = [render(spec_at("train", i), 64) for i in range(3)]
    prompts = [recipe.PROMPT.format(question=q) for q in ("Where is the shape?", "What shape is this?", "Is there a red star?")]
    batch = recipe.training_inputs(processor, images, prompts, ["top left", "star", "no"])
    tok = processor.tokenizer
    for row, answer in enumerate(["top left", "star", "no"]):
        kept = batch["labels"][row][batch["labels"][row] != -100]
        assert tok.convert_ids_to_tokens(kept.tolist()) == answer.split() + ["</s>"]


def test_independent_drawings_name_their_colour_and_position():
    """matplotlib's y axis points up: a drawing's position word must match where its pixels are."""
    for i in range(30):
        d = matplotlib_shapes.drawing(i, size=96)
        a = np.asarray(d.image).astype(int)
        bg = a[0, 0] if d.position != "top left" else a[-1, -1]
        ys, xs = np.nonzero(np.abs(a - bg).sum(-1) > 60)
        if len(ys) == 0:
            continue
        cy, cx = ys.mean() / 96, xs.mean() / 96
        assert abs(cy - d.cy) < 0.12 and abs(cx - d.cx) < 0.12, (i, d.position, cy, cx)


def test_smoke_training_writes_a_loadable_folder(tmp_path):
    out = tmp_path / NAME
    cfg = recipe.Config(batch_size=8, eval_images=10, eval_independent=10)
    metrics = recipe.train(str(out), steps=3, cfg=cfg)
    assert metrics["train_steps"] == 3 and all(f"{k}_accuracy" in metrics for k in recipe.QUESTION_KINDS)
    assert metrics["train_images"] == 24
    for f in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "README.md", "metrics.json"):
        assert (out / f).is_file(), f


def test_phase_two_alone_on_saved_weights_matches_the_two_phase_run(tmp_path):
    """The recipe's two phases in one run, and phase 2 run alone on phase 1's saved folder (how the shipped model was
    finished), give the same weights: phase 2 draws its data from its own generator, after phase 1's images."""
    from safetensors.torch import load_file

    cfg = dict(batch_size=8, steps=2, eval_images=4, eval_independent=4)
    both = recipe.train(str(tmp_path / "both"), cfg=recipe.Config(**cfg, finetune_steps=2))
    recipe.train(str(tmp_path / "phase1"), cfg=recipe.Config(**cfg, finetune_steps=0))
    alone = recipe.train(str(tmp_path / "alone"), cfg=recipe.Config(**cfg, finetune_steps=2),
                         from_dir=str(tmp_path / "phase1"))
    assert both["train_steps"] == alone["train_steps"] == 4
    assert len(both["phase_wall_seconds"]) == len(alone["phase_wall_seconds"]) == 2
    phase1 = json.loads((tmp_path / "phase1" / "metrics.json").read_text())
    assert alone["phase_wall_seconds"][0] == phase1["train_wall_seconds"]
    assert alone["phase_final_train_loss"][0] == phase1["final_train_loss"]
    a, b = load_file(tmp_path / "both" / "model.safetensors"), load_file(tmp_path / "alone" / "model.safetensors")
    p1 = load_file(tmp_path / "phase1" / "model.safetensors")
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    assert any(not torch.equal(a[k], p1[k]) for k in a if "vision_tower" in k), "phase 2 trains the tower too"


def test_phase_two_alone_needs_phase_two_steps(tmp_path):
    with pytest.raises(ValueError, match="finetune_steps is 0"):
        recipe.train(str(tmp_path), cfg=recipe.Config(finetune_steps=0), from_dir=str(tmp_path))


def test_phase_two_config_takes_the_finetune_values():
    cfg = recipe.Config()
    p2 = recipe.phase2_config(cfg)
    assert (p2.steps, p2.lr, p2.warmup) == (cfg.finetune_steps, cfg.finetune_lr, cfg.finetune_warmup)
    assert (p2.vision_lr_scale, p2.kind_weights) == (cfg.finetune_vision_lr_scale, cfg.finetune_kind_weights)
    assert len(cfg.finetune_kind_weights) == len(recipe.QUESTION_KINDS)
