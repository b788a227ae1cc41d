"""A real Prometheus Alertmanager (Debian's ``prometheus-alertmanager``, installed by ``make
install``) delivers its webhooks to a running Referee: alerts posted to Alertmanager's API v2
become suggestions and verdicts, and resolving them closes the verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from referee.config import Settings
from referee.demo.run import BackgroundServer, free_port
from referee.service.runtime import Runtime
from tests.conftest import DEFAULT_RULES
from tests.peers.alertmanager import run_alertmanager, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def referee(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BackgroundServer]:
    monkeypatch.delenv("REFEREE_LOAD_PLUGINS", raising=False)
    settings = Settings.load(
        env={}, database=tmp_path / "referee.db", port=free_port(), rules=[DEFAULT_RULES]
    )
    rt = Runtime(settings)
    try:
        with BackgroundServer(rt, settings.port) as srv:
            yield srv
    finally:
        rt.close()


@pytest.fixture
def alertmanager(tmp_path: Path, referee: BackgroundServer) -> Iterator[str]:
    with run_alertmanager(tmp_path, f"{referee.url}/api/v1/sources/alertmanager") as url:
        yield url


def _alerts(starts: datetime, ends: datetime | None = None) -> list[dict[str, Any]]:
    out = []
    for name, service in (("HighLatency", "checkout"), ("HighErrorRate", "cart")):
        alert: dict[str, Any] = {
            "labels": {"alertname": name, "service_name": service, "severity": "page"},
            "annotations": {"summary": f"{name} on {service}"},
            "startsAt": starts.isoformat(),
            "generatorURL": "http://prometheus.example:9090/graph",
        }
        if ends is not None:
            alert["endsAt"] = ends.isoformat()
        out.append(alert)
    return out


def test_alertmanager_webhooks_become_verdicts_and_resolve_them(
    alertmanager: str, referee: BackgroundServer
) -> None:
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    r = httpx.post(f"{alertmanager}/api/v2/alerts", json=_alerts(starts))
    assert r.status_code == 200, r.text

    def verdicts() -> list[dict[str, Any]]:
        got = httpx.get(f"{referee.url}/api/v1/verdicts", params={"source": "alertmanager"}).json()
        return got["verdicts"]

    found = wait_for(lambda: len(verdicts()) == 2 and verdicts(), what="two verdicts from Alertmanager")
    fingerprints = {
        a["labels"]["alertname"]: a["fingerprint"] for a in httpx.get(f"{alertmanager}/api/v2/alerts").json()
    }
    by_service = {v["subject"]["service.name"]: v for v in found}
    assert set(by_service) == {"checkout", "cart"}
    assert by_service["checkout"]["claim_kind"] == "latency_high"
    assert by_service["cart"]["claim_kind"] == "error_rate_high"
    stamp = starts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert by_service["checkout"]["suggestion_id"] == f"{fingerprints['HighLatency']}@{stamp}"
    assert by_service["cart"]["suggestion_id"] == f"{fingerprints['HighErrorRate']}@{stamp}"
    # No data for these services: the rules cannot judge yet, and the 10m window is still open.
    for v in found:
        assert (v["verdict"], v["status"]) == ("inconclusive", "pending")

    # Resolve both: the same alerts with endsAt in the past.
    r = httpx.post(
        f"{alertmanager}/api/v2/alerts", json=_alerts(starts, ends=datetime.now(UTC) - timedelta(seconds=1))
    )
    assert r.status_code == 200, r.text

    def closed() -> bool:
        return all(v["status"] == "closed" for v in verdicts())

    wait_for(closed, what="the verdicts to be closed by resolved notifications")
    after = verdicts()
    assert len(after) == 2  # resolving creates no new decisions
    assert {v["decision_id"] for v in after} == {v["decision_id"] for v in found}
    assert {v["verdict"] for v in after} == {"inconclusive"}  # the verdict is kept
