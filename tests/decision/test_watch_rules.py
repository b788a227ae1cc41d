"""Watch rules: findings raised, deduplicated and closed; selectors, exceptions and shadow mode
holding them back; their errors; and the findings API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from referee.decision.rulepack import load_rules
from referee.decision.watch import run_watch_rules
from referee.verdicts.store import VerdictStore
from tests.decision.rulepacks import T0, WATCH, errors_of, spiky_store, write


def test_watch_rules_raise_deduplicate_and_close_findings(tmp_path: Path) -> None:
    loaded = load_rules([write(tmp_path, WATCH)])
    assert [r.id for r in loaded.rules] == ["lat.watch"] and len(loaded.compiled) == 0
    store = spiky_store()
    verdicts = VerdictStore(":memory:")
    first = run_watch_rules(loaded, store, verdicts)
    assert (first.series, first.raised, first.closed) == (2, 1, 0)
    (f,) = verdicts.findings()
    assert (f.rule_id, f.subject, f.severity, f.metric, f.statistic) == (
        "lat.watch",
        {"service.name": "web"},
        "critical",
        "lat",
        "p99",
    )
    assert f.observed is not None and f.band is not None and f.observed > f.band.upper
    assert f.observed == pytest.approx(1.0)
    assert f.window_end == datetime.fromtimestamp((T0 + 64 * 60_000) / 1000, tz=UTC)
    assert f.closed_at is None and f.rules_revision == loaded.revision
    # Still holding: no second finding.
    assert run_watch_rules(loaded, store, verdicts).raised == 0
    assert len(verdicts.findings()) == 1
    # Back to normal for a whole window: closed.
    ts = [T0 + i * 60_000 for i in range(65, 75)]
    store.ingest_points("lat", "p99", {"service.name": "web"}, ts, [0.2] * 10)
    assert run_watch_rules(loaded, store, verdicts).closed == 1
    (f2,) = verdicts.findings(service="web")
    assert f2.finding_id == f.finding_id and f2.closed_at is not None
    assert verdicts.findings(service="db") == []
    assert verdicts.findings(since=f.found_at + timedelta(seconds=1)) == []
    assert len(verdicts.findings(since=f.found_at, until=f.found_at + timedelta(seconds=1))) == 1
    verdicts.close()


def test_watch_selector_and_exceptions_hold_back_findings(tmp_path: Path) -> None:
    store = spiky_store()
    verdicts = VerdictStore(":memory:")
    ignored = load_rules([write(tmp_path, WATCH.replace("[batch]", "[web]"))])
    assert run_watch_rules(ignored, store, verdicts).raised == 0
    excepted = load_rules([write(tmp_path, WATCH.replace("< 0.05", "< 5.0"))])
    assert run_watch_rules(excepted, store, verdicts).raised == 0
    shadow = load_rules([write(tmp_path, WATCH.replace("severity: critical", "mode: shadow"))])
    assert run_watch_rules(shadow, store, verdicts).raised == 0
    assert verdicts.findings() == []
    verdicts.close()


def test_watch_rule_errors(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
        referee: 1
        pack: w
        rules:
          - id: a
            watch: suggestion.id == "x"
            signal: {metric: lat, statistic: p99}
            when: "true"
            then: confirm
          - id: b
            watch: "true"
        """,
    )
    errs = errors_of(p)
    assert (
        f"{p}:5:12: rule `a` watch: watch rules have no `suggestion`; use `series`, `signal` and `baseline`"
        in errs
    )
    assert f"{p}:8:5: rule `a`: a watch rule raises findings; it has no `then`" in errs
    assert f"{p}:9:5: rule `b`: a watch rule needs a `signal` (the metric whose series it watches)" in errs
    assert f"{p}:9:5: rule `b`: a watch rule needs a `when` (the condition that raises a finding)" in errs


def test_findings_api(tmp_path: Path) -> None:
    import httpx

    from referee.config import Settings
    from referee.demo.run import BackgroundServer, free_port
    from referee.service.runtime import Runtime

    pack = write(tmp_path, WATCH)
    settings = Settings.load(
        env={},
        database=tmp_path / "r.db",
        port=free_port(),
        rules=[pack],
        watch_interval_s=0.0,
        grpc_port=None,
    )
    rt = Runtime(settings, load_plugins=False)
    try:
        ts = [T0 + i * 60_000 for i in range(65)]
        rt.store.ingest_points("lat", "p99", {"service.name": "web"}, ts, [0.2] * 60 + [1.0] * 5)
        assert rt.run_watch().raised == 1
        with BackgroundServer(rt, settings.port) as srv:
            body = httpx.get(f"{srv.url}/api/v1/findings", params={"service": "web"}).json()
            assert [f["rule_id"] for f in body["findings"]] == ["lat.watch"]
            assert httpx.get(f"{srv.url}/api/v1/findings", params={"service": "db"}).json() == {
                "findings": []
            }
            r = httpx.get(f"{srv.url}/api/v1/findings", params={"since": "yesterday"})
            assert r.status_code == 400 and "since/until" in r.json()["error"]
            rules = httpx.get(f"{srv.url}/api/v1/rules").json()
            assert rules["reload_failures_total"] == 0
            assert rules["rules"][0]["kind"] == "watch"
    finally:
        rt.close()
