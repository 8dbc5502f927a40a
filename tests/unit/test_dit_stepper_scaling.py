"""dit_stepper, issue 23: the DiT scaling table, the conditioning blocks, U-Net against DiT and the two paths.

Each count is checked against an independent computation: parameters and MACs against hand formulas read
off the architecture (Peebles & Xie, 2023, Table 1 sizes), the counted GMACs against the paper's Table 4
(which counts a multiply-add as one flop), the U-Net's FlopCounterMode count against forward hooks on
every Conv2d, Linear and attention, and the probability paths against their closed forms with the cosine
schedule recomputed from Nichol & Dhariwal (2021).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spaces.dit_stepper import compute, options

SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}  # Table 1
C, OUT, K, T_EMB = 4, 8, 1000, 256  # latent channels, output channels, classes, sinusoidal timestep width


@pytest.fixture(scope="module")
def table():
    return compute.scaling_table()


def _embedder(d: int) -> int:
    """One CombinedTimestepLabelEmbeddings: timestep MLP 256 -> d -> d, and a (classes + null) x d table."""
    return (T_EMB * d + d) + (d * d + d) + (K + 1) * d


def _hand_params(depth: int, d: int, p: int) -> int:
    patch = C * p * p * d + d
    block = (4 * d * d + 4 * d) + (8 * d * d + 5 * d) + (6 * d * d + 6 * d) + _embedder(d)  # attn, MLP, adaLN
    final = (d * 2 * d + 2 * d) + (d * p * p * OUT + p * p * OUT)
    return patch + depth * block + final


def _hand_macs(depth: int, d: int, p: int) -> int:
    """Batch 1: per block qkv + out (4·N·d²), MLP (8·N·d²), QKᵀ and AV (2·N²·d), adaLN (6·d²) and the block's
    own timestep MLP (256·d + d²); the final layer reruns block 0's MLP, then 2d² and the output projection."""
    n = (32 // p) ** 2
    block = 12 * n * d * d + 2 * n * n * d + 6 * d * d + (T_EMB * d + d * d)
    return depth * block + (T_EMB * d + d * d) + n * C * p * p * d + 2 * d * d + n * d * p * p * OUT


# --------------------------------------------------------------------------------------
#                                   The scaling table
# --------------------------------------------------------------------------------------

def test_scaling_rows_are_the_twelve_dits(table):
    assert [(r["model"], r["patch"]) for r in table["rows"]] == [
        (f"DiT-{s}/{p}", p) for s in SIZES for p in (2, 4, 8)]
    assert all(set(r) == {"model", "patch", "params", "gmacs"} for r in table["rows"])


def test_scaling_params_and_macs_match_the_hand_formulas(table):
    for row, d in zip(table["rows"], table["details"], strict=True):
        depth, width, _ = SIZES[d["size"]]
        assert row["params"] == _hand_params(depth, width, row["patch"]), row["model"]
        assert round(row["gmacs"] * 1e9) == _hand_macs(depth, width, row["patch"]), row["model"]
        one = _hand_params(depth, width, row["patch"]) - (depth - 1) * _embedder(width)
        assert d["params_shared_embedders"] == one


def test_scaling_matches_the_papers_table_4(table):
    """Table 4's Gflops are MACs (one flop per multiply-add). With one shared embedder the count agrees to
    the paper's two decimals plus 0.1%; diffusers' own count (FlopCounterMode / 2) within 1%. Parameters
    agree with the paper's millions once the embedder is shared."""
    for row, d in zip(table["rows"], table["details"], strict=True):
        paper_gflops, paper_params, _ = options.PAPER_TABLE4[row["model"]]
        assert abs(d["gmacs_shared_embedders"] - paper_gflops) <= 0.005 + 1e-3 * paper_gflops, row["model"]
        assert row["gmacs"] == pytest.approx(paper_gflops, rel=0.01), row["model"]
        assert abs(d["params_shared_embedders"] / 1e6 - paper_params) < 0.7, row["model"]


def test_the_embedder_copies_explain_750m_against_675m(table):
    g = table["embedder_gap"]
    d = 1152
    assert g["embedder_params_per_block"] == _embedder(d) == 2_777_472
    assert g["extra_copies"] == 27 and g["extra_params"] == 27 * _embedder(d)
    assert g["params_diffusers"] - g["extra_params"] == g["params_one_embedder"]
    assert round(g["params_diffusers"] / 1e6) == 750 and round(g["params_one_embedder"] / 1e6) == 675


def test_dit_cost_is_cached():
    assert compute.dit_cost("S", 8) is compute.dit_cost("S", 8)


# --------------------------------------------------------------------------------------
#                                   Conditioning blocks
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", options.CONDITIONING_BLOCKS)
def test_conditioning_block_against_the_hand_formula(kind):
    d, heads, n, m = 64, 4, 16, 2
    c = compute.conditioning_cost(kind, d, heads, n)
    core_params = (4 * d * d + 4 * d) + (8 * d * d + 5 * d)  # self-attention and MLP, with biases
    core_macs = lambda tokens: 12 * tokens * d * d + 2 * tokens * tokens * d  # noqa: E731
    if kind == "adaLN-Zero":
        assert c["params"] == core_params + 6 * d * d + 6 * d + _embedder(d)
        assert c["macs"] == core_macs(n) + 6 * d * d + T_EMB * d + d * d
    elif kind == "cross-attention":
        assert c["params"] == core_params + (4 * d * d + 4 * d) + 3 * 2 * d  # + cross-attention, 3 affine LNs
        assert c["macs"] == core_macs(n) + 2 * n * d * d + 2 * m * d * d + 2 * n * m * d
    else:
        assert c["params"] == core_params + 2 * 2 * d
        assert c["macs"] == core_macs(n + m) and c["sequence"] == n + m


def test_conditioning_whole_model_estimates_match_the_paper():
    """The DiT-XL/2 rows of Table 4: Gflops within 0.1%, parameters within 1%."""
    r = compute.conditioning_table("XL", 2)
    for row in r["rows"]:
        gflops, params, _ = options.PAPER_CONDITIONING[row["block"]]
        assert row["model_gmacs"] == pytest.approx(gflops, rel=1e-3), row["block"]
        assert row["model_params"] / 1e6 == pytest.approx(params, rel=0.01), row["block"]
    cross = next(row for row in r["rows"] if row["block"] == "cross-attention")
    assert 0.14 < cross["overhead"] < 0.17  # the paper: "roughly a 15% overhead"


# --------------------------------------------------------------------------------------
#                                   U-Net against DiT
# --------------------------------------------------------------------------------------

def _hook_macs(model, *args, **kwargs) -> int:
    """MACs by forward hooks: every Linear and Conv2d, and QKᵀ + AV (2·N²·inner) for every attention."""
    from diffusers.models.attention_processor import Attention

    total = [0]

    def linear(m, inputs, out):
        total[0] += out.numel() * m.in_features

    def conv(m, inputs, out):
        total[0] += out.numel() * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups

    def attention(m, inputs, kw, out):
        h = inputs[0] if inputs else kw["hidden_states"]
        n = h.shape[-1] * h.shape[-2] if h.ndim == 4 else h.shape[1]
        total[0] += 2 * h.shape[0] * n * n * m.inner_dim

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, Attention):
            hooks.append(m.register_forward_hook(attention, with_kwargs=True))
    with torch.no_grad():
        model(*args, **kwargs)
    for h in hooks:
        h.remove()
    return total[0]


def test_unet_against_forward_hooks_and_its_neighbours():
    r = compute.unet_vs_dit("S")
    u, d = r["unet"], r["dit"]
    unet = compute.build_unet_on_meta(compute.unet_config(u["base"]))
    x = torch.empty(1, 4, 32, 32, device="meta")
    assert u["macs"] == _hook_macs(unet, x, torch.zeros(1, device="meta"),
                                   class_labels=torch.zeros(1, dtype=torch.long, device="meta"))
    # the chosen width is the nearest multiple of 32 in parameters (each neighbour built and counted)
    target = d["params_shared_embedders"]
    for other in (u["base"] - 32, u["base"] + 32):
        if other >= 32:
            assert abs(u["params"] - target) <= abs(compute.unet_params(other) - target)
    assert d["macs"] == compute.dit_cost("S", 2)["macs"] and u["resolutions"] == [32, 16, 8, 4]


# --------------------------------------------------------------------------------------
#                                   The two probability paths
# --------------------------------------------------------------------------------------

def _cosine_alpha_bar(T: int = 1000) -> np.ndarray:
    """Nichol & Dhariwal (2021) eq. 17, betas capped at 0.999."""
    f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return np.cumprod(1 - np.array([min(1 - f(t + 1) / f(t), 0.999) for t in range(T)]))


def test_paths_follow_their_closed_forms():
    config = options.shipped_json("scheduler/scheduler_config.json")
    if not config:
        pytest.skip("dit-tiny-shapes not trained")
    steps, seed = 7, 3
    x0 = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    pc = compute.path_comparison(x0, steps, seed, config)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).double()
    ab = _cosine_alpha_bar()
    T = 1000
    # "trailing" spacing: t = round(T - k·T/steps) - 1
    assert pc.ddim_timesteps == [int(round(T - k * T / steps)) - 1 for k in range(steps)]
    assert pc.vp_state_timesteps == pc.ddim_timesteps + [-1]
    for state, t in zip(pc.vp_states, pc.vp_state_timesteps, strict=True):
        a_t = ab[t] if t >= 0 else 1.0
        expected = math.sqrt(a_t) * x0.double() + math.sqrt(1 - a_t) * eps
        assert torch.allclose(state.double(), expected, atol=1e-5)
    sigmas = np.append(np.linspace(1.0, 1 / T, steps), 0.0)
    np.testing.assert_allclose(pc.flow_sigmas, sigmas, atol=1e-6)
    for state, s in zip(pc.rf_states, sigmas, strict=True):
        assert torch.allclose(state.double(), (1 - s) * x0.double() + s * eps, atol=1e-5)
    # length of the VP polyline over every training step, against the straight segment
    a, b = np.sqrt(ab), np.sqrt(1 - ab)
    pts = a[:, None] * x0.double().flatten().numpy() + b[:, None] * eps.flatten().numpy()
    ratio = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum() / float((eps - x0.double()).norm())
    assert pc.length_ratio_vp == pytest.approx(ratio, rel=1e-4) and pc.length_ratio_vp > 1.01
    assert pc.length_ratio_rf == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("sigma", [0.2, 0.5, 0.8])
def test_flow_sigma_maps_to_the_ddpm_point_on_the_same_ray(sigma):
    ab_table = _cosine_alpha_bar()
    ab, t = compute.vp_alpha_bar_for_sigma(sigma, ab_table)
    a, b = math.sqrt(ab), math.sqrt(1 - ab)
    assert b / (a + b) == pytest.approx(sigma, rel=1e-9)  # x_vp / (a + b) lies at σ
    assert np.interp(t, np.arange(1000), ab_table) == pytest.approx(ab, rel=1e-3)
    assert compute.vp_alpha_bar_for_sigma(1.0, ab_table) == (ab_table[-1], 999.0)
    assert compute.vp_alpha_bar_for_sigma(0.0, ab_table) == (ab_table[0], 0.0)


def test_one_flow_step_lands_on_the_guided_x0():
    """With one step (σ: 1 -> 0), x = ε − v = ε − ε̂ + x̂₀; recomputed from two separate transformer calls."""
    if not options.shipped_json("config.json"):
        pytest.skip("dit-tiny-shapes not trained")
    transformer, parts = compute.load_model(compute.TINY_MODEL)
    fs = compute.flow_sample("cross", 1, 2.0, 4)
    c, size = transformer.config.in_channels, transformer.config.sample_size
    eps = torch.randn((1, c, size, size), generator=torch.Generator().manual_seed(4))
    ab = float(_cosine_alpha_bar()[-1])
    a, b = math.sqrt(ab), math.sqrt(1 - ab)
    x_vp = (a + b) * eps
    t = torch.tensor([999.0])
    with torch.no_grad():
        cond = transformer(x_vp, timestep=t, class_labels=torch.tensor([parts.class_names.index("cross")])).sample
        null = transformer(x_vp, timestep=t, class_labels=torch.tensor([transformer.config.num_embeds_ada_norm])).sample
    x0 = (null + 2.0 * (cond - null)).clamp(-1, 1)  # the model predicts x₀; its config clips it
    eps_hat = (x_vp - a * x0) / b
    assert fs.sigmas == [1.0, 0.0] and fs.vp_timesteps == [999.0]
    assert torch.allclose(fs.final, (eps - eps_hat + x0)[0], atol=1e-4)
    assert torch.equal(fs.noise, eps[0])


# --------------------------------------------------------------------------------------
#                                   Bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: compute.dit_config("XXL", 2), "unknown DiT size 'XXL'"),
    (lambda: compute.dit_config("XL", 3), r"unknown patch size 3; choose one of \[2, 4, 8\]"),
    (lambda: compute.dit_config("XL", 0), "patch size must be an integer from 2 to 8, got 0"),
    (lambda: compute.dit_config("XL", -2), "patch size must be an integer from 2 to 8, got -2"),
    (lambda: compute.dit_config("XL", 16), "patch size must be an integer from 2 to 8, got 16"),
    (lambda: compute.dit_config("XL", 2.5), "patch size must be an integer from 2 to 8, got 2.5"),
    (lambda: compute.dit_config("XL", float("nan")), "patch size must be an integer from 2 to 8, got nan"),
    (lambda: compute.conditioning_table("XL", "nan"), "patch size must be an integer"),
    (lambda: compute.conditioning_cost("adaLN", 64, 4, 16), "unknown conditioning 'adaLN'"),
    (lambda: compute.unet_vs_dit(["XL"]), "unknown DiT size"),
    (lambda: compute.unet_config(0), "U-Net base channels must be an integer from 32 to 1024, got 0"),
    (lambda: compute.unet_config(-64), "U-Net base channels must be an integer from 32 to 1024"),
    (lambda: compute.unet_config(2048), "U-Net base channels must be an integer from 32 to 1024, got 2048"),
    (lambda: compute.unet_config(64.5), "U-Net base channels must be an integer"),
    (lambda: compute.unet_config(float("nan")), "U-Net base channels must be an integer"),
    (lambda: compute.unet_config(100), "multiple of 32"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), 0, 0, {}), "path steps must be an integer from 1 to 50, got 0"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), -3, 0, {}), "path steps must be an integer from 1 to 50"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), 51, 0, {}), "path steps must be an integer from 1 to 50, got 51"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), 2.5, 0, {}), "path steps must be an integer from 1 to 50, got 2.5"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), "nan", 0, {}), "path steps must be an integer"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), 5, -1, {}), "seed must be an integer from 0"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), 5, 1.5, {}), "seed must be an integer from 0"),
    (lambda: compute.path_comparison(torch.zeros(3, 4, 4), 5, 2**31, {}), "seed must be an integer from 0"),
    (lambda: compute.flow_sample("star", 0, 3.0, 0), "flow steps must be an integer from 1 to 50, got 0"),
    (lambda: compute.flow_sample("star", -1, 3.0, 0), "flow steps must be an integer from 1 to 50, got -1"),
    (lambda: compute.flow_sample("star", 51, 3.0, 0), "flow steps must be an integer from 1 to 50, got 51"),
    (lambda: compute.flow_sample("star", 2.5, 3.0, 0), "flow steps must be an integer from 1 to 50, got 2.5"),
    (lambda: compute.flow_sample("star", "nan", 3.0, 0), "flow steps must be an integer"),
    (lambda: compute.flow_sample("star", 5, "nan", 0), "guidance scale must be a finite number from 0 to 20, got nan"),
    (lambda: compute.flow_sample("star", 5, -1, 0), "guidance scale must be a finite number from 0 to 20, got -1"),
    (lambda: compute.flow_sample("star", 5, 21, 0), "guidance scale must be a finite number from 0 to 20, got 21"),
    (lambda: compute.flow_sample("star", 5, 3.0, -1), "seed must be an integer from 0"),
    (lambda: compute.flow_sample("star", 5, 3.0, 0.5), "seed must be an integer from 0"),
])
def test_bad_inputs_name_the_input_and_what_is_allowed(call, match):
    with pytest.raises(ValueError, match=match):
        call()
