"""The verdict store's rules, on SQLite and on PostgreSQL (``database_url`` runs each test on
both): idempotent verdicts, the outbox, versions, findings; and, on PostgreSQL, what several
replicas sharing one database need (claims that never overlap, races on unique keys)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from referee.models import Evidence, Finding, Verdict, series_key
from referee.verdicts import open_verdict_store
from referee.verdicts.postgres import CLAIM_LEASE_S, PgVerdictStore
from referee.verdicts.store import VerdictStore
from tests.peers.postgres import Postgres

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def verdict(sid: str, source: str = "copilot", value: str = "confirm", at: datetime = T0) -> Verdict:
    return Verdict.model_validate(
        {
            "suggestion_id": sid,
            "source": source,
            "subject": {"service.name": "web"},
            "claim_kind": "latency_high",
            "verdict": value,
            "rule_ids": ["r1"],
            "evidence": Evidence(observed=1.0).model_dump(),
            "explanation": "because",
            "trace": [],
            "rules_revision": "rev1",
            "decided_at": at,
        }
    )


def suggestion_json(sid: str) -> str:
    return f'{{"id": "{sid}", "subject": {{"service.name": "web"}}, "claim": {{"kind": "latency_high"}}}}'


@pytest.fixture
def store(database_url: str | Path) -> VerdictStore:
    s = open_verdict_store(database_url)
    yield s  # type: ignore[misc]
    s.close()


def test_the_right_store_is_opened(database_url: str | Path) -> None:
    s = open_verdict_store(database_url)
    try:
        assert isinstance(s, PgVerdictStore) is isinstance(database_url, str)
    finally:
        s.close()


def test_a_suggestion_is_decided_once(store: VerdictStore) -> None:
    first = store.add(verdict("s1"), suggestion_json("s1"), ["grafana", "otel"])
    again = store.add(verdict("s1", value="suppress"), suggestion_json("s1"), ["grafana", "otel"])
    assert again.decision_id == first.decision_id and again.verdict == "confirm"
    other_source = store.add(verdict("s1", source="other"), suggestion_json("s1"), [])
    assert other_source.decision_id != first.decision_id
    assert store.find("copilot", "s1") == first
    assert store.get(first.decision_id) == first
    assert store.suggestion_json(first.decision_id) == suggestion_json("s1")
    assert store.outbox_depth() == 2
    assert {d["sink"] for d in store.deliveries(first.decision_id)} == {"grafana", "otel"}


def test_latest_is_newest_first_with_filters(store: VerdictStore) -> None:
    for n in range(5):
        store.add(
            verdict(f"s{n}", value="confirm" if n % 2 else "suppress", at=T0 + timedelta(minutes=n)), "{}", []
        )
    assert [v.suggestion_id for v in store.latest(limit=3)] == ["s4", "s3", "s2"]
    assert [v.suggestion_id for v in store.latest(verdict="confirm")] == ["s3", "s1"]
    assert store.latest(source="nobody") == []


def test_outbox_retry_delivered_failed(store: VerdictStore) -> None:
    v = store.add(verdict("s1"), "{}", ["a", "b"])
    now = time.time()
    due = store.due(now=now)
    assert sorted(d.sink for d in due) == ["a", "b"]
    da, db = sorted(due, key=lambda d: d.sink)
    store.retry_later(da, "HTTP 503", 60.0)
    store.failed(db, "HTTP 400")
    assert store.due(now=time.time()) == []
    [again] = store.due(now=time.time() + 61)
    assert (again.sink, again.attempts) == ("a", 1)
    store.delivered(again, "ref-1")
    rows = {r["sink"]: r for r in store.deliveries(v.decision_id)}
    assert (rows["a"]["status"], rows["a"]["ref"], rows["a"]["attempts"]) == ("delivered", "ref-1", 2)
    assert (rows["b"]["status"], rows["b"]["last_error"]) == ("failed", "HTTP 400")
    assert store.outbox_depth() == 0


def test_a_new_version_is_delivered_again_with_the_ref(store: VerdictStore) -> None:
    v = store.add(verdict("s1", value="inconclusive"), "{}", ["grafana"])
    [d] = store.due(now=time.time())
    store.delivered(d, "42")
    v2 = v.model_copy(update={"verdict": "confirm", "version": 2})
    store.revise(v2, requeue=True)
    [d2] = store.due(now=time.time())
    assert (d2.ref, d2.version) == ("42", 2)
    assert [h.verdict for h in store.history(v.decision_id)] == ["inconclusive", "confirm"]
    assert store.get(v.decision_id) == v2
    store.delivered(d2, "42")
    assert store.outbox_depth() == 0


def test_history_keeps_each_version_once(store: VerdictStore) -> None:
    v1 = store.add(verdict("s1", value="inconclusive"), "{}", [])
    assert [(h.version, h.verdict) for h in store.history(v1.decision_id)] == [(1, "inconclusive")]
    # A revision that keeps the version (the status changes) replaces the current body only.
    store.revise(v1.model_copy(update={"status": "pending"}), requeue=False)
    assert [(h.version, h.status) for h in store.history(v1.decision_id)] == [(1, "pending")]
    v2 = v1.model_copy(update={"verdict": "confirm", "version": 2})
    store.revise(v2, requeue=True)
    v3 = v1.model_copy(update={"verdict": "suppress", "version": 3, "status": "settled"})
    store.revise(v3, requeue=True)
    assert [(h.version, h.verdict, h.status) for h in store.history(v1.decision_id)] == [
        (1, "inconclusive", "pending"),
        (2, "confirm", "settled"),
        (3, "suppress", "settled"),
    ]
    assert store.history("no-such-decision") == []


def test_history_reads_databases_that_kept_the_current_version_too(store: VerdictStore) -> None:
    # Before, the first decision also wrote its body as version 1 in verdict_versions.
    v1 = store.add(verdict("s1"), "{}", [])
    with store._tx() as db:
        db.execute(
            "INSERT INTO verdict_versions VALUES (?, ?, ?, ?, ?)",
            (v1.decision_id, 1, v1.verdict, v1.rules_revision, v1.model_dump_json()),
        )
    assert [h.version for h in store.history(v1.decision_id)] == [1]
    store.revise(v1.model_copy(update={"verdict": "suppress", "version": 2}), requeue=False)
    assert [(h.version, h.verdict) for h in store.history(v1.decision_id)] == [
        (1, "confirm"),
        (2, "suppress"),
    ]


def test_findings_one_open_per_rule_and_series(store: VerdictStore) -> None:
    f = Finding(rule_id="w", subject={"service.name": "db"}, metric="m", statistic="p99", found_at=T0)
    first = store.add_finding(f)
    again = store.add_finding(
        f.model_copy(update={"finding_id": "other", "found_at": T0 + timedelta(minutes=1)})
    )
    assert again.finding_id == first.finding_id
    key = series_key("m", "p99", {"service.name": "db"})
    assert store.open_findings() == {("w", key): first.finding_id}
    closed = store.close_finding("w", key, T0 + timedelta(minutes=5))
    assert closed is not None and closed.closed_at == T0 + timedelta(minutes=5)
    reopened = store.add_finding(
        f.model_copy(update={"finding_id": "new", "found_at": T0 + timedelta(hours=1)})
    )
    assert reopened.finding_id == "new"
    assert [x.finding_id for x in store.findings()] == ["new", first.finding_id]
    assert [x.finding_id for x in store.findings(since=T0 + timedelta(minutes=30))] == ["new"]


# --- several replicas on one PostgreSQL database ------------------------------------------------


def test_replicas_never_claim_the_same_delivery(pg_url: str) -> None:
    stores = [PgVerdictStore(pg_url) for _ in range(3)]
    try:
        for n in range(40):
            stores[0].add(verdict(f"s{n}"), "{}", ["grafana", "feedback"])
        claimed: list[list[tuple[str, str]]] = [[] for _ in stores]
        barrier = threading.Barrier(len(stores))

        def claim(i: int) -> None:
            barrier.wait()
            while batch := stores[i].due(now=time.time(), limit=7):
                claimed[i] += [(d.decision_id, d.sink) for d in batch]

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        every = [c for per_store in claimed for c in per_store]
        assert len(every) == 80 and len(set(every)) == 80  # each row claimed once, all claimed
        # Claimed rows are leased: nobody gets them again until the lease runs out...
        assert stores[1].due(now=time.time()) == []
        # ...and then anybody may (the claimer died mid-delivery).
        assert len(stores[2].due(now=time.time() + CLAIM_LEASE_S + 1, limit=100)) == 80
    finally:
        for s in stores:
            s.close()


def test_replicas_racing_on_one_suggestion_agree(pg_url: str) -> None:
    stores = [PgVerdictStore(pg_url) for _ in range(4)]
    try:
        results: list[Verdict] = []
        barrier = threading.Barrier(len(stores))

        def decide(i: int) -> None:
            barrier.wait()
            results.append(stores[i].add(verdict("same", value="confirm"), "{}", ["grafana"]))

        threads = [threading.Thread(target=decide, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 4 and len({v.decision_id for v in results}) == 1
        assert stores[0].outbox_depth() == 1
    finally:
        for s in stores:
            s.close()


def test_the_password_stays_out_of_repr() -> None:
    from referee.verdicts.postgres import _display_url

    assert (
        _display_url("postgresql://referee:hunter2@db:5432/referee")
        == "postgresql://referee:***@db:5432/referee"
    )
    assert _display_url("postgresql://referee@db/referee") == "postgresql://referee@db/referee"


def test_scorecard_reads_either_store(store: VerdictStore) -> None:
    from referee.outputs import scorecard

    for sid, service, minutes in [("a", "web", 0), ("b", "db", 120)]:
        created = (T0 + timedelta(minutes=minutes)).isoformat()
        body = f'{{"id": "{sid}", "created_at": "{created}", "subject": {{"service.name": "{service}"}}}}'
        v = verdict(sid).model_copy(update={"subject": {"service.name": service}})
        store.add(v, body, [])
    for service in ("web", "db"):
        store.add_finding(
            Finding(rule_id="w", subject={"service.name": service}, metric="m", statistic="p99", found_at=T0)
        )
    card = scorecard.build(store)
    [row] = card.sources
    assert (row.source, row.suggestions, row.confirmed, row.misses) == ("copilot", 2, 2, 1)  # db: 2 h late
    assert (card.findings, card.uncovered_findings) == (2, 1)


def test_the_store_reconnects_after_postgresql_restarts(pg_url: str, postgres_server: Postgres) -> None:
    s = PgVerdictStore(pg_url)
    try:
        first = s.add(verdict("before"), "{}", ["grafana"])
        postgres_server.restart()
        # The broken connection is noticed and replaced: reads and writes go on, nothing lost.
        assert s.get(first.decision_id) == first
        second = s.add(verdict("after"), "{}", ["grafana"])
        assert s.outbox_depth() == 2
        assert {d.decision_id for d in s.due(now=time.time())} == {first.decision_id, second.decision_id}
    finally:
        s.close()


def test_sqlite_checkpoints_its_log_in_the_background(tmp_path: Path) -> None:
    """No commit runs SQLite's automatic checkpoint (it fsyncs the database inside whichever
    decision crosses the log's size limit); a background thread copies the log back into the
    database instead, and closing the store leaves no log behind."""
    store = VerdictStore(tmp_path / "v.db")
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    db, wal = tmp_path / "v.db", tmp_path / "v.db-wal"
    before = db.stat().st_size
    for i in range(200):
        store.add(verdict(f"s{i}"), suggestion_json(f"s{i}"), ["grafana"])
    assert wal.stat().st_size > 0
    deadline = time.monotonic() + 10  # the checkpointer runs every second
    while db.stat().st_size <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.stat().st_size > before, "nothing copied from the log into the database"
    store.close()
    assert not wal.exists() or wal.stat().st_size == 0
    reopened = VerdictStore(db)
    assert reopened.find("copilot", "s199") is not None
    reopened.close()
