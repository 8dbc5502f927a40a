"""Published int8 speed-ups, as their sources state them (torch-free; the page shows them beside its own numbers).

Each figure below was checked against its source (issue 14 audit):

- PyTorch quantization docs (1.3 to 1.9, e.g. https://pytorch.org/docs/1.9.0/quantization.html):
  "Hardware support for INT8 computations is typically 2 to 4 times faster compared to FP32 compute."
  That is the arithmetic; whole models also spend time outside int8 matmuls.
- PyTorch tutorial "(beta) Dynamic Quantization on BERT" (pytorch/tutorials,
  intermediate_source/dynamic_quantization_bert_tutorial.rst): bert-base-uncased on MRPC (408 examples) on
  a MacBook Pro, FP32 160 s / INT8 90 s with 1 thread, 85 s / 46 s with 4 threads; 438 MB / 181 MB.
- microsoft/onnxruntime#6695 "Dynamic quantization slow on non-VNNI CPUs": bert-base-uncased, batch 1,
  sequence 128, ``onnxruntime_tools.transformers.benchmark``, ONNX Runtime 1.6.0; "8 core Cascade Lake (GCP
  n2-standard-16) fp32: 31.46 int8: 19.76", "Ryzen 3700X: fp32: 38.05 int8: 35.08" (no unit given), and "I
  tested on a GCP N1 Skylake instance as well". A maintainer: "it is expected to see a 10%-20% performance
  gain for sequence length 128 on the non-vnni machine. You can see larger performance gain for smaller
  sequence on the non-vnni machine."
- pytorch/ao#4365 (open; labels cpu, performance): "Int8DynamicActivationInt8WeightConfig noticeably slower
  than torch.ao's quantize_dynamic()".
- Intel/vit-base-patch16-224-int8-static-inc model card: accuracy INT8 80.576 / FP32 81.326, model size
  94 MB / 331 MB (no latency reported).

The speed-up ratios are computed here from the quoted times; no source is credited with a ratio it did not print.
"""

from __future__ import annotations

from dataclasses import dataclass

PYTORCH_DOCS = "https://pytorch.org/docs/1.9.0/quantization.html"
PYTORCH_DOCS_QUOTE = "Hardware support for INT8 computations is typically 2 to 4 times faster compared to FP32 compute."
BERT_TUTORIAL = "https://pytorch.org/tutorials/intermediate/dynamic_quantization_bert_tutorial.html"
ORT_6695 = "https://github.com/microsoft/onnxruntime/issues/6695"
ORT_6695_TITLE = "Dynamic quantization slow on non-VNNI CPUs"
ORT_6695_SKYLAKE = "I tested on a GCP N1 Skylake instance as well, so it's not related to AMD."
ORT_6695_REPLY = ("it is expected to see a 10%-20% performance gain for sequence length 128 on the non-vnni "
                  "machine. You can see larger performance gain for smaller sequence on the non-vnni machine.")
AO_4365 = "https://github.com/pytorch/ao/issues/4365"
AO_4365_TITLE = "Int8DynamicActivationInt8WeightConfig noticeably slower than torch.ao's quantize_dynamic()"
INTEL_VIT = "https://huggingface.co/Intel/vit-base-patch16-224-int8-static-inc"


@dataclass(frozen=True)
class Measured:
    """One whole-model fp32/int8 timing pair as a source printed it."""

    source: str  # Markdown link
    model: str
    machine: str
    vnni: bool | None  # whether the CPU has VNNI, where the source says (None: not stated)
    fp32: float
    int8: float
    unit: str  # "" where the source gives none

    @property
    def speedup(self) -> float:
        return self.fp32 / self.int8


MEASURED: tuple[Measured, ...] = (
    Measured(f"[PyTorch BERT tutorial]({BERT_TUTORIAL})", "bert-base-uncased, MRPC, 1 thread",
             "a MacBook Pro", None, 160, 90, "s"),
    Measured(f"[PyTorch BERT tutorial]({BERT_TUTORIAL})", "bert-base-uncased, MRPC, 4 threads",
             "a MacBook Pro", None, 85, 46, "s"),
    Measured(f"[onnxruntime#6695]({ORT_6695})", "bert-base-uncased, batch 1, sequence 128, ONNX Runtime 1.6.0",
             "an 8-core Cascade Lake (GCP n2-standard-16)", True, 31.46, 19.76, ""),
    Measured(f"[onnxruntime#6695]({ORT_6695})", "bert-base-uncased, batch 1, sequence 128, ONNX Runtime 1.6.0",
             "a Ryzen 3700X", False, 38.05, 35.08, ""),
)


def speedup_range() -> tuple[float, float]:
    """The smallest and largest whole-model int8 speed-up among ``MEASURED``."""
    ratios = [m.speedup for m in MEASURED]
    return min(ratios), max(ratios)


def _line(m: Measured) -> str:
    unit = f" {m.unit}" if m.unit else ""
    return (f"- {m.source}: {m.model}, on {m.machine}: fp32 {m.fp32:g}{unit}, int8 {m.int8:g}{unit} "
            f"(**{m.speedup:.2f}x**, our division)")


def summary_line() -> str:
    """One sentence that puts the documented 2-4x beside the measured whole-model range."""
    lo, hi = speedup_range()
    return (f"PyTorch's quantization docs say int8 arithmetic is \"typically 2 to 4 times faster\" than fp32; "
            f"the whole models measured in the sources below ran {lo:.2f}x to {hi:.2f}x faster in int8. A whole "
            "model also spends time outside its int8 matrix multiplies, and dynamic quantization quantizes "
            "every activation on the fly.")


def markdown() -> str:
    """The sources panel of the page: what each source reports, quoted or with its own numbers."""
    return "\n".join([
        "**Published int8 speed-ups** (context, not a promise; your numbers are the ones above):",
        f"- [PyTorch quantization docs]({PYTORCH_DOCS}): \"{PYTORCH_DOCS_QUOTE}\"",
        *[_line(m) for m in MEASURED],
        f"  The issue is titled \"{ORT_6695_TITLE}\" (the Cascade Lake has VNNI); its reporter adds \"{ORT_6695_SKYLAKE}\", "
        f"and a maintainer replied: \"{ORT_6695_REPLY}\"",
        f"- [pytorch/ao#4365]({AO_4365}) (open, labelled *cpu*): \"{AO_4365_TITLE}\".",
        f"- ViT-B/16 static int8 with Intel Neural Compressor ([model card]({INTEL_VIT})): accuracy 81.326 -> "
        "80.576, size 331 MB -> 94 MB (no latency given).",
        "",
        summary_line(),
    ])
