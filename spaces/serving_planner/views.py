"""What the page shows of each result: tables (lists of rows) and matplotlib figures built without pyplot.
No UI library and no torch; matplotlib is imported inside the functions (the hub builds this page at start-up)."""

from __future__ import annotations

from typing import Any

MEASURE_COLUMNS = ["batch size", "median ms", "IQR ms", "fit ms", "residual ms", "ms per image", "images/s"]
SWEEP_COLUMNS = ["max_batch", "max_wait ms", "capacity req/s", "λ req/s", "ρ", "p50 ms", "p95 ms", "p99 ms",
                 "throughput req/s", "utilisation", "mean batch", "overloaded"]
PLAN_COLUMNS = ["hardware", "measured here", "s(1) ms", "per item ms", "replicas", "max_batch", "max_wait ms",
                "p95 ms", "utilisation", "$ per hour each", "$ per million images", "note"]
PLAN_WIDTHS = ["20%", "7%", "6%", "6%", "7%", "7%", "7%", "6%", "7%", "7%", "8%", "12%"]
MONITOR_COLUMNS = ["set", "images", "accuracy", "mean confidence", "share < 0.9", "KS vs test", "mean RGB"]


def _r(x: Any, digits: int = 2) -> Any:
    return "–" if x is None else round(x, digits) if isinstance(x, float) else x


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (9, 3.6)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False).ravel()


# ----- measure ---------------------------------------------------------------------------------------------

def measure_table(result: dict) -> list[list]:
    return [[r["batch_size"], _r(r["median_ms"], 3), _r(r["iqr_ms"], 3), _r(r["fit_ms"], 3), _r(r["residual_ms"], 3),
             _r(r["per_image_ms"], 3), _r(r["images_per_s"], 1)] for r in result["rows"]]


def measure_figure(result: dict):
    """Median latency per batch size (bars span the IQR) with the fitted line, and the residuals."""
    rows, fit = result["rows"], result["fit"]
    b = [r["batch_size"] for r in rows]
    fig, (ax, res) = _figure(1, 2)
    err = [[r["median_ms"] - r["q1_ms"] for r in rows], [r["q3_ms"] - r["median_ms"] for r in rows]]
    ax.errorbar(b, [r["median_ms"] for r in rows], yerr=err, fmt="o", capsize=4, label="median (IQR)")
    ax.plot(b, [fit["a_ms"] + fit["c_ms_per_item"] * x for x in b], "-",
            label=f"s(b) = {fit['a_ms']:.2f} + {fit['c_ms_per_item']:.3f}·b  (r² = {fit['r2']:.4f})")
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms per batch")
    load = result.get("load_average_1min")
    ax.set_title(f"{result['model']} {result['precision']}, {result['threads']} thread, {result['runs']} runs"
                 + (f"; load avg {load:.1f}" if load is not None else ""), fontsize=10)
    ax.legend(fontsize=8)
    res.axhline(0, color="gray", lw=1)
    res.bar([str(x) for x in b], fit["residuals_ms"], color="#6366f1")
    res.set_xlabel("batch size")
    res.set_ylabel("median - fit (ms)")
    res.set_title("residuals of the least-squares fit")
    return fig


# ----- simulate -----------------------------------------------------------------------------------------------

def simulation_figure(stats: dict, queue: dict, sojourn_ms) -> Any:
    """Queue length over time for this run, and the sojourn histogram with p50/p95/p99."""
    fig, (ax, hist) = _figure(1, 2)
    ax.plot(queue["t_s"], queue["waiting"], lw=1)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("requests waiting")
    state = "OVERLOADED: " if stats["overloaded"] else ""
    ax.set_title(f"{state}ρ = {stats['rho']:.2f}, utilisation {stats['utilization']:.2f}")
    if len(sojourn_ms):
        hist.hist(sojourn_ms, bins=60, color="#94a3b8")
        for key, colour in (("p50_ms", "#16a34a"), ("p95_ms", "#ea580c"), ("p99_ms", "#dc2626")):
            hist.axvline(stats[key], color=colour, label=f"{key[:3]} {stats[key]:.1f} ms")
        hist.legend(fontsize=8)
    hist.set_xlabel("latency: arrival to completion (ms)")
    hist.set_ylabel("requests")
    hist.set_title(f"{stats['completed']:,} requests completed, mean batch {stats['mean_batch']:.2f}")
    return fig


def simulation_summary(stats: dict) -> str:
    lines = [f"**p50 {stats['p50_ms']:.1f} ms · p95 {stats['p95_ms']:.1f} ms · p99 {stats['p99_ms']:.1f} ms**; "
             f"throughput {stats['throughput_rps']:.1f} req/s; utilisation {stats['utilization']:.3f}; "
             f"mean batch {stats['mean_batch']:.2f}; load ρ = λ/capacity = {stats['rho']:.3f} "
             f"(capacity {stats['capacity_rps']:.1f} req/s)." if stats["p50_ms"] is not None else "No request completed."]
    if stats["overloaded"]:
        lines.append(f"⚠️ **Overloaded**: the queue grows by {stats['queue_growth_rps']:.1f} requests/s "
                     f"(λ − capacity = {stats['queue_growth_theory_rps']:.1f}/s); percentiles only grow with run length.")
    if "theory" in stats:
        t = stats["theory"]
        lines.append(f"max_batch = 1 is the {t['queue']} queue: theory mean wait {t['mean_wait_ms']:.3f} ms, simulated "
                     f"{t['simulated_mean_wait_ms']:.3f} ms (relative error {t['relative_error']:+.2%}).")
    return "\n\n".join(lines)


# ----- sweep ----------------------------------------------------------------------------------------------------

def sweep_table(result: dict) -> list[list]:
    return [[r["max_batch"], r["max_wait_ms"], _r(r["capacity_rps"], 1), _r(r["arrival_rate_rps"], 1), _r(r["rho"], 2),
             _r(r["p50_ms"]), _r(r["p95_ms"]), _r(r["p99_ms"]), _r(r["throughput_rps"], 1), _r(r["utilization"], 3),
             _r(r["mean_batch"]), "yes" if r["overloaded"] else "no"] for r in result["rows"]]


def sweep_figure(result: dict):
    """p50/p95/p99 against λ per setting (log scale); throughput and utilisation against λ; dash-dot lines
    mark saturation."""
    fig, (lat, thr) = _figure(1, 2, (10, 4))
    util = thr.twinx()
    groups: dict[tuple, list] = {}
    for r in result["rows"]:
        groups.setdefault((r["max_batch"], r["max_wait_ms"]), []).append(r)
    colours = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2"]
    for (b, w), rows in groups.items():
        colour = colours.pop(0)
        lam = [r["arrival_rate_rps"] for r in rows]
        for key, style in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
            lat.plot(lam, [r[key] for r in rows], style, color=colour,
                     label=f"{b}/{w:g} {key[:3]}" if key == "p95_ms" else None)
        thr.plot(lam, [r["throughput_rps"] for r in rows], "o-", color=colour, ms=3, label=f"max_batch {b}, wait {w:g} ms")
        util.plot(lam, [r["utilization"] for r in rows], ":", color=colour, lw=1)
        for ax in (lat, thr):
            ax.axvline(rows[0]["capacity_rps"], color=colour, ls="-.", lw=0.8)
    lat.set_yscale("log")
    lat.set_xlabel("arrival rate λ (req/s)")
    lat.set_ylabel("latency (ms): p50 dotted, p95 solid, p99 dashed")
    lat.set_title("latency against load (dash-dot: saturation λ*)")
    lat.legend(fontsize=7)
    thr.set_xlabel("arrival rate λ (req/s)")
    thr.set_ylabel("throughput (req/s)")
    thr.set_title("throughput (solid) flattens at saturation")
    util.set_ylabel("utilisation (dotted)")
    util.set_ylim(0, 1.05)
    thr.legend(fontsize=7)
    return fig


# ----- plan -----------------------------------------------------------------------------------------------------

def plan_table(result: dict) -> list[list]:
    rows = []
    for e in result["entries"]:
        ok = e["feasible"]
        rows.append([e["hardware"], "yes" if e["measured_here"] else "NO (cited)", _r(e["service_ms_at_batch1"], 3),
                     _r(e["per_item_ms"], 3), e["replicas"] if ok else "–", e["max_batch"] if ok else "–",
                     e["max_wait_ms"] if ok else "–", _r(e["p95_ms"]) if ok else "–",
                     _r(e["utilization"], 3) if ok else "–", e["price_per_hour"],
                     _r(e["cost_per_million_usd"], 3) if ok else "–",
                     e.get("source", "") if ok else e["reason"]])
    return rows


# ----- monitor --------------------------------------------------------------------------------------------------

def monitor_table(result: dict) -> list[list]:
    return [[name, s["n"], _r(s["accuracy"], 4), _r(s["mean_confidence"], 4), _r(s["low_confidence_share"], 4),
             _r(s["ks_vs_test"], 4), ", ".join(f"{v:.0f}" for v in s["mean_rgb"])] for name, s in result["sets"].items()]


def monitor_figure(result: dict):
    """Histogram of the max-softmax confidence per set, and accuracy per set."""
    fig, (hist, acc) = _figure(1, 2)
    names = list(result["sets"])
    for name in names:
        hist.hist(result["sets"][name]["confidences"], bins=25, range=(0, 1), histtype="step", lw=1.5,
                  density=True, label=name)
    hist.set_xlabel("max softmax confidence")
    hist.set_ylabel("density")
    hist.set_yscale("log")
    hist.set_title(f"{result['model']}: confidence by input set")
    hist.legend(fontsize=8)
    acc.bar(names, [result["sets"][n]["accuracy"] for n in names], color="#6366f1")
    acc.set_ylim(0, 1)
    acc.set_ylabel("accuracy")
    acc.set_title("accuracy by input set")
    return fig
