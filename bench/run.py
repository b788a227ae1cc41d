"""Referee's benchmarks, each beside a reference measured in the same run.

    python -m bench.run --out bench/results.json

* ``ingest``: decode + series update of prebuilt gzip OTLP payloads (gauge, sum, histogram;
  5 attributes per point; 8,192 points per request) in process: the Rust path
  (``SeriesStore.ingest_otlp_metrics``) against a pure-Python implementation on
  ``opentelemetry-proto`` doing less work (no roll-ups, no quantiles, no median window), so
  the ratio is conservative;
* ``memory``: resident memory per live series at 100,000 series (one point each);
* ``decision``: suggestion-to-verdict latency over HTTP on loopback with the default rules,
  against the in-process decision alone.

Absolute numbers on shared machines are noisy: quote the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

from referee import _core

POINTS_PER_REQUEST = 8192
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def build_payloads(n_requests: int, series_per_kind: int = 512, seed: int = 1) -> list[bytes]:
    """``n_requests`` gzip ExportMetricsServiceRequests of 8,192 points each, consecutive minutes."""
    rng = random.Random(seed)
    per_kind = POINTS_PER_REQUEST // 3
    t0 = 1_700_000_000_000_000_000
    out = []
    for r in range(n_requests):
        t = t0 + r * 60_000_000_000
        req = pb.ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        for k, v in (("service.name", "bench"), ("host.name", "h1")):
            a = rm.resource.attributes.add()
            a.key, a.value.string_value = k, v
        sm = rm.scope_metrics.add()
        gauge = sm.metrics.add()
        gauge.name = "system.memory.usage"
        total = sm.metrics.add()
        total.name = "http.server.requests"
        total.sum.is_monotonic = True
        total.sum.aggregation_temporality = 1  # delta
        hist = sm.metrics.add()
        hist.name = "http.server.request.duration"
        hist.histogram.aggregation_temporality = 1
        kinds = [gauge.gauge.data_points, total.sum.data_points, hist.histogram.data_points]
        remaining = POINTS_PER_REQUEST
        for i, points in enumerate(kinds):
            n = per_kind if i < 2 else remaining
            remaining -= n
            for j in range(n):
                p = points.add()
                p.start_time_unix_nano, p.time_unix_nano = t - 60_000_000_000, t
                s = j % series_per_kind
                for key, val in (
                    ("a", s % 8),
                    ("b", s // 8 % 8),
                    ("c", s // 64),
                    ("route", f"/r{s % 5}"),
                    ("k", j // series_per_kind),
                ):
                    a = p.attributes.add()
                    a.key, a.value.string_value = key, str(val)
                if i < 2:
                    p.as_double = rng.random() * 100
                else:
                    counts = [rng.randrange(0, 20) for _ in range(len(BOUNDS) + 1)]
                    p.count, p.sum = sum(counts), rng.random() * 10
                    p.bucket_counts.extend(counts)
                    p.explicit_bounds.extend(BOUNDS)
        out.append(gzip.compress(req.SerializeToString()))
    return out


class PySeries:
    __slots__ = ("mean", "n", "ring", "var")

    def __init__(self) -> None:
        self.n, self.mean, self.var = 0, 0.0, 0.0
        self.ring: deque[tuple[int, float]] = deque(maxlen=512)

    def push(self, t: int, x: float) -> None:
        self.n += 1
        if self.n == 1:
            self.mean = x
        else:
            d = x - self.mean
            self.mean += 0.02 * d
            self.var = 0.98 * (self.var + 0.02 * d * d)
        self.ring.append((t, x))


def python_ingest(store: dict[tuple[Any, ...], PySeries], body: bytes) -> int:
    """The reference: decode with opentelemetry-proto, key each point, update EWMA and a ring."""
    req = pb.ExportMetricsServiceRequest.FromString(gzip.decompress(body))
    n = 0
    for rm in req.resource_metrics:
        res = tuple((a.key, a.value.string_value) for a in rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                points = getattr(m, kind).data_points
                for p in points:
                    attrs = tuple(sorted(res + tuple((a.key, a.value.string_value) for a in p.attributes)))
                    t = p.time_unix_nano // 1_000_000
                    if kind == "histogram":
                        values = [("count", float(p.count)), ("mean", p.sum / p.count if p.count else 0.0)]
                    else:
                        values = [("value", p.as_double)]
                    for stat, v in values:
                        key = (m.name, stat, attrs)
                        s = store.get(key)
                        if s is None:
                            s = store[key] = PySeries()
                        s.push(t, v)
                    n += 1
    return n


def bench_ingest(rounds: int = 3) -> dict[str, Any]:
    payloads = build_payloads(24)
    best_rust, best_py = math.inf, math.inf
    for _ in range(rounds):
        store = _core.SeriesStore()
        t = time.perf_counter()
        for body in payloads:
            accepted, rejected, _ = store.ingest_otlp_metrics(body, gzip=True)
            assert rejected == 0 and accepted == POINTS_PER_REQUEST
        best_rust = min(best_rust, time.perf_counter() - t)
        pystore: dict[tuple[Any, ...], PySeries] = {}
        t = time.perf_counter()
        for body in payloads:
            assert python_ingest(pystore, body) == POINTS_PER_REQUEST
        best_py = min(best_py, time.perf_counter() - t)
    points = len(payloads) * POINTS_PER_REQUEST
    return {
        "points": points,
        "rust_points_per_s": round(points / best_rust),
        "python_reference_points_per_s": round(points / best_py),
        "ratio": round(best_py / best_rust, 2),
        "target_points_per_s": 1_000_000,
        "target_ratio": 10,
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def bench_memory(n_series: int = 100_000) -> dict[str, Any]:
    store = _core.SeriesStore(max_series=n_series + 1, ring_capacity=1)
    before = rss_bytes()
    for i in range(n_series):
        store.ingest_points("m", "value", {"service.name": f"s{i % 100}", "id": str(i)}, [1], [1.0])
    after = rss_bytes()
    assert len(store) == n_series
    per = (after - before) / n_series
    return {
        "series": n_series,
        "bytes_per_series": round(per),
        "target_bytes_per_series": 1024,
        "note": "RSS growth with one point per series (ring capacity 1): state, keys and index",
    }


def bench_decision(n: int = 300) -> dict[str, Any]:
    import httpx

    from referee.config import Settings
    from referee.demo.run import BackgroundServer, free_port
    from referee.models import Suggestion
    from referee.service.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(env={}, database=Path(tmp) / "b.db", port=free_port())
        rt = Runtime(settings, load_plugins=False)
        now_ms = int(time.time() * 1000)
        ts = [now_ms - (600 - i) * 60_000 for i in range(600)]
        rng = random.Random(2)
        rt.store.ingest_points(
            "http.server.request.duration",
            "p99",
            {"service.name": "web"},
            ts,
            [0.3 + rng.gauss(0, 0.02) for _ in ts],
        )
        doc = {
            "source": "bench",
            "subject": {"service.name": "web"},
            "claim": {"kind": "latency_high"},
            "created_at": datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat(),
        }
        inproc = []
        for i in range(n):
            s = Suggestion.model_validate({**doc, "id": f"in-{i}"})
            t = time.perf_counter()
            rt.decider.decide(s)
            inproc.append(time.perf_counter() - t)
        over_http = []
        try:
            with BackgroundServer(rt, settings.port) as srv, httpx.Client() as client:
                for i in range(n):
                    t = time.perf_counter()
                    r = client.post(f"{srv.url}/api/v1/suggestions", json={**doc, "id": f"http-{i}"})
                    over_http.append(time.perf_counter() - t)
                    assert r.status_code == 201
        finally:
            rt.close()

    def pct(xs: list[float], q: float) -> float:
        return round(statistics.quantiles(xs, n=100)[q - 1] * 1000, 3)

    return {
        "rules": len(rt.rules.rules),
        "suggestions": n,
        "http_p50_ms": pct(over_http, 50),
        "http_p99_ms": pct(over_http, 99),
        "in_process_p50_ms": pct(inproc, 50),
        "in_process_p99_ms": pct(inproc, 99),
        "note": "HTTP includes storing the verdict in SQLite; in-process is the decision alone",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/results.json"))
    args = ap.parse_args()
    results: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for name, fn in (("ingest", bench_ingest), ("memory", bench_memory), ("decision", bench_decision)):
        print(f"running {name}...", flush=True)
        results[name] = fn()
        print(json.dumps(results[name], indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
