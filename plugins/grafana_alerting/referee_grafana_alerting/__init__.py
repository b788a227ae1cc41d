"""Referee's Grafana Alerting source: ``POST /api/v1/sources/grafana-alerting`` takes Grafana's
webhook contact point payload (``version: "1"``). Each firing alert becomes a Suggestion v1,
idempotent on ``<fingerprint>@<startsAt>``; a resolved alert closes that suggestion's verdict.
The label mapping is ``sources.grafana_alerting`` in referee.yaml; ``observed_value`` names the
``values`` refID reported as ``claim.observed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from referee import hookimpl
from referee.config import Settings
from referee.hookspecs import Resolved
from referee.ingest.alerts import Alert, AlertMapping, parse_json, to_items
from referee.models import Suggestion


class GrafanaAlertingWebhook(BaseModel):
    """Grafana Alerting's webhook body (fields Referee does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["1"]
    status: Literal["firing", "resolved"]
    orgId: int | None = None
    receiver: str = ""
    groupKey: str = ""
    externalURL: str = ""
    title: str = ""
    alerts: list[Alert]


class GrafanaAlertingSource:
    name = "grafana-alerting"
    path = "grafana-alerting"

    def __init__(self, mapping: AlertMapping) -> None:
        self.mapping = mapping

    def parse(self, body: bytes, content_type: str) -> Sequence[Suggestion | Resolved]:
        raw = parse_json(body)
        if isinstance(raw, dict) and "version" in raw and raw["version"] != "1":
            raise ValueError(f'version: expected Grafana webhook version "1", got {raw["version"]!r}')
        hook = GrafanaAlertingWebhook.model_validate(raw)
        context: dict[str, Any] = {"receiver": hook.receiver, "groupKey": hook.groupKey}
        if hook.orgId is not None:
            context["orgId"] = hook.orgId
        if hook.externalURL:
            context["externalURL"] = hook.externalURL
        return to_items(hook.alerts, self.mapping, datetime.now(UTC), context)


@hookimpl
def referee_suggestion_sources(settings: Settings) -> list[GrafanaAlertingSource]:
    mapping = AlertMapping.from_settings(
        settings.sources.get("grafana_alerting"), "grafana_alerting", "grafana-alerting"
    )
    return [GrafanaAlertingSource(mapping)]
