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
from typing import Any

import grpc

from referee.errors import RefereeError
from referee.ingest.receiver import Negotiated, Receiver, Signal, response

log = logging.getLogger("referee.grpc")

_SERVICES = {
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
}
#: google.rpc.Code number → grpc.StatusCode (the numbers come from referee.errors.RPC_CODE).
_STATUS = {code.value[0]: code for code in grpc.StatusCode}


def _handler(receiver: Receiver, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
    plain = Negotiated(json=False, gzip=False)

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            metadata = dict(context.invocation_metadata())
            receiver.check_auth(metadata.get("authorization"))
            with receiver.gate.admit(len(request)):
                result = receiver.export(signal, request, plain)
        except RefereeError as e:
            if e.retry_after:
                context.set_trailing_metadata((("retry-after", str(int(e.retry_after))),))
            context.abort(_STATUS.get(e.rpc_code, grpc.StatusCode.INTERNAL), e.message)
        return response(signal, False, result.rejected, result.message)

    return export


def start(receiver: Receiver, host: str, port: int) -> tuple[grpc.Server, int]:
    """Starts the receiver; returns the server and the port it listens on (``port`` 0 picks one)."""
    limit = receiver.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc"),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", 1 << 20)],
    )
    handlers: list[Any] = []
    for signal, service in _SERVICES.items():
        method = grpc.unary_unary_rpc_method_handler(
            _handler(receiver, signal), request_deserializer=None, response_serializer=None
        )
        handlers.append(grpc.method_handlers_generic_handler(service, {"Export": method}))
    server.add_generic_rpc_handlers(handlers)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    server.start()
    log.info("OTLP/gRPC listening on %s:%d", host, bound)
    return server, bound
