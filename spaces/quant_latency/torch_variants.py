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


# --------------------------------------------------------------------------------------
#   int4 weights (issue 23). torchao 0.18's Int4WeightOnlyConfig needs packed-int4 matmul kernels; where
#   they are missing quantize_ raises, and the row shows that exception. The "intx" configs run anywhere:
#   int4 values kept one per int8 byte (IntxUnpackedToInt8Tensor), so they save no memory over int8 but
#   carry int4's rounding error.
# --------------------------------------------------------------------------------------

def prepare_int4_weight_only(mut: ModelUnderTest, workdir: Path) -> Runner:
    torchao = _torchao()
    from torchao.quantization import Int4WeightOnlyConfig, quantize_

    model = copy.deepcopy(mut.model)
    try:
        quantize_(model, Int4WeightOnlyConfig(group_size=128))
    except Exception as err:  # e.g. "ImportError: Requires mslk >= 1.0.0" on a CPU-only install
        raise VariantUnavailable(f"torchao {torchao.__version__} Int4WeightOnlyConfig(group_size=128) cannot "
                                 f"quantize here: {type(err).__name__}: {err}") from None
    return torch_runner("int4_weight_only", model, f"torchao {torchao.__version__} Int4WeightOnlyConfig, eager")


def _intx_config(variant: str) -> Any:
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    from .options import INT4_GROUP

    if variant == "int4_weight_intx":
        return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(INT4_GROUP))
    return Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(INT4_GROUP))


def _prepare_intx(mut: ModelUnderTest, variant: str) -> Runner:
    torchao = _torchao()
    from torchao.quantization import quantize_

    model = copy.deepcopy(mut.model)
    config = _intx_config(variant)
    quantize_(model, config)
    return torch_runner(variant, model, f"torchao {torchao.__version__} {type(config).__name__}(int4), eager",
                        notes=["int4 values are stored one per int8 byte (IntxUnpackedToInt8Tensor): the size "
                               "is int8's, the rounding int4's"])


def prepare_int4_weight_intx(mut: ModelUnderTest, workdir: Path) -> Runner:
    return _prepare_intx(mut, "int4_weight_intx")


def prepare_int8_act_int4_weight(mut: ModelUnderTest, workdir: Path) -> Runner:
    return _prepare_intx(mut, "int8_act_int4_weight")


# --------------------------------------------------------------------------------------
#   The GPU path (issue 23): fp16 / bf16 on CUDA. The batch is copied to the GPU and the logits back in
#   each timed call; ``.cpu()`` waits for the GPU to finish, so the time covers the whole forward pass.
# --------------------------------------------------------------------------------------

def cuda_unavailable_reason() -> str | None:
    """Why the CUDA variants cannot run here, or None when a GPU is usable."""
    if torch.cuda.is_available():
        return None
    return (f"no CUDA GPU here: torch.cuda.is_available() is False (torch {torch.__version__}, built with "
            f"CUDA {torch.version.cuda})")


def _prepare_cuda(mut: ModelUnderTest, variant: str, dtype: torch.dtype) -> Runner:
    reason = cuda_unavailable_reason()
    if reason:
        raise VariantUnavailable(reason)
    device = torch.device("cuda")
    model = copy.deepcopy(mut.model).to(device=device, dtype=dtype).eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(pixel_values=x.to(device=device, dtype=dtype)).logits.float().cpu()  # (B, classes)

    runner = torch_runner(variant, model, f"PyTorch {torch.__version__} eager on {torch.cuda.get_device_name(0)}, "
                          f"{str(dtype).removeprefix('torch.')}", dtype=dtype,
                          notes=["each call copies the batch to the GPU and the logits back (.cpu() synchronizes)"])
    runner.forward = forward
    return runner


def prepare_cuda_fp16(mut: ModelUnderTest, workdir: Path) -> Runner:
    return _prepare_cuda(mut, "cuda_fp16", torch.float16)


def prepare_cuda_bf16(mut: ModelUnderTest, workdir: Path) -> Runner:
    return _prepare_cuda(mut, "cuda_bf16", torch.bfloat16)
