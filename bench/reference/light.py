"""The light pure-Python reference ingest (``python_ingest``): an EWMA and a ring per series."""

from __future__ import annotations

import gzip
from collections import deque
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb


class PySeries:
    """The reference's per-series state: an EWMA mean and variance and a ring of raw points."""

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
    """The light reference: inflate, decode with opentelemetry-proto, key each point by metric,
    statistic and sorted attributes, update an EWMA and a ring. It does much less than the Rust
    path (no median/MAD window, no hour-of-day or weekday slots, no anomaly score, no rate
    series, no histogram roll-ups or quantiles, no duplicate or out-of-order checks). The
    ``ingest`` benchmark's main reference is the faithful port ``bench.reference.PyStore``; this
    one is kept for comparison with earlier results and serves the HTTP benchmark
    (``bench.reference.ref_server``)."""
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
