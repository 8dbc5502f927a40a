"""Patch Embeddings & Positional Encoding: the Gradio page. The maths lives in compute.py."""

from __future__ import annotations

import functools
import threading

import gradio as gr
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from shared.ui import as_int, raw_values, sample_examples, user_errors

from . import compute

SLUG = "patch_explorer"
TITLE = "Patch Embeddings & Positional Encoding"
WEIGHTS: tuple[str, ...] = (compute.LEARNED_MODEL,)

RANDOM = "seeded random (untrained)"
# Choice label -> registry name (shared/models.py). ViT-B/16 needs the Hub (or its local cache).
LEARNED = {
    "vit-tiny-shapes (trained here, P=8)": compute.LEARNED_MODEL,
    "google/vit-base-patch16-224 (P=16, D=768; Hub)": "google/vit-base-patch16-224",
}
TRAINED = next(iter(LEARNED))
SIN_COS_1D, SIN_COS_2D = "1D sin-cos", "2D sin-cos"
POSITION_KINDS = [SIN_COS_1D, SIN_COS_2D, *(f"learned: {k}" for k in LEARNED)]
LEARNED_KIND_TINY, LEARNED_KIND_BASE = POSITION_KINDS[2:]
WIDTHS = [("192 · ViT-Ti", 192), ("384 · ViT-S", 384), ("768 · ViT-B", 768), ("1024 · ViT-L", 1024),
          ("1280 · ViT-H", 1280)]
TABLE_HEADERS = ["patch P", "grid", "tokens N+1", "attention entries (N+1)²", "fp32 / head / layer",
                 "bf16 / head / layer"]
TRANSFER_HEADERS = ["resolution", "grid", "tokens", "accuracy (interpolated positions)",
                    "reference: resized to the training size", "change vs the training size"]  # change in points
PAPERS = {
    "vit": "[Dosovitskiy et al., 2021](https://arxiv.org/abs/2010.11929)",
    "vaswani": "[Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)",
    "mocov3": "[Chen et al., 2021 (MoCo v3)](https://arxiv.org/abs/2104.02057)",
    "mae": "[He et al., 2022 (MAE)](https://arxiv.org/abs/2111.06377)",
}


# --------------------------------------------------------------------------------------
#                                   Models (loaded on first use)
# --------------------------------------------------------------------------------------

def _model(name: str = compute.LEARNED_MODEL):
    from shared.models import load

    return load(name, attn="eager").model


def _tiny_config() -> dict:
    """vit-tiny-shapes' config.json (image size, patch size, width...), read without loading weights.
    A checkout without weights gets the recipe's defaults (shared/training/vit_tiny_shapes.py)."""
    import json

    from shared.models import local_path

    config = local_path(compute.LEARNED_MODEL) / "config.json"
    if config.is_file():
        return json.loads(config.read_text())
    from shared.training.vit_tiny_shapes import Config

    return {"image_size": Config.image_size, "patch_size": Config.patch_size, "hidden_size": Config.hidden_size}


def _tiny_shape() -> tuple[int, int]:
    """(patch size, width) of vit-tiny-shapes."""
    c = _tiny_config()
    return c["patch_size"], c["hidden_size"]


_TRANSFER: dict[tuple[int, int], dict] = {}  # (size, n) -> measured row; the model never changes in a process
_TRANSFER_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------
#                                   Figures
# --------------------------------------------------------------------------------------

def _vector_figure(p: compute.Projection, patch_size: int) -> Figure:
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    block = patch_size * patch_size
    for ch, colour in enumerate(("tab:red", "tab:green", "tab:blue")):
        xs = np.arange(ch * block, (ch + 1) * block)
        top.plot(xs, p.vector[xs], color=colour, lw=0.9, label="RGB"[ch])
    top.set_title(f"patch {p.index} flattened: x ∈ R^{p.vector.size} (P²·C, channel-major like Conv2d's weight; "
                  "pixels scaled to [-1, 1])", fontsize=9)
    top.legend(loc="upper right", fontsize=7, ncols=3)
    top.set_xlim(0, p.vector.size - 1)
    bottom.bar(np.arange(p.embedding.size), p.embedding, width=1.0, color="tab:purple")
    bottom.set_title(f"its embedding z = W·x + b ∈ R^{p.embedding.size}", fontsize=9)
    bottom.set_xlim(-0.5, p.embedding.size - 0.5)
    return fig


def _similarity_figure(sim: np.ndarray, row: int, col: int, structure: dict, title: str) -> Figure:
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
    im = left.imshow(sim, cmap="viridis", vmin=sim.min(), vmax=1)
    left.scatter([col], [row], marker="x", color="red", s=50)
    left.set_title(f"cosine similarity to position ({row}, {col})", fontsize=9)
    left.set_xlabel("column")
    left.set_ylabel("row")
    fig.colorbar(im, ax=left, shrink=0.85)
    dist, mean = zip(*structure["by_distance"], strict=True)
    right.plot(dist, mean, "o-", ms=3)
    right.axhline(structure["non_neighbour_mean"], color="grey", ls="--", lw=1, label="mean over non-neighbours")
    right.set_xlabel("grid distance between two positions (Euclidean, rounded)")
    right.set_ylabel("mean cosine similarity")
    right.set_title(title, fontsize=9)
    right.legend(fontsize=7)
    return fig


def _transfer_figure(rows: list[dict], base: int, patch: int) -> Figure:
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    sizes = [r["image_size"] for r in rows]
    ax.plot(sizes, [r["accuracy_interpolated"] for r in rows], "o-", label="positions interpolated (bicubic)")
    ax.plot(sizes, [r["accuracy_resized_to_base"] for r in rows], "s--", color="grey",
            label=f"reference: same shapes resized to {base} px")
    ax.axvline(base, color="tab:green", lw=1, ls=":", label=f"training resolution ({base} px)")
    ax.set_xlabel(f"input resolution (px), patch {patch}")
    ax.set_ylabel("top-1 accuracy, held-out shapes")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(sizes)
    ax.legend(fontsize=8, loc="lower right")
    return fig


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

def _inputs(image, image_size, patch_size) -> tuple[int, int]:
    if image is None:
        raise ValueError("no image given: upload an image or pick a sample.")
    return as_int(image_size, "image size"), as_int(patch_size, "patch size")


@user_errors
def patchify(image, image_size, patch_size):
    """(image, image size, patch size) -> (overlay with the grid and indices, stats JSON)."""
    image_size, patch_size = _inputs(image, image_size, patch_size)
    result = compute.patchify(image, image_size, patch_size)
    drawing, facts = compute.overlay(result.image, patch_size)
    return drawing, {**result.stats(), "overlay_scale": facts["scale"], "indices_drawn": bool(facts["label_step"])}


@user_errors
def tokens(image, image_size, patch_size, width):
    """The token strip, the formulas with numbers, and the 8/16/32 comparison table."""
    image_size, patch_size = _inputs(image, image_size, patch_size)
    width = compute.check_width(as_int(width, "width D"))
    result = compute.patchify(image, image_size, patch_size)
    g = result.grid
    strip, shown = compute.token_strip(result.image, patch_size)
    more = "" if shown == g.seq_len else f" (the first {shown} of {g.seq_len:,} tokens are drawn)"
    numbers = (
        f"| quantity | formula | value |\n|---|---|---|\n"
        f"| patches N | ⌊H/P⌋·⌊W/P⌋ = ⌊{g.image_size}/{g.patch_size}⌋·⌊{g.image_size}/{g.patch_size}⌋ | "
        f"{g.rows}·{g.cols} = **{g.num_patches:,}** |\n"
        f"| sequence length | N + 1 ([CLS]) | **{g.seq_len:,}** |\n"
        f"| patch vector length | P²·C = {g.patch_size}²·{g.channels} | **{g.patch_dim:,}** |\n"
        f"| projection parameters | D·(P²·C + 1) = {width}·({g.patch_dim:,} + 1) | **{g.projection_params(width):,}** |\n"
        f"| position table (learned) | (N + 1)·D | {g.seq_len * width:,} |\n\n"
        f"{result.notes[0]} {result.notes[1]}{more}"
    )
    rows = compute.compare_patch_sizes(g.image_size, tuple(sorted({*compute.COMPARE_PATCH_SIZES, g.patch_size})))
    table = pd.DataFrame([[
        f"{r['patch_size']}" + (" (yours)" if r["patch_size"] == g.patch_size else ""), r["grid"], f"{r['tokens']:,}",
        f"{r['attention_entries']:,}", compute.human_bytes(r["fp32_bytes"]), compute.human_bytes(r["bf16_bytes"]),
    ] for r in rows], columns=TABLE_HEADERS)
    return strip, numbers, table


@user_errors
def project(image, image_size, patch_size, width, index, source):
    """One patch through the linear projection, and the Conv2d == unfold + matmul check."""
    image_size, patch_size = _inputs(image, image_size, patch_size)
    index = as_int(index, "patch index")
    result = compute.patchify(image, image_size, patch_size)
    if source in LEARNED:
        model = _model(LEARNED[source])
        p_model, d_model = model.config.patch_size, model.config.hidden_size
        if patch_size != p_model:
            raise ValueError(f"the {LEARNED[source]} projection takes {p_model}x{p_model} patches (D = {d_model}): "
                             f"set the patch size to {p_model} (image size {model.config.image_size} matches its "
                             "training), or pick the seeded random projection.")
        conv, label = compute.trained_projection(model), f"the trained {LEARNED[source]} projection (D = {d_model})"
    elif source == RANDOM:
        width = compute.check_width(as_int(width, "width D"))
        conv, label = compute.seeded_projection(patch_size, width), f"a seeded random projection (D = {width})"
    else:
        raise ValueError(f"projection must be one of {[RANDOM, *LEARNED]}, got {source!r}")
    p = compute.project_patch(result.image, patch_size, index, conv)
    highlighted, _ = compute.overlay(result.image, patch_size, highlight=index)
    zoom = max(1, 160 // patch_size)
    patch_img = Image.fromarray(p.patch).resize((patch_size * zoom,) * 2, Image.Resampling.NEAREST)
    check = (
        f"**Patch {p.index}** is row {p.row}, column {p.col}; in the sequence it is token {p.index + 1} "
        f"(token 0 is [CLS]). Embedded with {label}.\n\n"
        f"`Conv2d(kernel_size={patch_size}, stride={patch_size})` against `unfold` + matmul over all "
        f"{result.grid.num_patches:,} patches: **max |difference| = {p.max_abs_diff:.2e}** "
        f"(float32 rounding; the two are the same linear map)."
    )
    return highlighted, patch_img, _vector_figure(p, patch_size), check


def pick_patch(stats: dict, evt: gr.SelectData):
    """A click on the overlay (overlay pixels) -> the patch index under it."""
    if not stats:
        raise gr.Error("run the patchify step first")
    x, y = evt.index
    try:
        return compute.patch_at(x, y, stats["image_size"], stats["patch_size"], stats.get("overlay_scale", 1))
    except ValueError as err:
        raise gr.Error(str(err)) from None


@user_errors
def positions(kind, grid, row, col, width):
    """Similarity map of one position, Figure-7-style mosaic, and the neighbour test."""
    grid, row, col = as_int(grid, "grid"), as_int(row, "row"), as_int(col, "column")
    if not 3 <= grid <= 32:
        raise ValueError(f"grid must be an integer from 3 to 32, got {grid}")
    if not (0 <= row < grid and 0 <= col < grid):
        raise ValueError(f"row and column must be from 0 to {grid - 1}, got ({row}, {col})")
    note = ""
    if kind == SIN_COS_1D:
        dim = compute.check_width(as_int(width, "width D"))
        table = compute.sincos_1d(grid * grid, dim)  # (N, D), raster index as the 1-D position
        source = f"1-D sin-cos, D = {dim}, position = raster index"
    elif kind == SIN_COS_2D:
        dim = compute.check_width(as_int(width, "width D"))
        table = compute.sincos_2d(grid, dim)  # (N, D)
        source = f"2-D sin-cos, D = {dim} (D/2 for the row, D/2 for the column)"
    elif kind in POSITION_KINDS[2:]:
        name = LEARNED[kind.removeprefix("learned: ")]
        model = _model(name)
        native = model.config.image_size // model.config.patch_size
        full = model.vit.embeddings.position_embeddings.detach().cpu()  # (1, 1 + native², D)
        table = compute.interpolate_positions(full, grid)[0, 1:].float().numpy()  # (grid², D)
        source = f"learned {name} table, D = {table.shape[1]}"
        if grid != native:
            note = (f" Its native grid is {native}x{native}; this is the table interpolated (bicubic) to "
                    f"{grid}x{grid}, as in resolution transfer below.")
    else:
        raise ValueError(f"encoding must be one of {POSITION_KINDS}, got {kind!r}")
    sim = compute.similarity_map(table, grid, row * grid + col)
    s = compute.neighbour_similarity(table, grid)
    mosaic = compute.similarity_mosaic(table, grid, cell=max(2, 96 // grid))
    summary = (
        f"**{source}.**{note} Mean cosine similarity of grid neighbours (4-connected, {s['neighbour_pairs']} pairs): "
        f"**{s['neighbour_mean']:.3f}**; of all other pairs ({s['non_neighbour_pairs']:,}): "
        f"**{s['non_neighbour_mean']:.3f}**. A gap means the code carries the 2-D layout. Among the border "
        f"positions: {s['border_mean']:.3f}; among the interior ones: {s['interior_mean']:.3f}."
    )
    if kind in POSITION_KINDS[2:] and s["border_mean"] > s["interior_mean"] + 0.2:
        summary += (" The learned table gives the border positions a shared code: that is why far-apart border "
                    "pairs are similar again on the right of the plot.")
    elif kind in POSITION_KINDS[2:] and s["interior_mean"] > s["border_mean"] + 0.2:
        summary += (" The learned table splits the grid into a centre block and a border ring, each with a "
                    "code of its own: nearby positions are more similar mostly because they share the ring or the "
                    "centre. There is no finer order along the ring, because the training shapes are symmetric "
                    "under the square's rotations and flips (random rotation, plus the recipe's rot90/flip "
                    "augmentation): every border position plays the same role. ViT-B/16's table, learned on "
                    "photos, shows rows and columns instead (Figure 7 of the paper, for ViT-L/32).")
    return _similarity_figure(sim, row, col, s, "mean similarity against distance"), mosaic, summary


@user_errors
def filters(source, mode):
    """The patch-embedding filters (or their principal components) as images."""
    if source in LEARNED:
        weight = compute.trained_projection(_model(LEARNED[source])).weight.detach()  # (D, 3, P, P)
    elif source == RANDOM:
        p, d = _tiny_shape()
        weight = compute.seeded_projection(p, d).weight.detach()  # (D, 3, P, P): vit-tiny-shapes' shape, untrained
    else:
        raise ValueError(f"source must be one of {[*LEARNED, RANDOM]}, got {source!r}")
    pca = mode.startswith("principal")
    images, explained = compute.filter_images(weight, "pca" if pca else "filters", count=28)
    text = (f"{len(images)} {'principal components' if pca else 'filters'} of the {weight.shape[0]} "
            f"{weight.shape[2]}x{weight.shape[3]}x{weight.shape[1]} filters, each scaled to [0, 1].")
    if explained is not None:
        text += (f" The top 5 explain {', '.join(f'{v:.1%}' for v in explained[:5])} of the variance; the top 28 "
                 f"together {explained.sum():.1%}.")
    return compute.tile_images(images), text


def _filters_on_load(source, mode):
    """On page load a missing model is a note on the page, not an error pop-up."""
    try:
        return filters.__wrapped__(source, mode)
    except ValueError as err:
        return None, f"⚠️ {err}"


@user_errors
def transfer(sizes, n, progress=gr.Progress()):
    """Run vit-tiny-shapes at other resolutions with its position table interpolated."""
    sizes = sorted({as_int(s, "image size") for s in (sizes or [])})
    n = as_int(n, "number of test images")
    if not sizes:
        raise ValueError("pick at least one resolution")
    if not 50 <= n <= 2000:
        raise ValueError(f"number of test images must be from 50 to 2000, got {n}")
    model = _model()
    base = model.config.image_size
    rows = []
    for k, size in enumerate(sizes):
        progress(k / len(sizes), desc=f"{size} px: rendering {n} test shapes and classifying")
        with _TRANSFER_LOCK:
            if (size, n) not in _TRANSFER:
                _TRANSFER[(size, n)] = compute.transfer_accuracy(model, [size], n)[0]
        rows.append(_TRANSFER[(size, n)])
    base_row = next((r for r in rows if r["image_size"] == base), None)
    base_acc = base_row["accuracy_interpolated"] if base_row else compute.transfer_accuracy(model, [base], n)[0][
        "accuracy_interpolated"]
    table = pd.DataFrame([[
        f"{r['image_size']} px", r["grid"], r["tokens"], f"{r['accuracy_interpolated']:.1%}",
        f"{r['accuracy_resized_to_base']:.1%}", f"{100 * (r['accuracy_interpolated'] - base_acc):+.1f} points",
    ] for r in rows], columns=TRANSFER_HEADERS)
    summary = f"Measured on the first {n} test-split shapes (seed 2, never seen in training); at {base} px: {base_acc:.1%}."
    return _transfer_figure(rows, base, model.config.patch_size), table, summary


def _slider_for(image_size, patch_size):
    """Keep the patch-size slider within 2..image size when the image size changes."""
    try:
        s = compute.check_image_size(as_int(image_size, "image size"))
    except ValueError:
        return gr.skip()
    p = patch_size if isinstance(patch_size, (int, float)) else 16
    return gr.update(maximum=s, value=int(min(max(p, 2), s)))


def _keep_index(index, stats):
    """Reset the chosen patch to 0 when the new grid has no such patch."""
    try:
        i = as_int(index, "patch index")
    except ValueError:
        return 0
    return i if stats and 0 <= i < stats.get("num_patches", 0) else 0


def _grid_for_kind(kind, grid):
    """A learned table opens on its native grid (interpolation is one slider move away)."""
    native = {LEARNED_KIND_TINY: 8, LEARNED_KIND_BASE: 14}
    return native.get(kind, grid)


def _grid_sliders(grid):
    g = int(grid)
    return gr.update(maximum=g - 1, value=g // 2), gr.update(maximum=g - 1, value=g // 2)


def _skip_without_image(fn):
    """Live updates (typing, dragging, clearing the image) stay quiet until there is an image."""
    def wrapper(image, *args):
        if image is None:
            return gr.skip()
        return fn(image, *args)
    return wrapper


# --------------------------------------------------------------------------------------
#                                   Layout
# --------------------------------------------------------------------------------------

def build() -> gr.Blocks:
    tiny = _tiny_config()
    tiny_size, tiny_patch = tiny["image_size"], tiny["patch_size"]
    tiny_grid = tiny_size // tiny_patch
    samples = sample_examples()
    default = next((p for p in samples if "star" in p), samples[0] if samples else None)  # plain background
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# 🧩 {TITLE}\n"
            f"A Vision Transformer reads an image as a sentence of patches ({PAPERS['vit']}, \"An Image is Worth "
            "16x16 Words\"). Cut the image into P×P patches, flatten each, project it linearly to width D, "
            "prepend a [CLS] token and add a position code. Every number and picture below is computed from "
            f"your inputs; the trained model is `vit-tiny-shapes` ({tiny_size} px, patch {tiny_patch}, a "
            f"{tiny_grid}×{tiny_grid} grid), trained in this project."
        )

        # ---- 1. Patchify -------------------------------------------------------------
        gr.Markdown("## 1 · Cut the image into patches")
        with gr.Row():
            with gr.Column(scale=2):
                image = gr.Image(label="Image", value=default, height=300, type="pil",
                                 sources=["upload", "clipboard"])
                gr.Examples(samples, inputs=[image], label="Samples (shapes dataset renders)",
                            api_name=f"{SLUG}_load_example", api_visibility="private")
                image_size = gr.Dropdown(
                    choices=[32, 64, 224, 384, 512], value=224, allow_custom_value=True,
                    label=f"Image size S (pick or type any integer {compute.MIN_IMAGE_SIZE}–{compute.MAX_IMAGE_SIZE})",
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
                stats = gr.JSON(label="Stats (the API's second output)")

        gr.Markdown("## 2 · The token sequence\nPatches in raster order (row by row), after the [CLS] token whose "
                    "final state the classifier reads. Sequence position = patch index + 1.")
        strip = gr.Image(label="Tokens: [CLS], 0, 1, …, N−1", format="png", interactive=False)
        numbers = gr.Markdown()
        gr.Markdown("**Patch size against cost at this resolution.** Attention compares every token with every "
                    "token, so one head in one layer holds (N+1)² scores; memory if materialised (kernels such "
                    "as FlashAttention never store it). Halving P quadruples N and multiplies this by about 16.")
        table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True)

        # ---- 3. Projection ------------------------------------------------------------
        gr.Markdown(
            "## 3 · The linear projection\nEach patch x (P²·C numbers) becomes z = W·x + b in R^D; one W for "
            "all patches. In code it is `nn.Conv2d(C, D, kernel_size=P, stride=P)`: the kernel sees exactly one "
            "patch per step. The check below computes it both ways."
        )
        with gr.Row():
            patch_index = gr.Number(value=0, label="Patch index (or click the grid)", precision=None)
            source = gr.Radio([RANDOM, *LEARNED], value=RANDOM, label="Projection weights")
            project_btn = gr.Button("Project this patch")
        with gr.Row():
            patch_view = gr.Image(label="The patch", format="png", interactive=False, height=180, scale=1)
            vector_plot = gr.Plot(label="Flattened patch and its embedding", show_label=False, scale=4)
        check = gr.Markdown()

        # ---- 4. Positions -----------------------------------------------------------------
        gr.Markdown(
            "## 4 · Positional encodings\nSelf-attention ignores order, so each token gets a position code. "
            f"1-D sin-cos ({PAPERS['vaswani']}) numbers the patches 0…N−1; 2-D sin-cos ({PAPERS['mocov3']}, "
            f"{PAPERS['mae']}) spends half the dimensions on the row and half on the column; ViT learns the "
            "table. The map shows how similar one position's code is to every other's (cosine). The mosaic "
            f"repeats that for every position, like Figure 7 (centre) of {PAPERS['vit']}."
        )
        with gr.Row():
            kind = gr.Radio(POSITION_KINDS, value=SIN_COS_2D, label="Encoding")
            grid = gr.Slider(3, 32, value=14, step=1, label="Grid (patches a side)",
                             info=f"vit-tiny-shapes' table is {tiny_grid}x{tiny_grid}, ViT-B/16's 14x14; "
                                  "other grids interpolate it.")
            pos_row = gr.Slider(0, 13, value=7, step=1, label="Position row")
            pos_col = gr.Slider(0, 13, value=7, step=1, label="Position column")
        pos_plot = gr.Plot(label="Similarity to the chosen position, and against distance", show_label=False)
        with gr.Row():
            mosaic = gr.Image(label="Every position's similarity map (ViT Fig. 7 centre style)", format="png",
                              interactive=False, height=420)
            pos_text = gr.Markdown()

        # ---- 5. Filters ------------------------------------------------------------------
        gr.Markdown(
            "## 5 · What the projection learned\nThe rows of W seen as P×P RGB images. Figure 7 (left) of "
            f"{PAPERS['vit']} shows the top principal components of ViT-L/32's filters: smooth, low-frequency "
            "bases. Compare the trained model with a random projection of the same shape."
        )
        with gr.Row():
            filt_source = gr.Radio([*LEARNED, RANDOM], value=TRAINED, label="Weights")
            filt_mode = gr.Radio(["principal components", "raw filters"], value="principal components", label="Show")
            filt_btn = gr.Button("Show filters")
        with gr.Row():
            filt_img = gr.Image(label="Filters (each normalised to [0, 1])", format="png", interactive=False)
            filt_text = gr.Markdown()

        # ---- 6. Resolution transfer ---------------------------------------------------------
        gr.Markdown(
            "## 6 · Resolution transfer\nA learned table has one row per training position. At a new resolution "
            "(same P) the grid changes from g to g′, so ViT resizes the table by \"2D interpolation\" (section 3.2): "
            "reshape the N = g² rows to g×g×D → interpolate to g′×g′×D → flatten to g′² rows; [CLS] keeps its row. "
            "This page interpolates bicubically, timm's choice; the paper does not name a kernel. "
            f"Here vit-tiny-shapes (trained at {tiny_size} px, g = {tiny_grid}) runs on held-out shapes rendered "
            f"natively at each resolution, without any fine-tuning. The grey reference feeds the same shapes resized "
            f"to {tiny_size} px to the unchanged model. Expect a drop: at a new resolution each {tiny_patch}×{tiny_patch} "
            "patch also covers a different "
            "share of the shape, so the patch filters see a new scale, not only new positions. That is why ViT "
            "fine-tunes after interpolating, at a higher resolution than pre-training (section 3.2, citing "
            "[Touvron et al., 2019](https://arxiv.org/abs/1906.06423))."
        )
        with gr.Row():
            choices = [tiny_patch * k for k in (2, 3, 4, 5, 6, 8, 10, 12, 16) if tiny_patch * k <= 128]
            sizes = gr.CheckboxGroup(choices, value=[c for c in choices if tiny_size // 2 <= c <= 2 * tiny_size][:5],
                                     label=f"Resolutions (px, multiples of the patch size {tiny_patch})")
            n_test = gr.Slider(50, 2000, value=300, step=50, label="Held-out test images per resolution")
            transfer_btn = gr.Button("Measure accuracy", variant="primary")
        transfer_plot = gr.Plot(label="Accuracy against resolution", show_label=False)
        transfer_table = gr.Dataframe(headers=TRANSFER_HEADERS, interactive=False)
        transfer_text = gr.Markdown()

        # ---- Events ------------------------------------------------------------------------
        main_in = [image, image_size, patch_size]
        token_in = [image, image_size, patch_size, width]
        project_in = [image, image_size, patch_size, width, patch_index, source]
        project_out = [overlay, patch_view, vector_plot, check]

        def rest_of_page(dep, quiet: bool):
            """After patchify: the token strip and numbers, a valid patch index, its projection."""
            wrap = _skip_without_image if quiet else (lambda fn: fn)
            names = {} if quiet else {"tokens": f"{SLUG}_tokens", "project": f"{SLUG}_project"}
            hidden = {"api_visibility": "private"}
            after_tokens = raw_values(dep.success, wrap(tokens), token_in, [strip, numbers, table],
                                      **({"api_name": names["tokens"]} if names else hidden))
            kept = after_tokens.success(_keep_index, [patch_index, stats], patch_index, **hidden)
            return raw_values(kept.success, wrap(project), project_in, project_out,
                              **({"api_name": names["project"]} if names else hidden))

        # Every event with the image goes through raw_values: it loads the image with clear errors and
        # hands the other values over as sent, for the handlers' own checks.
        # The public endpoint, then the rest of the page.
        rest_of_page(raw_values(run.click, patchify, main_in, [overlay, stats], api_name=f"{SLUG}_patchify"),
                     quiet=False)
        # Live updates: the same handlers, quiet while there is no image.
        live = functools.partial(gr.on, [demo.load, image.change, patch_size.release, width.change])
        rest_of_page(raw_values(live, _skip_without_image(patchify), main_in, [overlay, stats],
                                api_visibility="private"), quiet=True)
        resized = image_size.change(_slider_for, [image_size, patch_size], patch_size, api_visibility="private")
        rest_of_page(raw_values(resized.then, _skip_without_image(patchify), main_in, [overlay, stats],
                                api_visibility="private"), quiet=True)

        picked = overlay.select(pick_patch, [stats], patch_index, api_visibility="private")
        raw_values(picked.success, _skip_without_image(project), project_in, project_out, api_visibility="private")
        raw_values(functools.partial(gr.on, [project_btn.click, patch_index.submit, source.change]),
                   _skip_without_image(project), project_in, project_out, api_visibility="private")

        pos_in = [kind, grid, pos_row, pos_col, width]
        pos_out = [pos_plot, mosaic, pos_text]
        grid.release(_grid_sliders, grid, [pos_row, pos_col], api_visibility="private").success(
            positions, pos_in, pos_out, api_visibility="private")
        gr.on([demo.load, pos_row.release, pos_col.release], positions, pos_in, pos_out,
              api_name=f"{SLUG}_positions")
        (kind.change(_grid_for_kind, [kind, grid], grid, api_visibility="private")
            .then(_grid_sliders, grid, [pos_row, pos_col], api_visibility="private")
            .then(positions, pos_in, pos_out, api_visibility="private"))

        gr.on([filt_btn.click, filt_source.change, filt_mode.change], filters, [filt_source, filt_mode],
              [filt_img, filt_text], api_name=f"{SLUG}_filters")
        demo.load(_filters_on_load, [filt_source, filt_mode], [filt_img, filt_text], api_visibility="private")
        transfer_btn.click(transfer, [sizes, n_test], [transfer_plot, transfer_table, transfer_text],
                           api_name=f"{SLUG}_transfer")
    return demo


if __name__ == "__main__":
    build().launch()
