"""The interpretability space: compute.py checked against independent computations, and the page itself.

Independent here means: a fresh ``ViTForImageClassification`` loaded by transformers in the test (not the
space's cached model), its own processor, ``.backward()`` with ``retain_grad`` and forward hooks (the
space uses ``torch.autograd.grad`` and ``output_hidden_states``), loops written in the test (rollout,
relevance accumulation, a trapezoid Riemann sum for integrated gradients, the FGSM step), scipy's
``spearmanr``; never the code under test. Facts on the page are checked against config.json/metrics.json.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import ConstantInputWarning, spearmanr
from transformers import AutoImageProcessor, ViTForImageClassification

from shared.data.shapes import ShapesDataset, sample_image
from shared.models import local_path
from spaces.attribution import compute, options

MODEL = "vit-tiny-shapes"
CONFIG = json.loads((local_path(MODEL) / "config.json").read_text())
METRICS = json.loads((local_path(MODEL) / "metrics.json").read_text())
GRID = CONFIG["image_size"] // CONFIG["patch_size"]
CLASSES = [CONFIG["id2label"][str(i)] for i in range(len(CONFIG["id2label"]))]


@pytest.fixture(scope="module")
def hf():
    """A private copy of the model and its processor, loaded by transformers directly."""
    model = ViTForImageClassification.from_pretrained(str(local_path(MODEL)), attn_implementation="eager")
    return model.eval(), AutoImageProcessor.from_pretrained(str(local_path(MODEL)))


@pytest.fixture(scope="module")
def star():
    return sample_image("star", "blue", size=96, seed=3)[0]


@pytest.fixture(scope="module")
def held_out():
    return [ShapesDataset("test", 6, size=64)[i][0] for i in range(6)]


def _pixels(hf, image) -> torch.Tensor:
    return hf[1](images=image, return_tensors="pt")["pixel_values"]


def _pixels01(image) -> torch.Tensor:
    """[0, 1] pixels at the model's resolution, by PIL (bilinear = the processor's resample 2) in the test."""
    side = CONFIG["image_size"]
    arr = np.asarray(image.convert("RGB").resize((side, side), Image.BILINEAR), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1)[None]


def _norm(x01: torch.Tensor) -> torch.Tensor:
    pre = json.loads((local_path(MODEL) / "preprocessor_config.json").read_text())
    mean = torch.tensor(pre["image_mean"]).view(1, 3, 1, 1)
    std = torch.tensor(pre["image_std"]).view(1, 3, 1, 1)
    return (x01 - mean) / std


# --------------------------------------------------------------------------------------
#                                   The model's view
# --------------------------------------------------------------------------------------

def test_view_is_the_processor_input_before_normalisation(hf, star):
    v = compute.view(star, MODEL)
    assert tuple(v.x.shape) == (1, 3, CONFIG["image_size"], CONFIG["image_size"])
    assert v.grid == (GRID, GRID) and v.prefix == 1
    assert torch.allclose(v.normalise(v.x), _pixels(hf, star), atol=1.5 / 255)  # the 8-bit grid, nothing more
    assert torch.equal(v.x * 255, (v.x * 255).round().clamp(0, 255)) or torch.allclose(
        v.x * 255, (v.x * 255).round(), atol=1e-4)


# --------------------------------------------------------------------------------------
#                                   Rollout
# --------------------------------------------------------------------------------------

def _rollout_reference(attentions) -> np.ndarray:
    """Abnar & Zuidema (2020) as the issue defines it, mean fusion, no discard, in float64 numpy."""
    mats = [a[0].mean(dim=0).double().numpy() for a in attentions]  # L x (N, N)
    n = mats[0].shape[0]
    r = np.eye(n)
    for a in mats:
        a = (a + np.eye(n)) / 2
        a = a / a.sum(axis=1, keepdims=True)
        r = a @ r
    row = r[0, 1:]
    return (row / row.sum()).reshape(GRID, GRID)


def test_rollout_matches_an_independent_computation_from_output_attentions(hf, star):
    with torch.no_grad():
        out = hf[0](pixel_values=_pixels(hf, star), output_attentions=True)
    res = compute.explain(star, "rollout", "", MODEL)
    np.testing.assert_allclose(np.array(res.stats["map"]), _rollout_reference(out.attentions), atol=1e-5)
    assert res.stats["grid"] == [GRID, GRID]
    assert sum(map(sum, res.stats["map"])) == pytest.approx(1.0, abs=1e-6)


def test_rollout_does_not_depend_on_the_target(star):
    maps = [compute.explain(star, "rollout", c, MODEL).map for c in CLASSES[:2]]
    np.testing.assert_array_equal(maps[0], maps[1])


# --------------------------------------------------------------------------------------
#                                   Gradient-weighted rollout
# --------------------------------------------------------------------------------------

def _chefer_reference(hf, image, target: int) -> np.ndarray:
    """Chefer et al. (2021), official recipe, written with retain_grad and backward on a private model:
    R = (I + Ā_L) ... (I + Ā_1), Ā = mean_heads (grad * A)^+, the [CLS] row over the patches."""
    model = hf[0]
    model.zero_grad()
    out = model(pixel_values=_pixels(hf, image), output_attentions=True)
    for a in out.attentions:
        a.retain_grad()
    out.logits[0, target].backward()
    n = out.attentions[0].shape[-1]
    r = np.eye(n)
    for a in out.attentions:
        cam = np.clip(a.grad[0].double().numpy() * a[0].detach().double().numpy(), 0, None).mean(axis=0)
        r = (np.eye(n) + cam) @ r
    row = r[0, 1:]
    return (row / row.sum()).reshape(GRID, GRID)


@pytest.mark.parametrize("target", ["", "circle", "cross"])
def test_grad_rollout_matches_the_official_recipe(hf, star, target):
    res = compute.explain(star, "grad_rollout", target, MODEL)
    index = CLASSES.index(res.target)
    np.testing.assert_allclose(res.map, _chefer_reference(hf, star, index), atol=1e-5)
    assert res.target == (target or res.predicted)


def test_grad_rollout_depends_on_the_target(star):
    a = compute.explain(star, "grad_rollout", "circle", MODEL).map
    b = compute.explain(star, "grad_rollout", "star", MODEL).map
    assert np.abs(a - b).max() > 1e-4


# --------------------------------------------------------------------------------------
#                                   Grad-CAM
# --------------------------------------------------------------------------------------

def _last_block_input(hf, image, target: int):
    """(tokens entering the last block, their gradient, gradient at the last block's output), via hooks."""
    model = hf[0]
    model.zero_grad()
    seen = {}
    block = model.vit.layers[-1]  # transformers 5: ViTModel.layers
    def keep_in(m, args, kwargs):
        seen["in"] = args[0] if args else kwargs["hidden_states"]

    pre = block.register_forward_pre_hook(keep_in, with_kwargs=True)

    def keep_out(m, args, output):
        out = output[0] if isinstance(output, tuple) else output
        seen["out"] = out
        out.retain_grad()

    post = block.register_forward_hook(keep_out)
    try:
        x = _pixels(hf, image)
        logits = model(pixel_values=x).logits
        seen["in"].retain_grad()
        logits[0, target].backward()
    finally:
        pre.remove()
        post.remove()
    return seen["in"].detach()[0], seen["in"].grad[0], seen["out"].grad[0]


def test_gradcam_matches_a_hook_reference(hf, star):
    res = compute.explain(star, "gradcam", "", MODEL)
    tokens, grad, _ = _last_block_input(hf, star, CLASSES.index(res.target))
    weights = grad[1:].double().numpy().mean(axis=0)  # (D,)
    cam = np.maximum(tokens[1:].double().numpy() @ weights, 0)
    np.testing.assert_allclose(res.map, (cam / cam.sum()).reshape(GRID, GRID), atol=1e-5)


def test_last_block_output_patch_tokens_get_no_gradient(hf, star):
    """Why Grad-CAM uses the tokens entering the last block: the head reads only [CLS]."""
    _, grad_in, grad_out = _last_block_input(hf, star, 0)
    assert float(grad_out[1:].abs().max()) == 0.0
    assert float(grad_out[0].abs().max()) > 0 and float(grad_in[1:].abs().max()) > 0


# --------------------------------------------------------------------------------------
#                                   Integrated gradients
# --------------------------------------------------------------------------------------

def _ig_trapezoid(hf, image, target: int, intervals: int) -> tuple[np.ndarray, float, float]:
    """IG with a trapezoid Riemann sum over ``intervals``, one forward/backward per point, on a private model."""
    model = hf[0]
    x = _pixels01(image)
    grads = []
    for k in range(intervals + 1):
        point = (k / intervals * x).requires_grad_(True)
        model(pixel_values=_norm(point)).logits[0, target].backward()
        grads.append(point.grad[0].double().numpy())
        model.zero_grad()
    weights = np.full(intervals + 1, 1.0 / intervals)
    weights[[0, -1]] /= 2
    avg = np.tensordot(weights, np.stack(grads), axes=1)
    with torch.no_grad():
        at_x = float(model(pixel_values=_norm(x)).logits[0, target])
        black = float(model(pixel_values=_pixels(hf, Image.new("RGB", (64, 64), "black"))).logits[0, target])
    return x[0].double().numpy() * avg, at_x, black


def test_integrated_gradients_match_an_independent_riemann_sum(hf, star):
    v = compute.view(star, MODEL)
    target = CLASSES.index("star")
    ours = compute.integrated_gradients(v.model, v, target, steps=options.IG_STEPS)
    ref, at_x, black = _ig_trapezoid(hf, star, target, 128)
    scale = np.abs(ref).max()
    assert np.abs(ours.attributions - ref).max() < 0.05 * scale
    assert np.corrcoef(ours.attributions.ravel(), ref.ravel())[0, 1] > 0.99
    assert ours.logit_input == pytest.approx(at_x, abs=2e-3)
    assert ours.logit_baseline == pytest.approx(black, abs=1e-4)  # the all-black image, before normalisation
    assert ours.sum_attributions == pytest.approx(ref.sum(), rel=0.03)


def test_integrated_gradients_completeness_on_held_out_shapes(held_out):
    for image in held_out:
        res = compute.explain(image, "integrated_gradients", "", MODEL)
        s = res.stats
        assert s["steps"] in {options.IG_STEPS * 2 ** k for k in range(4)} and s["steps"] <= options.IG_MAX_STEPS
        gap = abs(s["sum_attributions"] - s["logit_difference"]) / abs(s["logit_difference"])
        assert gap == pytest.approx(s["completeness_gap"])
        assert gap <= options.IG_TOLERANCE or s["steps"] == options.IG_MAX_STEPS
        assert sum(map(sum, s["map"])) == pytest.approx(s["sum_attributions"], rel=1e-6)


def test_explain_adds_points_until_integrated_gradients_are_complete(star, monkeypatch):
    """Start from 2 points (far from complete): the endpoint doubles them until the gap is within tolerance."""
    monkeypatch.setattr(compute, "IG_STEPS", 2)
    v = compute.view(star, MODEL)
    target = compute.explain(star, "rollout", "", MODEL).target_index
    coarse = compute.integrated_gradients(v.model, v, target, steps=2)
    assert coarse.completeness_gap > options.IG_TOLERANCE  # so the refinement has work to do
    s = compute.explain(star, "integrated_gradients", "", MODEL).stats
    assert s["steps"] > 2 and s["completeness_gap"] <= options.IG_TOLERANCE


def test_integrated_gradients_converge_with_more_steps(star):
    v = compute.view(star, MODEL)
    gaps = [compute.integrated_gradients(v.model, v, 3, steps=n).completeness_gap for n in (4, 256)]
    assert gaps[1] < gaps[0] and gaps[1] < 0.01


# --------------------------------------------------------------------------------------
#                                   Sanity check
# --------------------------------------------------------------------------------------

def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 6, size=64).astype(float)
        b = a + rng.normal(size=64)
        assert compute.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)


def test_spearman_of_a_constant_map_is_undefined_not_a_number_on_the_page():
    assert math.isnan(compute.spearman(np.zeros(64), np.arange(64.0)))
    with pytest.warns(ConstantInputWarning):  # scipy agrees: no correlation is defined
        assert math.isnan(spearmanr(np.zeros(64), np.arange(64.0)).statistic)
    res = compute.Sanity("cascade", "star", {}, {}, {"gradcam": float("nan")}, {"gradcam": float("nan")}, "star")
    assert res.stats["spearman_abs"]["gradcam"] is None
    json.dumps(res.stats, allow_nan=False)


def test_head_only_randomisation_leaves_rollout_unchanged(star):
    res = compute.sanity_check(star, "classifier", "", MODEL)
    assert res.spearman_abs["rollout"] == pytest.approx(1.0)
    np.testing.assert_allclose(res.trained["rollout"], res.randomised["rollout"], atol=1e-7)
    assert set(res.spearman_abs) == set(options.METHODS)


def test_cascade_randomises_every_weight_and_spares_the_trained_model(hf, star):
    before = compute.explain(star, "grad_rollout", "", MODEL).map
    random_model = compute.randomised_model(MODEL, "cascade")
    trained = dict(hf[0].named_parameters())
    std = CONFIG["initializer_range"]
    for name, p in random_model.named_parameters():
        assert not torch.equal(p.detach(), trained[name].detach()) or name.endswith(("bias", "layernorm_before.weight",
                                                                                     "layernorm_after.weight",
                                                                                     "layernorm.weight"))
        if name.endswith(("q_proj.weight", "fc1.weight")):
            assert float(p.detach().std()) == pytest.approx(std, rel=0.1)
    np.testing.assert_array_equal(compute.explain(star, "grad_rollout", "", MODEL).map, before)
    res = compute.sanity_check(star, "cascade", "", MODEL)
    assert all(-1 <= r <= 1 for r in res.spearman_abs.values())
    assert res.spearman_abs["rollout"] < 0.99  # rollout reads the attention, which the cascade re-draws


# --------------------------------------------------------------------------------------
#                                   FGSM
# --------------------------------------------------------------------------------------

def _predict(hf, image) -> str:
    with torch.no_grad():
        return CLASSES[int(hf[0](pixel_values=_pixels(hf, image)).logits[0].argmax())]


@pytest.mark.parametrize("epsilon", [0.0, 0.5 / 255, 2 / 255, 8 / 255, 0.1, options.MAX_EPSILON])
def test_fgsm_step_bound_and_prediction(hf, star, epsilon):
    res = compute.fgsm(star, epsilon, "", MODEL)
    x = _pixels01(star)
    original8 = (x[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(res.original.astype(float) - original8).max() <= 1  # the model's view, as PIL makes it
    # independent FGSM: gradient of the cross-entropy of the predicted class, by backward on a private model
    xg = (torch.from_numpy(res.original).permute(2, 0, 1)[None].float() / 255).requires_grad_(True)
    logits = hf[0](pixel_values=_norm(xg)).logits
    F.cross_entropy(logits, logits.argmax(-1)).backward()
    k = math.floor(epsilon * 255 + 1e-9)
    expected = np.clip(res.original.astype(int) + k * xg.grad[0].sign().permute(1, 2, 0).numpy().astype(int), 0, 255)
    np.testing.assert_array_equal(res.adversarial, expected)
    assert res.linf <= epsilon + 1e-12
    assert np.abs(res.adversarial.astype(int) - res.original.astype(int)).max() / 255 == pytest.approx(res.linf)
    assert res.label_before == _predict(hf, Image.fromarray(res.original))
    assert res.label_after == _predict(hf, Image.fromarray(res.adversarial))  # the PNG, read back as the model would
    if epsilon == 0.0 or epsilon < 1 / 255:
        assert res.linf == 0 and res.label_after == res.label_before


def test_fgsm_flip_epsilon_is_the_first_grid_step_that_flips(hf, star):
    res = compute.fgsm(star, 2 / 255, "", MODEL)
    assert res.grid == pytest.approx([k / 255 for k in range(1, int(options.MAX_EPSILON * 255) + 1)])
    flip = res.flip_epsilon
    for eps in res.grid:
        if flip is not None and eps > flip:
            break
        label = compute.fgsm(star, eps, "", MODEL).label_after
        assert (label != res.label_before) == (flip is not None and eps == flip)


def test_fgsm_target_raises_that_class_loss(star):
    res = compute.fgsm(star, 8 / 255, "circle", MODEL)
    assert res.target == "circle" and res.stats["target"] == "circle"


# --------------------------------------------------------------------------------------
#                                   Bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda img: compute.explain(img, "saliency", "", MODEL), "unknown method 'saliency'"),
    (lambda img: compute.explain(img, "rollout", "dog", MODEL), "unknown target class 'dog'"),
    (lambda img: compute.fgsm(img, -0.1, "", MODEL), "epsilon must be a finite number from 0 to 0.25, got -0.1"),
    (lambda img: compute.fgsm(img, "nan", "", MODEL), "epsilon must be a finite number"),
    (lambda img: compute.fgsm(img, 0.3, "", MODEL), "from 0 to 0.25, got 0.3"),
    (lambda img: compute.fgsm(img, 0.1, "dog", MODEL), "unknown target class"),
    (lambda img: compute.sanity_check(img, "half", "", MODEL), "unknown randomisation"),
    (lambda img: compute.explain(None, "rollout", "", MODEL), "no image given"),
])
def test_bad_input_in_plain_words(star, call, message):
    with pytest.raises(ValueError, match=message):
        call(star)


def test_hub_model_offline_names_the_embedded_model(monkeypatch, star):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="vit-tiny-shapes"):
        compute.explain(star, "rollout", "", "facebook/deit-tiny-patch16-224")


# --------------------------------------------------------------------------------------
#                                   The page
# --------------------------------------------------------------------------------------

def test_page_facts_are_read_from_the_shipped_files():
    from spaces.attribution import app

    text = app._facts_text(options.shipped_facts(MODEL))
    for fact in (f"{CONFIG['image_size']} px input", f"{CONFIG['patch_size']} px", f"{GRID}×{GRID} grid",
                 f"{CONFIG['num_hidden_layers']} layers", f"{CONFIG['num_attention_heads']} heads",
                 f"{METRICS['parameters']:,} parameters", f"{METRICS['accuracy']:.1%}", f"{METRICS['n']:,} held-out"):
        assert fact in text, fact


def test_page_cites_every_paper():
    from spaces.attribution import app

    text = app.HONEST_NOTE
    for citation in ("Jain & Wallace, 2019", "Abnar & Zuidema, 2020", "Chefer, Gur & Wolf, 2021",
                     "Selvaraju et al., 2017", "Sundararajan, Taly & Yan, 2017", "Adebayo et al., 2018",
                     "Goodfellow, Shlens & Szegedy, 2015", f"{options.IG_STEPS} points"):
        assert citation in text, citation


def test_build_has_the_issue_endpoints_and_no_heavy_import():
    import subprocess
    import sys

    code = ("import sys; from spaces.attribution import app; d = app.build(); "
            "info = d.get_api_info()['named_endpoints']; "
            "print([p['parameter_name'] for p in info['/attribution_explain']['parameters']]); "
            "print([p['parameter_name'] for p in info['/attribution_fgsm']['parameters']]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'matplotlib', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[-3:] == ["['image', 'method', 'target']", "['image', 'epsilon', 'target']", "[]"]
