"""Encode + decode latency of bin256 against FAST on the same chunk, and their token counts.

bin256 (``compute.bin256``) and FAST (``compute.fast_encode``, which also decodes the tokens it
made) each take a chunk to tokens and back to actions. The two are timed alternately, so a slow
spell of the machine hits both; each figure is the median of ``runs`` calls, after the BPE is
loaded and both have run once. Chunks: the space's default 50x7 (1 s at 50 Hz) and 200x7 (1 s at 200 Hz).

Also (issue 23) the error-tokens trade-off on 200 held-out 50x7 chunks (the shipped tokenizers' evaluation
set): binning at 64, 256 and 1024 bins, FAST at scales 2-50 and the VQ at 1-3 levels, per-chunk bounds for
binning and FAST, then dataset bounds (``compute.tradeoff``, the page's "Error vs tokens" tab; the VQ always
uses its own training bounds).

Run: ``.venv/bin/python -m bench.vla_tokenizer`` (prints JSON), or via ``bench/__main__.py``.
"""

from __future__ import annotations

import json
import statistics

from bench.timing import ms
from shared.actions import generate_chunk
from spaces.vla_tokenizer import compute


def run(runs: int = 51) -> dict:
    bpe = compute.load_bpe()
    out: dict = {"runs": runs, "scale": compute.DEFAULT_SCALE}
    for name, (steps, hz) in {"chunk_50x7": (50, 50.0), "chunk_200x7": (200, 200.0)}.items():
        x = generate_chunk(3, steps, hz, noise=0.0)
        compute.bin256(x)  # warm up both paths
        fast = compute.fast_encode(x, compute.DEFAULT_SCALE, bpe)
        bin_ms, fast_ms = [], []
        for _ in range(runs):
            bin_ms.append(ms(lambda x=x: compute.bin256(x)))
            fast_ms.append(ms(lambda x=x: compute.fast_encode(x, compute.DEFAULT_SCALE, bpe)))
        b, f = statistics.median(bin_ms), statistics.median(fast_ms)
        out[name] = {
            "bin256_encode_decode_ms": round(b, 4),
            "fast_encode_decode_ms": round(f, 4),
            "fast_over_bin256_latency": round(f / b, 1),
            "bin256_tokens": int(x.size),
            "fast_tokens": len(fast.tokens),
            "token_ratio_bin256_over_fast": round(x.size / len(fast.tokens), 2),
            "fast_max_abs_error": float(f"{compute.abs_errors(x, fast.decoded)['max_abs_error']:.4g}"),
            "bin256_max_abs_error": float(f"{compute.abs_errors(x, compute.bin256(x).decoded)['max_abs_error']:.4g}"),
        }
    for bounds in ("chunk", "dataset"):
        out[f"tradeoff_200_heldout_{bounds}_bounds"] = [
            {"method": r["method"], "setting": r["setting"], "tokens_per_chunk": round(r["tokens_per_chunk"], 1),
             "bits_per_chunk": round(r["bits_per_chunk"]),
             "mean_error_pct_of_range": round(100 * r["relative_mean_error"], 3)}
            for r in compute.tradeoff(200, bounds, bpe=bpe)]
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
