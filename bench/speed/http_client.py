"""The load generator of the HTTP ingest benchmark, run as its own process:

    python -m bench.speed.http_client URL DIR --workers 4 --duration 3

``DIR`` holds prebuilt gzip protobuf payloads named ``w<worker>-<seq>.pb.gz``. Each worker
(a thread with its own keep-alive connection) sends its files in order. The first
``--warmup`` files of every worker are sent before the clock starts: they create the series.
Then every worker sends until its files run out or ``--duration`` has passed. A response
that is not 200, or a 200 with ``partial_success`` rejections, fails the run: only points
the server accepted are counted. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}


def check(r: httpx.Response, points: int) -> int:
    """Points accepted by one response; raises on anything else."""
    if r.status_code != 200:
        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
    resp = pb.ExportMetricsServiceResponse.FromString(r.content)
    rejected = resp.partial_success.rejected_data_points
    if rejected:
        raise RuntimeError(f"{rejected} points rejected: {resp.partial_success.error_message}")
    return points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("dir", type=Path)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--points-per-request", type=int, default=8192)
    args = ap.parse_args()
    bodies = [[p.read_bytes() for p in sorted(args.dir.glob(f"w{w}-*.pb.gz"))] for w in range(args.workers)]
    n = args.points_per_request
    start = threading.Barrier(args.workers + 1)
    deadline = [0.0]

    def worker(w: int) -> tuple[int, int, float]:
        with httpx.Client(timeout=60) as client:
            for body in bodies[w][: args.warmup]:
                check(client.post(args.url, content=body, headers=HEADERS), n)
            start.wait()
            points = requests = 0
            for body in bodies[w][args.warmup :]:
                if time.perf_counter() > deadline[0]:
                    break
                points += check(client.post(args.url, content=body, headers=HEADERS), n)
                requests += 1
            return points, requests, time.perf_counter()

    with ThreadPoolExecutor(args.workers) as pool:
        futures = [pool.submit(worker, w) for w in range(args.workers)]
        # The deadline is set before the workers are released: they read it after the barrier.
        t0 = time.perf_counter()
        deadline[0] = t0 + args.duration
        start.wait()
        results = [f.result() for f in futures]
    elapsed = max(r[2] for r in results) - t0
    points = sum(r[0] for r in results)
    json.dump(
        {
            "points": points,
            "requests": sum(r[1] for r in results),
            "seconds": round(elapsed, 3),
            "points_per_s": round(points / elapsed),
            "workers": args.workers,
            "ran_out_of_payloads": all(
                r[1] == len(b) - args.warmup for r, b in zip(results, bodies, strict=True)
            ),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
