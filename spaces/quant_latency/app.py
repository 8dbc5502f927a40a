"""Quantization latency: fp32, bf16, int8 and ONNX Runtime variants of a ViT, timed on this machine."""

from __future__ import annotations

from typing import Any

import gradio as gr
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from shared.device import describe_hardware  # noqa: E402
from shared.ui import as_int, user_errors  # noqa: E402

from . import compute  # noqa: E402

SLUG = "quant_latency"
TITLE = "Quantization latency"
WEIGHTS: tuple[str, ...] = ("vit-tiny-shapes",)

CITATIONS = """
**Published int8 speed-ups on CPUs** (context, not a promise; your numbers are the ones above):
- 1.78x (1 thread) and 1.85x (4 threads), BERT-base, 438 -> 181 MB: PyTorch tutorial *Dynamic quantization on BERT*.
- 1.59x on Cascade Lake **with VNNI**, 1.08x on a Ryzen 3700X **without VNNI** (BERT-base, seq 128, ONNX Runtime):
  microsoft/onnxruntime#6695; the maintainers expect 10-20% at most without VNNI.
- torchao's `Int8DynamicActivationInt8Weight` ran **slower** than `torch.ao` `quantize_dynamic` on a CPU: pytorch/ao#4365.
- ViT-B/16 static int8 (Intel Neural Compressor): accuracy 81.33% -> 80.58%, 331 -> 94 MB:
  `Intel/vit-base-patch16-224-int8-static-inc` model card.
"""

COLUMNS = ["variant", "ran", "median ms", "IQR ms", "images/s", "speed-up", "size MB",
           "accuracy", "agreement", "max |Δlogit|", "backend, or why unavailable"]
WIDTHS = ["13%", "5%", "8%", "7%", "7%", "7%", "7%", "7%", "7%", "7%", "25%"]


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def compare(model: str, variants: list[str], batch_size: int, runs: int, threads: int | None = None,
            progress: gr.Progress = gr.Progress()) -> list[dict[str, Any]]:
    """Time the chosen variants of ``model``; one JSON entry per variant (see compute.compare)."""
    return compute.compare(
        model, variants, as_int(batch_size, "batch size"), as_int(runs, "runs"),
        threads=None if threads is None else as_int(threads, "threads"),
        progress=lambda fraction, message: progress(fraction, desc=message),
    )


def _fmt(value: Any, digits: int = 2) -> Any:
    return "–" if value is None else round(value, digits) if isinstance(value, float) else value


def table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["variant"], "yes" if r["available"] else "no", _fmt(r["median_ms"]), _fmt(r["iqr_ms"]),
             _fmt(r["throughput_ips"], 1), _fmt(r["speedup_vs_fp32"]), _fmt(r["size_mb"], 3),
             _fmt(r["accuracy"], 4), _fmt(r["top1_agreement"], 4), _fmt(r["max_abs_logit_diff"], 4),
             r["backend"] if r["available"] else r["reason"]] for r in rows]


def latency_figure(rows: list[dict[str, Any]]):
    """Median latency per variant; the error bar spans the interquartile range (q1 to q3)."""
    ok = [r for r in rows if r["available"]]
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
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
    plt.close(fig)
    return fig


def accuracy_figure(rows: list[dict[str, Any]]):
    """Accuracy on held-out shapes (or top-1 agreement with fp32) against median latency."""
    ok = [r for r in rows if r["available"]]
    key = "accuracy" if any(r["accuracy"] is not None for r in ok) else "top1_agreement"
    points = [r for r in ok if r[key] is not None]
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
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
    plt.close(fig)
    return fig


def summary(rows: list[dict[str, Any]]) -> str:
    by = {r["variant"]: r for r in rows if r["available"]}
    lines = []
    if "fp32" in by:
        for v in ("int8_dynamic", "onnx_int8", "int8_weight_only", "bf16", "int8_dynamic_legacy"):
            if v in by:
                ratio = by[v]["median_ms"] / by["fp32"]["median_ms"]
                lines.append(f"- **{v} / fp32 latency = {ratio:.2f}** ({1 / ratio:.2f}x speed-up)")
        if "onnx_int8" in by and "onnx_fp32" in by:
            lines.append(f"- onnx_int8 / onnx_fp32 latency = {by['onnx_int8']['median_ms'] / by['onnx_fp32']['median_ms']:.2f}")
    missing = [r for r in rows if not r["available"]]
    lines += [f"- {r['variant']} unavailable: {r['reason']}" for r in missing]
    return "\n".join(lines) or "No variant ran."


def views(rows: list[dict[str, Any]]):
    return table(rows), latency_figure(rows), accuracy_figure(rows), summary(rows)


def hardware_markdown() -> str:
    hw = describe_hardware()
    flags = ", ".join(f"{name} **{'yes' if has else 'no'}**" for name, has in hw["isa"].items())
    gpu = f"{hw['gpu']['name']} ({hw['gpu']['memory_gib']} GiB), not used here" if hw["gpu"] else "none"
    return (
        f"**CPU:** {hw['cpu']} ({hw['machine']}), {hw['logical_cpus']} logical CPUs, torch threads "
        f"{hw['torch_threads']}, torch {hw['torch']}  \n**ISA:** {flags}  \n**GPU:** {gpu}\n\n"
        f"**What to expect:** {compute.int8_expectation(hw['isa'])} "
        "Without VNNI an int8 multiply-accumulate takes several instructions, so int8 saves memory but "
        "little time (about 1.0-1.1x); with VNNI or AMX published speed-ups reach about 1.9x (sources below). "
        "Dynamic quantization also quantizes every activation on the fly, which costs time that a tiny model "
        "cannot win back. All variants here run on the CPU."
    )


# --------------------------------------------------------------------------------------
#                                   Layout
# --------------------------------------------------------------------------------------

def build() -> gr.Blocks:
    choices = compute.model_choices()
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"## ⚡ {TITLE}\nIs int8 faster than fp32? It depends on the CPU, the runtime and the model size, "
            "so this page measures it here instead of quoting a speed-up. Each variant gets "
            f"{compute.WARMUP_RUNS} warm-up runs, then the timed runs; the table shows the **median** and the "
            "**interquartile range** (the middle half of the runs). Measurements run one at a time across the "
            "whole hub, so two users never time each other's load."
        )
        with gr.Accordion("This machine", open=True):
            gr.Markdown(hardware_markdown())
        with gr.Row():
            with gr.Column(scale=2):
                gr.Markdown("**Model:** the embedded shapes ViT (accuracy measurable on held-out shapes), any "
                            "classifier cached offline, or the ViT-B/16 architecture with random weights "
                            "(latency is real; accuracy is not reported).")
                model = gr.Dropdown(choices, value=choices[0][1], label="model")
                gr.Markdown("**Variants:** how the weights and activations are stored and which runtime runs them.")
                variants = gr.CheckboxGroup(
                    [(f"{name}: {desc}", name) for name, desc in compute.VARIANTS.items()],
                    value=list(compute.CONTRACT_VARIANTS), label="variants")
            with gr.Column(scale=1):
                gr.Markdown("**Controls:** images per forward pass, CPU threads for every runtime (1 is the "
                            "steadiest on a small shared CPU: a multi-threaded op waits for its slowest thread), "
                            "and timed runs.")
                batch = gr.Slider(1, compute.MAX_BATCH, value=8, step=1, label=f"batch size (1-{compute.MAX_BATCH})")
                threads = gr.Slider(1, compute.MAX_THREADS, value=compute.DEFAULT_THREADS, step=1,
                                    label=f"threads (1-{compute.MAX_THREADS})")
                runs = gr.Slider(1, compute.MAX_RUNS, value=20, step=1, label=f"timed runs (1-{compute.MAX_RUNS})")
                go = gr.Button("Measure", variant="primary")

        gr.Markdown("**Results:** speed-up is fp32 median / variant median. Agreement and max |Δlogit| compare "
                    "each variant's logits with fp32 on the same held-out images; accuracy is against the "
                    "true shape labels.")
        result_table = gr.Dataframe(headers=COLUMNS, label="per variant (speed-up = fp32 median / median; "
                                    "agreement = top-1 agreement with fp32)", column_widths=WIDTHS, wrap=True)
        ratios = gr.Markdown()
        with gr.Row():
            latency_plot = gr.Plot(label="latency (median, IQR error bars)", show_label=False)
            accuracy_plot = gr.Plot(label="accuracy vs latency", show_label=False)
        with gr.Accordion("Raw result (JSON, as the API returns it)", open=False):
            result = gr.JSON(label="result")
        gr.Markdown(CITATIONS)

        examples = []
        names = [value for _, value in choices]
        if "vit-tiny-shapes" in names:
            examples.append(["vit-tiny-shapes", list(compute.CONTRACT_VARIANTS), 8, 20, compute.DEFAULT_THREADS])
            examples.append(["vit-tiny-shapes", ["fp32", "int8_dynamic", "int8_dynamic_legacy", "onnx_int8"],
                             64, 10, 1])
        examples.append([compute.VIT_B16_RANDOM, ["fp32", "bf16", "int8_dynamic", "onnx_fp32", "onnx_int8"],
                         1, 5, compute.DEFAULT_THREADS])
        gr.Examples(examples, inputs=[model, variants, batch, runs, threads], label="try")

        go.click(
            compare, [model, variants, batch, runs, threads], result,
            api_name=f"{SLUG}_compare", concurrency_limit=1, concurrency_id="measure",
            show_progress_on=[result_table],
        ).success(views, result, [result_table, latency_plot, accuracy_plot, ratios], api_visibility="private")
    return demo


if __name__ == "__main__":
    build().launch()
