"""Hub start-up against a bare gradio app, and patchify latency against an echo endpoint."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    from tests.serving import free_port

    return free_port()


def _startup_seconds(module_args: list[str], timeout: float = 120.0) -> float:
    """Process start until GET / answers 200."""
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", *module_args, "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{module_args} did not answer within {timeout} s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def startup(runs: int = 5) -> dict:
    hub, bare = [], []
    for _ in range(runs):  # interleaved, so a slow minute hits both
        bare.append(_startup_seconds(["bench.bare_app"]))
        hub.append(_startup_seconds(["hub"]))
    h, b = statistics.median(hub), statistics.median(bare)
    return {"hub_startup_s": round(h, 3), "bare_gradio_startup_s": round(b, 3), "ratio": round(h / b, 3), "runs": runs}


_BREAKDOWN = """
import json, time
t0 = time.perf_counter()
import gradio as gr
t1 = time.perf_counter()
import fastapi, uvicorn
t2 = time.perf_counter()
import importlib
from hub import app as hub_app
from hub.registry import SPACES
t3 = time.perf_counter()
modules = {t.slug: importlib.import_module(t.module) for t in SPACES}
t4 = time.perf_counter()
renders = {}
with gr.Blocks() as scratch:
    for t in SPACES:
        s = time.perf_counter(); modules[t.slug].render(scratch); renders[t.slug] = round(time.perf_counter() - s, 3)
t5 = time.perf_counter()
hub_app.create_app()
t6 = time.perf_counter()
print(json.dumps({"import_gradio_s": round(t1 - t0, 3), "import_fastapi_uvicorn_s": round(t2 - t1, 3),
                  "import_hub_s": round(t3 - t2, 3), "import_space_modules_s": round(t4 - t3, 3),
                  "render_each_space_s": renders, "create_app_s (hub: every space rendered once, mounts)": round(t6 - t5, 3)}))
"""


def startup_breakdown() -> dict:
    """Where the hub's start-up goes, measured in a fresh process (imports are cached after the first)."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", _BREAKDOWN], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def patchify_latency(runs: int = 30) -> dict:
    """Median round trip through gradio_client: patchify against echo, same server, same payload."""
    import gradio as gr
    from gradio_client import Client, handle_file

    from bench.bare_app import build as build_echo
    from hub.app import create_app
    from shared.images import sample_paths
    from tests.serving import BackgroundServer

    app = create_app(["patch_explorer"])
    gr.mount_gradio_app(app, build_echo(), path="/bench_echo")
    # the echo app must come before the hub's catch-all mount at "/"
    app.router.routes.insert(0, app.router.routes.pop())
    image = str(sample_paths()[0])
    with BackgroundServer(app) as server:
        hub = Client(server.url, verbose=False)
        echo = Client(server.url + "bench_echo/", verbose=False)
        calls = {
            "patchify": lambda: hub.predict(handle_file(image), 224, 16, api_name="/patch_explorer_patchify"),
            "echo": lambda: echo.predict(handle_file(image), 224, 16, api_name="/echo"),
        }
        for fn in calls.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(runs):
            for name, fn in calls.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    p, e = (statistics.median(times[k]) * 1000 for k in ("patchify", "echo"))
    return {"patchify_ms": round(p, 1), "echo_ms": round(e, 1), "overhead_ms": round(p - e, 1), "runs": runs}


def run() -> dict:
    return {"startup": startup(), "startup_breakdown": startup_breakdown(), "patchify_vs_echo": patchify_latency()}
