"""shared/images.py: every way an image arrives, every way it can be broken, and the shared conversions."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from shared.images import MAX_SIDE, centre_square, load_image, sample_paths, to_rgb, to_tensor


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with one tiny (wrong) data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")


def test_the_same_picture_from_a_path_bytes_pil_and_array(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "p.png"
    Image.fromarray(pixels).save(path)
    for source in (path, str(path), path.read_bytes(), Image.fromarray(pixels), pixels, {"path": str(path)}):
        image = load_image(source)
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    out = np.asarray(to_rgb(rgba))
    assert tuple(out[1, 1]) == (255, 255, 255) and tuple(out[0, 0]) == (0, 0, 255)


def test_16_bit_grey_is_rescaled_not_clipped_to_white():
    arr = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    image = to_rgb(Image.fromarray(arr, "I;16"))
    assert np.asarray(image)[..., 0].tolist() == [[0, 64], [128, 255]]  # (v - 0) / 4000 * 255, rounded


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    assert load_image(buf.getvalue()).size == (20, 40)


@pytest.mark.parametrize("value, match", [
    (None, "no image given"),
    (b"this is text, not a picture", "not an image PIL can read"),
    (12, "cannot read an image from a int"),
    (np.zeros((4, 4, 2), np.uint8), r"must be \(H, W\)"),
    (np.zeros((1, 1, 3), np.uint8), "at least 2 pixels"),
])
def test_bad_inputs_get_a_message(value, match):
    with pytest.raises(ValueError, match=match):
        load_image(value)


def test_empty_missing_truncated_and_oversized_files(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_image(empty)
    with pytest.raises(ValueError, match="no such image file"):
        load_image(tmp_path / "missing.png")
    whole = _png_bytes(Image.new("RGB", (64, 64), "green"))
    with pytest.raises(ValueError, match="damaged or truncated"):
        load_image(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=f"limit is {MAX_SIDE} pixels a side"):
        load_image(_png_header_claiming(MAX_SIDE + 1, 10))  # refused from the header, nothing decoded
    with pytest.raises(ValueError, match="decompression-bomb guard"):
        load_image(_png_header_claiming(30_000, 30_000))  # PIL's own guard answers first


def test_centre_square_keeps_the_middle():
    pixels = np.arange(6 * 10).reshape(6, 10).astype(np.uint8)
    square = np.asarray(centre_square(Image.fromarray(pixels)))
    np.testing.assert_array_equal(square, pixels[:, 2:8])
    same = Image.new("RGB", (5, 5))
    assert centre_square(same) is same


def test_to_tensor_maps_0_255_to_minus_1_plus_1_channels_first():
    pixels = np.array([[[0, 255, 51]]], dtype=np.uint8)  # (1, 1, 3)
    x = to_tensor(pixels)
    assert tuple(x.shape) == (1, 3, 1, 1)
    np.testing.assert_allclose(x.flatten().numpy(), [-1.0, 1.0, 51 / 127.5 - 1], atol=1e-6)
    batch = to_tensor(np.stack([pixels, pixels]))
    assert tuple(batch.shape) == (2, 3, 1, 1)


def test_shipped_samples_open():
    paths = sample_paths()
    assert len(paths) >= 5
    assert all(load_image(p).size[0] >= 64 for p in paths)


def test_pixels_key_tells_pixels_apart_and_ignores_copies():
    from shared.images import pixels_key

    a = Image.new("RGB", (4, 3), (1, 2, 3))
    assert pixels_key(a) == pixels_key(a.copy())
    b = a.copy()
    b.putpixel((3, 2), (1, 2, 4))
    assert pixels_key(b) != pixels_key(a)
    assert pixels_key(Image.new("RGB", (3, 4), (1, 2, 3))) != pixels_key(a)  # same bytes, other shape
    assert pixels_key(a.convert("RGBA")) != pixels_key(a)
    hash(pixels_key(a))
