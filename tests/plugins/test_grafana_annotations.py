"""The Grafana plugin against the contract server: the annotations it writes (region or point,
on the mapped dashboard or the organisation, with their tags and text), how redelivery updates
them, and when the plugin provides a sink."""

from __future__ import annotations

import importlib.metadata
from datetime import timedelta
from typing import Any

import niquests
import pytest

import referee_grafana
from referee.config import GrafanaTarget, Secret, Settings
from referee.models import Evidence
from referee.plugins import plugin_manager
from referee_grafana import GrafanaAnnotationSink, GrafanaDeliveryError
from tests.peers.grafana_contract.server import GrafanaContractServer
from tests.plugins.grafana_cases import (
    CREATED_AT,
    PUBLIC_URL,
    SERVICE,
    WINDOW_END,
    WINDOW_START,
    auth,
    make_case,
    make_settings,
    make_sink,
    ms,
    no_nulls,
)


def test_region_annotation_on_mapped_dashboard_with_all_tags(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, dashboards={SERVICE: GrafanaTarget("svc-latency", 4)}))
    verdict, suggestion = make_case()

    ref = sink.deliver(verdict, suggestion, None)

    assert ref is not None
    stored = grafana.annotations[int(ref)]
    assert stored["dashboardUID"] == "svc-latency"
    assert stored["panelId"] == 4
    assert (stored["time"], stored["timeEnd"]) == (ms(WINDOW_START), ms(WINDOW_END))
    assert stored["tags"] == [
        "referee",
        "verdict:suppress",
        f"service:{SERVICE}",
        "rule:latency.within_band",
        "rule:latency.min_history",
        "claim:latency_high",
        f"decision:{verdict.decision_id}",
    ]
    assert stored["text"] == (
        f"Referee SUPPRESS latency_high on {SERVICE}: p99 http.server.request.duration observed 0.412 "
        "vs expected 0.398 (band 0.301–0.495, score 0.31, 10 samples, baseline streaming.hour_of_day) "
        "— p99 is inside the hour-of-day band; the copilot's claim is not supported. "
        f'<a href="{PUBLIC_URL}/api/v1/verdicts/{verdict.decision_id}">details</a>'
    )
    lookup, request = grafana.requests
    assert lookup.method == "GET"
    assert (request.method, request.path) == ("POST", "/api/annotations")
    assert request.body == sink.describe(verdict, suggestion)
    assert request.authorized


def test_unmapped_service_gets_an_organisation_annotation(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, dashboards={"other-service": GrafanaTarget("elsewhere", 1)}))
    verdict, suggestion = make_case()

    ref = sink.deliver(verdict, suggestion, None)

    lookup, request = grafana.requests
    assert lookup.method == "GET"
    assert set(request.body) == {"time", "timeEnd", "tags", "text"}
    assert no_nulls(request.body)
    assert grafana.annotations[int(ref or 0)]["dashboardUID"] is None


def test_subject_without_service_has_no_service_tag(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, dashboards={SERVICE: GrafanaTarget("svc-latency", 4)}))
    verdict, suggestion = make_case(service=None)

    ref = sink.deliver(verdict, suggestion, None)

    stored = grafana.annotations[int(ref or 0)]
    assert not [tag for tag in stored["tags"] if tag.startswith("service:")]
    assert stored["text"].startswith("Referee SUPPRESS latency_high: p99")


def test_redelivery_patches_the_annotation_and_keeps_tags(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, dashboards={SERVICE: GrafanaTarget("svc-latency", 4)}))
    verdict, suggestion = make_case()
    ref = sink.deliver(verdict, suggestion, None)
    later = WINDOW_END + timedelta(minutes=5)
    updated, _ = make_case(
        verdict="confirm", explanation="p99 left the band.", observed=0.9, window_end=later
    )

    again = sink.deliver(updated, suggestion, ref)

    assert again == ref
    assert len(grafana.annotations) == 1
    stored = grafana.annotations[int(ref or 0)]
    assert stored["tags"] == sink.describe(updated, suggestion)["tags"]
    assert "verdict:confirm" in stored["tags"]
    assert f"service:{SERVICE}" in stored["tags"]
    assert stored["text"].startswith("Referee CONFIRM latency_high")
    assert "p99 left the band." in stored["text"]
    assert (stored["time"], stored["timeEnd"]) == (ms(WINDOW_START), ms(later))
    assert stored["dashboardUID"] == "svc-latency"
    patch = grafana.requests[-1]
    assert (patch.method, patch.path) == ("PATCH", f"/api/annotations/{ref}")
    assert set(patch.body) == {"text", "tags", "time", "timeEnd"}
    assert patch.body["tags"]


def test_patch_of_an_annotation_deleted_in_grafana_creates_a_new_one(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana))
    verdict, suggestion = make_case()
    ref = sink.deliver(verdict, suggestion, None)
    with niquests.Session() as session:
        answer = session.delete(f"{grafana.url}/api/annotations/{ref}", headers=auth(grafana))
        assert answer.status_code == 200

    new_ref = sink.deliver(verdict, suggestion, ref)

    assert new_ref is not None and new_ref != ref
    assert list(grafana.annotations) == [int(new_ref)]
    assert [(r.method, r.path) for r in grafana.requests[-2:]] == [
        ("PATCH", f"/api/annotations/{ref}"),
        ("POST", "/api/annotations"),
    ]


def test_point_annotation_and_fallback_to_created_at(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana))
    same, suggestion = make_case(window_start=WINDOW_END, window_end=WINDOW_END)
    missing, _ = make_case(window_start=None, window_end=None)

    point = grafana.annotations[int(sink.deliver(same, suggestion, None) or 0)]
    fallback = grafana.annotations[int(sink.deliver(missing, suggestion, None) or 0)]

    assert point["time"] == point["timeEnd"] == ms(WINDOW_END)
    assert fallback["time"] == fallback["timeEnd"] == ms(CREATED_AT)


def test_evidence_with_claim_and_window() -> None:
    sink = GrafanaAnnotationSink(None, None, base_url=PUBLIC_URL)
    verdict, suggestion = make_case(claimed=0.9, window="10m", samples=1, observed=1234.5, expected=1200.0)

    text = sink.describe(verdict, suggestion)["text"]

    assert text.startswith(
        f"Referee SUPPRESS latency_high on {SERVICE}: p99 http.server.request.duration over 10m "
        "observed 1234 (claimed 0.9) vs expected 1200 (band 0.301–0.495, score 0.31, 1 sample, "
    )


def test_text_handles_missing_evidence_and_escapes_html() -> None:
    sink = GrafanaAnnotationSink(None, None, base_url=PUBLIC_URL)
    empty: dict[str, Any] = dict.fromkeys(Evidence.model_fields)
    verdict, suggestion = make_case(service="<b>shop</b>", explanation="p99 < band\nand  calm", **empty)

    body = sink.describe(verdict, suggestion)

    assert no_nulls(body)
    assert "None" not in body["text"]
    assert body["text"] == (
        "Referee SUPPRESS latency_high on &lt;b&gt;shop&lt;/b&gt; — p99 &lt; band and calm "
        f'<a href="{PUBLIC_URL}/api/v1/verdicts/{verdict.decision_id}">details</a>'
    )
    assert "service:<b>shop</b>" in body["tags"]


def test_unconfigured_sink_describes_but_refuses_to_deliver() -> None:
    sink = GrafanaAnnotationSink(None, None, base_url=PUBLIC_URL)
    verdict, suggestion = make_case()

    assert sink.describe(verdict, suggestion)["text"]
    with pytest.raises(GrafanaDeliveryError, match="not configured"):
        sink.deliver(verdict, suggestion, None)


@pytest.mark.parametrize(
    ("url", "token"),
    [(None, "glsa_x"), ("http://127.0.0.1:3000", None), ("http://127.0.0.1:3000", ""), ("", "glsa_x")],
)
def test_no_sink_unless_url_and_token_are_set(url: str | None, token: str | None) -> None:
    settings = Settings(grafana_url=url, grafana_token=None if token is None else Secret(token))

    assert referee_grafana.referee_verdict_sinks(settings) == []


def test_entry_point_loads_the_plugin(
    monkeypatch: pytest.MonkeyPatch, grafana: GrafanaContractServer
) -> None:
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="referee") if ep.name == "grafana"]
    assert entry_point.value == "referee_grafana"
    assert entry_point.load() is referee_grafana

    monkeypatch.setenv("REFEREE_LOAD_PLUGINS", "grafana")
    pm = plugin_manager()
    found = pm.hook.referee_verdict_sinks(settings=make_settings(grafana))
    sinks = [sink for per_plugin in found for sink in per_plugin]
    assert [type(sink) for sink in sinks] == [GrafanaAnnotationSink]
    assert sinks[0].name == "grafana"
