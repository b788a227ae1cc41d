"""The decoding half of ``rust_core/src/otlp.rs``: inflate and decode a request, render
attribute values as ``any_value_string`` does, merge resource and point attributes
(``Merger``), and convert exponential histogram buckets to explicit ones."""

from __future__ import annotations

import gzip
from operator import itemgetter
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from bench.reference.rustnum import INF, fmax, rust_f64_str

NS_PER_MS = 1_000_000
CUMULATIVE = 2  # AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

SERVICE_ATTRIBUTES = frozenset(
    ("service.name", "service.namespace", "deployment.environment", "deployment.environment.name")
)


def decode(body: bytes, max_body_bytes: int) -> Any:
    """Inflate (several gzip members allowed, the same size limit) and decode one request."""
    raw = gzip.decompress(body)
    if len(raw) > max_body_bytes:
        raise ValueError(f"request body exceeds {max_body_bytes} bytes")
    return ExportMetricsServiceRequest.FromString(raw)


def render(v: Any) -> str:
    """``otlp::any_value_string`` / ``otlp_wire::render`` of an ``AnyValue`` message."""
    which = v.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return str(v.string_value)
    if which == "int_value":
        return str(v.int_value)
    if which == "double_value":
        return rust_f64_str(v.double_value)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "bytes_value":
        return bytes(v.bytes_value).hex()
    if which == "array_value":
        return "[" + ",".join(render(x) for x in v.array_value.values) + "]"
    if which == "kvlist_value":
        return "{" + ",".join(f"{kv.key}={render(kv.value)}" for kv in v.kvlist_value.values) + "}"
    if which == "string_value_strindex":
        return f"#{v.string_value_strindex}"
    return ""


def attributes(kvs: Any) -> list[tuple[str, str]]:
    out = []
    for kv in kvs:
        v = kv.value
        s = v.string_value
        if not s:
            # Empty or another type: "" for an empty string and for no value, as in Rust.
            s = render(v)
        out.append((kv.key, s))
    return out


class Merger:
    """``Merger``: a resource's attributes merged with each point's (the point wins), sorted by
    key. The order found for one point's keys is remembered for the next point with the same
    keys, as in Rust; the result depends on the keys only."""

    __slots__ = ("getter", "keys", "resource")

    def __init__(self, resource: list[tuple[str, str]]) -> None:
        self.resource = resource
        self.keys: tuple[str, ...] | None = None
        self.getter: Any = None

    def merge(self, point: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        combined = point + self.resource
        keys = tuple([kv[0] for kv in point])
        if keys != self.keys or self.getter is None:
            pkeys = set(keys)
            n = len(point)
            srcs = list(range(n)) + [n + i for i, (k, _) in enumerate(self.resource) if k not in pkeys]
            srcs.sort(key=lambda i: combined[i][0])
            if len(srcs) == 0:
                self.getter = lambda _c: ()
            elif len(srcs) == 1:
                only = srcs[0]
                self.getter = lambda c: (c[only],)
            else:
                self.getter = itemgetter(*srcs)
            self.keys = keys
        return self.getter(combined)


def _powf(x: float, y: float) -> float:
    """``f64::powf``: an overflow is an infinity, not an exception."""
    try:
        return x**y
    except OverflowError:
        return INF


def exponential_buckets(
    scale: int,
    zero_count: int,
    zero_threshold: float,
    negative: tuple[int, list[int]],
    positive: tuple[int, list[int]],
) -> tuple[list[float], list[int]]:
    bounds: list[float] = []
    counts: list[int] = []
    base = _powf(2.0, _powf(2.0, float(-scale)))
    offset, neg = negative
    for k in range(len(neg) - 1, -1, -1):
        i = float(offset) + float(k)
        bounds.append(-_powf(base, i))
        counts.append(neg[k])
    has_negative = len(counts) > 0
    if zero_count > 0 or has_negative:
        bounds.append(fmax(zero_threshold, 0.0))
        counts.append(zero_count)
    offset, pos = positive
    for k, c in enumerate(pos):
        i = float(offset) + float(k)
        bounds.append(_powf(base, i + 1.0))
        counts.append(c)
    if bounds:
        bounds.pop()
    if not counts:
        counts.append(0)
    return bounds, counts
