"""The OTLP metrics workload every ingest benchmark sends.

Each request carries 8,192 points: a third gauge (``system.memory.usage``), a third delta
monotonic sum (``http.server.requests``) and a third explicit-bucket histogram
(``http.server.request.duration``, 15 buckets), each point with 5 attributes under a resource
with 2. Every point of a request is its own series and request ``r`` is the same series one
minute later, so the first request creates every series and the following ones only update
them (steady state). Payloads are gzip protobuf, built before any timing starts.
"""

from __future__ import annotations

import gzip
import random

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

POINTS_PER_REQUEST = 8192
ATTRIBUTES_PER_POINT = 5
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
T0_NS = 1_700_000_000_000_000_000
MINUTE_NS = 60_000_000_000


def _template(series_per_kind: int) -> pb.ExportMetricsServiceRequest:
    per_kind = POINTS_PER_REQUEST // 3
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
            if i == 2:
                p.explicit_bounds.extend(BOUNDS)
                p.bucket_counts.extend([0] * (len(BOUNDS) + 1))
    return req


def build_payloads(n_requests: int, host: str = "h1", seed: int = 1, cumulative: bool = False) -> list[bytes]:
    """``n_requests`` gzip ExportMetricsServiceRequests in consecutive minutes, with fresh
    random values in each. A different ``host`` (a resource attribute) makes different series:
    concurrent senders each get their own, so no sender's points arrive out of order.

    ``cumulative``: the sum and the histogram are sent as most SDKs send them by default, with
    cumulative temporality: every stream starts a minute before the first request and each
    point carries its running totals (the counter and every bucket only grow)."""
    rng = random.Random(seed)
    req = _template(series_per_kind=512)
    req.resource_metrics[0].resource.attributes[1].value.string_value = host
    metrics = req.resource_metrics[0].scope_metrics[0].metrics
    gauge, total, hist = metrics[0].gauge, metrics[1].sum, metrics[2].histogram
    if cumulative:
        total.aggregation_temporality = hist.aggregation_temporality = 2
    # Bucket counts drawn from a pool: drawing 16 counts per point would dominate build time.
    pool = []
    for _ in range(256):
        counts = [rng.randrange(0, 20) for _ in range(len(BOUNDS) + 1)]
        pool.append((counts, sum(counts)))
    running_totals = [0.0] * len(total.data_points)
    running_counts = [[0] * (len(BOUNDS) + 1) for _ in hist.data_points]
    running_sums = [0.0] * len(hist.data_points)
    out = []
    for r in range(n_requests):
        t = T0_NS + r * MINUTE_NS
        start = T0_NS - MINUTE_NS if cumulative else t - MINUTE_NS
        for p in gauge.data_points:
            p.start_time_unix_nano, p.time_unix_nano = t - MINUTE_NS, t
            p.as_double = rng.random() * 100
        for i, p in enumerate(total.data_points):
            p.start_time_unix_nano, p.time_unix_nano = start, t
            if cumulative:
                running_totals[i] += rng.random() * 100
                p.as_double = running_totals[i]
            else:
                p.as_double = rng.random() * 100
        for i, h in enumerate(hist.data_points):
            h.start_time_unix_nano, h.time_unix_nano = start, t
            counts, count = pool[rng.randrange(len(pool))]
            if cumulative:
                counts = running_counts[i] = [a + b for a, b in zip(running_counts[i], counts, strict=True)]
                count = sum(counts)
                running_sums[i] += rng.random() * 10
                h.sum = running_sums[i]
            else:
                h.sum = rng.random() * 10
            h.bucket_counts[:] = counts
            h.count = count
        out.append(gzip.compress(req.SerializeToString(), compresslevel=6))
    return out
