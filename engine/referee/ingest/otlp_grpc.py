"""OTLP/gRPC receiver: the three ``Export`` services on ``127.0.0.1:4317`` by default.

The handlers are registered as generic handlers with no request deserializer, so the request
bytes reach Rust exactly as they came off the wire (gRPC's own gzip is undone by grpcio),
the same path as OTLP/HTTP protobuf. Status codes follow the OTLP specification:
INVALID_ARGUMENT for undecodable data, RESOURCE_EXHAUSTED for an oversized message,
UNAVAILABLE when the ingest queue is full (retryable), UNAUTHENTICATED without a valid token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc

from referee.ingest import otlp_http
from referee.ingest.otlp_http import Negotiated, OtlpHttpError, Signal

if TYPE_CHECKING:
    from referee.service.runtime import Runtime

log = logging.getLogger("referee.grpc")

_SERVICES = {
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
}
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def _handler(runtime: Runtime, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
    settings = runtime.settings

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            if settings.auth_tokens:
                metadata = dict(context.invocation_metadata())
                if not runtime.authorised(metadata.get("authorization")):
                    raise OtlpHttpError(401, "missing or invalid bearer token")
            with runtime.ingest_gate.admit(len(request)):
                result = otlp_http.export(
                    runtime.store,
                    signal,
                    request,
                    Negotiated(json=False, gzip=False),
                    settings.max_body_bytes,
                )
        except OtlpHttpError as e:
            if e.retry_after:
                context.set_trailing_metadata((("retry-after", str(e.retry_after)),))
            context.abort(_CODES.get(e.status, grpc.StatusCode.INTERNAL), e.message)
        for suggestion in result.suggestions:
            runtime.submit(suggestion)
        return otlp_http.response(signal, False, result.rejected, result.message)

    return export


def start(runtime: Runtime, host: str, port: int) -> tuple[grpc.Server, int]:
    """Starts the receiver; returns the server and the port it listens on (``port`` 0 picks one)."""
    limit = runtime.settings.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc"),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", 1 << 20)],
    )
    handlers: list[Any] = []
    for signal, service in _SERVICES.items():
        method = grpc.unary_unary_rpc_method_handler(
            _handler(runtime, signal), request_deserializer=None, response_serializer=None
        )
        handlers.append(grpc.method_handlers_generic_handler(service, {"Export": method}))
    server.add_generic_rpc_handlers(handlers)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    server.start()
    log.info("OTLP/gRPC listening on %s:%d", host, bound)
    return server, bound
