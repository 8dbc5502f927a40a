"""dit_stepper compute functions, each against an independent computation, and the page's stated facts.

The schedules are recomputed from their published formulas, one guided step is recomputed from
two separate (unbatched) transformer calls, and the DiT-XL/2 cost is checked against the paper.
Every model fact the page states is checked against the shipped config, scheduler config and metrics.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import shared.diffusion
from hub.registry import get as tutorial
from shared.data.shapes import SHAPES
from shared.diffusion import SCHEDULERS, guided_step, make_scheduler, to_eps_x0
from shared.models import available_offline, local_path
from spaces.dit_stepper import app, compute, options

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = local_path("dit-tiny-shapes")

pytestmark = pytest.mark.skipif(not available_offline(compute.TINY_MODEL), reason="dit-tiny-shapes not trained")


@pytest.fixture(scope="module")
def tiny():
    return compute.load_model(compute.TINY_MODEL)


def _cosine_alpha_bar(T: int = 1000) -> np.ndarray:
    """Nichol & Dhariwal (2021) eq. 17, with betas capped at 0.999 as they do."""
    f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = np.array([min(1 - f(t + 1) / f(t), 0.999) for t in range(T)])
    return np.cumprod(1 - betas)


# --------------------------------------------------------------------------------------
#                                   Schedules and schedulers
# --------------------------------------------------------------------------------------

def test_schedule_is_the_cosine_schedule(tiny):
    _, parts = tiny
    curves = compute.schedule_curves(parts.scheduler_config)
    ab = _cosine_alpha_bar()
    np.testing.assert_allclose(curves["alpha_bar"], ab, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(curves["snr"], ab / (1 - ab), rtol=2e-3)  # diffusers keeps ᾱ in float32


def test_dit_xl2_schedule_is_linear():
    curves = compute.schedule_curves(compute.DIT_XL2_SCHEDULE)
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(curves["alpha_bar"], np.cumprod(1 - betas), rtol=1e-5)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_schedulers_build_from_the_model_config(tiny, name):
    _, parts = tiny
    for steps in (1, 7, 25):
        s = make_scheduler(name, parts.scheduler_config, steps)
        ts = [float(t) for t in s.timesteps]
        assert len(ts) == steps
        assert all(a > b for a, b in zip(ts, ts[1:], strict=False))  # strictly decreasing
        assert ts[0] <= 999 and ts[-1] >= 0
        assert s.config.prediction_type == parts.scheduler_config["prediction_type"]


def test_bad_scheduler_and_steps(tiny):
    _, parts = tiny
    with pytest.raises(ValueError, match="DDIM"):
        make_scheduler("PNDM", parts.scheduler_config, 10)
    for bad in (0, -3, compute.MAX_STEPS + 1):
        with pytest.raises(ValueError, match="steps"):
            make_scheduler("DDIM", parts.scheduler_config, bad)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_parameterisations_recover_noise_and_image(prediction_type):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    ab = 0.3
    x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps
    output = {"epsilon": eps, "sample": x0, "v_prediction": math.sqrt(ab) * eps - math.sqrt(1 - ab) * x0}[
        prediction_type]
    e, x = to_eps_x0(output, x_t, ab, prediction_type)
    torch.testing.assert_close(e, eps, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x, x0, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------
#                                   One step, recomputed
# --------------------------------------------------------------------------------------

def test_one_guided_ddim_step_matches_the_formulas(tiny):
    transformer, parts = tiny
    sched = make_scheduler("DDIM", parts.scheduler_config, 10)
    g = torch.Generator().manual_seed(3)
    x_t = torch.randn(1, 3, 32, 32, generator=g)
    t = sched.timesteps[4]
    s, label, null = 3.0, 2, transformer.config.num_embeds_ada_norm
    r = guided_step(transformer, sched, x_t, t, torch.tensor([label]), null, s, None)

    # independent: two separate forwards, the output -> ε conversion and the guidance formula by hand
    ab = float(_cosine_alpha_bar()[int(t)])
    with torch.no_grad():
        out_c = transformer(x_t, timestep=torch.tensor([int(t)]), class_labels=torch.tensor([label])).sample
        out_u = transformer(x_t, timestep=torch.tensor([int(t)]), class_labels=torch.tensor([null])).sample
    prediction_type = parts.scheduler_config["prediction_type"]
    if prediction_type == "v_prediction":  # v = sqrt(ᾱ)·ε - sqrt(1-ᾱ)·x_0  =>  ε = sqrt(1-ᾱ)·x_t + sqrt(ᾱ)·v
        eps_c = math.sqrt(1 - ab) * x_t + math.sqrt(ab) * out_c
        eps_u = math.sqrt(1 - ab) * x_t + math.sqrt(ab) * out_u
    else:  # x_0-prediction: ε = (x_t - sqrt(ᾱ)·x̂_0) / sqrt(1-ᾱ)
        assert prediction_type == "sample", prediction_type
        eps_c = (x_t - math.sqrt(ab) * out_c) / math.sqrt(1 - ab)
        eps_u = (x_t - math.sqrt(ab) * out_u) / math.sqrt(1 - ab)
    eps = eps_u + s * (eps_c - eps_u)
    x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    torch.testing.assert_close(r.eps_cond, eps_c, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r.eps_uncond, eps_u, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r.eps, eps, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r.x0, x0, rtol=1e-4, atol=1e-4)
    assert r.alpha_bar == pytest.approx(ab, rel=1e-6)
    assert r.sigma == pytest.approx(math.sqrt((1 - ab) / ab), rel=1e-6)

    # DDIM, η = 0 (Song et al., 2021 eq. 12), with x̂_0 clipped to [-1, 1] (pixel space) and ε kept
    ab_prev = float(_cosine_alpha_bar()[int(t) - 100])
    x_prev = math.sqrt(ab_prev) * x0.clamp(-1, 1) + math.sqrt(1 - ab_prev) * eps
    torch.testing.assert_close(r.x_prev, x_prev, rtol=1e-4, atol=1e-4)


def test_frame_reports_the_guidance_arithmetic(tiny):
    state = compute.start(compute.TINY_MODEL, "circle", 5, 2.5, 0, "DDIM")
    f = compute.step(state)
    g = f.guidance
    assert g["eps"] == pytest.approx(g["eps_uncond"] + 2.5 * (g["eps_cond"] - g["eps_uncond"]), abs=1e-4)
    assert (f.index, f.steps, f.t) == (1, 5, 999.0)
    assert f.alpha_bar == pytest.approx(_cosine_alpha_bar()[999], rel=1e-5)
    assert state.index == 1 and len(state.frames) == 1


# --------------------------------------------------------------------------------------
#                                   Full runs
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_stepping_to_the_end_equals_sample(scheduler):
    state = compute.start(compute.TINY_MODEL, "star", 8, 3.0, 11, scheduler)
    frames = []
    while not state.done:
        frames.append(compute.step(state))
    stepped = np.asarray(frames[-1].x_next)
    sampled = np.asarray(compute.sample("star", 8, 3.0, 11, scheduler))
    assert np.array_equal(stepped, sampled)
    assert np.array_equal(np.asarray(compute.final_image(state)), sampled)
    with pytest.raises(ValueError, match="done"):
        compute.step(state)


def test_sample_is_deterministic_and_seed_dependent():
    a = np.asarray(compute.sample("cross", 6, 3.0, 5, "DDPM"))
    b = np.asarray(compute.sample("cross", 6, 3.0, 5, "DDPM"))
    c = np.asarray(compute.sample("cross", 6, 3.0, 6, "DDPM"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (compute.DISPLAY_SIZE, compute.DISPLAY_SIZE, 3)
    block = a[:8, :8]  # nearest-neighbour upscaling: each model pixel is an exact 8x8 block
    assert (block == block[0, 0]).all()


def test_sample_equals_the_shared_batch_sampler(tiny):
    """The stepper and the evaluation's batch sampler walk the same trajectory."""
    from shared.diffusion import sample

    transformer, parts = tiny
    x = sample(transformer, parts.scheduler_config, torch.tensor([3]), steps=6, guidance=2.0, seed=4, scheduler="Euler")
    expected = torch.round((x[0].clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(1, 2, 0).numpy()
    got = np.asarray(compute.sample("star", 6, 2.0, 4, "Euler"))[::8, ::8]
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_guidance_row_has_0_1_and_the_chosen_scale():
    calls = []
    row = compute.guidance_row("square", 5, 4.0, 2, "DDIM", on_step=lambda *a: calls.append(a))
    assert [s for s, _ in row] == [0.0, 1.0, 4.0]
    assert calls == [(s, i, 5) for s in (0.0, 1.0, 4.0) for i in range(1, 6)]  # the page's progress bar
    assert compute.guidance_scales(1) == [0.0, 1.0]
    assert np.array_equal(np.asarray(row[1][1]), np.asarray(compute.sample("square", 5, 1.0, 2, "DDIM")))


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps"), ({"steps": -4}, "steps"), ({"steps": compute.MAX_STEPS + 1}, "steps"),
    ({"steps": 2.5}, "steps"), ({"guidance": float("nan")}, "guidance"), ({"guidance": float("inf")}, "guidance"),
    ({"guidance": -1.0}, "guidance"), ({"seed": 1.5}, "seed"), ({"seed": -1}, "seed"),
    ({"class_label": "hexagon"}, "class"), ({"scheduler": "PNDM"}, "scheduler"),
])
def test_bad_inputs(kwargs, match):
    args = {"class_label": "star", "steps": 5, "guidance": 3.0, "seed": 0, "scheduler": "DDIM", **kwargs}
    with pytest.raises(ValueError, match=match):
        compute.sample(args["class_label"], args["steps"], args["guidance"], args["seed"], args["scheduler"])


# --------------------------------------------------------------------------------------
#                                   Forward process
# --------------------------------------------------------------------------------------

def test_forward_noise_is_the_ddpm_formula(tiny):
    _, parts = tiny
    arr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    image = Image.fromarray(arr)
    n = compute.forward_noise(image, 300, 9, parts.scheduler_config, 32)
    ab = _cosine_alpha_bar()[300]
    x0 = arr.astype(np.float64) / 127.5 - 1
    eps = torch.randn((3, 32, 32), generator=torch.Generator().manual_seed(9)).permute(1, 2, 0).double().numpy()
    xt = np.clip(math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps, -1, 1)
    expected = np.round((xt + 1) * 127.5)
    got = np.asarray(n.x_t)[::8, ::8].astype(float)
    assert np.abs(got - expected).max() <= 1
    assert n.alpha_bar == pytest.approx(ab, rel=1e-5) and n.snr == pytest.approx(ab / (1 - ab), rel=1e-4)
    assert np.array_equal(np.asarray(n.x0)[::8, ::8], arr)
    for bad in (-1, 1000, 2.5, "abc"):
        with pytest.raises(ValueError, match="t must be an integer from 0 to 999"):
            compute.forward_noise(image, bad, 0, parts.scheduler_config, 32)
    with pytest.raises(ValueError, match="no image"):
        compute.forward_noise(None, 10, 0, parts.scheduler_config, 32)


def test_image_to_tensor_keeps_the_centre_square():
    """A 40x32 image: the middle 32 columns, scaled to [-1, 1] as the model was trained (x/127.5 - 1)."""
    arr = np.random.default_rng(1).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    x = compute.image_to_tensor(Image.fromarray(arr), 32)
    expected = torch.from_numpy(arr[:, 4:36].astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
    torch.testing.assert_close(x, expected)


# --------------------------------------------------------------------------------------
#                                   Inside the DiT
# --------------------------------------------------------------------------------------

def test_patchify_against_a_loop():
    x = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(3, 8, 8)
    tokens = compute.patchify(x, 4)
    assert tokens.shape == (4, 48)
    for n, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        patch = x[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4]  # (3, 4, 4)
        assert torch.equal(tokens[n], patch.reshape(-1))


def test_patch_embedding_conv_equals_linear(tiny):
    transformer, _ = tiny
    x = torch.rand(3, 32, 32) * 2 - 1
    e = compute.patch_embedding(transformer, x)
    assert e["tokens"].shape == (64, 48) and e["by_conv"].shape == (64, transformer.inner_dim)
    torch.testing.assert_close(e["by_linear"], e["by_conv"], rtol=1e-4, atol=1e-5)


def test_adaln_modulation_shapes(tiny):
    transformer, _ = tiny
    m = compute.adaln_modulation(transformer, 1, [999, 500, 0])
    assert m["mean_abs"].shape == (transformer.config.num_layers, 3, 6)
    assert np.isfinite(m["mean_abs"]).all()


def test_dit_xl2_cost_matches_the_paper():
    """Peebles & Xie (2023), Table 4: DiT-XL/2 at 256 px is 118.6 Gflops (multiply-accumulates) and
    675M parameters (counting the timestep and class embedders once, as the paper's model does)."""
    r = compute.count_macs(compute.DIT_XL2_CONFIG)
    assert r["macs_shared_embedders"] / 1e9 == pytest.approx(118.6, abs=0.05)
    assert r["params_shared_embedders"] / 1e6 == pytest.approx(675, abs=0.5)
    assert r["tokens"] == 256 and r["width"] == 1152 and r["layers"] == 28


def test_tiny_cost_against_the_analytic_count():
    """Per token and block: qkv + out projection (4D²) + MLP (8D²) MACs; attention 2·N²·D; adaLN 6D²
    per sample; plus patch embedding, final adaLN and the output layer, and the embedders."""
    cfg = compute.tiny_config()
    r = compute.count_macs(cfg)
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    p, c, L = cfg["patch_size"], cfg["in_channels"], cfg["num_layers"]
    n = (cfg["sample_size"] // p) ** 2
    blocks = L * (12 * d * d * n + 2 * n * n * d + 6 * d * d)
    embedders = (L + 1) * (256 * d + d * d)  # diffusers' timestep MLP: once per block, once for the output
    ends = n * p * p * c * d + 2 * d * d + n * d * p * p * cfg["out_channels"]
    assert r["macs"] == blocks + embedders + ends
    assert r["macs_attention"] == L * 2 * n * n * d


# --------------------------------------------------------------------------------------
#                                   Inputs (shared/validate.py underneath)
# --------------------------------------------------------------------------------------

def test_the_torch_free_options_agree_with_shared_diffusion():
    """options.py repeats shared/diffusion.py's scheduler names, limit and default (that module imports torch)."""
    assert options.SCHEDULER_NAMES == tuple(shared.diffusion.SCHEDULERS)
    assert options.MAX_STEPS == shared.diffusion.MAX_STEPS
    assert options.DEFAULT_SCHEDULER == shared.diffusion.DEFAULT_SCHEDULER


@pytest.mark.parametrize("check, good, bad, message", [
    (options.check_steps, [(1, 1), (200.0, 200), ("7", 7)], [0, 201, 2.5, "abc", True, None],
     "steps must be an integer from 1 to 200"),
    (options.check_seed, [(0, 0), (2**31 - 1, 2**31 - 1)], [-1, 2**31, 1.5, "abc", False],
     "seed must be an integer from 0 to"),
    (options.check_guidance, [(0, 0.0), ("3.5", 3.5), (20, 20.0)], ["nan", "inf", float("nan"), -0.5, 20.5, "lots", True],
     "guidance scale must be a finite number from 0 to 20"),
    (options.check_scheduler, [("DDIM", "DDIM")], ["PNDM", None, ["DDIM"]], "unknown scheduler"),
])
def test_checks_name_the_input_and_what_is_allowed(check, good, bad, message):
    for value, expected in good:
        assert check(value) == expected
    for value in bad:
        with pytest.raises(ValueError, match=message):
            check(value)


# --------------------------------------------------------------------------------------
#                                   The page: start-up and stated facts
# --------------------------------------------------------------------------------------

def test_building_the_page_imports_no_heavy_library():
    """The hub builds every page at start-up (issue 14): no torch, diffusers or matplotlib then."""
    code = ("import sys; import spaces.dit_stepper.app as a; a.build(); "
            "print([m for m in ('torch', 'transformers', 'diffusers', 'matplotlib', 'scipy', 'accelerate') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _page_text() -> str:
    """Every Markdown/HTML text, component label and dropdown choice of the built page."""
    import gradio as gr

    parts = []
    for block in app.build().blocks.values():
        if isinstance(block, (gr.Markdown, gr.HTML)) and block.value:
            parts.append(str(block.value))
        if getattr(block, "label", None):
            parts.append(str(block.label))
        if isinstance(block, gr.Dropdown):
            parts.extend(str(c[0]) for c in block.choices)
    return "\n".join(parts)


def test_the_page_states_the_shipped_models_facts():
    """Each figure the page states about dit-tiny-shapes is what its shipped files say."""
    cfg = json.loads((WEIGHTS / "config.json").read_text())
    sched = json.loads((WEIGHTS / "scheduler" / "scheduler_config.json").read_text())
    m = json.loads((WEIGHTS / "metrics.json").read_text())
    text = _page_text()
    s, p, c = cfg["sample_size"], cfg["patch_size"], cfg["in_channels"]
    g = s // p
    stated = [
        f"{s}×{s}×{c} images", f"{p}×{p} patches", f"{g}×{g} = {g * g} tokens",
        f"width {cfg['num_attention_heads'] * cfg['attention_head_dim']}", f"{cfg['num_layers']} blocks",
        f"{s}x{s} pixels, patch {p}", f"resized to {s}×{s}",
        f"{m['parameters'] / 1e6:.2f}M parameters", f"{m['train_steps']:,} steps",
        {"sample": "predicts the clean image x₀", "epsilon": "predicts the noise ε", "v_prediction": "predicts v ="}[
            sched["prediction_type"]],
        # the measured quality, and which judge measured it
        f"Of {m['n']} samples ({m['steps']} {m['scheduler']} steps, guidance {m['guidance']:g})",
        f"the judge, {m['judge']},", f"**{100 * m['class_accuracy']:.1f}%**",
        f"{100 * m['class_accuracy_guidance0']:.1f}% without guidance", f"chance is {100 / cfg['num_embeds_ada_norm']:.0f}%",
    ]
    if "judge_accuracy_on_real" in m:  # the judge's own accuracy on real shapes: the sample figure's ceiling
        stated.append(f"the judge is right {100 * m['judge_accuracy_on_real']:.1f}% of the time")
    missing = [fact for fact in stated if fact not in text]
    assert not missing, missing
    assert ("cosine schedule" in text) == (sched["beta_schedule"] == "squaredcos_cap_v2")
    assert len(SHAPES) == cfg["num_embeds_ada_norm"]  # the class dropdown lists the model's classes


def test_the_page_claims_nothing_the_files_do_not_record():
    """Issue 14's stale facts: "a 2M-parameter model trained on a 2-core CPU" (the machine and the training
    time are not in metrics.json) and a model that "predicts ε̂" (its scheduler config says otherwise)."""
    m = json.loads((WEIGHTS / "metrics.json").read_text())
    sched = json.loads((WEIGHTS / "scheduler" / "scheduler_config.json").read_text())
    text = _page_text()
    for stale in ("2M-parameter", "2-core", "CPU"):
        assert stale not in text
    if "train_wall_seconds" not in m and "phase2_wall_seconds" not in m:
        assert " h of wall time" not in text and " min of wall time" not in text
    if "phase2_wall_seconds" in m:  # only phase 2's time is known: the page must not give it as the whole run's
        assert f"(the last {m['phase2_steps']:,} in " in text
    if sched["prediction_type"] != "epsilon":
        assert "predicts the noise" not in text


def test_training_line_states_only_what_is_recorded():
    assert app._training({"train_steps": 24000}) == " for 24,000 steps"
    assert app._training({}) == ""
    recorded = app._training({"train_steps": 32000, "train_wall_seconds": 4576.3, "torch_threads": 2})
    assert recorded == " for 32,000 steps in 76 min of wall time with 2 torch threads"
    phase2_alone = app._training({"train_steps": 32000, "phase2_steps": 8000, "phase2_wall_seconds": 3000.0})
    assert phase2_alone == " for 32,000 steps (the last 8,000 in 50 min of wall time)"


def test_shipped_parameter_count_is_the_models(tiny):
    transformer, _ = tiny
    m = json.loads((WEIGHTS / "metrics.json").read_text())
    assert m["parameters"] == sum(p.numel() for p in transformer.parameters())


def test_title_and_emoji_come_from_the_registry():
    t = tutorial("dit_stepper")
    assert app.TITLE == t.title
    assert f"# {t.emoji} {t.title}" in _page_text()
    readme = (ROOT / "spaces" / "dit_stepper" / "README.md").read_text()
    front = readme.split("---\n")[1]
    assert f"title: {t.title}\n" in front and f"emoji: {t.emoji}\n" in front
    body = readme.split("---\n", 2)[2]
    assert t.title not in body


def test_step_continues_the_trajectory_until_a_control_changes():
    """The page's Step: same controls, next step of the same state; another class (by name or by number,
    as ImageNet ids arrive) or seed starts again."""
    first = app.step_once("star", 3, 2.0, 1, "DDIM", compute.TINY_MODEL, None)
    state = first[0]
    second = app.step_once("star", 3, 2.0, 1, "DDIM", compute.TINY_MODEL, state)
    assert second[0] is state and state.index == 2 and second[5].startswith("**step 2 / 3**")
    assert app._same_controls(state, (compute.TINY_MODEL, str(state.class_id), 3, 2.0, 1, "DDIM"))
    restarted = app.step_once("star", 3, 2.0, 2, "DDIM", compute.TINY_MODEL, state)
    assert restarted[0] is not state and restarted[0].index == 1
