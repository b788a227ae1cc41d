"""The decision benchmark's workload (``bench.speed.decision``): a 50-rule pack (10 services x
5 claim kinds: each rule matches its claim kind and service, reads that service's signal over a
window and compares it with the baseline band), two hours of one-minute history for every
signal as one OTLP export, and distinct suggestions."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

SERVICES = [f"svc{i}" for i in range(10)]
#: claim kind -> (metric, window, when)
KINDS = {
    "latency_high": ("bench.latency.p99", "10m", "signal.observed > baseline.upper"),
    "error_rate_high": (
        "bench.error_ratio",
        "5m",
        "signal.observed > baseline.upper && signal.observed > 0.01",
    ),
    "saturation_high": ("bench.cpu.utilization", "10m", "signal.max > 0.8 || baseline.score > 0.9"),
    "traffic_drop": ("bench.request.rate", "5m", "signal.observed < baseline.lower"),
    "traffic_spike": ("bench.request.rate", "5m", "signal.observed > baseline.upper && baseline.ratio > 1.5"),
}
LEVELS = {
    "bench.latency.p99": 0.3,
    "bench.error_ratio": 0.005,
    "bench.cpu.utilization": 0.5,
    "bench.request.rate": 100,
}


def pack_yaml() -> str:
    lines = [
        "referee: 1",
        "pack: bench",
        "description: 50 generated rules for the latency benchmark.",
        "rules:",
    ]
    for svc in SERVICES:
        for kind, (metric, window, when) in KINDS.items():
            lines += [
                f"  - id: bench.{svc}.{kind.replace('_', '-')}",
                f"    title: {kind} on {svc}",
                "    severity: warning",
                f'    match: >-\n      suggestion.claim.kind == "{kind}" &&\n'
                f'      suggestion.subject["service.name"] == "{svc}"',
                f"    signal: {{metric: {metric}, window: {window}}}",
                f"    when: {when}",
                "    then: {verdict: confirm, reason: outside the band}",
                "    otherwise: {verdict: suppress, reason: inside the band}",
            ]
    return "\n".join(lines) + "\n"


def history(now_ms: int, minutes: int = 120) -> bytes:
    """Two hours of one-minute gauge points for every (service, metric), in one export."""
    rng = random.Random(3)
    req = pb.ExportMetricsServiceRequest()
    for svc in SERVICES:
        rm = req.resource_metrics.add()
        a = rm.resource.attributes.add()
        a.key, a.value.string_value = "service.name", svc
        sm = rm.scope_metrics.add()
        for metric, level in LEVELS.items():
            m = sm.metrics.add()
            m.name = metric
            for i in range(minutes):
                p = m.gauge.data_points.add()
                p.time_unix_nano = (now_ms - (minutes - 1 - i) * 60_000) * 1_000_000
                p.as_double = level * (1 + rng.uniform(-0.1, 0.1))
    return req.SerializeToString()


def suggestions(now_ms: int, n: int, prefix: str) -> list[dict[str, Any]]:
    created = datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat()
    kinds = list(KINDS)
    return [
        {
            "id": f"{prefix}-{i}",
            "source": "bench",
            "subject": {"service.name": SERVICES[i % len(SERVICES)]},
            "claim": {"kind": kinds[(i // len(SERVICES)) % len(kinds)]},
            "created_at": created,
        }
        for i in range(n)
    ]
