"""Hardware selection: which device and dtype to run on, and what the hardware is.

Order: the ``VITLAB_DEVICE`` environment variable wins, then CUDA, then Apple MPS, then CPU.

torch is imported inside the functions that need it: the hub imports every space's app module at
start-up, and importing torch there would cost a second before the first page (issue 14).
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_VALID = ("cpu", "cuda", "mps")


def pick_device() -> torch.device:
    """The device to run models on (``VITLAB_DEVICE`` > cuda > mps > cpu)."""
    import torch

    forced = os.environ.get("VITLAB_DEVICE", "").strip()
    if forced:
        kind = forced.split(":")[0]
        if kind not in _VALID:
            raise ValueError(f"VITLAB_DEVICE={forced!r} is not a device; use one of {list(_VALID)}")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device | str) -> torch.dtype:
    """fp32 on CPU and MPS (exact, and what the tutorials explain), bf16 on recent CUDA, else fp16."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ISA features that decide whether int8 / bf16 kernels can be fast on a CPU.
ISA_FLAGS: dict[str, str] = {
    "AVX2": "avx2",
    "AVX-512": "avx512f",
    "AVX-512 VNNI": "avx512_vnni",
    "AVX-VNNI": "avx_vnni",
    "AVX-512 BF16": "avx512_bf16",
    "AMX (tiles)": "amx_tile",
    "AMX int8": "amx_int8",
    "AMX bf16": "amx_bf16",
}


@functools.lru_cache(maxsize=1)
def describe_hardware() -> dict[str, Any]:
    """CPU model and ISA flags, thread count, and GPU name and memory if any."""
    import torch

    flags = _cpu_flags()
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "isa": {name: flag in flags for name, flag in ISA_FLAGS.items()},
        "torch": torch.__version__,
        "device": str(pick_device()),
        "gpu": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)}
    return info


def gpu(duration: int | Callable[..., int] = 60) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` on Hugging Face ZeroGPU, a no-op decorator elsewhere.

    ZeroGPU's helper package is also named ``spaces``; it is only present on a Space, and the
    project's own ``spaces/`` package is never exported, so importing it here cannot clash.
    """
    if os.environ.get("SPACES_ZERO_GPU"):
        try:
            import spaces as zerogpu  # type: ignore[import-not-found]

            return zerogpu.GPU(duration=duration)
        except ImportError:
            pass
    return lambda fn: fn
