"""The training lab's public API through gradio_client, on the hub's space URL.

``training_lab_train(start, steps, lr, batch_size, label_smoothing, mixup_alpha, seed)`` and
``training_lab_lora_params(model, rank, target_modules)`` are contracts. Every bad input the issue names
comes back as a clear error and a good call right after it still works; a second run in the same session
and a run past the global cap are refused (the hub runs in this process, so the tests can see and stop
the runs in ``runs.REGISTRY``).
"""

from __future__ import annotations

import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from shared.models import available_offline
from spaces.training_lab import options, runs

pytestmark = pytest.mark.skipif(not available_offline(options.BASE_MODEL), reason="vit-tiny-shapes not trained")

SLUG = "training_lab"
TRAIN = f"/{SLUG}_train"
LORA = f"/{SLUG}_lora_params"
SHORT = ("pretrained", 2, 1e-3, 4, 0.1, 0.2, 0)
LONG = ("scratch", options.MAX_STEPS, 1e-3, 8, 0.1, 0.0, 0)


@pytest.fixture()
def lab(space_client):
    return space_client(SLUG)


def _wait_for_runs(n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while runs.REGISTRY.active() != n:
        assert time.monotonic() < deadline, f"{runs.REGISTRY.active()} runs active, waiting for {n}"
        time.sleep(0.1)


def _stop_all() -> None:
    for session in list(runs.REGISTRY._runs):
        runs.REGISTRY.stop(session)
    _wait_for_runs(0)


def test_same_arguments_and_seed_give_the_same_history(lab):
    a = lab.predict("scratch", 3, 1e-3, 4, 0.1, 0.4, 11, api_name=TRAIN)
    b = lab.predict("scratch", 3, 1e-3, 4, 0.1, 0.4, 11, api_name=TRAIN)
    assert a["status"] == "finished" and [h["step"] for h in a["history"]] == [1, 2, 3]
    assert a["history"] == b["history"]
    assert a["val_accuracy"] == a["history"][-1]["val_accuracy"] and a["seconds"] > 0
    assert {"step", "loss"} <= set(a["history"][0])


def test_lora_counts_for_vit_b16(lab):
    r = lab.predict(options.VIT_B16, 8, "q_proj,v_proj", api_name=LORA)
    assert r["trainable"] == 12 * 2 * 8 * (768 + 768)
    assert r["percent"] == pytest.approx(100 * r["trainable"] / r["total"], abs=1e-4)


@pytest.mark.parametrize("args, match", [
    (("pretrained", 0, 1e-3, 4, 0.1, 0.2, 0), "steps must be an integer from 1 to 400, got 0"),
    (("pretrained", -5, 1e-3, 4, 0.1, 0.2, 0), "steps must be an integer from 1 to 400, got -5"),
    (("pretrained", options.MAX_STEPS + 1, 1e-3, 4, 0.1, 0.2, 0), "steps must be an integer from 1 to 400"),
    (("pretrained", 2.5, 1e-3, 4, 0.1, 0.2, 0), "steps must be an integer from 1 to 400, got 2.5"),
    (("pretrained", 2, 1e-3, 0, 0.1, 0.2, 0), "batch size must be an integer from 1 to 128, got 0"),
    (("pretrained", 2, 1e-3, -4, 0.1, 0.2, 0), "batch size must be an integer from 1 to 128, got -4"),
    (("pretrained", 2, 1e-3, options.MAX_BATCH + 1, 0.1, 0.2, 0), "batch size must be an integer from 1 to 128"),
    (("pretrained", 2, 0, 4, 0.1, 0.2, 0), "learning rate must be a finite number greater than 0 and at most 1"),
    (("pretrained", 2, -1e-3, 4, 0.1, 0.2, 0), "learning rate must be a finite number greater than 0"),
    (("pretrained", 2, "nan", 4, 0.1, 0.2, 0), "learning rate must be a finite number .*, got nan"),
    (("pretrained", 2, 1.5, 4, 0.1, 0.2, 0), "learning rate must be a finite number greater than 0 and at most 1"),
    (("imagenet", 2, 1e-3, 4, 0.1, 0.2, 0), "unknown start 'imagenet'"),
])
def test_bad_training_inputs_then_the_server_keeps_serving(lab, args, match):
    with pytest.raises(AppError, match=match):
        lab.predict(*args, api_name=TRAIN)
    assert lab.predict(options.BASE_MODEL, 2, "q_proj", api_name=LORA)["trainable"] > 0


@pytest.mark.parametrize("args, match", [
    ((options.VIT_B16, 0, "q_proj,v_proj"), "rank must be an integer from 1 to 256, got 0"),
    ((options.VIT_B16, -4, "q_proj,v_proj"), "rank must be an integer from 1 to 256, got -4"),
    ((options.VIT_B16, options.MAX_RANK + 1, "q_proj,v_proj"), "rank must be an integer from 1 to 256"),
    ((options.VIT_B16, 8, "query,value"), "unknown target modules .*valid names for this model: classifier, fc1, "
                                          "fc2, k_proj, o_proj, q_proj, v_proj"),
    (("resnet-50", 8, "q_proj"), "unknown model 'resnet-50'"),
])
def test_bad_lora_inputs_then_the_server_keeps_serving(lab, args, match):
    with pytest.raises(AppError, match=match):
        lab.predict(*args, api_name=LORA)
    assert lab.predict(options.BASE_MODEL, 2, "q_proj", api_name=LORA)["trainable"] > 0


def test_a_second_run_in_the_same_session_is_refused(lab):
    job = lab.submit(*LONG, api_name=TRAIN)
    try:
        _wait_for_runs(1)
        with pytest.raises(AppError, match="a training run is already going in this session"):
            lab.predict(*SHORT, api_name=TRAIN)
    finally:
        _stop_all()
    assert job.result(timeout=60)["status"] == "stopped"  # Stop ends the run with its final stats
    assert lab.predict(*SHORT, api_name=TRAIN)["status"] == "finished"  # the session's slot is free again


def test_the_global_cap_is_enforced_and_released(hub_url):
    clients = [Client(f"{hub_url}{SLUG}/", verbose=False) for _ in range(options.MAX_CONCURRENT_RUNS + 1)]
    jobs = []
    try:
        for c in clients[:-1]:
            jobs.append(c.submit(*LONG, api_name=TRAIN))
        _wait_for_runs(options.MAX_CONCURRENT_RUNS)
        with pytest.raises(AppError, match=f"the global cap of {options.MAX_CONCURRENT_RUNS} concurrent training "
                                           "runs is reached"):
            clients[-1].predict(*SHORT, api_name=TRAIN)
    finally:
        _stop_all()
    for job in jobs:
        assert job.result(timeout=60)["status"] == "stopped"
    assert clients[-1].predict(*SHORT, api_name=TRAIN)["status"] == "finished"


def test_a_cancelled_client_job_frees_its_slot(lab):
    """The client goes away mid-run (job.cancel): the server stops polling, the run stops by itself."""
    job = lab.submit(*LONG, api_name=TRAIN)
    _wait_for_runs(1)
    time.sleep(2)
    job.cancel()
    try:
        _wait_for_runs(0, timeout=options.ABANDONED_SECONDS + 30)
    finally:
        _stop_all()


def test_two_users_at_once_each_get_their_own_run(hub_url):
    """Two clients train at once with different seeds; each gets the history it gets alone."""
    from tests.serving import call_concurrently

    clients = [Client(f"{hub_url}{SLUG}/", verbose=False) for _ in range(2)]
    args = [("scratch", 3, 1e-3, 4, 0.1, 0.0, seed) for seed in (21, 22)]
    together = call_concurrently([lambda i=i: clients[i].predict(*args[i], api_name=TRAIN) for i in range(2)])
    assert together[0]["history"] != together[1]["history"]
    for i in range(2):
        assert clients[i].predict(*args[i], api_name=TRAIN)["history"] == together[i]["history"]
