"""Alerts → Suggestion v1: the mapping shared by the Alertmanager and Grafana Alerting sources.

Both webhooks carry the same alert shape (``status``, ``labels``, ``annotations``, ``startsAt``,
``endsAt``, ``generatorURL``, ``fingerprint``; Grafana adds ``values`` and URLs). Each firing
alert becomes one suggestion whose id is stable across re-notifications
(``<fingerprint>@<startsAt in UTC>``); a resolved alert with the same id closes its verdict.
How labels become the subject and the claim is configurable (``sources.<name>`` in
referee.yaml); the defaults are documented in ``docs/plugins.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from referee.hookspecs import Resolved
from referee.models import ClaimKind, Suggestion

__all__ = ["Alert", "AlertMapping", "ClaimRule", "parse_json", "to_items"]

log = logging.getLogger("referee.sources")


class ClaimRule(BaseModel):
    """One entry of ``claims``: when every label in ``match`` fully matches its regular
    expression, the alert claims ``kind`` (with the optional claim fields)."""

    model_config = ConfigDict(extra="forbid")

    match: dict[str, str] = Field(min_length=1)
    kind: ClaimKind
    metric: str | None = None
    #: Deprecated name of ``metric`` (one release).
    signal: str | None = None
    statistic: str | None = None
    direction: Literal["up", "down"] | None = None
    unit: str | None = None
    window: str | None = None

    @field_validator("match")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for label, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"match.{label}: invalid regular expression {pattern!r}: {e}") from None
        return v

    def matches(self, labels: dict[str, str]) -> bool:
        return all(
            label in labels and re.fullmatch(pattern, labels[label]) is not None
            for label, pattern in self.match.items()
        )


#: Claim kinds guessed from the alert name; first match wins, otherwise ``default_kind``.
DEFAULT_CLAIMS: list[dict[str, Any]] = [
    {"match": {"alertname": r"(?i).*(latency|slow|duration|response.?time).*"}, "kind": "latency_high"},
    {"match": {"alertname": r"(?i).*(error|5xx|fail).*"}, "kind": "error_rate_high"},
    {
        "match": {"alertname": r"(?i).*(traffic.?(drop|low)|no.?traffic|low.?(traffic|requests)).*"},
        "kind": "traffic_drop",
    },
    {"match": {"alertname": r"(?i).*(traffic.?(spike|high)|high.?traffic|surge).*"}, "kind": "traffic_spike"},
    {
        "match": {"alertname": r"(?i).*(saturat|cpu|memory|disk|queue|throttl|full).*"},
        "kind": "saturation_high",
    },
]

#: Subject attribute ← alert labels tried in order (the first present one wins).
DEFAULT_SUBJECT: dict[str, list[str]] = {
    "service.name": ["service_name", "service", "job"],
    "deployment.environment": ["deployment_environment", "environment", "env"],
    "k8s.namespace.name": ["k8s_namespace_name", "namespace"],
}

#: Labels left out of the fallback subject (used when no subject label is present).
NOT_SUBJECT = {"alertname", "severity", "alertstate", "grafana_folder", "__alert_rule_uid__"}


class AlertMapping(BaseModel):
    """``sources.<name>`` in referee.yaml: how alerts become suggestions."""

    model_config = ConfigDict(extra="forbid")

    #: The suggestions' ``source`` (idempotency is per source and id).
    source: str = Field(default="alertmanager", min_length=1, max_length=128)
    subject: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_SUBJECT))
    claims: list[ClaimRule] = Field(default_factory=lambda: [ClaimRule(**c) for c in DEFAULT_CLAIMS])
    #: A label that names the claim kind directly; it wins over ``claims``.
    kind_label: str = "referee_claim"
    default_kind: ClaimKind = "anomaly"
    #: ``starts_at``: the alert's startsAt (the evidence window ends when the alert fired);
    #: ``received``: when Referee received the webhook.
    created_at: Literal["starts_at", "received"] = "starts_at"
    #: Grafana Alerting only: the ``values`` refID whose number becomes ``claim.observed``.
    observed_value: str | None = None
    #: Annotations tried in order for the suggestion's ``summary``.
    summary_annotations: list[str] = Field(default_factory=lambda: ["summary", "description", "message"])

    @classmethod
    def from_settings(cls, raw: dict[str, Any] | None, section: str, default_source: str) -> AlertMapping:
        """Validates a ``sources.<section>`` block; errors name the setting."""
        values = {"source": default_source, **(raw or {})}
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            problems = "; ".join(
                f"sources.{section}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in e.errors(include_url=False)
            )
            raise ValueError(problems) from None

    def kind_of(self, labels: dict[str, str]) -> tuple[ClaimKind, ClaimRule | None]:
        named = labels.get(self.kind_label)
        if named in ClaimKind.__args__:  # type: ignore[attr-defined]
            return named, None  # type: ignore[return-value]
        for rule in self.claims:
            if rule.matches(labels):
                return rule.kind, rule
        return self.default_kind, None

    def subject_of(self, labels: dict[str, str]) -> dict[str, str]:
        subject = {}
        for attribute, candidates in self.subject.items():
            for label in candidates:
                if labels.get(label):
                    subject[attribute] = labels[label]
                    break
        if not subject:
            subject = {k: v for k, v in labels.items() if k not in NOT_SUBJECT and v}
        return subject or {"alertname": labels.get("alertname", "unnamed")}


class Alert(BaseModel):
    """One alert as both webhooks send it (extra fields are kept out, not refused)."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""
    # Grafana Alerting additions.
    values: dict[str, float | None] | None = None
    dashboardURL: str = ""
    panelURL: str = ""
    silenceURL: str = ""

    @field_validator("startsAt")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    def key(self) -> str:
        """Stable per alert occurrence: the fingerprint (or a hash of the labels when a sender
        omits it) and the start time."""
        fingerprint = (
            self.fingerprint
            or hashlib.sha256(json.dumps(self.labels, sort_keys=True).encode()).hexdigest()[:16]
        )
        return f"{fingerprint}@{self.startsAt.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"body is not JSON: {e}") from None


def to_items(
    alerts: Sequence[Alert], mapping: AlertMapping, received_at: datetime, context: dict[str, Any]
) -> list[Suggestion | Resolved]:
    """Firing alerts → suggestions; resolved alerts → ``Resolved`` for the same id."""
    out: list[Suggestion | Resolved] = []
    for alert in alerts:
        sid = alert.key()
        if alert.status == "resolved":
            out.append(Resolved(mapping.source, sid))
            continue
        kind, rule = mapping.kind_of(alert.labels)
        claim: dict[str, Any] = {"kind": kind}
        if rule is not None:
            claim.update(
                {k: v for k, v in rule.model_dump(exclude={"match", "kind"}).items() if v is not None}
            )
        if mapping.observed_value and alert.values:
            observed = alert.values.get(mapping.observed_value)
            if observed is not None and math.isfinite(observed):
                claim["observed"] = observed
        summary = next(
            (alert.annotations[a] for a in mapping.summary_annotations if alert.annotations.get(a)), None
        )
        links = [
            u
            for u in (
                alert.generatorURL,
                alert.dashboardURL,
                alert.panelURL,
                alert.annotations.get("runbook_url", ""),
            )
            if u
        ]
        evidence: dict[str, Any] = {
            **context,
            "alert": {
                "labels": alert.labels,
                "annotations": alert.annotations,
                "fingerprint": alert.fingerprint,
                "startsAt": alert.startsAt.isoformat(),
            },
        }
        if alert.values is not None:
            evidence["alert"]["values"] = alert.values
        out.append(
            Suggestion(
                id=sid,
                source=mapping.source,
                created_at=alert.startsAt if mapping.created_at == "starts_at" else received_at,
                subject=mapping.subject_of(alert.labels),
                claim=claim,  # type: ignore[arg-type]
                summary=summary[:4096] if summary else None,
                evidence=evidence,
                links=links or None,
            )
        )
    return out
