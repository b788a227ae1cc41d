"""OpenTelemetry out with the real SDK exporters: verdict events, metrics and the decision span
from a `referee serve` process, configured only through the standard ``OTEL_*`` variables;
events survive a receiver outage through the outbox; and nothing starts when unconfigured."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from referee.config import OtelConfig, Settings
from referee.demo.telemetry import Incident, ServiceProfile
from referee.models import Suggestion
from referee.outputs import delivery, otel
from referee.service.runtime import Runtime
from tests.conftest import DEFAULT_RULES
from tests.peers.otlp_receiver import OtlpReceiver
from tests.peers.serve_process import referee_serve
from tests.service.test_service import send_history, suggestion

OTEL_VARS = [k for k in os.environ if k.startswith("OTEL_")]


@pytest.fixture
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in OTEL_VARS:
        monkeypatch.delenv(var)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def test_serve_exports_verdict_events_metrics_and_spans(tmp_path: Path, receiver: OtlpReceiver) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "referee-under-test",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    drop = ("GRAFANA_", "REFEREE_", "OTEL_")
    with referee_serve(tmp_path, DEFAULT_RULES, env=env, drop_env=drop) as served:
        url = served.url
        now_s = int(time.time()) // 60 * 60
        broken = ServiceProfile(
            "broken",
            rps=20,
            median_latency_s=0.05,
            peak_s_of_day=now_s % 86400,
            incidents=[Incident(now_s - 1800, now_s + 1, latency_factor=6.0)],
        )
        send_history(url, [broken], now_s)
        r = httpx.post(f"{url}/api/v1/suggestions", json=suggestion("b", "broken", "latency_high", now_s))
        assert r.status_code == 201, r.text
        verdict = r.json()
        # A repeat is received (counted) but not decided again.
        assert (
            httpx.post(
                f"{url}/api/v1/suggestions", json=suggestion("b", "broken", "latency_high", now_s)
            ).status_code
            == 200
        )

        def event() -> list[dict]:
            return [rec for rec in receiver.log_records() if rec.get("eventName") == "referee.verdict"]

        assert receiver.wait_for(lambda: len(event()) >= 1), receiver.received["/v1/logs"]
        assert receiver.wait_for(lambda: any(s["name"] == "referee.decide" for s in receiver.spans()))
        assert receiver.wait_for(
            lambda: (
                {"referee.verdicts", "referee.decision.duration", "referee.outbox.depth"}
                <= set(receiver.metrics())
            )
        )
        time.sleep(0.5)  # one more export cycle, to see that nothing is sent twice
    assert served.proc.returncode in (0, -15), served.output

    [rec] = event()  # exactly once
    a = rec["attrs"]
    assert a["referee.decision_id"] == verdict["decision_id"]
    assert a["referee.suggestion_id"] == "b"
    assert a["referee.source"] == "copilot-test"
    assert a["service.name"] == "broken"
    assert a["referee.rules_revision"] == verdict["rules_revision"]
    assert a["gen_ai.evaluation.score.label"] == verdict["verdict"] == "confirm"
    assert a["gen_ai.evaluation.name"] == ",".join(verdict["rule_ids"])
    assert a["gen_ai.evaluation.explanation"] == verdict["explanation"]
    assert a["gen_ai.evaluation.score.value"] == pytest.approx(verdict["evidence"]["score"])
    assert rec["body"] == {"stringValue": verdict["explanation"]}
    assert rec["severityText"] == "INFO"
    assert rec["resource"]["service.name"] == "referee-under-test"
    assert rec["resource"]["deployment.environment.name"] == "test"

    [span] = [s for s in receiver.spans() if s["name"] == "referee.decide"]
    assert span["attrs"]["referee.decision_id"] == verdict["decision_id"]
    assert span["attrs"]["gen_ai.evaluation.score.label"] == "confirm"

    metrics = receiver.metrics()

    def last(name: str, **want: str) -> float:
        points = [p for p in metrics[name] if all(p["attrs"].get(k) == v for k, v in want.items())]
        assert points, (name, want, metrics[name])
        p = points[-1]
        return float(p.get("asInt", p.get("asDouble", p.get("count", 0))))

    rule = ",".join(verdict["rule_ids"])
    assert last("referee.verdicts", **{"referee.verdict": "confirm", "referee.rule_id": rule}) == 1
    assert last("referee.suggestions.received", **{"referee.source": "copilot-test"}) == 2
    assert last("referee.decision.duration") == 1  # one decision: histogram count
    assert last("referee.ingest.points", **{"referee.outcome": "accepted"}) > 1000
    assert last("referee.ingest.points", **{"referee.outcome": "rejected"}) == 0
    assert last("referee.series.live") > 0
    assert last("referee.series.rejected") == 0
    assert "referee.outbox.depth" in metrics


def test_verdict_event_waits_in_the_outbox_while_the_receiver_is_down(
    settings: Settings, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, no_otel_env: None
) -> None:
    monkeypatch.setattr(delivery, "backoff", lambda attempts: 0.0)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")
    settings.otel = OtelConfig(endpoint=receiver.url)  # referee.yaml instead of the environment
    rt = Runtime(settings)
    try:
        assert [s.name for s in rt.sinks] == ["otel"]
        verdict, _ = rt.submit(
            Suggestion.model_validate(suggestion("x", "nodata", "latency_high", int(time.time())))
        )
        receiver.fail_next("/v1/logs", 400)  # a refusal the exporter does not retry itself
        assert rt.worker.run_once() == 0
        assert receiver.failures["/v1/logs"] == 1
        assert rt.verdicts.outbox_depth() == 1
        assert rt.worker.run_once() == 1
        assert rt.worker.run_once() == 0
        [rec] = receiver.log_records()
        assert rec["attrs"]["referee.decision_id"] == verdict.decision_id
        assert rec["attrs"]["gen_ai.evaluation.score.label"] == verdict.verdict
        [row] = rt.verdicts.deliveries(verdict.decision_id)
        assert row["status"] == "delivered" and row["attempts"] == 2
        # A new version of the verdict is a new event, exported once.
        rt.verdicts.revise(verdict.model_copy(update={"version": 2}), requeue=True)
        assert rt.worker.run_once() == 1
        assert rt.worker.run_once() == 0
        versions = [
            (r["attrs"]["referee.decision_id"], r["attrs"]["referee.version"]) for r in receiver.log_records()
        ]
        assert versions == [(verdict.decision_id, 1), (verdict.decision_id, 2)]
    finally:
        rt.close()


def test_nothing_is_set_up_without_configuration(settings: Settings, no_otel_env: None) -> None:
    before = {t.name for t in threading.enumerate()}
    rt = Runtime(settings)
    try:
        assert type(rt.telemetry) is otel.Telemetry
        assert rt.sinks == []
        rt.submit(Suggestion.model_validate(suggestion("y", "nodata", "latency_high", int(time.time()))))
        assert rt.verdicts.outbox_depth() == 0
        started = {t.name for t in threading.enumerate()} - before
        assert not [name for name in started if "Otel" in name or "otel" in name], started
    finally:
        rt.close()


@pytest.mark.parametrize(
    ("env", "configured", "expected"),
    [
        ({}, False, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, False, True),
        ({}, True, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False, False),
        ({"OTEL_SDK_DISABLED": "TRUE"}, True, False),
        ({"OTEL_SERVICE_NAME": "x"}, False, False),
    ],
)
def test_when_otel_is_on(settings: Settings, env: dict[str, str], configured: bool, expected: bool) -> None:
    settings.otel = OtelConfig() if configured else None
    assert otel.enabled(settings, env) is expected


def test_grpc_protocol_and_yaml_settings(settings: Settings) -> None:
    settings.otel = OtelConfig(endpoint="http://collector:4317", protocol="grpc", headers={"a": "b"})
    logs, metrics, spans = otel._exporters(settings, {})
    assert all("grpc" in type(e).__module__ for e in (logs, metrics, spans))
    for e in (logs, metrics, spans):
        e.shutdown()
    settings.otel = None
    logs, metrics, spans = otel._exporters(settings, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert "grpc" in type(logs).__module__
    for e in (logs, metrics, spans):
        e.shutdown()
    with pytest.raises(ValueError, match="http/json"):
        otel._exporters(settings, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    with pytest.raises(ValueError, match=r"otel\.protocol"):
        OtelConfig(protocol="udp")
