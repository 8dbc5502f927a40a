"""The VLA tokenizer's public API through gradio_client: encode, chunk, compare, perturb.

Every bad input the issue names comes back as a clear error (AppError with our message), and a
good call right after it still works.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from shared.actions import MAX_DIMS, MAX_STEPS, generate_chunk, to_csv, to_json

ENCODE = "/vla_tokenizer_encode"
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
    # gradio checks a Radio's value before the handler runs; its message lists the choices
    "unknown method": (SMOOTH_JSON, "vq", 10.0, r"not in the list of choices: \['bin256', 'fast'\]"),
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


def test_chunk_compare_perturb(client, tmp_path):
    text = client.predict("generate", 3, 50, 50, 0.0, None, "", api_name="/vla_tokenizer_chunk")
    np.testing.assert_allclose(np.array(json.loads(text)), generate_chunk(3, 50, 50.0, 0.0), atol=1e-8)
    result = client.predict(text, 10.0, "minmax", api_name="/vla_tokenizer_compare")
    assert result["bin256"]["num_tokens"] == 350
    assert result["compression_ratio"] == pytest.approx(350 / result["fast"]["num_tokens"])
    tokens = [r["num_tokens"] for r in result["scale_sweep"]]
    assert tokens == sorted(tokens)
    out = client.predict(text, 10.0, 30, 1, "minmax", api_name="/vla_tokenizer_perturb")
    assert out["bin256"]["changed_entries"] == 1 and out["fast"]["changed_entries"] >= 1

    buf = io.BytesIO()
    np.save(buf, SMOOTH[:20, :3])
    path = tmp_path / "chunk.npy"
    path.write_bytes(buf.getvalue())
    uploaded = client.predict("upload a file", 0, 50, 50, 0.0, handle_file(str(path)), "",
                              api_name="/vla_tokenizer_chunk")
    assert np.array(json.loads(uploaded)).shape == (20, 3)
    with pytest.raises(AppError, match="upload"):
        client.predict("upload a file", 0, 50, 50, 0.0, None, "", api_name="/vla_tokenizer_chunk")
    with pytest.raises(AppError, match="non-numeric"):
        client.predict("paste JSON or CSV", 0, 50, 50, 0.0, None, "a,b\n1,x", api_name="/vla_tokenizer_chunk")
    with pytest.raises(AppError, match="delta"):
        client.predict(text, 10.0, 3, 0, "minmax", api_name="/vla_tokenizer_perturb")
    _good_encode(client)
