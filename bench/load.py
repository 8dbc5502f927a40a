"""Load: 32 gradio_client clients calling each model endpoint for 60 s against the served hub (issue 14).

The hub runs as ``python -m hub`` in its own process, so its resident memory (RSS, from /proc) is the
server's alone: read after a warm-up call per endpoint (models loaded) and again after that endpoint's
load. Reported per endpoint: requests, errors (with the first messages), p50 and p95 latency, RSS
before and after. The aim: 0 errors and a flat RSS.

    python -m bench --only load            # all endpoints, 32 clients, 60 s each
    VITLAB_LOAD_SECONDS=10 python -m bench --only load
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 32
SECONDS = float(os.environ.get("VITLAB_LOAD_SECONDS", 60))


def _endpoints() -> dict[str, Callable[[int], tuple]]:
    """api_name -> arguments for client ``i`` (seeds differ, so generated results differ per client)."""
    from gradio_client import handle_file

    from shared.actions import generate_chunk, to_json
    from shared.images import sample_paths

    image = handle_file(str(sample_paths()[0]))
    chunk = to_json(generate_chunk(3, 50, 50.0, 0.0))
    return {
        "/patch_explorer_patchify": lambda i: (image, 224, 16),
        "/clip_zero_shot_classify": lambda i: (image, "circle, square, triangle, star, cross", "a photo of a {}."),
        "/vla_tokenizer_encode": lambda i: (chunk, "fast", 10.0),
        "/dit_stepper_sample": lambda i: ("star", 10, 3.0, i, "DDIM"),
        # one measurement at a time (concurrency_limit=1): the other clients queue, as users would
        "/quant_latency_compare": lambda i: ("vit-tiny-shapes", ["fp32"], 1, 5, 1),
    }


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


def hammer(clients: list, api_name: str, args_for: Callable[[int], tuple], seconds: float) -> dict:
    """Every client calls ``api_name`` in a loop for ``seconds``; latency of each successful call."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(i: int, client) -> None:
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                client.predict(*args_for(i), api_name=api_name)
            except Exception as err:  # counted, and the first ones shown
                with lock:
                    errors.append(f"{type(err).__name__}: {str(err)[:160]}")
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=loop, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms) + len(errors), "errors": len(errors), "first_errors": sorted(set(errors))[:3],
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1) if ms else None,
    }


def _serve() -> tuple[subprocess.Popen, str]:
    from tests.serving import free_port

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hub", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the hub did not start") from None
            time.sleep(0.2)


def run(clients: int = CLIENTS, seconds: float = SECONDS) -> dict:
    from gradio_client import Client

    proc, url = _serve()
    try:
        pool = [Client(url, verbose=False) for _ in range(clients)]
        results: dict = {"clients": clients, "seconds_per_endpoint": seconds}
        for api_name, args_for in _endpoints().items():
            pool[0].predict(*args_for(0), api_name=api_name)  # warm-up: the model loads once
            before = rss_mb(proc.pid)
            row = hammer(pool, api_name, args_for, seconds)
            row.update(rss_before_mb=before, rss_after_mb=rss_mb(proc.pid))
            results[api_name.strip("/")] = row
            print(f"{api_name:<28} {row['requests']:>6} req {row['errors']:>3} err  p50 {row['p50_ms']} ms  "
                  f"p95 {row['p95_ms']} ms  RSS {row['rss_before_mb']} -> {row['rss_after_mb']} MB", flush=True)
        return results
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # uvicorn waits for the clients' open event streams to end
            proc.kill()
            proc.wait(timeout=30)
