"""``referee demo``: the seed incident, end to end, on the embedded defaults.

1. starts ``referee serve``'s app on a free loopback port (SQLite in a temporary directory);
2. sends a week of history for five services through the OpenTelemetry SDK's OTLP/HTTP
   exporter (5-minute steps, batched), then the last 30 minutes "live" at 1-minute steps;
3. web-app-21 is at its usual evening peak; checkout has a real latency incident; search and
   payments-api have real error-rate incidents; new-service was deployed 20 minutes ago;
4. the copilot claims high latency on web-app-21 (false), checkout (true) and new-service
   (unknowable yet), and high errors on search (true), and misses payments-api;
5. prints the verdicts with their numbers; runs the watch rules once, which find payments-api's
   incident; prints the Grafana annotations written (with GRAFANA_URL/GRAFANA_TOKEN) or that
   would be written, with their region times and tags; and prints the copilot scorecard.

The scenario ends ``CLAIM_WINDOW_S`` before the wall clock, so the suggestions' claim windows
are complete when they are decided: the verdicts are settled, not pending (see
``referee.verdicts.lifecycle``), and the scorecard counts them by value.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult
from rich.console import Console
from rich.table import Table

from referee.config import Settings
from referee.decision.decider import fmt
from referee.demo.telemetry import Incident, ServiceProfile, batches
from referee.models import Finding, Suggestion, Verdict
from referee.outputs import scorecard
from referee.service.app import build_app
from referee.service.runtime import Runtime

HISTORY_DAYS = 7
HISTORY_STEP_S = 300
LIVE_MINUTES = 30
#: The default packs' window: the scenario ends this long ago, so the verdicts settle at once.
CLAIM_WINDOW_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """uvicorn in a thread, for the demo and the tests."""

    def __init__(self, runtime: Runtime, port: int) -> None:
        config = uvicorn.Config(
            build_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.runtime = runtime
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="referee-http", daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the Referee HTTP server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def scenario(now_s: int) -> tuple[list[ServiceProfile], list[dict[str, Any]]]:
    """The services and the copilot's suggestions, relative to ``now_s``."""
    peak = now_s % 86400  # web-app-21's users are in their evening now
    incident = Incident(start_s=now_s - 14 * 60, end_s=now_s + 3600)
    services = [
        ServiceProfile(
            "web-app-21", rps=40, median_latency_s=0.08, traffic_amp=1.5, latency_amp=1.6, peak_s_of_day=peak
        ),
        ServiceProfile(
            "checkout",
            rps=15,
            median_latency_s=0.06,
            traffic_amp=0.5,
            latency_amp=0.2,
            peak_s_of_day=peak,
            incidents=[Incident(incident.start_s, incident.end_s, latency_factor=4.0)],
        ),
        ServiceProfile(
            "search",
            rps=30,
            median_latency_s=0.04,
            traffic_amp=0.8,
            latency_amp=0.1,
            peak_s_of_day=peak,
            error_ratio=0.003,
            incidents=[Incident(incident.start_s, incident.end_s, error_ratio=0.09)],
        ),
        ServiceProfile(
            "payments-api",
            rps=10,
            median_latency_s=0.12,
            traffic_amp=0.3,
            latency_amp=0.1,
            peak_s_of_day=peak,
            error_ratio=0.004,
            incidents=[Incident(incident.start_s, incident.end_s, error_ratio=0.14)],
        ),
        ServiceProfile("new-service", rps=5, median_latency_s=0.05, first_s=now_s - 20 * 60),
    ]
    created = datetime.fromtimestamp(now_s, tz=UTC).isoformat()

    def suggestion(n: int, service: str, kind: str, summary: str, **claim: Any) -> dict[str, Any]:
        return {
            "id": f"demo-{now_s}-{n}",
            "source": "demo-copilot",
            "created_at": created,
            "subject": {"service.name": service},
            "claim": {"kind": kind, **claim},
            "action": {"kind": "scale_out", "target": service} if kind == "latency_high" else None,
            "summary": summary,
        }

    suggestions = [
        suggestion(
            1,
            "web-app-21",
            "latency_high",
            "web-app-21 has high latency, scale it out",
            metric="http.server.request.duration",
            statistic="p99",
            observed=0.8,
            unit="s",
        ),
        suggestion(
            2,
            "checkout",
            "latency_high",
            "checkout p99 latency is degraded",
            metric="http.server.request.duration",
            statistic="p99",
            observed=0.9,
            unit="s",
        ),
        suggestion(
            3,
            "search",
            "error_rate_high",
            "search is failing requests",
            metric="http.server.request.duration",
            statistic="error_ratio",
            observed=0.09,
        ),
        suggestion(
            4,
            "new-service",
            "latency_high",
            "new-service looks slow",
            metric="http.server.request.duration",
            statistic="p99",
            observed=0.3,
            unit="s",
        ),
    ]
    for s in suggestions:
        if s["action"] is None:
            del s["action"]
    return services, suggestions


def _post(url: str, doc: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(doc).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def send_telemetry(url: str, services: list[ServiceProfile], now_s: int, console: Console) -> int:
    exporter = OTLPMetricExporter(endpoint=f"{url}/v1/metrics", compression=Compression.Gzip, timeout=30)
    live_start = now_s - LIVE_MINUTES * 60
    history_start = live_start - HISTORY_DAYS * 86400
    sent = 0
    try:
        with console.status("sending a week of history through the OpenTelemetry SDK exporter..."):
            for data, n in batches(services, history_start, live_start, HISTORY_STEP_S, 72, seed=7):
                if exporter.export(data) is not MetricExportResult.SUCCESS:
                    raise RuntimeError("the OTLP exporter failed to send history")
                sent += n
        with console.status("sending the last 30 minutes live, one export per minute..."):
            for data, n in batches(services, live_start, now_s, 60, 1, seed=8):
                if exporter.export(data) is not MetricExportResult.SUCCESS:
                    raise RuntimeError("the OTLP exporter failed to send live data")
                sent += n
    finally:
        exporter.shutdown()
    return sent


def verdict_table(verdicts: list[Verdict]) -> Table:
    table = Table(title="Referee's verdicts on the copilot's suggestions", show_lines=True)
    for col in ("service", "claim", "verdict", "observed", "expected", "band", "score", "rule"):
        table.add_column(col, overflow="fold")
    colour = {"confirm": "bold red", "suppress": "bold green", "inconclusive": "bold yellow"}
    for v in verdicts:
        ev = v.evidence
        table.add_row(
            v.subject.get("service.name", "?"),
            v.claim_kind,
            f"[{colour[v.verdict]}]{v.verdict}[/]",
            fmt(ev.observed),
            fmt(ev.expected),
            f"{fmt(ev.band.lower)}–{fmt(ev.band.upper)}" if ev.band else "n/a",
            fmt(ev.score),
            "\n".join(v.rule_ids) or "-",
        )
    return table


def show_findings(runtime: Runtime, suggestions: list[dict[str, Any]], console: Console) -> list[Finding]:
    """One pass of the watch rules (``referee serve`` runs them every ``watch_interval_s``),
    and the findings it raised: what Referee saw whether or not anyone claimed it."""
    runtime.flush_buckets()
    runtime.run_watch()
    findings = runtime.verdicts.findings()
    claimed = {s["subject"]["service.name"] for s in suggestions}
    console.print(f"[bold]Watch rules[/] raised {len(findings)} finding(s):")
    for f in findings:
        band = f"{fmt(f.band.lower)}–{fmt(f.band.upper)}" if f.band else "n/a"
        covered = "a suggestion covered it" if f.service in claimed else "[bold]no suggestion covered it[/]"
        console.print(
            f"  • {f.service}: {f.statistic} {f.metric} = {fmt(f.observed)}, expected {fmt(f.expected)} "
            f"(band {band}, rule {f.rule_id}): {covered}",
            highlight=False,
        )
    return findings


def run(console: Console | None = None, settings: Settings | None = None) -> list[Verdict]:
    console = console or Console(width=None if Console().is_terminal else 140)
    t0 = time.monotonic()
    now_s = int(time.time()) // 60 * 60 - CLAIM_WINDOW_S
    services, suggestions = scenario(now_s)
    with tempfile.TemporaryDirectory(prefix="referee-demo-") as tmp:
        # Watch rules run once, explicitly, below: no background pass races with the demo.
        settings = settings or Settings.load(
            database=Path(tmp) / "referee.db", port=free_port(), grpc_port="off", watch_interval_s=0
        )
        runtime = Runtime(settings)
        try:
            with BackgroundServer(runtime, settings.port) as server:
                console.print(
                    f"[bold]Referee[/] serving on {server.url} (rules revision {runtime.rules.revision})"
                )
                points = send_telemetry(server.url, services, now_s, console)
                console.print(f"sent {points} histogram points for {len(services)} services over OTLP/HTTP")
                verdicts = [
                    Verdict.model_validate(_post(f"{server.url}/api/v1/suggestions", s)) for s in suggestions
                ]
                console.print(verdict_table(verdicts))
                for v in verdicts:
                    console.print(f"• {v.explanation}", highlight=False)
                show_findings(runtime, suggestions, console)
                show_annotations(runtime, verdicts, suggestions, console)
                console.print(scorecard.render(scorecard.build(runtime.verdicts).to_json()))
        finally:
            runtime.close()
    console.print(f"demo finished in {time.monotonic() - t0:.1f} s")
    return verdicts


def show_annotations(
    runtime: Runtime, verdicts: list[Verdict], suggestions: list[dict[str, Any]], console: Console
) -> None:
    by_id = {s["id"]: Suggestion.model_validate(s) for s in suggestions}
    if runtime.sinks:
        runtime.worker.run_once()
        for v in verdicts:
            for d in runtime.verdicts.deliveries(v.decision_id):
                console.print(f"  {d['sink']}: {v.suggestion_id} -> {d['status']} (ref {d['ref']})")
        return
    previews = [
        s
        for group in runtime.pm.hook.referee_verdict_previews(settings=runtime.settings)
        for s in group or []
    ]
    if not previews:
        console.print("no verdict sinks configured and no plugin offers a preview")
        return
    console.print(
        "Grafana is not configured (GRAFANA_URL, GRAFANA_TOKEN); these annotations would be written:"
    )
    for sink in previews:
        bodies = [(v, sink.describe(v, by_id[v.suggestion_id])) for v in verdicts]
        console.print(annotation_table(bodies))
        for _, body in bodies:
            console.print_json(json.dumps(body))


def _utc(ms: object) -> str:
    if not isinstance(ms, int):
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def annotation_table(bodies: list[tuple[Verdict, dict[str, Any]]]) -> Table:
    """Each annotation's region (``time``..``timeEnd``, epoch ms in the body) in UTC, where it
    goes, and its tags."""
    table = Table(title="Grafana annotations", show_lines=True)
    for col in ("service", "verdict", "region (time → timeEnd)", "dashboard / panel", "tags"):
        table.add_column(col, overflow="fold")
    for v, body in bodies:
        start, end = body.get("time"), body.get("timeEnd")
        region = _utc(start) if start == end or end is None else f"{_utc(start)} →\n{_utc(end)}"
        if isinstance(start, int) and isinstance(end, int) and end > start:
            region += f"\n({(end - start) / 60000:g} min)"
        where = body.get("dashboardUID") or "organisation-wide"
        if body.get("panelId") is not None:
            where += f" / panel {body['panelId']}"
        table.add_row(
            v.subject.get("service.name", "?"), v.verdict, region, where, "\n".join(body.get("tags", []))
        )
    return table
