"""What the Grafana plugin tests build: settings pointing at the contract server, the sink, and a
verdict with its suggestion (``make_case``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import referee_grafana
from referee.config import GrafanaTarget, Secret, Settings
from referee.models import Band, Claim, Evidence, Suggestion, Verdict, VerdictValue
from referee_grafana import GrafanaAnnotationSink
from tests.peers.grafana_contract.server import GrafanaContractServer

SERVICE = "web-app-21"
WINDOW_START = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(minutes=10)
CREATED_AT = WINDOW_END + timedelta(seconds=30)
PUBLIC_URL = "https://referee.example.test"


def make_settings(
    server: GrafanaContractServer | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    timeout_s: float = 5.0,
    dashboards: dict[str, GrafanaTarget] | None = None,
) -> Settings:
    if server is not None:
        url = url or server.url
        token = token or server.token
    return Settings(
        public_url=PUBLIC_URL,
        grafana_url=url,
        grafana_token=Secret(token) if token else None,
        grafana_timeout_s=timeout_s,
        grafana_dashboards=dashboards or {},
    )


def make_sink(settings: Settings) -> GrafanaAnnotationSink:
    sinks = referee_grafana.referee_verdict_sinks(settings)
    assert len(sinks) == 1
    sink = sinks[0]
    assert isinstance(sink, GrafanaAnnotationSink)
    return sink


def make_case(
    *,
    service: str | None = SERVICE,
    verdict: VerdictValue = "suppress",
    explanation: str = "p99 is inside the hour-of-day band; the copilot's claim is not supported.",
    **evidence: Any,
) -> tuple[Verdict, Suggestion]:
    subject = {"service.name": service} if service else {"k8s.namespace.name": "shop"}
    suggestion = Suggestion(
        id="copilot-123",
        source="holmesgpt",
        created_at=CREATED_AT,
        subject=subject,
        claim=Claim(
            kind="latency_high", signal="http.server.request.duration", statistic="p99", observed=0.9
        ),
    )
    fields: dict[str, Any] = {
        "metric": "http.server.request.duration",
        "statistic": "p99",
        "observed": 0.412,
        "expected": 0.398,
        "band": Band(lower=0.301, upper=0.495),
        "score": 0.31,
        "samples": 10,
        "baseline_model": "streaming.hour_of_day",
        "window_start": WINDOW_START,
        "window_end": WINDOW_END,
    }
    fields.update(evidence)
    result = Verdict(
        decision_id=str(uuid.uuid4()),  # unique like real decisions: the sink looks them up by tag
        suggestion_id=suggestion.id,
        source=suggestion.source,
        subject=subject,
        claim_kind="latency_high",
        verdict=verdict,
        rule_ids=["latency.within_band", "latency.min_history"],
        evidence=Evidence(**fields),
        explanation=explanation,
        trace=[],
        rules_revision="rev-1",
        decided_at=CREATED_AT,
    )
    return result, suggestion


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def no_nulls(value: Any) -> bool:
    if isinstance(value, dict):
        return all(v is not None and no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(v is not None and no_nulls(v) for v in value)
    return True


def auth(server: GrafanaContractServer) -> dict[str, str]:
    """The Authorization header the contract server expects."""
    return {"Authorization": f"Bearer {server.token}"}
