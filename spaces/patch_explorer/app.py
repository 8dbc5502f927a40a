"""The patch explorer's Gradio page, one function per section.

Thin glue: handlers.py checks inputs and formats outputs, compute.py (and the modules it gathers)
does the maths. Building the page imports no torch, transformers or matplotlib (issue 14: the hub
builds every page at start-up); the trained model's facts are read from its shipped config.json and
metrics.json (options.py), and the title and emoji from hub/registry.py.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, sample_examples, with_downloads

from . import beyond_page, handlers
from .options import (
    FILTER_MODES,
    IMAGE_SIZES,
    LEARNED_MODEL,
    MAX_GRID,
    MAX_IMAGE_SIZE,
    MAX_TEST_IMAGES,
    MIN_GRID,
    MIN_IMAGE_SIZE,
    MIN_TEST_IMAGES,
    RANDOM,
    SIN_COS_2D,
    VIT_B_PATCH,
    VIT_B_SIZE,
    WIDTHS,
    learned,
    position_kinds,
    tiny_config,
    tiny_grid,
    tiny_metrics,
    transfer_sizes,
)

SLUG = "patch_explorer"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (LEARNED_MODEL,)
PRIVATE = {"api_visibility": "private"}
PAPERS = {
    "vit": "[Dosovitskiy et al., 2021](https://arxiv.org/abs/2010.11929)",
    "vaswani": "[Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)",
    "mocov3": "[Chen et al., 2021 (MoCo v3)](https://arxiv.org/abs/2104.02057)",
    "mae": "[He et al., 2022 (MAE)](https://arxiv.org/abs/2111.06377)",
    "touvron": "[Touvron et al., 2019](https://arxiv.org/abs/1906.06423)",
    "swin": "[Liu et al., 2021 (Swin)](https://arxiv.org/abs/2103.14030)",
    "rope": "[Heo et al., 2024 (RoPE for ViT)](https://arxiv.org/abs/2403.13298)",
    "adam": "[Kingma & Ba, 2015 (Adam)](https://arxiv.org/abs/1412.6980)",
    "mixed": "[Micikevicius et al., 2018 (mixed precision)](https://arxiv.org/abs/1710.03740)",
}


# --------------------------------------------------------------------------------------
#                                   Text read from the shipped model
# --------------------------------------------------------------------------------------

def model_facts() -> str:
    """One paragraph on vit-tiny-shapes, every number read from its config.json and metrics.json."""
    c, m = tiny_config(), tiny_metrics()
    g = tiny_grid()
    classes = [c["id2label"][k] for k in sorted(c.get("id2label", {}), key=int)]
    text = (f"The trained model is `{LEARNED_MODEL}`, a ViT trained from scratch in this project: "
            f"{c['image_size']} px images, patch {c['patch_size']}, grid {g}×{g}, width {c['hidden_size']}, "
            f"{c['num_hidden_layers']} layers")
    if m.get("parameters"):
        text += f", {m['parameters']:,} parameters"
    if classes:
        text += f". It sorts a shape into one of {len(classes)} classes ({', '.join(classes)})"
    if m.get("accuracy") is not None and m.get("n"):
        text += f" and gets {m['accuracy']:.1%} of {m['n']:,} held-out test shapes right"
    if m.get("train_wall_seconds"):
        procs = m.get("processes", 1)
        text += (f"; training took {m['train_wall_seconds'] / 60:.0f} minutes ({procs} "
                 f"process{'es' if procs != 1 else ''} of {m.get('torch_threads', '?')} threads each)")
    return text + "."


def _header() -> None:
    gr.Markdown(
        f"# {TUTORIAL.emoji} {TUTORIAL.title}\n"
        f"A Vision Transformer reads an image as a sentence of patches ({PAPERS['vit']}, \"An Image is Worth "
        "16x16 Words\"). Cut the image into P×P patches, flatten each, project it linearly to width D, "
        "prepend a [CLS] token and add a position code. Every number and picture below is computed from "
        f"your inputs.\n\n{model_facts()}"
    )


# --------------------------------------------------------------------------------------
#                                   Sections (each returns its components)
# --------------------------------------------------------------------------------------

def _patchify_section() -> dict:
    samples = sample_examples()
    default = next((p for p in samples if "star" in p), samples[0] if samples else None)  # plain background
    gr.Markdown("## 1 · Cut the image into patches")
    with gr.Row():
        with gr.Column(scale=2):
            image = gr.Image(label="Image", value=default, height=300, type="pil", sources=["upload", "clipboard"])
            gr.Examples(samples, inputs=[image], label="Samples (shapes dataset renders)",
                        api_name=f"{SLUG}_load_example", **PRIVATE)
            image_size = gr.Dropdown(
                choices=IMAGE_SIZES, value=224, allow_custom_value=True,
                label=f"Image size S (pick or type any integer {MIN_IMAGE_SIZE}–{MAX_IMAGE_SIZE})",
                info="The image is centre-cropped to a square (keeps the aspect ratio), then resized (bicubic).",
            )
            patch_size = gr.Slider(2, 224, value=16, step=1, label="Patch size P (2 … S)",
                                   info="If P does not divide S, the bottom/right remainder is dropped "
                                        "(shaded red), as Conv2d with stride P does.")
            width = gr.Dropdown(choices=WIDTHS, value=768, allow_custom_value=True,
                                label="Embedding width D (pick or type)")
            run = gr.Button("Patchify", variant="primary")
        with gr.Column(scale=3):
            overlay = gr.Image(label="Patch grid (click a patch to inspect it below)", format="png",
                               interactive=False, height=460)
            stats = gr.JSON(label="Patch-grid stats")
            patch_files = downloads("Download the stats (JSON)")
    return dict(image=image, image_size=image_size, patch_size=patch_size, width=width, run=run, overlay=overlay,
                stats=stats, patch_files=patch_files)


def _tokens_section() -> dict:
    gr.Markdown("## 2 · The token sequence\nPatches in raster order (row by row), after the [CLS] token whose "
                "final state the classifier reads. Sequence position = patch index + 1.")
    strip = gr.Image(label="Tokens: [CLS], 0, 1, …, N−1", format="png", interactive=False)
    numbers = gr.Markdown()
    gr.Markdown("**Patch size against cost at this resolution.** Attention compares every token with every "
                "token, so one head in one layer holds (N+1)² scores; memory if materialised (kernels such "
                "as FlashAttention never store it). Halving P quadruples N and multiplies this by about 16.")
    table = gr.Dataframe(headers=handlers.TABLE_HEADERS, label="Patch size against attention cost",
                         interactive=False, wrap=True)
    token_files = downloads("Download the table (CSV)")
    return dict(strip=strip, numbers=numbers, table=table, token_files=token_files)


def _projection_section() -> dict:
    gr.Markdown(
        "## 3 · The linear projection\nEach patch x (P²·C numbers) becomes z = W·x + b in R^D; one W for "
        "all patches. In code it is `nn.Conv2d(C, D, kernel_size=P, stride=P)`: the kernel sees exactly one "
        "patch per step. The check below computes it both ways."
    )
    with gr.Row():
        patch_index = gr.Number(value=0, label="Patch index (or click the grid)", precision=None)
        source = gr.Radio([RANDOM, *learned()], value=RANDOM, label="Projection weights")
        project_btn = gr.Button("Project this patch")
    with gr.Row():
        patch_view = gr.Image(label="The patch", format="png", interactive=False, height=180, scale=1)
        vector_plot = gr.Plot(label="Flattened patch and its embedding", show_label=False, scale=4)
    check = gr.Markdown()
    project_files = downloads("Download the plot (PNG)")
    return dict(patch_index=patch_index, source=source, project_btn=project_btn, patch_view=patch_view,
                vector_plot=vector_plot, check=check, project_files=project_files)


def _positions_section() -> dict:
    gr.Markdown(
        "## 4 · Positional encodings\nSelf-attention ignores order, so each token gets a position code. "
        f"1-D sin-cos ({PAPERS['vaswani']}) numbers the patches 0…N−1; 2-D sin-cos ({PAPERS['mocov3']}, "
        f"{PAPERS['mae']}) spends half the dimensions on the row and half on the column; ViT learns the "
        "table. The map shows how similar one position's code is to every other's (cosine). The mosaic "
        f"repeats that for every position, like Figure 7 (centre) of {PAPERS['vit']}, drawn there for ViT-L/32."
    )
    g = tiny_grid()
    vit_b = VIT_B_SIZE // VIT_B_PATCH
    with gr.Row():
        kind = gr.Radio(position_kinds(), value=SIN_COS_2D, label="Encoding")
        grid = gr.Slider(MIN_GRID, MAX_GRID, value=14, step=1, label="Grid (patches a side)",
                         info=f"{LEARNED_MODEL}' table is {g}x{g}, ViT-B/16's {vit_b}x{vit_b}; "
                              "other grids interpolate it.")
        pos_row = gr.Slider(0, 13, value=7, step=1, label="Position row")
        pos_col = gr.Slider(0, 13, value=7, step=1, label="Position column")
    pos_plot = gr.Plot(label="Similarity to the chosen position, and against distance", show_label=False)
    with gr.Row():
        mosaic = gr.Image(label="Every position's similarity map (ViT Fig. 7 centre style)", format="png",
                          interactive=False, height=420)
        pos_text = gr.Markdown()
    pos_files = downloads("Download the plot (PNG)")
    return dict(kind=kind, grid=grid, pos_row=pos_row, pos_col=pos_col, pos_plot=pos_plot, mosaic=mosaic,
                pos_text=pos_text, pos_files=pos_files)


def _filters_section() -> dict:
    gr.Markdown(
        "## 5 · What the projection learned\nThe rows of W seen as P×P RGB images. Figure 7 (left) of "
        f"{PAPERS['vit']} shows the top principal components of ViT-L/32's filters: smooth, low-frequency "
        "bases. Compare the trained model with a random projection of the same shape."
    )
    with gr.Row():
        filt_source = gr.Radio([*learned(), RANDOM], value=next(iter(learned())), label="Weights")
        filt_mode = gr.Radio(list(FILTER_MODES), value=FILTER_MODES[0], label="Show")
        filt_btn = gr.Button("Show filters")
    with gr.Row():
        filt_img = gr.Image(label="Filters (each normalised to [0, 1])", format="png", interactive=False,
                            height=320)  # a fixed box: far down the page the lazy <img> has no size yet
        filt_text = gr.Markdown()
    return dict(filt_source=filt_source, filt_mode=filt_mode, filt_btn=filt_btn, filt_img=filt_img,
                filt_text=filt_text)


def _transfer_section() -> dict:
    c = tiny_config()
    size, patch, g = c["image_size"], c["patch_size"], tiny_grid()
    gr.Markdown(
        "## 6 · Resolution transfer\nA learned table has one row per training position. At a new resolution "
        "(same P) the grid changes from g to g′, so ViT resizes the table by \"2D interpolation\" (section 3.2): "
        "reshape the N = g² rows to g×g×D → interpolate to g′×g′×D → flatten to g′² rows; [CLS] keeps its row. "
        "This page interpolates bicubically, timm's choice; the paper does not name a kernel. "
        f"Here {LEARNED_MODEL} (trained at {size} px, g = {g}) runs on held-out shapes rendered "
        f"natively at each resolution, without any fine-tuning. The grey reference feeds the same shapes resized "
        f"to {size} px to the unchanged model. Expect a drop: at a new resolution each {patch}×{patch} "
        "patch also covers a different share of the shape, so the patch filters see a new scale, not only new "
        "positions. That is why ViT fine-tunes after interpolating, at a higher resolution than pre-training "
        f"(section 3.2, citing {PAPERS['touvron']})."
    )
    with gr.Row():
        choices = transfer_sizes()
        sizes = gr.CheckboxGroup(choices, value=[s for s in choices if size // 2 <= s <= 2 * size][:5],
                                 label=f"Resolutions (px, multiples of the patch size {patch})")
        n_test = gr.Slider(MIN_TEST_IMAGES, MAX_TEST_IMAGES, value=200, step=50,
                           label="Held-out test images per resolution")
        transfer_btn = gr.Button("Measure accuracy", variant="primary")
    transfer_plot = gr.Plot(label="Accuracy against resolution", show_label=False)
    transfer_table = gr.Dataframe(headers=handlers.TRANSFER_HEADERS, label="Accuracy by resolution",
                                  interactive=False)
    transfer_text = gr.Markdown()
    transfer_files = downloads("Download the plot (PNG) and table (CSV)")
    return dict(sizes=sizes, n_test=n_test, transfer_btn=transfer_btn, transfer_plot=transfer_plot,
                transfer_table=transfer_table, transfer_text=transfer_text, transfer_files=transfer_files)


# --------------------------------------------------------------------------------------
#                                   Events
# --------------------------------------------------------------------------------------
# Every event goes through raw_values: it loads images with clear errors and hands the other values
# over as sent, for the handlers' own checks. Each event that fills a table, plot or stats panel also
# fills the download list beside it (with_downloads), so the files always match what is shown.

def _wire_patches(demo: gr.Blocks, ui: SimpleNamespace) -> None:
    """Patchify, then the token strip and table, a valid patch index, and its projection."""
    main_in = [ui.image, ui.image_size, ui.patch_size]
    patch_out = [ui.overlay, ui.stats]
    token_in, token_out = [*main_in, ui.width], [ui.strip, ui.numbers, ui.table]
    project_in = [*main_in, ui.width, ui.patch_index, ui.source]
    project_out = [ui.overlay, ui.patch_view, ui.vector_plot, ui.check]
    patchify = with_downloads(handlers.patchify, patch_out)
    tokens = with_downloads(handlers.tokens, token_out)
    project = with_downloads(handlers.project, project_out)
    quiet = handlers.skip_without_image

    def rest_of_page(dep, public: bool):
        wrap = (lambda fn: fn) if public else quiet
        api = (lambda verb: {"api_name": f"{SLUG}_{verb}"}) if public else (lambda verb: PRIVATE)
        after_tokens = raw_values(dep.success, wrap(tokens), token_in, [*token_out, ui.token_files], **api("tokens"))
        kept = raw_values(after_tokens.success, handlers.keep_index, [ui.patch_index, ui.stats], ui.patch_index,
                          **PRIVATE)
        raw_values(kept.success, wrap(project), project_in, [*project_out, ui.project_files], **api("project"))

    patch_outs = [*patch_out, ui.patch_files]
    rest_of_page(raw_values(ui.run.click, patchify, main_in, patch_outs, api_name=f"{SLUG}_patchify"), public=True)
    # Live updates: the same handlers, quiet while there is no image.
    live = functools.partial(gr.on, [demo.load, ui.image.change, ui.patch_size.release, ui.width.change])
    rest_of_page(raw_values(live, quiet(patchify), main_in, patch_outs, **PRIVATE), public=False)
    resized = raw_values(ui.image_size.change, handlers.slider_for, [ui.image_size, ui.patch_size], ui.patch_size,
                         **PRIVATE)
    rest_of_page(raw_values(resized.then, quiet(patchify), main_in, patch_outs, **PRIVATE), public=False)

    project_outs = [*project_out, ui.project_files]
    picked = raw_values(ui.overlay.select, handlers.pick_patch, [ui.stats], ui.patch_index, **PRIVATE)
    raw_values(picked.success, quiet(project), project_in, project_outs, **PRIVATE)
    raw_values(functools.partial(gr.on, [ui.project_btn.click, ui.patch_index.submit, ui.source.change]),
               quiet(project), project_in, project_outs, **PRIVATE)


def _wire_positions(demo: gr.Blocks, ui: SimpleNamespace) -> None:
    pos_in = [ui.kind, ui.grid, ui.pos_row, ui.pos_col, ui.width]
    pos_out = [ui.pos_plot, ui.mosaic, ui.pos_text]
    positions = with_downloads(handlers.positions, pos_out)
    outs = [*pos_out, ui.pos_files]
    sliders = raw_values(ui.grid.release, handlers.grid_sliders, [ui.grid], [ui.pos_row, ui.pos_col], **PRIVATE)
    raw_values(sliders.success, positions, pos_in, outs, **PRIVATE)
    raw_values(functools.partial(gr.on, [demo.load, ui.pos_row.release, ui.pos_col.release]), positions, pos_in,
               outs, api_name=f"{SLUG}_positions")
    native = raw_values(ui.kind.change, handlers.grid_for_kind, [ui.kind, ui.grid], ui.grid, **PRIVATE)
    centred = raw_values(native.then, handlers.grid_sliders, [ui.grid], [ui.pos_row, ui.pos_col], **PRIVATE)
    raw_values(centred.then, positions, pos_in, outs, **PRIVATE)


def _wire_filters_and_transfer(demo: gr.Blocks, ui: SimpleNamespace) -> None:
    filt_in, filt_out = [ui.filt_source, ui.filt_mode], [ui.filt_img, ui.filt_text]
    raw_values(functools.partial(gr.on, [ui.filt_btn.click, ui.filt_source.change, ui.filt_mode.change]),
               handlers.filters, filt_in, filt_out, api_name=f"{SLUG}_filters")
    raw_values(demo.load, handlers.filters_on_load, filt_in, filt_out, **PRIVATE)
    transfer_out = [ui.transfer_plot, ui.transfer_table, ui.transfer_text]
    raw_values(ui.transfer_btn.click, with_downloads(handlers.transfer, transfer_out), [ui.sizes, ui.n_test],
               [*transfer_out, ui.transfer_files], api_name=f"{SLUG}_transfer")


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    """The page's components and events, created in the current Blocks context: ``build()`` wraps them
    in a Blocks of their own; the hub renders them straight into its tab (one build per space, and no
    Blocks of its own, whose set-up costs gradio about 0.25 s: issue 14's start-up budget)."""
    _header()
    ui = SimpleNamespace(**_patchify_section(), **_tokens_section(), **_projection_section(),
                         **_positions_section(), **_filters_section(), **_transfer_section(), **beyond_page.section(PAPERS))
    _wire_patches(demo, ui)
    _wire_positions(demo, ui)
    _wire_filters_and_transfer(demo, ui)
    beyond_page.wire(demo, ui, SLUG)


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
