"""Training through accelerate: two processes over gloo train the same model as one, and gradient
accumulation gives the same step as the whole batch (issue 13).

accelerate 1.15's ``--cpu`` flag starts a single process (its multi-CPU path needs an MPI hostfile),
so two CPU processes are started with ``--multi_gpu`` (torchrun underneath); with no GPU visible the
recipe's Accelerator joins them over gloo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
STEPS = "20"


def _env() -> dict:
    # No GPU (a GPU machine would otherwise give both processes one device) and one thread each.
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _run(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, f"the main process alone prints the metrics line: {out.stdout[-2000:]}"
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    _run([ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "shared.training", "vit-tiny-shapes",
          "--steps", STEPS, "--out", str(out), "--rank-weights"])
    return out


@pytest.mark.slow
def test_two_ranks_hold_identical_weights(two_process_run):
    rank0 = load_file(str(two_process_run / "ranks" / "rank0.safetensors"))
    rank1 = load_file(str(two_process_run / "ranks" / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys() and len(rank0) > 10
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    from transformers import ViTForImageClassification

    # what ships is what the ranks held (loaded through transformers, which renames checkpoint keys)
    saved = ViTForImageClassification.from_pretrained(two_process_run).state_dict()
    assert saved.keys() == rank0.keys() and all(torch.equal(saved[k], rank0[k]) for k in saved)


@pytest.mark.slow
def test_one_process_and_gradient_accumulation_train_the_same_model(tmp_path, two_process_run):
    single, accumulated = tmp_path / "single", tmp_path / "accum"
    base = [sys.executable, "-m", "shared.training", "vit-tiny-shapes", "--steps", STEPS]
    _run([*base, "--out", str(single)])
    _run([*base, "--out", str(accumulated), "--grad-accum", "2"])
    one = load_file(str(single / "model.safetensors"))
    for other in (two_process_run / "model.safetensors", accumulated / "model.safetensors"):
        theirs = load_file(str(other))  # the same file layout on both sides, so the keys match
        # Same global batches and augmentations; only float summation order differs (AdamW amplifies it
        # for near-zero gradients, so the bound is a small fraction of the learning rate x steps = 0.02).
        worst = max(float((one[k] - theirs[k]).abs().max()) for k in one)
        assert worst < 2e-3, (other, worst)


@pytest.mark.slow
def test_clip_gathers_every_ranks_embeddings_so_two_processes_train_as_one(tmp_path):
    """CLIP's loss needs every negative: each rank embeds its share and gathers the rest with gradients."""
    two, one = tmp_path / "two", tmp_path / "one"
    _run([ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "shared.training", "clip-tiny-shapes",
          "--steps", "4", "--out", str(two), "--rank-weights"])
    _run([sys.executable, "-m", "shared.training", "clip-tiny-shapes", "--steps", "4", "--out", str(one)])
    rank0 = load_file(str(two / "ranks" / "rank0.safetensors"))
    rank1 = load_file(str(two / "ranks" / "rank1.safetensors"))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    single = load_file(str(one / "model.safetensors"))
    worst = max(float((single[k] - rank0[k]).abs().max()) for k in single)
    assert worst < 1e-3, worst
