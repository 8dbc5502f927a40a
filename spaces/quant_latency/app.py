"""Quantization latency: fp32, bf16, int8 and ONNX Runtime variants of a ViT, timed on this machine.

Thin glue. ``build()`` imports neither torch nor matplotlib (the hub builds every page at start-up,
issue 14): the measurement code (``compute``, which imports torch) and the hardware description are
imported by the handlers, on first use.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, user_errors, with_downloads

from . import hardware, options, sources, text, views

SLUG = "quant_latency"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (options.EMBEDDED_MODEL,)


def _describe_hardware() -> dict[str, Any]:
    from shared.device import describe_hardware  # imports torch when called

    return describe_hardware()


@user_errors
def show_hardware() -> str:
    """The "This machine" panel (a load event: describing the hardware imports torch)."""
    return hardware.hardware_markdown(_describe_hardware())


@user_errors
def measure(model: str, variants: list[str], batch_size: int, runs: int, threads: int | None = None,
            progress: gr.Progress = gr.Progress()):
    """Time the chosen variants of ``model``: the raw result (``variants``: one entry per variant, see
    compute.compare; ``hardware``), the table, the ratios, two figures and the hardware panel."""
    request = options.check_request(model, variants, batch_size, runs, threads)  # bad input fails before torch
    progress(0.0, desc="loading PyTorch")
    from . import compute

    rows = compute.compare(*request, progress=lambda fraction, message: progress(fraction, desc=message))
    hw = _describe_hardware()
    result = {"model": request[0], "hardware": hw, "variants": rows}
    return (result, views.table(rows), views.summary(rows), views.latency_figure(rows),
            views.accuracy_figure(rows), hardware.hardware_markdown(hw))


def _controls(choices: list[tuple[str, str]]):
    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown(text.models())
            model = gr.Dropdown(choices, value=choices[0][1], label="model")
            gr.Markdown(text.VARIANTS_HELP)
            variants = gr.CheckboxGroup([(f"{name}: {desc}", name) for name, desc in options.VARIANTS.items()],
                                        value=list(options.CONTRACT_VARIANTS), label="variants")
        with gr.Column(scale=1):
            gr.Markdown(text.CONTROLS_HELP)
            batch = gr.Slider(1, options.MAX_BATCH, value=options.DEFAULT_BATCH, step=1,
                              label=f"batch size (1-{options.MAX_BATCH})")
            threads = gr.Slider(1, options.MAX_THREADS, value=options.DEFAULT_THREADS, step=1,
                                label=f"threads (1-{options.MAX_THREADS})")
            runs = gr.Slider(1, options.MAX_RUNS, value=options.DEFAULT_RUNS, step=1,
                             label=f"timed runs (1-{options.MAX_RUNS})")
            go = gr.Button("Measure", variant="primary")
    return [model, variants, batch, runs, threads], go


def render(demo: gr.Blocks) -> None:
    """The page's components and events, created in the current Blocks context: ``build()`` wraps them
    in a Blocks of their own; the hub renders them straight into its tab (one build per space, and no
    Blocks of its own, whose set-up costs gradio about 0.25 s: issue 14's start-up budget)."""
    choices = options.model_choices()
    gr.Markdown(text.intro(TUTORIAL.emoji, TUTORIAL.title))
    with gr.Accordion("This machine", open=True):
        machine = gr.Markdown(text.HARDWARE_PENDING)
    inputs, go = _controls(choices)

    gr.Markdown(text.RESULTS_HELP)
    result_table = gr.Dataframe(headers=views.COLUMNS, label="per variant (speed-up = fp32 median / median; "
                                "agreement = top-1 agreement with fp32)", column_widths=views.WIDTHS, wrap=True)
    ratios = gr.Markdown()
    with gr.Row():
        latency_plot = gr.Plot(label="latency (median, IQR error bars)", show_label=False)
        accuracy_plot = gr.Plot(label="accuracy vs latency", show_label=False)
    files = downloads()
    with gr.Accordion("Raw result (JSON, as the API returns it)", open=False):
        result = gr.JSON(label="result")
    gr.Markdown(sources.markdown())
    gr.Examples(options.examples([name for _, name in choices]), inputs=inputs, label="try")

    outputs = [result, result_table, ratios, latency_plot, accuracy_plot, machine]
    raw_values(go.click, with_downloads(measure, outputs), inputs, outputs + [files],
               api_name=f"{SLUG}_compare", concurrency_limit=1, concurrency_id="measure",
               show_progress_on=[result_table])
    raw_values(demo.load, show_hardware, [], machine, api_visibility="private")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
