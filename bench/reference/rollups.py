"""Histogram roll-ups of ``rust_core/src/otlp.rs`` (per-service merges of explicit buckets,
bucket quantiles, error points) and the one-minute buckets of ``otlp_events.rs``
(``EventAggregator``), which write count, rate, error_ratio, mean, p50, p90 and p99 into the
store when a later bucket of the same key starts."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from operator import add
from typing import Any

from bench.reference.rustnum import INF, fclamp, fmax, fmin, total_order

BUCKET_MS = 60_000
MAX_DURATIONS = 4096

#: ``push(metric, statistic, attributes, ts_ms, value)``: the store's, the rejection ignored.
Push = Callable[[str, str, tuple[tuple[str, str], ...], int, float], object]


def bucket_range(bounds: list[float], k: int) -> tuple[float, float]:
    lo = -INF if k == 0 else bounds[k - 1]
    hi = INF if k == len(bounds) else bounds[k]
    return lo, hi


def bucket_quantile_f(
    bounds: list[float], buckets: list[float], q: float, mn: float, mx: float
) -> float | None:
    total = 0.0
    for c in buckets:
        total += c
    if total <= 0.0 or len(buckets) != len(bounds) + 1:
        return None
    rank = q * total
    seen = 0.0
    for i, c in enumerate(buckets):
        if c > 0.0 and seen + c >= rank:
            lower = fmin(mn, bounds[0] if bounds else 0.0) if i == 0 else bounds[i - 1]
            upper = fmax(mx, lower) if i == len(bounds) else bounds[i]
            lower = lower if math.isfinite(lower) else fmin(upper, 0.0)
            upper = upper if math.isfinite(upper) else lower
            frac = fclamp((rank - seen) / c, 0.0, 1.0)
            estimate = lower + (upper - lower) * frac
            return fmax(fmin(estimate, fmax(mx, fmin(estimate, lower))), fmin(mn, estimate))
        seen += c
    return None


class Rollup:
    __slots__ = (
        "bounds",
        "buckets",
        "count",
        "dt_s",
        "errors",
        "first_ms",
        "has_sum",
        "last_ms",
        "max",
        "min",
        "sum",
    )

    def __init__(self, bounds: list[float], n_buckets: int) -> None:
        self.dt_s = 0.0
        self.count = 0
        self.sum = 0.0
        self.has_sum = False
        self.errors = 0
        self.bounds = bounds
        self.buckets = [0.0] * n_buckets
        self.min = INF
        self.max = -INF
        self.first_ms = 0
        self.last_ms = 0

    def copy(self) -> Rollup:
        r = Rollup(list(self.bounds), 0)
        r.buckets = list(self.buckets)
        r.dt_s, r.count, r.sum, r.has_sum, r.errors = (
            self.dt_s,
            self.count,
            self.sum,
            self.has_sum,
            self.errors,
        )
        r.min, r.max, r.first_ms, r.last_ms = self.min, self.max, self.first_ms, self.last_ms
        return r

    def add_buckets(self, bounds: list[float], buckets: list[int]) -> None:
        if self.bounds == bounds and len(self.buckets) == len(buckets):
            # Integer counts added to float buckets: exactly `*a += *b as f64`.
            self.buckets = list(map(add, self.buckets, buckets))
            return
        self.add_buckets_f(bounds, [float(c) for c in buckets])

    def merge(self, other: Rollup) -> None:
        self.dt_s = fmax(self.dt_s, other.dt_s)
        self.first_ms = min(self.first_ms, other.first_ms)
        self.last_ms = max(self.last_ms, other.last_ms)
        self.count += other.count
        self.sum += other.sum
        self.has_sum = self.has_sum or other.has_sum
        self.errors += other.errors
        self.min = fmin(self.min, other.min)
        self.max = fmax(self.max, other.max)
        if not self.buckets:
            self.bounds = list(other.bounds)
            self.buckets = list(other.buckets)
        else:
            self.add_buckets_f(other.bounds, other.buckets)

    def rate(self) -> float | None:
        span_s = (self.last_ms - self.first_ms) / 1000.0
        return self.count / span_s if span_s > 0.0 else None

    def quantile(self, q: float) -> float | None:
        return bucket_quantile_f(self.bounds, self.buckets, q, self.min, self.max)

    def add_buckets_f(self, bounds: list[float], buckets: list[float]) -> None:
        if len(buckets) != len(bounds) + 1:
            return
        if self.bounds == bounds and len(self.buckets) == len(buckets):
            self.buckets = list(map(add, self.buckets, buckets))
            return
        union: list[float] = []
        for u in sorted([*self.bounds, *bounds], key=total_order):
            if not union or union[-1] != u:
                union.append(u)
        merged = [0.0] * (len(union) + 1)
        sources = [(self.bounds, self.buckets), (list(bounds), list(buckets))]
        for b, counts in sources:
            if len(counts) != len(b) + 1:
                continue
            for k, c in enumerate(counts):
                if c == 0.0:
                    continue
                lo, hi = bucket_range(b, k)
                if not math.isfinite(lo) or not math.isfinite(hi):
                    j = bisect_right(union, lo) if math.isfinite(lo) else bisect_left(union, hi)
                    merged[j] += c
                    continue
                for j in range(len(merged)):
                    ulo, uhi = bucket_range(union, j)
                    overlap = fmin(hi, uhi) - fmax(lo, ulo)
                    if overlap > 0.0:
                        merged[j] += c * overlap / (hi - lo)
        self.bounds = union
        self.buckets = merged


def is_error_point(attrs: list[tuple[str, str]]) -> bool:
    for k, v in attrs:
        if k in ("http.response.status_code", "http.status_code"):
            # `str::parse::<u32>`: ASCII digits with an optional leading '+', no spaces.
            d = v[1:] if v.startswith("+") else v
            if d and d.isascii() and d.isdigit() and int(d) <= 0xFFFF_FFFF and int(d) >= 500:
                return True
        elif k == "error.type" and v:
            return True
    return False


class Bucket:
    __slots__ = ("count", "durations", "errors", "rollup", "seen", "start_ms", "stride", "sum")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.count = 0
        self.errors = 0
        self.sum = 0.0
        self.durations: list[float] = []
        self.stride = 1
        self.seen = 0
        self.rollup: Rollup | None = None


def sorted_quantile(s: list[float], q: float) -> float:
    rank = fmax(q * (len(s) - 1.0), 0.0)
    lo, hi = math.floor(rank), math.ceil(rank)
    f = rank - lo
    return s[lo] * (1.0 - f) + s[min(hi, len(s) - 1)] * f


class EventAggregator:
    """``EventAggregator``: one open bucket per (metric, service attributes), at most
    ``max_keys`` of them; ``push`` writes a finished bucket's statistics into the store."""

    def __init__(self, max_keys: int, push: Push) -> None:
        self.max_keys = max_keys
        self.push = push
        # (metric, attrs) -> [kind, bucket]
        self.open: dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]] = {}
        self.late = 0
        self.refused = 0

    def _bucket(
        self, metric: str, attrs: tuple[tuple[str, str], ...], kind: str, ts_ms: int
    ) -> Bucket | None:
        start = ts_ms // BUCKET_MS * BUCKET_MS
        key = (metric, attrs)
        entry = self.open.get(key)
        if entry is None:
            if len(self.open) >= self.max_keys:
                self.refused += 1
                return None
            entry = self.open[key] = [kind, Bucket(start)]
            return entry[1]
        open_b: Bucket = entry[1]
        if start > open_b.start_ms:
            entry[1] = Bucket(start)
            self._write(metric, attrs, entry[0], open_b)
        elif start < open_b.start_ms:
            self.late += 1
        return entry[1]

    def add_rollup(
        self, metric: str, service: tuple[tuple[str, str], ...], ts_ms: int, rollup: Rollup
    ) -> None:
        rollup = rollup.copy()
        rollup.last_ms = ts_ms
        rollup.first_ms = ts_ms - int(rollup.dt_s * 1000.0)
        b = self._bucket(metric, service, "histogram", ts_ms)
        if b is None:
            return
        if b.rollup is not None:
            b.rollup.merge(rollup)
        else:
            b.rollup = rollup

    def _write(self, metric: str, attrs: tuple[tuple[str, str], ...], kind: str, b: Bucket) -> None:
        ts = b.start_ms + BUCKET_MS
        minutes = BUCKET_MS / 60_000.0

        def push(stat: str, v: float) -> None:
            self.push(metric, stat, attrs, ts, v)

        ru = b.rollup
        if kind == "histogram" and ru is not None:
            push("count", float(ru.count))
            rate = ru.rate()
            if rate is not None:
                push("rate", rate)
            if ru.count > 0:
                push("error_ratio", ru.errors / ru.count)
                if ru.has_sum:
                    push("mean", ru.sum / ru.count)
                for stat, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
                    v = ru.quantile(q)
                    if v is not None:
                        push(stat, v)
            return
        push("count", float(b.count))
        push("rate", b.count / (minutes * 60.0))
        if kind == "spans" and b.count > 0:
            push("error_ratio", b.errors / b.count)
            push("mean", b.sum / b.count)
            b.durations.sort(key=total_order)
            if b.durations:
                push("p50", sorted_quantile(b.durations, 0.5))
                push("p90", sorted_quantile(b.durations, 0.9))
                push("p99", sorted_quantile(b.durations, 0.99))

    def flush(self, now_ms: int) -> int:
        """``EventAggregator::flush``: writes every bucket that ended at or before ``now_ms``."""
        n = 0
        for key in list(self.open):
            kind, b = self.open[key]
            if b.start_ms + BUCKET_MS <= now_ms:
                self._write(key[0], key[1], kind, b)
                del self.open[key]
                n += 1
        return n
