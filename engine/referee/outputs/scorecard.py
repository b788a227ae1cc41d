"""The copilot scorecard: per source, how its suggestions fared and what it missed.

For each source with suggestions in the period: how many suggestions, and how many of them
were confirmed, suppressed or inconclusive (their current verdict; ``pending`` ones counted
apart), and its **misses**: findings of watch rules in the period that no suggestion of that
source covers. A suggestion covers a finding when it names the same ``service.name`` and was
made within ``tolerance`` of the finding's time span (from the finding's window start, or
when it was found, to when it closed, or its window end): a copilot that reported the
incident ten minutes into it still caught it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from referee.durations import parse_duration
from referee.models import Finding
from referee.verdicts.store import VerdictStore

DEFAULT_TOLERANCE = timedelta(minutes=15)
_COLUMN = {"confirm": "confirmed", "suppress": "suppressed", "inconclusive": "inconclusive"}


@dataclass
class SourceScore:
    source: str
    suggestions: int = 0
    confirmed: int = 0
    suppressed: int = 0
    inconclusive: int = 0
    pending: int = 0
    misses: int = 0


@dataclass
class Scorecard:
    since: datetime | None
    until: datetime | None
    tolerance_s: float
    findings: int
    #: Findings no suggestion of any source covers.
    uncovered_findings: int
    sources: list[SourceScore] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat() if self.since else None
        out["until"] = self.until.isoformat() if self.until else None
        return out


@dataclass
class _Suggested:
    source: str
    service: str | None
    at: datetime
    verdict: str
    status: str


def parse_time(value: str, name: str, now: datetime | None = None) -> datetime:
    """RFC 3339 (``2026-11-23T10:00:00Z``), or a duration back from now (``24h``, ``7d``, ``90m``)."""
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{name}: expected an RFC 3339 time (2026-11-23T10:00:00Z) or a duration (24h, 7d), got {value!r}"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_tolerance(value: str) -> timedelta:
    try:
        return timedelta(seconds=parse_duration(value))
    except ValueError:
        raise ValueError(f"tolerance: expected a duration such as 15m or 900s, got {value!r}") from None


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def suggestions(store: VerdictStore) -> list[_Suggested]:
    """Every decided suggestion's source, service, time (its ``created_at``) and current verdict.

    Reads the verdicts table directly: one pass, no per-row look-up of the suggestion."""
    with store._lock:
        rows = store._conn.execute("SELECT source, service, suggestion, body FROM verdicts").fetchall()
    out = []
    for row in rows:
        suggestion = json.loads(row["suggestion"])
        body = json.loads(row["body"])
        created = suggestion.get("created_at") or body["decided_at"]
        out.append(
            _Suggested(
                source=row["source"],
                service=row["service"],
                at=_aware(datetime.fromisoformat(str(created).replace("Z", "+00:00"))),
                verdict=body["verdict"],
                status=body.get("status", "settled"),
            )
        )
    return out


def _span(f: Finding) -> tuple[datetime, datetime]:
    start = _aware(f.window_start or f.found_at)
    end = _aware(f.closed_at or f.window_end or f.found_at)
    return min(start, _aware(f.found_at)), max(end, _aware(f.found_at))


def covers(s: _Suggested, f: Finding, tolerance: timedelta) -> bool:
    if s.service is None or s.service != f.service:
        return False
    start, end = _span(f)
    return start - tolerance <= s.at <= end + tolerance


def build(
    store: VerdictStore,
    since: datetime | None = None,
    until: datetime | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> Scorecard:
    """The scorecard of suggestions made, and findings raised, in ``[since, until)``."""
    every = suggestions(store)
    in_period = [s for s in every if (since is None or s.at >= since) and (until is None or s.at < until)]
    findings = store.findings(since=since, until=until, limit=1_000_000)
    scores: dict[str, SourceScore] = {}
    for s in in_period:
        score = scores.setdefault(s.source, SourceScore(s.source))
        score.suggestions += 1
        if s.status == "pending":
            score.pending += 1
        else:
            column = _COLUMN[s.verdict]
            setattr(score, column, getattr(score, column) + 1)
    # A suggestion just outside the period may still cover a finding inside it (tolerance).
    by_service: dict[str, list[_Suggested]] = {}
    for s in every:
        if s.service is not None:
            by_service.setdefault(s.service, []).append(s)
    uncovered = 0
    for f in findings:
        candidates = by_service.get(f.service or "", [])
        covering = {s.source for s in candidates if covers(s, f, tolerance)}
        if not covering:
            uncovered += 1
        for source, score in scores.items():
            if source not in covering:
                score.misses += 1
    return Scorecard(
        since=since,
        until=until,
        tolerance_s=tolerance.total_seconds(),
        findings=len(findings),
        uncovered_findings=uncovered,
        sources=sorted(scores.values(), key=lambda s: s.source),
    )


def fetch(
    url: str, params: dict[str, str], token: str | None = None, timeout_s: float = 10.0
) -> dict[str, Any]:
    """The scorecard of a running service (``GET <url>/api/v1/scorecard``)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
    request = urllib.request.Request(f"{url.rstrip('/')}/api/v1/scorecard?{query}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            data: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:500]
        raise RuntimeError(f"{url}: HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        raise RuntimeError(f"{url}: {getattr(e, 'reason', e)}") from None
    return data


def render(card: dict[str, Any]) -> Any:
    """A rich table of a scorecard's JSON."""
    from rich.table import Table

    period = f"{card.get('since') or 'beginning'} → {card.get('until') or 'now'}"
    table = Table(
        title=f"Copilot scorecard ({period})",
        caption=(
            f"{card['findings']} watch-rule findings, {card['uncovered_findings']} covered by no source; "
            f"tolerance {card['tolerance_s']:g} s"
        ),
    )
    for column in ("source", "suggestions", "confirmed", "suppressed", "inconclusive", "pending", "misses"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for row in card["sources"]:
        table.add_row(
            row["source"],
            *(str(row[c]) for c in ("suggestions", "confirmed", "suppressed", "inconclusive", "pending")),
            str(row["misses"]),
        )
    return table
