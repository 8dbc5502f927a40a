"""The patch explorer's public API through gradio_client, on the hub and on the space's own URL.

Every bad input the foundation issue names must come back as a clear error (AppError with
our message), and a good call right after it must still work. Each endpoint that fills a table,
plot or stats panel also returns the files a user downloads (last output).
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.images import sample_paths
from shared.models import available_offline, local_path
from tests.serving import call_concurrently

PATCHIFY = "/patch_explorer_patchify"
RANDOM = "seeded random (untrained)"
_CONFIG = local_path("vit-tiny-shapes") / "config.json"
TRAINED = f"vit-tiny-shapes (trained here, P={json.loads(_CONFIG.read_text())['patch_size'] if _CONFIG.is_file() else 8})"
VIT_B = "google/vit-base-patch16-224 (P=16, D=768; Hub)"


@pytest.fixture(scope="module")
def sample():
    return handle_file(str(sample_paths()[0]))


def _good_call(client, sample) -> None:
    overlay, stats, _ = client.predict(sample, 224, 16, api_name=PATCHIFY)
    assert Path(overlay).is_file() and stats["num_patches"] == 196


# --------------------------------------------------------------------------------------
#                                   Bad files
# --------------------------------------------------------------------------------------

def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _forged_png(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose IHDR (with a correct CRC) claims width x height pixels."""
    data = bytearray(_png_bytes(Image.new("RGB", (8, 8), (10, 20, 30))))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc_at = ihdr + 13
    data[crc_at:crc_at + 4] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:crc_at])) & 0xFFFFFFFF)
    return bytes(data)


def _bad_files(tmp: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, a word the error must contain)."""
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    return {
        "text renamed .png": (_write(tmp / "notes.png", b"this is a text file, not an image\n" * 20), "not an image"),
        "truncated JPEG": (_write(tmp / "cut.jpg", jpeg.getvalue()[: len(jpeg.getvalue()) // 2]), "truncated"),
        "1x1 image": (_write(tmp / "dot.png", _png_bytes(Image.new("RGB", (1, 1)))), "at least"),
        "30000x30000 header": (_write(tmp / "bomb.png", _forged_png(30000, 30000)), "30000x30000|decompression-bomb"),
    }


def test_bad_files_give_clear_errors_and_the_server_keeps_serving(client, sample, tmp_path):
    for path, word in _bad_files(tmp_path).values():
        with pytest.raises(AppError, match=word):
            client.predict(handle_file(path), 224, 16, api_name=PATCHIFY)
        _good_call(client, sample)  # after each bad input


def _mode_images(tmp: Path) -> dict[str, str]:
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    paths = {}
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    paths["RGBA"] = _write(tmp / "rgba.png", _png_bytes(rgba))
    paths["P"] = _write(tmp / "palette.png", _png_bytes(rgb.convert("P")))
    i16 = Image.fromarray((rng.integers(0, 65535, (40, 60))).astype(np.uint16))
    assert i16.mode.startswith("I;16")
    paths["I;16"] = _write(tmp / "gray16.png", _png_bytes(i16))
    cmyk = io.BytesIO()
    rgb.convert("CMYK").save(cmyk, "JPEG")
    paths["CMYK"] = _write(tmp / "cmyk.jpg", cmyk.getvalue())
    return paths


def test_other_modes_are_converted_to_rgb(client, tmp_path):
    for mode, path in _mode_images(tmp_path).items():
        assert Image.open(path).mode.startswith(mode), mode
        overlay, stats, _ = client.predict(handle_file(path), 32, 4, api_name=PATCHIFY)
        assert Image.open(overlay).mode == "RGB", mode
        assert (stats["num_patches"], stats["seq_len"], stats["patch_dim"]) == (64, 65, 48), mode
        assert "centre-cropped to 40x40" in stats["resize_note"], mode


# --------------------------------------------------------------------------------------
#                                   The contract
# --------------------------------------------------------------------------------------

def test_patchify_224_16(client, sample):
    overlay, stats, _ = client.predict(sample, 224, 16, api_name=PATCHIFY)
    assert (stats["grid_rows"], stats["grid_cols"]) == (14, 14)
    assert (stats["num_patches"], stats["seq_len"], stats["patch_dim"]) == (196, 197, 768)
    assert stats["cropped_pixels"] == 0
    img = Image.open(overlay)
    assert img.size == (224 * stats["overlay_scale"],) * 2


def test_patchify_indivisible_patch_says_what_is_cropped(client, sample):
    _, stats, _ = client.predict(sample, 224, 24, api_name=PATCHIFY)
    assert (stats["grid_rows"], stats["num_patches"], stats["seq_len"], stats["patch_dim"]) == (9, 81, 82, 1728)
    assert stats["cropped_pixels"] == 8 and "dropped" in stats["crop_note"]


@pytest.mark.parametrize("image_size,patch_size,word", [
    (224, 0, "patch size must be an integer from 2 to 224, got 0"),
    (224, -16, "patch size must be an integer from 2 to 224, got -16"),
    (224, 225, "patch size must be an integer from 2 to 224, got 225"),
    (32, 33, "patch size must be an integer from 2 to 32, got 33"),
    (224, 3.5, "patch size must be an integer from 2 to 224, got 3.5"),
    (224, "abc", "patch size must be an integer from 2 to 224, got 'abc'"),
    (224, None, "patch size must be an integer"),
    (0, 16, "image size must be an integer from 8 to 1024, got 0"),
    (1025, 16, "image size must be an integer from 8 to 1024"),
    (100000, 16, "image size must be an integer from 8 to 1024"),
    ("abc", 16, "image size must be an integer from 8 to 1024, got 'abc'"),
    ("nan", 16, "image size must be an integer"),
])
def test_bad_numbers(client, sample, image_size, patch_size, word):
    with pytest.raises(AppError, match=word):
        client.predict(sample, image_size, patch_size, api_name=PATCHIFY)
    _good_call(client, sample)


def test_space_on_its_own_url(space_client, sample):
    c = space_client("patch_explorer")
    _, stats, _ = c.predict(sample, 224, 16, api_name=PATCHIFY)
    assert (stats["num_patches"], stats["seq_len"], stats["patch_dim"]) == (196, 197, 768)
    with pytest.raises(AppError, match="must be an integer"):
        c.predict(sample, 224, 3.5, api_name=PATCHIFY)
    _good_call(c, sample)


# --------------------------------------------------------------------------------------
#                                   Downloads and concurrent clients
# --------------------------------------------------------------------------------------

def test_downloads_hold_what_the_page_shows(client, sample):
    """Issue 14: the stats as JSON, the table as CSV (its rows are the rows shown), the plot as PNG."""
    _, stats, files = client.predict(sample, 224, 24, api_name=PATCHIFY)
    assert [Path(f).suffix for f in files] == [".json"]
    assert json.loads(Path(files[0]).read_text()) == stats

    _, _, table, files = client.predict(sample, 224, 24, 768, api_name="/patch_explorer_tokens")
    assert [Path(f).suffix for f in files] == [".csv"]
    with open(files[0], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == table["headers"] and rows[1:] == table["data"] and len(rows) == 1 + 4  # 8, 16, 24 (yours), 32

    *_, files = client.predict(sample, 224, 24, 768, 5, RANDOM, api_name="/patch_explorer_project")
    assert [Path(f).suffix for f in files] == [".png"]
    with Image.open(files[0]) as png:
        png.load()
        assert png.format == "PNG" and min(png.size) > 100


def test_concurrent_clients_each_get_their_own_numbers_and_files(client, sample):
    cases = [(224, 16), (224, 24), (64, 8), (100, 7)]
    calls = [lambda s=s, p=p: client.predict(sample, s, p, api_name=PATCHIFY) for s, p in cases]
    for (s, p), (overlay, stats, files) in zip(cases, call_concurrently(calls), strict=True):
        assert (stats["image_size"], stats["patch_size"], stats["num_patches"]) == (s, p, (s // p) ** 2)
        assert json.loads(Path(files[0]).read_text()) == stats
        assert Image.open(overlay).size == (s * stats["overlay_scale"],) * 2


# --------------------------------------------------------------------------------------
#                                   The other endpoints
# --------------------------------------------------------------------------------------

def test_tokens(client, sample):
    strip, numbers, table, _ = client.predict(sample, 224, 16, 768, api_name="/patch_explorer_tokens")
    assert Path(strip).is_file()
    assert "**196**" in numbers and "**197**" in numbers and "**590,592**" in numbers
    rows = {r[0]: r for r in table["data"]}
    assert rows["16 (yours)"][2] == "197" and rows["8"][2] == "785"


def test_project(client, sample):
    overlay, patch, plot, check, _ = client.predict(sample, 224, 16, 768, 20, RANDOM,
                                                    api_name="/patch_explorer_project")
    assert Path(overlay).is_file() and Path(patch).is_file()
    assert "row 1, column 6" in check and "max |difference|" in check
    for index in (196, -1, 2.5, "x"):
        with pytest.raises(AppError, match="patch index must be an integer from 0 to 195"):
            client.predict(sample, 224, 16, 768, index, RANDOM, api_name="/patch_explorer_project")
    with pytest.raises(AppError, match="unknown projection 'nope'"):
        client.predict(sample, 224, 16, 768, 0, "nope", api_name="/patch_explorer_project")


def test_positions(client):
    plot, mosaic, text, _ = client.predict("2D sin-cos", 14, 3, 4, 768, api_name="/patch_explorer_positions")
    assert Path(mosaic).is_file() and "neighbours" in text
    with pytest.raises(AppError, match="divisible by 4"):
        client.predict("2D sin-cos", 14, 3, 4, 770, api_name="/patch_explorer_positions")
    with pytest.raises(AppError, match="row must be an integer from 0 to 7, got 8"):
        client.predict("1D sin-cos", 8, 8, 0, 768, api_name="/patch_explorer_positions")
    with pytest.raises(AppError, match="grid must be an integer from 3 to 32, got 40"):
        client.predict("1D sin-cos", 40, 0, 0, 768, api_name="/patch_explorer_positions")
    with pytest.raises(AppError, match="unknown encoding '3D'"):
        client.predict("3D", 8, 0, 0, 768, api_name="/patch_explorer_positions")


@pytest.mark.skipif(available_offline("google/vit-base-patch16-224"), reason="ViT-B/16 is in the local cache")
def test_hub_model_offline_is_a_clear_error(client, sample):
    with pytest.raises(AppError, match="not available.*vit-tiny-shapes"):
        client.predict(VIT_B, "principal components", api_name="/patch_explorer_filters")
    _good_call(client, sample)


@pytest.mark.skipif(not available_offline("vit-tiny-shapes"), reason="needs shared/weights/vit-tiny-shapes")
def test_model_endpoints(client, sample):
    config = json.loads((local_path("vit-tiny-shapes") / "config.json").read_text())
    p = config["patch_size"]
    overlay, patch, plot, check, _ = client.predict(sample, 32, p, 768, 3, TRAINED, api_name="/patch_explorer_project")
    assert "trained vit-tiny-shapes projection (D = " in check
    with pytest.raises(AppError, match=f"{p}x{p} patches"):
        client.predict(sample, 224, 16, 768, 0, TRAINED, api_name="/patch_explorer_project")
    _, _, text, _ = client.predict("learned: " + TRAINED, 8, 2, 5, 768, api_name="/patch_explorer_positions")
    assert "learned vit-tiny-shapes table" in text
    img, text = client.predict(TRAINED, "principal components", api_name="/patch_explorer_filters")
    assert Path(img).is_file() and "variance" in text
    base = config["image_size"]
    plot, table, text, files = client.predict([base, base * 3 // 2], 100, api_name="/patch_explorer_transfer")
    assert [r[0] for r in table["data"]] == [f"{base} px", f"{base * 3 // 2} px"] and f"at {base} px" in text
    assert sorted(Path(f).suffix for f in files) == [".csv", ".png"]
    with pytest.raises(AppError, match=r"unknown resolutions \[30\]"):
        client.predict([30], 100, api_name="/patch_explorer_transfer")
    with pytest.raises(AppError, match="choose at least 1 resolutions"):
        client.predict([], 100, api_name="/patch_explorer_transfer")
    with pytest.raises(AppError, match="number of test images must be an integer from 50 to 2000, got 10"):
        client.predict([base], 10, api_name="/patch_explorer_transfer")
    _good_call(client, sample)


# --------------------------------------------------------------------------------------
#                                   Section 7 (issue 23): the new endpoints
# --------------------------------------------------------------------------------------

VIT_B16 = [768, 12, 12, 3072, 224, 16]
SWIN_T = [224, 4, 96, 7]
# (endpoint, arguments, the message) for each new numeric control at zero, negative, NaN, non-integer and
# above its cap, and each unknown choice. Validation runs before any model is built, so each call is quick.
BAD_NEW = [
    ("/patch_explorer_memory", [*VIT_B16, 0, "bf16"], "batch size must be an integer from 1 to 4096, got 0"),
    ("/patch_explorer_memory", [*VIT_B16, -2, "bf16"], "batch size must be an integer from 1 to 4096, got -2"),
    ("/patch_explorer_memory", [*VIT_B16, "nan", "bf16"], "batch size must be an integer"),
    ("/patch_explorer_memory", [*VIT_B16, 2.5, "bf16"], "batch size must be an integer"),
    ("/patch_explorer_memory", [*VIT_B16, 5000, "bf16"], "batch size must be an integer from 1 to 4096, got 5000"),
    ("/patch_explorer_memory", [*VIT_B16, 8, "int4"], "unknown precision 'int4'"),
    ("/patch_explorer_memory", [0, 12, 12, 3072, 224, 16, 8, "fp32"], "hidden size must be an integer from 1 to 8192"),
    ("/patch_explorer_flops", [768, 12, 12, 3072, 224, -16], "patch size must be an integer"),
    ("/patch_explorer_flops", [768, "nan", 12, 3072, 224, 16], "num layers must be an integer"),
    ("/patch_explorer_flops", [768, 12, 12, 3072.5, 224, 16], "mlp dim must be an integer"),
    ("/patch_explorer_relative", [0, 0, 64, 14, 100], "window size M must be an integer from 2 to 16, got 0"),
    ("/patch_explorer_relative", [7, 0, 66, 14, 100], "head dimension must be a multiple of 4"),
    ("/patch_explorer_relative", [7, 0, 64, 14, "nan"], "RoPE base θ must be a finite number"),
    ("/patch_explorer_relative", [7, 0, 64, 99, 100], "RoPE grid must be an integer from 2 to 32, got 99"),
    ("/patch_explorer_interpolation", [96, ["lanczos"]], "unknown interpolation modes \\['lanczos'\\]"),
    ("/patch_explorer_interpolation", [0, ["nearest"]], "unknown resolution 0"),
    ("/patch_explorer_interpolation", [-96, ["nearest"]], "unknown resolution -96"),
    ("/patch_explorer_interpolation", ["nan", ["nearest"]], "resolution must be an integer"),
    ("/patch_explorer_interpolation", [96.5, ["nearest"]], "resolution must be an integer"),
    ("/patch_explorer_hierarchy", [0, 4, 96, 7], "image size must be an integer from 32 to 1024, got 0"),
    ("/patch_explorer_hierarchy", [224, 4, -96, 7], "embedding width C must be an integer from 3 to 384"),
    ("/patch_explorer_hierarchy", [224, "nan", 96, 7], "patch size must be an integer"),
    ("/patch_explorer_hierarchy", [224, 4, 96, 7.5], "window size M must be an integer"),
    ("/patch_explorer_hierarchy", [4096, 4, 96, 7], "image size must be an integer from 32 to 1024, got 4096"),
]


@pytest.mark.parametrize("endpoint, args, match", BAD_NEW, ids=[f"{e.removeprefix('/patch_explorer_')}-{i}" for i, (e, _, _) in enumerate(BAD_NEW)])
def test_new_endpoints_refuse_bad_input_clearly(client, endpoint, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=endpoint)


def test_memory_endpoint_keys_and_the_server_keeps_serving(client):
    stats, files = client.predict(*VIT_B16, 8, "fp16", api_name="/patch_explorer_memory")
    params = stats["params"]
    assert params == 86_567_656  # ViT-B/16, 1000 classes (Dosovitskiy et al., 2021: 86 M)
    assert stats["weights_bytes"] == 2 * params
    assert stats["training_bytes"] == 4 * 2 * params + stats["saved_activation_bytes"]
    t, d, m, h = 197, 768, 3072, 12
    assert stats["activation_bytes"] == 2 * 8 * (3 * 224 * 224 + h * t * t + max(8 * t * d, 4 * t * d + 2 * t * m))
    assert [Path(f).suffix for f in files] == [".json"]
    int8, _ = client.predict(*VIT_B16, 8, "int8", api_name="/patch_explorer_memory")
    assert int8["weights_bytes"] == params and int8["training_bytes"] is None


def test_hierarchy_endpoint(client):
    table, _plot, stats, files = client.predict(*SWIN_T, api_name="/patch_explorer_hierarchy")
    assert [s["tokens"] for s in stats["stages"]] == [3136, 784, 196, 49]
    assert [s["width"] for s in stats["stages"]] == [96, 192, 384, 768]
    assert len(table["data"]) == 4 and len(files) == 3
