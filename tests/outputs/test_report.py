"""``referee report``: the period's scorecard, verdicts by claim kind and deciding rule (shadow
apart), the latest suppressions, the misses and the outbox, from the verdict store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from referee.cli import app
from referee.models import Evidence, Finding, Verdict
from referee.verdicts import open_verdict_store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def verdict(
    sid: str, value: str, kind: str, rule: str, at: datetime, service: str, mode: str = "enforce"
) -> Verdict:
    return Verdict.model_validate(
        {
            "suggestion_id": sid,
            "source": "copilot",
            "subject": {"service.name": service},
            "claim_kind": kind,
            "verdict": value,
            "rule_ids": [rule],
            "evidence": Evidence(observed=1.0).model_dump(),
            "explanation": f"{value} because of {rule} on {service}",
            "trace": [],
            "rules_revision": "rev1",
            "decided_at": at,
            "mode": mode,
        }
    )


def suggestion_json(sid: str, service: str, at: datetime) -> str:
    return json.dumps(
        {
            "id": sid,
            "source": "copilot",
            "created_at": at.isoformat(),
            "subject": {"service.name": service},
            "claim": {"kind": "latency_high"},
        }
    )


def seed(db: Path | str) -> None:
    store = open_verdict_store(db)
    rows = [
        ("s1", "confirm", "latency_high", "lat.band", T0, "web", "enforce"),
        ("s2", "suppress", "latency_high", "lat.band", T0 + timedelta(minutes=10), "api", "enforce"),
        ("s3", "suppress", "traffic_spike", "traffic.season", T0 + timedelta(minutes=20), "web", "enforce"),
        ("s4", "suppress", "anomaly", "anomaly.trial", T0 + timedelta(minutes=30), "db", "shadow"),
        ("s0", "confirm", "latency_high", "lat.band", T0 - timedelta(days=2), "web", "enforce"),  # before
    ]
    for sid, value, kind, rule, at, service, mode in rows:
        store.add(
            verdict(sid, value, kind, rule, at, service, mode), suggestion_json(sid, service, at), ["grafana"]
        )
    # Covered by s1 (same service, within 15 minutes), and one nobody covered.
    for service, at in [("web", T0 + timedelta(minutes=5)), ("cache", T0 + timedelta(minutes=40))]:
        store.add_finding(
            Finding(
                rule_id="watch.lat",
                subject={"service.name": service},
                metric="lat",
                statistic="p99",
                observed=2.0,
                expected=1.0,
                window_start=at,
                window_end=at,
                found_at=at,
            )
        )
    store.close()


def test_report_json_and_markdown(tmp_path: Path, database_url: str | Path) -> None:
    db = database_url  # SQLite, then PostgreSQL
    seed(db)
    since = (T0 - timedelta(hours=1)).isoformat()
    res = CliRunner().invoke(app, ["report", "--database", str(db), "--since", since, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["verdicts"] == 4  # s0 is before the period
    assert data["by_kind"]["latency_high"] == {"confirm": 1, "suppress": 1, "inconclusive": 0}
    assert data["by_rule"] == {
        "lat.band": {"confirm": 1, "suppress": 1, "inconclusive": 0},
        "traffic.season": {"confirm": 0, "suppress": 1, "inconclusive": 0},
    }
    assert data["shadow"] == {"anomaly.trial": {"confirm": 0, "suppress": 1, "inconclusive": 0}}
    # Enforced suppressions only, newest first.
    assert [s["suggestion_id"] for s in data["suppressed"]] == ["s3", "s2"]
    assert [m["service"] for m in data["misses"]] == ["cache"]
    assert data["outbox"] == {"pending": 5, "delivered": 0, "failed": 0}
    (card,) = data["scorecard"]["sources"]
    assert card["suggestions"] == 4 and card["suppressed"] == 3 and card["misses"] == 1

    out = tmp_path / "report.md"
    res = CliRunner().invoke(app, ["report", "--database", str(db), "--since", since, "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.startswith(f"# Referee report: {datetime.fromisoformat(since).isoformat()} to now")
    assert "| `lat.band` | 1 | 1 | 0 |" in text
    assert "suppress because of traffic.season on web" in text
    assert "## Misses: findings no suggestion covered (1)" in text and "| cache |" in text
    assert "Shadow mode" in text and "| `anomaly.trial` | 0 | 1 | 0 |" in text


def test_report_refuses_a_bad_period(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["report", "--database", str(tmp_path / "v.db"), "--since", "yesterday"])
    assert res.exit_code == 1
    assert "since: expected an RFC 3339 time" in res.output
