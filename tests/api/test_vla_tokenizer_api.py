"""The VLA tokenizer's public API through gradio_client: encode, chunk, read_file, compare, perturb.

Every bad input the issue names comes back as a clear error (AppError with our message), and a
good call right after it still works. ``compare`` and ``perturb`` return what the page shows and then
the paths of its downloads, which must read back as the values shown.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from shared.actions import MAX_DIMS, MAX_STEPS, generate_chunk, to_csv, to_json
from spaces.vla_tokenizer.options import SOURCES
from tests.serving import call_concurrently

ENCODE = "/vla_tokenizer_encode"
BOX = SOURCES[1]  # the chunk in the text box (pasted or uploaded)
SMOOTH_JSON = to_json(generate_chunk(3, 50, 50.0, 0.0), decimals=10)
SMOOTH = np.array(json.loads(SMOOTH_JSON))  # exactly what the server parses


def _good_encode(client) -> None:
    out = client.predict(SMOOTH_JSON, "bin256", 10.0, api_name=ENCODE)
    assert out["num_tokens"] == 350


def test_encode_bin256(client):
    out = client.predict(SMOOTH_JSON, "bin256", 10.0, api_name=ENCODE)
    assert out["num_tokens"] == len(out["tokens"]) == 50 * 7
    decoded = np.array(out["decoded"])
    assert decoded.shape == (50, 7)
    half_bin = (SMOOTH.max(0) - SMOOTH.min(0)) / 512
    assert (np.abs(decoded - SMOOTH).max(0) <= half_bin * (1 + 1e-6) + 1e-12).all()
    assert out["max_abs_error"] == pytest.approx(np.abs(decoded - SMOOTH).max(), rel=1e-6)


def test_encode_fast_csv_and_scale(client):
    coarse = client.predict(to_csv(SMOOTH, ("x",) * 7, decimals=10), "fast", 10.0, api_name=ENCODE)
    fine = client.predict(SMOOTH_JSON, "fast", 100.0, api_name=ENCODE)
    assert coarse["num_tokens"] == len(coarse["tokens"]) < 350 / 3
    assert fine["num_tokens"] > coarse["num_tokens"]
    assert fine["max_abs_error"] < coarse["max_abs_error"]
    decoded = np.array(coarse["decoded"])
    assert decoded.shape == (50, 7)
    assert coarse["mean_abs_error"] == pytest.approx(np.abs(decoded - SMOOTH).mean(), rel=1e-6)


BAD = {
    "nan": (json.dumps([[1.0, 2.0], [float("nan"), 3.0]]), "fast", 10.0, "NaN or infinite"),
    "inf csv": ("1,inf\n2,3", "bin256", 10.0, "NaN or infinite"),
    "ragged": ("[[1, 2], [3]]", "fast", 10.0, "ragged"),
    "empty": ("", "fast", 10.0, "empty"),
    "empty list": ("[]", "bin256", 10.0, "empty"),
    "single step": ("[[1, 2, 3]]", "fast", 10.0, "single step"),
    "too many steps": (json.dumps([[0.0, 1.0]] * (MAX_STEPS + 1)), "fast", 10.0, f"at most {MAX_STEPS}"),
    "too many dims": (json.dumps([[0.0] * (MAX_DIMS + 1)] * 3), "bin256", 10.0, f"at most {MAX_DIMS}"),
    "non-numeric csv": ("1,2\n3,abc", "fast", 10.0, "non-numeric"),
    "unknown method": (SMOOTH_JSON, "vq", 10.0, r"unknown method 'vq'; choose one of \['bin256', 'fast'\]"),
    "scale as text": (SMOOTH_JSON, "fast", "abc", "scale must be a finite number"),
    "scale zero": (SMOOTH_JSON, "fast", 0.0, "greater than 0"),
    "scale negative": (SMOOTH_JSON, "fast", -3.0, "greater than 0"),
    "scale too large": (SMOOTH_JSON, "fast", 5000.0, "at most 1000"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_encode_bad_input_then_good_call(client, name):
    actions, method, scale, message = BAD[name]
    with pytest.raises(AppError, match=message):
        client.predict(actions, method, scale, api_name=ENCODE)
    _good_encode(client)


COMPARE_OUTPUTS = 8  # summary, table, 4 figures, token ids, JSON; then the downloads


def _compare(client, text, bounds="chunk", source="generate", seed=3, hz=50, noise=0.0):
    return client.predict(text, 10.0, bounds, source, seed, hz, noise, api_name="/vla_tokenizer_compare")


def test_chunk_compare_perturb(client, tmp_path):
    text = client.predict("generate", 3, 50, 50, 0.0, "", api_name="/vla_tokenizer_chunk")
    np.testing.assert_allclose(np.array(json.loads(text)), generate_chunk(3, 50, 50.0, 0.0), atol=1e-8)
    out = _compare(client, text)
    assert len(out) == COMPARE_OUTPUTS + 1
    result = out[7]
    assert result["bin256"]["num_tokens"] == 350 and result["bounds"] == "chunk"
    assert result["compression_ratio"] == pytest.approx(350 / result["fast"]["num_tokens"])
    tokens = [r["num_tokens"] for r in result["scale_sweep"]]
    assert tokens == sorted(tokens)
    assert {r["seconds"] for r in result["frequency_sweep"]} == {1.0}
    assert result["bin256"]["clipped_values"] == 0  # per-chunk min-max bounds

    md, _, numbers, files = client.predict(text, 10.0, 30, 1, "chunk", api_name="/vla_tokenizer_perturb")
    assert numbers["bin256"]["changed_entries"] == 1 and numbers["fast"]["changed_entries"] >= 1
    assert f"{numbers['bin256']['bins_moved']:+d} bin" in md
    assert len(files) == 2  # the figure (PNG) and the numbers (JSON)

    buf = io.BytesIO()
    np.save(buf, SMOOTH[:20, :3])
    path = tmp_path / "chunk.npy"
    path.write_bytes(buf.getvalue())
    uploaded, source = client.predict(handle_file(str(path)), api_name="/vla_tokenizer_read_file")
    assert np.array(json.loads(uploaded)).shape == (20, 3) and source != "generate"
    boxed = client.predict(source, 0, 50, 50, 0.0, uploaded, api_name="/vla_tokenizer_chunk")
    assert _compare(client, boxed, source=source)[7]["frequency_sweep"] is None  # not a generated motion
    with pytest.raises(AppError, match="non-numeric"):
        client.predict(source, 0, 50, 50, 0.0, "a,b\n1,x", api_name="/vla_tokenizer_chunk")
    with pytest.raises(AppError, match="delta"):
        client.predict(text, 10.0, 3, 0, "chunk", api_name="/vla_tokenizer_perturb")
    _good_encode(client)


@pytest.mark.parametrize("args,message", [
    (("generate", 3.5, 50, 50, 0.0, ""), "seed must be an integer"),
    (("generate", 3, 1, 50, 0.0, ""), "steps must be an integer from 2 to 1000"),
    (("generate", 3, 50, "nan", 0.0, ""), "control frequency"),
    (("somewhere", 3, 50, 50, 0.0, ""), "unknown source"),
])
def test_chunk_bad_input_then_good_call(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/vla_tokenizer_chunk")
    _good_encode(client)


def test_compare_bad_input_then_good_call(client):
    with pytest.raises(AppError, match="unknown bounds"):
        _compare(client, SMOOTH_JSON, bounds="global")
    with pytest.raises(AppError, match="per-chunk bounds"):  # dataset bounds exist for the 7-D corpus only
        _compare(client, "[[1, 2], [3, 4], [5, 7]]", bounds="dataset", source=BOX)
    with pytest.raises(AppError, match="token index must be an integer from 0 to 349"):
        client.predict(SMOOTH_JSON, 10.0, 350, 1, "chunk", api_name="/vla_tokenizer_perturb")
    _good_encode(client)


def test_compare_downloads_read_back_as_shown(client):
    x = SMOOTH.copy()
    x[5, 0] = 1.0  # far outside the corpus' bounds for dx: bin256 clips it
    out = _compare(client, to_json(x, decimals=10), bounds="dataset")
    summary, shown_table, result, files = out[0], out[1], out[7], out[8]
    assert result["bounds"] == "dataset" and result["bin256"]["clipped_values"] >= 1
    assert "clipped" in summary
    by_kind: dict[str, list[Path]] = {}
    for f in map(Path, files):
        by_kind.setdefault(f.suffix, []).append(f)
    assert sorted(by_kind) == [".csv", ".json", ".png"] and len(by_kind[".png"]) == 4
    (csv,) = by_kind[".csv"]
    table = pd.read_csv(csv)
    assert list(table.columns) == shown_table["headers"]
    assert len(table) == len(shown_table["data"]) == 7
    for row, shown in zip(table.itertuples(index=False), shown_table["data"], strict=True):
        assert row[0] == shown[0]
        np.testing.assert_allclose(np.array(row[1:], dtype=float), np.array(shown[1:], dtype=float), rtol=1e-12)
    (js,) = by_kind[".json"]
    assert json.loads(js.read_text()) == result
    for png in by_kind[".png"]:
        with Image.open(png) as im:
            im.verify()
            assert im.format == "PNG"


def test_two_clients_compare_at_once(hub_url):
    from gradio_client import Client

    chunks = [to_json(generate_chunk(seed, 50, 50.0, 0.1), decimals=10) for seed in (1, 2)]
    clients = [Client(hub_url, verbose=False) for _ in chunks]
    results = call_concurrently([lambda c=c, t=t: _compare(c, t, source=BOX)[7]
                                 for c, t in zip(clients, chunks, strict=True)])
    for text, result in zip(chunks, results, strict=True):  # each gets the answer for its own chunk
        assert result["fast"]["tokens"] == _compare(clients[0], text, source=BOX)[7]["fast"]["tokens"]
    assert results[0]["fast"]["tokens"] != results[1]["fast"]["tokens"]


# ------------------------------------------------------------------------------------------
#        Issue 23: trade-off, three tokenizers, sequence layout, flow matching
# ------------------------------------------------------------------------------------------

def test_new_views_through_the_api(client):
    table, _, numbers, files = client.predict(3, "chunk", api_name="/vla_tokenizer_tradeoff")
    assert [r["method"] for r in numbers["rows"]][:3] == ["bin64", "bin256", "bin1024"]
    assert len(table["data"]) == len(numbers["rows"]) and len(files) == 3
    md, table, _, numbers, _ = client.predict(SMOOTH_JSON, 1024, 10.0, 2, api_name="/vla_tokenizer_three")
    assert len(numbers["bin_tokens"]) == 350 and max(numbers["bin_tokens"]) < 1024
    assert len(numbers["vq_tokens"]) == 70 and "1024 bins" in md
    md, table, _, _ = client.predict(SMOOTH_JSON, 10.0, 224, 20, api_name="/vla_tokenizer_sequence")
    assert table["data"][0][-2] == 1 + 256 + 20 + 7 + 1 and "(224 / 14)² = 16² = **256**" in md
    md, _, numbers, _ = client.predict(SMOOTH_JSON, 0, 5, 10, api_name="/vla_tokenizer_flow")
    assert numbers["taus"] == [0, 0.25, 0.5, 0.75, 1] and numbers["euler_max_error"] < 1e-9


NEW_BAD = {
    "tradeoff n zero": ("/vla_tokenizer_tradeoff", (0, "chunk"), "held-out chunks must be an integer from 1 to 200"),
    "tradeoff n negative": ("/vla_tokenizer_tradeoff", (-5, "chunk"), "from 1 to 200"),
    "tradeoff n nan": ("/vla_tokenizer_tradeoff", ("nan", "chunk"), "held-out chunks must be an integer"),
    "tradeoff n fraction": ("/vla_tokenizer_tradeoff", (2.5, "chunk"), "held-out chunks must be an integer"),
    "tradeoff n above cap": ("/vla_tokenizer_tradeoff", (201, "chunk"), "from 1 to 200"),
    "tradeoff bounds": ("/vla_tokenizer_tradeoff", (3, "global"), "unknown bounds"),
    "unknown bin count": ("/vla_tokenizer_three", (SMOOTH_JSON, 100, 10.0, 3), "bin count must be one of 64, 256, 1024"),
    "bin count text": ("/vla_tokenizer_three", (SMOOTH_JSON, "many", 10.0, 3), "bin count must be one of"),
    "bin count nan": ("/vla_tokenizer_three", (SMOOTH_JSON, "nan", 10.0, 3), "bin count must be one of"),
    "bin count zero": ("/vla_tokenizer_three", (SMOOTH_JSON, 0, 10.0, 3), "bin count must be one of"),
    "levels zero": ("/vla_tokenizer_three", (SMOOTH_JSON, 256, 10.0, 0), "VQ levels must be an integer from 1 to 3"),
    "levels above cap": ("/vla_tokenizer_three", (SMOOTH_JSON, 256, 10.0, 4), "VQ levels"),
    "levels fraction": ("/vla_tokenizer_three", (SMOOTH_JSON, 256, 10.0, 1.5), "VQ levels"),
    "image size zero": ("/vla_tokenizer_sequence", (SMOOTH_JSON, 10.0, 0, 20), "image size"),
    "image size not a multiple": ("/vla_tokenizer_sequence", (SMOOTH_JSON, 10.0, 225, 20), "multiple of the patch"),
    "image size above cap": ("/vla_tokenizer_sequence", (SMOOTH_JSON, 10.0, 10_000, 20), "at most|to 896"),
    "prompt negative": ("/vla_tokenizer_sequence", (SMOOTH_JSON, 10.0, 224, -1), "prompt tokens"),
    "prompt nan": ("/vla_tokenizer_sequence", (SMOOTH_JSON, 10.0, 224, "nan"), "prompt tokens"),
    "flow seed negative": ("/vla_tokenizer_flow", (SMOOTH_JSON, -1, 5, 10), "noise seed"),
    "flow count one": ("/vla_tokenizer_flow", (SMOOTH_JSON, 0, 1, 10), "from 2 to 11"),
    "flow count above cap": ("/vla_tokenizer_flow", (SMOOTH_JSON, 0, 12, 10), "from 2 to 11"),
    "euler zero": ("/vla_tokenizer_flow", (SMOOTH_JSON, 0, 5, 0), "Euler steps"),
    "euler nan": ("/vla_tokenizer_flow", (SMOOTH_JSON, 0, 5, "nan"), "Euler steps"),
}


@pytest.mark.parametrize("name", list(NEW_BAD))
def test_new_views_bad_input(client, name):
    endpoint, args, message = NEW_BAD[name]
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=endpoint)


def test_new_views_keep_serving_after_bad_input(client):
    for name in ("unknown bin count", "tradeoff n nan", "image size not a multiple", "euler zero"):
        endpoint, args, _ = NEW_BAD[name]  # the parametrized test above made every bad call; these again, then good
        with pytest.raises(AppError):
            client.predict(*args, api_name=endpoint)
    _good_encode(client)
    md, _, numbers, _ = client.predict(SMOOTH_JSON, 1, 2, 1, api_name="/vla_tokenizer_flow")
    assert numbers["taus"] == [0, 1] and "2 points on the path" in md
