"""Benchmark of the serving_planner space: the simulation against queueing theory, the measured batch
curves of vit-tiny-shapes and the ViT-B/16 architecture (random weights) on this CPU with the fit
s(b) = a + c*b, and the plan for 100 req/s at p95 <= 100 ms from each measured curve.

Run: ``.venv/bin/python -m bench.serving_planner`` (prints JSON), or ``python -m bench --only serving_planner``.
"""

from __future__ import annotations

import json
import time

from spaces.serving_planner import compute

THEORY_REQUESTS = 1_000_000
# (model, batch sizes, timed runs per batch size)
CURVES = (
    ("vit-tiny-shapes", [1, 2, 4, 8, 16, 32, 64], 10),
    ("vit-b16-random", [1, 2, 4, 8], 3),
)
TARGET_P95_MS, PEAK_RPS = 100.0, 100.0
CPU_PRICE, GPU_PRICE = 0.05, 3.00  # placeholders ($ per core-hour, $ per GPU-hour): the cost scales linearly


def theory() -> list[dict]:
    """max_batch = 1, service 1 ms, 10^6 requests: simulated mean wait against M/D/1 and M/M/1."""
    out = []
    for service in ("deterministic", "exponential"):
        for rho in (0.5, 0.9):
            rate = rho * 1000.0
            st = compute.simulate(rate, 1.0, 0.0, 1, 0.0, THEORY_REQUESTS / rate, 7, service).stats
            t = st["theory"]
            out.append({"queue": t["queue"], "rho": rho, "requests": st["completed"],
                        "theory_wait_ms": round(t["mean_wait_ms"], 4),
                        "simulated_wait_ms": round(t["simulated_mean_wait_ms"], 4),
                        "relative_error": round(t["relative_error"], 4)})
    return out


def _round(rows: list[dict]) -> list[dict]:
    return [{k: round(r[k], 3) for k in ("batch_size", "median_ms", "iqr_ms", "fit_ms", "residual_ms", "images_per_s")}
            for r in rows]


def run() -> dict:
    started = time.perf_counter()
    out: dict = {"theory": theory(), "curves": {}, "plans": {}}
    for model, sizes, runs in CURVES:
        t0 = time.perf_counter()
        m = compute.measure(model, "fp32", sizes, runs)
        out["curves"][model] = {"precision": "fp32", "threads": m["threads"], "runs": runs, "rows": _round(m["rows"]),
                                "load_average_1min": m["load_average_1min"],
                                "fit": {k: round(m["fit"][k], 4) for k in ("a_ms", "c_ms_per_item", "r2")},
                                "service_ms_at_batch1": round(m["service_ms_at_batch1"], 3),
                                "per_item_ms": round(m["per_item_ms"], 3), "seconds": round(time.perf_counter() - t0, 1)}
        plan = compute.plan(TARGET_P95_MS, PEAK_RPS, m["service_ms_at_batch1"], m["per_item_ms"], CPU_PRICE, GPU_PRICE)
        out["plans"][model] = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()}
                               for e in plan["entries"]]
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
