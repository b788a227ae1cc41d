"""Suggestion v1 and Verdict v1: the two documents Referee takes in and gives out.

Both are pydantic models so that what arrives over HTTP is validated once, with errors that
name the field, and what leaves is always the same shape.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ClaimKind = Literal[
    "latency_high",
    "error_rate_high",
    "saturation_high",
    "traffic_drop",
    "traffic_spike",
    "anomaly",
]
VerdictValue = Literal["confirm", "suppress", "inconclusive"]
#: ``pending``: the claim window was not complete when decided, so the verdict is re-evaluated as
#: data arrives; ``settled``: final; ``closed``: the source resolved the alert (verdict kept).
VerdictStatus = Literal["pending", "settled", "closed"]


class Claim(BaseModel):
    """What the copilot says is happening."""

    model_config = ConfigDict(extra="forbid")

    kind: ClaimKind
    metric: str | None = Field(default=None, description="Metric name the claim is about.")
    signal: str | None = Field(
        default=None,
        description="Deprecated name of `metric` (kept in step with it for one release).",
        json_schema_extra={"deprecated": True},
    )
    statistic: str | None = Field(default=None, description="e.g. p99, rate, error_ratio.")
    direction: Literal["up", "down"] | None = None
    observed: float | None = Field(default=None, description="The value the copilot reports.")
    unit: str | None = None
    window: str | None = Field(
        default=None,
        description="How far back the claim looks, e.g. '10m' (informational; rules set their window).",
    )

    @model_validator(mode="after")
    def _metric_alias(self) -> Claim:
        # `signal` was this field's first name; both are accepted and kept equal, so rules that
        # read `suggestion.claim.signal` go on working. "signal" now means what a rule reads.
        if self.metric is None:
            self.metric = self.signal
        elif self.signal is None:
            self.signal = self.metric
        elif self.signal != self.metric:
            raise ValueError("claim.metric and its deprecated alias claim.signal disagree")
        return self


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    target: str | None = None


class Suggestion(BaseModel):
    """Suggestion v1: one claim from a copilot or alert source."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256, description="The source's idempotency key.")
    source: str = Field(default="api", min_length=1, max_length=128)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: dict[str, str] = Field(min_length=1, description="Resource attributes, e.g. service.name.")
    claim: Claim
    action: Action | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    summary: str | None = Field(default=None, max_length=4096)
    evidence: dict[str, Any] | None = None
    links: list[str] | None = None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    @property
    def service(self) -> str | None:
        return self.subject.get("service.name")


class Band(BaseModel):
    lower: float
    upper: float


class HostContext(BaseModel):
    """How the claimed metric stands among its subject's metrics at the decision time
    (``host`` in CEL; docs/baselines.md, "Host context")."""

    #: The subject's metrics whose evidence could be read over the window.
    metrics: int
    #: How many of them are anomalous now (Benjamini-Hochberg q-value at most ``alpha``).
    anomalous: int
    alpha: float
    #: The claimed metric's rank by p-value (1 = the most anomalous; 0 when unread).
    rank: int
    #: The claimed metric's two-sided p-value and its q-value among the subject's metrics.
    p: float | None = None
    q: float | None = None
    #: The anomalous metrics, most anomalous first (at most 10): where a likely cause is.
    anomalous_metrics: list[str] = []


class Evidence(BaseModel):
    """The numbers that decided a verdict (from the deciding rule's signal and baseline)."""

    metric: str | None = None
    statistic: str | None = None
    observed: float | None = None
    expected: float | None = None
    band: Band | None = None
    #: The window's highest raw per-point anomaly (``baseline.max_raw_score``).
    score: float | None = None
    samples: int | None = None
    window: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    baseline_model: str | None = None
    baseline_history: int | None = None
    baseline_freshness_s: float | None = None
    claimed: float | None = None
    #: Conformal p-value of the window against the series' own earlier windows, in the claimed
    #: direction (two-sided when the claim has none): small means rare for this series.
    p_value: float | None = None
    #: The claimed metric among its subject's, when the deciding rule read it.
    host: HostContext | None = None


class RuleTrace(BaseModel):
    """What one rule made of the suggestion."""

    # Immutable: the trace of a rule that did not match is the same for every suggestion, and
    # the decider shares one instance per rule.
    model_config = ConfigDict(frozen=True)

    rule_id: str
    mode: Literal["enforce", "shadow", "off"]
    priority: int
    matched: bool
    when: bool | None = None
    effect: VerdictValue | None = None
    reason: str | None = None
    missing: str | None = None
    error: str | None = None
    signal: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    #: The claimed metric among its subject's (``host``), when the rule's ``when`` read it.
    host: dict[str, Any] | None = None
    #: The exception that applied (the rule then has no effect).
    exception: str | None = None
    #: True for a protective rule (its confirm or inconclusive cannot be overridden by a suppression).
    protect: bool | None = None


class Verdict(BaseModel):
    """Verdict v1: Referee's opinion on one suggestion, with the evidence."""

    schema_version: Literal[1] = 1
    decision_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    suggestion_id: str
    source: str
    subject: dict[str, str]
    claim_kind: ClaimKind
    verdict: VerdictValue
    rule_ids: list[str]
    evidence: Evidence
    explanation: str
    trace: list[RuleTrace]
    rules_revision: str
    decided_at: datetime
    mode: Literal["enforce", "shadow"] = "enforce"
    # Lifecycle fields (optional, with defaults, so v1 clients that predate them keep working).
    status: VerdictStatus = Field(
        default="settled", description="pending (re-evaluated as data arrives), settled or closed."
    )
    version: int = Field(default=1, ge=1, description="Bumped each time re-evaluation changes the verdict.")
    settles_at: datetime | None = Field(
        default=None, description="When a pending verdict is re-evaluated for the last time."
    )

    # Verdict JSON leaves out the fields that have no value (all optional in the schema) unless
    # asked otherwise: a rule that did not match is then `{rule_id, mode, priority, matched}`,
    # which halves a verdict with many rules loaded, and with it the stored row and the answer.
    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("exclude_none", True)
        return super().model_dump(**kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("exclude_none", True)
        return super().model_dump_json(**kwargs)


class Finding(BaseModel):
    """What a watch rule saw on a live series without any suggestion: a possible miss.

    One finding stays open per (rule, series) while the rule's condition holds; ``closed_at``
    is set when it stops holding."""

    finding_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    rule_id: str
    severity: Literal["info", "warning", "critical"] = "warning"
    subject: dict[str, str] = Field(description="The series' attributes.")
    metric: str
    statistic: str
    observed: float | None = None
    expected: float | None = None
    band: Band | None = None
    #: As a verdict's ``evidence.score``: the window's highest raw per-point anomaly.
    score: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    found_at: datetime
    closed_at: datetime | None = None
    rules_revision: str | None = None

    @property
    def service(self) -> str | None:
        return self.subject.get("service.name")


def series_key(metric: str, statistic: str, attributes: dict[str, str]) -> str:
    """One string per series: metric, statistic and sorted attributes."""
    return json.dumps([metric, statistic, sorted(attributes.items())], separators=(",", ":"))
