"""Synthetic HTTP server telemetry for the demo, as OpenTelemetry SDK metric data.

Each service emits ``http.server.request.duration`` (delta histograms with the semantic
conventions' default buckets) for status 200 and 500, with a daily cycle in traffic and
latency and optional incidents. Points carry explicit timestamps so that days of history can
be sent in seconds through the real SDK exporter.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

#: Default bucket boundaries of http.server.request.duration (semantic conventions), seconds.
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SIGMA = 0.5  # log-space spread of request durations: p99 is about 3.2x the median
NS = 1_000_000_000
SCOPE = InstrumentationScope("referee.demo", "1")


@dataclass
class Incident:
    start_s: int
    end_s: int
    latency_factor: float = 1.0
    error_ratio: float | None = None


@dataclass
class ServiceProfile:
    name: str
    rps: float
    median_latency_s: float
    error_ratio: float = 0.002
    #: Daily swing: at the peak, traffic x (1 + amp) and latency x (1 + latency_amp).
    traffic_amp: float = 0.0
    latency_amp: float = 0.0
    peak_s_of_day: float = 19 * 3600
    peak_width_h: float = 2.5
    first_s: int | None = None  # no data before (a newly deployed service)
    incidents: list[Incident] = field(default_factory=list)

    def daily(self, t_s: int) -> float:
        """0..1 bump around the daily peak."""
        d = ((t_s - self.peak_s_of_day) % 86400) / 3600.0
        d = min(d, 24 - d)
        return math.exp(-((d / self.peak_width_h) ** 2))

    def at(self, t_s: int) -> tuple[float, float, float]:
        """(requests per second, median latency, error ratio) at ``t_s``."""
        bump = self.daily(t_s)
        rps = self.rps * (1 + self.traffic_amp * bump)
        median = self.median_latency_s * (1 + self.latency_amp * bump)
        errors = self.error_ratio
        for inc in self.incidents:
            if inc.start_s <= t_s < inc.end_s:
                median *= inc.latency_factor
                if inc.error_ratio is not None:
                    errors = inc.error_ratio
        return rps, median, errors


def _lognormal_cdf(x: float, median: float) -> float:
    return 0.5 * (1 + math.erf(math.log(x / median) / (SIGMA * math.sqrt(2))))


def _buckets(n: int, median: float, rng: random.Random) -> list[int]:
    """Counts per bucket for ``n`` requests: expected share plus sampling noise, summing to n."""
    cdf = [_lognormal_cdf(b, median) for b in BOUNDS] + [1.0]
    shares = [cdf[0]] + [cdf[i] - cdf[i - 1] for i in range(1, len(cdf))]
    counts = [max(0, round(n * s + rng.gauss(0, math.sqrt(max(n * s, 1e-9))))) for s in shares]
    diff = n - sum(counts)
    counts[max(range(len(counts)), key=lambda i: counts[i])] += diff
    return [max(0, c) for c in counts]


def _point(
    status: int, t_s: int, step_s: int, n: int, median: float, rng: random.Random
) -> HistogramDataPoint:
    counts = _buckets(n, median, rng)
    n = sum(counts)
    mean = median * math.exp(SIGMA**2 / 2)
    return HistogramDataPoint(
        attributes={"http.request.method": "GET", "http.route": "/", "http.response.status_code": status},
        start_time_unix_nano=(t_s - step_s) * NS,
        time_unix_nano=t_s * NS,
        count=n,
        sum=n * mean,
        bucket_counts=counts,
        explicit_bounds=BOUNDS,
        min=median / 4,
        max=median * 6,
    )


def batches(
    services: list[ServiceProfile], start_s: int, end_s: int, step_s: int, per_batch: int, seed: int
) -> Iterator[tuple[MetricsData, int]]:
    """Yields (MetricsData, points) covering (start_s, end_s] at ``step_s``, ``per_batch`` steps each."""
    rng = random.Random(seed)
    times = list(range(start_s + step_s, end_s + 1, step_s))
    for i in range(0, len(times), per_batch):
        chunk = times[i : i + per_batch]
        resource_metrics = []
        n_points = 0
        for svc in services:
            points = []
            for t in chunk:
                if svc.first_s is not None and t <= svc.first_s:
                    continue
                rps, median, errors = svc.at(t)
                total = max(1, round(rps * step_s * rng.uniform(0.95, 1.05)))
                n_err = round(total * errors * rng.uniform(0.7, 1.3))
                points.append(_point(200, t, step_s, total - n_err, median, rng))
                points.append(_point(500, t, step_s, n_err, median, rng))
            if not points:
                continue
            n_points += len(points)
            metric = Metric(
                name="http.server.request.duration",
                description="Duration of HTTP server requests.",
                unit="s",
                data=Histogram(data_points=points, aggregation_temporality=AggregationTemporality.DELTA),
            )
            resource_metrics.append(
                ResourceMetrics(
                    resource=Resource.create(
                        {"service.name": svc.name, "deployment.environment.name": "demo"}
                    ),
                    scope_metrics=[ScopeMetrics(scope=SCOPE, metrics=[metric], schema_url="")],
                    schema_url="",
                )
            )
        if resource_metrics:
            yield MetricsData(resource_metrics=resource_metrics), n_points
