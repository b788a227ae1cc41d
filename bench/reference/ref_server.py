"""The references of the HTTP ingest benchmark: a minimal Starlette app on uvicorn (the stack
``referee serve`` runs on) answering ``POST /v1/metrics``.

    python -m bench.reference.ref_server --port N --mode python|noop

* ``python``: the light pure-Python reference ingest (``bench.reference.light.python_ingest``: an
  EWMA and a ring per series, less than Referee does);
* ``noop``: reads the body and answers, ingesting nothing: the ceiling the HTTP stack and the
  client leave for any ingest on this machine.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import uvicorn
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.reference.light import PySeries, python_ingest

OK = pb.ExportMetricsServiceResponse().SerializeToString()


def build(mode: str) -> Starlette:
    store: dict[tuple[Any, ...], PySeries] = {}
    lock = threading.Lock()

    def ingest(body: bytes) -> None:
        with lock:
            python_ingest(store, body)

    async def metrics(request: Request) -> Response:
        body = await request.body()
        if mode == "python":
            await run_in_threadpool(ingest, body)
        return Response(OK, 200, media_type="application/x-protobuf")

    async def healthz(request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/v1/metrics", metrics, methods=["POST"]), Route("/healthz", healthz)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("python", "noop"), required=True)
    args = ap.parse_args()
    uvicorn.run(build(args.mode), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
