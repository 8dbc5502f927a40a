"""Serving planner: measured batch latency, a dynamic-batching simulation, a capacity plan and monitoring.

Thin glue: ``render(demo)`` and ``build()`` import neither torch, numpy-heavy code nor matplotlib;
``compute`` and ``views`` load inside the handlers, on first use.
"""

from __future__ import annotations

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, user_errors, with_downloads

from . import options as o
from . import text, views  # views imports matplotlib only inside its functions

SLUG = "serving_planner"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (o.EMBEDDED_MODEL,)


def _progress(progress):
    return lambda fraction, message: progress(fraction, desc=message)


@user_errors
def measure(model, precision, batch_sizes, runs, progress: gr.Progress = gr.Progress()):
    """Latency per batch size and the fit: (stats JSON, table, plot)."""
    from . import compute

    compute.check_measure(model, precision, batch_sizes, runs)  # bad input fails before the lock
    result = compute.measure(model, precision, batch_sizes, runs, progress=_progress(progress))
    return result, views.measure_table(result), views.measure_figure(result)


def use_fit(result):
    """Copy the measured s(1) and per-item cost into the simulation and plan inputs."""
    if not isinstance(result, dict) or "service_ms_at_batch1" not in result:
        return gr.update(), gr.update(), gr.update(), gr.update()
    s1, per = round(result["service_ms_at_batch1"], 3), round(max(result["per_item_ms"], 0.0), 3)
    return s1, per, s1, per


@user_errors
def simulate(arrival_rate_rps, service_ms_at_batch1, per_item_ms, max_batch, max_wait_ms, seconds, seed,
             service="deterministic", progress: gr.Progress = gr.Progress()):
    """One simulation: (stats JSON, summary, plot)."""
    from . import compute

    progress(0, desc="simulating")
    sim = compute.simulate(arrival_rate_rps, service_ms_at_batch1, per_item_ms, max_batch, max_wait_ms, seconds,
                           seed, service)
    return sim.stats, views.simulation_summary(sim.stats), views.simulation_figure(sim.stats, sim.queue, sim.sojourn_ms)


@user_errors
def sweep(service_ms_at_batch1, per_item_ms, configs, seed, progress: gr.Progress = gr.Progress()):
    from . import compute

    result = compute.sweep(service_ms_at_batch1, per_item_ms, configs, seed, progress=_progress(progress))
    return result, views.sweep_table(result), views.sweep_figure(result)


@user_errors
def plan(target_p95_ms, peak_rps, service_ms_at_batch1, per_item_ms, cpu_price, gpu_price,
         progress: gr.Progress = gr.Progress()):
    from . import compute

    result = compute.plan(target_p95_ms, peak_rps, service_ms_at_batch1, per_item_ms, cpu_price, gpu_price,
                          progress=_progress(progress))
    return result, views.plan_table(result)


@user_errors
def monitor(n_images, progress: gr.Progress = gr.Progress()):
    from . import compute

    result = compute.monitor(n_images, progress=_progress(progress))
    return result, views.monitor_table(result), views.monitor_figure(result)


def shipped_facts() -> str:
    from shared.models import shipped_metrics

    return text.shipped_facts(shipped_metrics(o.EMBEDDED_MODEL))


def _number(value, label, **kw):
    return gr.Number(value=value, label=label, **kw)


def render(demo: gr.Blocks) -> None:
    """The page's components and events, in the current Blocks context."""
    gr.Markdown(text.intro(TUTORIAL.emoji, TUTORIAL.title, TUTORIAL.summary))

    # ---- 1. measure ---------------------------------------------------------------------------------------
    gr.Markdown(text.MEASURE_HELP)
    with gr.Row():
        with gr.Column(scale=1):
            m_model = gr.Dropdown([(label, name) for name, label in o.MODELS.items()], value=o.EMBEDDED_MODEL,
                                  label="model")
            m_precision = gr.Dropdown([(f"{k}: {v}", k) for k, v in o.PRECISIONS.items()], value="fp32",
                                      label="precision")
            m_batches = gr.CheckboxGroup(list(o.BATCH_SIZES), value=list(o.DEFAULT_BATCHES), label="batch sizes")
            m_runs = gr.Slider(1, o.MAX_RUNS, value=o.DEFAULT_RUNS, step=1, label=f"timed runs per batch size (1-{o.MAX_RUNS})")
            m_go = gr.Button("Measure", variant="primary")
        with gr.Column(scale=2):
            m_plot = gr.Plot(label="latency against batch size, with the fit and its residuals", show_label=False)
            m_table = gr.Dataframe(headers=views.MEASURE_COLUMNS, label="measured latency per batch size")
            m_files = downloads()
            with gr.Accordion("Raw result (JSON, as the API returns it)", open=False):
                m_json = gr.JSON(label="measurement")

    # ---- 2. simulate ---------------------------------------------------------------------------------------
    gr.Markdown(text.SIMULATE_HELP)
    with gr.Row():
        with gr.Column(scale=1):
            rate = _number(o.DEFAULT_RATE, "arrival rate λ (requests/s)")
            s1 = _number(o.DEFAULT_S1_MS, "service time at batch 1, s(1) (ms)")
            per_item = _number(o.DEFAULT_PER_ITEM_MS, "per-item service time (ms)")
            max_batch = gr.Slider(1, 64, value=o.DEFAULT_MAX_BATCH, step=1, label="max_batch")
            max_wait = _number(o.DEFAULT_MAX_WAIT_MS, "max_wait_ms")
            seconds = _number(o.DEFAULT_SECONDS, f"simulated seconds (λ × seconds ≤ {o.MAX_REQUESTS:,})")
            seed = _number(o.DEFAULT_SEED, "seed", precision=0)
            service = gr.Radio(list(o.SERVICE_KINDS), value="deterministic", label="service time")
            s_go = gr.Button("Simulate", variant="primary")
        with gr.Column(scale=2):
            s_summary = gr.Markdown()
            s_plot = gr.Plot(label="queue length over time and latency histogram", show_label=False)
            s_files = downloads()
            with gr.Accordion("Stats (JSON, as the API returns it)", open=False):
                s_json = gr.JSON(label="simulation stats")

    gr.Markdown(text.SWEEP_HELP)
    with gr.Row():
        with gr.Column(scale=1):
            configs = gr.Textbox(o.DEFAULT_CONFIGS, label="max_batch/max_wait_ms settings (comma-separated)")
            w_go = gr.Button("Sweep λ", variant="primary")
        with gr.Column(scale=2):
            w_plot = gr.Plot(label="latency and throughput against arrival rate", show_label=False)
    w_table = gr.Dataframe(headers=views.SWEEP_COLUMNS, label="sweep: one row per setting and arrival rate")
    w_files = downloads()
    with gr.Accordion("Sweep (JSON)", open=False):
        w_json = gr.JSON(label="sweep")

    # ---- 3. plan ---------------------------------------------------------------------------------------------
    gr.Markdown(text.PLAN_HELP)
    with gr.Row():
        target = _number(o.DEFAULT_TARGET_P95_MS, "target p95 (ms)")
        peak = _number(o.DEFAULT_PEAK_RPS, "peak rate (requests/s)")
        p_s1 = _number(o.DEFAULT_S1_MS, "CPU s(1) (ms)")
        p_per = _number(o.DEFAULT_PER_ITEM_MS, "CPU per-item (ms)")
        cpu_price = _number(o.DEFAULT_CPU_PRICE, "CPU $ per replica-hour (your price)")
        gpu_price = _number(o.DEFAULT_GPU_PRICE, "GPU $ per hour (your price)")
    p_go = gr.Button("Plan", variant="primary")
    p_table = gr.Dataframe(headers=views.PLAN_COLUMNS, label="plan: replicas, batcher settings and cost", wrap=True,
                           column_widths=views.PLAN_WIDTHS)
    p_files = downloads()
    with gr.Accordion("Plan (JSON)", open=False):
        p_json = gr.JSON(label="plan")

    # ---- 4. monitor ---------------------------------------------------------------------------------------
    gr.Markdown(text.MONITOR_HELP)
    gr.Markdown(shipped_facts())
    with gr.Row():
        with gr.Column(scale=1):
            n_images = gr.Slider(10, o.MAX_MONITOR_IMAGES, value=o.DEFAULT_MONITOR_IMAGES, step=10,
                                 label="images per set")
            n_go = gr.Button("Run the monitored batch", variant="primary")
        with gr.Column(scale=2):
            n_plot = gr.Plot(label="confidence histogram and accuracy by input set", show_label=False)
    n_table = gr.Dataframe(headers=views.MONITOR_COLUMNS, label="monitoring: per input set")
    n_files = downloads()
    with gr.Accordion("Monitoring (JSON)", open=False):
        n_json = gr.JSON(label="monitoring")

    m_out = [m_json, m_table, m_plot]
    measured = raw_values(m_go.click, with_downloads(measure, m_out), [m_model, m_precision, m_batches, m_runs],
                          m_out + [m_files], api_name=f"{SLUG}_measure", concurrency_limit=1, concurrency_id="measure")
    measured.success(use_fit, m_json, [s1, per_item, p_s1, p_per], api_visibility="private")
    s_out = [s_json, s_summary, s_plot]
    raw_values(s_go.click, with_downloads(simulate, s_out),
               [rate, s1, per_item, max_batch, max_wait, seconds, seed, service], s_out + [s_files],
               api_name=f"{SLUG}_simulate")
    w_out = [w_json, w_table, w_plot]
    raw_values(w_go.click, with_downloads(sweep, w_out), [s1, per_item, configs, seed], w_out + [w_files],
               api_name=f"{SLUG}_sweep")
    p_out = [p_json, p_table]
    raw_values(p_go.click, with_downloads(plan, p_out), [target, peak, p_s1, p_per, cpu_price, gpu_price],
               p_out + [p_files], api_name=f"{SLUG}_plan")
    n_out = [n_json, n_table, n_plot]
    raw_values(n_go.click, with_downloads(monitor, n_out), [n_images], n_out + [n_files], api_name=f"{SLUG}_monitor")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
