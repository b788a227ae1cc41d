"""Referee's errors: one hierarchy, and one table from an error's code to what a client sees.

Every error Referee raises on purpose is a :class:`RefereeError` carrying a :class:`Code`. The
code alone decides the answer: the HTTP status (``HTTP_STATUS``) and, for OTLP, the
``google.rpc.Code`` of the status body and of gRPC (``RPC_CODE``). A handler never picks a
status itself; it raises, and the service's one error handler answers. Errors in bad input
also subclass ``ValueError``, so code that only knows Python's conventions still catches them.

``Retry-After`` is read here too (:func:`retry_after_seconds`): the delivery outbox and every
sink that talks HTTP honour a destination's own delay the same way.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar, Protocol


class Code(enum.Enum):
    """What went wrong, as a client needs to know it (the names follow ``google.rpc.Code``)."""

    INVALID_ARGUMENT = "invalid_argument"
    INVALID_DOCUMENT = "invalid_document"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


#: The one table: error code → HTTP status.
HTTP_STATUS: dict[Code, int] = {
    Code.INVALID_ARGUMENT: 400,
    Code.INVALID_DOCUMENT: 422,
    Code.UNAUTHENTICATED: 401,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.UNAVAILABLE: 503,
    Code.INTERNAL: 500,
}

#: Error code → ``google.rpc.Code`` number (OTLP status bodies and gRPC status codes), as the
#: Collector's receiver answers: 415 is INVALID_ARGUMENT, 413 RESOURCE_EXHAUSTED.
RPC_CODE: dict[Code, int] = {
    Code.INVALID_ARGUMENT: 3,
    Code.INVALID_DOCUMENT: 3,
    Code.UNAUTHENTICATED: 16,
    Code.NOT_FOUND: 5,
    Code.METHOD_NOT_ALLOWED: 12,
    Code.PAYLOAD_TOO_LARGE: 8,
    Code.UNSUPPORTED_MEDIA_TYPE: 3,
    Code.UNAVAILABLE: 14,
    Code.INTERNAL: 13,
}


class RefereeError(Exception):
    """Base of every error Referee raises on purpose.

    ``retry_after`` (seconds) is set on retryable refusals: the service sends it as
    ``Retry-After``; sinks carry a destination's own delay in it."""

    code: ClassVar[Code] = Code.INTERNAL

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def rpc_code(self) -> int:
        return RPC_CODE[self.code]


class InvalidInputError(RefereeError, ValueError):
    """Input that cannot be read (undecodable OTLP, a body that is not JSON)."""

    code = Code.INVALID_ARGUMENT


class InvalidDocumentError(RefereeError, ValueError):
    """A well-formed document that breaks its schema (a Suggestion v1 missing a field);
    ``details`` lists ``{"loc", "msg"}`` per problem."""

    code = Code.INVALID_DOCUMENT

    def __init__(self, message: str, *, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class ManyErrors(InvalidInputError):
    """Several problems found in one pass over files; ``errors`` holds one
    ``path:line:col: message`` line each (rule packs, rule tests, replay inputs)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class UnauthenticatedError(RefereeError):
    code = Code.UNAUTHENTICATED


class NotFoundError(RefereeError, LookupError):
    code = Code.NOT_FOUND


class PayloadTooLargeError(RefereeError, ValueError):
    code = Code.PAYLOAD_TOO_LARGE


class UnsupportedMediaTypeError(RefereeError, ValueError):
    code = Code.UNSUPPORTED_MEDIA_TYPE


class UnavailableError(RefereeError):
    """Refused for now (a full ingest queue, a destination that is down): retry later."""

    code = Code.UNAVAILABLE


class SinkRetryableError(UnavailableError):
    """Raised by a sink's ``deliver`` when delivery failed but may work later (timeout,
    connection refused, 429, 5xx): the verdict stays in the outbox and is retried with backoff.
    Any other exception marks the delivery as failed for good.

    ``retry_after`` (seconds) is the destination's own ``Retry-After``, when it sent one: the
    next attempt waits that long instead of the backoff (bounded by the outbox)."""


class _Headers(Protocol):
    def get(self, name: str, /) -> str | None: ...


def retry_after_seconds(headers: _Headers | None, now: datetime | None = None) -> float | None:
    """A response's ``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
    ``None`` when absent or unreadable; a date in the past is 0."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
