"""Fit cost of the seasonal models Referee uses (``referee.state.seasonal``), measured on NAB
series as the fitter sees them: 5-minute buckets (one week → robust STL with jumps; four weeks
→ MSTL on hourly data), including the backtest refit that checks each artifact.

Seconds are process CPU time per series per refit (what the fit budget counts); "series kept
fresh per hour on 2 cores" assumes the default hourly refit and the whole of both cores."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.quality.corpus import read_rows
from referee.state.seasonal import fit_series

FILES = [
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "realTweets/Twitter_volume_AAPL.csv",
    "realTweets/Twitter_volume_GOOG.csv",
]
STEP_S = 300


def measure(nab_dir: Path, repeats: int = 2) -> dict[str, Any]:
    costs: dict[str, list[float]] = {}
    for key in FILES:
        path = nab_dir / "data" / key
        if not path.is_file():
            continue
        _, vs = read_rows(path)
        values = np.array(vs)
        for days in (7, 28):
            n = days * 86_400 // STEP_S
            if len(values) < n:
                continue
            y = values[:n]
            for _ in range(repeats):
                t0 = time.process_time()
                res = fit_series(y, np.full(n, np.nan), STEP_S, 72)
                dt = time.process_time() - t0
                if res is not None:
                    costs.setdefault(res.model, []).append(dt)
    out: dict[str, Any] = {
        "method": __doc__.split("\n\n")[0].replace("\n", " "),
        "models": {},
    }
    for model, xs in sorted(costs.items()):
        median = statistics.median(xs)
        out["models"][model] = {
            "fits": len(xs),
            "median_s_per_refit": round(median, 3),
            "max_s_per_refit": round(max(xs), 3),
            "series_fresh_per_hour_2_cores": int(2 * 3600 / median) if median > 0 else None,
        }
    return out


def main() -> None:
    import argparse
    import json

    from bench.quality.corpus import add_data_argument, locate_or_exit

    ap = argparse.ArgumentParser(prog="python -m bench.quality.fitcost", description=__doc__.splitlines()[0])
    add_data_argument(ap)
    print(json.dumps(measure(locate_or_exit(ap.parse_args().data)), indent=2))


if __name__ == "__main__":
    main()
