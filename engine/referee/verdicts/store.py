"""The verdict store (embedded SQLite) and its delivery outbox; the tables are in ``schema``.

* ``verdicts``: every verdict as its Verdict v1 JSON, keyed by ``decision_id`` and unique per
  ``(source, suggestion_id)`` so a suggestion sent twice gets the same verdict back.
* ``deliveries``: one row per (decision, sink), written in the same transaction as the
  verdict. A worker delivers pending rows with exponential backoff; the sink's reference
  (e.g. the Grafana annotation id) is kept so that re-delivery updates instead of duplicating.
  Rows survive restarts, so verdicts decided while Grafana was down are delivered later.
* ``lifecycle`` and ``verdict_versions``: the status (pending | settled | closed) and current
  version of each decision, and the bodies of its earlier versions (the current one is the
  ``verdicts`` row: a first decision writes no version row, which keeps the commit on the
  request path small). A re-evaluation that changes a verdict archives the current body as
  its version, stores the new one and puts the decision's deliveries back to pending,
  keeping their ``ref`` so sinks update what they wrote (see ``referee.verdicts.lifecycle``).
  Databases written before this kept a row for the current version too; it is ignored.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from referee.models import Finding, Verdict, series_key
from referee.verdicts.checkpoint import WalCheckpointer
from referee.verdicts.schema import FINDINGS_SCHEMA, SCHEMA

log = logging.getLogger(__name__)


def _period(column: str, since: datetime | None, until: datetime | None) -> tuple[list[str], list[str]]:
    """WHERE terms and arguments for ``column`` (an ISO 8601 UTC time) in [since, until)."""
    where, args = [], []
    if since is not None:
        where.append(f"{column} >= ?")
        args.append(since.astimezone(UTC).isoformat())
    if until is not None:
        where.append(f"{column} < ?")
        args.append(until.astimezone(UTC).isoformat())
    return where, args


@dataclass
class Delivery:
    decision_id: str
    sink: str
    ref: str | None
    attempts: int
    #: The decision's version when the row was read; a newer version keeps the row pending.
    version: int = 1


class VerdictStore:
    """Thread-safe access to the SQLite database (one connection, serialised)."""

    #: Commits are local and short (no network round trip): see ``Runtime.can_decide_inline``.
    local = True

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._conn = self._connect()
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            self._conn.executescript(FINDINGS_SCHEMA)
        self._checkpointer: WalCheckpointer | None = None
        if isinstance(self._conn, sqlite3.Connection) and self.path != ":memory:":
            # SQLite's automatic checkpoint runs inside whichever commit crosses the WAL size
            # limit and fsyncs the database there: a decision now and then took 7-9 ms instead
            # of 0.2. Checkpoints run on their own thread and connection instead.
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = WalCheckpointer(self.path)

    def _connect(self) -> sqlite3.Connection:
        """The connection every method uses (``referee.verdicts.postgres`` returns a PostgreSQL
        one that speaks this SQLite dialect)."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._conn.close()

    def busy(self) -> bool:
        """True while another thread is using the connection."""
        return self._lock.locked()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def find(self, source: str, suggestion_id: str) -> Verdict | None:
        found = self.find_json(source, suggestion_id)
        return found[0] if found else None

    def find_json(self, source: str, suggestion_id: str) -> tuple[Verdict, str] | None:
        """The verdict on a suggestion, and its stored JSON; None if it was never decided."""
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM verdicts WHERE source = ? AND suggestion_id = ?", (source, suggestion_id)
            ).fetchone()
        return (Verdict.model_validate_json(row["body"]), row["body"]) if row else None

    def add(self, verdict: Verdict, suggestion_json: str, sinks: list[str]) -> Verdict:
        """Stores a verdict and queues it for every sink; returns the stored verdict, which is
        the earlier one if this suggestion was already decided."""
        return self.add_json(verdict, suggestion_json, sinks)[0]

    def add_json(self, verdict: Verdict, suggestion_json: str, sinks: list[str]) -> tuple[Verdict, str]:
        """``add``, also returning the stored verdict's JSON (an HTTP answer needs no second
        serialisation of it)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT body FROM verdicts WHERE source = ? AND suggestion_id = ?",
                (verdict.source, verdict.suggestion_id),
            ).fetchone()
            if row:
                return Verdict.model_validate_json(row["body"]), row["body"]
            body = verdict.model_dump_json()
            db.execute(
                "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    verdict.decision_id,
                    verdict.source,
                    verdict.suggestion_id,
                    verdict.subject.get("service.name"),
                    verdict.verdict,
                    verdict.rules_revision,
                    verdict.decided_at.isoformat(),
                    suggestion_json,
                    body,
                ),
            )
            db.executemany(
                "INSERT INTO deliveries (decision_id, sink) VALUES (?, ?)",
                [(verdict.decision_id, s) for s in sinks],
            )
            self._record_lifecycle(db, verdict)
        return verdict, body

    # --- lifecycle ----------------------------------------------------------------------------

    @staticmethod
    def _record_lifecycle(db: sqlite3.Connection, verdict: Verdict) -> None:
        db.execute(
            "INSERT OR REPLACE INTO lifecycle VALUES (?, ?, ?, ?, ?)",
            (
                verdict.decision_id,
                verdict.status,
                verdict.version,
                verdict.settles_at.isoformat() if verdict.settles_at else None,
                verdict.decided_at.isoformat(),
            ),
        )

    def pending(self, limit: int = 500) -> list[tuple[Verdict, str]]:
        """Pending verdicts with their suggestion JSON, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT v.body, v.suggestion FROM lifecycle l JOIN verdicts v USING (decision_id) "
                "WHERE l.status = 'pending' ORDER BY v.decided_at LIMIT ?",
                (limit,),
            ).fetchall()
        return [(Verdict.model_validate_json(r["body"]), r["suggestion"]) for r in rows]

    def revise(self, verdict: Verdict, requeue: bool) -> None:
        """Stores a new state of a decision (same ``decision_id``): its body, status and version.

        With ``requeue`` (the verdict's value changed) every delivery of the decision goes back
        to pending with its ``ref`` kept, so each sink updates what it wrote, once.
        """
        with self._tx() as db:
            # A new version: the current body becomes the record of the version it was.
            db.execute(
                "INSERT OR REPLACE INTO verdict_versions "
                "(decision_id, version, verdict, rules_revision, body) "
                "SELECT v.decision_id, l.version, v.verdict, v.rules_revision, v.body "
                "FROM verdicts v JOIN lifecycle l ON l.decision_id = v.decision_id "
                "WHERE v.decision_id = ? AND l.version < ?",
                (verdict.decision_id, verdict.version),
            )
            db.execute(
                "UPDATE verdicts SET verdict = ?, rules_revision = ?, body = ? WHERE decision_id = ?",
                (verdict.verdict, verdict.rules_revision, verdict.model_dump_json(), verdict.decision_id),
            )
            self._record_lifecycle(db, verdict)
            if requeue:
                db.execute(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt = 0, "
                    "last_error = NULL WHERE decision_id = ?",
                    (verdict.decision_id,),
                )

    def history(self, decision_id: str) -> list[Verdict]:
        """Every stored version of a decision, oldest first (the last is the current one)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT vv.body FROM verdict_versions vv JOIN lifecycle l ON l.decision_id = vv.decision_id "
                "WHERE vv.decision_id = ? AND vv.version < l.version ORDER BY vv.version",
                (decision_id,),
            ).fetchall()
            current = self._conn.execute(
                "SELECT body FROM verdicts WHERE decision_id = ?", (decision_id,)
            ).fetchone()
        bodies = [r["body"] for r in rows] + ([current["body"]] if current else [])
        return [Verdict.model_validate_json(b) for b in bodies]

    def get(self, decision_id: str) -> Verdict | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM verdicts WHERE decision_id = ?", (decision_id,)
            ).fetchone()
        return Verdict.model_validate_json(row["body"]) if row else None

    def suggestion_json(self, decision_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT suggestion FROM verdicts WHERE decision_id = ?", (decision_id,)
            ).fetchone()
        return row["suggestion"] if row else None

    def latest(
        self,
        limit: int = 100,
        service: str | None = None,
        verdict: str | None = None,
        source: str | None = None,
    ) -> list[Verdict]:
        where, args = [], []
        for col, val in (("service", service), ("verdict", verdict), ("source", source)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = "SELECT body FROM verdicts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY decided_at DESC, rowid DESC LIMIT ?"
        with self._lock:
            rows = self._conn.execute(sql, (*args, limit)).fetchall()
        return [Verdict.model_validate_json(r["body"]) for r in rows]

    def decided(self, since: datetime | None = None, until: datetime | None = None) -> list[Verdict]:
        """Verdicts decided in [since, until) (by ``decided_at``), newest first."""
        where, args = _period("decided_at", since, until)
        sql = "SELECT body FROM verdicts" + (" WHERE " + " AND ".join(where) if where else "")
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY decided_at DESC, rowid DESC", tuple(args)).fetchall()
        return [Verdict.model_validate_json(r["body"]) for r in rows]

    # --- outbox -------------------------------------------------------------------------------

    def due(self, now: float | None = None, limit: int = 50) -> list[Delivery]:
        now = time.time() if now is None else now
        with self._lock:
            rows = self._conn.execute(
                "SELECT d.decision_id, d.sink, d.ref, d.attempts, coalesce(l.version, 1) AS version "
                "FROM deliveries d LEFT JOIN lifecycle l USING (decision_id) "
                "WHERE d.status = 'pending' AND d.next_attempt <= ? ORDER BY d.next_attempt LIMIT ?",
                (now, limit),
            ).fetchall()
        return [Delivery(r["decision_id"], r["sink"], r["ref"], r["attempts"], r["version"]) for r in rows]

    def delivered(self, d: Delivery, ref: str | None) -> None:
        with self._tx() as db:
            # A version stored while this one was being delivered keeps the row pending (the
            # sink then updates through the ref just written) instead of being lost.
            db.execute(
                "UPDATE deliveries SET status = CASE WHEN coalesce((SELECT version FROM lifecycle "
                "WHERE decision_id = ?), 1) > ? THEN 'pending' ELSE 'delivered' END, "
                "ref = ?, attempts = attempts + 1, last_error = NULL WHERE decision_id = ? AND sink = ?",
                (d.decision_id, d.version, ref, d.decision_id, d.sink),
            )

    def retry_later(self, d: Delivery, error: str, delay_s: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt = ? "
                "WHERE decision_id = ? AND sink = ?",
                (error[:500], time.time() + delay_s, d.decision_id, d.sink),
            )

    def failed(self, d: Delivery, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE decision_id = ? AND sink = ?",
                (error[:500], d.decision_id, d.sink),
            )

    def deliveries(self, decision_id: str) -> list[dict[str, object]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT sink, status, ref, attempts, last_error FROM deliveries WHERE decision_id = ?",
                (decision_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def outbox_depth(self) -> int:
        with self._lock:
            return int(
                self._conn.execute("SELECT count(*) FROM deliveries WHERE status = 'pending'").fetchone()[0]
            )

    # --- findings -----------------------------------------------------------------------------

    def add_finding(self, finding: Finding) -> Finding:
        """Stores a finding unless one is already open for its rule and series; returns the
        stored one (the earlier finding while the condition keeps holding)."""
        key = series_key(finding.metric, finding.statistic, finding.subject)
        with self._tx() as db:
            row = db.execute(
                "SELECT body FROM findings WHERE rule_id = ? AND series_key = ? AND closed_at IS NULL",
                (finding.rule_id, key),
            ).fetchone()
            if row:
                return Finding.model_validate_json(row["body"])
            db.execute(
                "INSERT INTO findings VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (
                    finding.finding_id,
                    finding.rule_id,
                    key,
                    finding.service,
                    finding.found_at.isoformat(),
                    finding.model_dump_json(),
                ),
            )
        return finding

    def close_finding(self, rule_id: str, key: str, at: datetime) -> Finding | None:
        """Closes the open finding of a rule on a series (``series_key``), if there is one."""
        with self._tx() as db:
            row = db.execute(
                "SELECT body FROM findings WHERE rule_id = ? AND series_key = ? AND closed_at IS NULL",
                (rule_id, key),
            ).fetchone()
            if not row:
                return None
            finding = Finding.model_validate_json(row["body"])
            finding.closed_at = at
            db.execute(
                "UPDATE findings SET closed_at = ?, body = ? WHERE finding_id = ?",
                (at.isoformat(), finding.model_dump_json(), finding.finding_id),
            )
        return finding

    def open_findings(self) -> dict[tuple[str, str], str]:
        """(rule id, series key) -> finding id of every open finding."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT rule_id, series_key, finding_id FROM findings WHERE closed_at IS NULL"
            ).fetchall()
        return {(r["rule_id"], r["series_key"]): r["finding_id"] for r in rows}

    def findings(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        service: str | None = None,
        limit: int = 10_000,
    ) -> list[Finding]:
        """Findings raised in [since, until) (by ``found_at``), newest first."""
        where, args = _period("found_at", since, until)
        if service is not None:
            where.append("service = ?")
            args.append(service)
        sql = "SELECT body FROM findings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY found_at DESC, rowid DESC LIMIT ?"
        with self._lock:
            rows = self._conn.execute(sql, (*args, limit)).fetchall()
        return [Finding.model_validate_json(r["body"]) for r in rows]
