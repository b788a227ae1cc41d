"""OTLP ingest as real clients use it: the OpenTelemetry SDK exporters over OTLP/HTTP and
OTLP/gRPC for all three signals, the official JSON examples, the protocol's status codes,
back-pressure, bearer tokens, the series cap, and random bodies thrown at the decoder."""

from __future__ import annotations

import contextlib
import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from referee import _core
from referee.config import Secret, Settings
from referee.demo.run import BackgroundServer
from referee.service.runtime import Runtime
from tests.conftest import CONTRACTS

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSONH = {"Content-Type": "application/json"}
MINUTE_NS = 60_000_000_000


def _suggestion(sid: str, service: str = "web") -> dict[str, object]:
    return {"id": sid, "subject": {"service.name": service}, "claim": {"kind": "latency_high"}}


def _verdict_ids(runtime: Runtime) -> set[str]:
    return {v.suggestion_id for v in runtime.verdicts.latest(100, None, None, None)}


def _series(runtime: Runtime, metric: str) -> list[dict[str, object]]:
    return [dict(s.to_dict()) for s in runtime.store.series(metric, 1000)]


# --- the SDK exporters, both transports, all three signals -------------------------------


def _export_traces(exporter: object, t0_ns: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "cart"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    tracer = provider.get_tracer("test")
    for i in range(10):
        start = t0_ns + i * 1_000_000_000
        span = tracer.start_span(
            "GET /cart", kind=SpanKind.SERVER, attributes={"http.route": "/cart"}, start_time=start
        )
        if i == 0:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + (i + 1) * 10_000_000)
    # A client span is accepted but does not count as a request the service served.
    tracer.start_span("SELECT", kind=SpanKind.CLIENT, start_time=t0_ns).end(end_time=t0_ns + 1000)
    provider.shutdown()


def _export_logs(exporter: object, t0_ns: int, sid: str) -> None:
    provider = LoggerProvider(resource=Resource.create({"service.name": "copilot-x"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))  # type: ignore[arg-type]
    logger = provider.get_logger("copilot")
    # The current form: a top-level EventName and a map body.
    logger.emit(event_name="copilot.suggestion", body=_suggestion(sid), timestamp=t0_ns)
    # The older form: an event.name attribute and the suggestion as a JSON string.
    logger.emit(
        body=json.dumps(_suggestion(sid + "-old")),
        attributes={"event.name": "copilot.suggestion"},
        timestamp=t0_ns,
    )
    # An ordinary log record: counted per service and severity.
    logger.emit(body="disk almost full", severity_text="WARN", timestamp=t0_ns)
    provider.shutdown()


def _check_red_series(runtime: Runtime, t0_ns: int) -> None:
    runtime.store.flush_events(t0_ns // 1_000_000 + 3 * 60_000)
    rows = _series(runtime, "trace.server.duration")
    by = {(s["statistic"], tuple(sorted(s["attributes"].items()))): s for s in rows}  # type: ignore[union-attr]
    service = (("service.name", "cart"),)
    route = (("http.route", "/cart"), ("service.name", "cart"))
    assert by[("count", service)]["last_value"] == 10.0
    assert by[("count", route)]["last_value"] == 10.0
    assert by[("error_ratio", service)]["last_value"] == pytest.approx(0.1)
    assert by[("p50", service)]["last_value"] == pytest.approx(0.055)


def _check_logs(runtime: Runtime, t0_ns: int, sid: str) -> None:
    assert {sid, sid + "-old"} <= _verdict_ids(runtime)
    verdict = runtime.verdicts.find("copilot-x", sid)
    assert verdict is not None and verdict.source == "copilot-x"
    runtime.store.flush_events(t0_ns // 1_000_000 + 3 * 60_000)
    counted = _series(runtime, "log.records")
    assert any(
        s["statistic"] == "count" and s["attributes"] == {"service.name": "copilot-x", "severity": "WARN"}
        for s in counted
    )


def test_sdk_http_exporters_for_traces_and_logs(server: BackgroundServer, runtime: Runtime) -> None:
    t0 = (time.time_ns() // MINUTE_NS - 5) * MINUTE_NS
    _export_traces(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", compression=Compression.Gzip), t0)
    _check_red_series(runtime, t0)
    _export_logs(OTLPLogExporter(endpoint=f"{server.url}/v1/logs"), t0, "http-1")
    _check_logs(runtime, t0, "http-1")


def test_sdk_grpc_exporters_for_all_three_signals(server: BackgroundServer, runtime: Runtime) -> None:
    assert runtime.grpc_port
    target = f"127.0.0.1:{runtime.grpc_port}"
    t0 = (time.time_ns() // MINUTE_NS - 5) * MINUTE_NS
    _export_traces(GrpcSpanExporter(endpoint=target, insecure=True), t0)
    _check_red_series(runtime, t0)
    _export_logs(GrpcLogExporter(endpoint=target, insecure=True), t0, "grpc-1")
    _check_logs(runtime, t0, "grpc-1")
    reader = PeriodicExportingMetricReader(
        GrpcMetricExporter(endpoint=target, insecure=True), export_interval_millis=60_000
    )
    provider = MeterProvider(resource=Resource.create({"service.name": "api"}), metric_readers=[reader])
    provider.get_meter("t").create_counter("jobs.done").add(5)
    provider.force_flush()
    provider.shutdown()
    stats = {s["statistic"] for s in _series(runtime, "jobs.done")}
    # A cumulative counter's first point primes the stream; its delta and rate come from start time.
    assert {"delta", "rate"} <= stats


def test_grpc_status_codes(runtime: Runtime, server: BackgroundServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            request_serializer=None,
            response_deserializer=metrics_service_pb2.ExportMetricsServiceResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as bad:
            export(b"\xff\xff\xff garbage")
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert export(metrics_service_pb2.ExportMetricsServiceRequest().SerializeToString()) == (
            metrics_service_pb2.ExportMetricsServiceResponse()
        )


# --- the official examples and the protocol's answers ------------------------------------


@pytest.mark.parametrize(
    ("path", "example", "response"),
    [
        ("/v1/logs", "example-logs.json", logs_service_pb2.ExportLogsServiceResponse),
        ("/v1/logs", "example-events.json", logs_service_pb2.ExportLogsServiceResponse),
        ("/v1/traces", "example-trace.json", trace_service_pb2.ExportTraceServiceResponse),
    ],
)
def test_official_examples(server: BackgroundServer, path: str, example: str, response: type) -> None:
    body = (CONTRACTS / "otlp" / example).read_bytes()
    r = httpx.post(f"{server.url}{path}", content=body, headers=JSONH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {}
    # The same request as protobuf is answered in protobuf.
    parsed = json.loads(body)
    pb = {
        "/v1/logs": logs_service_pb2.ExportLogsServiceRequest,
        "/v1/traces": trace_service_pb2.ExportTraceServiceRequest,
    }[path]
    from google.protobuf import json_format

    msg = pb()
    # json_format reads ids as base64; only the structure matters for this round trip.
    for rs in parsed.get("resourceSpans", []):
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                span.pop("traceId", None), span.pop("spanId", None), span.pop("parentSpanId", None)
    for rl in parsed.get("resourceLogs", []):
        for sl in rl["scopeLogs"]:
            for rec in sl["logRecords"]:
                rec.pop("traceId", None), rec.pop("spanId", None)
    json_format.ParseDict(parsed, msg, ignore_unknown_fields=True)
    r = httpx.post(f"{server.url}{path}", content=msg.SerializeToString(), headers=PROTOBUF)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    assert response.FromString(r.content) == response()


def test_suggestion_event_with_bad_body_is_a_partial_success(server: BackgroundServer) -> None:
    body = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "eventName": "copilot.suggestion",
                                "body": {"stringValue": '{"id": "x", "claim": {"kind": "nonsense"}}'},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    r = httpx.post(f"{server.url}/v1/logs", json=body)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "not a valid Suggestion v1" in partial["errorMessage"]


def test_hex_ids_are_read_as_hex(tmp_path: Path) -> None:
    store = _core.SeriesStore()
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                    "spanId": "EEE19B7EC3C1B174",
                                    "name": "x",
                                    "kind": 2,
                                    "startTimeUnixNano": 1,
                                    "endTimeUnixNano": "2",
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    ).encode()
    report = store.ingest_otlp_traces(body, json=True)
    assert (report.accepted, report.rejected, report.message) == (1, 0, "")
    # A base64-looking id of the wrong length is an error, not silently wrong bytes.
    with pytest.raises(_core.DecodeError):
        store.ingest_otlp_traces(body.replace(b"EEE19B7EC3C1B174", b"7uGbfsPBsXQ="), json=True)


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/logs", "/v1/traces"])
def test_status_codes(server: BackgroundServer, path: str) -> None:
    url = f"{server.url}{path}"
    assert httpx.get(url).status_code == 405
    assert httpx.post(url, content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    r = httpx.post(url, content=b"\xff\xfe garbage", headers=PROTOBUF)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/x-protobuf"
    r = httpx.post(url, content=b"{not json", headers=JSONH)
    assert r.status_code == 400 and "message" in r.json()


def test_gzip_bomb_is_413_after_decompression(runtime: Runtime, server: BackgroundServer) -> None:
    runtime.settings.max_body_bytes = 1 << 20
    bomb = gzip.compress(b"\0" * (8 << 20))  # 8 KiB on the wire, 8 MiB inflated
    assert len(bomb) < 64 << 10
    r = httpx.post(f"{server.url}/v1/logs", content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    # Several gzip members are one body.
    req = logs_service_pb2.ExportLogsServiceRequest().SerializeToString()
    two = gzip.compress(req[: len(req) // 2]) + gzip.compress(req[len(req) // 2 :])
    r = httpx.post(f"{server.url}/v1/logs", content=two, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert r.status_code == 200


def test_full_ingest_queue_is_503_with_retry_after(runtime: Runtime, server: BackgroundServer) -> None:
    runtime.ingest_gate.max_requests = 0
    r = httpx.post(f"{server.url}/v1/metrics", content=b"", headers=PROTOBUF)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert runtime.ingest_gate.refused == 1
    runtime.ingest_gate.max_requests = 4
    assert httpx.post(f"{server.url}/v1/metrics", content=b"", headers=PROTOBUF).status_code == 200


@pytest.fixture
def secured(settings: Settings) -> Iterator[tuple[BackgroundServer, Runtime]]:
    settings.auth_tokens = [Secret("old-token-123"), Secret("new-token-456")]
    rt = Runtime(settings)
    with BackgroundServer(rt, settings.port) as srv:
        yield srv, rt
    rt.close()


def test_bearer_tokens(secured: tuple[BackgroundServer, Runtime], caplog: pytest.LogCaptureFixture) -> None:
    srv, rt = secured
    url = f"{srv.url}/v1/metrics"
    assert httpx.get(f"{srv.url}/healthz").status_code == 200
    r = httpx.post(url, content=b"", headers=PROTOBUF)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, content=b"", headers={**PROTOBUF, "Authorization": "Bearer old-token-12"})
    assert wrong.status_code == 401
    assert "old-token" not in wrong.text and "old-token" not in caplog.text
    for token in ("old-token-123", "new-token-456"):  # both, while rotating
        ok = httpx.post(url, content=b"", headers={**PROTOBUF, "Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    assert "old-token-123" not in repr(rt.settings) and "old-token-123" not in repr(rt.settings.auth_tokens)
    with grpc.insecure_channel(f"127.0.0.1:{rt.grpc_port}") as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        with pytest.raises(grpc.RpcError) as denied:
            export(b"")
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert export(b"", metadata=(("authorization", "Bearer new-token-456"),)) == b""


def test_series_cap_is_counted_and_visible(settings: Settings) -> None:
    settings.max_series = 3
    rt = Runtime(settings)
    try:
        with BackgroundServer(rt, settings.port) as srv:
            req = metrics_service_pb2.ExportMetricsServiceRequest()
            metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="q")
            for i in range(5):
                p = metric.gauge.data_points.add(time_unix_nano=1_700_000_000_000_000_000, as_double=1.0)
                p.attributes.add(key="queue").value.string_value = f"q{i}"
            r = httpx.post(f"{srv.url}/v1/metrics", content=req.SerializeToString(), headers=PROTOBUF)
            partial = metrics_service_pb2.ExportMetricsServiceResponse.FromString(r.content).partial_success
            assert partial.rejected_data_points == 2
            assert "series limit" in partial.error_message
            stats = httpx.get(f"{srv.url}/api/v1/series").json()["stats"]
            assert (stats["series"], stats["max_series"], stats["series_rejected"]) == (3, 3, 2)
    finally:
        rt.close()


# --- random and truncated bodies ---------------------------------------------------------


def _valid_bodies() -> list[bytes]:
    out = [
        (CONTRACTS / "otlp" / f).read_bytes()
        for f in ("example-metrics.json", "example-logs.json", "example-trace.json")
    ]
    return out


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decoder_survives_random_and_truncated_bodies(data: st.DataObject) -> None:
    store = _core.SeriesStore(max_series=1000)
    valid = data.draw(st.sampled_from(_valid_bodies()))
    body = data.draw(
        st.one_of(
            st.binary(max_size=2048),
            st.integers(0, len(valid)).map(lambda n: valid[:n]),
            st.binary(min_size=1, max_size=64).map(lambda junk: valid[: len(valid) // 2] + junk),
            st.binary(max_size=512).map(gzip.compress),
        )
    )
    as_json = data.draw(st.booleans())
    compressed = data.draw(st.booleans())
    for ingest in (store.ingest_otlp_metrics, store.ingest_otlp_traces):
        with contextlib.suppress(_core.DecodeError, _core.BodyTooLargeError):
            ingest(body, json=as_json, gzip=compressed, max_body_bytes=1 << 20)
    with contextlib.suppress(_core.DecodeError, _core.BodyTooLargeError):
        store.ingest_otlp_logs(body, json=as_json, gzip=compressed, max_body_bytes=1 << 20)


def test_http_never_answers_500_to_random_bodies(server: BackgroundServer) -> None:
    import random

    rng = random.Random(7)
    bodies = _valid_bodies()
    with httpx.Client() as client:
        for i in range(200):
            base = bodies[i % len(bodies)]
            cut = base[: rng.randrange(len(base) + 1)]
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(64))) if i % 3 == 0 else cut
            path = ("/v1/metrics", "/v1/logs", "/v1/traces")[i % 3]
            headers = JSONH if i % 2 else PROTOBUF
            r = client.post(f"{server.url}{path}", content=body, headers=headers)
            assert r.status_code in (200, 400), (path, body[:40], r.status_code, r.text)
