"""Which verdict store a ``database`` setting means: a SQLite file, or PostgreSQL for a
``postgresql://`` URL (several replicas sharing verdicts, findings and the outbox)."""

from __future__ import annotations

from pathlib import Path

from referee.verdicts.store import VerdictStore


def is_postgres(database: Path | str) -> bool:
    return isinstance(database, str) and database.startswith(("postgresql://", "postgres://"))


def open_verdict_store(database: Path | str) -> VerdictStore:
    if is_postgres(database):
        from referee.verdicts.postgres import PgVerdictStore

        return PgVerdictStore(str(database))
    return VerdictStore(database)
