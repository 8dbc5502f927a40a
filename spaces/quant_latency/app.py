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


# --------------------------------------------------------------------------------------
#   Issue 23: memory by precision, latency against resolution, efficient architectures, control rate.
#   Each handler validates through options before importing torch (a bad input fails fast).
# --------------------------------------------------------------------------------------

@user_errors
def memory(gpu_gb: float, precisions: list[str], progress: gr.Progress = gr.Progress()):
    """Weights of ViT-B/L/H and LLaVA-1.5-7B per precision, and whether they fit on ``gpu_gb`` GB."""
    options.check_gpu_gb(gpu_gb)
    options.check_precisions(precisions)
    progress(0.0, desc="counting parameters on the meta device")
    from . import compute

    result = compute.memory_table(gpu_gb, precisions)
    return result, views.memory_rows(result), views.memory_summary(result), views.memory_figure(result)


def _progress(progress: gr.Progress):
    return lambda fraction, message: progress(fraction, desc=message)


@user_errors
def resolution(model: str, largest_side: int, sizes: int, runs: int, progress: gr.Progress = gr.Progress()):
    """fp32 latency of one ViT at several input sides (interpolated position embeddings)."""
    options.check_sweep(model, largest_side, sizes, runs)
    progress(0.0, desc="loading PyTorch")
    from . import compute

    result = compute.resolution_sweep(model, largest_side, sizes, runs, progress=_progress(progress))
    return result, views.sweep_rows(result), views.sweep_figure(result)


@user_errors
def efficient(names: list[str], side: int, runs: int, progress: gr.Progress = gr.Progress()):
    """Params, MACs and batch-1 latency of ViTs and MobileViTs at the same input side."""
    options.check_architectures(names, side, runs)
    progress(0.0, desc="loading PyTorch")
    from . import compute

    result = compute.architectures(names, side, runs, progress=_progress(progress))
    return result, views.arch_rows(result), views.arch_figure(result)


@user_errors
def control(model: str, variant: str, hz: float, runs: int, progress: gr.Progress = gr.Progress()):
    """Does the chosen variant's median latency (batch 1) fit in the 1000 / hz ms budget?"""
    options.check_control(model, variant, hz, runs)
    progress(0.0, desc="loading PyTorch")
    from . import compute

    result = compute.control_rate(model, variant, hz, runs, progress=_progress(progress))
    return result, views.control_markdown(result)


def _memory_tab() -> None:
    gr.Markdown(text.MEMORY_HELP)
    with gr.Row():
        gpu_gb = gr.Number(value=options.DEFAULT_GPU_GB, label="GPU memory (GB = 10^9 bytes)",
                           info=f"greater than 0, at most {options.MAX_GPU_GB:g}")
        precisions = gr.CheckboxGroup(list(options.BYTES_PER_VALUE), value=list(options.BYTES_PER_VALUE),
                                      label="precisions")
        go = gr.Button("Compute memory", variant="primary")
    verdict = gr.Markdown()
    table = gr.Dataframe(headers=views.MEMORY_COLUMNS, label="memory by precision (weights only)", wrap=True)
    plot = gr.Plot(label="weights by precision", show_label=False)
    files = downloads()
    with gr.Accordion("Raw result (JSON)", open=False):
        raw = gr.JSON(label="memory")
    outputs = [raw, table, verdict, plot]
    raw_values(go.click, with_downloads(memory, outputs), [gpu_gb, precisions], outputs + [files],
               api_name=f"{SLUG}_memory", show_progress_on=[table])


def _sweep_tab() -> None:
    gr.Markdown(text.SWEEP_HELP)
    labels = {options.VIT_B16_RANDOM: options.VIT_B16_RANDOM_LABEL}
    with gr.Row():
        model = gr.Dropdown([(labels.get(n, n), n) for n in options.SWEEP_MODELS], value=options.SWEEP_MODELS[0],
                            label="model")
        largest = gr.Slider(16, options.MAX_SIDE, value=options.DEFAULT_LARGEST_SIDE, step=8, label="largest side (px)",
                            info=f"a multiple of the patch size (8 tiny, 16 ViT-B), at most {options.MAX_SIDE}")
        sizes = gr.Slider(options.MIN_SIZES, options.MAX_SIZES, value=options.DEFAULT_SIZES, step=1,
                          label="resolutions", info=f"{options.MIN_SIZES}-{options.MAX_SIZES}, evenly spaced")
        runs = gr.Slider(1, options.MAX_SWEEP_RUNS, value=options.DEFAULT_SWEEP_RUNS, step=1,
                         label="timed runs per side", info=f"1-{options.MAX_SWEEP_RUNS}")
        go = gr.Button("Sweep resolutions", variant="primary")
    table = gr.Dataframe(headers=views.SWEEP_COLUMNS, label="latency by input resolution", wrap=True)
    plot = gr.Plot(label="latency against resolution", show_label=False)
    files = downloads()
    with gr.Accordion("Raw result (JSON)", open=False):
        raw = gr.JSON(label="resolution sweep")
    outputs = [raw, table, plot]
    raw_values(go.click, with_downloads(resolution, outputs), [model, largest, sizes, runs], outputs + [files],
               api_name=f"{SLUG}_resolution", concurrency_limit=1, concurrency_id="measure",
               show_progress_on=[table])


def _arch_tab() -> None:
    gr.Markdown(text.ARCH_HELP)
    with gr.Row():
        names = gr.CheckboxGroup(list(options.ARCHITECTURES), value=list(options.DEFAULT_ARCHITECTURES),
                                 label="architectures (random weights)")
        side = gr.Slider(options.MIN_ARCH_SIDE, options.MAX_ARCH_SIDE, value=options.DEFAULT_ARCH_SIDE,
                         step=options.ARCH_SIDE_MULTIPLE, label="image side (px)",
                         info=f"a multiple of 32, {options.MIN_ARCH_SIDE}-{options.MAX_ARCH_SIDE}")
        runs = gr.Slider(1, options.MAX_ARCH_RUNS, value=options.DEFAULT_ARCH_RUNS, step=1, label="timed runs",
                         info=f"1-{options.MAX_ARCH_RUNS}")
        go = gr.Button("Time architectures", variant="primary")
    table = gr.Dataframe(headers=views.ARCH_COLUMNS, label="architectures at the same input", wrap=True)
    plot = gr.Plot(label="latency against MACs", show_label=False)
    files = downloads()
    with gr.Accordion("Raw result (JSON)", open=False):
        raw = gr.JSON(label="architectures")
    outputs = [raw, table, plot]
    raw_values(go.click, with_downloads(efficient, outputs), [names, side, runs], outputs + [files],
               api_name=f"{SLUG}_architectures", concurrency_limit=1, concurrency_id="measure",
               show_progress_on=[table])


def _control_tab(choices: list[tuple[str, str]]) -> None:
    gr.Markdown(text.CONTROL_HELP)
    with gr.Row():
        model = gr.Dropdown(choices, value=choices[0][1], label="model")
        variant = gr.Dropdown(list(options.VARIANTS), value=options.DEFAULT_CONTROL_VARIANT, label="variant")
        hz = gr.Number(value=options.DEFAULT_HZ, label="control rate (Hz)",
                       info=f"greater than 0, at most {options.MAX_HZ:g}")
        runs = gr.Slider(1, options.MAX_RUNS, value=options.DEFAULT_RUNS, step=1, label="timed runs",
                         info=f"1-{options.MAX_RUNS}")
        go = gr.Button("Check the control rate", variant="primary")
    verdict = gr.Markdown()
    files = downloads()
    with gr.Accordion("Raw result (JSON)", open=False):
        raw = gr.JSON(label="control rate")
    outputs = [raw, verdict]
    raw_values(go.click, with_downloads(control, outputs), [model, variant, hz, runs], outputs + [files],
               api_name=f"{SLUG}_control_rate", concurrency_limit=1, concurrency_id="measure",
               show_progress_on=[verdict])


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
    gr.Examples(options.examples([name for _, name in choices]), inputs=inputs, label="try")
    gr.Markdown(text.NEW_VARIANTS_HELP)
    with gr.Tabs():
        with gr.Tab("Memory by precision"):
            _memory_tab()
        with gr.Tab("Latency vs resolution"):
            _sweep_tab()
        with gr.Tab("Efficient architecture"):
            _arch_tab()
        with gr.Tab("Meets the control rate?"):
            _control_tab(choices)
    gr.Markdown(sources.markdown())

    outputs = [result, result_table, ratios, latency_plot, accuracy_plot, machine]
    raw_values(go.click, with_downloads(measure, outputs), inputs, outputs + [files],
               api_name=f"{SLUG}_compare", concurrency_limit=1, concurrency_id="measure",
               show_progress_on=[result_table])
    raw_values(demo.load, show_hardware, [], machine, api_visibility="private")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
