"""Referee's Alertmanager source: ``POST /api/v1/sources/alertmanager`` takes Alertmanager's
webhook (payload version 4). Each firing alert becomes a Suggestion v1, idempotent on
``<fingerprint>@<startsAt>``; a resolved alert closes that suggestion's verdict. The label
mapping is ``sources.alertmanager`` in referee.yaml (``referee.ingest.alerts.AlertMapping``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from referee import hookimpl
from referee.config import Settings
from referee.hookspecs import Resolved
from referee.ingest.alerts import Alert, AlertMapping, parse_json, to_items
from referee.models import Suggestion

log = logging.getLogger("referee.alertmanager")


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook body, version 4 (fields Referee does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    externalURL: str = ""
    alerts: list[Alert]


class AlertmanagerSource:
    name = "alertmanager"
    path = "alertmanager"

    def __init__(self, mapping: AlertMapping) -> None:
        self.mapping = mapping

    def parse(self, body: bytes, content_type: str) -> Sequence[Suggestion | Resolved]:
        raw = parse_json(body)
        if isinstance(raw, dict) and "version" in raw and raw["version"] != "4":
            raise ValueError(f'version: expected payload version "4", got {raw["version"]!r}')
        hook = AlertmanagerWebhook.model_validate(raw)
        if hook.truncatedAlerts:
            log.warning(
                "alertmanager receiver %r truncated %d alerts of group %s (raise max_alerts)",
                hook.receiver,
                hook.truncatedAlerts,
                hook.groupKey,
            )
        context: dict[str, Any] = {"receiver": hook.receiver, "groupKey": hook.groupKey}
        if hook.externalURL:
            context["externalURL"] = hook.externalURL
        return to_items(hook.alerts, self.mapping, datetime.now(UTC), context)


@hookimpl
def referee_suggestion_sources(settings: Settings) -> list[AlertmanagerSource]:
    mapping = AlertMapping.from_settings(settings.sources.get("alertmanager"), "alertmanager", "alertmanager")
    return [AlertmanagerSource(mapping)]
