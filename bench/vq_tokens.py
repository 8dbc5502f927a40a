"""Benchmark of autoregressive image generation (vq_tokens) on this machine's CPU.

- ``sample_ms``: one image through ``compute.sample`` without the step-by-step frames, the code path of the
  ``vq_tokens_sample`` endpoint: 64 sequential transformer passes with a KV cache (one per token), then one
  VQ-VAE decode; at the measured temperature / top-k and at T = 0 (greedy).
- ``with_frames_ms``: the same with the 64 partial images the page shows (64 decodes more).
- Baselines in the same run: one VQ-VAE decode of an 8x8 grid, and one transformer forward over the full
  65-token sequence (what one step would cost without the cache).

Every figure is a median of ``runs`` timings after a warm-up.
Run: ``.venv/bin/python -m bench.vq_tokens`` (prints JSON), or ``python -m bench --only vq_tokens``.
"""

from __future__ import annotations

import json

import torch

from bench.timing import median_ms
from spaces.vq_tokens import compute


def run(runs: int = 7) -> dict:
    from shared.sampling_settings import sampling_settings

    vq, ar = compute.load_models()
    measured = sampling_settings(ar.config.to_dict())  # class accuracy's settings; guidance: the model's default
    t, k = measured["temperature"], measured["top_k"]
    sample = lambda: compute.sample("star", t, k, 0, frames=False)  # noqa: E731
    greedy = lambda: compute.sample("star", 0, k, 0, frames=False)  # noqa: E731
    frames = lambda: compute.sample("star", t, k, 0, frames=True)  # noqa: E731
    sample()  # load and warm up
    g = vq.grid
    tokens = torch.zeros(1, g, g, dtype=torch.long)
    seq = torch.zeros(1, g * g + 1, dtype=torch.long)

    @torch.no_grad()
    def decode():
        vq.decode_tokens(tokens)

    @torch.no_grad()
    def full_forward():
        ar(input_ids=seq)

    decode()
    full_forward()
    sample_ms = median_ms(sample, runs)
    return {
        "models": [compute.VQ_MODEL, compute.AR_MODEL], "threads": torch.get_num_threads(), "runs": runs,
        **measured, "tokens_per_image": g * g,
        "sample_ms": round(sample_ms, 2),
        "per_token_ms": round(sample_ms / (g * g), 3),
        "greedy_sample_ms": round(median_ms(greedy, runs), 2),
        "with_frames_ms": round(median_ms(frames, max(3, runs // 2)), 2),
        "baseline_vq_decode_ms": round(median_ms(decode, runs), 3),
        "baseline_full_sequence_forward_ms": round(median_ms(full_forward, runs), 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
