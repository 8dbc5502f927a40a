"""Template: the maths of a tutorial, as typed pure functions (copy this folder to start one).

Rules this file shows (see "Add a tutorial" in the top-level README):

- no UI-library import; bad input raises ``ValueError`` through ``shared.validate``, whose message names
  the input, the allowed range and what came;
- heavy libraries (torch, transformers, diffusers, scipy) may be imported here, because ``app.py``
  imports this module inside its handlers, never at start-up;
- every formula cites its source, and a unit test checks it against an independent computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from shared import validate

from .options import MAX_PATCH, MIN_PATCH


@dataclass
class PatchMeans:
    means: np.ndarray  # (g, g, 3) mean RGB of each patch, 0-255
    patch_size: int
    grid: int

    @property
    def stats(self) -> dict:
        return {"grid": f"{self.grid}x{self.grid}", "patches": self.grid * self.grid, "patch_size": self.patch_size,
                "brightest_patch": int(self.means.mean(-1).argmax())}


def patch_means(image: Image.Image, patch_size: int) -> PatchMeans:
    """Mean colour of each non-overlapping ``patch_size`` patch of the centred square crop
    (the patch grid of a ViT, Dosovitskiy et al., 2021, section 3.1)."""
    from shared.images import centre_square

    if not isinstance(image, Image.Image):
        raise ValueError("no image given: upload an image or pick a sample.")
    square = np.asarray(centre_square(image.convert("RGB")), dtype=np.float64)  # (S, S, 3)
    patch_size = validate.integer(patch_size, "patch size", MIN_PATCH, min(MAX_PATCH, square.shape[0]))
    g = square.shape[0] // patch_size
    cut = square[: g * patch_size, : g * patch_size]  # (g*P, g*P, 3): the border that does not fill a patch is dropped
    means = cut.reshape(g, patch_size, g, patch_size, 3).mean(axis=(1, 3))  # (g, g, 3)
    return PatchMeans(means, patch_size, g)
