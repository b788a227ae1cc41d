"""State memory per live series at 100,000 series, each case in a fresh process:

    python -m bench.memory --series 100000 --points 64 --ring 1

RSS growth while the series are created and fed, divided by the number of series. The ring of
raw points is ``ring_capacity`` samples per series: with ``--ring 1`` it holds one sample, so
the figure is the state (keys, index, baseline windows, sketch, hour-of-week slots) plus one
sample; the difference against ``--ring 64`` measures what raw points cost.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from referee import _core

T0_MS = 1_700_000_000_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def measure(n_series: int, points: int, ring: int) -> dict[str, Any]:
    store = _core.SeriesStore(max_series=n_series + 1, ring_capacity=ring)
    ts = [T0_MS + i * 60_000 for i in range(points)]
    values = [[100.0 + ((i * 7919 + j * 104729) % 1000) / 100 for j in range(points)] for i in range(16)]
    before = rss_bytes()
    for i in range(n_series):
        accepted = store.ingest_points(
            "m", "value", {"service.name": f"s{i % 100}", "id": str(i)}, ts, values[i % 16]
        )
        assert accepted == points
    after = rss_bytes()
    assert len(store) == n_series
    return {
        "series": n_series,
        "points": points,
        "ring": ring,
        "bytes_per_series": round((after - before) / n_series),
    }


def run_case(n_series: int, points: int, ring: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.memory",
            "--series",
            str(n_series),
            "--points",
            str(points),
            "--ring",
            str(ring),
        ],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def bench_memory(n_series: int = 100_000) -> dict[str, Any]:
    one = run_case(n_series, 1, 1)
    steady = run_case(n_series, 64, 1)
    with_ring = run_case(n_series, 64, 64)
    sample = (with_ring["bytes_per_series"] - steady["bytes_per_series"]) / 63
    return {
        "series": n_series,
        "one_point_bytes_per_series": one["bytes_per_series"],
        "steady_bytes_per_series_excluding_raw_points": steady["bytes_per_series"],
        "steady_bytes_per_series_with_64_raw_points": with_ring["bytes_per_series"],
        "measured_bytes_per_raw_sample": round(sample, 1),
        "target_bytes_per_series": 1024,
        "note": (
            "RSS growth per series, each case in a fresh process. 'excluding raw points': 64 "
            "one-minute points per series (windows, sketch and hour-of-week slots populated) with "
            "ring_capacity=1, so one raw sample remains in the figure; 'with 64 raw points': "
            "ring_capacity=64; the per-sample cost is their difference / 63"
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--points", type=int, default=1)
    ap.add_argument("--ring", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(measure(args.series, args.points, args.ring)))


if __name__ == "__main__":
    main()
