"""Benchmark of the DiT stepper on the embedded dit-tiny-shapes, on this machine's CPU (or GPU).

- ``sample_25_steps``: a full 25-step DDIM sample at guidance 3 through ``compute.sample``, the
  code path of the ``dit_stepper_sample`` endpoint (noise, 25 guided steps, image), batch 1.
- ``per_step``: that time divided by 25.
- Baseline, in the same run: one bare transformer forward at the same batch (2: the conditional
  and the null-class half of one guided step), so ``step_overhead`` = per step / bare forward
  says what the scheduler, the conversions and the pictures cost on top of the network.

- ``scaling_*`` (issue 23): the time to count the 12 DiTs of the scaling table (meta device, FlopCounterMode)
  the first time and from the cache, and each model's counted GMACs (one shared embedder) and parameters
  beside the paper's Table 4 Gflops and parameters (Peebles & Xie, 2023).

Every timing is a median of ``runs`` timings after a warm-up, except the first (cold) count of the table.
Run: ``.venv/bin/python -m bench.dit_stepper`` (prints JSON), or via ``bench/__main__.py``.
"""

from __future__ import annotations

import json

import torch

from bench.timing import median_ms
from spaces.dit_stepper import compute

STEPS = 25


def run(runs: int = 7) -> dict:
    transformer, _ = compute.load_model(compute.TINY_MODEL)
    dev = transformer.device
    sample = lambda: compute.sample("star", STEPS, 3.0, 0, "DDIM")  # noqa: E731
    sample()  # load and warm up
    x = torch.randn(2, 3, 32, 32, device=dev)
    t = torch.full((2,), 500.0, device=dev)
    y = torch.tensor([3, transformer.config.num_embeds_ada_norm], device=dev)

    @torch.no_grad()
    def bare():
        for _ in range(STEPS):
            transformer(x, timestep=t, class_labels=y)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    bare()
    sample_ms = median_ms(sample, runs)
    bare_ms = median_ms(bare, runs) / STEPS
    per_step = sample_ms / STEPS
    import time

    start = time.perf_counter()
    table = compute.scaling_table()  # cold unless this process counted it already
    cold_s = time.perf_counter() - start
    cached_ms = median_ms(compute.scaling_table, runs)
    vs_paper = {d["model"]: {"gmacs_one_embedder": round(d["gmacs_shared_embedders"], 3),
                             "paper_gflops": d["paper_gflops"], "params_m": round(d["params"] / 1e6, 2),
                             "params_one_embedder_m": round(d["params_shared_embedders"] / 1e6, 2),
                             "paper_params_m": d["paper_params_m"]} for d in table["details"]}
    return {
        "scaling_count_cold_s": round(cold_s, 2), "scaling_cached_ms": round(cached_ms, 3),
        "scaling_vs_paper": vs_paper,
        "model": compute.TINY_MODEL, "device": str(dev), "threads": torch.get_num_threads(), "runs": runs,
        "scheduler": "DDIM", "guidance": 3.0,
        "sample_25_steps_ms": round(sample_ms, 2),
        "per_step_ms": round(per_step, 3),
        "baseline_bare_forward_batch2_ms": round(bare_ms, 3),
        "step_overhead": round(per_step / bare_ms, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
