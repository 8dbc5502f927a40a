"""spaces/_template/ is the skeleton every new tutorial copies, so it must work and follow the rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaces._template import app, compute

ROOT = Path(__file__).resolve().parents[2]


def test_patch_means_match_a_direct_average():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)  # 90 wide: the crop keeps columns 10..79
    result = compute.patch_means(Image.fromarray(pixels), 32)
    assert result.grid == 2 and result.means.shape == (2, 2, 3)
    expected = pixels[32:64, 10 + 32:10 + 64].reshape(-1, 3).mean(axis=0)  # patch (1, 1), by hand
    np.testing.assert_allclose(result.means[1, 1], expected)


@pytest.mark.parametrize("patch, match", [(1, "from 2 to"), (71, "from 2 to 70"), ("abc", "must be an integer")])
def test_bad_patch_sizes_get_a_message(patch, match):
    with pytest.raises(ValueError, match=match):
        compute.patch_means(Image.new("RGB", (70, 70)), patch)


def test_the_handler_fills_every_output_and_the_downloads():
    from shared.ui import with_downloads

    with app.gr.Blocks():
        outputs = [app.gr.Plot(label="Patch means"), app.gr.Dataframe(label="Per patch row"), app.gr.JSON(label="Stats")]
    fig, table, stats, files = with_downloads(app.run, outputs)(Image.new("RGB", (64, 64), "red"), 16)
    assert len(table) == 4 and stats["patches"] == 16
    assert sorted(Path(f).suffix for f in files) == [".csv", ".json", ".png"]


def test_building_the_page_imports_nothing_heavy():
    script = ("import sys; import spaces._template.app as a; a.build(); "
              "print([m for m in ('torch', 'matplotlib', 'scipy', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
