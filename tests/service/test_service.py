"""The service over real HTTP: OTLP/HTTP ingest (protocol rules, real SDK exporter), the REST
API, and ``referee serve`` started as a process."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from referee.config import Settings
from referee.demo.run import BackgroundServer
from referee.demo.telemetry import Incident, ServiceProfile, batches
from referee.service.runtime import Runtime
from referee.verdicts.store import VerdictStore
from tests.conftest import CONTRACTS, DEFAULT_RULES
from tests.peers.serve_process import referee_serve

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def gauge_request(value: float, service: str = "api", t_ns: int = 1_700_000_000_000_000_000) -> bytes:
    req = pb.ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    kv = rm.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    m = rm.scope_metrics.add().metrics.add()
    m.name = "queue.depth"
    p = m.gauge.data_points.add()
    p.time_unix_nano, p.as_double = t_ns, value
    return req.SerializeToString()


def test_protobuf_and_gzip_are_accepted(server: BackgroundServer) -> None:
    r = httpx.post(f"{server.url}/v1/metrics", content=gauge_request(3.0), headers=PROTOBUF)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    assert pb.ExportMetricsServiceResponse.FromString(r.content) == pb.ExportMetricsServiceResponse()
    body = gzip.compress(gauge_request(4.0, t_ns=1_700_000_060_000_000_000))
    r = httpx.post(f"{server.url}/v1/metrics", content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert r.status_code == 200
    series = httpx.get(f"{server.url}/api/v1/series", params={"metric": "queue.depth"}).json()["series"]
    assert [(s["attributes"]["service.name"], s["points"], s["last_value"]) for s in series] == [
        ("api", 2, 4.0)
    ]


def test_official_json_example(server: BackgroundServer) -> None:
    body = (CONTRACTS / "otlp" / "example-metrics.json").read_bytes()
    r = httpx.post(f"{server.url}/v1/metrics", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {}
    names = {(s["metric"], s["statistic"]) for s in httpx.get(f"{server.url}/api/v1/series").json()["series"]}
    assert ("my.gauge", "value") in names
    assert ("my.histogram", "count") in names
    # The exponential histogram takes the histogram path: per-stream count and roll-up quantiles.
    assert ("my.exponential.histogram", "count") in names
    assert ("my.exponential.histogram", "p50") in names


def test_partial_success_counts_rejected_points(server: BackgroundServer) -> None:
    r = httpx.post(f"{server.url}/v1/metrics", content=gauge_request(float("nan")), headers=PROTOBUF)
    assert r.status_code == 200
    resp = pb.ExportMetricsServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_data_points == 1
    assert "NaN" in resp.partial_success.error_message


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (PROTOBUF, b"\xff\xff\xff\xff", 400),
        ({"Content-Type": "application/json"}, b"{not json", 400),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip", 400),
        ({"Content-Type": "text/plain"}, b"x", 415),
        ({**PROTOBUF, "Content-Encoding": "br"}, b"x", 415),
    ],
)
def test_bad_requests_get_the_right_status(
    server: BackgroundServer, headers: dict[str, str], body: bytes, status: int
) -> None:
    r = httpx.post(f"{server.url}/v1/metrics", content=body, headers=headers)
    assert r.status_code == status
    if "json" in headers["Content-Type"]:
        assert r.json()["message"]
    else:
        assert status_pb2.Status.FromString(r.content).message


def test_non_post_is_405(server: BackgroundServer) -> None:
    assert httpx.get(f"{server.url}/v1/metrics").status_code == 405


def test_body_limit_applies_after_decompression(settings: Settings) -> None:
    settings.max_body_bytes = 1 << 20
    runtime = Runtime(settings)
    try:
        with BackgroundServer(runtime, settings.port) as srv:
            bomb = gzip.compress(b"\0" * (8 << 20))
            assert len(bomb) < settings.max_body_bytes
            r = httpx.post(
                f"{srv.url}/v1/metrics", content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}
            )
            assert r.status_code == 413
            big = b"\0" * ((1 << 20) + 1)
            assert httpx.post(f"{srv.url}/v1/metrics", content=big, headers=PROTOBUF).status_code == 413
    finally:
        runtime.close()


def test_real_sdk_exporter_feeds_histogram_rollups(server: BackgroundServer) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics", compression=Compression.Gzip)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "shop"}))
    try:
        check_rollups(server, provider)
    finally:
        provider.shutdown()


def check_rollups(server: BackgroundServer, provider: MeterProvider) -> None:
    hist = provider.get_meter("test").create_histogram("http.server.request.duration", unit="s")
    for i in range(100):
        status = 500 if i % 10 == 0 else 200
        hist.record(0.05 + i / 1000, {"http.request.method": "GET", "http.response.status_code": status})
    # Two collections: the first primes the cumulative streams, the second gives an interval.
    assert provider.force_flush()
    for _ in range(50):
        hist.record(0.2, {"http.request.method": "GET", "http.response.status_code": 200})
    assert provider.force_flush()
    # Roll-ups are per service and per minute: write this minute's bucket now.
    server.runtime.store.flush_events(int(time.time() * 1000) + 120_000)
    rows = httpx.get(f"{server.url}/api/v1/series", params={"metric": "http.server.request.duration"}).json()
    rollup = {
        s["statistic"]: s
        for s in rows["series"]
        if s["attributes"].get("service.name") == "shop"
        and "http.response.status_code" not in s["attributes"]
    }
    assert {"count", "rate", "mean", "p50", "p90", "p99", "error_ratio"} <= set(rollup)
    # Both exports fall in one minute: the first counts from the SDK's start time (100 requests),
    # the second adds exactly the 50 new ones.
    assert rollup["count"]["points"] == 1 and rollup["count"]["last_value"] == 150
    assert rollup["error_ratio"]["last_value"] == pytest.approx(10 / 150)
    assert 0.1 < rollup["p50"]["last_value"] <= 0.25
    assert rows["stats"]["points_rejected"] == 0


def send_history(url: str, services: list[ServiceProfile], now_s: int) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{url}/v1/metrics")
    try:
        for data, _ in batches(services, now_s - 4 * 86400, now_s, 300, 96, seed=3):
            assert exporter.export(data) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()


def suggestion(sid: str, service: str, kind: str, now_s: int) -> dict[str, Any]:
    return {
        "id": sid,
        "source": "copilot-test",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s)),
        "subject": {"service.name": service},
        "claim": {"kind": kind},
    }


def test_serve_process_end_to_end(tmp_path: Path) -> None:
    """`referee serve` as users run it, fed by the SDK exporter, answering the REST API."""
    with referee_serve(tmp_path, DEFAULT_RULES) as served:
        url = served.url
        now_s = int(time.time()) // 60 * 60
        services = [
            ServiceProfile("steady", rps=20, median_latency_s=0.05, peak_s_of_day=now_s % 86400),
            ServiceProfile(
                "broken",
                rps=20,
                median_latency_s=0.05,
                peak_s_of_day=now_s % 86400,
                incidents=[Incident(now_s - 1800, now_s + 1, latency_factor=6.0)],
            ),
        ]
        send_history(url, services, now_s)
        r = httpx.post(f"{url}/api/v1/suggestions", json=suggestion("a", "steady", "latency_high", now_s))
        assert r.status_code == 201, r.text
        steady = r.json()
        r = httpx.post(f"{url}/api/v1/suggestions", json=suggestion("b", "broken", "latency_high", now_s))
        broken = r.json()
        assert (steady["verdict"], broken["verdict"]) == ("suppress", "confirm")
        for v in (steady, broken):
            ev = v["evidence"]
            assert ev["observed"] is not None and ev["expected"] is not None and ev["samples"] > 0
            assert v["rules_revision"] and v["explanation"]
        # Idempotent on the source's id.
        again = httpx.post(f"{url}/api/v1/suggestions", json=suggestion("a", "steady", "latency_high", now_s))
        assert again.status_code == 200 and again.json()["decision_id"] == steady["decision_id"]
        listed = httpx.get(f"{url}/api/v1/verdicts").json()["verdicts"]
        assert {v["decision_id"] for v in listed} == {steady["decision_id"], broken["decision_id"]}
        one = httpx.get(f"{url}/api/v1/verdicts/{broken['decision_id']}").json()
        assert one["verdict"] == "confirm"
        assert httpx.get(f"{url}/api/v1/verdicts/nope").status_code == 404
        bad = httpx.post(f"{url}/api/v1/suggestions", json={"id": "x", "claim": {"kind": "vibes"}})
        assert bad.status_code == 422
        assert {d["loc"] for d in bad.json()["details"]} >= {"subject", "claim.kind"}
        assert httpx.post(f"{url}/api/v1/suggestions", content=b"{").status_code == 400
    assert served.proc.returncode in (0, -15), served.output
    # The verdicts outlive the process: they are in SQLite.
    stored = VerdictStore(tmp_path / "r.db")
    try:
        assert {v.verdict for v in stored.latest()} == {"suppress", "confirm"}
    finally:
        stored.close()
