"""Video transformers' compute functions against independent computations: attention MACs against
``torch.utils.flop_counter.FlopCounterMode`` on instantiated attentions (transformers' VideoMAE self-attention
for the joint pattern, small reference modules with each pattern's reshapes for all three), tubelets against
a stride-(t, p, p) Conv3d, and the input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from spaces.video_attention import compute, options

# --------------------------------------------------------------------------------------
#          Reference attentions: only Q·Kᵀ and A·V, with each pattern's reshapes
# --------------------------------------------------------------------------------------


def _attend(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head attention core over the second-to-last axis of x (..., n, d), q = k = v = x (no projections)."""
    *lead, n, d = x.shape
    q = x.reshape(*lead, n, heads, d // heads).transpose(-3, -2)  # (..., h, n, d/h)
    a = torch.softmax(q @ q.transpose(-1, -2) / (d // heads) ** 0.5, dim=-1)  # (..., h, n, n)
    return (a @ q).transpose(-3, -2).reshape(*lead, n, d)


def _joint(x, layers, heads):  # x: (B, T', S, d)
    b, t, s, d = x.shape
    x = x.reshape(b, t * s, d)
    for _ in range(layers):
        x = _attend(x, heads)
    return x


def _divided(x, layers, heads):  # TimeSformer: time at each position, then space in each time step
    for _ in range(layers):
        x = _attend(x.transpose(1, 2), heads).transpose(1, 2)  # (B, S, T', d): sequences over time
        x = _attend(x, heads)  # (B, T', S, d): sequences over space
    return x


def _factorised(x, layers, heads):  # ViViT model 2: spatial encoder per time step, then temporal encoder
    for _ in range(layers):
        x = _attend(x, heads)  # (B, T', S, d)
    z = x.mean(2)  # (B, T', d): one representation per time step
    for _ in range(layers):
        z = _attend(z, heads)
    return z


REFERENCE = {"joint": _joint, "divided": _divided, "factorised": _factorised}


def _counted_macs(fn, frames, size, patch, tubelet, d, layers, heads) -> int:
    t, g = frames // tubelet, size // patch
    x = torch.empty(1, t, g * g, d, device="meta")  # shapes only: ViT-B sizes cost nothing
    with FlopCounterMode(display=False) as counter:
        fn(x, layers, heads)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("mode", options.MODE_NAMES)
@pytest.mark.parametrize("frames, size, patch, tubelet, d, layers, heads", [
    (8, 224, 16, 2, 768, 12, 12),  # the table (ViT-B width) at 8, 16 and 32 frames
    (16, 224, 16, 2, 768, 12, 12),
    (32, 224, 16, 2, 768, 12, 12),
    (8, 32, 8, 2, 16, 2, 2),
    (12, 48, 16, 3, 24, 3, 4),
    (4, 16, 4, 1, 8, 1, 1),
])
def test_attention_macs_match_a_flop_counter(mode, frames, size, patch, tubelet, d, layers, heads):
    counted = _counted_macs(REFERENCE[mode], frames, size, patch, tubelet, d, layers, heads)
    s = compute.attention_cost(frames, size, patch, tubelet, d, layers, mode)
    assert s["attention_macs"] == counted
    assert s["tokens"] == (frames // tubelet) * (size // patch) ** 2


def test_joint_macs_match_transformers_videomae_self_attention():
    """Count the batched matrix products (Q·Kᵀ, A·V) inside VideoMAE's eager self-attention modules; the q, k, v
    and output projections are linear layers (addmm / mm) and stay out of the count."""
    from transformers import VideoMAEConfig, VideoMAEModel

    cfg = VideoMAEConfig(image_size=32, patch_size=8, num_frames=8, tubelet_size=2, hidden_size=32,
                         num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    cfg._attn_implementation = "eager"
    model = VideoMAEModel(cfg).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(pixel_values=torch.randn(1, 8, 3, 32, 32))
    counts = counter.get_flop_counts()
    attention = sum(v for name, ops in counts.items() if name.endswith("attention.attention")
                    for op, v in ops.items() if "bmm" in str(op))
    assert attention > 0
    assert compute.attention_cost(8, 32, 8, 2, 32, 2, "joint")["attention_macs"] == attention // 2


def test_memory_is_the_matrices_a_reference_layer_materialises():
    """fp32 bytes of the softmax outputs of one layer with one head, recorded from the reference modules."""
    frames, size, patch, tubelet, d = 8, 32, 8, 2, 8
    for mode in options.MODE_NAMES:
        sizes: list[int] = []
        real = torch.softmax

        def record(x, dim, real=real, sizes=sizes):
            sizes.append(x.numel())
            return real(x, dim=dim)

        torch.softmax = record
        try:
            REFERENCE[mode](torch.randn(1, frames // tubelet, (size // patch) ** 2, d), 1, 1)
        finally:
            torch.softmax = real
        layer = sizes if mode == "divided" else sizes[:1]  # divided: both attentions of one block
        s = compute.attention_cost(frames, size, patch, tubelet, d, 1, mode)
        assert s["attention_matrix_bytes"] == 4 * sum(layer)


def test_vit_b_table_and_ratio():
    rows = compute.cost_table([8, 16, 32], 224, 16, 2, 768, 12)
    for row in rows:
        t, s = row["frames"] // 2, 196
        # joint / divided = N² / (S·T'² + T'·S²) = T'·S / (T' + S)
        assert row["joint / divided MACs"] == pytest.approx(t * s / (t + s), abs=0.01)
        assert row["tokens"] == t * s
    assert [r["joint GMACs"] for r in rows] == pytest.approx([2 * 12 * 768 * (r["tokens"] ** 2) / 1e9 for r in rows],
                                                             abs=1e-3)


def test_curves_grow_and_stop_at_the_caps():
    c = compute.cost_curves(16, 224, 16, 2, 768, 12)
    for m in options.MODE_NAMES:
        macs = [v for v in c.by_frames[m]["macs"] if v is not None]
        assert macs == sorted(macs) and len(macs) >= 3
    assert None in c.by_size["joint"]["macs"]  # 2048 px joint attention is beyond the memory cap
    assert c.by_size["factorised"]["macs"][0] is not None


@pytest.mark.parametrize("args, match", [
    ((15, 224, 16, 2, 768, 12, "joint"), "frames 15 is not divisible by the tubelet 2"),
    ((16, 225, 16, 2, 768, 12, "joint"), "image size 225 is not divisible by patch size 16"),
    ((0, 224, 16, 2, 768, 12, "joint"), "frames must be an integer from 1 to 4096, got 0"),
    ((16, 224, 16, 2, -768, 12, "joint"), "hidden size must be an integer from 1 to 16384, got -768"),
    ((16, 224, 16, 2, 768, 1000, "joint"), "layers must be an integer from 1 to 256, got 1000"),
    ((4096, 4096, 4, 1, 768, 12, "divided"), "tokens .* is more than the cap of 200,000"),
    ((256, 448, 14, 2, 768, 12, "joint"), "64.0 GiB .* more than the cap of 16 GiB"),
    ((16, 224, 16, 2, 768, 12, "space"), "unknown mode 'space'; choose one of"),
    ((16, 224, 16, 2.5, 768, 12, "joint"), "tubelet must be an integer"),
])
def test_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        compute.attention_cost(*args)


def test_the_memory_cap_spares_the_factorised_pattern():
    s = compute.attention_cost(256, 448, 14, 2, 768, 12, "factorised")  # the joint call above is refused
    assert s["attention_matrix_bytes"] <= options.MAX_MATRIX_BYTES


# --------------------------------------------------------------------------------------
#                                   Tubelets and clips
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("patch, tubelet", [(8, 2), (4, 4), (16, 1)])
def test_tubelets_are_what_a_strided_conv3d_sees(patch, tubelet):
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    tok = compute.tubelets(clip, patch, tubelet)
    conv = torch.nn.Conv3d(3, 5, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch), bias=False)
    x = torch.from_numpy(clip).float().permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
    with torch.no_grad():
        want = conv(x)[0].permute(1, 2, 3, 0)  # (T', g, g, 5)
        w = conv.weight.permute(0, 2, 3, 4, 1).reshape(5, -1)  # (5, t·p·p·3) in (t, p, p, channel) order
        got = torch.from_numpy(tok.vectors).float() @ w.T
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-2)
    assert tok.tokens == (16 // tubelet) * (32 // patch) ** 2 == tok.stats["tokens"]


def test_tubelets_refuse_a_bad_tiling():
    clip = np.zeros((16, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="not divisible by the tubelet"):
        compute.tubelets(clip, 8, 3)
    with pytest.raises(ValueError, match="image size 32 is not divisible by patch size 5"):
        compute.tubelets(clip, 5, 2)


def test_pick_clip_follows_the_test_split_and_the_direction():
    from shared.data.moving_shapes import clip_spec_at, render_clip

    i, spec, clip = compute.pick_clip(3, "down")
    assert i >= 3 and spec.direction_name == "down" and spec == clip_spec_at("test", i)
    assert np.array_equal(clip, render_clip(spec, 32))
    assert all(clip_spec_at("test", j).direction_name != "down" for j in range(3, i))
    with pytest.raises(ValueError, match="unknown direction 'sideways'"):
        compute.pick_clip(0, "sideways")
    with pytest.raises(ValueError, match="clip index must be an integer"):
        compute.pick_clip(-1)
