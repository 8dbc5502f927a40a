"""vla_tokenizer: binning and FAST checked against independent computations.

Independent references used here: bin edges from ``np.linspace`` and ``np.searchsorted``; the
DCT-II as an explicit cosine matrix; the Hugging Face tokenizer's own decoder; hand-written
zig-zag codes; ``np.quantile`` over the corpus; the facts the BPE's recipe wrote beside it.
"""

from __future__ import annotations

import functools
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from shared import actions as A
from spaces.vla_tokenizer import compute as C

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "shared" / "weights" / "fast-bpe-actions"
SMOOTH = A.generate_chunk(3, steps=50, hz=50.0, noise=0.0)  # the space's default chunk


@functools.cache
def shipped() -> tuple[dict, dict, str]:
    """What the BPE's recipe wrote: fast_config.json, metrics.json and the model card."""
    return (json.loads((WEIGHTS / "fast_config.json").read_text()), json.loads((WEIGHTS / "metrics.json").read_text()),
            (WEIGHTS / "README.md").read_text())


@functools.cache
def corpus_percentiles() -> np.ndarray:
    """(2, D): the 1st/99th percentiles over every step of the corpus the BPE was trained on."""
    cfg, metrics, _ = shipped()
    steps = np.concatenate(A.corpus(metrics["corpus_chunks"], seed=0))  # seed 0: the recipe's, in the card
    return np.quantile(steps, [cfg["quantile"], 1 - cfg["quantile"]], axis=0)


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II: M[k, t] = s_k cos(pi (2t + 1) k / 2n), s_0 = sqrt(1/n), else sqrt(2/n)."""
    k, t = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * t + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m


# ------------------------------------------------------------------------------------------
#                                   Generator and parser
# ------------------------------------------------------------------------------------------

def test_generator_is_seeded_7d_with_binary_gripper():
    a, b = A.generate_chunk(5), A.generate_chunk(5)
    assert a.shape == (50, 7) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, A.generate_chunk(6))
    grippers = [A.generate_chunk(s)[:, 6] for s in range(20)]
    assert all(set(np.unique(g)) <= {0.0, 1.0} for g in grippers)
    assert sum(len(np.unique(g)) == 2 for g in grippers) >= 5  # several chunks open or close the gripper


def test_generator_is_smooth_and_noise_adds_roughness():
    def roughness(x):  # second difference relative to the signal's spread
        return float((np.abs(np.diff(x[:, :6], 2, axis=0)).mean(0) / x[:, :6].std(0)).mean())

    clean, noisy = A.generate_chunk(1, noise=0.0), A.generate_chunk(1, noise=0.3)
    # a sinusoid of frequency f sampled at hz: |second difference| <= (2 pi f / hz)^2 x amplitude,
    # and amplitude <= sqrt(2) x std; the generator's motion stays below 1.5 Hz
    assert roughness(clean) < (2 * np.pi * 1.5 / 50) ** 2 * np.sqrt(2)
    assert roughness(noisy) > 20 * roughness(clean)
    np.testing.assert_array_equal(clean[:, 6], noisy[:, 6])  # the gripper stays clean


def test_generator_deltas_scale_with_control_period():
    # the same motion at twice the control frequency: half the delta per step
    slow, fast = A.generate_chunk(2, steps=50, hz=25.0), A.generate_chunk(2, steps=100, hz=50.0)
    ratio = np.abs(slow[:, :6]).mean() / np.abs(fast[:, :6]).mean()
    assert 1.7 < ratio < 2.3


@pytest.mark.parametrize("text", [
    "[[1, 2.5], [3, 4]]",
    "1,2.5\n3,4\n",
    "x,y\n1,2.5\n3,4",
    "1 2.5\n3 4",
    "1;2.5\n3;4",
])
def test_parse_text_formats(text):
    np.testing.assert_array_equal(A.parse_actions(text), [[1, 2.5], [3, 4]])


def test_parse_npy_bytes_and_files(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    buf = io.BytesIO()
    np.save(buf, x)
    np.testing.assert_array_equal(A.parse_actions(buf.getvalue()), x)
    np.save(tmp_path / "a.npy", x)
    (tmp_path / "a.csv").write_text(A.to_csv(x, ("p", "q", "r")))
    (tmp_path / "a.json").write_text(A.to_json(x))
    for name in ("a.npy", "a.csv", "a.json"):
        out = A.parse_actions(tmp_path / name)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, x)
    np.save(tmp_path / "obj.npy", np.array([[{"a": 1}, 2], [3, 4]], dtype=object))
    with pytest.raises(ValueError, match="npy"):
        A.parse_file(str(tmp_path / "obj.npy"))
    with pytest.raises(ValueError, match="non-numeric"):  # a string is data, never opened as a path
        A.parse_actions(str(tmp_path / "a.csv"))


BAD_INPUTS = {
    "nan json": ("[[NaN, 1], [2, 3]]", "NaN or infinite"),
    "inf csv": ("1,inf\n2,3", "NaN or infinite"),
    "nan csv": ("1,2\nnan,3", "NaN or infinite"),
    "ragged json": ("[[1, 2], [3]]", "ragged"),
    "ragged csv": ("1,2\n3,4,5", "ragged"),
    "empty": ("", "empty"),
    "empty list": ("[]", "empty"),
    "empty rows": ("[[], []]", "empty"),
    "single step json": ("[[1, 2, 3]]", "single step"),
    "single step csv": ("1,2,3", "single step"),
    "too many steps": (json.dumps([[0.0, 1.0]] * (A.MAX_STEPS + 1)), f"at most {A.MAX_STEPS}"),
    "too many dims": (json.dumps([[0.0] * (A.MAX_DIMS + 1)] * 3), f"at most {A.MAX_DIMS}"),
    "non-numeric csv": ("1,2\n3,abc", "non-numeric"),
    "non-numeric json": ('[[1, "a"], [2, 3]]', "not a number"),
    "flat json": ("[1, 2, 3]", "list of T lists"),
    "broken json": ("[[1, 2], [3, 4]", "invalid JSON"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_parser_rejects_bad_input(name):
    text, message = BAD_INPUTS[name]
    with pytest.raises(ValueError, match=message):
        A.parse_actions(text)


@pytest.mark.parametrize("kwargs,message", [
    (dict(steps=1), "steps must be an integer from 2 to 1000, got 1"),
    (dict(steps=2.5), "steps must be an integer"),
    (dict(hz=0.5), "control frequency"),
    (dict(noise=-0.1), "noise"),
    (dict(seed=-1), "seed must be an integer"),
    (dict(seed="abc"), "seed must be an integer"),
])
def test_generator_refuses_bad_arguments_with_the_allowed_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        A.generate_chunk(**{"seed": 0, **kwargs})


def test_validate_rejects_too_many_steps_as_array():
    with pytest.raises(ValueError, match="at most"):
        A.validate(np.zeros((A.MAX_STEPS + 1, 2)))
    with pytest.raises(ValueError, match="2-D"):
        A.validate(np.zeros(5))


def test_zigzag_characters():
    # hand-written codes: 0, -1, 1, -2, 2 -> U+0000..U+0004; surrogates are skipped
    assert [ord(c) for c in A.coefficients_to_text(np.array([0, -1, 1, -2, 2]))] == [0, 1, 2, 3, 4]
    assert ord(A.coefficients_to_text(np.array([0xD800 // 2]))) == 0xE000
    values = np.random.default_rng(0).integers(-A.MAX_COEFFICIENT, A.MAX_COEFFICIENT, 5000)
    text = A.coefficients_to_text(values)
    text.encode("utf-8")  # every character is encodable (no surrogates)
    np.testing.assert_array_equal(A.text_to_coefficients(text), values)
    with pytest.raises(ValueError, match="lower the scale"):
        A.coefficients_to_text(np.array([A.MAX_COEFFICIENT + 1]))


# ------------------------------------------------------------------------------------------
#                                   bin256
# ------------------------------------------------------------------------------------------

def test_bin256_tokens_errors_and_centres_on_random_data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 9)) * rng.uniform(0.001, 50, 9) + rng.uniform(-10, 10, 9)
    out = C.encode(x, "bin256")
    assert out["num_tokens"] == 60 * 9 == len(out["tokens"])
    assert set(out["tokens"]) <= set(range(256))

    lo, hi = x.min(0), x.max(0)
    edges = np.stack([np.linspace(lo[d], hi[d], 257) for d in range(9)], 1)  # (257, D)
    centres = (edges[:-1] + edges[1:]) / 2  # (256, D)
    expected = np.stack([np.clip(np.searchsorted(edges[:, d], x[:, d], side="right") - 1, 0, 255)
                         for d in range(9)], 1)  # (T, D)
    tokens = np.array(out["tokens"]).reshape(60, 9)
    np.testing.assert_array_equal(tokens, expected)
    decoded = np.array(out["decoded"])
    np.testing.assert_allclose(decoded, np.take_along_axis(centres, tokens, 0), rtol=0, atol=1e-9 * np.abs(x).max())

    half_bin = (hi - lo) / 512
    per_dim = np.array(out["per_dim_max_abs_error"])
    assert (per_dim <= half_bin * (1 + 1e-9)).all()
    np.testing.assert_allclose(per_dim, np.abs(decoded - x).max(0))
    assert out["max_abs_error"] == pytest.approx(np.abs(decoded - x).max())
    assert out["mean_abs_error"] == pytest.approx(np.abs(decoded - x).mean())


def test_bin256_constant_dimension():
    x = np.stack([np.linspace(0, 1, 101), np.full(101, 3.0)], 1)
    b = C.bin256(x)
    np.testing.assert_array_equal(b.decoded[:, 1], 3.0)
    assert not b.clipped.any()  # per-chunk bounds are the min and max: nothing lies outside
    with pytest.raises(ValueError, match="unknown bounds"):
        C.bin256(x, "zscore")


def test_dataset_bounds_are_the_corpus_percentiles_and_clip_bin256():
    ref = corpus_percentiles()
    lo, hi = C.dataset_bounds()
    np.testing.assert_allclose(np.stack([lo, hi]), ref, rtol=0, atol=1e-15)
    assert C.dataset_bounds()[0] is lo  # computed once, then cached

    x = SMOOTH.copy()
    x[10, 0] = hi[0] + 0.01  # one value beyond the dataset's 99th percentile
    x[20, 1] = lo[1] - 0.02  # one below its 1st
    c = C.compare(x, 10.0, "dataset")
    np.testing.assert_array_equal(c.bins.lo, lo)
    np.testing.assert_array_equal(c.fast.lo, lo)  # the same bounds for both tokenizers
    outside = (x < lo) | (x > hi)
    assert outside.sum() >= 2
    np.testing.assert_array_equal(c.bins.clipped, outside)
    half_bin = (hi - lo) / 512
    err = np.abs(c.bins.decoded - x)
    inside = np.where(outside, 0, err)
    assert (inside.max(0) <= half_bin * (1 + 1e-9)).all()  # the bound holds inside [lo, hi] ...
    assert err[10, 0] == pytest.approx(x[10, 0] - (hi[0] - half_bin[0]))  # ... outside: clipped to the last bin
    assert err[20, 1] == pytest.approx((lo[1] + half_bin[1]) - x[20, 1])
    assert err[10, 0] > half_bin[0] and err[20, 1] > half_bin[1]
    b = c.bin_errors
    assert b["clipped_values"] == outside.sum()
    assert b["max_abs_error_clipped"] == pytest.approx(err[outside].max())
    assert b["max_abs_error_inside_bounds"] == pytest.approx(err[~outside].max())
    assert c.fast.outside.sum() == outside.sum()  # FAST does not clip: the values go past +-1
    with pytest.raises(ValueError, match="per-chunk"):
        C.compare(np.zeros((5, 3)) + np.arange(5)[:, None], 10.0, "dataset")


def test_errors_are_in_original_units():
    for method in C.METHODS:
        small, big = C.encode(SMOOTH, method), C.encode(SMOOTH * 1000.0, method)
        assert big["max_abs_error"] == pytest.approx(1000 * small["max_abs_error"], rel=1e-6)
        assert big["mean_abs_error"] == pytest.approx(1000 * small["mean_abs_error"], rel=1e-6)
        assert big["tokens"] == small["tokens"]


# ------------------------------------------------------------------------------------------
#                                   FAST
# ------------------------------------------------------------------------------------------

def test_fast_dct_and_decode_match_the_cosine_matrix():
    f = C.fast_encode(SMOOTH, 10.0)
    lo, hi = np.quantile(SMOOTH, 0.01, axis=0), np.quantile(SMOOTH, 0.99, axis=0)
    norm = 2 * (SMOOTH - lo) / (hi - lo) - 1
    m = dct_matrix(50)
    np.testing.assert_allclose(f.coefficients, m @ norm * 10.0, atol=1e-9)
    np.testing.assert_array_equal(f.rounded, np.round(m @ norm * 10.0))
    expected = lo + (m.T @ (f.rounded / 10.0) + 1) / 2 * (hi - lo)
    np.testing.assert_allclose(f.decoded, expected, atol=1e-12)
    # flattening: every dimension of frequency k before frequency k+1
    assert A.text_to_coefficients(f.text).tolist() == [int(f.rounded[k, d]) for k in range(50) for d in range(7)]


def test_fast_uses_clearly_fewer_tokens_on_a_smooth_chunk():
    ratios = []
    for seed in (0, 1, 2, 3, 4):
        chunk = A.generate_chunk(seed, steps=50, hz=50.0, noise=0.0)
        fast, bins = C.encode(chunk, "fast", C.DEFAULT_SCALE), C.encode(chunk, "bin256")
        assert bins["num_tokens"] == 350
        ratios.append(bins["num_tokens"] / fast["num_tokens"])
    print(f"bin256/FAST token ratio on smooth 50x7 chunks at scale {C.DEFAULT_SCALE}: "
          f"{[round(r, 2) for r in ratios]}")
    assert min(ratios) > 3.0


@pytest.mark.parametrize("seed,noise", [(3, 0.0), (0, 0.0), (1, 0.1), (2, 0.1)])
def test_scale_sweep_is_monotonic(seed, noise):
    rows = C.scale_sweep(A.generate_chunk(seed, 50, 50.0, noise))
    tokens = [r["num_tokens"] for r in rows]
    errors = [r["mean_abs_error"] for r in rows]
    assert [r["scale"] for r in rows] == sorted(r["scale"] for r in rows)
    assert all(np.diff(tokens) > 0), tokens
    assert all(np.diff(errors) < 0), errors
    assert rows[-1]["max_abs_error"] < rows[0]["max_abs_error"] / 10


@pytest.mark.parametrize("scale", [0.5, 1.0, 10.0, 100.0, 1000.0])
def test_fast_roundtrips_rounded_coefficients_exactly(scale):
    rng = np.random.default_rng(int(scale * 10))
    for x in (SMOOTH, A.generate_chunk(9, 120, 30.0, 0.5), rng.normal(size=(80, 12)) * 5):
        f = C.fast_encode(x, scale)
        d = C.fast_decode(f.tokens, x.shape, scale, f.lo, f.hi)
        assert d.valid and d.coefficients_read == x.size
        np.testing.assert_array_equal(d.rounded, f.rounded)
        np.testing.assert_array_equal(d.actions, f.decoded)


def test_bpe_bytes_match_the_tokenizer_decoder():
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = "shared/weights/fast-bpe-actions"
    hf = AutoTokenizer.from_pretrained(path)
    assert len(hf) == C.FAST_VOCAB == shipped()[0]["vocab_size"]
    assert len(PreTrainedTokenizerFast.from_pretrained(path)) == C.FAST_VOCAB
    f = C.fast_encode(A.generate_chunk(4, 100, 50.0, 0.2), 50.0)
    assert hf(f.text)["input_ids"] == f.tokens
    assert A.bpe_bytes(C.load_bpe(), f.tokens).decode("utf-8") == hf.decode(f.tokens) == f.text


def test_space_text_matches_the_training_recipe():
    from shared.training import fast_bpe_actions

    assert fast_bpe_actions.chunk_text is A.chunk_text  # one front end for the space and the recipe
    for seed in range(3):
        x = A.generate_chunk(seed, 40, 20.0, 0.05)
        assert C.fast_encode(x, 10.0).text == fast_bpe_actions.chunk_text(x, 10.0)


def test_byte_table_is_byte_level_bpes_alphabet():
    from tokenizers import pre_tokenizers

    table = A.bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert table[ord("A")] == "A" and table[ord(" ")] == "\u0120"  # GPT-2: a space is written "Ġ"


def test_fast_decode_repairs_wrong_lengths_and_bad_bytes():
    bpe = C.load_bpe()
    f = C.fast_encode(SMOOTH, 10.0)
    short = C.fast_decode(f.tokens[:-5], SMOOTH.shape, 10.0, f.lo, f.hi)
    assert short.coefficients_read < 350 and "padded" in short.note and short.actions.shape == (50, 7)
    long = C.fast_decode(f.tokens + f.tokens[:3], SMOOTH.shape, 10.0, f.lo, f.hi)
    assert long.coefficients_read > 350 and "trimmed" in long.note
    np.testing.assert_array_equal(long.rounded, f.rounded)  # the extra coefficients came after the grid
    lone = next(i for i in range(128, 256) if bpe.id_to_token(i) and ord(bpe.id_to_token(i)) >= 0x80)
    broken = C.fast_decode([lone] + f.tokens, SMOOTH.shape, 10.0, f.lo, f.hi)  # a continuation byte alone
    assert broken.invalid_bytes >= 1 and "UTF-8" in broken.note
    with pytest.raises(ValueError, match="token ids"):
        C.fast_decode([5000], SMOOTH.shape, 10.0, f.lo, f.hi)


def test_perturb_one_token():
    out = C.perturb(SMOOTH, 10.0, index=4, delta=1)
    b = out["bin256"]
    assert b["changed_entries"] == 1
    width = out["comparison"].bins.width
    assert b["max_change"] == pytest.approx(width[4 % 7])  # token 4 is dimension 4 of step 0
    f = out["fast"]
    assert f["new_id"] == (f["old_id"] + 1) % 1024
    assert f["changed_entries"] >= 50  # one coefficient moves every step of its dimension
    assert f["max_change_relative"] > b["max_change_relative"]
    # somewhere in the sequence a neighbouring id stands for a different number of coefficients
    notes = [C.perturb(SMOOTH, 10.0, index=i)["fast"]["note"] for i in range(len(out["comparison"].fast.tokens))]
    assert any("padded" in n or "trimmed" in n for n in notes)
    with pytest.raises(ValueError, match="delta"):
        C.perturb(SMOOTH, 10.0, 0, 0)
    with pytest.raises(ValueError, match="token index must be an integer from 0 to 349"):
        C.perturb(SMOOTH, 10.0, 350, 1)


@pytest.mark.parametrize("delta", [3, -7])
def test_perturb_moves_the_bin_value_by_the_bins_its_id_moved(delta):
    from spaces.vla_tokenizer import app

    top = int(np.argmax(SMOOTH[:, 2]))  # dz's maximum: id 255 under min-max bounds
    index = top * 7 + 2
    out = C.perturb(SMOOTH, 10.0, index=index, delta=delta)
    b = out["bin256"]
    width = (SMOOTH[:, 2].max() - SMOOTH[:, 2].min()) / 256
    assert b["old_id"] == 255
    assert b["new_id"] == 255 - abs(delta)  # +3 leaves [0, 255], so it is subtracted; -7 is applied as is
    assert b["changed_entries"] == 1
    assert b["max_change"] == pytest.approx(abs(delta) * width)
    text = app.perturb_markdown(out)
    assert f"{-abs(delta):+d} bins" in text and f"by {abs(delta)} x its bin width" in text
    assert "one bin width" not in text
    assert ("subtracted" in text) == (delta > 0)


def test_perturb_text_when_the_id_cannot_move():
    from spaces.vla_tokenizer import app

    index = int(np.argmin(SMOOTH[:, 0])) * 7  # dx's minimum: id 0
    out = C.perturb(SMOOTH, 10.0, index=index, delta=300)  # 0 + 300 and 0 - 300 both leave [0, 255]
    assert out["bin256"]["new_id"] == 0 and out["bin256"]["changed_entries"] == 0
    assert "no value moved" in app.perturb_markdown(out)


def test_noise_and_frequency_sweeps():
    rows = C.noise_sweep(SMOOTH)
    assert rows[0]["noise"] == 0 and rows[-1]["fast_tokens"] > 1.5 * rows[0]["fast_tokens"]
    assert all(r["bin256_tokens"] == 350 for r in rows)
    noisy = C.add_noise(SMOOTH, 0.5, seed=1)
    np.testing.assert_array_equal(noisy[:, 6], SMOOTH[:, 6])  # binary gripper untouched
    assert not np.array_equal(noisy[:, 0], SMOOTH[:, 0])
    freq = C.frequency_sweep(3, rates=(10, 50, 200))
    assert [r["bin256_tokens"] for r in freq] == [70, 350, 1400]
    # bin256 grows 20x from 10 to 200 Hz; FAST far less
    assert freq[-1]["fast_tokens"] / freq[0]["fast_tokens"] < 10
    two = C.frequency_sweep(3, seconds=2.0, rates=(10, 50))
    assert [(r["steps"], r["seconds"]) for r in two] == [(20, 2.0), (100, 2.0)]


def test_the_frequency_plot_states_the_chunks_own_duration():
    from spaces.vla_tokenizer import app

    x = A.generate_chunk(3, 100, 50.0, 0.0)  # 100 steps at 50 Hz: 2 seconds
    out = app.compare(A.to_json(x, 10), 10.0, "chunk", "generate", 3, 50, 0.0)
    figure = out[5]
    labels = [ax.get_xlabel() for ax in figure.axes]
    assert any("the same 2-second motion" in label for label in labels), labels
    assert not any("1-second" in label for label in labels)
    assert {r["seconds"] for r in out[7]["frequency_sweep"]} == {2.0}


@pytest.mark.parametrize("method,scale,message", [
    ("vq", 10.0, "unknown method"),
    ("fast", 0.0, "greater than 0"),
    ("fast", -1.0, "greater than 0"),
    ("bin256", -1.0, "greater than 0"),
    ("fast", float("nan"), "greater than 0"),
    ("fast", 1e6, "at most"),
])
def test_encode_rejects_bad_method_and_scale(method, scale, message):
    with pytest.raises(ValueError, match=message):
        C.encode(SMOOTH, method, scale)


def test_compare_table_and_relative_error():
    from spaces.vla_tokenizer.options import TABLE_HEADERS

    c = C.compare(SMOOTH, 10.0)
    assert c.ratio == pytest.approx(350 / len(c.fast.tokens))
    rows = C.table_rows(c, C.dim_names(7))
    assert [r[0] for r in rows] == list(A.ACTION_NAMES)
    assert all(len(r) == len(TABLE_HEADERS) for r in rows)
    for d, row in enumerate(rows):
        assert row[1] == pytest.approx(SMOOTH[:, d].max() - SMOOTH[:, d].min())
        assert row[2] == pytest.approx(row[1] / 256)
        assert row[3] == pytest.approx(np.abs(c.bins.decoded[:, d] - SMOOTH[:, d]).max())
        assert row[5] == 0 and row[6] == 0  # per-chunk min-max bounds: nothing clipped
        assert row[8] == pytest.approx(np.abs(c.fast.decoded[:, d] - SMOOTH[:, d]).mean())
        assert row[9] == np.count_nonzero(c.fast.rounded[:, d])
    mean, worst = C.relative_error(SMOOTH, c.bins.decoded)
    per_dim = np.abs(c.bins.decoded - SMOOTH) / np.ptp(SMOOTH, 0)
    assert mean == pytest.approx(per_dim.mean()) and worst == pytest.approx(per_dim.max())
    assert worst <= 0.5 / 256 + 1e-12  # half a bin, as a fraction of the range
    assert C.dim_names(3) == ["a0", "a1", "a2"]


# ------------------------------------------------------------------------------------------
#                                   The page
# ------------------------------------------------------------------------------------------

def _ordinal_pair(q: float) -> tuple[str, str]:
    return str(round(100 * q)), str(round(100 * (1 - q)))


@functools.cache
def page() -> tuple[str, dict]:
    """The text of every Markdown block of the built page, and its components by label."""
    import gradio as gr

    from spaces.vla_tokenizer import app

    demo = app.build()
    blocks = list(demo.blocks.values())
    text = "\n".join(str(b.value) for b in blocks if isinstance(b, (gr.Markdown, gr.HTML)) and b.value)
    return text, {getattr(b, "label", None): b for b in blocks}


def test_page_states_the_shipped_bpe_facts():
    cfg, metrics, card = shipped()
    text, by_label = page()
    vocab = re.findall(r"vocabulary of (\d+)", text)
    assert vocab and set(vocab) == {str(cfg["vocab_size"])} == {str(metrics["vocab_size"])}
    scales = re.findall(r"trained at (?:scale )?([\d.]+)", text)
    assert len(scales) >= 2 and set(scales) == {f"{cfg['scale']:g}"}
    assert by_label["FAST scale"].value == cfg["scale"]  # the page's default is the BPE's training scale
    chunks = re.findall(r"(?<![\w.])([\d,]+) (?:generated )?chunks", text)  # "20,000 chunks", not "50x7 chunks"
    assert chunks and set(chunks) == {f"{metrics['corpus_chunks']:,}"}
    assert f"{metrics['corpus_chunks']} chunks from `shared.actions.corpus` (seed 0)" in card
    percentiles = re.findall(r"(\d+)(?:st|nd|rd|th)/(\d+)(?:st|nd|rd|th) percentiles", text)
    assert percentiles and set(percentiles) == {_ordinal_pair(cfg["quantile"])}
    held_out = re.search(r"averages ([\d.]+) tokens, ([\d.]+)x\s+fewer than bin256's (\d+)", text)
    assert held_out and held_out.groups() == (f"{metrics['mean_tokens_50x7_noise0']:g}",
                                              f"{metrics['compression_vs_bin256_noise0']:g}",
                                              str(metrics["bin256_tokens_50x7"]))
    assert "not the FAST+" in text and "not the FAST+ universal tokenizer" in card


def test_page_header_comes_from_the_registry():
    from hub.registry import get
    from spaces.vla_tokenizer import app

    t = get("vla_tokenizer")
    assert app.TITLE == t.title
    assert f"## {t.emoji} {t.title}" in page()[0]
    source = (ROOT / "spaces" / "vla_tokenizer" / "app.py").read_text()
    assert t.title not in source and t.emoji not in source  # typed once, in hub/registry.py


@pytest.mark.parametrize("where", ["page", "README"])
def test_no_stale_claims(where):
    text = page()[0] if where == "page" else (ROOT / "spaces" / "vla_tokenizer" / "README.md").read_text()
    flat = " ".join(text.split())
    assert "1-second motion" not in flat
    assert "one bin width" not in flat  # the brittleness text states the edit's own change
    for m in re.finditer(r"half a bin", flat):  # the bound holds inside [lo, hi] only
        assert "inside" in flat[max(0, m.start() - 120):m.end() + 40].lower(), flat[m.start() - 120:m.end() + 40]
    assert "dataset bounds" in flat and "per-chunk bounds" in flat
    assert "training set" in flat or "training data" in flat  # where OpenVLA and FAST take their bounds

