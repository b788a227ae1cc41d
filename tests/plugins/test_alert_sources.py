"""The Alertmanager and Grafana Alerting source plugins, over HTTP: the contract examples become
suggestions, are idempotent on fingerprint + startsAt, resolved alerts close verdicts, the label
mapping follows ``sources.<name>``, and bad payloads get a 4xx with the reason (never a 5xx)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from referee.config import Settings
from referee.demo.run import BackgroundServer, free_port
from referee.service.app import build_app
from referee.service.runtime import Runtime
from tests.conftest import CONTRACTS, DEFAULT_RULES

AM = "/api/v1/sources/alertmanager"
GA = "/api/v1/sources/grafana-alerting"


def am_example() -> dict[str, Any]:
    return json.loads((CONTRACTS / "examples" / "alertmanager-webhook-v4.example.json").read_text())


def grafana_example() -> dict[str, Any]:
    return json.loads((CONTRACTS / "examples" / "grafana-alerting-webhook.example.json").read_text())


def resolved(payload: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    out["status"] = "resolved"
    for alert in out["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-01-01T12:30:00Z"
    return out


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("REFEREE_LOAD_PLUGINS", raising=False)
    started: list[tuple[Runtime, BackgroundServer]] = []

    def start(**overrides: Any) -> BackgroundServer:
        settings = Settings.load(
            env={},
            database=tmp_path / f"db{len(started)}.sqlite",
            port=free_port(),
            rules=[DEFAULT_RULES],
            **overrides,
        )
        rt = Runtime(settings)
        srv = BackgroundServer(rt, settings.port).__enter__()
        started.append((rt, srv))
        return srv

    yield start
    for rt, srv in started:
        srv.__exit__(None, None, None)
        rt.close()


def test_alertmanager_example_becomes_a_suggestion_once_and_resolves(serve: Any) -> None:
    srv = serve()
    r = httpx.post(srv.url + AM, json=am_example())
    assert r.status_code == 200, r.text
    [v] = r.json()["verdicts"]
    assert v["source"] == "alertmanager"
    assert v["suggestion_id"] == "a1b2c3d4e5f60708@2026-01-01T12:00:00.000000Z"
    assert v["subject"] == {"service.name": "checkout"}
    assert v["claim_kind"] == "latency_high"
    assert v["status"] == "settled"  # startsAt is long past: the claim window is complete

    # Alertmanager re-sends the group (repeat_interval, retries): the same decision comes back.
    again = httpx.post(srv.url + AM, json=am_example()).json()["verdicts"]
    assert [x["decision_id"] for x in again] == [v["decision_id"]]
    listed = httpx.get(srv.url + "/api/v1/verdicts", params={"source": "alertmanager"}).json()["verdicts"]
    assert len(listed) == 1

    r = httpx.post(srv.url + AM, json=resolved(am_example()))
    assert r.status_code == 200
    body = r.json()
    assert body["verdicts"] == [] and body["resolved_unknown"] == []
    assert [(c["decision_id"], c["status"]) for c in body["closed"]] == [(v["decision_id"], "closed")]
    stored = httpx.get(f"{srv.url}/api/v1/verdicts/{v['decision_id']}").json()
    assert (stored["status"], stored["verdict"]) == ("closed", v["verdict"])

    # A resolved alert Referee never saw is reported, not an error.
    other = resolved(am_example())
    other["alerts"][0]["fingerprint"] = "ffffffffffffffff"
    assert httpx.post(srv.url + AM, json=other).json()["resolved_unknown"] == [
        "ffffffffffffffff@2026-01-01T12:00:00.000000Z"
    ]


def test_grafana_alerting_example_and_observed_value(serve: Any) -> None:
    srv = serve(sources={"grafana_alerting": {"observed_value": "B"}})
    r = httpx.post(srv.url + GA, json=grafana_example())
    assert r.status_code == 200, r.text
    [v] = r.json()["verdicts"]
    assert v["source"] == "grafana-alerting"
    # No service label in the example: the subject falls back to the alert's other labels.
    assert v["subject"] == {"team": "blue", "zone": "us-1"}
    assert v["claim_kind"] == "saturation_high"  # "High memory usage"
    assert v["evidence"]["claimed"] == pytest.approx(44.23943737541908)
    assert v["suggestion_id"] == "c6eadffa33fcdf37@2021-10-12T07:51:03.157076Z"
    assert (
        httpx.post(srv.url + GA, json=grafana_example()).json()["verdicts"][0]["decision_id"]
        == (v["decision_id"])
    )
    closed = httpx.post(srv.url + GA, json=resolved(grafana_example())).json()["closed"]
    assert [c["status"] for c in closed] == ["closed"]


def test_the_mapping_is_configurable(serve: Any) -> None:
    srv = serve(
        sources={
            "alertmanager": {
                "source": "prod-am",
                "subject": {"service.name": ["app"], "cloud.region": ["region"]},
                "claims": [
                    {
                        "match": {"alertname": "HighLatency", "severity": "page|critical"},
                        "kind": "error_rate_high",
                        "signal": "http.server.request.duration",
                        "statistic": "error_ratio",
                    }
                ],
                "created_at": "received",
            }
        }
    )
    payload = am_example()
    payload["alerts"][0]["labels"].update({"app": "cart", "region": "eu-west-1"})
    [v] = httpx.post(srv.url + AM, json=payload).json()["verdicts"]
    assert v["source"] == "prod-am"
    assert v["subject"] == {"service.name": "cart", "cloud.region": "eu-west-1"}
    assert v["claim_kind"] == "error_rate_high"
    # A label naming the claim kind wins over the claims list.
    payload["alerts"][0]["labels"]["referee_claim"] = "traffic_drop"
    payload["alerts"][0]["fingerprint"] = "0000000000000001"
    [v] = httpx.post(srv.url + AM, json=payload).json()["verdicts"]
    assert v["claim_kind"] == "traffic_drop"


@pytest.mark.parametrize(
    ("raw", "config", "message"),
    [
        ({"claims": [{"match": {"alertname": "("}, "kind": "anomaly"}]}, "alertmanager", "match.alertname"),
        (
            {"claims": [{"match": {"a": "b"}, "kind": "cpu"}]},
            "alertmanager",
            "sources.alertmanager.claims.0.kind",
        ),
        ({"subjects": {}}, "grafana_alerting", "sources.grafana_alerting.subjects"),
    ],
)
def test_bad_mapping_configuration_fails_at_start(
    tmp_path: Path, raw: dict[str, Any], config: str, message: str
) -> None:
    settings = Settings.load(env={}, database=tmp_path / "x.db", rules=[DEFAULT_RULES], sources={config: raw})
    rt = Runtime(settings)
    try:
        with pytest.raises(ValueError, match=message.replace(".", r"\.")):
            build_app(rt)
    finally:
        rt.close()


def _bad(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def _without(key: str) -> dict[str, Any]:
    p = am_example()
    del p[key]
    return p


def _alert(**changes: Any) -> dict[str, Any]:
    p = am_example()
    p["alerts"][0].update(changes)
    return p


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "body is not JSON"),
        (b"\xff\xfe", 400, "body is not JSON"),
        ({**am_example(), "version": "3"}, 400, 'expected payload version "4"'),
        (_without("alerts"), 422, "alerts"),
        ([1, 2], 422, "invalid payload"),
        (_alert(status="pending"), 422, "alerts.0.status"),
        (_alert(startsAt="yesterday"), 422, "alerts.0.startsAt"),
        (_alert(labels={}), 422, "alerts.0.labels"),
        (_alert(labels={"alertname": 5}), 422, "alerts.0.labels.alertname"),
    ],
)
def test_bad_alertmanager_payloads_get_a_4xx_with_the_reason(
    serve: Any, body: Any, status: int, needle: str
) -> None:
    srv = serve()
    r = httpx.post(srv.url + AM, content=_bad(body), headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in str(r.json())
    assert httpx.get(srv.url + "/api/v1/verdicts").json()["verdicts"] == []
    # The service is still fine.
    assert httpx.post(srv.url + AM, json=am_example()).status_code == 200


def test_bad_grafana_payloads_get_a_4xx(serve: Any) -> None:
    srv = serve()
    r = httpx.post(srv.url + GA, json={**grafana_example(), "version": "4"})
    assert r.status_code == 400 and 'expected Grafana webhook version "1"' in r.json()["error"]
    r = httpx.post(srv.url + GA, json={**grafana_example(), "alerts": "none"})
    assert r.status_code == 422 and r.json()["details"][0]["loc"] == "alerts"
