"""The Grafana plugin against the contract server: what it sends, how it updates, how it fails.

Every test through the ``grafana`` fixture ends by asserting that the server saw no request
violating Grafana's OpenAPI contract. The last tests check the server itself, so that "no
violations" means something.
"""

from __future__ import annotations

import importlib.metadata
import logging
import socket
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import niquests
import pytest
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaBadInputError

import referee_grafana
from referee.config import GrafanaTarget, Secret, Settings
from referee.hookspecs import SinkRetryableError
from referee.models import Band, Claim, Evidence, Suggestion, Verdict, VerdictValue
from referee.plugins import plugin_manager
from referee_grafana import GrafanaAnnotationSink, GrafanaDeliveryError, GrafanaRetryableError
from tests.grafana_contract.server import GrafanaContractServer

SERVICE = "web-app-21"
WINDOW_START = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(minutes=10)
CREATED_AT = WINDOW_END + timedelta(seconds=30)
PUBLIC_URL = "https://referee.example.test"


@pytest.fixture
def grafana(grafana_server: GrafanaContractServer) -> Iterator[GrafanaContractServer]:
    yield grafana_server
    assert grafana_server.violations == []
    assert grafana_server.errors == []


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


# -- writing annotations ----------------------------------------------------------------------


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


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_throttling_are_retryable(grafana: GrafanaContractServer, status: int) -> None:
    sink = make_sink(make_settings(grafana))
    verdict, suggestion = make_case()
    grafana.fail_next(status, retry_after=7)

    with pytest.raises(SinkRetryableError) as caught:
        sink.deliver(verdict, suggestion, None)

    assert isinstance(caught.value, GrafanaRetryableError)
    assert caught.value.status == status
    assert caught.value.retry_after == 7
    assert grafana.annotations == {}
    assert sink.deliver(verdict, suggestion, None) is not None  # the retry goes through


def test_patch_failing_with_500_is_retryable_and_does_not_duplicate(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana))
    verdict, suggestion = make_case()
    ref = sink.deliver(verdict, suggestion, None)
    grafana.fail_next(500)

    with pytest.raises(SinkRetryableError):
        sink.deliver(verdict, suggestion, ref)

    assert list(grafana.annotations) == [int(ref or 0)]


def test_slow_grafana_times_out_as_retryable(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, timeout_s=0.5))
    verdict, suggestion = make_case()
    grafana.delay_next(5.0)

    started = time.monotonic()
    with pytest.raises(SinkRetryableError, match=r"no answer within 0\.5 s"):
        sink.deliver(verdict, suggestion, None)

    assert time.monotonic() - started < 3.0
    assert [r.method for r in grafana.requests] == ["GET"]


def test_unreachable_grafana_is_retryable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = make_sink(make_settings(url=f"http://127.0.0.1:{port}", token="glsa_unreachable", timeout_s=0.5))
    verdict, suggestion = make_case()

    with pytest.raises(SinkRetryableError):
        sink.deliver(verdict, suggestion, None)


def test_wrong_token_is_a_permanent_error(grafana: GrafanaContractServer) -> None:
    sink = make_sink(make_settings(grafana, token="glsa_wrong_token_0123456789"))
    verdict, suggestion = make_case()

    with pytest.raises(GrafanaDeliveryError) as caught:
        sink.deliver(verdict, suggestion, None)

    assert not isinstance(caught.value, SinkRetryableError)
    assert caught.value.status == 401
    assert "glsa_wrong_token_0123456789" not in str(caught.value)
    assert grafana.requests[-1].authorized is False
    assert grafana.annotations == {}


@pytest.mark.parametrize("status", [400, 403, 404, 413])
def test_other_client_errors_are_permanent(grafana: GrafanaContractServer, status: int) -> None:
    sink = make_sink(make_settings(grafana))
    verdict, suggestion = make_case()
    grafana.fail_next(status)

    with pytest.raises(GrafanaDeliveryError) as caught:
        sink.deliver(verdict, suggestion, None)

    assert caught.value.status == status
    assert not isinstance(caught.value, SinkRetryableError)


def test_token_never_leaks(grafana: GrafanaContractServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(grafana, timeout_s=0.5)
    sink = make_sink(settings)
    verdict, suggestion = make_case()
    token = grafana.token
    failures: list[BaseException] = []

    ref = sink.deliver(verdict, suggestion, None)
    sink.deliver(verdict, suggestion, ref)
    # A server (or proxy) that echoes the Authorization header back in its error.
    for status in (500, 401, 403, 400, 429):
        grafana.fail_next(status, message=f"rejected Authorization: Bearer {token}")
        with pytest.raises((SinkRetryableError, GrafanaDeliveryError)) as caught:
            sink.deliver(verdict, suggestion, None)
        failures.append(caught.value)
    grafana.delay_next(3.0)
    with pytest.raises(SinkRetryableError) as timed_out:
        sink.deliver(verdict, suggestion, None)
    failures.append(timed_out.value)

    for shown in (repr(sink), str(sink), repr(settings), str(settings), caplog.text):
        assert token not in shown
    for failure in failures:
        assert token not in str(failure)
        assert token not in repr(failure)
        assert token not in "".join(traceback.format_exception(failure))
    assert "**********" in str(failures[0])


# -- plugin discovery --------------------------------------------------------------------------


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


# -- the contract server itself ----------------------------------------------------------------


def auth(server: GrafanaContractServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def test_server_flags_the_nulls_grafana_client_sends(grafana_server: GrafanaContractServer) -> None:
    api = GrafanaApi.from_url(grafana_server.url, credential=grafana_server.token)
    try:
        with pytest.raises(GrafanaBadInputError):
            api.annotations.add_annotation(text="sent with nulls")
    finally:
        api.client.s.close()

    [violation] = grafana_server.violations
    assert (violation.method, violation.path) == ("POST", "/api/annotations")
    assert violation.body == {
        "panelId": None,
        "time": None,
        "timeEnd": None,
        "tags": [],
        "text": "sent with nulls",
    }
    assert "panelId" in violation.errors[0] and "time" in violation.errors[0]
    assert grafana_server.annotations == {}


def test_server_flags_malformed_json_and_missing_auth(grafana_server: GrafanaContractServer) -> None:
    url = f"{grafana_server.url}/api/annotations"
    with niquests.Session() as session:
        malformed = session.post(
            url, data=b'{"text": ', headers={**auth(grafana_server), "Content-Type": "application/json"}
        )
        anonymous = session.post(url, json={"text": "who am I"})
        wrong_query = session.get(url, params={"limit": "many"}, headers=auth(grafana_server))

    assert malformed.status_code == 400
    assert anonymous.status_code == 401
    assert wrong_query.status_code == 400
    assert [v.errors[0].split(":")[0] for v in grafana_server.violations] == [
        "RequestBodyValidationError",
        "SecurityValidationError",
        "ParameterValidationError",
    ]
    assert grafana_server.annotations == {}


def test_server_answers_like_grafana(grafana: GrafanaContractServer) -> None:
    url = f"{grafana.url}/api/annotations"
    with niquests.Session() as session:
        session.headers["Authorization"] = auth(grafana)["Authorization"]
        empty = session.post(url, json={"text": ""})
        assert (empty.status_code, empty.json()) == (400, {"message": "Failed to save annotation"})

        first = session.post(
            url,
            json={"text": "a", "tags": ["referee", "x"], "time": 1000, "timeEnd": 2000, "dashboardUID": "d"},
        ).json()
        second = session.post(url, json={"text": "b", "tags": ["referee"], "time": 5000}).json()
        assert first["message"] == "Annotation added"
        a, b = first["id"], second["id"]

        def found(**params: Any) -> list[int]:
            answer = session.get(url, params=params)
            assert answer.status_code == 200
            return [item["id"] for item in answer.json()]

        assert found() == [b, a]
        assert found(tags=["referee", "x"]) == [a]
        assert found(tags=["x", "nope"], matchAny="true") == [a]
        assert found(**{"from": 1500, "to": 3000}) == [a]
        assert found(dashboardUID="d") == [a]
        assert found(limit=1) == [b]

        # PATCH: empty text and zero times change nothing, "tags": [] clears the tags.
        patched = session.patch(f"{url}/{a}", json={"text": "", "time": 0, "timeEnd": 0, "tags": []})
        assert (patched.status_code, patched.json()) == (200, {"message": "Annotation patched"})
        assert grafana.annotations[a] | {"updated": 0} == grafana.annotations[a] | {
            "text": "a",
            "time": 1000,
            "timeEnd": 2000,
            "tags": [],
            "updated": 0,
        }
        assert session.patch(f"{url}/999", json={"text": "x"}).status_code == 404
        assert session.get(f"{url}/{b}").json()["text"] == "b"
        assert session.delete(f"{url}/{b}").json() == {"message": "Annotation deleted"}
        assert session.get(f"{url}/{b}").status_code == 404

    assert [r.method for r in grafana.requests].count("PATCH") == 2


def test_a_retry_after_a_timed_out_post_does_not_duplicate(grafana: GrafanaContractServer) -> None:
    """The POST times out on our side but Grafana writes it anyway; the retry finds it by its
    decision tag and updates it instead of writing a second annotation."""
    sink = make_sink(make_settings(grafana, timeout_s=0.3))
    verdict, suggestion = make_case()
    grafana.delay_next(0.0)  # the look-up before the POST answers at once...
    grafana.delay_next(1.0)  # ...the POST only after the client gave up
    with pytest.raises(SinkRetryableError):
        sink.deliver(verdict, suggestion, None)
    deadline = time.monotonic() + 5
    while not grafana.annotations and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow server finishes writing
    ref = sink.deliver(verdict, suggestion, None)
    assert len(grafana.annotations) == 1
    assert ref == str(next(iter(grafana.annotations)))
