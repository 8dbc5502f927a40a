"""The ONNX Runtime variants: the model exported by ``torch.onnx.export``, run as is (fp32) and after
``onnxruntime.quantization.quantize_dynamic`` (int8 weights; activations quantized on the fly)."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from .options import MAX_BATCH
from .runners import Runner, VariantUnavailable
from .subjects import ModelUnderTest

# Nodes that multiply by a weight matrix: fp32 exports use MatMul (and Gemm for the classifier);
# quantize_dynamic turns them into MatMulInteger (or com.microsoft fused ops) with an int8 weight.
_LINEAR_OPS = {"MatMul", "Gemm", "MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearMatMul"}


class _Logits(torch.nn.Module):
    """Wraps a transformers classifier so the exported graph has one tensor in and one out."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits  # (B, classes)


def export_onnx(model: torch.nn.Module, image_size: int, path: Path) -> str:
    """Export with a dynamic batch axis; returns which exporter worked.

    torch 2.13's default is the torch.export-based exporter (``dynamo=True``, needs onnxscript);
    the TorchScript exporter (``dynamo=False``) is deprecated and only tried if the first fails.
    """
    wrapper = _Logits(model).eval()
    example = (torch.zeros(2, 3, image_size, image_size),)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
            torch.onnx.export(wrapper, example, str(path), input_names=["pixel_values"], output_names=["logits"],
                              dynamo=True, dynamic_shapes={"pixel_values": {0: batch}}, external_data=False,
                              verbose=False)
        return f"torch.onnx.export(dynamo=True), torch {torch.__version__}"
    except Exception as first:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, example, str(path), input_names=["pixel_values"], output_names=["logits"],
                                  dynamo=False, dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
        except Exception as second:
            raise VariantUnavailable(f"ONNX export failed: dynamo=True: {first}; dynamo=False: {second}") from None
        return f"torch.onnx.export(dynamo=False, deprecated TorchScript exporter; dynamo=True failed: {first})"


def onnx_weight_storage(path: Path) -> dict[str, int]:
    """{stored dtype: number of weight-matrix multiplies} read from the graph: each linear node's rank-2
    initializer input is its weight. Empty if the ``onnx`` package is missing."""
    try:
        import onnx
    except ImportError:
        return {}
    graph = onnx.load(str(path)).graph
    weights = {i.name: i for i in graph.initializer if len(i.dims) == 2}
    counts: Counter[str] = Counter()
    for node in graph.node:
        if node.op_type in _LINEAR_OPS:
            for name in node.input:
                if name in weights:
                    counts[onnx.helper.tensor_dtype_to_np_dtype(weights[name].data_type).name] += 1
                    break
    return dict(counts)


def _onnx_bytes(path: Path) -> int:
    extra = path.with_name(path.name + ".data")  # external weights, if the exporter wrote any
    return path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)


def _ort_runner(variant: str, path: Path, backend: str) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise VariantUnavailable(f"onnxruntime is not installed ({err})") from None
    sessions: dict[int, Any] = {}  # one session per thread count (fixed at session creation)

    def forward(x: torch.Tensor) -> torch.Tensor:
        threads = torch.get_num_threads()  # compare() sets this for every backend
        if threads not in sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            sessions[threads] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out = sessions[threads].run(None, {"pixel_values": x.numpy()})[0]  # (B, classes)
        return torch.from_numpy(out)

    return Runner(variant, f"{backend}; onnxruntime {ort.__version__} CPUExecutionProvider",
                  _onnx_bytes(path) / 1e6, forward, onnx_weight_storage(path), onnx_path=path)


def _onnx_fp32_path(mut: ModelUnderTest, workdir: Path) -> tuple[Path, str]:
    path = workdir / "model_fp32.onnx"
    exporter_file = workdir / "exporter.txt"
    if not path.exists():
        exporter_file.write_text(export_onnx(mut.model, mut.image_size, path))
    return path, exporter_file.read_text()


def prepare_onnx_fp32(mut: ModelUnderTest, workdir: Path) -> Runner:
    path, exporter = _onnx_fp32_path(mut, workdir)
    return _ort_runner("onnx_fp32", path, exporter)


def prepare_onnx_int8(mut: ModelUnderTest, workdir: Path) -> Runner:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise VariantUnavailable(f"onnxruntime.quantization is not installed ({err})") from None

    src, exporter = _onnx_fp32_path(mut, workdir)
    path = workdir / "model_int8.onnx"
    if not path.exists():
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a "consider pre-processing" hint on every call
        try:
            quantize_dynamic(str(src), str(path), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
    return _ort_runner("onnx_int8", path, f"{exporter}; onnxruntime.quantization.quantize_dynamic(QInt8 weights)")
