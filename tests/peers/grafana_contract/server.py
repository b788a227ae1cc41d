"""A loopback stand-in for Grafana's annotation API that checks every request against the contract.

Grafana cannot run on our machines, and grafana-client talks through niquests, which
``responses``/``requests-mock`` do not intercept; so this is a real HTTP server on 127.0.0.1.
Every request is validated with openapi-core against
``tests/contracts/grafana-annotations-openapi.json`` (path, query, body, security) and recorded;
failures land in ``violations`` and are answered 400 (401 when authentication is missing), so a
test asserts ``server.violations == []``. Valid requests are answered as Grafana's Go handlers do
(see the contracts README): in-memory annotations, PATCH replacing ``tags`` whenever present,
``text`` only when non-empty, ``time``/``timeEnd`` only when > 0.

Fault injection: ``fail_next(status, count, retry_after)`` and ``delay_next(seconds, count)``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.exceptions import SecurityValidationError
from werkzeug.datastructures import Headers, ImmutableMultiDict

CONTRACT_FILE = "grafana-annotations-openapi.json"
API_PREFIX = "/api"


def contracts_dir() -> Path:
    """``$REFEREE_CONTRACTS_DIR``, else ``tests/contracts``."""
    configured = os.environ.get("REFEREE_CONTRACTS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "contracts"


@lru_cache(maxsize=4)
def load_contract(path: Path) -> OpenAPI:
    """The parsed and checked spec; cached because checking it takes a noticeable fraction of a second."""
    return OpenAPI.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    #: Parsed JSON, the raw text when it is not JSON, None without a body.
    body: Any
    authorized: bool


@dataclass(frozen=True)
class Violation:
    method: str
    path: str
    errors: list[str]
    body: Any


@dataclass
class _Fault:
    status: int
    retry_after: float | None
    message: str | None


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _ContractRequest:
    """A request as openapi-core's ``Request`` protocol wants it."""

    def __init__(
        self,
        host_url: str,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Headers,
        body: bytes,
    ) -> None:
        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.body: bytes | None = body or None
        self.content_type = headers.get("Content-Type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=headers, cookie=ImmutableMultiDict(), path={}
        )


class GrafanaContractServer:
    """Start with ``start()`` or ``with``; ``url`` is the Grafana root (no ``/api``)."""

    def __init__(
        self,
        token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        contract: Path | None = None,
    ) -> None:
        self.token = token
        self._contract = load_contract(contract or contracts_dir() / CONTRACT_FILE)
        self.annotations: dict[int, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.violations: list[Violation] = []
        #: Exceptions raised inside handlers (answered 500): bugs in this server.
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._next_id = 1
        self._faults: deque[_Fault] = deque()
        self._delays: deque[float] = deque()
        self._stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> GrafanaContractServer:
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="grafana-contract", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving, wakes delayed handlers, closes open connections, joins every thread."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()  # joins the handler threads

    def __enter__(self) -> GrafanaContractServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(
        self, status: int, count: int = 1, retry_after: float | None = None, message: str | None = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (after recording and validating them),
        with ``{"message": message}`` and, when given, a ``Retry-After`` header."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after, message) for _ in range(count))

    def delay_next(self, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` requests for ``seconds`` before handling them.

        The request is still applied afterwards, as on a slow real server: a client that timed
        out does not know whether its annotation was written.
        """
        with self._lock:
            self._delays.extend(seconds for _ in range(count))

    # -- request handling -------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> _Answer | None:
        split = urlsplit(handler.path)
        query = parse_qsl(split.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = Headers(list(handler.headers.items()))
        authorized = self._authorized(headers.get("Authorization"))
        request = _ContractRequest(self.url, handler.command, split.path, query, headers, raw)
        result = self._contract.unmarshal_request(request)
        errors = [_describe(error) for error in result.errors]
        body = _parse_body(raw)
        security_failed = any(isinstance(error, SecurityValidationError) for error in result.errors)
        with self._lock:
            self.requests.append(RecordedRequest(handler.command, split.path, query, body, authorized))
            if errors:
                self.violations.append(Violation(handler.command, split.path, errors, body))
            delay = self._delays.popleft() if self._delays else 0.0
            fault = self._faults.popleft() if self._faults else None
        if delay and self._stopping.wait(delay):
            return None  # shutting down: drop the connection unanswered
        if fault is not None:
            extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return _Answer(fault.status, {"message": fault.message or f"injected {fault.status}"}, extra)
        # Grafana authenticates before it reads the body.
        if not authorized or security_failed:
            return _Answer(401, {"message": "Invalid API key"})
        if errors:
            return _Answer(
                400, {"message": "request violates the Grafana contract", "error": "; ".join(errors)}
            )
        try:
            return self._dispatch(handler.command, split.path, result.parameters.query, body)
        except Exception as exc:  # a bug here must fail the test, not hang the client
            self.errors.append(exc)
            return _Answer(500, {"message": "contract server error", "error": repr(exc)})

    def _authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.token}".encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)

    def _dispatch(self, method: str, path: str, query: Mapping[str, Any], body: Any) -> _Answer:
        route = path.removeprefix(API_PREFIX)
        if route == "/annotations":
            if method == "POST":
                return self._create(body)
            return self._find(query)
        annotation_id = route.removeprefix("/annotations/")
        if annotation_id in ("graphite", "mass-delete", "tags"):
            return _Answer(501, {"message": f"{route} is not implemented by the contract server"})
        if not annotation_id.isdigit():
            return _Answer(400, {"message": "annotationId is invalid"})
        number = int(annotation_id)
        if method == "DELETE":
            with self._lock:
                # Grafana 11 and 12 answer 200 for unknown ids too.
                self.annotations.pop(number, None)
            return _Answer(200, {"message": "Annotation deleted"})
        with self._lock:
            existing = self.annotations.get(number)
            if existing is None:
                return _Answer(404, {"message": "Annotation not found"})
            if method == "GET":
                return _Answer(200, dict(existing))
            if method == "PATCH":
                _patch(existing, body)
                return _Answer(200, {"message": "Annotation patched"})
            _put(existing, body)
            return _Answer(200, {"message": "Annotation updated"})

    def _create(self, body: dict[str, Any]) -> _Answer:
        if not body.get("text"):
            return _Answer(400, {"message": "Failed to save annotation"})
        now = _now_ms()
        start = body.get("time") or now
        end = body.get("timeEnd") or start
        with self._lock:
            annotation_id = self._next_id
            self._next_id += 1
            self.annotations[annotation_id] = {
                "id": annotation_id,
                "alertId": 0,
                "dashboardId": body.get("dashboardId", 0),
                # Real servers answer null for organisation annotations, whatever the schema says.
                "dashboardUID": body.get("dashboardUID"),
                "panelId": body.get("panelId", 0),
                "userId": 1,
                "newState": "",
                "prevState": "",
                "created": now,
                "updated": now,
                "time": start,
                "timeEnd": end,
                "text": body["text"],
                "tags": list(body.get("tags") or []),
                "login": "referee",
                "email": "",
                "avatarUrl": "",
                "data": body.get("data") or {},
            }
        return _Answer(200, {"id": annotation_id, "message": "Annotation added"})

    def _find(self, query: Mapping[str, Any]) -> _Answer:
        with self._lock:
            found = [dict(a) for a in self.annotations.values()]
        time_from, time_to = query.get("from"), query.get("to")
        if time_from and time_to:  # Grafana filters on time only when both are given
            found = [a for a in found if a["time"] <= time_to and a["timeEnd"] >= time_from]
        if query.get("dashboardUID"):
            found = [a for a in found if a["dashboardUID"] == query["dashboardUID"]]
        if query.get("panelId"):
            found = [a for a in found if a["panelId"] == query["panelId"]]
        if query.get("type") == "alert":
            found = [a for a in found if a["alertId"]]
        elif query.get("type") == "annotation":
            found = [a for a in found if not a["alertId"]]
        wanted = set(query.get("tags") or [])
        if wanted:
            match = any if query.get("matchAny") else all
            found = [a for a in found if match(tag in a["tags"] for tag in wanted)]
        found.sort(key=lambda a: (a["time"], a["timeEnd"], a["id"]), reverse=True)
        return _Answer(200, found[: query.get("limit") or 100])


def _patch(existing: dict[str, Any], body: dict[str, Any]) -> None:
    if body.get("tags") is not None:
        existing["tags"] = list(body["tags"])
    if body.get("text"):
        existing["text"] = body["text"]
    if (body.get("time") or 0) > 0:
        existing["time"] = body["time"]
    if (body.get("timeEnd") or 0) > 0:
        existing["timeEnd"] = body["timeEnd"]
    if body.get("data") is not None:
        existing["data"] = body["data"]
    existing["updated"] = _now_ms()


def _put(existing: dict[str, Any], body: dict[str, Any]) -> None:
    existing["text"] = body.get("text", "")
    existing["tags"] = list(body.get("tags") or [])
    existing["time"] = body.get("time") or existing["time"]
    existing["timeEnd"] = body.get("timeEnd") or existing["time"]
    if body.get("data") is not None:
        existing["data"] = body["data"]
    existing["updated"] = _now_ms()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _describe(error: BaseException) -> str:
    """One line per openapi-core error. Their messages repeat the whole offending value; when
    the cause chain has jsonschema errors, their field paths say it more clearly."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__
    schema_errors = [e for link in chain for e in getattr(link, "schema_errors", None) or ()]
    if schema_errors:
        details = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in schema_errors]
    else:
        details = [str(link) for link in chain]
    return f"{type(error).__name__}: " + "; ".join(dict.fromkeys(d for d in details if d))


class _HTTPServer(ThreadingHTTPServer):
    # Non-daemon handler threads, so server_close() joins them and no thread outlives a test.
    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: GrafanaContractServer
    ) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Ends idle keep-alive connections, whose handler threads would otherwise wait for
        another request and make ``server_close`` block."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected here; anything else is a bug worth seeing.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            self.owner.errors.append(exc if exc is not None else RuntimeError("unknown handler error"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds ~40 ms
    # to every answer on a keep-alive connection.
    disable_nagle_algorithm = True
    server: _HTTPServer
    #: Seconds an idle keep-alive connection may stay open.
    timeout = 30

    def _serve(self) -> None:
        answer = self.server.owner._handle(self)
        if answer is None:
            self.close_connection = True
            return
        payload = json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout) before the answer

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded on the server object instead."""
