"""The ingest benchmark's Python reference (bench/reference/) does the Rust path's work: fed the
same payloads, it must end with the same series holding the same samples and bands."""

from __future__ import annotations

import gzip
import math
from typing import Any

import pytest
from bench.reference import PyStore
from bench.workloads.otlp import POINTS_PER_REQUEST, build_payloads
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

from referee import _core

T0_NS = 1_700_000_123_456_000_000  # not on a minute boundary
MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
I64_MAX = 2**63 - 1
REL = 1e-9


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= REL * max(abs(a), abs(b)) + 1e-12


def compare(rust: Any, ref: PyStore, info: bool = True) -> int:
    """Asserts both stores hold the same series, counters and ring samples (and, with ``info``,
    baseline counters: gaps, resets, first and last time, the last band's model); returns the
    number of samples compared that had a band."""
    assert ref.stats_dict() == rust.stats().to_dict()
    rows = [r.to_dict() for r in rust.series(limit=10**9)]
    rust_keys = {(r["metric"], r["statistic"], tuple(sorted(r["attributes"].items()))): r for r in rows}
    mine = ref.series()
    assert len(rows) == len(rust_keys), "series the JSON summary cannot tell apart"
    assert set(rust_keys) == set(mine)
    by_key = {(s.metric, s.statistic, s.attributes): s for s in ref.all_series}
    banded = 0
    k = ref.config.baseline.band_k
    for key, row in rust_keys.items():
        series = by_key[key]
        assert row["points"] == series.baseline.samples, key
        assert (row["out_of_order"], row["duplicates"]) == (series.out_of_order, series.duplicates), key
        if info:
            b = series.baseline
            assert rust.baseline_info(key[0], key[1], dict(key[2])).to_dict() | {"artifact": None} == {
                "samples": b.samples,
                "first_ts_ms": b.first_ts,
                "last_ts_ms": b.last_ts,
                "gaps": b.gaps,
                "resets": b.resets,
                "duplicates": series.duplicates,
                "out_of_order": series.out_of_order,
                "p50": None,
                "p90": None,
                "p99": None,
                "model": series.ring[-1].model,
                "artifact": None,
            }, key
        theirs = rust.samples(key[0], key[1], dict(key[2]))
        ours = mine[key]
        assert len(theirs) == len(ours), key
        for (ts, value, expected, lower, upper, score), (pts, pvalue, pexp, psigma, pscore) in zip(
            theirs, ours, strict=True
        ):
            assert (ts, value) == (pts, pvalue), key
            assert _close(expected, pexp), (key, ts, expected, pexp)
            assert _close(lower, pexp - k * psigma), (key, ts, lower, pexp - k * psigma)
            assert _close(upper, pexp + k * psigma), (key, ts, upper, pexp + k * psigma)
            assert _close(score, pscore), (key, ts, score, pscore)
            banded += not math.isnan(expected)
    return banded


@pytest.mark.parametrize("cumulative", [False, True], ids=["delta", "cumulative"])
def test_benchmark_workload_matches_the_rust_path(cumulative: bool) -> None:
    """The benchmark's own payloads (gauge, sum, histogram with roll-ups; delta, and
    cumulative running totals), long enough that every series has bands (min_samples 30)."""
    payloads = build_payloads(34, cumulative=cumulative)
    rust, ref = _core.SeriesStore(), PyStore()
    for body in payloads:
        report = rust.ingest_otlp_metrics(body, gzip=True)
        accepted, rejected = report.accepted, report.rejected
        assert ref.ingest(body) == (accepted, rejected) == (POINTS_PER_REQUEST, 0)
    assert compare(rust, ref, info=False) > 16_000 * 3
    # The last roll-up bucket is still open (ingest never flushes): flushed, it matches too.
    assert rust.flush_events(I64_MAX) == ref.flush_events(I64_MAX) == 1
    compare(rust, ref, info=False)


def _kv(attrs: Any, key: str, value: Any) -> None:
    a = attrs.add()
    a.key = key
    if isinstance(value, bool):
        a.value.bool_value = value
    elif isinstance(value, int):
        a.value.int_value = value
    elif isinstance(value, float):
        a.value.double_value = value
    elif isinstance(value, bytes):
        a.value.bytes_value = value
    elif isinstance(value, list):
        for x in value:
            a.value.array_value.values.add().string_value = x
    elif value is not None:
        a.value.string_value = value


def _edge_request(r: int, t: int) -> bytes:
    """Every kind of metric the Rust path handles, with the awkward cases."""
    req = pb.ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    for k, v in (
        ("service.name", "edge"),
        ("host.name", "h1"),
        ("deployment.environment", "prod"),
        ("zone", 3),
        ("both.levels", "from-resource"),
    ):
        _kv(rm.resource.attributes, k, v)
    sm = rm.scope_metrics.add()
    rng = (r * 7919) % 101 / 101.0  # deterministic "noise"

    gauge = sm.metrics.add()
    gauge.name = "g"
    for i, extra in enumerate([1.5, 1e20, 0.1, True, b"\x01\xff", ["x", "y"], None, 7]):
        p = gauge.gauge.data_points.add()
        p.time_unix_nano = t
        _kv(p.attributes, "i", str(i))
        _kv(p.attributes, "extra", extra)
        if i == 0:
            _kv(p.attributes, "both.levels", "from-point")
        if i == 1:
            p.as_int = 1000 + r
        elif i == 2 and r == 35:
            p.as_double = math.nan
        elif i == 3 and r == 36:
            pass  # no value
        else:
            # A slow level plus noise, and a spike at r == 40 (a scored episode).
            p.as_double = 50.0 + i + 5.0 * rng + (400.0 if r == 40 else 0.0)

    nm = sm.metrics.add()
    nm.name = "nm"
    nm.sum.is_monotonic = False
    nm.sum.aggregation_temporality = 2
    p = nm.sum.data_points.add()
    p.time_unix_nano, p.as_double = t, -3.0 + rng

    ds = sm.metrics.add()
    ds.name = "ds"
    ds.sum.is_monotonic = True
    ds.sum.aggregation_temporality = 1
    for i, start in enumerate((t - MINUTE_NS, 0)):
        p = ds.sum.data_points.add()
        p.start_time_unix_nano, p.time_unix_nano = start, t
        _kv(p.attributes, "i", i)
        p.as_double = 10.0 + 3.0 * rng

    cs = sm.metrics.add()
    cs.name = "cs"
    cs.sum.is_monotonic = True
    cs.sum.aggregation_temporality = 2
    for i in range(3):
        p = cs.sum.data_points.add()
        if i == 0:
            # A counter restarted at r == 30: new start time, lower value.
            start = T0_NS - HOUR_NS if r < 30 else T0_NS + 29 * MINUTE_NS + 1
            p.start_time_unix_nano = start
            p.as_int = 100 * r + r * r if r < 30 else 7 * (r - 29)
        elif i == 1:
            p.start_time_unix_nano = 0  # no start time: the first point only primes the stream
            p.as_double = 2.5 * r
        else:
            p.start_time_unix_nano = T0_NS - HOUR_NS
            p.as_double = 1000.0 - r if r % 9 == 0 else 1000.0 + r  # drops: resets
        p.time_unix_nano = t
        _kv(p.attributes, "i", i)

    for name, temporality in (("dh", 1), ("ch", 2)):
        h = sm.metrics.add()
        h.name = name
        h.histogram.aggregation_temporality = temporality
        for i, status in enumerate((200, 500, 503)):
            p = h.histogram.data_points.add()
            cum = r + 1 if temporality == 2 else 1
            p.start_time_unix_nano = T0_NS - MINUTE_NS if temporality == 2 else t - MINUTE_NS
            p.time_unix_nano = t
            _kv(p.attributes, "http.response.status_code", status)
            _kv(p.attributes, "i", i)
            counts = [cum * (3 + i + 6 * (r % 2)), cum * (r % 4), cum * i, cum * (r % 2)]
            if i == 2:
                # Other bounds for the same service: the roll-up merges onto their union.
                p.explicit_bounds.extend([0.2, 0.4, 2.0])
            else:
                p.explicit_bounds.extend([0.1, 0.5, 1.0])
            p.bucket_counts.extend(counts)
            p.count = sum(counts)
            if i != 1:
                p.sum = 0.3 * p.count + rng
            if i == 0:
                p.min, p.max = 0.01, 3.0 + rng

    eh = sm.metrics.add()
    eh.name = "eh"
    eh.exponential_histogram.aggregation_temporality = 1
    p = eh.exponential_histogram.data_points.add()
    p.start_time_unix_nano, p.time_unix_nano = t - MINUTE_NS, t
    p.scale = 1
    p.zero_count = r % 3
    p.positive.offset = -2
    p.positive.bucket_counts.extend([1, 2 + r % 5, 3, 0, 1])
    p.negative.offset = 0
    p.negative.bucket_counts.extend([r % 2, 1])
    p.count = p.zero_count + sum(p.positive.bucket_counts) + sum(p.negative.bucket_counts)
    p.sum = 4.0 + rng
    p.min, p.max = -1.5, 3.9

    sq = sm.metrics.add()
    sq.name = "sq"
    p = sq.summary.data_points.add()
    p.time_unix_nano = t
    for q, qval in ((0.5, 1.0 + rng), (0.75, 2.0), (0.9, 3.0 + rng), (0.99, 9.0 + rng)):
        qv = p.quantile_values.add()
        qv.quantile, qv.value = q, qval

    unnamed = sm.metrics.add()
    unnamed.gauge.data_points.add().as_double = 1.0
    sm.metrics.add().name = "no-data"
    return gzip.compress(req.SerializeToString())


def test_every_metric_kind_and_rejection_matches_the_rust_path() -> None:
    """Gauges with non-string attributes, non-monotonic, delta and cumulative sums (resets,
    priming), delta and cumulative histograms with errors and mixed bounds, exponential
    histograms, summaries, NaN values, points without values, unnamed and empty metrics, a
    resent request (duplicates), an older one (out of order) and a gap of two days."""
    bodies = [_edge_request(r, T0_NS + r * MINUTE_NS) for r in range(48)]
    order = [*bodies[:45], bodies[44], bodies[10], *bodies[45:]]
    order.append(_edge_request(48, T0_NS + 48 * MINUTE_NS + 48 * HOUR_NS))
    order.append(_edge_request(49, T0_NS + 49 * MINUTE_NS + 48 * HOUR_NS))
    rust, ref = _core.SeriesStore(), PyStore()
    for body in order:
        report = rust.ingest_otlp_metrics(body, gzip=True)
        accepted, rejected = report.accepted, report.rejected
        assert ref.ingest(body) == (accepted, rejected)
    stats = rust.stats().to_dict()
    assert stats["duplicates"] > 0 and stats["out_of_order"] > 0 and stats["late_events"] > 0
    assert compare(rust, ref) > 100
    assert rust.flush_events(I64_MAX) == ref.flush_events(I64_MAX) > 0
    compare(rust, ref)


def test_seasonal_and_weekly_bands_match_the_rust_path() -> None:
    """Hourly points over 16 days: the hour-of-day slots, the level offset and the weekday
    offsets take over from the median window, and a quiet weekday and a spike are scored."""
    rust, ref = _core.SeriesStore(), PyStore()
    for r in range(16 * 24):
        t = T0_NS + r * HOUR_NS
        req = pb.ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        _kv(rm.resource.attributes, "service.name", "season")
        g = rm.scope_metrics.add().metrics.add()
        g.name = "load"
        for i in range(3):
            p = g.gauge.data_points.add()
            p.time_unix_nano = t
            _kv(p.attributes, "i", i)
            hour = (t // HOUR_NS) % 24
            day = (t // (24 * HOUR_NS)) % 7
            level = 100.0 + 40.0 * math.sin(2 * math.pi * hour / 24) + (r * 7919 % 13) * (i + 1)
            if day == 2:
                level *= 0.6  # a quiet weekday
            if r in (300, 301, 350):
                level += 500.0
            p.as_double = level
        body = gzip.compress(req.SerializeToString())
        report = rust.ingest_otlp_metrics(body, gzip=True)
        accepted, rejected = report.accepted, report.rejected
        assert ref.ingest(body) == (accepted, rejected)
    models = {x.model for s in ref.all_series for x in s.ring}
    assert {"streaming.hour_of_day", "streaming.hour_of_week", "streaming.median_mad"} <= models
    assert any(x.score > 0 for s in ref.all_series for x in list(s.ring)[100:])
    compare(rust, ref)


@pytest.mark.parametrize("bad", [[0.1, 0.5], [0.5, 0.1, 0.1]])
def test_roll_up_bounds_merge_matches(bad: list[float]) -> None:
    """Histograms whose bucket counts do not fit their bounds are skipped by the roll-up merge
    the same way."""
    rust, ref = _core.SeriesStore(), PyStore()
    for r in range(3):
        req = pb.ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        _kv(rm.resource.attributes, "service.name", "odd")
        h = rm.scope_metrics.add().metrics.add()
        h.name = "h"
        h.histogram.aggregation_temporality = 1
        for i, bounds in enumerate(([0.1, 0.5, 1.0], bad)):
            p = h.histogram.data_points.add()
            p.start_time_unix_nano, p.time_unix_nano = T0_NS, T0_NS + (r + 1) * MINUTE_NS
            _kv(p.attributes, "i", i)
            p.explicit_bounds.extend(bounds)
            p.bucket_counts.extend([1, 2, 3, 4])
            p.count = 10
        body = gzip.compress(req.SerializeToString())
        report = rust.ingest_otlp_metrics(body, gzip=True)
        accepted, rejected = report.accepted, report.rejected
        assert ref.ingest(body) == (accepted, rejected)
    rust.flush_events(I64_MAX)
    ref.flush_events(I64_MAX)
    compare(rust, ref)


@pytest.mark.parametrize("max_series", [2, 40])
def test_series_cap_and_short_ring_match_the_rust_path(max_series: int) -> None:
    """A series cap (new series, cumulative streams and roll-up buckets refused) and a ring
    shorter than the history (samples dropped, the episode maximum rescanned from fewer)."""
    kwargs: dict[str, Any] = {"max_series": max_series, "ring_capacity": 16, "min_samples": 10}
    rust, ref = _core.SeriesStore(**kwargs), PyStore(**kwargs)
    for r in range(48):
        body = _edge_request(r, T0_NS + r * MINUTE_NS)
        report = rust.ingest_otlp_metrics(body, gzip=True)
        accepted, rejected = report.accepted, report.rejected
        assert ref.ingest(body) == (accepted, rejected)
    assert rust.stats().series_rejected > 0
    assert (rust.stats().refused_events > 0) == (max_series == 2)
    compare(rust, ref)
    rust.flush_events(I64_MAX)
    ref.flush_events(I64_MAX)
    compare(rust, ref)
