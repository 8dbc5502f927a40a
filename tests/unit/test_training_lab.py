"""Training lab: every compute function against an independent computation (torch's own cross-entropy,
hand-written drop path on a real ViT layer, LoRA counts summed from the issue's ViT-B/16 sizes, the cost
formula by hand), the run registry's rules, determinism of a real training run, and the page's facts
against the shipped files."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shared.models import available_offline, local_path
from spaces.training_lab import compute, options, runs

needs_model = pytest.mark.skipif(not available_offline(options.BASE_MODEL), reason="vit-tiny-shapes not trained")


def _base_config() -> dict:
    return json.loads((local_path(options.BASE_MODEL) / "config.json").read_text())


# ------------------------------------------------------------------ schedule and loss

def test_warmup_then_cosine():
    peak, total, warm = 0.1, 110, 10
    lrs = [compute.lr_at(s, total, peak, warm) for s in range(total)]
    assert lrs[:warm] == pytest.approx([peak * (s + 1) / warm for s in range(warm)])  # linear ramp
    assert lrs[warm] == pytest.approx(peak)  # the top of the cosine
    assert lrs[warm + 50] == pytest.approx(peak / 2)  # half-way down the half cosine: cos(pi/2) = 0
    assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1:], strict=False))
    assert compute.lr_at(total, total, peak, warm) == pytest.approx(0.0, abs=1e-12)


def test_soft_cross_entropy_matches_torch_label_smoothing():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=g)
    labels = torch.randint(0, 5, (16,), generator=g)
    for eps in (0.0, 0.1, 0.3):
        t = compute.soft_targets(labels, 5, eps)
        assert torch.allclose(t.sum(-1), torch.ones(16))
        ours = compute.soft_cross_entropy(logits, t)
        assert float(ours) == pytest.approx(float(F.cross_entropy(logits, labels, label_smoothing=eps)), rel=1e-5)


# ------------------------------------------------------------------ mixing and augmentation

def _batch(n=6, k=5):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 16, 16, generator=g) * 2 - 1
    y = torch.arange(n) % k
    return x, y, compute.soft_targets(y, k, 0.0)


def test_mixup_is_the_convex_combination():
    x, y, t = _batch()
    m = compute.mixup(x, t, 0.8, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert 0 < m.lam < 1
    for i in range(len(x)):
        j = int(m.partner[i])
        assert torch.allclose(m.images[i], m.lam * x[i] + (1 - m.lam) * x[j])
        expected = torch.zeros(5)
        expected[y[i]] += m.lam
        expected[y[j]] += 1 - m.lam
        assert torch.allclose(m.targets[i], expected)


def test_cutmix_pastes_a_box_and_mixes_labels_by_its_area():
    x, y, t = _batch()
    for seed in range(5):
        m = compute.cutmix(x, t, 1.0, np.random.default_rng(seed), torch.Generator().manual_seed(seed))
        y0, y1, x0, x1 = m.box
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        area = int(inside.sum())
        assert m.lam == pytest.approx(1 - area / 256)
        for i in range(len(x)):
            j = int(m.partner[i])
            assert torch.equal(m.images[i][:, inside], x[j][:, inside])
            assert torch.equal(m.images[i][:, ~inside], x[i][:, ~inside])
            assert float(m.targets[i].sum()) == pytest.approx(1.0)
            assert float(m.targets[i][y[j]]) >= (1 - m.lam) - 1e-6


def test_mix_batch_off_and_deit_switch():
    x, y, t = _batch()
    none = compute.mix_batch(x, t, 0.0, 0.0, np.random.default_rng(0), torch.Generator())
    assert none.kind == "none" and torch.equal(none.images, x) and torch.equal(none.targets, t)
    kinds = {compute.mix_batch(x, t, 0.8, 1.0, np.random.default_rng(s), torch.Generator().manual_seed(s)).kind
             for s in range(20)}
    assert kinds == {"mixup", "cutmix"}


def test_randaugment_ops():
    x, _, _ = _batch()
    img = x[0]
    assert torch.equal(compute.apply_op(img, "flip", 5, 1.0), torch.flip(img, dims=[-1]))
    assert torch.equal(compute.apply_op(img, "invert", 5, 1.0), -img)
    assert torch.equal(compute.apply_op(img, "identity", 9, 1.0), img)
    assert torch.equal(compute.apply_op(img, "rotate90", 5, 1.0), torch.rot90(img, 1, dims=(1, 2)))
    assert torch.equal(compute.apply_op(img, "brightness", 0, 1.0), img)  # magnitude 0 changes nothing
    with pytest.raises(ValueError, match="unknown augmentation"):
        compute.apply_op(img, "shear", 5, 1.0)
    same, used = compute.randaugment(x, 0, 9, torch.Generator())
    assert torch.equal(same, x) and used == [[]] * len(x)
    a, ua = compute.randaugment(x, 2, 9, torch.Generator().manual_seed(3))
    b, ub = compute.randaugment(x, 2, 9, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and ua == ub and all(len(u) == 2 for u in ua)
    assert a.min() >= -1 and a.max() <= 1


# ------------------------------------------------------------------ drop path

def test_drop_path_drops_whole_samples_and_keeps_the_expectation():
    x = torch.ones(4000, 3, 2)
    out = compute.drop_path(x, 0.25, torch.Generator().manual_seed(0))
    per_sample = out.reshape(4000, -1)
    dropped = (per_sample == 0).all(-1)
    kept = torch.isclose(per_sample, torch.full_like(per_sample, 1 / 0.75)).all(-1)
    assert bool((dropped | kept).all())
    assert float(dropped.float().mean()) == pytest.approx(0.25, abs=0.03)
    assert float(out.mean()) == pytest.approx(1.0, abs=0.05)
    assert compute.drop_path(x, 0.0, torch.Generator()) is x


def test_drop_path_hooks_on_a_real_vit_layer_match_a_hand_written_layer():
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                                intermediate_size=32, image_size=16, patch_size=8, num_labels=3))
    layer = model.vit.layers[-1]  # the last layer gets the full rate
    h = torch.randn(6, 5, 16)
    rate = 0.5
    hooks = compute.DropPath(model, rate, torch.Generator().manual_seed(7))
    assert hooks.rates == [0.0, rate] and len(hooks.handles) == 4
    model.train()
    got = layer(h)
    # by hand: the same draws (attention branch first, then MLP), each branch scaled per sample
    g = torch.Generator().manual_seed(7)
    m_attn = (torch.rand((6, 1, 1), generator=g) < 1 - rate).float() / (1 - rate)
    m_mlp = (torch.rand((6, 1, 1), generator=g) < 1 - rate).float() / (1 - rate)
    with torch.no_grad():
        hooks.remove()
        h1 = h + m_attn * layer.attention(layer.layernorm_before(h))[0]
        want = h1 + m_mlp * layer.mlp(layer.layernorm_after(h1))
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(m_attn, torch.ones_like(m_attn))  # some samples really were dropped
    # evaluation mode: the hooks change nothing
    hooks = compute.DropPath(model, rate, torch.Generator().manual_seed(7))
    model.eval()
    with torch.no_grad():
        with_hooks = model(pixel_values=torch.zeros(2, 3, 16, 16)).logits
        hooks.remove()
        without = model(pixel_values=torch.zeros(2, 3, 16, 16)).logits
    assert torch.equal(with_hooks, without)


# ------------------------------------------------------------------ configuration (bad input)

GOOD = dict(start="pretrained", steps=10, lr=1e-3, batch_size=8, label_smoothing=0.1, mixup_alpha=0.2, seed=0)


@pytest.mark.parametrize("key, value, match", [
    ("steps", 0, "steps must be an integer from 1 to 400, got 0"),
    ("steps", -3, "steps must be an integer from 1 to 400, got -3"),
    ("steps", options.MAX_STEPS + 1, "steps must be an integer from 1 to 400"),
    ("batch_size", 0, "batch size must be an integer from 1 to 128"),
    ("batch_size", -1, "batch size"),
    ("batch_size", options.MAX_BATCH + 1, "batch size"),
    ("lr", 0, "learning rate must be a finite number greater than 0 and at most 1"),
    ("lr", -0.1, "learning rate"),
    ("lr", "nan", "learning rate must be a finite number greater than 0 and at most 1, got nan"),
    ("lr", 1.5, "learning rate"),
    ("start", "imagenet", "unknown start"),
    ("label_smoothing", 0.9, "label smoothing"),
    ("mixup_alpha", -1, "mixup alpha"),
])
def test_make_config_refuses_bad_input(key, value, match):
    with pytest.raises(ValueError, match=match):
        compute.make_config(**{**GOOD, key: value})


def test_make_config_accepts_the_caps():
    cfg = compute.make_config(**{**GOOD, "steps": options.MAX_STEPS, "batch_size": options.MAX_BATCH, "lr": 1})
    assert (cfg.steps, cfg.batch_size, cfg.lr) == (options.MAX_STEPS, options.MAX_BATCH, 1.0)


# ------------------------------------------------------------------ training

@needs_model
def test_same_seed_gives_the_same_history_and_another_seed_does_not():
    kw = dict(start="scratch", steps=3, lr=1e-3, batch_size=4, label_smoothing=0.1, mixup_alpha=0.4,
              cutmix_alpha=1.0, randaug_ops=2, drop_path=0.2, train_images=500)
    a = compute.train(compute.make_config(seed=5, **kw))
    b = compute.train(compute.make_config(seed=5, **kw))
    c = compute.train(compute.make_config(seed=6, **kw))
    assert [h["step"] for h in a.history] == [1, 2, 3]
    assert a.history == b.history
    assert a.history != c.history
    assert all("val_accuracy" in h for h in a.history)  # measured after each of 3 steps
    assert a.val_accuracy == a.history[-1]["val_accuracy"]


@needs_model
def test_should_stop_ends_a_run_early():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 2

    r = compute.train(compute.make_config(**{**GOOD, "steps": 50, "batch_size": 2, "train_images": 500}),
                      should_stop=should_stop)
    assert r.stopped and r.steps_done == 2 and len(r.history) == 2
    assert "val_accuracy" in r.history[-1]


@needs_model
def test_strategies_train_exactly_the_parameters_they_claim():
    cfg = _base_config()
    h, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    head = h * 3 + 3  # the new 'size' head
    rows = {r["strategy"]: r for r in compute.compare_strategies(steps=2, batch_size=4)}
    total = rows["full"]["total"]
    assert rows["linear_probe"]["trainable"] == head
    assert rows["full"]["trainable"] == total
    # LoRA r=8 on q_proj and v_proj (h -> h each) of every layer, plus the head (peft keeps a trained copy)
    lora = layers * 2 * options.COMPARE_RANK * (h + h)
    assert rows["lora"]["trainable"] == lora + head
    assert rows["lora"]["total"] == total + lora + head
    assert rows["linear_probe"]["val_accuracy_before"] == rows["full"]["val_accuracy_before"]  # same new head


# ------------------------------------------------------------------ LoRA counter

@pytest.mark.parametrize("rank", [4, 8, 16])
def test_vit_b16_lora_on_query_and_value_is_r_times_din_plus_dout(rank):
    # ViT-B/16 (the sizes): 12 layers, hidden 768; q_proj and v_proj are 768 -> 768 Linears
    expected = sum(rank * (768 + 768) for _layer in range(12) for _proj in ("q_proj", "v_proj"))
    r = compute.lora_params(options.VIT_B16, rank, "q_proj, v_proj")
    assert r["trainable"] == expected
    from transformers import ViTConfig, ViTForImageClassification

    with torch.device("meta"):
        base = ViTForImageClassification(ViTConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                   intermediate_size=3072, image_size=224, patch_size=16,
                                                   num_labels=1000))
    assert r["total"] == sum(p.numel() for p in base.parameters()) + expected
    assert r["percent"] == pytest.approx(100 * expected / r["total"], abs=1e-4)
    assert r["adapted_linears"] == 24


def test_lora_counts_fc1_and_the_tiny_model_from_its_config():
    c = _base_config()
    h, m, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    r = compute.lora_params(options.BASE_MODEL, 4, "fc1,o_proj")
    assert r["trainable"] == layers * (4 * (h + m) + 4 * (h + h))
    b = compute.lora_params(options.VIT_B16, 2, "fc1")
    assert b["trainable"] == 12 * 2 * (768 + 3072)


def test_lora_valid_names_are_read_from_the_model():
    r = compute.lora_params(options.BASE_MODEL, 1, "q_proj")
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2", "classifier"} == set(r["valid_target_modules"])


@pytest.mark.parametrize("rank, targets, match", [
    (0, "q_proj", "rank must be an integer from 1 to 256, got 0"),
    (-2, "q_proj", "rank must be an integer from 1 to 256"),
    (options.MAX_RANK + 1, "q_proj", "rank"),
    (4, "query,value", r"unknown target modules \['query', 'value'\]; valid names for this model: classifier, "
                       r"fc1, fc2, k_proj, o_proj, q_proj, v_proj"),
    (4, " , ", "valid names"),
])
def test_lora_refuses_bad_input(rank, targets, match):
    with pytest.raises(ValueError, match=match):
        compute.lora_params(options.VIT_B16, rank, targets)


# ------------------------------------------------------------------ cost

def test_training_cost_is_six_n_d_over_peak_times_mfu():
    r = compute.training_cost(86e6, 1e6, 197, "NVIDIA H100 SXM (BF16)", 4, 0.5)
    flops = 6 * 86e6 * 1e6 * 197
    assert r["train_flops"] == pytest.approx(flops)
    assert r["seconds"] == pytest.approx(flops / (4 * 989.4e12 * 0.5))
    assert r["gpu_hours"] == pytest.approx(r["seconds"] * 4 / 3600)
    for bad, match in (({"mfu": 0}, "MFU"), ({"mfu": 1.2}, "MFU"), ({"gpus": 0}, "GPUs"), ({"gpu": "TPU"}, "GPU")):
        kw = dict(params=86e6, images_seen=1e6, tokens_per_image=197, gpu="NVIDIA A100 SXM (BF16)", gpus=1, mfu=0.4)
        with pytest.raises(ValueError, match=match):
            compute.training_cost(**{**kw, **bad})


def test_preset_params_are_counted_and_near_the_paper():
    # Dosovitskiy et al. (2021), Table 1: ViT-Base 86M, ViT-Large 307M, ViT-Huge 632M
    assert compute.preset_params("ViT-B/16") / 1e6 == pytest.approx(86, abs=1)
    assert compute.preset_params("ViT-L/16") / 1e6 == pytest.approx(307, abs=3)
    assert compute.preset_params("ViT-H/14") / 1e6 == pytest.approx(632, abs=3)


# ------------------------------------------------------------------ the run registry

def _fake_train(duration: float, step_s: float = 0.05):
    def train(cfg, on_step=None, should_stop=None):
        class R:
            steps_done = 0
            stopped = False
        r = R()
        end = time.monotonic() + duration
        while time.monotonic() < end:
            if should_stop():
                r.stopped = True
                break
            time.sleep(step_s)
            r.steps_done += 1
            on_step(r)
        return r
    return train


def test_one_run_per_session_and_a_global_cap():
    reg = runs.RunRegistry(max_runs=2, abandoned_after=60)
    a = reg.start("a", None, _fake_train(30))
    with pytest.raises(runs.RunRefused, match="already going in this session"):
        reg.start("a", None, _fake_train(1))
    b = reg.start("b", None, _fake_train(30))
    with pytest.raises(runs.RunRefused, match="global cap of 2 concurrent training runs"):
        reg.start("c", None, _fake_train(1))
    assert reg.stop("a") and a.done.wait(5) and a.latest.stopped
    assert reg.get("a") is None and reg.active() == 1
    reg.start("c", None, _fake_train(0.1)).done.wait(5)  # the freed slot is usable
    reg.stop("b")
    assert b.done.wait(5) and reg.active() == 0


def test_an_abandoned_run_stops_by_itself():
    reg = runs.RunRegistry(max_runs=1, abandoned_after=0.3)
    run = reg.start("x", None, _fake_train(30))
    assert run.done.wait(5) and run.latest.stopped and reg.active() == 0


def test_follow_yields_at_most_once_a_second_and_then_the_final_result():
    reg = runs.RunRegistry(max_runs=1, abandoned_after=60)
    run = reg.start("s", None, _fake_train(2.6, step_s=0.02))
    stamps, finals = [], []
    for _result, final in runs.follow(run, every=1.0):
        stamps.append(time.monotonic())
        finals.append(final)
    assert finals[-1] is True and not any(finals[:-1])
    assert len(stamps) >= 3
    assert all(b - a >= 0.95 for a, b in zip(stamps, stamps[1:], strict=False))


def test_a_run_error_reaches_the_poller():
    def broken(cfg, on_step=None, should_stop=None):
        raise ValueError("boom")

    reg = runs.RunRegistry(max_runs=1)
    with pytest.raises(ValueError, match="boom"):
        list(runs.follow(reg.start("e", None, broken)))
    assert reg.active() == 0


# ------------------------------------------------------------------ the page's facts

@needs_model
def test_page_facts_match_the_shipped_files():
    from spaces.training_lab import app

    c = _base_config()
    m = json.loads((local_path(options.BASE_MODEL) / "metrics.json").read_text())
    text = app.intro()
    g = c["image_size"] // c["patch_size"]
    for fact in (f"image {c['image_size']}", f"patch {c['patch_size']}", f"({g}x{g} grid)",
                 f"width {c['hidden_size']}", f"{c['num_hidden_layers']} layers", f"{m['parameters']:,} parameters",
                 f"{m['accuracy']:.1%} on {m['n']} held-out shapes"):
        assert fact in text
    assert app.WEIGHTS == (options.BASE_MODEL,)


def test_cited_gpu_peaks_and_mfu():
    # NVIDIA datasheets: A100 BF16 312 dense / 624 sparse; H100 SXM BF16 1,979 with sparsity (989.4 dense)
    assert options.GPUS["NVIDIA A100 SXM (BF16)"]["dense"] * 2 == options.GPUS["NVIDIA A100 SXM (BF16)"]["sparse"]
    h100 = options.GPUS["NVIDIA H100 SXM (BF16)"]
    assert math.isclose(h100["dense"] * 2, h100["sparse"], rel_tol=1e-3)
    assert options.PALM_MFU == 0.462

