"""The Grafana contract server itself: it flags what violates Grafana's OpenAPI contract and
answers valid requests as Grafana does, so that "no violations" in the plugin tests means
something."""

from __future__ import annotations

from typing import Any

import niquests
import pytest
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaBadInputError

from tests.peers.grafana_contract.server import GrafanaContractServer
from tests.plugins.grafana_cases import auth


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
