"""serving_planner public API through gradio_client: both contract endpoints and their keys, determinism,
the downloads, every bad input the issue names (a clear message, and the server keeps serving), overload as
a result, and measurements from two clients that never overlap (the shared timing lock).

``serving_planner_simulate`` returns (stats, summary, plot, files); ``serving_planner_measure`` returns
(stats, table, plot, files)."""

from __future__ import annotations

import json
import time

import pytest
from gradio_client.exceptions import AppError

from tests.serving import call_concurrently

SIM = "/serving_planner_simulate"
MEASURE = "/serving_planner_measure"
SIM_KEYS = {"mean_ms", "p50_ms", "p95_ms", "p99_ms", "throughput_rps", "utilization", "mean_batch", "completed"}
DEFAULTS = (100.0, 4.0, 1.0, 8, 5.0, 60.0, 0)


def test_simulate_returns_the_contract_keys_and_is_deterministic(client):
    stats, summary, _, files = client.predict(*DEFAULTS, api_name=SIM)
    assert SIM_KEYS <= set(stats)
    assert stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] and 0 < stats["utilization"] < 1
    assert stats["completed"] > 0 and 1 <= stats["mean_batch"] <= 8 and not stats["overloaded"]
    again = client.predict(*DEFAULTS, api_name=SIM)[0]
    assert {k: again[k] for k in SIM_KEYS} == {k: stats[k] for k in SIM_KEYS}
    assert "p95" in summary
    by_ext = sorted(p.rsplit(".", 1)[-1] for p in files)
    assert by_ext == ["json", "png"]
    with open(next(p for p in files if p.endswith(".json")), encoding="utf-8") as f:
        assert json.load(f) == stats


def test_simulate_with_exponential_service_reports_mm1_theory(client):
    stats = client.predict(500.0, 1.0, 0.0, 1, 0.0, 200.0, 1, "exponential", api_name=SIM)[0]
    assert stats["theory"]["queue"] == "M/M/1" and abs(stats["theory"]["relative_error"]) < 0.15


def test_overload_is_a_result_not_an_error(client):
    stats, summary, *_ = client.predict(5000.0, 4.0, 1.0, 8, 5.0, 10.0, 0, api_name=SIM)
    assert stats["overloaded"] is True and stats["rho"] > 1
    assert stats["queue_growth_rps"] > 0 and "Overloaded" in summary


@pytest.mark.parametrize("args, message", [
    ((0, 4.0, 1.0, 8, 5.0, 10.0, 0), "arrival rate .*greater than 0.*got 0"),
    ((-3, 4.0, 1.0, 8, 5.0, 10.0, 0), "arrival rate .*got -3"),
    (("nan", 4.0, 1.0, 8, 5.0, 10.0, 0), "arrival rate .*finite.*got nan"),
    ((100, 0, 1.0, 8, 5.0, 10.0, 0), "service time at batch 1 .*got 0"),
    ((100, -2, 1.0, 8, 5.0, 10.0, 0), "service time at batch 1 .*got -2"),
    ((100, "nan", 1.0, 8, 5.0, 10.0, 0), "service time at batch 1 .*got nan"),
    ((100, 4.0, 1.0, 8, 5.0, 0, 0), "simulated seconds .*got 0"),
    ((100, 4.0, 1.0, 8, 5.0, -1, 0), "simulated seconds .*got -1"),
    ((100, 4.0, 1.0, 8, 5.0, "nan", 0), "simulated seconds .*got nan"),
    ((100, 4.0, 1.0, 0, 5.0, 10.0, 0), "max_batch must be an integer from 1 to 1024, got 0"),
    ((100, 4.0, 1.0, 2000, 5.0, 10.0, 0), "max_batch must be an integer from 1 to 1024, got 2000"),
    ((100_000, 4.0, 1.0, 8, 5.0, 3600, 0), "cap of 2,000,000 requests"),
])
def test_bad_simulation_input_is_a_clear_error_and_the_server_keeps_serving(client, args, message):
    started = time.perf_counter()
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=SIM)
    assert time.perf_counter() - started < 10  # refused at once, never a hung worker
    assert client.predict(*DEFAULTS, api_name=SIM)[0]["completed"] > 0


def test_measure_returns_rows_and_the_fit(client):
    stats, table, _, files = client.predict("vit-tiny-shapes", "fp32", [1, 2, 4], 2, api_name=MEASURE)
    assert [r["batch_size"] for r in stats["rows"]] == [1, 2, 4]
    assert all({"batch_size", "median_ms", "iqr_ms"} <= set(r) and r["median_ms"] > 0 for r in stats["rows"])
    assert {"a_ms", "c_ms_per_item", "r2"} <= set(stats["fit"])
    assert [row[0] for row in table["data"]] == [1, 2, 4]
    assert sorted(p.rsplit(".", 1)[-1] for p in files) == ["csv", "json", "png"]


@pytest.mark.parametrize("args, message", [
    (("nope", "fp32", [1, 2], 2), "unknown model"),
    (("vit-tiny-shapes", "fp8", [1, 2], 2), "unknown precision"),
    (("vit-tiny-shapes", "fp32", [2], 2), "at least two different batch sizes"),
    (("vit-tiny-shapes", "fp32", [1, 128], 2), "batch size must be an integer from 1 to 64, got 128"),
    (("vit-tiny-shapes", "fp32", [1, 2], 0), "runs must be an integer from 1 to 30, got 0"),
    (("vit-b16-random", "fp32", [1, 2, 4, 8, 16, 32, 64], 30), "image passes exceeds the cap of 400"),
])
def test_bad_measure_input_is_a_clear_error(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=MEASURE)
    assert client.predict(*DEFAULTS, api_name=SIM)[0]["completed"] > 0


def test_two_clients_measure_one_after_the_other(hub_url):
    """The hub tab and the space's own mount are two apps with two queues: only the shared lock keeps their
    timings apart, so one of the two calls must have waited for the other."""
    from gradio_client import Client

    clients = [Client(hub_url, verbose=False), Client(f"{hub_url}serving_planner/", verbose=False)]
    results = call_concurrently([lambda c=c: c.predict("vit-tiny-shapes", "fp32", [8, 16], 10, api_name=MEASURE)[0]
                                 for c in clients])
    waits = sorted(r["lock_wait_s"] for r in results)
    assert waits[0] < 0.5 and waits[1] > 0.05, waits


def test_sweep_plan_and_monitor_endpoints(client):
    sweep, table, *_ = client.predict(4.0, 1.0, "1/0, 8/5", 0, api_name="/serving_planner_sweep")
    assert len(sweep["rows"]) == len(table["data"]) == 20
    plan, ptable, _ = client.predict(100.0, 100.0, 4.0, 1.0, 0.05, 3.0, api_name="/serving_planner_plan")
    assert plan["entries"][0]["feasible"] and "NOT measured here" in plan["entries"][1]["hardware"]
    assert len(ptable["data"]) == 2
    with pytest.raises(AppError, match="target p95"):
        client.predict(0, 100.0, 4.0, 1.0, 0.05, 3.0, api_name="/serving_planner_plan")
    monitor, mtable, *_ = client.predict(20, api_name="/serving_planner_monitor")
    assert set(monitor["sets"]) == {"test", "shifted", "matplotlib"} and len(mtable["data"]) == 3
