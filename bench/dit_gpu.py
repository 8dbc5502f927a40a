"""Optional GPU benchmark (not run by ``make bench``): DiT-XL/2 per-step latency in the stepper's
code path against diffusers' ``DiTPipeline``, in the same run, fp32 and bf16, batch 1 and 64.

Weights are random (the real config, ``compute.DIT_XL2_CONFIG``): latency does not depend on
their values, and nothing is downloaded. One guided step is one transformer forward at batch
2B (conditional + null class) plus the scheduler. The pipeline always ends with a VAE decode,
so its per-step time is (T(n2) - T(n1)) / (n2 - n1), which cancels the decode.

Reports milliseconds per step (medians), the stepper / pipeline ratio, and the share of the
GPU's bf16 peak: 2 x 118.6 GFLOP per sample per forward (the DiT paper's count is in
multiply-accumulates) x 2B samples per step, divided by ``--peak-tflops`` (default 790, the
dense bf16 matmul rate measured on an H200 in issue 5).

Run on a CUDA machine: ``python -m bench.dit_gpu [--peak-tflops 790] [--compile]``;
``--smoke`` runs a tiny config on the CPU to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from shared.diffusion import guided_step, initial_noise, make_scheduler
from spaces.dit_stepper import compute

SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              layers_per_block=2, sample_size=256, scaling_factor=0.18215)
MACS_PER_SAMPLE = 118.6e9  # Peebles & Xie (2023), Table 4


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_s(fn, runs: int, device: torch.device) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stepper_step_ms(transformer, config: dict, batch: int, steps: int, runs: int, device) -> float:
    """Median ms per guided step through ``shared.diffusion.guided_step`` (the stepper's path)."""
    def run():
        sched = make_scheduler("DDIM", config, steps)
        gen = torch.Generator().manual_seed(0)
        c, s = transformer.config.in_channels, transformer.config.sample_size
        x = initial_noise((batch, c, s, s), sched, gen).to(device, transformer.dtype)
        labels = torch.arange(batch, device=device) % transformer.config.num_embeds_ada_norm
        for t in sched.timesteps:
            x = guided_step(transformer, sched, x, t, labels, transformer.config.num_embeds_ada_norm, 4.0, gen).x_prev
            x = x.to(transformer.dtype)
    return _median_s(run, runs, device) / steps * 1e3


def pipeline_step_ms(pipe, batch: int, n1: int, n2: int, runs: int, device) -> float:
    labels = [i % 1000 for i in range(batch)]

    def call(n):
        return lambda: pipe(class_labels=labels, num_inference_steps=n, guidance_scale=4.0, output_type="np")
    return (_median_s(call(n2), runs, device) - _median_s(call(n1), runs, device)) / (n2 - n1) * 1e3


def main(argv: list[str] | None = None) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    parser = argparse.ArgumentParser(prog="python -m bench.dit_gpu")
    parser.add_argument("--peak-tflops", type=float, default=790.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also torch.compile(mode='reduce-overhead')")
    parser.add_argument("--smoke", action="store_true", help="a 2-block config on the CPU, to test the script")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        raise SystemExit("no CUDA device; use --smoke to test the script on the CPU")
    cfg = dict(compute.DIT_XL2_CONFIG, num_layers=2, num_attention_heads=2) if args.smoke else compute.DIT_XL2_CONFIG
    vae_cfg = dict(SD_VAE, block_out_channels=(32, 32, 32, 32), sample_size=64) if args.smoke else SD_VAE
    batches = (1, 2) if args.smoke else (1, 64)
    steps, n1, n2 = (3, 2, 4) if args.smoke else (25, 10, 30)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    sched_cfg = dict(DDIMScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, clip_sample=False).config)
    results: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke)",
                     "config": cfg, "peak_tflops": args.peak_tflops, "cases": []}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        transformer = DiTTransformer2DModel(**cfg).to(device, dtype).eval()
        vae = AutoencoderKL(**vae_cfg).to(device, dtype).eval()
        pipe = DiTPipeline(transformer, vae, DDIMScheduler.from_config(sched_cfg))
        pipe.set_progress_bar_config(disable=True)
        variants = [("eager", transformer)]
        if args.compile:
            variants.append(("compiled", torch.compile(transformer, mode="reduce-overhead")))
        for batch in batches:
            with torch.no_grad():
                base = pipeline_step_ms(pipe, batch, n1, n2, args.runs, device)
                for name, model in variants:
                    ours = stepper_step_ms(model, sched_cfg, batch, steps, args.runs, device)
                    flops = 2 * MACS_PER_SAMPLE * 2 * batch
                    results["cases"].append({
                        "dtype": str(dtype).removeprefix("torch."), "batch": batch, "variant": name,
                        "stepper_ms_per_step": round(ours, 3), "pipeline_ms_per_step": round(base, 3),
                        "stepper_over_pipeline": round(ours / base, 3),
                        "tflops": round(flops / (ours / 1e3) / 1e12, 1),
                        "share_of_peak": round(flops / (ours / 1e3) / 1e12 / args.peak_tflops, 3),
                    })
                    print(json.dumps(results["cases"][-1]), flush=True)
        del transformer, vae, pipe
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
