"""The feedback webhook: each verdict (and each new version of it) POSTed back to the copilot.

A ``VerdictSink`` driven by the durable outbox, so feedback survives restarts and outages of
the copilot. Every request carries ``Idempotency-Key: <decision_id>:<version>`` so the copilot
can drop a repeat (a POST whose answer was lost is sent again), and, for a new version of an
earlier verdict, ``Referee-Replaces: <previous key>`` (the ``previous_ref`` the outbox kept).
Timeouts, connection errors, 408, 429 and 5xx are retried (honouring ``Retry-After``); any
other answer is a permanent failure of that delivery. The token never appears in messages.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from referee import __version__
from referee.errors import SinkRetryableError, retry_after_seconds

if TYPE_CHECKING:
    from referee.config import FeedbackConfig, Secret
    from referee.models import Suggestion, Verdict

log = logging.getLogger("referee.feedback")

_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class FeedbackDeliveryError(Exception):
    """The copilot refused the feedback for a reason retrying will not fix (400, 401, 404, ...)."""


def idempotency_key(verdict: Verdict) -> str:
    return f"{verdict.decision_id}:{verdict.version}"


class FeedbackSink:
    name = "feedback"

    def __init__(self, url: str, token: Secret | None = None, timeout_s: float = 5.0) -> None:
        self._url = url
        self._token = token
        self._timeout_s = timeout_s

    @classmethod
    def from_config(cls, cfg: FeedbackConfig) -> FeedbackSink:
        return cls(cfg.url, cfg.token, cfg.timeout_s)

    def __repr__(self) -> str:
        return f"FeedbackSink(url={_display_url(self._url)!r}, token={'set' if self._token else 'unset'})"

    def describe(self, verdict: Verdict, suggestion: Suggestion) -> dict[str, Any]:
        return {
            "url": _display_url(self._url),
            "headers": {"Idempotency-Key": idempotency_key(verdict)},
            "body": verdict.model_dump(mode="json"),
        }

    def deliver(self, verdict: Verdict, suggestion: Suggestion, previous_ref: str | None) -> str | None:
        key = idempotency_key(verdict)
        if previous_ref == key:
            return key  # this version already reached the copilot
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"referee/{__version__}",
            "Idempotency-Key": key,
        }
        if previous_ref:
            headers["Referee-Replaces"] = previous_ref
        if self._token:
            headers["Authorization"] = f"Bearer {self._token.get()}"
        request = urllib.request.Request(
            self._url, data=verdict.model_dump_json().encode(), headers=headers, method="POST"
        )
        where = f"feedback POST {_display_url(self._url)}"
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as e:
            status = e.code
            e.close()
            if status in _RETRYABLE:
                raise SinkRetryableError(
                    f"{where}: HTTP {status}", retry_after=retry_after_seconds(e.headers)
                ) from None
            raise FeedbackDeliveryError(f"{where}: HTTP {status}") from None
        except TimeoutError:
            raise SinkRetryableError(f"{where}: no answer within {self._timeout_s:g} s") from None
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise SinkRetryableError(f"{where}: {type(reason).__name__}: {reason}") from None
        log.debug("feedback for %s delivered", key)
        return key


def _display_url(url: str) -> str:
    """``url`` without user info or query, where credentials could hide."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
