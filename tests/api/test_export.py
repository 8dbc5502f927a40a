"""`python -m hub export patch_explorer DIR` gives a folder whose `python app.py` serves the same endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_exported_space_serves_the_same_endpoint(tmp_path):
    out = tmp_path / "patch-explorer-space"
    subprocess.run([sys.executable, "-m", "hub", "export", "patch_explorer", str(out)], cwd=ROOT, check=True)

    assert (out / "app.py").is_file() and (out / "requirements.txt").is_file()
    assert (out / "patch_explorer" / "compute.py").is_file()
    assert not (out / "spaces").exists(), "an exported Space must not carry a spaces/ folder (ZeroGPU clash)"
    assert sorted(p.name for p in (out / "shared" / "weights").iterdir()) == ["vit-tiny-shapes"]
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\n") and "app_file: app.py" in readme
    assert "torch==" in (out / "requirements.txt").read_text()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the exported code, not the checkout, is what runs there
    where = subprocess.run([sys.executable, "-c", "import shared, patch_explorer; print(shared.__file__)"],
                           cwd=out, env=env, capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).resolve().is_relative_to(out.resolve())

    port = free_port()
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=out, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"exported app did not serve:\n{proc.stdout.read() if proc.stdout else ''}") from None
                time.sleep(0.2)
        from gradio_client import Client, handle_file

        sample = next((out / "shared" / "samples").glob("*.png"))
        _, stats, _files = Client(url, verbose=False).predict(handle_file(str(sample)), 224, 16,
                                                      api_name="/patch_explorer_patchify")
        assert (stats["num_patches"], stats["seq_len"], stats["patch_dim"]) == (196, 197, 768)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
