"""Memory by precision for large models: parameters counted on the ``meta`` device, times bytes per value.

Definitions (stated on the page, text.MEMORY_HELP):

- ``params``: every parameter of the model built from its transformers config on the meta device (shapes
  only, no memory): ``sum(p.numel() for p in model.parameters())``.
- ``weights_bytes = params * BYTES_PER_VALUE[precision]`` (fp32 4, bf16 2, fp16 2, int8 1, int4 0.5). Weights
  only: quantization scales, activations, the KV cache of a language model and the runtime's own memory
  come on top.
- fits on N GB: ``weights_bytes <= N * 10**9``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from .options import BYTES_PER_VALUE, LARGE_MODELS, LARGE_VITS, LLAVA_7B, PAPER_PARAMS_M, check_gpu_gb, check_precisions


def _count(build) -> int:
    import torch

    with torch.device("meta"):
        model = build()
    return sum(p.numel() for p in model.parameters())


@functools.cache
def parameter_count(name: str) -> int:
    """Parameters of a large model, counted on the meta device (ViT-H/14 takes about a second)."""
    if name in LARGE_VITS:
        from transformers import ViTConfig, ViTForImageClassification

        return _count(lambda: ViTForImageClassification(ViTConfig(**LARGE_VITS[name])))
    if name == LLAVA_7B:
        from transformers import LlavaConfig, LlavaForConditionalGeneration

        return _count(lambda: LlavaForConditionalGeneration(LlavaConfig()))
    raise ValueError(f"unknown large model {name!r}; choose one of {list(LARGE_MODELS)}")


def memory_table(gpu_gb: Any, precisions: Sequence[str] | None = None) -> dict[str, Any]:
    """One row per (model, precision): params, weights in bytes and GB, and whether they fit in ``gpu_gb``."""
    gb = check_gpu_gb(gpu_gb)
    chosen = check_precisions(list(BYTES_PER_VALUE) if precisions is None else precisions)
    rows = []
    for name in LARGE_MODELS:
        params = parameter_count(name)
        paper = PAPER_PARAMS_M.get(name)
        for precision in chosen:
            weights = params * BYTES_PER_VALUE[precision]
            rows.append({"model": name, "params": params, "paper_params_m": paper[0] if paper else None,
                         "paper_source": paper[1] if paper else None, "precision": precision,
                         "bytes_per_value": BYTES_PER_VALUE[precision], "weights_bytes": weights,
                         "weights_gb": weights / 1e9, "fits": weights <= gb * 1e9,
                         "share_of_gpu": weights / (gb * 1e9)})
    return {"gpu_gb": gb, "precisions": chosen, "rows": rows}
