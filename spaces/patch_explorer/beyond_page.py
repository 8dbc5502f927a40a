"""Section 7 of the patch explorer's page, "Beyond the plain ViT" (issue 23): five tabs, each computed from an
instantiated model, and their events. ``app.py`` calls ``section`` inside its Blocks and ``wire`` after it.
Torch-free, like the rest of the page: the hub builds every page at start-up.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import gradio as gr

from shared.ui import downloads, raw_values, with_downloads
from shared.vit_cost import CAPS, MAX_PARAMS, MAX_TOKENS

from . import beyond_handlers
from .options import (
    DEFAULT_BATCH,
    DEFAULT_GPU_GB,
    DEFAULT_PRECISION,
    INTERP_IMAGES,
    INTERP_MODES,
    LEARNED_MODEL,
    MAX_BATCH,
    MAX_GPU_GB,
    MAX_ROPE_DIM,
    MAX_ROPE_GRID,
    MAX_ROPE_THETA,
    MAX_SWIN_DIM,
    MAX_SWIN_IMAGE,
    MAX_SWIN_PATCH,
    MAX_WINDOW,
    MIN_ROPE_DIM,
    MIN_ROPE_GRID,
    MIN_SWIN_IMAGE,
    MIN_SWIN_PATCH,
    MIN_WINDOW,
    PRECISIONS,
    ROPE_THETA,
    SWIN_T_HEADS,
    VIT_B16,
    tiny_config,
    tiny_grid,
    transfer_sizes,
)

PRIVATE = {"api_visibility": "private"}


def _vit_inputs(prefix: str) -> list:
    """Width, layers, heads, MLP width, image and patch size of a ViT (ViT-B/16 by default), with the caps."""
    labels = {"hidden_size": "width D", "num_layers": "layers L", "num_heads": "heads", "mlp_dim": "MLP width M",
              "image_size": "image size S (px)", "patch_size": "patch size P"}
    with gr.Row():
        return [gr.Number(value=VIT_B16[k], precision=None, minimum=CAPS[k][0], maximum=CAPS[k][1],
                          label=f"{labels[k]} ({CAPS[k][0]}–{CAPS[k][1]:,})", elem_id=f"{prefix}-{k}")
                for k in VIT_B16]


def _flops_tab(papers: dict[str, str]) -> dict:
    gr.Markdown(
        "FLOPs of one image's forward pass (batch 1), per component, for the ViT you type (1000 classes). The model is "
        "`transformers.ViTForImageClassification` instantiated on PyTorch's `meta` device (shapes only, no "
        "weights) and counted by `torch.utils.flop_counter.FlopCounterMode`: the same counting code "
        "(`shared/vit_cost.py`) as the ViT anatomy page. It counts matrix products and convolutions; 1 MAC "
        "(multiply-accumulate) = 2 FLOPs; softmax, GELU, LayerNorm and additions are not counted. The formula "
        f"column is the closed form ({papers['vit']}, eqs. 1–4): N patches, T = N + 1 tokens, C = 3 channels. "
        f"Caps: at most {MAX_TOKENS:,} tokens and {MAX_PARAMS / 1e9:.0f} B parameters."
    )
    inputs = _vit_inputs("flops")
    btn = gr.Button("Count FLOPs", variant="primary")
    with gr.Row():
        table = gr.Dataframe(headers=beyond_handlers.FLOPS_HEADERS, label="FLOPs per component", interactive=False,
                             wrap=True, scale=3)
        stats = gr.JSON(label="FLOPs stats", scale=1)
    plot = gr.Plot(label="GFLOPs per component", show_label=False)
    files = downloads("Download the table (CSV), plot (PNG) and stats (JSON)")
    return dict(flops_in=inputs, flops_btn=btn, flops_table=table, flops_stats=stats, flops_plot=plot,
                flops_files=files)


def _memory_tab(papers: dict[str, str]) -> dict:
    gr.Markdown(
        "Memory of the same kind of ViT, counted on the meta-device model. b = bytes per value: fp32 4, bf16 2, "
        "fp16 2, int8 1.\n\n"
        "- **weights** = parameters × b.\n"
        "- **activations (inference)** = the most activation memory alive at once during a `torch.no_grad()` "
        "forward at your batch size (the input images included, weights not), every value at b. A "
        "`TorchDispatchMode` follows every tensor the operators return and when it is freed.\n"
        "- **training** = weights + gradients (parameters × b) + Adam's two moment estimates m and v "
        f"(2 × parameters × b; {papers['adam']}) + the activations the forward saves for backward, counted with "
        "PyTorch's saved-tensors hook (each storage once), every value at b. This is pure low-precision training: "
        f"mixed precision ({papers['mixed']}) also keeps an fp32 master copy of the weights; framework workspace "
        "and allocator fragmentation are not included.\n"
        "- **int8** means weights and activations stored in 8 bits for inference (quantised after training). "
        "int8 training is refused: standard recipes keep gradients and Adam's states in 16 or 32 bits.\n"
        "- \"Fits on N GB?\" compares with N × 10⁹ bytes, the way GPU memory is advertised."
    )
    inputs = _vit_inputs("memory")
    with gr.Row():
        batch = gr.Number(value=DEFAULT_BATCH, precision=None, minimum=1, maximum=MAX_BATCH,
                          label=f"batch size (1–{MAX_BATCH:,})")
        precision = gr.Radio(list(PRECISIONS), value=DEFAULT_PRECISION, label="precision")
        gpu = gr.Number(value=DEFAULT_GPU_GB, precision=None, minimum=0, maximum=MAX_GPU_GB,
                        label=f"fits on N GB? (0 < N ≤ {MAX_GPU_GB:,.0f})")
    btn = gr.Button("Estimate memory", variant="primary")
    fits = gr.Markdown()
    with gr.Row():
        stats = gr.JSON(label="Memory stats (chosen precision)", scale=1)
        table = gr.Dataframe(headers=beyond_handlers.MEMORY_HEADERS, label="Memory by precision", interactive=False,
                             wrap=True, scale=3)
    plot = gr.Plot(label="Memory by precision (bars)", show_label=False)
    stat_files = downloads("Download the stats (JSON)")
    files = downloads("Download the table (CSV) and plot (PNG)")
    return dict(mem_in=inputs, mem_batch=batch, mem_precision=precision, mem_gpu=gpu, mem_btn=btn, mem_fits=fits,
                mem_stats=stats, mem_table=table, mem_plot=plot, mem_stat_files=stat_files, mem_files=files)


def _relative_tab(papers: dict[str, str]) -> dict:
    gr.Markdown(
        "Absolute codes are added to the tokens; relative ones act inside attention. Swin "
        f"({papers['swin']}, eq. 4) adds a bias B to QKᵀ/√d in each M×M window; offsets run from −(M−1) to M−1 "
        "on each axis, so each block learns a table of (2M−1)² × heads values, read here from a "
        "`transformers.SwinModel` built with Swin-T's configuration (C = 96, depths 2-2-6-2, heads 3-6-12-24). "
        f"2-D RoPE ({papers['rope']}, axial form) rotates each head's query and key: a quarter of the "
        "dimension pairs by x·θₖ, another quarter by y·θₖ, θₖ = 1/base^(4k/d) (base 100 in the authors' code, "
        "naver-ai/rope-vit); q·k then depends only on the offset, and nothing is learned. The plot shows the score "
        "of a fixed unit query against the same key at every offset."
    )
    with gr.Row():
        window = gr.Slider(MIN_WINDOW, MAX_WINDOW, value=7, step=1, label="Swin window M (Swin-T: 7)")
        head = gr.Slider(0, SWIN_T_HEADS[0] - 1, value=0, step=1, label="head of block 1 to plot")
        head_dim = gr.Number(value=64, precision=None, minimum=MIN_ROPE_DIM, maximum=MAX_ROPE_DIM,
                             label=f"RoPE head dimension d (multiple of 4, {MIN_ROPE_DIM}–{MAX_ROPE_DIM})")
        grid = gr.Slider(MIN_ROPE_GRID, MAX_ROPE_GRID, value=14, step=1, label="RoPE grid (patches a side)")
        theta = gr.Number(value=ROPE_THETA, precision=None, label=f"RoPE base (> 1, ≤ {MAX_ROPE_THETA:,.0f})")
    btn = gr.Button("Show relative positions", variant="primary")
    plot = gr.Plot(label="Relative position codes", show_label=False)
    table = gr.Dataframe(headers=beyond_handlers.POSITION_HEADERS, label="Parameters of each position code",
                         interactive=False, wrap=True)
    text = gr.Markdown()
    files = downloads("Download the plot (PNG) and table (CSV)")
    return dict(rel_window=window, rel_head=head, rel_dim=head_dim, rel_grid=grid, rel_theta=theta, rel_btn=btn,
                rel_plot=plot, rel_table=table, rel_text=text, rel_files=files)


def _interpolation_tab() -> dict:
    c = tiny_config()
    size, g = c["image_size"], tiny_grid()
    gr.Markdown(
        f"Section 6 resizes {LEARNED_MODEL}' {g}×{g} position table bicubically. Here the same resolution transfer "
        "runs with each of `torch.nn.functional.interpolate`'s modes: nearest (copy the closest row), bilinear "
        "(weights from the 2×2 nearest rows) and bicubic (4×4), on a fixed set: the first "
        f"{INTERP_IMAGES} held-out test shapes rendered at that resolution (results are kept for the process)."
    )
    choices = [s for s in transfer_sizes() if s != size]
    with gr.Row():
        res = gr.Dropdown(choices, value=next((s for s in choices if s > size), choices[-1]),
                          label=f"resolution (px; trained at {size})")
        modes = gr.CheckboxGroup(list(INTERP_MODES), value=list(INTERP_MODES), label="interpolation modes")
        btn = gr.Button("Measure each mode", variant="primary")
    plot = gr.Plot(label="Accuracy by interpolation mode (bars)", show_label=False)
    table = gr.Dataframe(headers=beyond_handlers.INTERP_HEADERS, label="Accuracy by interpolation mode", interactive=False)
    text = gr.Markdown()
    files = downloads("Download the plot (PNG) and table (CSV)")
    return dict(int_size=res, int_modes=modes, int_btn=btn, int_plot=plot, int_table=table, int_text=text,
                int_files=files)


def _hierarchy_tab(papers: dict[str, str]) -> dict:
    gr.Markdown(
        f"A plain ViT keeps one grid throughout. Swin ({papers['swin']}, section 3.1) starts with small patches "
        "(P = 4) and, between stages, merges each 2×2 group of tokens (concatenate 4C values, project to 2C): the "
        "grid halves, the tokens quarter and the width doubles. Closed form at stage i = 1…4: side S/(P·2^(i−1)), "
        "tokens side², width C·2^(i−1); attention runs in ⌈side/M⌉² windows of M×M. The model columns are read "
        "from `reshaped_hidden_states` of a `transformers.SwinModel` (Swin-T's depths and heads) on the meta device."
    )
    with gr.Row():
        image = gr.Number(value=224, precision=None, label=f"image size S ({MIN_SWIN_IMAGE}–{MAX_SWIN_IMAGE}, a multiple of 8P)")
        patch = gr.Number(value=4, precision=None, label=f"patch size P ({MIN_SWIN_PATCH}–{MAX_SWIN_PATCH})")
        dim = gr.Number(value=96, precision=None, label=f"width C (multiple of 3, ≤ {MAX_SWIN_DIM})")
        window = gr.Number(value=7, precision=None, label=f"window M ({MIN_WINDOW}–{MAX_WINDOW})")
    btn = gr.Button("Show the stages", variant="primary")
    with gr.Row():
        table = gr.Dataframe(headers=beyond_handlers.HIERARCHY_HEADERS, label="Stages", interactive=False, wrap=True, scale=3)
        stats = gr.JSON(label="Stage shapes", scale=1)
    plot = gr.Plot(label="Token grid per stage", show_label=False)
    files = downloads("Download the table (CSV), plot (PNG) and stats (JSON)")
    return dict(hier_in=[image, patch, dim, window], hier_btn=btn, hier_table=table, hier_stats=stats,
                hier_plot=plot, hier_files=files)


def section(papers: dict[str, str]) -> dict:
    gr.Markdown("## 7 · Beyond the plain ViT\nWhat a ViT costs, other ways to encode position, and hierarchical "
                "patches. Each tab computes from an instantiated model.")
    ui = {}
    with gr.Tabs():
        with gr.Tab("FLOPs per component"):
            ui.update(_flops_tab(papers))
        with gr.Tab("Memory"):
            ui.update(_memory_tab(papers))
        with gr.Tab("Relative position"):
            ui.update(_relative_tab(papers))
        with gr.Tab("Interpolation mode"):
            ui.update(_interpolation_tab())
        with gr.Tab("Hierarchical patches"):
            ui.update(_hierarchy_tab(papers))
    return ui


def wire(demo: gr.Blocks, ui: SimpleNamespace, slug: str) -> None:
    """Section 7: one public endpoint per tab; the memory tab's table, plot and readout follow privately."""
    out = [ui.flops_table, ui.flops_plot, ui.flops_stats]
    raw_values(ui.flops_btn.click, with_downloads(beyond_handlers.flops, out), ui.flops_in, [*out, ui.flops_files],
               api_name=f"{slug}_flops")
    mem_in = [*ui.mem_in, ui.mem_batch, ui.mem_precision]
    view_out = [ui.mem_table, ui.mem_plot, ui.mem_fits]
    view = with_downloads(beyond_handlers.memory_view, view_out)
    est = raw_values(ui.mem_btn.click, with_downloads(beyond_handlers.memory, [ui.mem_stats]), mem_in,
                     [ui.mem_stats, ui.mem_stat_files], api_name=f"{slug}_memory")
    raw_values(est.success, view, [*mem_in, ui.mem_gpu], [*view_out, ui.mem_files], **PRIVATE)
    raw_values(functools.partial(gr.on, [ui.mem_gpu.submit, ui.mem_precision.change]), view, [*mem_in, ui.mem_gpu],
               [*view_out, ui.mem_files], **PRIVATE)
    rel_out = [ui.rel_plot, ui.rel_table, ui.rel_text]
    raw_values(ui.rel_btn.click, with_downloads(beyond_handlers.relative, rel_out),
               [ui.rel_window, ui.rel_head, ui.rel_dim, ui.rel_grid, ui.rel_theta], [*rel_out, ui.rel_files],
               api_name=f"{slug}_relative")
    int_out = [ui.int_plot, ui.int_table, ui.int_text]
    raw_values(ui.int_btn.click, with_downloads(beyond_handlers.interpolation, int_out), [ui.int_size, ui.int_modes],
               [*int_out, ui.int_files], api_name=f"{slug}_interpolation")
    hier_out = [ui.hier_table, ui.hier_plot, ui.hier_stats]
    raw_values(ui.hier_btn.click, with_downloads(beyond_handlers.hierarchy, hier_out), ui.hier_in,
               [*hier_out, ui.hier_files], api_name=f"{slug}_hierarchy")
