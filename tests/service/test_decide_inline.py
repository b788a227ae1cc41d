"""When ``POST /api/v1/suggestions`` decides on the event loop and when it hands the decision
to a thread (``Runtime.can_decide_inline``): inline only when nothing it needs is in use."""

from __future__ import annotations

import threading
import time

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

from referee.service.runtime import Runtime


def big_export(points: int = 200_000) -> bytes:
    req = pb.ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    for s in range(points // 100):
        m = sm.metrics.add()
        m.name = f"m{s}"
        for i in range(100):
            p = m.gauge.data_points.add()
            p.time_unix_nano = (1_700_000_000_000 + i * 60_000) * 1_000_000
            p.as_double = float(i)
    return req.SerializeToString()


def test_inline_only_when_nothing_else_holds_what_a_decision_needs(runtime: Runtime) -> None:
    assert runtime.verdicts.local and runtime.can_decide_inline()
    # An OTLP request in flight.
    with runtime.ingest_gate.admit(10):
        assert not runtime.can_decide_inline()
    assert runtime.can_decide_inline()
    # Another decision (or a lifecycle re-evaluation) under way.
    with runtime._decide_lock:
        assert not runtime.can_decide_inline()
    # The verdict store's connection in use (the delivery worker, a listing).
    with runtime.verdicts._lock:
        assert not runtime.can_decide_inline()
    # The series store held by another thread: an ingest that did not come through the gate
    # (gRPC, a background flush). Seen from here while it runs.
    body = big_export()
    seen_busy = threading.Event()
    ingest = threading.Thread(target=runtime.store.ingest_otlp_metrics, args=(body,))
    ingest.start()
    while ingest.is_alive():
        if runtime.store.busy() and not runtime.can_decide_inline():
            seen_busy.set()
            break
        time.sleep(0)
    ingest.join()
    assert seen_busy.is_set(), "the ingest finished before it was seen holding the store"
    assert not runtime.store.busy() and runtime.can_decide_inline()


def test_a_remote_verdict_store_always_decides_on_a_thread() -> None:
    from referee.verdicts.postgres import PgVerdictStore
    from referee.verdicts.store import VerdictStore

    assert VerdictStore.local and not PgVerdictStore.local
