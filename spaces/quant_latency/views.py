"""What the page shows of a measurement: the table, two figures and the ratios (no gradio, no torch).

Figures are ``matplotlib.figure.Figure`` objects built without pyplot (no global state shared between
requests), and matplotlib is imported inside the functions: the hub builds this page at start-up.
"""

from __future__ import annotations

from typing import Any

COLUMNS = ["variant", "ran", "median ms", "IQR ms", "images/s", "speed-up", "size MB", "linear weights",
           "accuracy", "agreement", "max |Δlogit|", "backend, or why unavailable"]
WIDTHS = ["12%", "4%", "7%", "6%", "7%", "6%", "6%", "8%", "7%", "7%", "7%", "23%"]


def _fmt(value: Any, digits: int = 2) -> Any:
    return "–" if value is None else round(value, digits) if isinstance(value, float) else value


def storage_text(storage: dict[str, int]) -> str:
    """{"int8": 24, "float32": 1} -> "int8 ×24, float32 ×1" (how many linear layers store which dtype)."""
    return ", ".join(f"{dtype} ×{n}" for dtype, n in sorted(storage.items(), key=lambda kv: -kv[1])) or "–"


def table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["variant"], "yes" if r["available"] else "no", _fmt(r["median_ms"]), _fmt(r["iqr_ms"]),
             _fmt(r["throughput_ips"], 1), _fmt(r["speedup_vs_fp32"]), _fmt(r["size_mb"], 3),
             storage_text(r["weight_storage"]), _fmt(r["accuracy"], 4), _fmt(r["top1_agreement"], 4),
             _fmt(r["max_abs_logit_diff"], 4), r["backend"] if r["available"] else r["reason"]] for r in rows]


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6), layout="constrained")
    return fig, fig.add_subplot()


def latency_figure(rows: list[dict[str, Any]]):
    """Median latency per variant; the error bar spans the interquartile range (q1 to q3)."""
    ok = [r for r in rows if r["available"]]
    fig, ax = _figure()
    if ok:
        names = [r["variant"] for r in ok]
        med = [r["median_ms"] for r in ok]
        err = [[r["median_ms"] - r["q1_ms"] for r in ok], [r["q3_ms"] - r["median_ms"] for r in ok]]
        ax.bar(names, med, yerr=err, capsize=5, color="#6366f1")
        ax.set_ylabel(f"ms per batch of {ok[0]['batch_size']}")
        ax.set_title(f"median of {ok[0]['runs']} runs; bars span the IQR")
        ax.tick_params(axis="x", rotation=20)
    else:
        ax.text(0.5, 0.5, "no variant could run here", ha="center", va="center")
        ax.set_axis_off()
    return fig


def accuracy_figure(rows: list[dict[str, Any]]):
    """Accuracy on held-out shapes (or top-1 agreement with fp32) against median latency."""
    ok = [r for r in rows if r["available"]]
    key = "accuracy" if any(r["accuracy"] is not None for r in ok) else "top1_agreement"
    points = [r for r in ok if r[key] is not None]
    fig, ax = _figure()
    if points:
        for r in points:
            ax.scatter(r["median_ms"], r[key], s=50)
            ax.annotate(r["variant"], (r["median_ms"], r[key]), textcoords="offset points", xytext=(5, 5))
        ax.set_xlabel("median latency (ms)")
        ax.set_ylabel("accuracy on held-out shapes" if key == "accuracy" else "top-1 agreement with fp32")
        ax.set_title(f"{key.replace('_', ' ')} vs latency ({points[0]['eval_images']} test images)")
    else:
        ax.text(0.5, 0.5, "accuracy is not reported: this model has random weights\n(its latency is still real)",
                ha="center", va="center")
        ax.set_axis_off()
    return fig


def summary(rows: list[dict[str, Any]]) -> str:
    """Each variant's latency as a share of fp32's, and why any variant did not run."""
    by = {r["variant"]: r for r in rows if r["available"]}
    lines = []
    if "fp32" in by:
        for v in ("int8_dynamic", "onnx_int8", "int8_weight_only", "bf16", "int8_dynamic_legacy"):
            if v in by:
                ratio = by[v]["median_ms"] / by["fp32"]["median_ms"]
                lines.append(f"- **{v} / fp32 latency = {ratio:.2f}** ({1 / ratio:.2f}x speed-up)")
    if "onnx_int8" in by and "onnx_fp32" in by:
        lines.append(f"- onnx_int8 / onnx_fp32 latency = {by['onnx_int8']['median_ms'] / by['onnx_fp32']['median_ms']:.2f}")
    lines += [f"- {r['variant']} unavailable: {r['reason']}" for r in rows if not r["available"]]
    return "\n".join(lines) or "No ratio to show: measure fp32 together with another variant."
