"""SQLite's write-ahead log copied back into the database in the background."""

from __future__ import annotations

import logging
import sqlite3

from referee.loops import Loop

log = logging.getLogger("referee.verdicts.store")


class WalCheckpointer:
    """Copies SQLite's write-ahead log back into the database every ``interval`` seconds, on
    a thread and connection of its own, so that no commit on the request path pays for it.

    ``PASSIVE`` checkpoints never wait for the writer: the write lock stays free and a
    decision commits while a checkpoint runs. On stop the log is truncated."""

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._loop = Loop("referee-wal-checkpoint", interval, self._passive, final=self._truncate)
        self._loop.start()

    def _passive(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as e:  # e.g. a busy database: the next round catches up
            log.debug("WAL checkpoint skipped: %s", e)

    def _truncate(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            log.warning("final WAL checkpoint failed: %s", e)
        self._conn.close()

    def stop(self) -> None:
        self._loop.stop(timeout=30)
