"""The hooks a Referee plugin can implement.

Plugins are modules or objects with functions marked ``@referee.hookimpl`` and are found
through the ``referee`` entry-point group (see ``referee.plugins``). Every hook is listed in
``docs/plugins.md``; a test fails when one is missing there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

# Re-exported: sinks have always imported it from here.
from referee.errors import SinkRetryableError as SinkRetryableError

if TYPE_CHECKING:
    from referee.config import Settings
    from referee.models import Suggestion, Verdict

hookspec = pluggy.HookspecMarker("referee")
hookimpl = pluggy.HookimplMarker("referee")


class VerdictSink(Protocol):
    """Somewhere verdicts go (Grafana annotations, a webhook, ...).

    ``deliver`` is called from a background worker, once per verdict; it returns the id the
    destination gave the written object (for example a Grafana annotation id), which is stored
    and passed back as ``previous_ref`` when the same decision is delivered again, so a sink
    updates instead of duplicating. Raise ``SinkRetryableError`` for failures worth retrying.
    """

    name: str

    def describe(self, verdict: Verdict, suggestion: Suggestion) -> dict[str, Any]:
        """What ``deliver`` would write, as a JSON-able dict (shown by ``referee demo``)."""
        ...

    def deliver(self, verdict: Verdict, suggestion: Suggestion, previous_ref: str | None) -> str | None:
        """Writes the verdict; returns the destination's reference to it."""
        ...


@dataclass(frozen=True)
class Resolved:
    """What a source's ``parse`` returns, next to suggestions, when the condition behind an
    earlier suggestion is over (a resolved alert): its verdict is closed and kept."""

    source: str
    suggestion_id: str


class SuggestionSource(Protocol):
    """A way suggestions arrive besides ``POST /api/v1/suggestions``.

    ``path`` is mounted under ``/api/v1/sources/``; ``parse`` turns one request body into
    Suggestion v1 documents (and ``Resolved`` markers), or raises ``ValueError`` with a reason
    (answered with 400; a pydantic ``ValidationError`` with 422 and the failing fields).
    """

    name: str
    path: str

    def parse(self, body: bytes, content_type: str) -> Sequence[Suggestion | Resolved]: ...


@hookspec
def referee_verdict_sinks(settings: Settings) -> list[VerdictSink] | None:
    """Return the verdict sinks this plugin provides, given the service's settings.

    Return ``None`` or an empty list when the plugin is not configured (for example the
    Grafana plugin without ``GRAFANA_URL``).
    """


@hookspec
def referee_verdict_previews(settings: Settings) -> list[VerdictSink] | None:
    """Return sinks that can ``describe()`` what they would write even when not configured.

    ``referee demo`` uses them to show, for example, the Grafana annotations it would write
    without a Grafana. Their ``deliver`` is never called.
    """


@hookspec
def referee_suggestion_sources(settings: Settings) -> list[SuggestionSource] | None:
    """Return suggestion sources to mount under ``/api/v1/sources/<path>``."""


@hookspec
def referee_register_rule_functions(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register functions that rule conditions may call: ``register(name, function)``.

    Functions take and return CEL values (bool, int, float, str, list, dict). They are
    called while a rule is evaluated and must be quick and side-effect free.
    """
