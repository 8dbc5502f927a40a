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
        for v in ("int8_dynamic", "onnx_int8", "int8_weight_only", "bf16", "int8_dynamic_legacy", "int4_weight_only",
                  "int4_weight_intx", "int8_act_int4_weight", "cuda_fp16", "cuda_bf16"):
            if v in by:
                ratio = by[v]["median_ms"] / by["fp32"]["median_ms"]
                lines.append(f"- **{v} / fp32 latency = {ratio:.2f}** ({1 / ratio:.2f}x speed-up)")
    if "onnx_int8" in by and "onnx_fp32" in by:
        lines.append(f"- onnx_int8 / onnx_fp32 latency = {by['onnx_int8']['median_ms'] / by['onnx_fp32']['median_ms']:.2f}")
    lines += [f"- {r['variant']} unavailable: {r['reason']}" for r in rows if not r["available"]]
    return "\n".join(lines) or "No ratio to show: measure fp32 together with another variant."


# --------------------------------------------------------------------------------------
#   Issue 23: memory by precision, latency against resolution, efficient architectures, control rate
# --------------------------------------------------------------------------------------

MEMORY_COLUMNS = ["model", "params (counted)", "paper (M params)", "precision", "bytes / weight", "weights GB",
                  "fits?", "share of GPU"]


def memory_rows(result: dict[str, Any]) -> list[list[Any]]:
    gb = result["gpu_gb"]
    return [[r["model"], f"{r['params']:,}",
             f"{r['paper_params_m']} ({r['paper_source']})" if r["paper_params_m"] else "–",
             r["precision"], r["bytes_per_value"], round(r["weights_gb"], 3),
             f"yes, on {gb:g} GB" if r["fits"] else f"no, over {gb:g} GB", f"{r['share_of_gpu']:.1%}"]
            for r in result["rows"]]


def memory_figure(result: dict[str, Any]):
    """Weights in GB per model, one bar per precision, log scale, with the GPU's size as a line."""
    fig, ax = _figure()
    models = list(dict.fromkeys(r["model"] for r in result["rows"]))
    precisions = result["precisions"]
    width = 0.8 / len(precisions)
    for j, precision in enumerate(precisions):
        gbs = [next(r["weights_gb"] for r in result["rows"] if r["model"] == m and r["precision"] == precision)
               for m in models]
        ax.bar([i + (j - (len(precisions) - 1) / 2) * width for i in range(len(models))], gbs, width, label=precision)
    ax.axhline(result["gpu_gb"], color="#dc2626", linestyle="--", label=f"{result['gpu_gb']:g} GB")
    ax.set_xticks(range(len(models)), models)
    ax.set_yscale("log")
    ax.set_ylabel("weights (GB = 10^9 bytes), log scale")
    ax.set_title("weights only: params x bytes per value")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def memory_summary(result: dict[str, Any]) -> str:
    gb = result["gpu_gb"]
    lines = [f"**Fits on {gb:g} GB (weights only)?**"]
    for model in dict.fromkeys(r["model"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["model"] == model]
        fit = [r["precision"] for r in rows if r["fits"]]
        lines.append(f"- {model} ({rows[0]['params'] / 1e6:,.0f}M params): "
                     + (f"fits in {', '.join(fit)}" if fit else "does not fit in any chosen precision")
                     + (f"; not in {', '.join(r['precision'] for r in rows if not r['fits'])}"
                        if fit and len(fit) < len(rows) else ""))
    return "\n".join(lines)


SWEEP_COLUMNS = ["side px", "grid", "tokens", "GMACs", "median ms", "IQR ms", "latency ratio", "ms per GMAC"]


def sweep_rows(result: dict[str, Any]) -> list[list[Any]]:
    return [[r["side"], f"{r['grid']}x{r['grid']}", r["tokens"], round(r["macs"] / 1e9, 3), _fmt(r["median_ms"]),
             _fmt(r["iqr_ms"]), _fmt(r["latency_ratio"]), _fmt(r["ms_per_gmac"])] for r in result["rows"]]


def sweep_figure(result: dict[str, Any]):
    """Median latency (IQR error bars) against the input side, and the counted GMACs on a second axis."""
    rows = result["rows"]
    fig, ax = _figure()
    sides = [r["side"] for r in rows]
    err = [[r["median_ms"] - r["q1_ms"] for r in rows], [r["q3_ms"] - r["median_ms"] for r in rows]]
    ax.errorbar(sides, [r["median_ms"] for r in rows], yerr=err, marker="o", capsize=4, color="#6366f1",
                label="median latency (IQR bars)")
    ax.set_xlabel("input side (px); position embeddings interpolated")
    ax.set_ylabel("ms per image (batch 1)")
    ax2 = ax.twinx()
    ax2.plot(sides, [r["macs"] / 1e9 for r in rows], marker="s", linestyle=":", color="#f59e0b", label="GMACs")
    ax2.set_ylabel("GMACs (counted)")
    ax.set_title(f"{result['model']}: median of {result['runs']} runs per side")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")
    return fig


ARCH_COLUMNS = ["architecture", "params", "GMACs", "median ms", "IQR ms", "x fastest", "images/s"]


def arch_rows(result: dict[str, Any]) -> list[list[Any]]:
    return [[r["architecture"], f"{r['params']:,}", round(r["macs"] / 1e9, 3), _fmt(r["median_ms"]),
             _fmt(r["iqr_ms"]), _fmt(r["vs_fastest"]), round(1000 / r["median_ms"], 1)] for r in result["rows"]]


def arch_figure(result: dict[str, Any]):
    """Median latency against counted GMACs, one point per architecture (marker area ~ parameters)."""
    fig, ax = _figure()
    for r in result["rows"]:
        color = "#6366f1" if r["family"] == "vit" else "#10b981"
        ax.errorbar(r["macs"] / 1e9, r["median_ms"], yerr=[[r["median_ms"] - r["q1_ms"]], [r["q3_ms"] - r["median_ms"]]],
                    marker="o", markersize=4 + r["params"] / 2e6, color=color, capsize=3)
        ax.annotate(f"{r['architecture']} ({r['params'] / 1e6:.1f}M)", (r["macs"] / 1e9, r["median_ms"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("GMACs per image (counted)")
    ax.set_ylabel("median ms (batch 1)")
    ax.set_title(f"{result['side']} px input, random weights; blue ViT, green MobileViT")
    return fig


def control_markdown(result: dict[str, Any]) -> str:
    head = (f"**{result['model']} / {result['variant']} at {result['hz']:g} Hz:** budget 1000 / {result['hz']:g} = "
            f"**{result['budget_ms']:.2f} ms** per frame (batch 1).")
    if not result["available"]:
        return f"{head}\n\n**Cannot say:** the variant did not run here: {result['reason']}"
    verdict = "**Yes**, it meets" if result["meets"] else "**No**, it misses"
    tail = ("the upper quartile is within budget too" if result["meets_q3"] else
            f"but the upper quartile ({result['q3_ms']:.2f} ms) is over it: about one frame in four misses")
    if not result["meets"]:
        tail = f"it needs {result['median_ms'] - result['budget_ms']:.2f} ms more than the budget"
    return (f"{head}\n\n{verdict} the target: median **{result['median_ms']:.2f} ms** "
            f"({result['share_of_budget']:.0%} of the budget, IQR {result['iqr_ms']:.2f} ms over {result['runs']} runs); "
            f"{tail}. The fastest rate it could sustain is about **{result['max_rate_hz']:.1f} Hz** "
            "(1000 / median), before any other work in the control loop.")
