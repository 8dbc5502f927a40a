"""serving_planner: the dynamic-batching simulation against queueing theory (M/D/1, M/M/1), against a second,
event-driven simulator written here, and against the Lindley recursion; the fit, the KS distance and the
plan against numpy/scipy; a real measurement and a real monitored batch; every bad input; and the page
(built without heavy imports, stating facts read from the shipped files and the sources it cites)."""

from __future__ import annotations

import heapq
import math
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from shared.models import available_offline, shipped_metrics
from spaces.serving_planner import compute, options, text, views

ROOT = Path(__file__).resolve().parents[2]
needs_weights = pytest.mark.skipif(not available_offline("vit-tiny-shapes"),
                                   reason="needs the trained shared/weights/vit-tiny-shapes")

# =====================================================================================================
#                                 simulation against queueing theory
# =====================================================================================================

REQUESTS = 1_000_000  # per theory check: ~1 s each here
BATCHES = 50  # batch means for the standard error of the mean wait


def _waits(sim: compute.Simulation) -> np.ndarray:
    """Each served request's wait in queue, rebuilt from the batch starts and sizes (not from the stats)."""
    served = int(sim.batch_sizes.sum())
    return np.repeat(sim.batch_starts_ms, sim.batch_sizes) - sim.arrivals_ms[:served]


def _batch_means_se(x: np.ndarray, k: int = BATCHES) -> float:
    """Standard error of the mean of a correlated series by non-overlapping batch means (Law & Kelton,
    Simulation Modeling and Analysis, ch. 9): std of k batch means / sqrt(k)."""
    means = np.array([b.mean() for b in np.array_split(x, k)])
    return float(means.std(ddof=1) / math.sqrt(k))


@pytest.mark.parametrize("rho, service, theory", [
    (0.5, "deterministic", lambda lam, mu: lam / mu / (2 * mu * (1 - lam / mu))),
    (0.9, "deterministic", lambda lam, mu: lam / mu / (2 * mu * (1 - lam / mu))),
    (0.5, "exponential", lambda lam, mu: lam / mu / (mu * (1 - lam / mu))),
    (0.9, "exponential", lambda lam, mu: lam / mu / (mu * (1 - lam / mu))),
], ids=["MD1-0.5", "MD1-0.9", "MM1-0.5", "MM1-0.9"])
def test_mean_wait_matches_queueing_theory_with_max_batch_1(rho, service, theory):
    """max_batch = 1: M/D/1 Wq = rho/(2 mu (1-rho)); M/M/1 Wq = rho/(mu (1-rho)) (typed here, in seconds).
    Tolerance: 4 standard errors of the simulated mean (batch means over 10^6 requests), which the sample
    size makes small: under 3% of the mean at rho = 0.9."""
    service_ms = 1.0
    mu = 1000.0 / service_ms  # per second
    lam = rho * mu
    expected_ms = 1000.0 * theory(lam, mu)
    sim = compute.simulate(lam, service_ms, 0.0, 1, 0.0, REQUESTS / lam, 7, service)
    waits = _waits(sim)
    se = _batch_means_se(waits)
    rel = (waits.mean() - expected_ms) / expected_ms
    print(f"rho {rho} {service}: simulated Wq {waits.mean():.4f} ms, theory {expected_ms:.4f} ms, "
          f"relative error {rel:+.4f}, 4 SE = {4 * se / expected_ms:.4f}")
    assert se / expected_ms < 0.03
    assert abs(waits.mean() - expected_ms) <= 4 * se
    t = sim.stats["theory"]
    assert t["queue"] == ("M/D/1" if service == "deterministic" else "M/M/1")
    assert t["mean_wait_ms"] == pytest.approx(expected_ms, rel=1e-12)


def test_theory_formulas_match_pollaczek_khinchine():
    """Pollaczek-Khinchine: Wq = lambda E[S^2] / (2 (1 - rho)); E[S^2] = s^2 (deterministic), 2 s^2 (exponential)."""
    for lam, s_ms in ((50.0, 4.0), (200.0, 4.5), (10.0, 90.0)):
        s = s_ms / 1000
        rho = lam * s
        assert compute.md1_wait_ms(lam, s_ms) == pytest.approx(1000 * lam * s**2 / (2 * (1 - rho)), rel=1e-12)
        assert compute.mm1_wait_ms(lam, s_ms) == pytest.approx(1000 * lam * 2 * s**2 / (2 * (1 - rho)), rel=1e-12)
    with pytest.raises(ValueError, match="no steady state"):
        compute.md1_wait_ms(300.0, 4.0)


def test_max_batch_1_follows_the_lindley_recursion():
    """The same arrivals through W(n+1) = max(0, W(n) + S - A(n+1)) give the simulator's waits exactly."""
    sim = compute.simulate(200.0, 4.0, 0.0, 1, 0.0, 50.0, 3)
    t = sim.arrivals_ms
    waits = _waits(sim)
    w = np.zeros(len(waits))
    for n in range(1, len(waits)):
        w[n] = max(0.0, w[n - 1] + 4.0 - (t[n] - t[n - 1]))
    np.testing.assert_allclose(waits, w, atol=1e-9)


def _reference_batcher(t: np.ndarray, s1: float, per: float, b_max: int, wait: float, horizon: float):
    """A second simulator, event-driven with a heap (arrival, timeout and completion events), written
    independently of compute._run_batcher: returns [(start, size)] of the batches started before the horizon."""
    events = [(float(x), 1, "arrival") for x in t]
    heapq.heapify(events)
    queue: deque[float] = deque()
    busy_until = -1.0
    batches = []

    def try_start(now: float) -> None:
        nonlocal busy_until
        if not queue or now < busy_until or now >= horizon:
            return
        if len(queue) >= b_max or now >= queue[0] + wait:
            size = min(b_max, len(queue))
            for _ in range(size):
                queue.popleft()
            batches.append((now, size))
            busy_until = now + s1 + per * (size - 1)
            heapq.heappush(events, (busy_until, 0, "done"))
        else:
            heapq.heappush(events, (queue[0] + wait, 2, "timeout"))

    while events:
        now, _, kind = heapq.heappop(events)
        if kind == "arrival":
            queue.append(now)
        try_start(now)
    return batches


@pytest.mark.parametrize("rate, b_max, wait", [(300.0, 8, 5.0), (900.0, 4, 0.0), (50.0, 16, 30.0), (2000.0, 8, 2.0)])
def test_batches_match_an_independent_event_driven_simulator(rate, b_max, wait):
    sim = compute.simulate(rate, 3.0, 0.5, b_max, wait, 20.0, 11)
    ref = _reference_batcher(sim.arrivals_ms, 3.0, 0.5, b_max, wait, sim.horizon_ms)
    assert len(ref) == len(sim.batch_sizes)
    np.testing.assert_allclose([s for s, _ in ref], sim.batch_starts_ms, atol=1e-9)
    assert [n for _, n in ref] == sim.batch_sizes.tolist()


def test_stats_are_computed_from_the_sample_path():
    sim = compute.simulate(300.0, 3.0, 0.5, 8, 5.0, 30.0, 2)
    st = sim.stats
    sizes, starts = sim.batch_sizes, sim.batch_starts_ms
    ends = starts + 3.0 + 0.5 * (sizes - 1)
    per_req_end = np.repeat(ends, sizes)
    done = per_req_end <= 30_000.0
    soj = (per_req_end - sim.arrivals_ms[: sizes.sum()])[done]
    assert st["completed"] == done.sum() == len(sim.sojourn_ms)
    assert st["mean_ms"] == pytest.approx(soj.mean())
    for q in (50, 95, 99):
        assert st[f"p{q}_ms"] == pytest.approx(np.percentile(soj, q))
    assert st["mean_batch"] == pytest.approx(sizes.mean())
    assert st["utilization"] == pytest.approx(np.minimum(ends, 30_000.0).sum() / 30_000.0 - starts.sum() / 30_000.0)
    assert st["throughput_rps"] == pytest.approx(done.sum() / 30.0)
    assert st["capacity_rps"] == pytest.approx(1000 * 8 / (3.0 + 0.5 * 7))
    assert st["rho"] == pytest.approx(300.0 / st["capacity_rps"])
    assert max(sizes) <= 8 and not st["overloaded"]
    # every request waits at most max_wait unless the server was busy: starts are never later than needed
    assert (sim.arrivals_ms.size - sizes.sum()) == st["in_queue_at_end"]


def test_deterministic_per_seed():
    a = compute.simulate(120.0, 4.0, 1.0, 8, 5.0, 30.0, 5).stats
    b = compute.simulate(120.0, 4.0, 1.0, 8, 5.0, 30.0, 5).stats
    c = compute.simulate(120.0, 4.0, 1.0, 8, 5.0, 30.0, 6).stats
    drop = {"simulation_loop_s"}
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert a["p95_ms"] != c["p95_ms"] or a["completed"] != c["completed"]


def test_arrivals_are_poisson():
    """Gaps are exponential with mean 1/lambda (KS test) and counts per second have mean = variance = lambda."""
    rng = np.random.default_rng(0)
    t = compute.poisson_arrivals_ms(500.0, 200.0, rng)
    gaps = np.diff(t)
    assert scipy.stats.kstest(gaps, "expon", args=(0, 2.0)).pvalue > 1e-3
    counts = np.bincount((t // 1000).astype(int), minlength=200)
    assert counts.mean() == pytest.approx(500, rel=0.02) and counts.var(ddof=1) == pytest.approx(500, rel=0.3)


def test_overload_is_a_result_with_the_queue_growth():
    st = compute.simulate(2000.0, 4.0, 1.0, 8, 5.0, 20.0, 0).stats
    capacity = 1000 * 8 / (4.0 + 7 * 1.0)
    assert st["overloaded"] is True and st["rho"] == pytest.approx(2000 / capacity)
    assert st["queue_growth_theory_rps"] == pytest.approx(2000 - capacity)
    assert st["queue_growth_rps"] == pytest.approx(2000 - capacity, rel=0.05)
    assert "overloaded" in st["message"] and st["throughput_rps"] == pytest.approx(capacity, rel=0.01)


def test_a_million_requests_take_seconds_and_too_many_are_refused_at_once():
    started = time.perf_counter()
    st = compute.simulate(10_000.0, 0.05, 0.0, 1, 0.0, 100.0, 0).stats
    assert st["arrivals"] >= 990_000 and time.perf_counter() - started < 10
    started = time.perf_counter()
    with pytest.raises(ValueError, match="cap of 2,000,000 requests"):
        compute.simulate(100_000.0, 1.0, 0.0, 8, 0.0, 3600.0, 0)
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize("args, message", [
    ((0, 4, 1, 8, 5, 10, 0), "arrival rate .* greater than 0"),
    ((-5, 4, 1, 8, 5, 10, 0), "arrival rate .* greater than 0"),
    (("nan", 4, 1, 8, 5, 10, 0), "arrival rate .* finite"),
    ((100, 0, 1, 8, 5, 10, 0), "service time at batch 1 .* greater than 0"),
    ((100, -1, 1, 8, 5, 10, 0), "service time at batch 1"),
    ((100, float("nan"), 1, 8, 5, 10, 0), "service time at batch 1 .* finite"),
    ((100, 4, -1, 8, 5, 10, 0), "per-item service time .* from 0"),
    ((100, 4, 1, 8, 5, 0, 0), "simulated seconds .* greater than 0"),
    ((100, 4, 1, 8, 5, -3, 0), "simulated seconds"),
    ((100, 4, 1, 8, 5, "nan", 0), "simulated seconds .* finite"),
    ((100, 4, 1, 0, 5, 10, 0), "max_batch must be an integer from 1 to 1024, got 0"),
    ((100, 4, 1, 1025, 5, 10, 0), "max_batch must be an integer from 1 to 1024, got 1025"),
    ((100, 4, 1, 8, -1, 10, 0), "max_wait_ms"),
    ((100, 4, 1, 8, 5, 10, "x"), "seed must be an integer"),
])
def test_bad_simulation_input_is_a_clear_error(args, message):
    with pytest.raises(ValueError, match=message):
        compute.simulate(*args)


# =====================================================================================================
#                                   sweep, fit, plan, KS
# =====================================================================================================

def test_sweep_rows_are_the_simulations_they_name():
    result = compute.sweep(4.0, 1.0, "1/0, 8/5", 0)
    assert len(result["rows"]) == 2 * options.SWEEP_POINTS
    assert result["saturation_rps"] == {"1/0": pytest.approx(250.0), "8/5": pytest.approx(8000 / 11)}
    row = result["rows"][3]
    direct = compute.simulate(row["arrival_rate_rps"], 4.0, 1.0, 1, 0.0, options.SWEEP_REQUESTS / row["arrival_rate_rps"], 0).stats
    assert row["p95_ms"] == direct["p95_ms"] and row["throughput_rps"] == direct["throughput_rps"]
    loads = [r["rho"] for r in result["rows"][: options.SWEEP_POINTS]]
    assert loads[0] == pytest.approx(0.1) and loads[-1] == pytest.approx(options.SWEEP_MAX_LOAD)
    assert result["rows"][options.SWEEP_POINTS - 1]["overloaded"]


@pytest.mark.parametrize("text_in, message", [("", "max_batch/max_wait_ms"), ("8", "like 8/5"),
                                              ("0/5", "max_batch"), ("1/0,2/0,4/0,8/0,16/0,32/0,64/0", "1 to 6")])
def test_bad_sweep_settings(text_in, message):
    with pytest.raises(ValueError, match=message):
        compute.sweep(4.0, 1.0, text_in, 0)


def test_fit_matches_numpy_and_scipy():
    rng = np.random.default_rng(1)
    b = np.array([1, 2, 4, 8, 16, 32, 64])
    y = 3.0 + 0.7 * b + rng.normal(0, 0.5, b.size)
    fit = compute.fit_linear(b, y)
    c, a = np.polyfit(b, y, 1)
    reg = scipy.stats.linregress(b, y)
    assert fit["a_ms"] == pytest.approx(a) and fit["c_ms_per_item"] == pytest.approx(c)
    assert fit["r2"] == pytest.approx(reg.rvalue**2)
    np.testing.assert_allclose(fit["residuals_ms"], y - (a + c * b), atol=1e-9)
    with pytest.raises(ValueError, match="two different batch sizes"):
        compute.fit_linear([4, 4], [1.0, 2.0])


def test_simulator_service_from_a_measurement():
    rows = [{"batch_size": 1, "median_ms": 2.0}, {"batch_size": 8, "median_ms": 30.0}]
    fit = compute.fit_linear([1, 8], [2.0, 30.0])
    assert compute.simulator_service(rows, fit) == {"service_ms_at_batch1": 2.0, "per_item_ms": pytest.approx(4.0),
                                                    "service_ms_at_batch1_from": "measured median at batch 1"}
    rows = [{"batch_size": 4, "median_ms": 10.0}, {"batch_size": 8, "median_ms": 14.0}]
    out = compute.simulator_service(rows, compute.fit_linear([4, 8], [10.0, 14.0]))
    assert out["service_ms_at_batch1"] == pytest.approx(6.0 + 1.0)  # a = 6, c = 1


def test_ks_statistic_matches_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.beta(5, 1, 300), rng.beta(3, 1, 200)
    assert compute.ks_statistic(x, y) == pytest.approx(scipy.stats.ks_2samp(x, y).statistic)
    assert compute.ks_statistic(x, x) == 0.0


def test_plan_meets_the_target_with_the_fewest_replicas():
    target, peak, s1, per = 40.0, 400.0, 10.0, 4.0
    result = compute.plan(target, peak, s1, per, 0.05, 3.0)
    cpu = result["entries"][0]
    assert cpu["feasible"] and cpu["measured_here"]
    n, lam = cpu["replicas"], peak / cpu["replicas"]
    direct = compute.simulate(lam, s1, per, cpu["max_batch"], cpu["max_wait_ms"], options.PLAN_REQUESTS / lam, 0).stats
    assert direct["p95_ms"] == pytest.approx(cpu["p95_ms"]) and direct["p95_ms"] <= target
    assert cpu["cost_per_million_usd"] == pytest.approx(n * 0.05 / (peak * 3600) * 1e6)
    if n > 1:  # one replica fewer: no setting below 95% load meets the target
        fewer = peak / (n - 1)
        for b in options.PLAN_BATCHES:
            if fewer >= 0.95 * 1000 * b / (s1 + per * (b - 1)):
                continue
            for w in (options.PLAN_WAITS_MS if b > 1 else (0.0,)):
                st = compute.simulate(fewer, s1, per, b, w, options.PLAN_REQUESTS / fewer, 0).stats
                assert st["p95_ms"] > target, (b, w)
    gpu = result["entries"][1]
    assert not gpu["measured_here"] and "NOT measured here" in gpu["hardware"] and "PaddleClas" in gpu["source"]
    assert gpu["max_batch"] <= 8


def test_plan_says_when_the_target_is_below_one_service_time():
    cpu = compute.plan(5.0, 100.0, 8.0, 1.0, 0.05, 3.0)["entries"][0]
    assert not cpu["feasible"] and "8.0 ms > target 5 ms" in cpu["reason"]


# =====================================================================================================
#                                  real measurement and monitoring
# =====================================================================================================

@needs_weights
def test_measure_times_the_embedded_model_and_fits_the_medians():
    from shared.timing import MEASURE_LOCK

    result = compute.measure("vit-tiny-shapes", "fp32", [4, 1, 2], 3)
    assert [r["batch_size"] for r in result["rows"]] == [1, 2, 4]
    for r in result["rows"]:
        assert r["median_ms"] > 0 and r["iqr_ms"] >= 0 and r["q1_ms"] <= r["median_ms"] <= r["q3_ms"]
    c, a = np.polyfit([1, 2, 4], [r["median_ms"] for r in result["rows"]], 1)
    assert result["fit"]["a_ms"] == pytest.approx(a) and result["fit"]["c_ms_per_item"] == pytest.approx(c)
    assert result["service_ms_at_batch1"] == result["rows"][0]["median_ms"]
    assert result["threads"] == 1 and not MEASURE_LOCK.locked()


@pytest.mark.slow
def test_measure_builds_vit_b16_with_random_weights():
    """The ViT-B/16 architecture (Dosovitskiy et al., 2021, Table 1: 12 layers, width 768, MLP 3072, 12 heads,
    patch 16, 224 px) is timed with random weights and says so."""
    result = compute.measure(options.VIT_B16_RANDOM_LABEL, "fp32", [1, 2], 1)
    assert result["model"] == "vit-b16-random" and result["weights"] == "random (latency only)"
    module, pixels = compute._SUBJECT[("vit-b16-random", "fp32")]
    c = module.config
    assert (c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads, c.patch_size,
            c.image_size) == (12, 768, 3072, 12, 16, 224)
    assert tuple(pixels.shape[1:]) == (3, 224, 224)
    assert all(r["median_ms"] > 0 for r in result["rows"])


@pytest.mark.parametrize("args, message", [
    (("resnet", "fp32", [1, 2], 2), "unknown model"),
    (("vit-tiny-shapes", "int4", [1, 2], 2), "unknown precision"),
    (("vit-tiny-shapes", "fp32", [1], 2), "at least two different batch sizes"),
    (("vit-tiny-shapes", "fp32", [1, 65], 2), "batch size must be an integer from 1 to 64, got 65"),
    (("vit-tiny-shapes", "fp32", [1, 2], 0), "runs must be an integer from 1 to 30, got 0"),
    (("vit-b16-random", "fp32", [1, 2, 4, 8, 16, 32, 64], 2), r"\(2 runs \+ 2 warm-up\) x 127 images = 508 image passes exceeds the cap of 400"),
])
def test_bad_measure_input(args, message):
    with pytest.raises(ValueError, match=message):
        compute.measure(*args)


@needs_weights
def test_monitor_accuracy_matches_an_independent_pass():
    """The test-split accuracy recomputed here from the uint8 arrays (not the PIL path the space uses)."""
    import torch

    from shared.data.shapes import SHAPES, ShapesDataset
    from shared.models import load

    result = compute.monitor(20)
    loaded = load("vit-tiny-shapes", device="cpu")
    images, labels, _ = ShapesDataset("test", 20, size=loaded.model.config.image_size).arrays()
    pixels = loaded.processor(images=list(images), return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        pred = loaded.model(pixel_values=pixels).logits.argmax(-1)
    names = loaded.model.config.id2label
    expected = np.mean([names[int(p)] == SHAPES[y] for p, y in zip(pred, labels, strict=True)])
    sets = result["sets"]
    assert set(sets) == set(options.MONITOR_SETS)
    assert sets["test"]["accuracy"] == pytest.approx(expected)
    assert sets["test"]["ks_vs_test"] == 0.0
    for s in sets.values():
        assert len(s["confidences"]) == 20 and all(0 < c <= 1 for c in s["confidences"])
        assert s["mean_confidence"] == pytest.approx(np.mean(s["confidences"]))
    with pytest.raises(ValueError, match="images per set"):
        compute.monitor(5000)


# =====================================================================================================
#                                               page
# =====================================================================================================

def test_building_the_page_imports_nothing_heavy():
    heavy = ("torch", "transformers", "diffusers", "matplotlib", "scipy", "peft", "torchvision")
    code = ("import sys; import spaces.serving_planner.app as a; a.build(); "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_compute_never_mentions_the_ui_library():
    for name in ("compute.py", "views.py", "options.py"):
        assert "gradio" not in (ROOT / "spaces" / "serving_planner" / name).read_text().lower(), name


@needs_weights
def test_the_page_states_the_shipped_metrics():
    m = shipped_metrics("vit-tiny-shapes")
    facts = text.shipped_facts(m)
    for key in ("accuracy", "shifted_accuracy", "independent_renderer_accuracy"):
        assert f"{m[key]:.4f}" in facts
    for key in ("n", "n_shifted", "n_independent"):
        assert f"on {m[key]}" in facts


def test_the_cited_gpu_figures_are_the_ones_the_page_prints():
    cited = next(iter(options.GPU_CITED.values()))["batch_ms"]
    assert cited == {1: 6.12, 4: 14.84, 8: 28.51}
    assert "(6.12, 14.84, 28.51 ms)" in text.PLAN_HELP and "not measured here" in text.PLAN_HELP


def test_views_draw_every_result():
    sim = compute.simulate(100.0, 4.0, 1.0, 8, 5.0, 10.0, 0)
    fig = views.simulation_figure(sim.stats, sim.queue, sim.sojourn_ms)
    assert len(fig.axes) == 2
    assert "p95" in views.simulation_summary(sim.stats)
    sweep = compute.sweep(4.0, 1.0, "1/0", 0)
    assert len(views.sweep_table(sweep)[0]) == len(views.SWEEP_COLUMNS)
    assert len(views.sweep_figure(sweep).axes) == 3  # latency; throughput with utilisation on a twin axis


def test_the_shared_measure_lock_makes_a_second_caller_wait():
    import threading

    from shared import timing

    messages: list[str] = []
    timing.MEASURE_LOCK.acquire()  # another measurement holds it for 0.3 s
    threading.Timer(0.3, timing.MEASURE_LOCK.release).start()
    waited = timing.acquire_measure_lock(lambda fraction, message: messages.append(message))
    timing.MEASURE_LOCK.release()
    assert waited >= 0.25 and messages and "waiting for another measurement" in messages[0]
    assert timing.acquire_measure_lock(lambda f, m: messages.append(m)) < 0.05 and len(messages) == 1  # free: no message
    timing.MEASURE_LOCK.release()
