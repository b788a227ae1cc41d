"""The Grafana verdict sink: writes a verdict as an annotation, and updates it when the same
decision is delivered again.

Requests go through grafana-client's low-level ``api.client.POST``/``PATCH`` with bodies built by
``referee_grafana.annotation``: its ``add_annotation``/``partial_update_annotation`` helpers send
``null``s and ``"tags": []``, which break the schema and wipe tags. Errors are mapped to
``SinkRetryableError`` (worth retrying) or ``GrafanaDeliveryError`` (permanent), with messages
that never contain the token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
)

from referee.config import GrafanaTarget, Secret
from referee.errors import SinkRetryableError, retry_after_seconds
from referee_grafana.annotation import annotation_body, decision_tag, patch_body

if TYPE_CHECKING:
    from referee.config import Settings
    from referee.models import Suggestion, Verdict

logger = logging.getLogger(__name__)

#: 408 and 429 are the client errors that mean "not now" rather than "never".
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})


class GrafanaDeliveryError(Exception):
    """Grafana refused the annotation for a reason retrying will not fix (400, 401, 403, …)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GrafanaRetryableError(SinkRetryableError):
    """A delivery that may succeed later (timeout, connection error, 429, 5xx).

    ``retry_after`` is Grafana's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status


class GrafanaAnnotationSink:
    """Writes verdicts as Grafana annotations on the service's dashboard (or organisation-wide).

    Without ``url`` and ``token`` the sink can still ``describe`` (used by ``referee demo``);
    ``deliver`` then raises ``GrafanaDeliveryError``.
    """

    name = "grafana"

    def __init__(
        self,
        url: str | None,
        token: Secret | str | None,
        *,
        base_url: str,
        timeout_s: float = 5.0,
        dashboards: Mapping[str, GrafanaTarget] | None = None,
    ) -> None:
        self._url = _api_root(url) if url else None
        self._token = Secret(token) if isinstance(token, str) else token
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._dashboards: dict[str, GrafanaTarget] = dict(dashboards or {})

    @classmethod
    def from_settings(cls, settings: Settings) -> GrafanaAnnotationSink:
        return cls(
            settings.grafana_url,
            settings.grafana_token,
            base_url=settings.base_url,
            timeout_s=settings.grafana_timeout_s,
            dashboards=settings.grafana_dashboards,
        )

    def __repr__(self) -> str:
        token = "set" if self._token else "unset"
        return (
            f"GrafanaAnnotationSink(url={_display_url(self._url)!r}, token={token}, "
            f"timeout_s={self._timeout_s}, dashboards={sorted(self._dashboards)})"
        )

    __str__ = __repr__

    def describe(self, verdict: Verdict, suggestion: Suggestion) -> dict[str, Any]:
        """The exact JSON body ``deliver`` POSTs for this verdict."""
        return annotation_body(verdict, suggestion, base_url=self._base_url, dashboards=self._dashboards)

    def deliver(self, verdict: Verdict, suggestion: Suggestion, previous_ref: str | None) -> str | None:
        """POSTs a new annotation, or PATCHes ``previous_ref``; returns the annotation id."""
        body = self.describe(verdict, suggestion)
        if previous_ref is not None and not previous_ref.strip().isdigit():
            logger.warning("ignoring previous annotation ref %r: not a Grafana annotation id", previous_ref)
            previous_ref = None
        with self._api() as call:
            if previous_ref is not None:
                annotation_id = previous_ref.strip()
                try:
                    call("PATCH", f"/annotations/{annotation_id}", patch_body(body))
                except GrafanaDeliveryError as exc:
                    if exc.status != 404:
                        raise
                    # Someone deleted it in Grafana: write it again rather than lose the verdict.
                    logger.info("annotation %s is gone from Grafana; creating a new one", annotation_id)
                else:
                    logger.debug(
                        "patched Grafana annotation %s for decision %s", annotation_id, verdict.decision_id
                    )
                    return annotation_id
            else:
                # A POST that timed out may still have been written: look before writing again.
                found = call(
                    "GET", "/annotations", None, {"tags": decision_tag(verdict.decision_id), "limit": 1}
                )
                if isinstance(found, list) and found and found[0].get("id") is not None:
                    annotation_id = str(found[0]["id"])
                    call("PATCH", f"/annotations/{annotation_id}", patch_body(body))
                    return annotation_id
            answer = call("POST", "/annotations", body)
        annotation_id = _created_id(answer)
        logger.debug("created Grafana annotation %s for decision %s", annotation_id, verdict.decision_id)
        return annotation_id

    @contextmanager
    def _api(self) -> Iterator[Callable[..., Any]]:
        """A ``call(method, path, body)`` over a fresh grafana-client session, closed afterwards.

        One session per delivery: verdicts are rare, and the sink protocol has no ``close`` in
        which a long-lived session (and its sockets) could be released.
        """
        if not self._url or not self._token:
            raise GrafanaDeliveryError("Grafana is not configured (GRAFANA_URL and GRAFANA_TOKEN)")
        api = GrafanaApi.from_url(self._url, credential=self._token.get(), timeout=self._timeout_s)
        session = api.client.s
        # grafana-client's exceptions keep the body but not the headers; Retry-After is there.
        last_response: list[Any] = []
        session.hooks["response"].append(lambda response, *args, **kwargs: last_response.append(response))

        def call(
            method: str, path: str, body: dict[str, Any] | None, params: dict[str, Any] | None = None
        ) -> Any:
            last_response.clear()
            try:
                if body is None:
                    return getattr(api.client, method)(path, params=params)
                return getattr(api.client, method)(path, json=body)
            except Exception as exc:
                headers = last_response[-1].headers if last_response else {}
                # "from None": the chained niquests exception holds the request, Authorization
                # header included; the message below carries everything worth logging.
                raise self._translate(exc, method, path, headers) from None

        try:
            yield call
        finally:
            session.close()

    def _translate(self, exc: Exception, method: str, path: str, headers: Mapping[str, str]) -> Exception:
        where = f"Grafana {method} {_display_url(self._url)}/api{path}"
        if isinstance(exc, GrafanaTimeoutError):
            return GrafanaRetryableError(f"{where}: no answer within {self._timeout_s:g} s")
        if isinstance(exc, GrafanaServerError | GrafanaClientError):
            status = exc.status_code
            detail = self._scrub(str(exc.message))
            if isinstance(exc, GrafanaServerError) or status in _RETRYABLE_CLIENT_STATUSES:
                return GrafanaRetryableError(
                    f"{where}: {detail}", status=status, retry_after=retry_after_seconds(headers)
                )
            hint = {
                401: " (check GRAFANA_TOKEN)",
                403: " (the token needs annotations:create and annotations:write)",
            }.get(status, "")
            return GrafanaDeliveryError(f"{where}: HTTP {status}: {detail}{hint}", status=status)
        if isinstance(exc, GrafanaException):  # grafana-client's wrapper of niquests.HTTPError
            return GrafanaRetryableError(f"{where}: {self._scrub(str(exc.message))}")
        if isinstance(exc, niquests.exceptions.Timeout):
            return GrafanaRetryableError(f"{where}: no answer within {self._timeout_s:g} s")
        if isinstance(exc, niquests.exceptions.ConnectionError | niquests.exceptions.ChunkedEncodingError):
            return GrafanaRetryableError(f"{where}: {type(exc).__name__}: {self._scrub(str(exc))}")
        if isinstance(exc, niquests.exceptions.RequestException):
            # Bad URL, a 200 that is not JSON (a login page in front of Grafana), …: configuration.
            return GrafanaDeliveryError(f"{where}: {type(exc).__name__}: {self._scrub(str(exc))}")
        return exc

    def _scrub(self, text: str) -> str:
        secret = self._token.get() if self._token else ""
        return text.replace(secret, "**********") if secret else text


def _created_id(answer: Any) -> str:
    annotation_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(annotation_id, int) or isinstance(annotation_id, bool):
        raise GrafanaDeliveryError(f"Grafana answered POST /annotations without an id: {str(answer)[:200]!r}")
    return str(annotation_id)


def _api_root(url: str) -> str:
    """``url`` with a trailing slash on a non-empty path: grafana-client glues ``api`` straight
    onto the path, so ``https://host/grafana`` would become ``https://host/grafanaapi``."""
    parts = urlsplit(url)
    if parts.path and not parts.path.endswith("/"):
        parts = parts._replace(path=parts.path + "/")
    return urlunsplit(parts)


def _display_url(url: str | None) -> str | None:
    """``url`` without user info or query (where credentials could hide)."""
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:  # a malformed port; repr() must not raise
        netloc = host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
