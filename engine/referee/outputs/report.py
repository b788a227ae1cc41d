"""``referee report``: what Referee did over a period, as Markdown for a review or a postmortem.

Read from the verdict store (SQLite or PostgreSQL), never from a running service:

* the copilot scorecard (``referee.outputs.scorecard``): per source, suggestions, verdicts and
  misses;
* verdicts decided in the period by claim kind, and by the rules that decided them (with the
  shadow-mode verdicts apart: what a rule in shadow would have done);
* the latest suppressed suggestions with their explanations, the suggestions a copilot would
  otherwise have acted on;
* the misses: watch-rule findings no suggestion covered;
* the outbox: deliveries still pending and those that failed for good.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from referee.outputs import scorecard as sc
from referee.verdicts.store import VerdictStore

VERDICTS = ("confirm", "suppress", "inconclusive")


@dataclass
class Report:
    since: datetime | None
    until: datetime | None
    scorecard: dict[str, Any]
    verdicts: int
    by_kind: dict[str, dict[str, int]]
    by_rule: dict[str, dict[str, int]]
    shadow: dict[str, dict[str, int]]
    rules_revisions: list[str]
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat() if self.since else None
        out["until"] = self.until.isoformat() if self.until else None
        return out


def _outbox(store: VerdictStore) -> dict[str, int]:
    with store._lock:
        rows = store._conn.execute("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status").fetchall()
    counts = {str(r["status"]): int(r["n"]) for r in rows}
    return {status: counts.get(status, 0) for status in ("pending", "delivered", "failed")}


def build(
    store: VerdictStore,
    since: datetime | None = None,
    until: datetime | None = None,
    tolerance: timedelta = sc.DEFAULT_TOLERANCE,
    suppressed_limit: int = 20,
) -> Report:
    """The report of verdicts decided, and findings raised, in ``[since, until)``."""
    verdicts = store.decided(since, until)
    by_kind: dict[str, Counter[str]] = {}
    by_rule: dict[str, Counter[str]] = {}
    shadow: dict[str, Counter[str]] = {}
    for v in verdicts:
        by_kind.setdefault(v.claim_kind, Counter())[v.verdict] += 1
        deciders = shadow if v.mode == "shadow" else by_rule
        for rule_id in v.rule_ids or ["(no rule)"]:
            deciders.setdefault(rule_id, Counter())[v.verdict] += 1
    suppressed = [
        {
            "decided_at": v.decided_at.isoformat(),
            "source": v.source,
            "suggestion_id": v.suggestion_id,
            "service": v.subject.get("service.name"),
            "claim_kind": v.claim_kind,
            "rule_ids": v.rule_ids,
            "explanation": v.explanation,
        }
        for v in verdicts
        if v.verdict == "suppress" and v.mode == "enforce"
    ][:suppressed_limit]
    suggested = sc.suggestions(store)
    misses = [
        {
            "found_at": f.found_at.isoformat(),
            "rule_id": f.rule_id,
            "severity": f.severity,
            "service": f.service,
            "metric": f.metric,
            "statistic": f.statistic,
            "observed": f.observed,
            "expected": f.expected,
        }
        for f in store.findings(since=since, until=until, limit=1_000_000)
        if not any(sc.covers(s, f, tolerance) for s in suggested)
    ]

    def table(counts: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
        return {k: {v: c[v] for v in VERDICTS} for k, c in sorted(counts.items())}

    return Report(
        since=since,
        until=until,
        scorecard=sc.build(store, since, until, tolerance).to_json(),
        verdicts=len(verdicts),
        by_kind=table(by_kind),
        by_rule=table(by_rule),
        shadow=table(shadow),
        rules_revisions=sorted({v.rules_revision for v in verdicts}),
        suppressed=suppressed,
        misses=misses,
        outbox=_outbox(store),
    )


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The report's JSON as Markdown."""
    period = f"{report['since'] or 'the beginning'} to {report['until'] or 'now'}"
    out = [f"# Referee report: {period}", ""]
    card = report["scorecard"]
    out += [
        f"{report['verdicts']} verdicts; rules revisions {', '.join(report['rules_revisions']) or 'none'}.",
        "",
        "## Copilot scorecard",
        "",
    ]
    columns = ["suggestions", "confirmed", "suppressed", "inconclusive", "pending", "misses"]
    out += _table(["source", *columns], [[s["source"], *(s[c] for c in columns)] for s in card["sources"]])
    out += [
        "",
        f"{card['findings']} watch-rule findings, {card['uncovered_findings']} covered by no source "
        f"(a suggestion covers a finding on its service within {card['tolerance_s']:g} s of it).",
        "",
        "## Verdicts by claim kind",
        "",
    ]
    out += _table(
        ["claim kind", *VERDICTS], [[k, *(c[v] for v in VERDICTS)] for k, c in report["by_kind"].items()]
    )
    out += ["", "## Rules that decided", ""]
    out += _table(
        ["rule", *VERDICTS], [[f"`{k}`", *(c[v] for v in VERDICTS)] for k, c in report["by_rule"].items()]
    )
    if report["shadow"]:
        out += [
            "",
            "Shadow mode (what these rules would have decided; the suggestions were not acted on):",
            "",
        ]
        out += _table(
            ["rule", *VERDICTS], [[f"`{k}`", *(c[v] for v in VERDICTS)] for k, c in report["shadow"].items()]
        )
    out += ["", f"## Latest suppressed suggestions ({len(report['suppressed'])})", ""]
    out += _table(
        ["decided", "source", "service", "claim", "rules", "why"],
        [
            [
                s["decided_at"],
                s["source"],
                s["service"],
                s["claim_kind"],
                ", ".join(s["rule_ids"]),
                s["explanation"],
            ]
            for s in report["suppressed"]
        ],
    )
    out += ["", f"## Misses: findings no suggestion covered ({len(report['misses'])})", ""]
    out += _table(
        ["found", "rule", "severity", "service", "signal", "observed", "expected"],
        [
            [
                m["found_at"],
                f"`{m['rule_id']}`",
                m["severity"],
                m["service"],
                f"{m['statistic']} {m['metric']}",
                m["observed"],
                m["expected"],
            ]
            for m in report["misses"]
        ],
    )
    box = report["outbox"]
    out += [
        "",
        "## Deliveries",
        "",
        f"{box['delivered']} delivered, {box['pending']} pending, {box['failed']} failed for good.",
        "",
    ]
    return "\n".join(out)
