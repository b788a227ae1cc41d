"""Referee's Grafana plugin: writes each verdict as an annotation on the service's dashboard.

Found through the ``referee`` entry-point group (``grafana = referee_grafana``); this module
holds the hook implementations. The plugin runs inside a Referee process and imports
``referee`` from it, which is why the ``referee-grafana`` distribution does not depend on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from referee.hookspecs import hookimpl
from referee_grafana.sink import GrafanaAnnotationSink, GrafanaDeliveryError, GrafanaRetryableError

if TYPE_CHECKING:
    from referee.config import Settings
    from referee.hookspecs import VerdictSink

__all__ = [
    "GrafanaAnnotationSink",
    "GrafanaDeliveryError",
    "GrafanaRetryableError",
    "referee_verdict_previews",
    "referee_verdict_sinks",
]


@hookimpl
def referee_verdict_sinks(settings: Settings) -> list[VerdictSink]:
    """The Grafana sink when both ``grafana_url`` and ``grafana_token`` are set, else nothing."""
    if not settings.grafana_url or not settings.grafana_token:
        return []
    return [GrafanaAnnotationSink.from_settings(settings)]


@hookimpl
def referee_verdict_previews(settings: Settings) -> list[VerdictSink]:
    """A sink that only describes, for showing annotations without a Grafana (``referee demo``)."""
    return [
        GrafanaAnnotationSink(None, None, base_url=settings.base_url, dashboards=settings.grafana_dashboards)
    ]
