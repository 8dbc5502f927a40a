"""Every variant by name, prepared once per model and kept for the most recent model only."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from . import onnx_variants, torch_variants
from .runners import Runner, VariantUnavailable
from .subjects import ModelUnderTest

PREPARE: dict[str, Callable[[ModelUnderTest, Path], Runner]] = {
    "fp32": torch_variants.prepare_fp32,
    "bf16": torch_variants.prepare_bf16,
    "int8_dynamic": torch_variants.prepare_int8_dynamic,
    "int8_weight_only": torch_variants.prepare_int8_weight_only,
    "onnx_fp32": onnx_variants.prepare_onnx_fp32,
    "onnx_int8": onnx_variants.prepare_onnx_int8,
    "int8_dynamic_legacy": torch_variants.prepare_int8_dynamic_legacy,
    "int4_weight_only": torch_variants.prepare_int4_weight_only,
    "int4_weight_intx": torch_variants.prepare_int4_weight_intx,
    "int8_act_int4_weight": torch_variants.prepare_int8_act_int4_weight,
    "cuda_fp16": torch_variants.prepare_cuda_fp16,
    "cuda_bf16": torch_variants.prepare_cuda_bf16,
}

# Prepared variants of the most recent model only (a ViT-B/16 set is ~1 GB): (model, variant) -> Runner
# or the reason it is unavailable.
_PREPARED: dict[tuple[str, str], Runner | str] = {}
_WORKDIRS: dict[str, tempfile.TemporaryDirectory] = {}


def _forget_other_models(name: str) -> None:
    if any(n != name for n, _ in _PREPARED) or any(n != name for n in _WORKDIRS):
        _PREPARED.clear()
        for tmp in _WORKDIRS.values():
            tmp.cleanup()
        _WORKDIRS.clear()


def prepare(mut: ModelUnderTest, variant: str) -> Runner:
    """Build (once) the runner of ``variant``; VariantUnavailable with the reason if it cannot run here."""
    _forget_other_models(mut.name)
    key = (mut.name, variant)
    if key not in _PREPARED:
        workdir = Path(_WORKDIRS.setdefault(mut.name, tempfile.TemporaryDirectory(prefix="quant_latency-")).name)
        try:
            _PREPARED[key] = PREPARE[variant](mut, workdir)
        except VariantUnavailable as err:
            _PREPARED[key] = str(err)
        except Exception as err:  # a backend that fails on this model or CPU: say so, do not hide the row
            _PREPARED[key] = f"{variant} failed to prepare: {type(err).__name__}: {err}"
    prepared = _PREPARED[key]
    if isinstance(prepared, str):
        raise VariantUnavailable(prepared)
    return prepared
