"""shared.cnn_models: torchvision's model definitions import beside the CPU torch and are the real ones."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def tvm():
    from shared.cnn_models import torchvision_models

    return torchvision_models()


def resnet18_parameters() -> int:
    """ResNet-18 (He et al., 2016, Table 1) written out: 7x7 stem, four stages of two basic blocks
    (two 3x3 convolutions, no bias, each followed by a BatchNorm of 2 parameters per channel), a 1x1
    projection shortcut with BatchNorm where the width changes, and a 512 -> 1000 linear head."""
    bn = 2  # weight and bias per channel
    total = 3 * 64 * 7 * 7 + bn * 64  # stem
    c_in = 64
    for c in (64, 128, 256, 512):
        for block in range(2):
            first = c_in if block == 0 else c
            total += first * c * 9 + bn * c + c * c * 9 + bn * c
            if block == 0 and first != c:
                total += first * c + bn * c  # the projection shortcut
        c_in = c
    return total + 512 * 1000 + 1000


def test_resnet18_parameter_count_equals_the_written_out_architecture(tvm):
    with torch.device("meta"):
        model = tvm.resnet18(weights=None)
    assert sum(p.numel() for p in model.parameters()) == resnet18_parameters() == 11_689_512


def test_meta_models_allocate_no_memory(tvm):
    with torch.device("meta"):
        model = tvm.vgg16(weights=None)
    assert all(p.is_meta for p in model.parameters())


def test_a_real_forward_on_a_small_input_has_the_right_shape(tvm):
    torch.manual_seed(0)
    model = tvm.resnet18(weights=None, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_transformers_still_loads_a_model_after_the_import(tvm):
    """transformers imports torchvision whenever it can find it; this one must stay out of its way."""
    from transformers import ViTConfig, ViTModel

    assert ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                              image_size=32, patch_size=16)).config.hidden_size == 32


def test_a_private_torchvision_stays_invisible_to_transformers():
    """Installed in the private folder (as the Makefile does with PyPI's CUDA wheel), torchvision must not be
    findable after use: transformers imports any torchvision it finds, and this one's ops cannot load."""
    import importlib.util
    import subprocess
    import sys

    from shared import cnn_models

    assert cnn_models.installed(), "make install puts torchvision in site-packages or " + str(cnn_models.PRIVATE_DIR)
    code = ("import importlib.util, sys; from shared.cnn_models import torchvision_models; "
            "m = torchvision_models(); m.resnet18(); private = importlib.util.find_spec('torchvision') is None; "
            "from transformers.utils import is_torchvision_available; "
            "print(private, is_torchvision_available(), any(n.startswith('torchvision') for n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if importlib.util.find_spec("torchvision") is None:  # the private folder: hidden again after the import
        assert out == ["True", "False", "False"]
