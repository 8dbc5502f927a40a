"""A prepared variant (``Runner``) and what can be read off it: serialized size and how its weights are stored."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch


class VariantUnavailable(Exception):
    """This variant cannot run here; the message says why (shown to the user, not hidden)."""


@dataclass
class Runner:
    """One prepared variant: what runs, its serialized size, and a forward pixels -> fp32 logits."""

    variant: str
    backend: str  # what actually runs, with library versions
    size_mb: float
    forward: Callable[[torch.Tensor], torch.Tensor]  # (B, 3, H, W) float32 -> (B, classes) float32
    weight_storage: dict[str, int]  # dtype the linear layers' weights are stored in -> number of layers
    notes: list[str] = field(default_factory=list)
    module: torch.nn.Module | None = None  # the PyTorch model that runs, if any
    onnx_path: Path | None = None  # the ONNX file that runs, if any


def serialized_mb(module: torch.nn.Module) -> float:
    """Bytes of ``torch.save(state_dict)``: what a user would ship, packed int8 weights included."""
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell() / 1e6


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def stored_dtype(weight: torch.Tensor) -> str:
    """The dtype a weight's numbers are kept in: torchao's Int8Tensor keeps int8 ``qdata`` (and scales)
    behind a float32 dtype; a torch.ao quantized tensor (qint8) keeps int8 integers; torchao's
    IntxUnpackedToInt8Tensor keeps int4 values in int8 ``qdata`` ("int4 (in int8 bytes)")."""
    if hasattr(weight, "qdata"):
        target = getattr(weight, "target_dtype", None)  # torchao intx: int4 values kept in int8 bytes
        if isinstance(target, torch.dtype) and target != weight.qdata.dtype:
            return f"{_dtype_name(target)} (in {_dtype_name(weight.qdata.dtype)} bytes)"
        return _dtype_name(weight.qdata.dtype)
    if weight.is_quantized:
        return _dtype_name(weight.int_repr().dtype)
    return _dtype_name(weight.dtype)


def linear_weight_storage(module: torch.nn.Module) -> dict[str, int]:
    """{stored dtype: number of linear layers}, over ``nn.Linear`` and torch.ao's dynamic quantized Linear
    (whose ``weight`` is a method returning the unpacked qint8 tensor)."""
    counts: Counter[str] = Counter()
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            counts[stored_dtype(m.weight)] += 1
        elif type(m).__module__.startswith("torch.ao.nn.quantized") and callable(getattr(m, "weight", None)):
            counts[stored_dtype(m.weight())] += 1
    return dict(counts)


def torch_runner(variant: str, module: torch.nn.Module, backend: str, dtype: torch.dtype = torch.float32,
                 notes: list[str] | None = None) -> Runner:
    """A runner around a transformers classifier: pixels cast to ``dtype``, fp32 logits out."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(pixel_values=x.to(dtype)).logits.float()  # (B, classes)

    return Runner(variant, backend, serialized_mb(module), forward, linear_weight_storage(module),
                  notes or [], module=module)
