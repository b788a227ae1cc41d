"""Verdicts reach Grafana exactly once through the durable outbox: when Grafana fails, when it
is slow, and across a restart of Referee; with the outbox in SQLite and in PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referee.config import Settings
from referee.models import Suggestion
from referee.outputs import delivery
from referee.service.runtime import Runtime
from tests.conftest import DEFAULT_RULES
from tests.peers.grafana_contract.server import GrafanaContractServer


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "backoff", lambda attempts: 0.0)


def grafana_settings(database: Path | str, grafana: GrafanaContractServer) -> Settings:
    env = {"GRAFANA_URL": grafana.url, "GRAFANA_TOKEN": grafana.token}
    return Settings.load(env=env, database=database, rules=[DEFAULT_RULES], grafana_timeout_s=0.5)


def suggestion(n: int) -> Suggestion:
    return Suggestion(
        id=f"s{n}",
        source="copilot",
        created_at=datetime.now(UTC),
        subject={"service.name": "web"},
        claim={"kind": "latency_high"},  # type: ignore[arg-type]
    )


def test_failed_deliveries_are_retried_until_they_land(
    database_url: Path | str, grafana_server: GrafanaContractServer
) -> None:
    rt = Runtime(grafana_settings(database_url, grafana_server))
    try:
        assert [s.name for s in rt.sinks] == ["grafana"]
        verdict, new = rt.submit(suggestion(1))
        assert new
        grafana_server.fail_next(500, count=2)
        assert rt.worker.run_once() == 0  # the look-up fails
        assert rt.worker.run_once() == 0  # and again
        assert rt.verdicts.outbox_depth() == 1
        assert rt.worker.run_once() == 1
        [row] = rt.verdicts.deliveries(verdict.decision_id)
        assert row["status"] == "delivered" and row["attempts"] == 3
        assert len(grafana_server.annotations) == 1
        assert grafana_server.annotations[int(str(row["ref"]))]["tags"][0] == "referee"
        # The same suggestion again is the same decision: nothing new to deliver.
        again, new = rt.submit(suggestion(1))
        assert (again.decision_id, new) == (verdict.decision_id, False)
        assert rt.worker.run_once() == 0
        assert len(grafana_server.annotations) == 1
        assert grafana_server.violations == []
    finally:
        rt.close()


def test_verdicts_decided_while_grafana_is_down_are_delivered_after_a_restart(
    database_url: Path | str, grafana_server: GrafanaContractServer
) -> None:
    settings = grafana_settings(database_url, grafana_server)
    first = Runtime(settings)
    try:
        for n in range(3):
            first.submit(suggestion(n))
        grafana_server.fail_next(503, count=3)
        first.worker.run_once()
        assert first.verdicts.outbox_depth() == 3
        assert grafana_server.annotations == {}
    finally:
        first.close()  # Referee stops with deliveries pending
    second = Runtime(settings)
    try:
        assert second.verdicts.outbox_depth() == 3
        assert second.worker.run_once() == 3
        assert second.verdicts.outbox_depth() == 0
        assert second.worker.run_once() == 0
        assert len(grafana_server.annotations) == 3
        assert grafana_server.violations == []
    finally:
        second.close()


def test_a_slow_grafana_does_not_get_duplicates(
    database_url: Path | str, grafana_server: GrafanaContractServer
) -> None:
    rt = Runtime(grafana_settings(database_url, grafana_server))
    try:
        rt.submit(suggestion(1))
        grafana_server.delay_next(0.0)
        grafana_server.delay_next(1.0)  # the POST answers after the 0.5 s timeout, but is applied
        assert rt.worker.run_once() == 0
        deadline = time.monotonic() + 5
        while not grafana_server.annotations and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rt.worker.run_once() == 1
        assert len(grafana_server.annotations) == 1
    finally:
        rt.close()
