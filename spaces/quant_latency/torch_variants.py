"""The PyTorch variants: fp32 as trained, bf16, and int8 through torchao (and the deprecated torch.ao).

torchao ``quantize_`` replaces each ``nn.Linear`` weight in place with an ``Int8Tensor`` (int8 ``qdata`` and
a scale per output channel). ``Int8DynamicActivationInt8WeightConfig`` also quantizes each linear layer's
input on the fly, "per-token" in torchao's words (one scale per row of the activation);
``Int8WeightOnlyConfig`` keeps activations in fp32 and converts the int8 weights to fp32 for each matmul.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import torch

from .runners import Runner, VariantUnavailable, torch_runner
from .subjects import ModelUnderTest


def _torchao() -> Any:
    try:
        import torchao
        import torchao.quantization  # noqa: F401
    except Exception as err:  # ImportError, or a torchao build that does not match this torch
        raise VariantUnavailable(f"torchao is not usable here ({type(err).__name__}: {err})") from None
    return torchao


def prepare_fp32(mut: ModelUnderTest, workdir: Path) -> Runner:
    return torch_runner("fp32", mut.model, f"PyTorch {torch.__version__} eager, float32")


def prepare_bf16(mut: ModelUnderTest, workdir: Path) -> Runner:
    model = copy.deepcopy(mut.model).to(torch.bfloat16)  # .to() on a module is in place: copy first
    return torch_runner("bf16", model, f"PyTorch {torch.__version__} eager, bfloat16", dtype=torch.bfloat16)


def _prepare_int8_legacy(mut: ModelUnderTest, variant: str, notes: list[str]) -> Runner:
    model = copy.deepcopy(mut.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.ao.quantization is deprecated": stated in the notes instead
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    notes = notes + ["torch.ao.quantization is deprecated in favour of torchao; it still runs in torch "
                     f"{torch.__version__} with a deprecation warning"]
    return torch_runner(variant, model, f"torch.ao.quantization.quantize_dynamic (torch {torch.__version__})",
                        notes=notes)


def prepare_int8_dynamic(mut: ModelUnderTest, workdir: Path) -> Runner:
    try:
        torchao = _torchao()
    except VariantUnavailable as err:
        return _prepare_int8_legacy(mut, "int8_dynamic", [f"{err}; fell back to torch.ao quantize_dynamic"])
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    model = copy.deepcopy(mut.model)
    quantize_(model, Int8DynamicActivationInt8WeightConfig())  # every nn.Linear, in place
    return torch_runner("int8_dynamic", model,
                        f"torchao {torchao.__version__} Int8DynamicActivationInt8WeightConfig, eager")


def prepare_int8_weight_only(mut: ModelUnderTest, workdir: Path) -> Runner:
    torchao = _torchao()  # torch.ao has no int8 weight-only Linear for CPU: no honest fallback
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = copy.deepcopy(mut.model)
    quantize_(model, Int8WeightOnlyConfig())
    return torch_runner("int8_weight_only", model, f"torchao {torchao.__version__} Int8WeightOnlyConfig, eager")


def prepare_int8_dynamic_legacy(mut: ModelUnderTest, workdir: Path) -> Runner:
    return _prepare_int8_legacy(mut, "int8_dynamic_legacy", [])
