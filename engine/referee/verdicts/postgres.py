"""The verdict store on PostgreSQL, for several ``referee serve`` replicas sharing verdicts,
findings and the delivery outbox (``database: postgresql://user@host/db``).

It is ``VerdictStore`` itself, with its SQL, schema and semantics, over a PostgreSQL
connection that accepts the store's SQLite dialect (placeholders, ``INSERT OR REPLACE``,
``rowid``, ``REAL``, ``PRAGMA``): one implementation of the store's rules, two engines. What
differs is what several processes need:

* **Claiming deliveries.** ``due()`` claims rows with ``FOR UPDATE SKIP LOCKED`` and leases
  them (``next_attempt`` moved ``CLAIM_LEASE_S`` ahead), so two replicas never deliver the
  same row at once; a replica that dies mid-delivery leaves the row to be taken again when
  the lease runs out. Replicas sharing a database should configure the same sinks: a row for
  a sink a replica lacks is leased and skipped by it.
* **Races on unique keys.** Two replicas deciding the same (source, suggestion id), or raising
  the same open finding, at the same moment: the loser's insert violates the unique key and
  it returns the winner's row, as the single-process store does.
* **Schema creation** takes an advisory lock, so replicas starting together do not collide.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from referee.models import Finding, Verdict
from referee.verdicts.store import Delivery, VerdictStore

#: How long a claimed delivery is reserved for the replica that claimed it.
CLAIM_LEASE_S = 120.0
_SCHEMA_LOCK = 0x5EFE_4EE0  # pg_advisory_xact_lock key for schema creation


class _Row(dict[str, Any]):
    """A row addressable by column name or position, like ``sqlite3.Row``."""

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        super().__init__(zip(names, values, strict=True))
        self._values = tuple(values)

    def __getitem__(self, key: str | int) -> Any:
        return self._values[key] if isinstance(key, int) else super().__getitem__(key)


def _row_factory(cursor: Any) -> Any:
    names = [c.name for c in cursor.description] if cursor.description else []
    return lambda values: _Row(names, values)


_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(REPLACE|IGNORE)\s+INTO\s+(\w+)", re.IGNORECASE)
_ROWID = re.compile(r"\browid\b", re.IGNORECASE)
_REAL = re.compile(r"\bREAL\b")


class _Cursor:
    """What ``execute`` returns when nothing was run (``PRAGMA``)."""

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []


class PgConnection:
    """A psycopg connection with the ``execute``/``executemany``/``executescript`` the store
    uses, translating the store's SQLite dialect. Autocommit: ``BEGIN``/``COMMIT`` come from
    the store's own ``_tx``, as with SQLite."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg = self._open()
        #: table -> (primary key columns, all columns), for INSERT OR REPLACE.
        self._tables: dict[str, tuple[list[str], list[str]]] = {}

    def _open(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, row_factory=_row_factory)

    def _live(self) -> psycopg.Connection[Any]:
        if self._pg.closed:
            self._pg = self._open()
        return self._pg

    def _run(self, query: bytes, params: tuple[Any, ...]) -> Any:
        """Runs one statement. A connection lost between transactions (PostgreSQL restarted,
        a proxy dropped it) is opened again and the statement retried once; one lost inside a
        transaction fails that transaction, which the caller sees (nothing half-written)."""
        pg = self._live()
        idle = pg.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        try:
            return pg.execute(query, params)
        except psycopg.OperationalError:
            if not (idle and pg.closed):
                raise
            self._pg = self._open()
            return self._pg.execute(query, params)

    def translate(self, sql: str) -> str:
        m = _INSERT_OR.match(sql)
        if m:
            kind, table = m.group(1).upper(), m.group(2)
            sql = "INSERT INTO " + table + sql[m.end() :]
            if kind == "IGNORE":
                sql += " ON CONFLICT DO NOTHING"
            else:
                keys, cols = self._table(table)
                updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
                sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        sql = _ROWID.sub("ctid", sql)
        if sql.strip().upper() == "BEGIN IMMEDIATE":
            return "BEGIN"
        return sql.replace("%", "%%").replace("?", "%s")

    def _table(self, table: str) -> tuple[list[str], list[str]]:
        if table not in self._tables:
            pg = self._live()
            cols = [
                r["column_name"]
                for r in pg.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                ).fetchall()
            ]
            keys = [
                r["attname"]
                for r in pg.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = %s::regclass AND i.indisprimary",
                    (table,),
                ).fetchall()
            ]
            self._tables[table] = (keys, cols)
        return self._tables[table]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql.lstrip().upper().startswith("PRAGMA"):
            return _Cursor()
        return self._run(self.translate(sql).encode(), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self._live().cursor() as cur:
                cur.executemany(self.translate(sql).encode(), rows)

    def executescript(self, script: str) -> None:
        """DDL, in one transaction under an advisory lock (replicas may start together)."""
        statements = [s.strip() for s in _strip_comments(script).split(";") if s.strip()]
        pg = self._live()
        with pg.transaction():
            pg.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in statements:
                pg.execute(_REAL.sub("DOUBLE PRECISION", statement).encode())

    def close(self) -> None:
        self._pg.close()


def _strip_comments(script: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in script.splitlines())


class PgVerdictStore(VerdictStore):
    """``VerdictStore`` on PostgreSQL; see the module docstring for what differs."""

    local = False  # every statement is a network round trip

    def __init__(self, url: str) -> None:
        self._url = url
        super().__init__(url)
        self.path = _display_url(url)

    def _connect(self) -> Any:
        return PgConnection(self._url)

    def __repr__(self) -> str:
        return f"PgVerdictStore({self.path!r})"

    def add_json(self, verdict: Verdict, suggestion_json: str, sinks: list[str]) -> tuple[Verdict, str]:
        try:
            return super().add_json(verdict, suggestion_json, sinks)
        except pg_errors.UniqueViolation:
            # Another replica stored this (source, suggestion id) between our look-up and insert.
            earlier = self.find_json(verdict.source, verdict.suggestion_id)
            if earlier is None:
                raise
            return earlier

    def add_finding(self, finding: Finding) -> Finding:
        try:
            return super().add_finding(finding)
        except pg_errors.UniqueViolation:
            return super().add_finding(finding)  # now finds the other replica's open finding

    def due(self, now: float | None = None, limit: int = 50) -> list[Delivery]:
        """Claims up to ``limit`` due deliveries for this process (see the module docstring)."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._conn.execute(
                "UPDATE deliveries d SET next_attempt = ? FROM ("
                "  SELECT decision_id, sink, next_attempt AS was FROM deliveries"
                "  WHERE status = 'pending' AND next_attempt <= ?"
                "  ORDER BY next_attempt LIMIT ? FOR UPDATE SKIP LOCKED"
                ") c WHERE d.decision_id = c.decision_id AND d.sink = c.sink "
                "RETURNING d.decision_id, d.sink, d.ref, d.attempts, c.was, "
                "coalesce((SELECT l.version FROM lifecycle l WHERE l.decision_id = d.decision_id), 1) "
                "AS version",
                (time.time() + CLAIM_LEASE_S, now, limit),
            ).fetchall()
        return [
            Delivery(r["decision_id"], r["sink"], r["ref"], r["attempts"], r["version"])
            for r in sorted(rows, key=lambda r: r["was"])
        ]

    def delivered(self, d: Delivery, ref: str | None) -> None:
        super().delivered(d, ref)
        # A newer version kept the row pending: it is due now, not when the lease ends.
        with self._lock:
            self._conn.execute(
                "UPDATE deliveries SET next_attempt = 0 WHERE decision_id = ? AND sink = ? "
                "AND status = 'pending'",
                (d.decision_id, d.sink),
            )


def _display_url(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)
