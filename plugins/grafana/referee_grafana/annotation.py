"""Turns a verdict into the body of a Grafana annotation (``PostAnnotationsCmd``).

Pure functions, no I/O: ``GrafanaAnnotationSink.describe`` and ``deliver`` both build the body
here, so what ``referee demo`` shows is exactly what Grafana receives.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from referee.config import GrafanaTarget
from referee.models import Evidence, Suggestion, Verdict

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Grafana splits a tag at its first ":" and stores key and value in VARCHAR(100) columns;
#: longer parts make MySQL/Postgres-backed Grafanas answer 500 on every retry.
_TAG_PART_MAX = 100
#: Annotation tooltips are small; a runaway explanation would hide the graph.
_EXPLANATION_MAX = 1000

#: The fields PATCH /annotations/{id} can change; all are always sent (see ``patch_body``).
PATCH_FIELDS = ("text", "tags", "time", "timeEnd")


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are taken as UTC, as the models do."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def time_range(verdict: Verdict, suggestion: Suggestion) -> tuple[int, int]:
    """``(time, timeEnd)`` in epoch ms: the claim window, a point when start == end.

    A missing end falls back to the known start and vice versa (a point at the one instant we
    know), and only when both are missing to the suggestion's ``created_at``.
    """
    evidence = verdict.evidence
    start = evidence.window_start or evidence.window_end or suggestion.created_at
    end = evidence.window_end or evidence.window_start or suggestion.created_at
    first, last = epoch_ms(start), epoch_ms(end)
    return (first, last) if first <= last else (last, first)


def service_of(verdict: Verdict, suggestion: Suggestion) -> str | None:
    name = (verdict.subject.get("service.name") or suggestion.service or "").strip()
    return name or None


def verdict_link(base_url: str, decision_id: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/verdicts/{quote(decision_id, safe='')}"


def decision_tag(decision_id: str) -> str:
    return f"decision:{decision_id}"


def annotation_tags(verdict: Verdict, service: str | None) -> list[str]:
    """``referee``, ``verdict:…``, ``service:…``, ``rule:…`` per rule, ``claim:…`` and
    ``decision:…`` (how a retried delivery finds an annotation an earlier attempt wrote);
    never empty ones."""
    candidates = ["referee", f"verdict:{verdict.verdict}"]
    if service:
        candidates.append(f"service:{service}")
    candidates.extend(f"rule:{rule_id.strip()}" for rule_id in verdict.rule_ids if rule_id.strip())
    candidates.append(f"claim:{verdict.claim_kind}")
    candidates.append(decision_tag(verdict.decision_id))
    return _unique(_fit_tag(tag) for tag in candidates)


def annotation_text(verdict: Verdict, suggestion: Suggestion, link: str | None) -> str:
    """One readable line: verdict, claim, service, the numbers, the explanation, a link.

    Grafana renders annotation text as (sanitised) HTML, so the line is escaped (service names
    and explanations come from outside) and the link is an anchor, which is clickable there.
    """
    service = service_of(verdict, suggestion)
    line = f"Referee {verdict.verdict.upper()} {verdict.claim_kind}"
    if service:
        line += f" on {service}"
    if verdict.mode == "shadow":
        line += " (shadow)"
    measurement = describe_evidence(verdict.evidence)
    if measurement:
        line += f": {measurement}"
    explanation = " ".join(verdict.explanation.split())
    if explanation:
        line += f" — {_clip(explanation, _EXPLANATION_MAX)}"
    text = html.escape(line, quote=False)
    if link:
        text += f' <a href="{html.escape(link)}">details</a>'
    return text


def describe_evidence(evidence: Evidence) -> str:
    """e.g. ``p99 http.server.request.duration over 10m observed 0.412 vs expected 0.398
    (band 0.301–0.495, score 0.31, 10 samples, baseline streaming.hour_of_day)``; only the
    parts that are known."""  # noqa: RUF002 - the en dash is the range sign in the text
    words = [part for part in (evidence.statistic, evidence.metric) if part]
    if evidence.window:
        words.append(f"over {evidence.window}")
    if evidence.observed is not None:
        words.append(f"observed {_num(evidence.observed)}")
    if evidence.claimed is not None:
        words.append(f"(claimed {_num(evidence.claimed)})")
    if evidence.expected is not None:
        words.append(f"vs expected {_num(evidence.expected)}")
    details = []
    if evidence.band is not None:
        details.append(f"band {_num(evidence.band.lower)}–{_num(evidence.band.upper)}")
    if evidence.score is not None:
        details.append(f"score {_num(evidence.score)}")
    if evidence.samples is not None:
        details.append(f"{evidence.samples} sample{'' if evidence.samples == 1 else 's'}")
    if evidence.baseline_model:
        details.append(f"baseline {evidence.baseline_model}")
    if details:
        words.append(f"({', '.join(details)})")
    return " ".join(words)


def annotation_body(
    verdict: Verdict,
    suggestion: Suggestion,
    *,
    base_url: str,
    dashboards: Mapping[str, GrafanaTarget],
) -> dict[str, Any]:
    """The ``POST /api/annotations`` body. Optional fields are left out, never sent as null:
    Grafana's schema does not allow nulls, and an unmapped service gets an organisation-wide
    annotation (no ``dashboardUID``/``panelId``)."""
    service = service_of(verdict, suggestion)
    time_from, time_to = time_range(verdict, suggestion)
    body: dict[str, Any] = {}
    target = dashboards.get(service) if service else None
    if target is not None and target.dashboard_uid:
        body["dashboardUID"] = target.dashboard_uid
        # A panel id only means something within a dashboard.
        if target.panel_id is not None:
            body["panelId"] = target.panel_id
    body["time"] = time_from
    body["timeEnd"] = time_to
    body["tags"] = annotation_tags(verdict, service)
    body["text"] = annotation_text(verdict, suggestion, verdict_link(base_url, verdict.decision_id))
    return body


def patch_body(post_body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``PATCH /api/annotations/{id}`` body for an annotation first written as ``post_body``.

    Every patchable field is sent explicitly: Grafana replaces ``tags`` whenever the field is
    present, so a partial body built by grafana-client (``"tags": []``) would wipe them.
    """
    return {name: post_body[name] for name in PATCH_FIELDS}


def _fit_tag(tag: str) -> str:
    key, sep, value = tag.partition(":")
    return key[:_TAG_PART_MAX] + sep + value[:_TAG_PART_MAX]


def _unique(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _num(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"
