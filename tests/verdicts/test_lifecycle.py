"""The verdict lifecycle: a suggestion decided before its claim window is complete is pending,
is decided again as data arrives, changes version (and its Grafana annotation, once) when the
verdict changes, settles after ``lifecycle.settle_after``, and is closed by its source."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from referee.config import LifecycleConfig, Settings
from referee.demo.run import BackgroundServer, free_port
from referee.models import Suggestion
from referee.outputs import delivery
from referee.service.runtime import Runtime
from tests.conftest import DEFAULT_RULES
from tests.peers.grafana_contract.server import GrafanaContractServer

METRIC = "http.server.request.duration"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "backoff", lambda attempts: 0.0)


def make_runtime(tmp_path: Path, grafana: GrafanaContractServer | None = None) -> Runtime:
    env = {"GRAFANA_URL": grafana.url, "GRAFANA_TOKEN": grafana.token} if grafana else {}
    settings = Settings.load(
        env=env,
        database=tmp_path / "referee.db",
        rules=[DEFAULT_RULES],
        port=free_port(),
        lifecycle={"settle_after": "15m", "reevaluate_s": 3600},
    )
    return Runtime(settings)


def p99_history(rt: Runtime, service: str, end: datetime, spike: bool) -> None:
    """An hour of per-minute p99 around 0.2 s, the last ten minutes at 1 s when ``spike``."""
    rng = random.Random(7)
    ts = [int((end - timedelta(minutes=59 - i)).timestamp() * 1000) for i in range(60)]
    values = [0.2 + rng.uniform(-0.01, 0.01) for _ in range(60)]
    if spike:
        values[-10:] = [1.0] * 10
    assert rt.store.ingest_points(METRIC, "p99", {"service.name": service}, ts, values) == 60


def latency(service: str, created_at: datetime, n: int = 1) -> Suggestion:
    return Suggestion(
        id=f"s-{service}-{n}",
        source="copilot",
        created_at=created_at,
        subject={"service.name": service},
        claim={"kind": "latency_high"},  # type: ignore[arg-type]
    )


def test_settings_parse_durations() -> None:
    cfg = Settings.load(env={"REFEREE_LIFECYCLE": "{settle_after: 2m, reevaluate_s: 5s}"}).lifecycle
    assert (cfg.settle_after, cfg.reevaluate_s) == (120.0, 5.0)
    with pytest.raises(ValueError, match=r"lifecycle\.settle_after"):
        LifecycleConfig(settle_after="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lifecycle: unknown keys settle"):
        Settings.load(env={}, lifecycle={"settle": "1m"})


def test_a_verdict_whose_window_is_complete_is_settled_at_once(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    try:
        old = datetime.now(UTC) - timedelta(hours=1)
        p99_history(rt, "web", old, spike=True)
        verdict, _ = rt.submit(latency("web", old))
        assert (verdict.verdict, verdict.status, verdict.version, verdict.settles_at) == (
            "confirm",
            "settled",
            1,
            None,
        )
        assert rt.lifecycle.run_once().evaluated == 0
    finally:
        rt.close()


def test_pending_verdict_changes_once_and_patches_its_annotation(
    tmp_path: Path, grafana_server: GrafanaContractServer
) -> None:
    rt = make_runtime(tmp_path, grafana_server)
    try:
        now = datetime.now(UTC)
        first, _ = rt.submit(latency("web", now))
        # No data yet: the evidence is missing, and the 10m window has just begun.
        assert (first.verdict, first.status, first.version) == ("inconclusive", "pending", 1)
        # settles_at = max(created_at + 10m window, decided_at + 15m settle_after)
        assert first.settles_at is not None
        assert now + timedelta(minutes=15) <= first.settles_at < now + timedelta(minutes=15, seconds=5)
        assert rt.worker.run_once() == 1
        [post] = [r for r in grafana_server.requests if r.method == "POST"]
        [annotation_id] = grafana_server.annotations
        assert "verdict:inconclusive" in grafana_server.annotations[annotation_id]["tags"]

        # Nothing has changed: re-evaluation stores nothing and delivers nothing.
        assert rt.lifecycle.run_once(now + timedelta(seconds=30)).changed == 0
        assert rt.worker.run_once() == 0

        # The data for the window arrives late: the verdict becomes a confirm, version 2.
        p99_history(rt, "web", now, spike=True)
        done = rt.lifecycle.run_once(now + timedelta(minutes=1))
        assert (done.evaluated, done.changed, done.settled) == (1, 1, 0)
        second = rt.verdicts.get(first.decision_id)
        assert second is not None
        assert (second.verdict, second.status, second.version) == ("confirm", "pending", 2)
        assert second.rules_revision == rt.rules.revision
        assert rt.verdicts.outbox_depth() == 1

        # Its delivery goes out once, as a PATCH of the same annotation, and only once.
        assert rt.worker.run_once() == 1
        assert rt.worker.run_once() == 0
        patches = [r for r in grafana_server.requests if r.method == "PATCH"]
        assert [r.path for r in patches] == [f"/api/annotations/{annotation_id}"]
        assert list(grafana_server.annotations) == [annotation_id]
        tags = grafana_server.annotations[annotation_id]["tags"]
        assert "verdict:confirm" in tags and "referee" in tags and "verdict:inconclusive" not in tags
        assert post is not None and grafana_server.violations == []

        # Settling: the first pass at or after settles_at is the last; same value, no new version.
        assert second.settles_at is not None
        done = rt.lifecycle.run_once(second.settles_at)
        assert (done.evaluated, done.changed, done.settled) == (1, 0, 1)
        settled = rt.verdicts.get(first.decision_id)
        assert settled is not None and (settled.status, settled.version) == ("settled", 2)
        assert rt.lifecycle.run_once(second.settles_at + timedelta(hours=1)).evaluated == 0
        assert rt.worker.run_once() == 0
        history = rt.verdicts.history(first.decision_id)
        assert [(v.version, v.verdict) for v in history] == [(1, "inconclusive"), (2, "confirm")]
    finally:
        rt.close()


def test_a_verdict_that_changes_at_settle_time_is_stored_settled(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    try:
        now = datetime.now(UTC)
        first, _ = rt.submit(latency("api", now))
        assert first.status == "pending" and first.settles_at is not None
        p99_history(rt, "api", now, spike=False)
        done = rt.lifecycle.run_once(first.settles_at + timedelta(seconds=1))
        assert (done.changed, done.settled) == (1, 1)
        final = rt.verdicts.get(first.decision_id)
        assert final is not None and (final.verdict, final.status, final.version) == (
            "suppress",
            "settled",
            2,
        )
    finally:
        rt.close()


def test_closed_verdicts_are_kept_and_no_longer_reevaluated(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    try:
        now = datetime.now(UTC)
        first, _ = rt.submit(latency("db", now))
        closed = rt.resolve("copilot", first.suggestion_id)
        assert closed is not None and (closed.status, closed.verdict) == ("closed", first.verdict)
        assert rt.resolve("copilot", "never-seen") is None
        p99_history(rt, "db", now, spike=True)
        assert rt.lifecycle.run_once(now + timedelta(hours=1)).evaluated == 0
        stored = rt.verdicts.get(first.decision_id)
        assert stored is not None and (stored.status, stored.verdict) == ("closed", "inconclusive")
    finally:
        rt.close()


def test_background_loop_and_http_history(tmp_path: Path) -> None:
    """The Runtime's own loop re-evaluates; GET /api/v1/verdicts/{id} shows status and history."""
    settings = Settings.load(
        env={},
        database=tmp_path / "referee.db",
        rules=[DEFAULT_RULES],
        port=free_port(),
        lifecycle={"settle_after": "15m", "reevaluate_s": 0.2},
    )
    rt = Runtime(settings)
    try:
        with BackgroundServer(rt, settings.port) as srv:
            now = datetime.now(UTC)
            r = httpx.post(
                f"{srv.url}/api/v1/suggestions",
                json=latency("web", now).model_dump(mode="json"),
            )
            assert r.status_code == 201 and r.json()["status"] == "pending"
            decision_id = r.json()["decision_id"]
            p99_history(rt, "web", now, spike=True)
            deadline = datetime.now(UTC) + timedelta(seconds=10)
            body = {}
            while datetime.now(UTC) < deadline:
                body = httpx.get(f"{srv.url}/api/v1/verdicts/{decision_id}").json()
                if body["version"] == 2:
                    break
                time.sleep(0.05)
            assert (body["verdict"], body["status"], body["version"]) == ("confirm", "pending", 2)
            assert [(h["version"], h["verdict"]) for h in body["history"]] == [
                (1, "inconclusive"),
                (2, "confirm"),
            ]
    finally:
        rt.close()
