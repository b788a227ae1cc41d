"""OTLP/HTTP request handling: content negotiation, limits, and the protocol's responses.

The body goes to Rust as bytes, once per request; Rust inflates it (under the size limit),
decodes it and updates the series store. This module only picks the encoding and shapes the
answer the way the OTLP specification and the Collector's receiver do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from referee import _core

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class OtlpHttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        raise OtlpHttpError(415, f"unsupported content type {media or '(none)'!r}; use {PROTOBUF} or {JSON}")
    enc = (content_encoding or "identity").strip().lower()
    if enc not in ("gzip", "identity", ""):
        raise OtlpHttpError(415, f"unsupported content encoding {enc!r}; use gzip or none")
    return Negotiated(json=media == JSON, gzip=enc == "gzip")


def ingest_metrics(
    store: _core.SeriesStore, body: bytes, neg: Negotiated, max_body_bytes: int
) -> tuple[int, int, str]:
    try:
        return store.ingest_otlp_metrics(body, json=neg.json, gzip=neg.gzip, max_body_bytes=max_body_bytes)
    except _core.BodyTooLargeError as e:
        raise OtlpHttpError(413, str(e)) from None
    except _core.DecodeError as e:
        raise OtlpHttpError(400, str(e)) from None


def metrics_response(neg: Negotiated, rejected: int, message: str) -> bytes:
    """An ``ExportMetricsServiceResponse``; ``partial_success`` only when something was rejected."""
    if neg.json:
        if not rejected:
            return b"{}"
        return json.dumps(
            {"partialSuccess": {"rejectedDataPoints": str(rejected), "errorMessage": message}}
        ).encode()
    resp = metrics_service_pb2.ExportMetricsServiceResponse()
    if rejected:
        resp.partial_success.rejected_data_points = rejected
        resp.partial_success.error_message = message
    return resp.SerializeToString()


# google.rpc.Code values for the statuses OTLP receivers answer with.
_RPC_CODE = {400: 3, 413: 8, 415: 3, 429: 8, 503: 14, 405: 12}


def error_body(neg_json: bool, status: int, message: str) -> bytes:
    code = _RPC_CODE.get(status, 2)
    if neg_json:
        return json.dumps({"code": code, "message": message}).encode()
    return status_pb2.Status(code=code, message=message).SerializeToString()
