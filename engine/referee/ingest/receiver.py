"""The OTLP receiver core, shared by the HTTP and gRPC front ends: authorisation, limits,
back-pressure, the three signals, and the protocol's responses.

The body goes to Rust as bytes, once per request; Rust inflates it (under the size limit),
decodes it and updates the series store. This module picks the encoding, bounds the work in
flight, turns ``copilot.suggestion`` log events into suggestions, and shapes the answer the
way the OTLP specification and the Collector's receiver do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from google.protobuf.message import Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from pydantic import ValidationError

from referee import _core
from referee.config import Settings
from referee.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    RefereeError,
    UnauthenticatedError,
    UnavailableError,
    UnsupportedMediaTypeError,
)
from referee.models import Suggestion

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SUGGESTION_EVENT = "copilot.suggestion"


class Signal(Enum):
    METRICS = "metrics"
    LOGS = "logs"
    TRACES = "traces"


# Per signal: the response message and its partial_success counter (proto and JSON names).
_RESPONSES: dict[Signal, tuple[Callable[[], Message], str, str]] = {
    Signal.METRICS: (
        metrics_service_pb2.ExportMetricsServiceResponse,
        "rejected_data_points",
        "rejectedDataPoints",
    ),
    Signal.LOGS: (logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records", "rejectedLogRecords"),
    Signal.TRACES: (trace_service_pb2.ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
}


@dataclass
class Negotiated:
    json: bool
    gzip: bool

    @property
    def media_type(self) -> str:
        return JSON if self.json else PROTOBUF


def negotiate(content_type: str | None, content_encoding: str | None) -> Negotiated:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaTypeError(
            f"unsupported content type {media or '(none)'!r}; use {PROTOBUF} or {JSON}"
        )
    enc = (content_encoding or "identity").strip().lower()
    if enc not in ("gzip", "identity", ""):
        raise UnsupportedMediaTypeError(f"unsupported content encoding {enc!r}; use gzip or none")
    return Negotiated(json=media == JSON, gzip=enc == "gzip")


class IngestGate:
    """Bounds the OTLP work in flight: at most ``max_requests`` requests and ``max_bytes`` of
    body at once. A request over either bound is refused at once (503 with ``Retry-After``),
    which OTLP clients retry after the delay, instead of queueing without bound."""

    def __init__(self, max_requests: int, max_bytes: int, retry_after_s: int = 1) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.refused = 0

    @contextmanager
    def admit(self, size: int) -> Iterator[None]:
        with self._lock:
            if self.requests + 1 > self.max_requests or (
                self.requests and self.bytes + size > self.max_bytes
            ):
                self.refused += 1
                raise UnavailableError("ingest queue is full; retry later", retry_after=self.retry_after_s)
            self.requests += 1
            self.bytes += size
        try:
            yield
        finally:
            with self._lock:
                self.requests -= 1
                self.bytes -= size


@dataclass
class ExportResult:
    accepted: int = 0
    rejected: int = 0
    message: str = ""
    suggestions: list[Suggestion] = field(default_factory=list)


def suggestion_from_event(event: _core.SuggestionEvent) -> Suggestion:
    """A ``copilot.suggestion`` log event as Suggestion v1.

    The body is the suggestion: a key-value map, or a string holding JSON (Rust hands either
    over as JSON text). Missing fields are taken from the record: ``created_at`` from its time,
    ``source`` from the emitting resource's ``service.name`` (the copilot). Raises
    ``ValueError`` with the reason."""
    try:
        doc = json.loads(event.body)
    except json.JSONDecodeError as e:
        raise ValueError(f"body is neither a map nor JSON: {e.msg}") from None
    if not isinstance(doc, dict):
        raise ValueError("body must be a key-value map or a JSON object")
    if "source" not in doc and (src := event.resource.get("service.name")):
        doc["source"] = src
    if "created_at" not in doc and event.time_unix_nano:
        doc["created_at"] = datetime.fromtimestamp(event.time_unix_nano / 1e9, tz=UTC).isoformat()
    try:
        return Suggestion.model_validate(doc)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise ValueError(f"not a valid Suggestion v1: {where}: {first['msg']}") from None


def export(
    store: _core.SeriesStore, signal: Signal, body: bytes, neg: Negotiated, max_body_bytes: int
) -> ExportResult:
    """Decodes one export request into the store; log events come back as suggestions."""
    js, gz, limit = neg.json, neg.gzip, max_body_bytes
    try:
        if signal is Signal.METRICS:
            report = store.ingest_otlp_metrics(body, json=js, gzip=gz, max_body_bytes=limit)
        elif signal is Signal.TRACES:
            report = store.ingest_otlp_traces(body, json=js, gzip=gz, max_body_bytes=limit)
        else:
            report = store.ingest_otlp_logs(body, json=js, gzip=gz, max_body_bytes=limit)
    except _core.BodyTooLargeError as e:
        raise PayloadTooLargeError(str(e)) from None
    except _core.DecodeError as e:
        raise InvalidInputError(str(e)) from None
    result = ExportResult(report.accepted, report.rejected, report.message)
    for event in report.suggestions:
        try:
            result.suggestions.append(suggestion_from_event(event))
        except ValueError as e:
            result.accepted -= 1
            result.rejected += 1
            result.message = result.message or f"copilot.suggestion event rejected: {e}"
    return result


def response(signal: Signal, as_json: bool, rejected: int, message: str) -> bytes:
    """An ``Export*ServiceResponse``; ``partial_success`` only when something was rejected."""
    factory, proto_field, json_field = _RESPONSES[signal]
    if as_json:
        if not rejected:
            return b"{}"
        return json.dumps({"partialSuccess": {json_field: str(rejected), "errorMessage": message}}).encode()
    resp = factory()
    if rejected:
        partial = resp.partial_success
        setattr(partial, proto_field, rejected)
        partial.error_message = message
    return resp.SerializeToString()


def error_body(as_json: bool, error: RefereeError) -> bytes:
    """A ``google.rpc.Status`` body for a refused request, in the request's encoding."""
    if as_json:
        return json.dumps({"code": error.rpc_code, "message": error.message}).encode()
    return status_pb2.Status(code=error.rpc_code, message=error.message).SerializeToString()


class Receiver:
    """What both front ends call: one export request in, the OTLP answer's parts out.

    ``submit`` decides each ``copilot.suggestion`` event; ``authorised`` checks the
    ``Authorization`` header (or gRPC metadata). Errors are :class:`RefereeError`s, answered by
    each front end from their code."""

    def __init__(
        self,
        store: _core.SeriesStore,
        gate: IngestGate,
        settings: Settings,
        authorised: Callable[[str | None], bool],
        submit: Callable[[Suggestion], object],
    ) -> None:
        self.store, self.gate, self.settings = store, gate, settings
        self.authorised, self.submit = authorised, submit

    @property
    def max_body_bytes(self) -> int:
        """The body limit after decompression (read from the settings at each request)."""
        return self.settings.max_body_bytes

    def check_auth(self, header: str | None) -> None:
        if not self.authorised(header):
            raise UnauthenticatedError("missing or invalid bearer token")

    def export(self, signal: Signal, body: bytes, neg: Negotiated) -> ExportResult:
        """Decodes into the store (under the caller's admission), submits the suggestions."""
        result = export(self.store, signal, body, neg, self.max_body_bytes)
        for suggestion in result.suggestions:
            self.submit(suggestion)
        return result
