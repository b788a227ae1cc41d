"""``rust_core/src/otlp.rs`` ``apply_view`` on top of the store: ``PyStore.ingest(body)`` does
what ``referee._core.SeriesStore.ingest_otlp_metrics(body, gzip=True)`` does (see the package
docstring, ``bench.reference``)."""

from __future__ import annotations

from typing import Any

from bench.reference.decode import (
    CUMULATIVE,
    NS_PER_MS,
    SERVICE_ATTRIBUTES,
    Merger,
    attributes,
    decode,
    exponential_buckets,
)
from bench.reference.rollups import Rollup, is_error_point
from bench.reference.rustnum import fmax, fmin
from bench.reference.store import SeriesStore


class PyStore(SeriesStore):
    """The store with the OTLP metrics ingest of one ``_core.SeriesStore``."""

    def ingest(self, body: bytes) -> tuple[int, int]:
        """``ingest_otlp_metrics(body, gzip=True)``: (accepted, rejected)."""
        accepted, rejected, _ = self.ingest_report(body)
        return accepted, rejected

    def ingest_report(self, body: bytes) -> tuple[int, int, str]:
        return self.apply(decode(body, self.max_body_bytes))

    def apply(self, request: Any) -> tuple[int, int, str]:
        """``apply_view`` on a decoded request: (accepted, rejected, message)."""
        accepted = 0
        rejected = 0
        message = ""
        groups = self.groups
        push_key = self.push_key
        max_series = self.config.max_series
        cumulative = self.cumulative

        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            service_all = sorted((k, v) for k, v in resource if k in SERVICE_ATTRIBUTES)
            service_l: list[tuple[str, str]] = []
            for kv in service_all:
                if not service_l or service_l[-1][0] != kv[0]:
                    service_l.append(kv)
            service = tuple(service_l)
            merge = Merger(resource).merge

            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    name = metric.name
                    kind = metric.WhichOneof("data")
                    if not name:
                        n = len(getattr(metric, kind).data_points) if kind is not None else 0
                        for _ in range(max(n, 1)):
                            rejected += 1
                            if not message:
                                message = "a metric without a name was rejected"
                        continue
                    if kind == "gauge" or kind == "sum":
                        data = metric.gauge if kind == "gauge" else metric.sum
                        monotonic = kind == "sum" and data.is_monotonic
                        is_cumulative = kind == "sum" and data.aggregation_temporality == CUMULATIVE
                        for p in data.data_points:
                            which = p.WhichOneof("value")
                            if which is None:
                                rejected += 1
                                if not message:
                                    message = "a number data point had no value"
                                continue
                            val = p.as_double if which == "as_double" else float(p.as_int)
                            attrs = merge(attributes(p.attributes))
                            gkey = (name, attrs)
                            group = groups.get(gkey)
                            if group is None:
                                group = groups[gkey] = {}
                            time_ns = p.time_unix_nano
                            ts = time_ns // NS_PER_MS
                            if not monotonic:
                                r = push_key(group, name, "value", attrs, ts, val)
                                if r is None:
                                    accepted += 1
                                else:
                                    rejected += 1
                                    message = message or r
                                continue
                            start_ns = p.start_time_unix_nano
                            delta: tuple[float, int] | None
                            if is_cumulative:
                                key = (name, attrs)  # otlp.rs stream_key: metric and attributes, unforgeable
                                prev = cumulative.get(key)
                                if prev is not None and prev[0] == start_ns and val >= prev[2]:
                                    delta = None if time_ns <= prev[1] else (val - prev[2], time_ns - prev[1])
                                elif start_ns > 0 and time_ns > start_ns:
                                    delta = (val, time_ns - start_ns)
                                else:
                                    delta = None
                                if len(cumulative) < max_series or key in cumulative:
                                    cumulative[key] = (start_ns, time_ns, val, 0, 0.0, [])
                            elif time_ns > start_ns and start_ns > 0:
                                delta = (val, time_ns - start_ns)
                            else:
                                delta = (val, 0)
                            if delta is None:
                                # The first cumulative point without a start time only primes the stream.
                                accepted += 1
                                continue
                            d, dt_ns = delta
                            r = push_key(group, name, "delta", attrs, ts, d)
                            if r is None:
                                if dt_ns > 0:
                                    push_key(group, name, "rate", attrs, ts, d / (dt_ns / 1e9))
                                accepted += 1
                            else:
                                rejected += 1
                                message = message or r
                    elif kind == "histogram" or kind == "exponential_histogram":
                        data = getattr(metric, kind)
                        is_cumulative = data.aggregation_temporality == CUMULATIVE
                        exponential = kind == "exponential_histogram"
                        rollups: dict[int, Rollup] = {}
                        for p in data.data_points:
                            pattrs = attributes(p.attributes)
                            attrs = merge(pattrs)
                            gkey = (name, attrs)
                            group = groups.get(gkey)
                            if group is None:
                                group = groups[gkey] = {}
                            if exponential:
                                bounds, counts = exponential_buckets(
                                    p.scale,
                                    p.zero_count,
                                    p.zero_threshold,
                                    (p.negative.offset, list(p.negative.bucket_counts)),
                                    (p.positive.offset, list(p.positive.bucket_counts)),
                                )
                            else:
                                bounds = list(p.explicit_bounds)
                                counts = list(p.bucket_counts)
                            hd = self._histogram_delta(p, bounds, counts, is_cumulative, name, attrs)
                            if hd is None:
                                accepted += 1
                                continue
                            dt_s, count, hsum, dbuckets, hmin, hmax = hd
                            time_ns = p.time_unix_nano
                            ts = time_ns // NS_PER_MS
                            r = push_key(group, name, "count", attrs, ts, float(count))
                            if r is None:
                                if dt_s > 0.0:
                                    push_key(group, name, "rate", attrs, ts, count / dt_s)
                                if hsum is not None and count > 0:
                                    push_key(group, name, "mean", attrs, ts, hsum / count)
                                accepted += 1
                            else:
                                rejected += 1
                                message = message or r
                            ru = rollups.get(time_ns)
                            if ru is None:
                                ru = rollups[time_ns] = Rollup(list(bounds), len(dbuckets))
                            if dt_s > ru.dt_s:
                                ru.dt_s = dt_s
                            ru.count += count
                            if hsum is not None:
                                ru.sum += hsum
                                ru.has_sum = True
                            if is_error_point(pattrs):
                                ru.errors += count
                            ru.add_buckets(bounds, dbuckets)
                            if hmin is not None:
                                ru.min = fmin(ru.min, hmin)
                            if hmax is not None:
                                ru.max = fmax(ru.max, hmax)
                        for t, ru in rollups.items():
                            self.events.add_rollup(name, service, t // NS_PER_MS, ru)
                    elif kind == "summary":
                        for p in metric.summary.data_points:
                            attrs = merge(attributes(p.attributes))
                            gkey = (name, attrs)
                            group = groups.get(gkey)
                            if group is None:
                                group = groups[gkey] = {}
                            ts = p.time_unix_nano // NS_PER_MS
                            first: str | None = None
                            for qv in p.quantile_values:
                                x = qv.quantile
                                if abs(x - 0.5) < 1e-9:
                                    stat = "p50"
                                elif abs(x - 0.9) < 1e-9:
                                    stat = "p90"
                                elif abs(x - 0.99) < 1e-9:
                                    stat = "p99"
                                else:
                                    continue
                                r = push_key(group, name, stat, attrs, ts, qv.value)
                                if first is None and r is not None:
                                    first = r
                            if first is None:
                                accepted += 1
                            else:
                                rejected += 1
                                message = message or first
                    else:
                        rejected += 1
                        message = message or "a metric had no data"
        return accepted, rejected, message

    def _histogram_delta(
        self,
        p: Any,
        bounds: list[float],
        counts: list[int],
        is_cumulative: bool,
        name: str,
        attrs: tuple[tuple[str, str], ...],
    ) -> tuple[float, int, float | None, list[int], float | None, float | None] | None:
        """``histogram_delta``: (dt_s, count, sum, buckets, min, max) or None."""
        start_ns = p.start_time_unix_nano
        time_ns = p.time_unix_nano
        count = p.count
        hsum = p.sum if p.HasField("sum") else None
        hmin = p.min if p.HasField("min") else None
        hmax = p.max if p.HasField("max") else None
        since_start = (time_ns - start_ns) / 1e9 if start_ns > 0 and time_ns > start_ns else None
        if not is_cumulative:
            return (since_start if since_start is not None else 0.0, count, hsum, counts, hmin, hmax)
        key = (name, attrs)  # otlp.rs stream_key: metric and attributes, unforgeable
        cumulative = self.cumulative
        prev = cumulative.get(key)
        delta: tuple[float, int, float | None, list[int], float | None, float | None] | None
        if prev is not None and prev[0] == start_ns and count >= prev[3] and len(prev[5]) == len(counts):
            if time_ns > prev[1]:
                delta = (
                    (time_ns - prev[1]) / 1e9,
                    count - prev[3],
                    hsum - prev[4] if hsum is not None else None,
                    [a - b if a > b else 0 for a, b in zip(counts, prev[5], strict=True)],
                    hmin,
                    hmax,
                )
            else:
                delta = None
        elif since_start is not None:
            delta = (since_start, count, hsum, counts, hmin, hmax)
        else:
            delta = None
        if len(cumulative) < self.config.max_series or key in cumulative:
            cumulative[key] = (start_ns, time_ns, 0.0, count, hsum if hsum is not None else 0.0, list(counts))
        return delta
