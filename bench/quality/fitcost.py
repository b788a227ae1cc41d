"""Fit cost of the seasonal models Referee uses (``referee.state.seasonal``), measured on NAB
series as the fitter sees them: 5-minute buckets of one week (STL, Fourier regression) and four
weeks (MSTL on hourly data, Fourier regression with weekly harmonics), including the backtest
refit that checks each artifact, against the streaming band that the Rust store computed for
the same points.

Seconds are process CPU time per series per refit (what the fit budget counts). "Series kept
fresh per hour on 2 cores" for a model assumes an hourly refit of every series and the whole of
both cores. The ``fitter`` row runs the default ``SeasonalFitter`` itself (Fourier regression
first, STL/MSTL when it loses its backtest, refits only when the band drifted or is about to
expire) hourly on the data's clock over the files' fourth week, and divides the series-hours
it kept by the CPU time it spent. Backtest error: mean absolute error on the held-out buckets
(the last day), as a ratio to the streaming band's on the same buckets (below 1 beats it)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.quality.corpus import read_rows
from referee import _core
from referee.state.seasonal import History, SeasonalFitter, fit_series, key_of

FILES = [
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "realTweets/Twitter_volume_AAPL.csv",
    "realTweets/Twitter_volume_GOOG.csv",
]
STEP_S = 300
MODELS = ("statsmodels.ols_fourier", "auto")
ATTRS = {"service.name": "fitcost"}


def _streaming(ts: list[int], vs: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """5-minute bucket means of the values and of the streaming band's expected values, as the
    Rust store computed them point by point."""
    store = _core.SeriesStore()
    h = History(STEP_S * 1000)
    chunk = 256
    for i in range(0, len(ts), chunk):
        store.ingest_points("v", "value", ATTRS, ts[i : i + chunk], vs[i : i + chunk])
        for row in store.samples("v", "value", ATTRS):
            if row[0] > h.last_seen_ms:
                h.add(row[0], row[1], row[2])
                h.last_seen_ms = row[0]
    _, values, expected = h.arrays()
    return values, expected


def _fitter_run(
    ts: list[int], vs: list[float], start_day: int, days: int
) -> tuple[float, int, dict[str, Any]]:
    """The default fitter, stepped hourly on the data's clock from ``start_day`` for ``days``:
    (CPU seconds spent in steps, series-hours covered, its status)."""
    store = _core.SeriesStore()
    now = [0.0]
    fitter = SeasonalFitter(store, clock=lambda: now[0])
    fitter.budget = float("inf")
    key = key_of("v", "value", ATTRS)
    t0_ms = ts[0]
    begin = t0_ms + start_day * 86_400_000
    end = begin + days * 86_400_000
    cpu = 0.0
    i = 0
    hours = 0
    for step_ms in range(begin, end, 3_600_000):
        j = i
        while j < len(ts) and ts[j] <= step_ms:
            j += 1
        for k in range(i, j, 256):
            store.ingest_points("v", "value", ATTRS, ts[k : min(j, k + 256)], vs[k : min(j, k + 256)])
            fitter.poll(key)
        i = j
        fitter.histories[key].wanted = True
        now[0] = step_ms / 1000
        c0 = time.process_time()
        fitter.step()
        cpu += time.process_time() - c0
        hours += 1
    return cpu, hours, fitter.status()


def measure(nab_dir: Path, repeats: int = 2) -> dict[str, Any]:
    costs: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    maes: dict[str, list[tuple[float, float]]] = {}
    fitter_cpu = 0.0
    fitter_hours = 0
    fitter_status: list[dict[str, Any]] = []
    for key in FILES:
        path = nab_dir / "data" / key
        if not path.is_file():
            continue
        ts, vs = read_rows(path)
        values, expected = _streaming(ts, vs)
        for days in (7, 28):
            n = days * 86_400 // STEP_S
            if len(values) < n:
                continue
            y, e = values[:n], expected[:n]
            for model in MODELS:
                res = None
                for _ in range(repeats):
                    t0 = time.process_time()
                    res = fit_series(y, e, STEP_S, 72, model=model)
                    dt = time.process_time() - t0
                    if res is None:
                        break
                    name = res.model + (" (weekly)" if model != "auto" and days >= 21 else "")
                    costs.setdefault(name, []).append(dt)
                if res is None:
                    continue
                ratios.setdefault(name, []).append(res.backtest_mae / max(res.streaming_mae, 1e-12))
                maes.setdefault(name, []).append((res.backtest_mae, res.streaming_mae))
        if len(ts) and (ts[-1] - ts[0]) >= 28 * 86_400_000:
            cpu, hours, status = _fitter_run(ts, vs, 21, 7)
            fitter_cpu += cpu
            fitter_hours += hours
            fitter_status.append(status)
    out: dict[str, Any] = {
        "method": " ".join((__doc__ or "").split()),
        "files": FILES,
        "models": {},
    }
    for model, xs in sorted(costs.items()):
        median = statistics.median(xs)
        r = ratios[model]
        out["models"][model] = {
            "fits": len(xs),
            "median_s_per_refit": round(median, 4),
            "max_s_per_refit": round(max(xs), 4),
            "series_fresh_per_hour_2_cores": int(2 * 3600 / median) if median > 0 else None,
            "backtest_mae_ratio_median": round(statistics.median(r), 3),
            "beats_streaming_band": f"{sum(x <= 1 for x in r)}/{len(r)}",
            "backtest_mae": [round(a, 4) for a, _ in maes[model]],
            "streaming_mae": [round(b, 4) for _, b in maes[model]],
        }
    if fitter_hours:
        adopted: dict[str, int] = {}
        refused: dict[str, int] = {}
        skipped: dict[str, int] = {}
        for st in fitter_status:
            for acc, part in ((adopted, "adopted"), (refused, "refused"), (skipped, "skipped")):
                for k, v in st[part].items():
                    acc[k] = acc.get(k, 0) + v
        per_series_hour = fitter_cpu / fitter_hours
        out["fitter"] = {
            "series_hours": fitter_hours,
            "cpu_s": round(fitter_cpu, 2),
            "cpu_s_per_series_hour": round(per_series_hour, 4),
            "series_fresh_per_hour_2_cores": int(2 * 3600 / per_series_hour) if per_series_hour > 0 else None,
            "adopted": adopted,
            "refused": refused,
            "skipped": skipped,
        }
    return out


def table(report: dict[str, Any]) -> str:
    """The fit cost table as Markdown."""
    lines = [
        "| model | s/refit (median) | series/hour/2 cores | backtest MAE / streaming MAE (median) "
        "| beats streaming |",
        "|---|---:|---:|---:|---:|",
    ]
    for model, m in report["models"].items():
        lines.append(
            f"| {model} | {m['median_s_per_refit']} | {m['series_fresh_per_hour_2_cores']} | "
            f"{m['backtest_mae_ratio_median']} | {m['beats_streaming_band']} |"
        )
    f = report.get("fitter")
    if f:
        lines.append(
            f"| fitter (default chain, drift-triggered refits) | "
            f"{f['cpu_s_per_series_hour']} per series-hour | "
            f"{f['series_fresh_per_hour_2_cores']} | | |"
        )
    return "\n".join(lines)


def main() -> None:
    import argparse
    import json

    from bench.quality.corpus import add_data_argument, locate_or_exit

    ap = argparse.ArgumentParser(
        prog="python -m bench.quality.fitcost", description=(__doc__ or "").splitlines()[0]
    )
    add_data_argument(ap)
    report = measure(locate_or_exit(ap.parse_args().data))
    print(json.dumps(report, indent=2))
    print(table(report))


if __name__ == "__main__":
    main()
