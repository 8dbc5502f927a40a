"""shared/vit_cost.py, the counter the ViT anatomy page and the patch explorer share: each count against an
independent one (explicit products written out here, forward hooks on a real CPU model, PyTorch's own
storages), never against the code under test.
"""

from __future__ import annotations

import pytest
import torch

from shared import vit_cost

SMALL = dict(hidden_size=64, num_layers=2, num_heads=4, mlp_dim=128, image_size=32, patch_size=8, num_classes=10)
WIDE_MLP = dict(hidden_size=32, num_layers=3, num_heads=2, mlp_dim=256, image_size=32, patch_size=4, num_classes=5)


def _peak_by_hand(c: dict, batch: int, b: int) -> int:
    """The largest set of activations alive at once in transformers' eager ViT, L >= 2 (read off the forward):

    the input image C·S², the attention probabilities H·T² (a block returns them, so they live through its MLP),
    and either the attention phase (embeddings output, block input, LN output, Q, K, V, A·V, its transposed copy:
    8·T·D) or the MLP phase (three residual tensors and the LN output 4·T·D, fc1 and GELU outputs 2·T·M)."""
    t = (c["image_size"] // c["patch_size"]) ** 2 + 1
    d, m, h = c["hidden_size"], c["mlp_dim"], c["num_heads"]
    image = 3 * c["image_size"] ** 2
    return batch * b * (image + h * t * t + max(8 * t * d, 4 * t * d + 2 * t * m))


@pytest.mark.parametrize("c", [SMALL, WIDE_MLP], ids=["attention-bound", "mlp-bound"])
@pytest.mark.parametrize("batch, b", [(1, 4), (3, 2), (5, 1)])
def test_inference_peak_against_the_hand_count(c, batch, b):
    model = vit_cost.meta_model(c)
    assert vit_cost.peak_inference_bytes(model, c["image_size"], batch, b) == _peak_by_hand(c, batch, b)


def test_saved_activations_against_real_storages_and_precision_scaling():
    model = vit_cost.meta_model(SMALL)
    fp32 = vit_cost.activation_bytes(model, 32, 2)
    assert vit_cost.activation_bytes(model, 32, 2, bytes_per_value=2) * 2 == fp32
    real = torch.nn.Module.to_empty(vit_cost.meta_model(SMALL), device="cpu")  # same graph, real storages
    weights = {p.untyped_storage().data_ptr() for p in real.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in weights:
            storages[st.data_ptr()] = st.nbytes() // t.element_size() * 4
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        real(pixel_values=torch.randn(2, 3, 32, 32))
    assert fp32 == sum(storages.values())


def test_count_against_forward_hooks_on_a_real_model():
    """MACs of every Linear and Conv2d from hooks, plus QKᵀ and A·V per head, per component."""
    from transformers import ViTForImageClassification

    torch.manual_seed(0)
    model = ViTForImageClassification(vit_cost.vit_config(SMALL)).eval()
    by_component = {"patch embedding": 0, "attention": 0, "MLP": 0, "head": 0}
    names = {m: n for n, m in model.named_modules()}

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels if isinstance(module, torch.nn.Conv2d) \
            else module.in_features
        n = names[module]
        part = ("patch embedding" if "patch_embeddings" in n else "attention" if ".attention." in n
                else "MLP" if ".mlp." in n else "head")
        by_component[part] += output.numel() * k

    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(pixel_values=torch.randn(1, 3, 32, 32))
    t, hd = 17, 16
    by_component["attention"] += 2 * SMALL["num_layers"] * SMALL["num_heads"] * t * t * hd
    counted = vit_cost.count(vit_cost.meta_model(SMALL), 32)
    assert {k: counted["macs_breakdown"][k] for k in by_component} == by_component
    assert counted["macs"] == sum(by_component.values()) and counted["flops"] == 2 * counted["macs"]
    assert counted["params"] == sum(p.numel() for p in model.parameters())


def test_hand_formula_matches_the_count():
    for c in (SMALL, WIDE_MLP):
        counted = vit_cost.count(vit_cost.meta_model(c), c["image_size"])
        hand = vit_cost.hand_formula(c)
        assert hand["params"] == counted["breakdown"] and hand["macs"] == counted["macs_breakdown"]


@pytest.mark.parametrize("change, match", [
    ({"hidden_size": 0}, "hidden size must be an integer from 1 to 8192, got 0"),
    ({"num_layers": -1}, "num layers must be an integer"),
    ({"mlp_dim": float("nan")}, "mlp dim must be an integer"),
    ({"patch_size": 2.5}, "patch size must be an integer"),
    ({"num_heads": 129}, "num heads must be an integer from 1 to 128"),
    ({"num_heads": 5}, "not divisible by the number of heads"),
])
def test_check_config_refuses_clearly(change, match):
    with pytest.raises(ValueError, match=match):
        vit_cost.check_config(**{**SMALL, **change})
