"""Event handlers of the patch explorer: check what the page or an API client sent, compute, format.

Events are wired through ``shared.ui.raw_values``, so a handler sees values as they were sent (3.5,
"abc", an unknown choice) and checks them with ``shared.validate``; ``shared.ui.user_errors`` turns the
``ValueError`` into the message a user reads. ``compute`` (which imports torch) is imported on the first
call, never when the page is built: the hub builds every page at start-up (issue 14).
"""

from __future__ import annotations

import functools
import threading

import gradio as gr
import pandas as pd
from PIL import Image

from shared import validate
from shared.models import TRANSFORMERS_IMPORT_LOCK as _IMPORT_LOCK  # transformers' first import is not thread-safe
from shared.ui import user_errors

from . import figures
from .options import (
    COMPARE_PATCH_SIZES,
    FILTER_MODES,
    LEARNED_MODEL,
    MAX_GRID,
    MAX_TEST_IMAGES,
    MIN_GRID,
    MIN_TEST_IMAGES,
    RANDOM,
    SIN_COS_1D,
    SIN_COS_2D,
    check_image_size,
    check_patch_size,
    check_width,
    learned,
    native_grids,
    position_kinds,
    projection_sources,
    tiny_config,
    transfer_sizes,
)

TABLE_HEADERS = ["patch P", "grid", "tokens N+1", "attention entries (N+1)²", "fp32 / head / layer",
                 "bf16 / head / layer"]
TRANSFER_HEADERS = ["resolution", "grid", "tokens", "accuracy (interpolated positions)",
                    "reference: resized to the training size", "change vs the training size"]  # change in points


def _compute():
    """compute.py, imported on first use (it imports torch)."""
    from . import compute

    return compute


def _model(name: str, progress=None):
    """A registry model, loaded on first use and cached by shared.models."""
    from shared.models import load

    if progress is not None:
        progress(0, desc=f"loading {name} (first use only; cached afterwards)")
    with _IMPORT_LOCK:
        return load(name, attn="eager").model


def _transformers_ready() -> None:
    """Import the transformers classes section 7 instantiates, under the same lock as ``_model``."""
    with _IMPORT_LOCK:
        from transformers import SwinConfig, SwinModel, ViTConfig, ViTForImageClassification  # noqa: F401


def _inputs(image, image_size, patch_size) -> tuple[int, int]:
    if image is None:
        raise ValueError("no image given: upload an image or pick a sample.")
    image_size = check_image_size(image_size)
    return image_size, check_patch_size(patch_size, image_size)


# --------------------------------------------------------------------------------------
#                                   1-3 · Patches, tokens, projection
# --------------------------------------------------------------------------------------

@user_errors
def patchify(image, image_size, patch_size):
    """(image, image size, patch size) -> (overlay with the grid and indices, stats JSON)."""
    C = _compute()
    image_size, patch_size = _inputs(image, image_size, patch_size)
    result = C.patchify(image, image_size, patch_size)
    drawing, facts = C.overlay(result.image, patch_size)
    return drawing, {**result.stats(), "overlay_scale": facts["scale"], "indices_drawn": bool(facts["label_step"])}


@user_errors
def tokens(image, image_size, patch_size, width):
    """The token strip, the formulas with numbers, and the 8/16/32 comparison table."""
    C = _compute()
    image_size, patch_size = _inputs(image, image_size, patch_size)
    width = check_width(width)
    result = C.patchify(image, image_size, patch_size)
    g = result.grid
    strip, shown = C.token_strip(result.image, patch_size)
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
    rows = C.compare_patch_sizes(g.image_size, tuple(sorted({*COMPARE_PATCH_SIZES, g.patch_size})))
    table = pd.DataFrame([[
        f"{r['patch_size']}" + (" (yours)" if r["patch_size"] == g.patch_size else ""), r["grid"], f"{r['tokens']:,}",
        f"{r['attention_entries']:,}", C.human_bytes(r["fp32_bytes"]), C.human_bytes(r["bf16_bytes"]),
    ] for r in rows], columns=TABLE_HEADERS)
    return strip, numbers, table


def _projection(source, patch_size: int, width, progress):
    """The Conv2d to project with, and words for it."""
    C = _compute()
    models = learned()
    source = validate.choice(source, "projection", projection_sources())
    if source == RANDOM:
        width = check_width(width)
        return C.seeded_projection(patch_size, width), f"a seeded random projection (D = {width})"
    name = models[source]
    model = _model(name, progress)
    p_model, d_model = model.config.patch_size, model.config.hidden_size
    if patch_size != p_model:
        raise ValueError(f"the {name} projection takes {p_model}x{p_model} patches (D = {d_model}): "
                         f"set the patch size to {p_model} (image size {model.config.image_size} matches its "
                         "training), or pick the seeded random projection.")
    return C.trained_projection(model), f"the trained {name} projection (D = {d_model})"


@user_errors
def project(image, image_size, patch_size, width, index, source, progress=gr.Progress()):
    """One patch through the linear projection, and the Conv2d == unfold + matmul check."""
    C = _compute()
    image_size, patch_size = _inputs(image, image_size, patch_size)
    result = C.patchify(image, image_size, patch_size)
    index = validate.integer(index, "patch index", 0, result.grid.num_patches - 1)
    conv, label = _projection(source, patch_size, width, progress)
    p = C.project_patch(result.image, patch_size, index, conv)
    highlighted, _ = C.overlay(result.image, patch_size, highlight=index)
    zoom = max(1, 160 // patch_size)
    patch_img = Image.fromarray(p.patch).resize((patch_size * zoom,) * 2, Image.Resampling.NEAREST)
    check = (
        f"**Patch {p.index}** is row {p.row}, column {p.col}; in the sequence it is token {p.index + 1} "
        f"(token 0 is [CLS]). Embedded with {label}.\n\n"
        f"`Conv2d(kernel_size={patch_size}, stride={patch_size})` against `unfold` + matmul over all "
        f"{result.grid.num_patches:,} patches: **max |difference| = {p.max_abs_diff:.2e}** "
        f"(float32 rounding; the two are the same linear map)."
    )
    return highlighted, patch_img, figures.vector_figure(p, patch_size), check


@user_errors
def pick_patch(stats, evt: gr.SelectData):
    """A click on the overlay (overlay pixels) -> the patch index under it."""
    if not isinstance(stats, dict) or "image_size" not in stats:
        raise ValueError("run the patchify step first")
    x, y = evt.index
    return _compute().patch_at(x, y, stats["image_size"], stats["patch_size"], stats.get("overlay_scale", 1))


# --------------------------------------------------------------------------------------
#                                   4 · Positions
# --------------------------------------------------------------------------------------

def _position_table(kind: str, grid: int, width, progress):
    """(N, D) table for ``kind`` on a grid x grid layout, words for it, and a note on interpolation."""
    C = _compute()
    if kind == SIN_COS_1D:
        dim = check_width(width)
        return C.sincos_1d(grid * grid, dim), f"1-D sin-cos, D = {dim}, position = raster index", ""
    if kind == SIN_COS_2D:
        dim = check_width(width)
        return C.sincos_2d(grid, dim), f"2-D sin-cos, D = {dim} (D/2 for the row, D/2 for the column)", ""
    name = learned()[kind.removeprefix("learned: ")]
    model = _model(name, progress)
    native = model.config.image_size // model.config.patch_size
    full = model.vit.embeddings.position_embeddings.detach().cpu()  # (1, 1 + native², D)
    table = C.interpolate_positions(full, grid)[0, 1:].float().numpy()  # (grid², D)
    note = "" if grid == native else (f" Its native grid is {native}x{native}; this is the table interpolated "
                                      f"(bicubic) to {grid}x{grid}, as in resolution transfer below.")
    return table, f"learned {name} table, D = {table.shape[1]}", note


def _position_summary(learned_table: bool, source: str, note: str, s: dict) -> str:
    summary = (
        f"**{source}.**{note} Mean cosine similarity of grid neighbours (4-connected, {s['neighbour_pairs']} pairs): "
        f"**{s['neighbour_mean']:.3f}**; of all other pairs ({s['non_neighbour_pairs']:,}): "
        f"**{s['non_neighbour_mean']:.3f}**. A gap means the code carries the 2-D layout. Among the border "
        f"positions: {s['border_mean']:.3f}; among the interior ones: {s['interior_mean']:.3f}."
    )
    if learned_table and s["border_mean"] > s["interior_mean"] + 0.2:
        summary += (" The learned table gives the border positions a shared code: that is why far-apart border "
                    "pairs are similar again on the right of the plot.")
    elif learned_table and s["interior_mean"] > s["border_mean"] + 0.2:
        summary += (" The learned table splits the grid into a centre block and a border ring, each with a "
                    "code of its own: nearby positions are more similar mostly because they share the ring or the "
                    "centre. There is no finer order along the ring, because the training shapes are symmetric "
                    "under the square's rotations and flips (random rotation, plus the recipe's rot90/flip "
                    "augmentation): every border position plays the same role. ViT-B/16's table, learned on "
                    "photos, shows rows and columns instead (Figure 7 of the paper, for ViT-L/32).")
    return summary


@user_errors
def positions(kind, grid, row, col, width, progress=gr.Progress()):
    """Similarity map of one position, Figure-7-style mosaic, and the neighbour test."""
    C = _compute()
    kind = validate.choice(kind, "encoding", position_kinds())
    grid = validate.integer(grid, "grid", MIN_GRID, MAX_GRID)
    row = validate.integer(row, "row", 0, grid - 1)
    col = validate.integer(col, "column", 0, grid - 1)
    table, source, note = _position_table(kind, grid, width, progress)
    sim = C.similarity_map(table, grid, row * grid + col)
    s = C.neighbour_similarity(table, grid)
    mosaic = C.similarity_mosaic(table, grid, cell=max(2, 96 // grid))
    summary = _position_summary(kind not in (SIN_COS_1D, SIN_COS_2D), source, note, s)
    return figures.similarity_figure(sim, row, col, s, "mean similarity against distance"), mosaic, summary


# --------------------------------------------------------------------------------------
#                                   5-6 · Filters, resolution transfer
# --------------------------------------------------------------------------------------

@user_errors
def filters(source, mode, progress=gr.Progress()):
    """The patch-embedding filters (or their principal components) as images."""
    C = _compute()
    source = validate.choice(source, "weights", [*learned(), RANDOM])
    pca = validate.choice(mode, "view", FILTER_MODES) == FILTER_MODES[0]
    if source == RANDOM:
        c = tiny_config()  # vit-tiny-shapes' shape, untrained
        weight = C.seeded_projection(c["patch_size"], c["hidden_size"]).weight.detach()  # (D, 3, P, P)
    else:
        weight = C.trained_projection(_model(learned()[source], progress)).weight.detach()  # (D, 3, P, P)
    images, explained = C.filter_images(weight, "pca" if pca else "filters", count=28)
    text = (f"{len(images)} {'principal components' if pca else 'filters'} of the {weight.shape[0]} "
            f"{weight.shape[2]}x{weight.shape[3]}x{weight.shape[1]} filters, each scaled to [0, 1].")
    if explained is not None:
        text += (f" The top 5 explain {', '.join(f'{v:.1%}' for v in explained[:5])} of the variance; the top 28 "
                 f"together {explained.sum():.1%}.")
    return C.tile_images(images), text


def filters_on_load(source, mode):
    """On page load a missing model is a note on the page, not an error pop-up."""
    try:
        return filters.__wrapped__(source, mode, progress=None)
    except ValueError as err:
        return None, f"⚠️ {err}"


_TRANSFER: dict[tuple[int, int], dict] = {}  # (size, n) -> measured row; the model never changes in a process
_TRANSFER_LOCK = threading.Lock()


def _measured(model, size: int, n: int) -> dict:
    """One transfer row, measured once per process (two users asking for it wait for one measurement)."""
    with _TRANSFER_LOCK:
        if (size, n) not in _TRANSFER:
            _TRANSFER[(size, n)] = _compute().transfer_accuracy(model, [size], n)[0]
        return _TRANSFER[(size, n)]


@user_errors
def transfer(sizes, n, progress=gr.Progress()):
    """Run vit-tiny-shapes at other resolutions with its position table interpolated."""
    sizes = sorted(validate.choices(sizes, "resolutions", transfer_sizes()))
    n = validate.integer(n, "number of test images", MIN_TEST_IMAGES, MAX_TEST_IMAGES)
    model = _model(LEARNED_MODEL, progress)
    base = model.config.image_size
    todo = sizes if base in sizes else [*sizes, base]  # the training size is the reference for "change"
    for k, size in enumerate(todo):
        progress(k / len(todo), desc=f"{size} px: rendering {n} test shapes and classifying")
        _measured(model, size, n)
    rows = [_measured(model, size, n) for size in sizes]
    base_acc = _measured(model, base, n)["accuracy_interpolated"]
    table = pd.DataFrame([[
        f"{r['image_size']} px", r["grid"], r["tokens"], f"{r['accuracy_interpolated']:.1%}",
        f"{r['accuracy_resized_to_base']:.1%}", f"{100 * (r['accuracy_interpolated'] - base_acc):+.1f} points",
    ] for r in rows], columns=TRANSFER_HEADERS)
    summary = (f"Measured on the first {n} test-split shapes (seed 2, never seen in training); "
               f"at {base} px: {base_acc:.1%}.")
    return figures.transfer_figure(rows, base, model.config.patch_size), table, summary


# --------------------------------------------------------------------------------------
#                                   Small UI helpers
# --------------------------------------------------------------------------------------

def slider_for(image_size, patch_size):
    """Keep the patch-size slider within 2..image size when the image size changes."""
    try:
        s = check_image_size(image_size)
    except ValueError:
        return gr.skip()
    try:
        p = validate.integer(patch_size, "patch size")
    except ValueError:
        p = 16
    return gr.update(maximum=s, value=min(max(p, 2), s))


def keep_index(index, stats):
    """Reset the chosen patch to 0 when the new grid has no such patch."""
    try:
        i = validate.integer(index, "patch index", 0)
    except ValueError:
        return 0
    return i if isinstance(stats, dict) and i < stats.get("num_patches", 0) else 0


def grid_for_kind(kind, grid):
    """A learned table opens on its native grid (interpolation is one slider move away)."""
    name = learned().get(kind.removeprefix("learned: ")) if isinstance(kind, str) else None
    return native_grids()[name] if name else gr.skip()


def grid_sliders(grid):
    """Row and column sliders sized to the grid, set to its centre."""
    try:
        g = validate.integer(grid, "grid", MIN_GRID, MAX_GRID)
    except ValueError:
        return gr.skip(), gr.skip()
    return gr.update(maximum=g - 1, value=g // 2), gr.update(maximum=g - 1, value=g // 2)


def skip_without_image(fn):
    """Live updates (typing, dragging, clearing the image) stay quiet until there is an image."""
    @functools.wraps(fn)
    def wrapper(image, *args, **kwargs):
        if image is None:
            return gr.skip()
        return fn(image, *args, **kwargs)
    return wrapper
