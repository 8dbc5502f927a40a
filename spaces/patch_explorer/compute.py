"""Patch embeddings and positional encoding: how a Vision Transformer turns an image into tokens.

The tutorial follows the first step of ViT (Dosovitskiy et al., 2021, "An Image is Worth 16x16
Words", arXiv:2010.11929):

1. **Patchify** (``grid.py``). An image of H x W pixels is cut into non-overlapping P x P patches,
   N = floor(H/P) * floor(W/P) of them, read in raster order (row by row). A learned [CLS]
   token is prepended, so the encoder sees N + 1 tokens.
2. **Linear projection** (``projection.py``). Each patch is flattened to a vector of P^2 * C numbers
   and mapped to width D by one shared matrix: z_i = W x_i + b, with D * (P^2 * C + 1) parameters.
   In code this is ``Conv2d(C, D, kernel_size=P, stride=P)``; ``conv_vs_unfold`` checks numerically
   that it equals unfold + matmul.
3. **Position** (``positions.py``). Attention is permutation-invariant, so a position code is added
   to each token: fixed 1-D sin-cos (Vaswani et al., 2017, arXiv:1706.03762), fixed 2-D sin-cos
   (half the dimensions encode the row, half the column, as in MoCo v3, Chen et al., 2021,
   arXiv:2104.02057, and MAE, He et al., 2022, arXiv:2111.06377), or a learned table (ViT).
   A learned table has to discover the 2-D layout from data; ViT's Figure 7 (centre, ViT-L/32)
   shows that it does, and ``neighbour_similarity`` measures it on the model trained here.
4. **Resolution transfer** (``transfer.py``). At a new resolution the grid changes, so the learned
   table is reshaped to its sqrt(N) x sqrt(N) grid, resized and flattened again (ViT section 3.2:
   "2D interpolation"; the kernel here is bicubic, timm's choice), and the trained model is run
   that way on held-out shapes.

5. **Beyond the plain ViT** (issue 23). ``cost.py``: FLOPs per component and memory by precision, counted
   on a meta-device ViT with ``shared/vit_cost.py`` (the ViT anatomy page's counter); ``relative.py``: Swin's
   relative position bias (Liu et al., 2021) and 2-D RoPE (Heo et al., 2024); ``transfer.interpolation_accuracy``:
   nearest, bilinear and bicubic resizing of the learned table; ``hierarchy.py``: Swin-style patch merging.

Pictures are drawn in ``drawing.py``; limits and choices live in the torch-free ``options.py``.
This module is the one the page imports: it gathers the public functions of the others. Everything
is pure (numpy, torch, PIL), with no UI code; bad input raises ``ValueError`` saying what is allowed.
"""

from __future__ import annotations

from .cost import flops, memory, memory_all
from .drawing import overlay, overlay_scale, similarity_mosaic, tile_images, token_strip
from .grid import (
    PatchGrid,
    Patchified,
    compare_patch_sizes,
    crop_to_patches,
    flatten_patch,
    human_bytes,
    patch_at,
    patch_grid,
    patches,
    patchify,
    prepare,
)
from .hierarchy import closed_form, stages
from .options import (
    CHANNELS,
    COMPARE_PATCH_SIZES,
    LEARNED_MODEL,
    MAX_IMAGE_SIZE,
    MAX_PROJECTION_OUTPUTS,
    MAX_PROJECTION_WEIGHTS,
    MAX_STRIP_TOKENS,
    MAX_WIDTH,
    MIN_IMAGE_SIZE,
    MIN_PATCH_SIZE,
    check_image_size,
    check_patch_size,
    check_width,
)
from .positions import (
    cosine_similarity_matrix,
    interpolate_positions,
    learned_positions,
    neighbour_similarity,
    similarity_map,
    sincos_1d,
    sincos_2d,
)
from .projection import (
    Projection,
    conv_vs_unfold,
    filter_images,
    project_patch,
    seeded_projection,
    to_pixels,
    trained_projection,
)
from .relative import rope_rotate, rope_similarity, swin_bias, swin_bias_params
from .transfer import interpolation_accuracy, model_at_resolution, shapes_accuracy, transfer_accuracy

__all__ = [
    "CHANNELS", "COMPARE_PATCH_SIZES", "LEARNED_MODEL", "MAX_IMAGE_SIZE", "MAX_PROJECTION_OUTPUTS",
    "MAX_PROJECTION_WEIGHTS", "MAX_STRIP_TOKENS", "MAX_WIDTH", "MIN_IMAGE_SIZE", "MIN_PATCH_SIZE",
    "PatchGrid", "Patchified", "Projection", "check_image_size", "check_patch_size", "check_width",
    "compare_patch_sizes", "conv_vs_unfold", "cosine_similarity_matrix", "crop_to_patches", "filter_images",
    "flatten_patch", "human_bytes", "interpolate_positions", "learned_positions", "model_at_resolution",
    "neighbour_similarity", "overlay", "overlay_scale", "patch_at", "patch_grid", "patches", "patchify",
    "prepare", "project_patch", "seeded_projection", "shapes_accuracy", "similarity_map", "similarity_mosaic",
    "sincos_1d", "sincos_2d", "tile_images", "to_pixels", "token_strip", "trained_projection",
    "transfer_accuracy", "flops", "memory", "memory_all", "closed_form", "stages", "rope_rotate", "rope_similarity",
    "swin_bias", "swin_bias_params", "interpolation_accuracy",
]
