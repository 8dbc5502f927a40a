"""vq_tokens: every compute function against an independent computation, the input checks, and the
page's stated facts against the shipped files.

Models here are real ones built small with random weights (a VQVAE and a GPT-2), never mocks, so the
sampling and tokenizing code runs as it does on the page; the shipped models are used where present.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from shared.models import available_offline
from shared.training.vq_tiny_shapes import VQVAE
from spaces.vq_tokens import compute, options

TRAINED = available_offline("vq-tiny-shapes") and available_offline("ar-tiny-shapes")


@pytest.fixture(scope="module")
def tiny_vq() -> VQVAE:
    torch.manual_seed(0)
    model = VQVAE(image_size=32, grid=8, channels=8, codebook_size=16, code_dim=4).eval()
    torch.nn.init.normal_(model.codebook.weight)
    return model


@pytest.fixture(scope="module")
def tiny_ar():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=16 + 5, n_positions=17, n_embd=16, n_layer=1, n_head=2, bos_token_id=None,
                     eos_token_id=None)
    return GPT2LMHeadModel(cfg).eval()


# --------------------------------------------------------------------------------------
#                                   Pixels
# --------------------------------------------------------------------------------------

def test_mse_psnr_matches_the_formula():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    diff = [(int(x) - int(y)) ** 2 for x, y in zip(a.ravel(), b.ravel(), strict=True)]
    mse = sum(diff) / len(diff)
    got_mse, got_psnr = compute.mse_psnr(a, b)
    assert got_mse == pytest.approx(mse)
    assert got_psnr == pytest.approx(20 * math.log10(255) - 10 * math.log10(mse))
    assert compute.mse_psnr(a, a) == (0.0, math.inf)
    with pytest.raises(ValueError, match="differ in shape"):
        compute.mse_psnr(a, b[:4])


def test_prepare_crops_the_centre_and_box_filters():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)  # wide: the centre 96x96 is kept
    got = compute.prepare(Image.fromarray(arr), 32)
    centre = arr[:, 16:112].astype(float)
    expected = centre.reshape(32, 3, 32, 3, 3).mean(axis=(1, 3))  # 3x3 blocks
    assert got.shape == (32, 32, 3) and np.abs(got - expected).max() <= 1
    with pytest.raises(ValueError, match="no image"):
        compute.prepare(None, 32)


def test_usage_counts_match_a_counter():
    from collections import Counter

    tokens = np.random.default_rng(2).integers(0, 10, (3, 4, 4))
    got = compute.usage_counts(tokens, 12)
    c = Counter(tokens.ravel().tolist())
    assert got.tolist() == [c.get(i, 0) for i in range(12)]


def test_patches_of_returns_the_pixels_under_each_token():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)  # 2x2 grid of 4x4 patches
    tokens = np.array([[[1, 5], [5, 2]], [[5, 0], [3, 3]]])
    got = compute.patches_of(images, tokens, 5, limit=10)
    expected = [images[0, 0:4, 4:8], images[0, 4:8, 0:4], images[1, 0:4, 0:4]]
    assert len(got) == 3 and all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))
    assert len(compute.patches_of(images, tokens, 5, limit=2)) == 2
    assert compute.patches_of(images, tokens, 9, limit=10) == []


def test_token_grid_picture_paints_each_cell_in_its_code_colour():
    tokens = np.array([[0, 1], [2, 3]])
    colours = compute.code_colours(4)
    img = np.asarray(compute.token_grid_picture(tokens, 4, cell=40))
    assert img.shape == (80, 80, 3)
    for r in range(2):
        for c in range(2):
            # a corner pixel inside the cell, away from the written id
            assert tuple(img[r * 40 + 35, c * 40 + 35]) == tuple(colours[tokens[r, c]])
    assert len({tuple(x) for x in compute.code_colours(64)}) == 64  # distinct colours


def test_upscale_is_nearest_neighbour():
    px = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    big = np.asarray(compute.upscale(px, 8))
    assert np.array_equal(big, px.repeat(4, 0).repeat(4, 1))


# --------------------------------------------------------------------------------------
#                                   Tokenizer
# --------------------------------------------------------------------------------------

def test_nearest_code_is_the_brute_force_argmin(tiny_vq):
    z = torch.randn(2, 4, 3, 3)
    got = tiny_vq.nearest(z)
    book = tiny_vq.codebook.weight.detach().numpy()
    zn = z.permute(0, 2, 3, 1).numpy()
    expected = np.array([[[int(np.argmin(((book - zn[b, i, j]) ** 2).sum(1))) for j in range(3)]
                          for i in range(3)] for b in range(2)])
    assert np.array_equal(got.numpy(), expected)


def test_encode_pixels_round_trip(tiny_vq):
    pixels = np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    enc = compute.encode_pixels(tiny_vq, pixels)
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        tokens = tiny_vq.nearest(tiny_vq.encoder(x))[0]
        recon = tiny_vq.decoder(tiny_vq.codebook(tokens).permute(2, 0, 1)[None])[0]
    recon = ((recon.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(enc.tokens, tokens.numpy()) and np.array_equal(enc.recon, recon)
    st = enc.stats
    assert st["grid"] == [8, 8] and len(st["tokens"]) == 8 and all(len(r) == 8 for r in st["tokens"])
    assert st["codebook_size"] == 16 and st["codes_used"] == len(set(tokens.flatten().tolist()))
    assert st["bits"] == 64 * 4 and st["raw_bits"] == 32 * 32 * 3 * 8
    mse = ((pixels.astype(float) - recon.astype(float)) ** 2).mean()
    assert st["mse"] == pytest.approx(mse, abs=1e-3)


def test_vqvae_save_and_load(tiny_vq, tmp_path):
    tiny_vq.save_pretrained(tmp_path)
    again = VQVAE.from_pretrained(tmp_path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(again.tokenize(x), tiny_vq.tokenize(x))


# --------------------------------------------------------------------------------------
#                                   Sampling
# --------------------------------------------------------------------------------------

def test_top_k_distribution_is_a_softmax_over_the_k_largest():
    logits = torch.tensor([0.5, 2.0, -1.0, 1.0, 3.0])
    ids, probs = compute.top_k_distribution(logits, 0.5, 3)
    assert ids.tolist() == [4, 1, 3]
    vals = np.array([3.0, 2.0, 1.0]) / 0.5
    expected = np.exp(vals - vals.max()) / np.exp(vals - vals.max()).sum()
    assert np.allclose(probs.numpy(), expected)
    _, greedy = compute.top_k_distribution(logits, 0.0, 3)  # T = 0 reports the T = 1 distribution
    e1 = np.exp([3.0, 2.0, 1.0])
    assert np.allclose(greedy.numpy(), e1 / e1.sum())


def test_greedy_sampling_is_argmax_of_a_full_forward(tiny_ar):
    tokens, steps = compute.sample_tokens(tiny_ar, class_id=2, codebook=16, n_tokens=16, temperature=0.0,
                                          top_k=5, seed=0)
    seq = [16 + 2]
    with torch.no_grad():
        for _ in range(16):  # no KV cache: the whole prefix every time
            logits = tiny_ar(input_ids=torch.tensor([seq])).logits[0, -1, :16]
            seq.append(int(logits.argmax()))
    assert tokens.tolist() == seq[1:]
    assert [s.chosen for s in steps] == seq[1:] and all(s.top_ids[0] == s.chosen for s in steps)


def test_sampling_is_seeded_and_stays_in_the_top_k(tiny_ar):
    a, steps = compute.sample_tokens(tiny_ar, 1, 16, 16, 1.0, 3, seed=7)
    b, _ = compute.sample_tokens(tiny_ar, 1, 16, 16, 1.0, 3, seed=7)
    c, _ = compute.sample_tokens(tiny_ar, 1, 16, 16, 5.0, 16, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(s.chosen in s.top_ids and len(s.top_ids) == 3 for s in steps)
    assert all(t < 16 for t in c.tolist())  # never a class token
    k1, _ = compute.sample_tokens(tiny_ar, 1, 16, 16, 1.0, 1, seed=3)
    greedy, _ = compute.sample_tokens(tiny_ar, 1, 16, 16, 0.0, 1, seed=0)
    assert torch.equal(k1, greedy)  # top-1 sampling is greedy


def test_partial_frames(tiny_vq):
    tokens = torch.randint(0, 16, (64,), generator=torch.Generator().manual_seed(0))
    frames = compute.partial_frames(tiny_vq, tokens, 8)
    with torch.no_grad():
        full = compute.to_uint8(tiny_vq.decode_tokens(tokens.view(1, 8, 8)))[0]
        first = tokens.clone()
        first[1:] = tokens[0]
        first_img = compute.to_uint8(tiny_vq.decode_tokens(first.view(1, 8, 8)))[0].astype(float)
    assert len(frames) == 64 and np.array_equal(frames[-1], full)
    # after step 1 only the top-left patch is drawn; every other patch is dimmed halfway to grey
    assert np.array_equal(frames[0][:4, :4], first_img[:4, :4].astype(np.uint8))
    assert np.abs(frames[0][4:, :].astype(float) - (0.5 * first_img[4:, :] + 64)).max() <= 0.5 + 1e-9


# --------------------------------------------------------------------------------------
#                                   Token arithmetic
# --------------------------------------------------------------------------------------

def test_budgets_at_real_scale():
    rows = {b.name: b for b in compute.budgets({"image_size": 32, "grid": 8, "codebook_size": 1024},
                                               {"image_px": 32, "grid": 8, "steps": 25})}
    dalle = rows["DALL-E"]
    assert dalle.image_tokens == 32 * 32 == 1024
    assert dalle.row()["sequence"] == 256 + 1024
    assert dalle.row()["bits per image"] == 1024 * 13  # log2(8192) = 13
    assert dalle.row()["compression vs 8-bit RGB"] == f"{256 * 256 * 24 / (1024 * 13):.0f}x"
    assert dalle.sequential_passes == 1024 and dalle.token_passes == 1280
    dit = rows["DiT-XL/2 (diffusion)"]
    assert dit.sequential_passes == 250 and dit.token_passes == 250 * 256 * 2
    ours = rows["ar-tiny-shapes + vq-tiny-shapes"]
    assert ours.row()["bits per image"] == 64 * 10 and ours.token_passes == 65
    guided = compute.budgets({"image_size": 32, "grid": 8, "codebook_size": 1024}, None, ar_guidance=5.0)[0]
    assert guided.token_passes == 2 * 65 and guided.sequential_passes == 64  # the two rows run side by side
    assert rows["dit-tiny-shapes (diffusion)"].token_passes == 25 * 64 * 2


# --------------------------------------------------------------------------------------
#                                   Input checks
# --------------------------------------------------------------------------------------

def test_temperature_zero_is_greedy_and_bad_values_are_refused():
    assert options.check_temperature(0) == 0.0
    for bad in (-0.1, "nan", float("nan"), "inf", options.MAX_TEMPERATURE + 1, "hot"):
        with pytest.raises(ValueError, match="temperature"):
            options.check_temperature(bad)


def test_top_k_seed_class_checks():
    k = options.codebook_size()
    assert options.check_top_k(k) == k and options.check_top_k(1) == 1
    for bad in (0, -3, k + 1, 2.5):
        with pytest.raises(ValueError, match="top-k must be an integer from 1 to"):
            options.check_top_k(bad)
    for bad in (-1, 1.5, "abc"):
        with pytest.raises(ValueError, match="seed must be an integer"):
            options.check_seed(bad)
    with pytest.raises(ValueError, match="unknown class"):
        options.check_class("hexagon")
    with pytest.raises(ValueError, match="code must be an integer"):
        options.check_code(k)


# --------------------------------------------------------------------------------------
#                                   The shipped models and the page's facts
# --------------------------------------------------------------------------------------

@pytest.mark.skipif(not TRAINED, reason="vq-tiny-shapes / ar-tiny-shapes not trained")
def test_page_states_the_shipped_metrics():
    from spaces.vq_tokens import app

    vq, ar = options.vq_facts(), options.ar_facts()
    text = app._intro(vq, ar)
    m, a = vq["metrics"], ar["metrics"]
    assert f"**{m['psnr']} dB**" in text and f"**{m['independent_renderer_psnr']} dB**" in text
    assert f"**{m['codebook_usage']:.0%}**" in text and f"**{vq['codebook_size']}** codes" in text
    assert f"**{a['class_accuracy']:.0%}**" in text and f"top-k {a['top_k']}" in text
    assert vq["grid"] == 8 and ar["codebook_size"] == vq["codebook_size"] and ar["positions"] == 65
    assert f"{ar['layers']} layers, width {ar['width']}" in text


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_ar_shape_reads_either_architectures_config_keys(architecture):
    """transformers maps GPT-2's n_layer / n_embd / n_positions onto the common names: the independent reading."""
    from transformers import GPT2Config, LlamaConfig

    config = (GPT2Config(n_layer=3, n_embd=48, n_head=2, n_positions=65) if architecture == "gpt2"
              else LlamaConfig(num_hidden_layers=3, hidden_size=48, num_attention_heads=2, max_position_embeddings=65))
    shape = options.ar_shape(config.to_dict())
    assert (shape["layers"], shape["width"], shape["positions"]) == (
        config.num_hidden_layers, config.hidden_size, config.max_position_embeddings) == (3, 48, 65)
    with pytest.raises(ValueError, match="choose one of"):
        options.ar_shape({"model_type": "mamba"})


@pytest.mark.skipif(not TRAINED, reason="vq-tiny-shapes / ar-tiny-shapes not trained")
def test_shipped_sample_is_deterministic_and_decodes_its_tokens():
    a = compute.sample("circle", 1.0, 16, 3, frames=False)
    b = compute.sample("circle", 1.0, 16, 3, frames=False)
    assert np.array_equal(a.tokens, b.tokens) and a.tokens.shape == (8, 8)
    vq = compute.load_tokenizer()
    with torch.no_grad():
        img = compute.to_uint8(vq.decode_tokens(torch.from_numpy(a.tokens)[None]))[0]
    assert np.array_equal(img, a.image)
    assert a.stats["tokens"] == a.tokens.tolist()


@pytest.mark.skipif(not TRAINED, reason="vq-tiny-shapes / ar-tiny-shapes not trained")
def test_nearest_code_view_counts_match_the_test_tokens():
    images, tokens = compute._test_tokens(options.USAGE_IMAGES)
    code = int(np.bincount(tokens.ravel()).argmax())
    view = compute.nearest_code_view(code)
    assert view.count == int((tokens == code).sum()) and view.mosaic is not None
    assert compute.test_usage().sum() == tokens.size


@pytest.mark.skipif(not TRAINED, reason="vq-tiny-shapes / ar-tiny-shapes not trained")
def test_page_defaults_are_the_measured_sampling_settings():
    """The sliders start where class accuracy was measured: metrics.json's settings, read through config.json."""
    import gradio as gr

    from shared.models import shipped_metrics
    from spaces.vq_tokens import app

    measured = shipped_metrics("ar-tiny-shapes")
    expected = {k: measured[k] for k in ("guidance_scale", "temperature", "top_k")}
    assert options.measured_sampling() == expected
    assert compute.load_models()[1].config.sample_top_k == expected["top_k"]  # the file the sampler loads
    sliders = {c.label.split(" (")[0]: c.value for c in app.build().blocks.values() if isinstance(c, gr.Slider)}
    assert (sliders["temperature"], sliders["top-k"], sliders["guidance scale s"]) == (
        expected["temperature"], expected["top_k"], expected["guidance_scale"])


def test_sampling_settings_fall_back_for_a_config_without_them():
    from shared.sampling_settings import FALLBACK, sampling_settings

    assert sampling_settings({}) == FALLBACK
    got = sampling_settings({"guidance_scale": 2.0, "sample_temperature": 1.5, "sample_top_k": 3, "top_k": 99})
    assert got == {"guidance_scale": 2.0, "temperature": 1.5, "top_k": 3}


def test_sweep_table_shows_the_chosen_guidance_and_marks_the_chosen_cell():
    from spaces.vq_tokens import app

    results = [{"guidance_scale": g, "temperature": t, "top_k": k, "class_accuracy": round(0.1 * g + t / 10 + k / 100, 4)}
               for g in (1.0, 2.0) for t in (0.5, 1.0) for k in (3, 8)]
    metrics = {"guidance_scale": 2.0, "temperature": 1.0, "top_k": 3, "sampling_sweep_seed": 7, "sampling_sweep_n": 50,
               "sampling_sweep": {str(i): r for i, r in enumerate(results)}}
    table = app._sweep_table(metrics)
    body = [line for line in table.splitlines() if line.startswith("| 0.5") or line.startswith("| 1 ")]
    # rows: temperatures 0.5 and 1; columns: top-k 3 and 8; only the s = 2 results (0.2 + T/10 + k/100)
    assert body == ["| 0.5 | 28% | 33% |", "| 1 | **33%** | 38% |"]
    assert "s = 2" in table and "50 samples" in table and "seed 7" in table
    assert app._sweep_table({"temperature": 1.0}) == ""


def test_class_at_every_position_adds_the_class_embedding_and_sampling_follows_it():
    from transformers import GPT2Config, GPT2LMHeadModel

    from shared.evaluation_vq import embed
    from shared.evaluation_vq import sample_tokens as batch_sample

    torch.manual_seed(1)
    ar = GPT2LMHeadModel(GPT2Config(vocab_size=16 + 5, n_positions=17, n_embd=16, n_layer=1, n_head=2,
                                    bos_token_id=None, eos_token_id=None, class_at_every_position=True)).eval()
    ids = torch.tensor([[18, 3, 7]])
    wte = ar.transformer.wte.weight.detach()
    assert torch.allclose(embed(ar, ids, ids[:, 0]), (wte[[18, 3, 7]] + wte[18])[None])
    tokens, _ = compute.sample_tokens(ar, class_id=2, codebook=16, n_tokens=16, temperature=0.0, top_k=4, seed=0)
    seq = [16 + 2]
    with torch.no_grad():
        for _ in range(16):  # by hand: the whole prefix, class embedding added at every position
            x = (wte[seq] + wte[18])[None]
            seq.append(int(ar(inputs_embeds=x).logits[0, -1, :16].argmax()))
    assert tokens.tolist() == seq[1:]
    # the batched sampler of the evaluation agrees with the page's at T = 0
    assert batch_sample(ar, 1, torch.tensor([2]), 16, 16, temperature=0.0, top_k=4)[0].tolist() == seq[1:]


def test_classifier_free_guidance_mixes_the_conditional_and_null_class_logits():
    """Guided greedy decoding, recomputed by hand without a KV cache: at each step the whole prefix is run once
    with the class and once with the null class, and the next code is argmax(l_u + s·(l_c - l_u))."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from shared.evaluation_vq import sample_tokens as batch_sample
    from shared.evaluation_vq import start_tokens

    torch.manual_seed(3)
    null = 16 + 5
    ar = GPT2LMHeadModel(GPT2Config(vocab_size=16 + 5 + 1, n_positions=17, n_embd=16, n_layer=1, n_head=2,
                                    bos_token_id=None, eos_token_id=None, class_at_every_position=True,
                                    null_class_token=null, initializer_range=0.5)).eval()  # varied logits
    wte = ar.transformer.wte.weight.detach()
    s = 2.5
    codes: list[int] = []
    with torch.no_grad():
        for _ in range(16):
            def last(cls: int) -> torch.Tensor:
                x = (wte[[cls] + codes] + wte[cls])[None]
                return ar(inputs_embeds=x).logits[0, -1, :16]
            cond, uncond = last(16 + 1), last(null)
            codes.append(int((uncond + s * (cond - uncond)).argmax()))
    tokens, steps = compute.sample_tokens(ar, class_id=1, codebook=16, n_tokens=16, temperature=0.0, top_k=4,
                                          seed=0, guidance=s)
    assert tokens.tolist() == codes
    assert batch_sample(ar, 1, torch.tensor([1]), 16, 16, temperature=0.0, top_k=4, guidance=s)[0].tolist() == codes
    unguided, _ = compute.sample_tokens(ar, class_id=1, codebook=16, n_tokens=16, temperature=0.0, top_k=4, seed=0)
    assert unguided.tolist() != codes  # the scale changes what is drawn (else this test checks nothing)
    # a model trained without class dropout has no unconditional pass to guide with
    plain = GPT2LMHeadModel(GPT2Config(vocab_size=21, n_positions=17, n_embd=16, n_layer=1, n_head=2)).eval()
    with pytest.raises(ValueError, match="guidance must be 1"):
        start_tokens(plain, torch.tensor([17]), 2.0)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), 10.5, "x"])
def test_guidance_scale_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="guidance scale"):
        compute.check_guidance(bad)
