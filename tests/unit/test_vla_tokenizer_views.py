"""vla_tokenizer, issue 23's views: bin counts, the VQ tokenizer, the sequence layout and flow matching,
each checked against an independent computation.

References used here: bin edges from ``np.linspace`` + ``np.searchsorted``; nearest codes by an explicit
loop over segments and codes; denormalisation written out; hand counts of OpenVLA's and pi0's sequences
(from the figures in options.py's comments); ``scipy.stats.zscore``; the flow path's closed form and a
finite difference; the VQ's config.json and metrics.json for the page's facts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from shared import actions as A
from shared.models import load
from spaces.vla_tokenizer import compute as C

ROOT = Path(__file__).resolve().parents[2]
VQ_DIR = ROOT / "shared" / "weights" / "vq-actions"
SMOOTH = A.generate_chunk(3, steps=50, hz=50.0, noise=0.0)  # the page's default chunk


@pytest.fixture(scope="module")
def vq():
    return load("vq-actions", device="cpu").model


# ------------------------------------------------------------------------------------------
#                                   Bin counts
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_bins", [64, 256, 1024])
def test_bins_match_linspace_edges_and_centres(n_bins):
    x = np.random.default_rng(n_bins).normal(size=(40, 3)) * [1.0, 0.01, 50.0]
    out = C.bins(x, n_bins)
    for d in range(3):
        edges = np.linspace(x[:, d].min(), x[:, d].max(), n_bins + 1)
        ids = np.clip(np.searchsorted(edges, x[:, d], side="right") - 1, 0, n_bins - 1)
        np.testing.assert_array_equal(out.tokens[:, d], ids)
        np.testing.assert_allclose(out.decoded[:, d], (edges[ids] + edges[ids + 1]) / 2, rtol=1e-12)
        assert np.abs(out.decoded[:, d] - x[:, d]).max() <= (edges[1] - edges[0]) / 2 * (1 + 1e-9)
    assert out.tokens.size == x.size and out.n_bins == n_bins


def test_more_bins_shrink_the_error_fourfold():
    errors = [np.abs(C.bins(SMOOTH[:, :6], n).decoded - SMOOTH[:, :6]).mean() for n in (64, 256, 1024)]
    assert 3.0 < errors[0] / errors[1] < 5.0 and 3.0 < errors[1] / errors[2] < 5.0


@pytest.mark.parametrize("value", [100, 0, -64, float("nan"), 2.5, "abc", 2048, "1024.5", None])
def test_unknown_bin_count_is_refused(value):
    with pytest.raises(ValueError, match="bin count must be one of 64, 256, 1024"):
        C.check_bins(value)


def test_bin_counts_accept_what_clients_send():
    assert C.check_bins(256.0) == 256 and C.check_bins("64") == 64


# ------------------------------------------------------------------------------------------
#                                   The VQ tokenizer
# ------------------------------------------------------------------------------------------

def test_vq_nearest_codes_match_an_explicit_loop(vq):
    cfg = json.loads((VQ_DIR / "config.json").read_text())
    patch, dims, levels = cfg["patch"], cfg["dims"], cfg["levels"]
    x = A.generate_chunk(7, 50, 50.0, noise=0.05)
    lo, hi = vq.lo.numpy(), vq.hi.numpy()
    books = vq.codebooks.double().numpy()
    unit = 2 * (x - lo) / (hi - lo) - 1
    expected = []
    for s in range(50 // patch):
        for d in range(dims):
            r = unit[s * patch:(s + 1) * patch, d].copy()
            ids = []
            for level in range(levels):
                dist = [float(((r - code) ** 2).sum()) for code in books[level]]
                ids.append(int(np.argmin(dist)))
                r = r - books[level][ids[-1]]
            expected.append(ids)
    result = C.vq_encode(x, levels, vq)
    np.testing.assert_array_equal(result.tokens, np.array(expected))
    assert result.tokens.size == 50 // patch * dims * levels
    # decode: sum of the chosen entries, then lo + (u + 1) / 2 (hi - lo)
    recon = np.zeros_like(x)
    for i, ids in enumerate(expected):
        s, d = divmod(i, dims)
        recon[s * patch:(s + 1) * patch, d] = sum(books[level][k] for level, k in enumerate(ids))
    np.testing.assert_allclose(result.decoded, lo + (recon + 1) / 2 * (hi - lo), rtol=1e-9, atol=1e-12)


def test_vq_more_levels_lower_the_error(vq):
    x = A.generate_chunk(11, 50, 50.0, noise=0.05)
    errors = [np.abs(C.vq_encode(x, k, vq).decoded - x).mean() for k in range(1, vq.levels + 1)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 1.5


@pytest.mark.parametrize("levels", [0, -1, 4, 1.5, float("nan"), "x"])
def test_vq_levels_out_of_range(vq, levels):
    with pytest.raises(ValueError, match="VQ levels must be an integer from 1 to 3"):
        C.vq_encode(SMOOTH, levels, vq)


@pytest.mark.parametrize("shape,message", [((50, 3), "7-D chunks"), ((45, 7), "not a multiple of 10")])
def test_vq_refuses_chunks_it_cannot_code(vq, shape, message):
    with pytest.raises(ValueError, match=message):
        C.vq_encode(np.random.default_rng(0).normal(size=shape), 1, vq)
    out = C.three_way(np.random.default_rng(0).normal(size=shape), 64, 10.0, 1, vq=vq)  # the others still run
    assert out["vq"] is None and message.split()[0] in out["vq_note"]
    assert [r["method"] for r in C.three_rows(out)] == ["bin", "fast"]


def test_three_way_rows_match_direct_errors(vq):
    out = C.three_way(SMOOTH, 1024, 10.0, 2, vq=vq)
    rows = {r["method"]: r for r in C.three_rows(out)}
    assert rows["bin"]["tokens"] == 350 and rows["bin"]["vocabulary"] == 1024
    assert rows["vq"]["tokens"] == 35 * 2
    span = SMOOTH.max(0) - SMOOTH.min(0)
    for method, decoded in (("bin", out["bins"].decoded), ("fast", out["fast"].decoded), ("vq", out["vq"].decoded)):
        rel = np.abs(decoded - SMOOTH) / span
        assert rows[method]["relative_mean_error"] == pytest.approx(rel.mean(), rel=1e-12)
        assert rows[method]["relative_max_error"] == pytest.approx(rel.max(), rel=1e-12)


# ------------------------------------------------------------------------------------------
#                                   The held-out trade-off
# ------------------------------------------------------------------------------------------

def test_tradeoff_on_held_out_chunks(vq):
    from transformers import AutoTokenizer

    n = 3
    rows = C.tradeoff(n, "chunk", vq=vq, scales=(10,))
    chunks = [A.generate_chunk(10_000_000 + i, 50, 50.0, (0.0, 0.05, 0.2)[i % 3]) for i in range(n)]
    by = {(r["method"], r["setting"]): r for r in rows}
    assert [r["method"] for r in rows] == ["bin64", "bin256", "bin1024", "fast", "vq", "vq", "vq"]
    for n_bins in (64, 256, 1024):
        r = by[(f"bin{n_bins}", f"{n_bins} bins, chunk bounds")]
        assert r["tokens_per_chunk"] == 350 and r["bits_per_chunk"] == pytest.approx(350 * math.log2(n_bins))
        rel = []
        for x in chunks:
            width = (x.max(0) - x.min(0)) / n_bins
            k = np.clip(np.floor((x - x.min(0)) / width), 0, n_bins - 1)
            rel.append((np.abs(x.min(0) + (k + 0.5) * width - x) / (x.max(0) - x.min(0))).mean())
        assert r["relative_mean_error"] == pytest.approx(np.mean(rel), rel=1e-9)
    errors = [by[(f"bin{b}", f"{b} bins, chunk bounds")]["relative_mean_error"] for b in (64, 256, 1024)]
    assert errors == sorted(errors, reverse=True)
    # FAST's count through the Hugging Face tokenizer the BPE was saved as
    bpe = AutoTokenizer.from_pretrained(str(ROOT / "shared" / "weights" / "fast-bpe-actions"))
    counts = [len(bpe(A.chunk_text(x, 10.0), add_special_tokens=False).input_ids) for x in chunks]
    assert by[("fast", "scale 10, chunk bounds")]["tokens_per_chunk"] == pytest.approx(np.mean(counts))
    vq_rows = [r for r in rows if r["method"] == "vq"]
    assert [r["tokens_per_chunk"] for r in vq_rows] == [35, 70, 105]
    assert [r["bits_per_chunk"] for r in vq_rows] == pytest.approx([35 * 8, 70 * 8, 105 * 8])
    assert vq_rows[0]["relative_mean_error"] > vq_rows[-1]["relative_mean_error"]


@pytest.mark.parametrize("n", [0, -2, float("nan"), 2.5, 201, "many"])
def test_tradeoff_refuses_bad_chunk_counts(n):
    with pytest.raises(ValueError, match="held-out chunks must be an integer from 1 to 200"):
        C.tradeoff(n)


# ------------------------------------------------------------------------------------------
#                                   Sequence layout
# ------------------------------------------------------------------------------------------

def test_sequence_counts_by_hand(vq):
    rows = C.sequence_layout(SMOOTH, 10.0, 224, 20, vq=vq)
    by = {r["layout"].split(",")[-1].strip(): r for r in rows}
    published = rows[0]
    assert published["image"] == 16 * 16  # 224 px / patch 14 = 16 patches a side
    assert published["total"] == 1 + 256 + 20 + 7 + 1  # <BOS>, patches, prompt, 7 action tokens, </s>
    assert by["bin256"]["action"] == 50 * 7 and by["bin256"]["total"] == 1 + 256 + 20 + 350 + 1
    assert by["VQ (all levels)"]["action"] == 105
    pi0 = rows[-1]
    assert pi0["total"] == 3 * 256 + 48 + 1 + 50 and pi0["bos"] == pi0["stop"] == 0
    assert C.image_tokens(448) == 32 * 32 and C.image_tokens(14) == 1


@pytest.mark.parametrize("size,message", [(0, "from 14 to 896"), (-224, "from 14 to 896"), (225, "multiple of"),
                                          (float("nan"), "integer"), (10_000, "from 14 to 896"), (224.5, "integer")])
def test_image_size_refused(size, message):
    with pytest.raises(ValueError, match=message):
        C.image_tokens(size)


@pytest.mark.parametrize("prompt", [0, -1, 2.5, float("nan"), 5000])
def test_prompt_tokens_refused(vq, prompt):
    with pytest.raises(ValueError, match="prompt tokens must be an integer from 1 to 4096"):
        C.sequence_layout(SMOOTH, 10.0, 224, prompt, vq=vq)


# ------------------------------------------------------------------------------------------
#                                   Flow matching
# ------------------------------------------------------------------------------------------

def test_flow_path_closed_form():
    from scipy.stats import zscore

    f = C.flow_path(SMOOTH, seed=4, count=5, euler_steps=10)
    chunk = np.nan_to_num(zscore(SMOOTH, axis=0))  # a constant dimension would be NaN there
    np.testing.assert_allclose(f["chunk"], chunk, atol=1e-12)
    noise = np.random.default_rng(4).standard_normal(SMOOTH.shape)
    np.testing.assert_allclose(f["taus"], [0, 0.25, 0.5, 0.75, 1])
    for tau, x in zip(f["taus"], f["path"], strict=True):
        np.testing.assert_allclose(x, tau * chunk + (1 - tau) * noise, atol=1e-12)
    np.testing.assert_allclose(f["path"][0], noise, atol=1e-12)
    np.testing.assert_allclose(f["path"][-1], chunk, atol=1e-12)
    # the velocity is d x_tau / d tau: a central difference of the closed form, at several tau
    h = 1e-4
    for tau in (0.1, 0.5, 0.9):
        diff = (((tau + h) * chunk + (1 - tau - h) * noise) - ((tau - h) * chunk + (1 - tau + h) * noise)) / (2 * h)
        np.testing.assert_allclose(f["velocity"], diff, atol=1e-8)
    assert f["euler"].shape == (11, 50, 7) and f["euler_max_error"] < 1e-12


@pytest.mark.parametrize("kwargs,message", [
    ({"seed": -1}, "noise seed"), ({"seed": float("nan")}, "noise seed"), ({"seed": 1.5}, "noise seed"),
    ({"count": 1}, "number of tau values must be an integer from 2 to 11"), ({"count": 12}, "from 2 to 11"),
    ({"count": 2.5}, "tau values"), ({"count": 0}, "tau values"),
    ({"euler_steps": 0}, "Euler steps must be an integer from 1 to 100"), ({"euler_steps": 101}, "Euler"),
    ({"euler_steps": -3}, "Euler"), ({"euler_steps": float("nan")}, "Euler"),
])
def test_flow_refuses_bad_controls(kwargs, message):
    with pytest.raises(ValueError, match=message):
        C.flow_path(SMOOTH, **kwargs)


# ------------------------------------------------------------------------------------------
#                                   Page facts = shipped files
# ------------------------------------------------------------------------------------------

def test_page_states_the_shipped_vq_facts():
    from spaces.vla_tokenizer.app import WEIGHTS, more_intro

    cfg = json.loads((VQ_DIR / "config.json").read_text())
    metrics = json.loads((VQ_DIR / "metrics.json").read_text())
    text = more_intro()
    assert f"nearest of {cfg['codebook_size']} codes" in text and f"for {cfg['levels']} levels" in text
    assert f"segments of {cfg['patch']} steps" in text
    for row in metrics["by_levels"].values():
        assert f"{row['tokens_per_chunk']} tokens: {100 * row['relative_mean_error']:.2f}%" in text
    assert f"{metrics['n']} held-out 50x7 chunks" in text and "vq-actions" in WEIGHTS
    card = (VQ_DIR / "README.md").read_text()
    assert "python -m shared.training vq-actions" in card and str(cfg["codebook_size"]) in card
