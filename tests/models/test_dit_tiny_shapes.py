"""dit-tiny-shapes meets its quality bar and loads like any diffusers DiT."""

from __future__ import annotations

import json

import pytest

from shared.data.shapes import SHAPES
from shared.models import evaluate, local_path

NAME = "dit-tiny-shapes"


@pytest.fixture(scope="module")
def folder():
    path = local_path(NAME)
    assert (path / "diffusion_pytorch_model.safetensors").is_file(), f"no weights; run python -m shared.training {NAME}"
    return path


@pytest.mark.slow
def test_class_accuracy_bar(folder):
    """200 samples (classes in turn), 25 steps of the page's default sampler, guidance 3, fixed seeds,
    judged by vit-tiny-shapes."""
    metrics = evaluate(NAME)
    # Issue 13's bar, 0.90, which the card's 1000 samples meet (0.92 after phase 2; 0.893 before it, under the
    # same judge). These 200 are the first 200 of those (same seed) and measured 0.92 too: 4 samples above the bar.
    assert metrics["class_accuracy"] >= 0.90, metrics
    assert metrics["judge_accuracy_on_real"] >= 0.95, metrics  # the ceiling: the judge reads real shapes
    assert metrics["class_accuracy"] > metrics["class_accuracy_guidance0"], metrics


def test_judge_ceiling_matches_a_pipeline_on_independently_drawn_shapes():
    """``judge_on_real_shapes``, recomputed another way: the test split's classic specs put on the DiT's
    backgrounds and rendered one by one, classified by a transformers pipeline from the judge's folder."""
    from dataclasses import replace

    from transformers import pipeline

    from shared.data.shapes import ShapesDataset, render
    from shared.evaluation import judge_on_real_shapes
    from shared.models import resolve
    from shared.training.dit_tiny_shapes import Config

    n, cfg = 60, Config()
    specs = [replace(ShapesDataset("test", n, cfg.image_size, distribution="classic").spec(i),
                     background=cfg.backgrounds[i % len(cfg.backgrounds)]) for i in range(n)]
    classify = pipeline("image-classification", model=resolve("vit-tiny-shapes"))
    top = [r[0]["label"] for r in classify([render(s, cfg.image_size) for s in specs], top_k=1)]
    expected = sum(label == s.shape for label, s in zip(top, specs, strict=True)) / n
    assert judge_on_real_shapes(n) == pytest.approx(expected, abs=1e-4)
    assert expected > 0.9  # the judge reads real shapes of this kind: a low sample score is the DiT's


def test_loads_with_diffusers(folder):
    from diffusers import DDPMScheduler, DiTTransformer2DModel

    model = DiTTransformer2DModel.from_pretrained(folder, use_safetensors=True)
    assert model.config.num_embeds_ada_norm == len(SHAPES)  # the null class is id len(SHAPES)
    assert model.transformer_blocks[0].norm1.emb.class_embedder.embedding_table.num_embeddings == len(SHAPES) + 1
    scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
    assert scheduler.config.num_train_timesteps == 1000


def test_model_card(folder):
    card = (folder / "README.md").read_text()
    assert "python -m shared.training dit-tiny-shapes" in card
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"class_accuracy", "class_accuracy_guidance0"} <= set(metrics)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 20_000_000, f"embedded weights should stay small, got {size} bytes"


def test_representation_alignment_matches_a_by_hand_cosine_and_trains_only_what_it_should():
    """REPA's loss, recomputed by hand: DiT tokens after block 1, averaged over the token groups that one
    CLIP teacher patch covers, projected, against CLIP's patch tokens of the clean image (resized to the
    teacher's input size when that differs)."""
    import torch

    from shared.training.dit_tiny_shapes import Config, RepresentationAlignment, build_model

    torch.manual_seed(0)
    model = build_model(Config(num_layers=2))
    for p in model.parameters():  # leave adaLN-Zero's identity start, so gradients reach every block
        torch.nn.init.normal_(p, std=0.05)
    align = RepresentationAlignment(model, "clip-tiny-shapes", block=1)
    x0 = torch.rand(3, 3, 32, 32) * 2 - 1  # (B, 3, 32, 32)
    x_t = 0.6 * x0 + 0.8 * torch.randn_like(x0)
    model(x_t, timestep=torch.tensor([100, 500, 900]), class_labels=torch.tensor([0, 3, 5]))
    loss = align.loss(x0)

    with torch.no_grad():
        hidden = model.pos_embed(x_t)  # (3, 64, 128) patch tokens + positions: an 8x8 grid
        emb_t = torch.tensor([100, 500, 900])
        hidden = model.transformer_blocks[0](hidden, timestep=emb_t, class_labels=torch.tensor([0, 3, 5]))
        size = align.teacher.config.image_size
        tg = size // align.teacher.config.patch_size  # the teacher's grid
        k = 8 // tg  # DiT tokens per teacher patch, a side
        pooled = hidden.reshape(3, tg, k, tg, k, 128).mean(dim=(2, 4)).reshape(3, tg * tg, 128)  # (3, tg², 128)
        seen = torch.nn.functional.interpolate(x0, size=(size, size), mode="bilinear") if size != 32 else x0
        teacher = align.teacher(pixel_values=seen).last_hidden_state[:, 1:]  # (3, tg², 96)
        cos = (torch.nn.functional.normalize(align.projector(pooled), dim=-1)
               * torch.nn.functional.normalize(teacher, dim=-1)).sum(-1)
    assert -1 <= loss.item() <= 1
    assert loss.item() == pytest.approx(-cos.mean().item(), abs=1e-5)

    loss.backward()
    assert model.transformer_blocks[0].attn1.to_q.weight.grad.abs().sum() > 0  # the aligned block learns
    assert model.transformer_blocks[1].attn1.to_q.weight.grad is None  # blocks after it do not see this loss
    assert all(p.grad is None for p in align.teacher.parameters())  # the teacher stays frozen
    assert align.projector[0].weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_recipe_runs_end_to_end_for_a_few_steps(tmp_path):
    from diffusers import DiTTransformer2DModel

    from shared.training.dit_tiny_shapes import Config, train

    cfg = Config(train_images=256, steps=3, finetune_steps=2, batch_size=16, num_layers=2, final_eval_samples=20)
    metrics = train(str(tmp_path), cfg=cfg)
    assert 0.0 <= metrics["class_accuracy"] <= 1.0 and metrics["train_steps"] == 5  # both phases
    model = DiTTransformer2DModel.from_pretrained(tmp_path, use_safetensors=True)  # REPA's projector is not saved
    assert not any("projector" in name or "teacher" in name for name, _ in model.named_parameters())
    card = (tmp_path / "README.md").read_text()
    assert "python -m shared.training dit-tiny-shapes" in card and "Phase 2: 2 steps" in card


@pytest.mark.slow
def test_phase2_runs_alone_from_saved_weights_and_says_so(tmp_path):
    """``--from DIR``: phase 2 only, from DIR's weights, which it changes (without REPA, whose projector the
    saved weights lack); the card and metrics name the source, and its eval history is carried over."""
    import torch
    from diffusers import DiTTransformer2DModel

    from shared.training.__main__ import main
    from shared.training.dit_tiny_shapes import Config, build_model

    source = tmp_path / "phase1"
    build_model(Config(num_layers=2)).save_pretrained(source, safe_serialization=True)
    (source / "eval_history.json").write_text(json.dumps([{"step": 4000, "class_accuracy": 0.5}]))
    out = tmp_path / "phase2"
    main(["dit-tiny-shapes", "--from", str(source), "--out", str(out), "--steps", "2",
          "--set", "num_layers=2", "--set", "train_images=256", "--set", "batch_size=16",
          "--set", "final_eval_samples=20"])

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_steps"] == 24_000 + 2 and metrics["phase1_from"].startswith(str(source))
    assert metrics["phase2_steps"] == 2 and "phase2_wall_seconds" in metrics
    assert "train_wall_seconds" not in metrics  # that would claim the whole recipe's time
    assert "ran alone (`--from`)" in (out / "README.md").read_text()
    before = DiTTransformer2DModel.from_pretrained(source, use_safetensors=True).state_dict()
    after = DiTTransformer2DModel.from_pretrained(out, use_safetensors=True).state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before), "phase 2 left the weights as they were"
    history = json.loads((out / "eval_history.json").read_text()) if (out / "eval_history.json").exists() else None
    assert history is not None and history[0]["step"] == 4000  # the source's history, carried over


def test_from_refuses_weights_of_another_shape(tmp_path):
    from shared.training.dit_tiny_shapes import Config, build_model, finetune_from

    build_model(Config(num_layers=2)).save_pretrained(tmp_path, safe_serialization=True)
    with pytest.raises(ValueError, match=r"num_layers.*\(2, 6\)"):
        finetune_from(str(tmp_path), str(tmp_path / "out"), steps=1)


def test_from_refuses_a_recipe_without_phase2_and_a_missing_folder(tmp_path, capsys):
    from shared.training.__main__ import main

    with pytest.raises(SystemExit):
        main(["cnn-tiny-shapes", "--from", str(tmp_path)])
    assert "no phase 2 to run alone" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["dit-tiny-shapes", "--from", str(tmp_path / "missing")])
    assert "no such folder" in capsys.readouterr().err
