"""OpenTelemetry out: verdicts as log events, service metrics and a span per decision.

Off unless configured: ``otel:`` in referee.yaml, or any of ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_{LOGS,METRICS,TRACES}_ENDPOINT``; ``OTEL_SDK_DISABLED=true`` turns it off
whatever else is set. Everything the SDK reads itself (endpoints, headers, timeouts,
compression, certificates, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_METRIC_EXPORT_INTERVAL``) is left to the SDK; values from referee.yaml are passed as
constructor arguments and so win over the environment, as they do in the SDK.

Verdict events do not go through a batch processor: they are a ``VerdictSink`` driven by the
durable outbox, exported synchronously, and a failed export is retried by the outbox, so an
event is neither lost while the receiver is down nor sent twice for one verdict version.
Metrics and spans are ordinary SDK telemetry (periodic reader, batch span processor).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

from referee import __version__
from referee.hookspecs import SinkRetryableError

if TYPE_CHECKING:
    from referee import _core
    from referee.config import OtelConfig, Settings
    from referee.models import Suggestion, Verdict

log = logging.getLogger("referee.otel")

EVENT_NAME = "referee.verdict"
SPAN_NAME = "referee.decide"
SCOPE = "referee"
ENDPOINT_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
#: Decision latency buckets in seconds: decisions take from well under a millisecond to a few
#: hundred when a seasonal baseline is fitted on the way.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def enabled(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """Whether OpenTelemetry export is configured (and not disabled with ``OTEL_SDK_DISABLED``)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return settings.otel is not None or any(env.get(v, "").strip() for v in ENDPOINT_VARS)


def _protocol(signal: str, cfg: OtelConfig | None, env: Mapping[str, str]) -> str:
    proto = (
        (cfg.protocol if cfg else None)
        or env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if proto not in ("http/protobuf", "grpc"):
        raise ValueError(f"OTLP protocol {proto!r} is not supported: use http/protobuf or grpc")
    return proto


def _exporter_kwargs(signal: str, proto: str, cfg: OtelConfig | None) -> dict[str, Any]:
    """Only what referee.yaml sets; the rest the exporter reads from ``OTEL_*`` itself."""
    kwargs: dict[str, Any] = {}
    if cfg is None:
        return kwargs
    if cfg.endpoint:
        # OTLP/HTTP exporters take the full signal URL; gRPC ones the bare address.
        kwargs["endpoint"] = cfg.endpoint if proto == "grpc" else f"{cfg.endpoint.rstrip('/')}/v1/{signal}"
    if cfg.headers:
        kwargs["headers"] = dict(cfg.headers)
    return kwargs


def _exporters(
    settings: Settings, env: Mapping[str, str]
) -> tuple[LogRecordExporter, MetricExporter, SpanExporter]:
    cfg = settings.otel
    protos = {s: _protocol(s, cfg, env) for s in ("logs", "metrics", "traces")}
    if protos["logs"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs

        logs: LogRecordExporter = GrpcLogs(**_exporter_kwargs("logs", "grpc", cfg))
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs

        logs = HttpLogs(**_exporter_kwargs("logs", "http/protobuf", cfg))
    if protos["metrics"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetrics,
        )

        metrics: MetricExporter = GrpcMetrics(**_exporter_kwargs("metrics", "grpc", cfg))
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetrics,
        )

        metrics = HttpMetrics(**_exporter_kwargs("metrics", "http/protobuf", cfg))
    if protos["traces"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        spans: SpanExporter = GrpcSpans(**_exporter_kwargs("traces", "grpc", cfg))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

        spans = HttpSpans(**_exporter_kwargs("traces", "http/protobuf", cfg))
    return logs, metrics, spans


def resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), named
    ``referee`` unless the environment names it."""
    detected = Resource.create({"service.version": __version__})
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        detected = detected.merge(Resource({"service.name": "referee"}))
    return detected


def verdict_attributes(verdict: Verdict) -> dict[str, Any]:
    """Attributes of the ``referee.verdict`` event and the ``referee.decide`` span, modelled on
    the semantic conventions' ``gen_ai.evaluation.result`` event."""
    attrs: dict[str, Any] = {
        "gen_ai.evaluation.name": ",".join(verdict.rule_ids) or "referee",
        "gen_ai.evaluation.score.label": verdict.verdict,
        "gen_ai.evaluation.explanation": verdict.explanation,
        "referee.decision_id": verdict.decision_id,
        "referee.suggestion_id": verdict.suggestion_id,
        "referee.source": verdict.source,
        "referee.rule_ids": list(verdict.rule_ids),
        "referee.rules_revision": verdict.rules_revision,
        "referee.claim_kind": verdict.claim_kind,
        "referee.mode": verdict.mode,
        "referee.status": verdict.status,
        "referee.version": verdict.version,
    }
    if verdict.evidence.score is not None:
        attrs["gen_ai.evaluation.score.value"] = float(verdict.evidence.score)
    service = verdict.subject.get("service.name")
    if service:
        attrs["service.name"] = service
    for key, value in (
        ("referee.evidence.observed", verdict.evidence.observed),
        ("referee.evidence.expected", verdict.evidence.expected),
        ("referee.evidence.metric", verdict.evidence.metric),
    ):
        if value is not None:
            attrs[key] = value
    return attrs


class _RecordingExporter(LogRecordExporter):
    """Passes records on and remembers, per thread, whether the export worked: the
    ``SimpleLogRecordProcessor`` swallows the result, and the outbox needs it."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner
        self._local = threading.local()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            result = self.inner.export(batch)
        except Exception:
            self._local.result = LogRecordExportResult.FAILURE
            raise
        self._local.result = result
        return result

    def take_result(self) -> LogRecordExportResult | None:
        result: LogRecordExportResult | None = getattr(self._local, "result", None)
        self._local.result = None
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class OtelVerdictSink:
    """Each verdict version as one ``referee.verdict`` log event, exported synchronously."""

    name = "otel"

    def __init__(self, provider: LoggerProvider, exporter: _RecordingExporter) -> None:
        self._logger = provider.get_logger(SCOPE, __version__)
        self._exporter = exporter

    def describe(self, verdict: Verdict, suggestion: Suggestion) -> dict[str, Any]:
        return {"event_name": EVENT_NAME, "attributes": verdict_attributes(verdict)}

    def deliver(self, verdict: Verdict, suggestion: Suggestion, previous_ref: str | None) -> str | None:
        self._exporter.take_result()
        self._logger.emit(
            timestamp=int(verdict.decided_at.timestamp() * 1e9),
            observed_timestamp=time.time_ns(),
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=verdict.explanation,
            attributes=verdict_attributes(verdict),
            event_name=EVENT_NAME,
        )
        if self._exporter.take_result() is not LogRecordExportResult.SUCCESS:
            raise SinkRetryableError(f"OTLP log export of {EVENT_NAME} failed (see the exporter's log)")
        return f"{verdict.decision_id}/{verdict.version}"


class Telemetry:
    """The metrics and spans Runtime reports to. The base class does nothing, so Runtime calls
    it unconditionally whether or not OpenTelemetry is configured."""

    sinks: list[OtelVerdictSink] = []

    def suggestion_received(self, suggestion: Suggestion) -> None:
        return None

    @contextmanager
    def decision(self, suggestion: Suggestion) -> Iterator[Callable[[Verdict], None]]:
        yield lambda verdict: None

    def shutdown(self) -> None:
        return None


class OtelTelemetry(Telemetry):
    """The SDK pipeline: private providers (never the global ones, so embedding Referee or
    running two in one process does not mix their telemetry)."""

    def __init__(
        self,
        settings: Settings,
        stats: Callable[[], _core.StoreStats],
        outbox_depth: Callable[[], int],
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        res = resource()
        log_exporter, metric_exporter, span_exporter = _exporters(settings, env)
        interval = settings.otel.export_interval_s if settings.otel else None
        self._reader = PeriodicExportingMetricReader(
            metric_exporter,
            export_interval_millis=interval * 1000 if interval is not None else None,
        )
        self.meter_provider = MeterProvider(resource=res, metric_readers=[self._reader])
        self.tracer_provider = TracerProvider(resource=res)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        self._log_exporter = _RecordingExporter(log_exporter)
        self.logger_provider = LoggerProvider(resource=res, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self._log_exporter))
        self.sinks = [OtelVerdictSink(self.logger_provider, self._log_exporter)]

        self.tracer = self.tracer_provider.get_tracer(SCOPE, __version__)
        meter = self.meter_provider.get_meter(SCOPE, __version__)
        self.verdicts = meter.create_counter(
            "referee.verdicts", unit="{verdict}", description="Verdicts decided, by outcome, source and rule."
        )
        self.suggestions = meter.create_counter(
            "referee.suggestions.received",
            unit="{suggestion}",
            description="Suggestions received, by source (repeats of an already decided one included).",
        )
        self.latency = meter.create_histogram(
            "referee.decision.duration",
            unit="s",
            description="Time to decide one suggestion.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )

        def points(options: CallbackOptions) -> Iterable[Observation]:
            s = stats()
            yield Observation(s.points_accepted, {"referee.outcome": "accepted"})
            yield Observation(s.points_rejected, {"referee.outcome": "rejected"})

        def series(options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(stats().series)

        def series_rejected(options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(stats().series_rejected)

        def depth(options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(outbox_depth())

        meter.create_observable_counter(
            "referee.ingest.points", [points], unit="{point}", description="OTLP data points ingested."
        )
        meter.create_observable_gauge(
            "referee.series.live", [series], unit="{series}", description="Series held in memory."
        )
        meter.create_observable_counter(
            "referee.series.rejected",
            [series_rejected],
            unit="{point}",
            description="Points refused because they would have created a series beyond max_series.",
        )
        meter.create_observable_gauge(
            "referee.outbox.depth",
            [depth],
            unit="{delivery}",
            description="Verdict deliveries waiting in the outbox.",
        )

    def suggestion_received(self, suggestion: Suggestion) -> None:
        self.suggestions.add(1, {"referee.source": suggestion.source})

    @contextmanager
    def decision(self, suggestion: Suggestion) -> Iterator[Callable[[Verdict], None]]:
        """A ``referee.decide`` span around one decision; call the yielded function with the
        verdict to record it (counter, latency, span attributes)."""
        start = time.perf_counter()
        with self.tracer.start_as_current_span(SPAN_NAME, kind=SpanKind.INTERNAL) as span:
            span.set_attribute("referee.source", suggestion.source)
            span.set_attribute("referee.suggestion_id", suggestion.id)

            def record(verdict: Verdict) -> None:
                self.latency.record(time.perf_counter() - start, {"referee.source": suggestion.source})
                self.verdicts.add(
                    1,
                    {
                        "referee.verdict": verdict.verdict,
                        "referee.source": verdict.source,
                        "referee.rule_id": ",".join(verdict.rule_ids) or "none",
                    },
                )
                span.set_attributes(verdict_attributes(verdict))

            yield record

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            try:
                provider.shutdown()
            except Exception:  # one failing exporter must not keep the others from flushing
                log.exception("OpenTelemetry shutdown")


def setup(
    settings: Settings,
    stats: Callable[[], _core.StoreStats],
    outbox_depth: Callable[[], int],
    env: Mapping[str, str] | None = None,
) -> Telemetry:
    """OpenTelemetry for this service if configured, else a ``Telemetry`` that does nothing
    (no provider, exporter, reader thread or connection is created)."""
    if not enabled(settings, env):
        return Telemetry()
    return OtelTelemetry(settings, stats, outbox_depth, env)
