"""What to expect from int8 and bf16 on this CPU, from its ISA flags (torch-free text).

The hardware itself comes from ``shared.device.describe_hardware()``, which imports torch: the page
calls it from a load event and from each measurement, never from ``build()`` (issue 14).
"""

from __future__ import annotations

from typing import Any

from . import sources


def _measured(vnni: bool) -> sources.Measured:
    return next(m for m in sources.MEASURED if m.vnni is vnni)


def int8_expectation(isa: dict[str, bool]) -> str:
    """Why int8 may or may not help on this CPU, from its ISA flags (see shared.device.ISA_FLAGS)."""
    vnni = isa.get("AVX-512 VNNI") or isa.get("AVX-VNNI")
    with_vnni, without_vnni = _measured(True), _measured(False)
    if isa.get("AMX int8"):
        kind = ("this CPU has AMX int8 tiles and VNNI, the best case for int8 matmuls; whether a runtime "
                "uses them depends on its kernels")
    elif vnni:
        kind = ("this CPU has VNNI (an int8 dot product in one instruction), the case where int8 tends to pay "
                f"off: {with_vnni.speedup:.2f}x on {with_vnni.machine} in {with_vnni.source}")
    elif isa.get("AVX2"):
        kind = ("this CPU has AVX2 but no VNNI, so each int8 multiply-accumulate takes several instructions: "
                f"{without_vnni.speedup:.2f}x on {without_vnni.machine} in {without_vnni.source}")
    else:
        kind = "this CPU has neither AVX2 nor VNNI: expect little or no int8 gain"
    bf16 = isa.get("AVX-512 BF16") or isa.get("AMX bf16")
    bf16_text = ("it also has native bf16 instructions, so bf16 can beat fp32" if bf16 else
                 "it has no native bf16 instructions, so bf16 is emulated and usually slower than fp32")
    return f"{kind}; {bf16_text}."


def hardware_markdown(hw: dict[str, Any]) -> str:
    """The "This machine" panel from ``shared.device.describe_hardware()``'s dict."""
    flags = ", ".join(f"{name} **{'yes' if has else 'no'}**" for name, has in hw["isa"].items())
    gpu = (f"{hw['gpu']['name']} ({hw['gpu']['memory_gib']} GiB), used by the cuda_fp16 and cuda_bf16 rows only"
           if hw["gpu"] else "none (the cuda_fp16 and cuda_bf16 rows are skipped, with the reason)")
    return (
        f"**CPU:** {hw['cpu']} ({hw['machine']}), {hw['logical_cpus']} logical CPUs, torch threads "
        f"{hw['torch_threads']}, torch {hw['torch']}  \n**ISA:** {flags}  \n**GPU:** {gpu}\n\n"
        f"**What to expect:** {int8_expectation(hw['isa'])} Every variant but the cuda_ ones runs on the CPU; "
        "published speed-ups, and what they were measured on, are listed below the results."
    )
