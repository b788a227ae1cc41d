"""The verdict store's tables, shared by SQLite (``store``) and PostgreSQL (``postgres``, which
rewrites the few SQLite-only words). What each table is for: see ``referee.verdicts.store``."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    decision_id    TEXT PRIMARY KEY,
    source         TEXT NOT NULL,
    suggestion_id  TEXT NOT NULL,
    service        TEXT,
    verdict        TEXT NOT NULL,
    rules_revision TEXT NOT NULL,
    decided_at     TEXT NOT NULL,
    suggestion     TEXT NOT NULL,
    body           TEXT NOT NULL,
    UNIQUE (source, suggestion_id)
);
CREATE INDEX IF NOT EXISTS verdicts_decided_at ON verdicts (decided_at);
CREATE TABLE IF NOT EXISTS deliveries (
    decision_id   TEXT NOT NULL REFERENCES verdicts (decision_id),
    sink          TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    ref           TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  REAL NOT NULL DEFAULT 0,
    last_error    TEXT,
    PRIMARY KEY (decision_id, sink)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt);
CREATE TABLE IF NOT EXISTS lifecycle (
    decision_id TEXT PRIMARY KEY REFERENCES verdicts (decision_id),
    status      TEXT NOT NULL,            -- pending | settled | closed
    version     INTEGER NOT NULL DEFAULT 1,
    settles_at  TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lifecycle_status ON lifecycle (status);
CREATE TABLE IF NOT EXISTS verdict_versions (
    decision_id    TEXT NOT NULL REFERENCES verdicts (decision_id),
    version        INTEGER NOT NULL,
    verdict        TEXT NOT NULL,
    rules_revision TEXT NOT NULL,
    body           TEXT NOT NULL,
    PRIMARY KEY (decision_id, version)
);
"""


#: Findings raised by watch rules; at most one open (closed_at NULL) per rule and series.
FINDINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
    finding_id  TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    series_key  TEXT NOT NULL,
    service     TEXT,
    found_at    TEXT NOT NULL,
    closed_at   TEXT,
    body        TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS findings_open ON findings (rule_id, series_key) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS findings_found_at ON findings (found_at);
"""
