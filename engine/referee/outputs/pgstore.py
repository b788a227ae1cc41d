"""The verdict store on PostgreSQL (work in progress: see PgVerdictStore)."""

from __future__ import annotations

from referee.outputs.verdicts import VerdictStore


class PgVerdictStore(VerdictStore):
    def __init__(self, url: str) -> None:
        raise NotImplementedError("PostgreSQL verdict store: not available yet")
