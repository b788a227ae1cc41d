"""The copilot scorecard: counts per source, misses (findings no suggestion of the source
covers, by service and time within the tolerance), over the API and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from referee.demo.run import BackgroundServer
from referee.models import Finding, Suggestion, Verdict
from referee.service.runtime import Runtime

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def suggestion(sid: str, source: str, service: str, at: datetime) -> Suggestion:
    return Suggestion.model_validate(
        {
            "id": sid,
            "source": source,
            "created_at": at.isoformat(),
            "subject": {"service.name": service},
            "claim": {"kind": "latency_high"},
        }
    )


def finding(service: str, start: datetime, end: datetime, found: datetime) -> Finding:
    return Finding(
        rule_id="watch.latency",
        subject={"service.name": service},
        metric="http.server.request.duration",
        statistic="p99",
        window_start=start,
        window_end=end,
        found_at=found,
    )


@pytest.fixture
def scored(runtime: Runtime) -> dict[str, list[Verdict]]:
    made: dict[str, list[Verdict]] = {"copilot-a": [], "copilot-b": []}
    for sid, source, service, at in [
        ("a1", "copilot-a", "web", T0),
        ("a2", "copilot-a", "db", T0 + timedelta(hours=1)),
        ("a3", "copilot-a", "api", T0 + timedelta(hours=2)),
        ("b1", "copilot-b", "web", T0 + timedelta(minutes=30)),
    ]:
        verdict, new = runtime.submit(suggestion(sid, source, service, at))
        assert new
        made[source].append(verdict)
    five = timedelta(minutes=5)
    # web: a1 is inside it; b1 is 25 minutes after its end (outside 15 minutes).
    runtime.verdicts.add_finding(finding("web", T0 - five, T0 + five, T0 + five))
    # db: ended 5 minutes before a2.
    runtime.verdicts.add_finding(
        finding("db", T0 + timedelta(minutes=50), T0 + timedelta(minutes=55), T0 + timedelta(minutes=55))
    )
    # cache: nobody said anything.
    runtime.verdicts.add_finding(
        finding("cache", T0 + timedelta(hours=3), T0 + timedelta(hours=3), T0 + timedelta(hours=3))
    )
    return made


def expected_counts(verdicts: list[Verdict]) -> dict[str, int]:
    assert all(v.status != "pending" for v in verdicts)  # claims in the past are complete
    c = Counter(v.verdict for v in verdicts)
    return {
        "suggestions": len(verdicts),
        "confirmed": c["confirm"],
        "suppressed": c["suppress"],
        "inconclusive": c["inconclusive"],
        "pending": 0,
    }


def test_scorecard_over_the_api(scored: dict[str, list[Verdict]], server: BackgroundServer) -> None:
    card = httpx.get(f"{server.url}/api/v1/scorecard").json()
    assert (card["findings"], card["uncovered_findings"], card["tolerance_s"]) == (3, 1, 900)
    rows = {r["source"]: r for r in card["sources"]}
    assert set(rows) == {"copilot-a", "copilot-b"}
    for source, verdicts in scored.items():
        assert {k: rows[source][k] for k in expected_counts(verdicts)} == expected_counts(verdicts)
    assert rows["copilot-a"]["misses"] == 1  # cache
    assert rows["copilot-b"]["misses"] == 3  # web (too late), db, cache

    # A tighter tolerance: a2 no longer covers the db finding that ended 5 minutes before it.
    tight = httpx.get(f"{server.url}/api/v1/scorecard", params={"tolerance": "1m"}).json()
    assert {r["source"]: r["misses"] for r in tight["sources"]} == {"copilot-a": 2, "copilot-b": 3}
    assert tight["uncovered_findings"] == 2

    # A period: suggestions made and findings raised in [since, until).
    since = (T0 + timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    later = httpx.get(f"{server.url}/api/v1/scorecard", params={"since": since}).json()
    assert [(r["source"], r["suggestions"], r["misses"]) for r in later["sources"]] == [("copilot-a", 1, 1)]
    assert later["findings"] == 1 and later["since"].startswith("2026-11-01T13:30:00")

    bad = httpx.get(f"{server.url}/api/v1/scorecard", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]
    assert httpx.get(f"{server.url}/api/v1/scorecard", params={"tolerance": "x"}).status_code == 400


def test_scorecard_cli_from_the_database_and_from_a_service(
    scored: dict[str, list[Verdict]], server: BackgroundServer, tmp_path: Path
) -> None:
    db = str(tmp_path / "referee.db")  # the database of the `settings` fixture
    cli = [sys.executable, "-m", "referee", "scorecard"]
    run = {"capture_output": True, "text": True, "check": True}
    from_db = subprocess.run([*cli, "--database", db, "--json"], **run)
    from_url = subprocess.run([*cli, "--url", server.url, "--json"], **run)
    assert json.loads(from_db.stdout) == json.loads(from_url.stdout)
    rows = {r["source"]: r["misses"] for r in json.loads(from_db.stdout)["sources"]}
    assert rows == {"copilot-a": 1, "copilot-b": 3}
    table = subprocess.run([*cli, "--database", db], capture_output=True, text=True, check=True).stdout
    assert "copilot-a" in table and "misses" in table
    bad = subprocess.run([*cli, "--database", db, "--since", "soon"], capture_output=True, text=True)
    assert bad.returncode == 1 and "since" in bad.stderr
