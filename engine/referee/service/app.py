"""The HTTP face of ``referee serve``: OTLP/HTTP ingest and the REST API on one port.

Routes (also in ``docs/api.md``):

* ``POST /v1/metrics``, ``/v1/logs``, ``/v1/traces`` - OTLP/HTTP, protobuf or JSON, optionally
  gzip (``copilot.suggestion`` log events are decided like posted suggestions);
* ``POST /api/v1/suggestions`` - Suggestion v1 in, Verdict v1 out;
* ``POST /api/v1/explain`` - Suggestion v1 in, the verdict with its trace and the rules out
  (read-only: nothing is stored or delivered);
* ``GET /api/v1/verdicts``, ``GET /api/v1/verdicts/{decision_id}``;
* ``GET /api/v1/series``, ``GET /api/v1/rules``, ``GET /api/v1/findings``;
* ``GET /api/v1/scorecard`` - per source: suggestions, verdicts, misses;
* ``GET /healthz``, ``GET /readyz``;
* ``POST /api/v1/sources/<path>`` for each suggestion source a plugin provides.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from referee.decision.explain import explanation
from referee.errors import (
    InvalidDocumentError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RefereeError,
    UnauthenticatedError,
)
from referee.hookspecs import Resolved, SuggestionSource
from referee.ingest.receiver import JSON, PROTOBUF, Signal, error_body, negotiate, response
from referee.models import Suggestion
from referee.outputs import scorecard
from referee.service.runtime import Runtime

#: Largest suggestion (or source payload) accepted; webhooks carrying many alerts fit easily.
MAX_SUGGESTION_BYTES = 4 << 20


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str), status_code=status, media_type="application/json")


def _problem(error: RefereeError) -> Response:
    """The API's answer to a refused request: ``{"error": ..., "details"?: [...]}`` with the
    status the error's code maps to (``referee.errors.HTTP_STATUS``)."""
    body: dict[str, Any] = {"error": error.message}
    if isinstance(error, InvalidDocumentError) and error.details:
        body["details"] = error.details
    headers = {"Retry-After": str(int(error.retry_after))} if error.retry_after else None
    return Response(json.dumps(body), error.http_status, headers=headers, media_type="application/json")


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RefereeError)
    return _problem(exc)


def _validation_details(e: ValidationError) -> list[dict[str, str]]:
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"]}
        for err in e.errors(include_url=False)
    ]


def _int_param(request: Request, name: str, default: int, most: int) -> int:
    try:
        return min(most, max(1, int(request.query_params.get(name, str(default)))))
    except ValueError:
        raise InvalidInputError(f"{name} must be an integer") from None


async def _read_body(request: Request, limit: int) -> bytes:
    """Reads at most ``limit`` bytes of body (compressed bodies are also capped at the limit:
    no real export compresses to more than its own decompressed size)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_suggestion(body: bytes) -> Suggestion:
    """A Suggestion v1 from a request body; the 400/422 error names what is wrong."""
    try:
        return Suggestion.model_validate_json(body)  # parsed and validated in one pass
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise InvalidInputError(
                f"body is not JSON: {first['msg'].removeprefix('Invalid JSON: ')}"
            ) from None
        raise InvalidDocumentError("not a valid Suggestion v1", details=_validation_details(e)) from None


def build_app(runtime: Runtime) -> Starlette:
    settings = runtime.settings

    receiver = runtime.receiver

    def otlp_route(signal: Signal) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            wants_json = "json" in (request.headers.get("content-type") or "")
            try:
                neg = negotiate(request.headers.get("content-type"), request.headers.get("content-encoding"))
                declared = request.headers.get("content-length", "")
                with receiver.gate.admit(int(declared) if declared.isdigit() else 0):
                    body = await _read_body(request, settings.max_body_bytes)
                    result = await run_in_threadpool(receiver.export, signal, body, neg)
            except RefereeError as e:
                # OTLP answers with a google.rpc.Status body in the request's encoding.
                headers = {"Retry-After": str(int(e.retry_after))} if e.retry_after else None
                return Response(
                    error_body(wants_json, e),
                    e.http_status,
                    headers=headers,
                    media_type=JSON if wants_json else PROTOBUF,
                )
            return Response(
                response(signal, neg.json, result.rejected, result.message), 200, media_type=neg.media_type
            )

        return receive

    async def read_suggestion(request: Request) -> Suggestion:
        """The request's Suggestion v1 (a 4xx error says why not)."""
        return _parse_suggestion(await _read_body(request, MAX_SUGGESTION_BYTES))

    async def post_suggestion(request: Request) -> Response:
        suggestion = await read_suggestion(request)
        if runtime.can_decide_inline():
            _, body, new = runtime.submit_json(suggestion)
        else:
            _, body, new = await run_in_threadpool(runtime.submit_json, suggestion)
        return Response(body, 201 if new else 200, media_type="application/json")

    async def explain(request: Request) -> Response:
        # Read-only: decided like a suggestion, but neither stored nor delivered.
        suggestion = await read_suggestion(request)
        decider = runtime.decider
        verdict = await run_in_threadpool(decider.decide, suggestion)
        return _json(explanation(verdict, decider.rules))

    async def list_verdicts(request: Request) -> Response:
        q = request.query_params
        limit = _int_param(request, "limit", 100, 1000)
        rows = await run_in_threadpool(
            runtime.verdicts.latest, limit, q.get("service"), q.get("verdict"), q.get("source")
        )
        return _json({"verdicts": [v.model_dump(mode="json") for v in rows]})

    async def get_verdict(request: Request) -> Response:
        decision_id = request.path_params["decision_id"]
        verdict = await run_in_threadpool(runtime.verdicts.get, decision_id)
        if verdict is None:
            raise NotFoundError(f"no verdict {decision_id}")
        out = verdict.model_dump(mode="json")
        out["deliveries"] = runtime.verdicts.deliveries(decision_id)
        out["history"] = [v.model_dump(mode="json") for v in runtime.verdicts.history(decision_id)]
        return _json(out)

    async def list_series(request: Request) -> Response:
        q = request.query_params
        limit = _int_param(request, "limit", 1000, 10_000)
        runtime.flush_buckets()
        rows = [s.to_dict() for s in runtime.store.series(q.get("metric"), limit)]
        return _json({"stats": runtime.store.stats().to_dict(), "series": rows})

    async def list_findings(request: Request) -> Response:
        q = request.query_params
        try:
            limit = min(10_000, max(1, int(q.get("limit", "1000"))))
            since, until = (datetime.fromisoformat(q[k]) if q.get(k) else None for k in ("since", "until"))
        except ValueError as e:
            raise InvalidInputError(f"limit must be an integer and since/until RFC 3339 times: {e}") from None
        for t in (since, until):
            if t is not None and t.tzinfo is None:
                raise InvalidInputError("since/until need a UTC offset, e.g. 2026-01-01T00:00:00Z")
        rows = await run_in_threadpool(runtime.verdicts.findings, since, until, q.get("service"), limit)
        return _json({"findings": [f.model_dump(mode="json") for f in rows]})

    async def get_scorecard(request: Request) -> Response:
        q = request.query_params
        try:
            since = scorecard.parse_time(q["since"], "since") if q.get("since") else None
            until = scorecard.parse_time(q["until"], "until") if q.get("until") else None
            tolerance = scorecard.parse_tolerance(q.get("tolerance", "15m"))
        except ValueError as e:
            raise InvalidInputError(str(e)) from None
        card = await run_in_threadpool(scorecard.build, runtime.verdicts, since, until, tolerance)
        return _json(card.to_json())

    async def get_rules(request: Request) -> Response:
        rules = runtime.rules
        return _json(
            {
                "revision": rules.revision,
                "loaded_at": runtime.rules_loaded_at.isoformat(),
                "last_error": runtime.rules_last_error,
                "reload_failures_total": runtime.rules_reload_failures_total,
                "files": [str(f) for f in rules.files],
                "rules": [
                    {
                        "id": r.id,
                        "pack": r.pack,
                        "mode": r.mode,
                        "priority": r.priority,
                        "severity": r.severity,
                        "kind": r.kind,
                        "protect": r.protect,
                    }
                    for r in rules.rules
                ],
            }
        )

    def source_route(source: SuggestionSource) -> Route:
        async def receive(request: Request) -> Response:
            body = await _read_body(request, MAX_SUGGESTION_BYTES)
            try:
                items = source.parse(body, request.headers.get("content-type", ""))
            except ValidationError as e:
                # Alert sources retry on 5xx only: bad input must be a 4xx with the reason.
                raise InvalidDocumentError(
                    f"{source.name}: invalid payload", details=_validation_details(e)
                ) from None
            except ValueError as e:
                raise InvalidInputError(f"{source.name}: {e}") from None
            verdicts, closed, unknown = [], [], []
            for item in items:
                if isinstance(item, Resolved):
                    found = await run_in_threadpool(runtime.resolve, item.source, item.suggestion_id)
                    if found is None:
                        unknown.append(item.suggestion_id)
                    else:
                        closed.append(found)
                else:
                    verdicts.append((await run_in_threadpool(runtime.submit, item))[0])
            out: dict[str, Any] = {"verdicts": [v.model_dump(mode="json") for v in verdicts]}
            if closed or unknown:
                out["closed"] = [v.model_dump(mode="json") for v in closed]
                out["resolved_unknown"] = unknown
            return _json(out)

        return Route(f"/api/v1/sources/{source.path.strip('/')}", receive, methods=["POST"])

    sources = [
        s for group in runtime.pm.hook.referee_suggestion_sources(settings=settings) for s in group or []
    ]

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        return JSONResponse({"status": "ready", "rules_revision": runtime.rules.revision})

    async def authenticate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Health checks stay open for load balancers and orchestrators.
        if request.url.path in ("/healthz", "/readyz") or runtime.authorised(
            request.headers.get("authorization")
        ):
            return await call_next(request)
        answer = _problem(UnauthenticatedError("missing or invalid bearer token"))
        answer.headers["WWW-Authenticate"] = 'Bearer realm="referee"'
        return answer

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.start()
        yield

    return Starlette(
        routes=[
            Route("/v1/metrics", otlp_route(Signal.METRICS), methods=["POST"]),
            Route("/v1/logs", otlp_route(Signal.LOGS), methods=["POST"]),
            Route("/v1/traces", otlp_route(Signal.TRACES), methods=["POST"]),
            Route("/api/v1/suggestions", post_suggestion, methods=["POST"]),
            Route("/api/v1/explain", explain, methods=["POST"]),
            Route("/api/v1/verdicts", list_verdicts, methods=["GET"]),
            Route("/api/v1/verdicts/{decision_id}", get_verdict, methods=["GET"]),
            Route("/api/v1/series", list_series, methods=["GET"]),
            Route("/api/v1/rules", get_rules, methods=["GET"]),
            Route("/api/v1/scorecard", get_scorecard, methods=["GET"]),
            Route("/api/v1/findings", list_findings, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *(source_route(s) for s in sources),
        ],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=authenticate)] if settings.auth_tokens else [],
        exception_handlers={RefereeError: _on_error},
        lifespan=lifespan,
    )
