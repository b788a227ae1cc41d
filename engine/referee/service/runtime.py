"""The running service's parts, wired together once: store, rules, decider, verdicts, sinks.

``Runtime`` owns everything with a lifetime (the SQLite connection, the delivery thread) so
that the HTTP app, the CLI and the tests build a service the same way.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc

from referee import _core
from referee.config import Settings
from referee.decision.decider import Decider
from referee.decision.rulepack import LoadedRules, RulePackError, load_rules
from referee.decision.watch import WatchPass, run_watch_rules
from referee.hookspecs import VerdictSink
from referee.ingest import otlp_grpc
from referee.ingest.receiver import IngestGate, Receiver
from referee.loops import Loop
from referee.models import Suggestion, Verdict
from referee.outputs import otel
from referee.outputs.delivery import DeliveryWorker
from referee.outputs.feedback import FeedbackSink
from referee.plugins import loaded_plugins, plugin_manager, rule_functions
from referee.service.rulefiles import RuleFileWatcher
from referee.state import open_store
from referee.state.seasonal import SeasonalFitter
from referee.verdicts import lifecycle, open_verdict_store
from referee.verdicts.store import VerdictStore

log = logging.getLogger("referee")


class Runtime:
    def __init__(self, settings: Settings, *, load_plugins: bool = True) -> None:
        self.settings = settings
        self.pm = plugin_manager(load_entry_points=load_plugins)
        self.functions = rule_functions(self.pm)
        self.store: _core.SeriesStore = open_store(settings)
        self.rules: LoadedRules = load_rules(settings.rules, settings.min_history, self.functions)
        self.rules_loaded_at = datetime.now(UTC)
        self.rules_last_error: str | None = None
        #: Reloads that failed (SIGHUP or a file change); the rules in force stayed.
        self.rules_reload_failures_total = 0
        self._reload_lock = threading.Lock()
        self.last_watch_pass: WatchPass | None = None
        self.decider = Decider(self.store, self.rules)
        self.verdicts: VerdictStore = open_verdict_store(settings.database)
        self.sinks: list[VerdictSink] = [
            s for group in self.pm.hook.referee_verdict_sinks(settings=settings) for s in group or []
        ]
        # OpenTelemetry (off unless configured) and the copilot feedback webhook: built-in sinks.
        self.telemetry = otel.setup(settings, self.store.stats, self.verdicts.outbox_depth)
        self.sinks += self.telemetry.sinks
        if settings.feedback is not None:
            self.sinks.append(FeedbackSink.from_config(settings.feedback))
        self.worker = DeliveryWorker(self.verdicts, self.sinks)
        self._decide_lock = threading.Lock()
        # Rule files are polled for changes; watch rules run over live series on an interval.
        watcher = RuleFileWatcher(settings.rules, self.reload_rules)
        self._loops = [
            Loop("rule-file-watcher", settings.rules_watch_interval_s, watcher.step),
            Loop("watch-rules", settings.watch_interval_s, self.run_watch),
            # Per-minute roll-ups (histograms across instances, log counts, span RED series)
            # are written once their minute is over.
            Loop("event-buckets", 10.0, self.flush_buckets),
        ]
        # Seasonal fits of the series rules touched, off the request path (referee.state.seasonal).
        self.seasonal = SeasonalFitter.from_settings(self.store, settings)
        if settings.baselines.fit_budget_s_per_min > 0:
            self._loops.append(Loop("seasonal-fits", 60.0, self.seasonal.step))
        self.ingest_gate = IngestGate(settings.max_inflight_requests, settings.max_inflight_bytes)
        self._tokens = [t.get().encode() for t in settings.auth_tokens]
        #: The OTLP receiver core both front ends (HTTP, gRPC) call.
        self.receiver = Receiver(self.store, self.ingest_gate, settings, self.authorised, self.submit)
        self.grpc_server: grpc.Server | None = None
        self.grpc_port: int | None = None
        # Pending verdicts are decided again as data arrives (see referee.verdicts.lifecycle).
        self.lifecycle = lifecycle.Lifecycle(
            self.verdicts, lambda: self.decider, settings.lifecycle, self._decide_lock, self.worker.wake
        )
        self._loops += [self.lifecycle.loop, self.worker.loop]
        log.info(
            "rules revision %s: %d rules from %d files; plugins: %s; sinks: %s",
            self.rules.revision,
            len(self.rules.rules),
            len(self.rules.files),
            ", ".join(loaded_plugins(self.pm)) or "none",
            ", ".join(s.name for s in self.sinks) or "none",
        )

    def flush_buckets(self) -> int:
        """Writes the per-minute roll-up buckets whose minute has ended."""
        return self.store.flush_events(int(time.time() * 1000))

    def authorised(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries one of the configured bearer tokens
        (always true when none is configured). Every token is compared, in constant time."""
        if not self._tokens:
            return True
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        given = token.strip().encode()
        ok = False
        for expected in self._tokens:
            ok |= hmac.compare_digest(given, expected)
        return ok

    def start(self) -> None:
        if self.settings.grpc_port is not None and self.grpc_server is None:
            self.grpc_server, self.grpc_port = otlp_grpc.start(
                self.receiver, self.settings.host, self.settings.grpc_port
            )
        for loop in self._loops:
            loop.start()

    def close(self) -> None:
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=2).wait()
            self.grpc_server = None
        for loop in self._loops:
            loop.stop()
        self.telemetry.shutdown()
        self.verdicts.close()

    def reload_rules(self, paths: list[Path] | None = None) -> bool:
        """All or nothing: a broken pack keeps the running rules and records the error."""
        with self._reload_lock:
            return self._reload(paths)

    def _reload(self, paths: list[Path] | None) -> bool:
        try:
            rules = load_rules(paths or self.settings.rules, self.settings.min_history, self.functions)
        except RulePackError as e:
            self.rules_last_error = str(e)
            self.rules_reload_failures_total += 1
            log.error("rule reload failed; keeping revision %s:\n%s", self.rules.revision, e)
            return False
        self.rules, self.decider = rules, Decider(self.store, rules)
        self.rules_loaded_at, self.rules_last_error = datetime.now(UTC), None
        log.info("rules reloaded: revision %s, %d rules", rules.revision, len(rules.rules))
        return True

    def run_watch(self) -> WatchPass:
        """One pass of the watch rules over the live series (findings in the verdict store)."""
        done = run_watch_rules(self.rules, self.store, self.verdicts, self.settings.max_series)
        self.last_watch_pass = done
        return done

    def can_decide_inline(self) -> bool:
        """Whether a decision can run right here without waiting for anything: no other
        decision, no OTLP request being ingested, nobody holding the series store or the
        (local, SQLite) verdict store. Such a decision takes a few hundred microseconds, most
        of it holding the GIL, and handing it to a thread cost about half as much again in
        latency; when anything else is going on it goes to a thread, so that the event loop
        never waits behind an ingest or a remote database."""
        return (
            self.verdicts.local
            and self.ingest_gate.requests == 0
            and not self._decide_lock.locked()
            and not self.verdicts.busy()
            and not self.store.busy()
        )

    def submit(self, suggestion: Suggestion) -> tuple[Verdict, bool]:
        """Decides a suggestion unless its (source, id) was decided before.
        Returns the verdict and whether it is new."""
        verdict, _, new = self.submit_json(suggestion)
        return verdict, new

    def submit_json(self, suggestion: Suggestion) -> tuple[Verdict, str, bool]:
        """``submit``, also returning the verdict's stored JSON."""
        self.telemetry.suggestion_received(suggestion)
        earlier = self.verdicts.find_json(suggestion.source, suggestion.id)
        if earlier is not None:
            return *earlier, False
        with self._decide_lock, self.telemetry.decision(suggestion) as record:
            suggestion_json = suggestion.model_dump_json(exclude_none=True)
            verdict = self.decider.decide(suggestion, payload=suggestion_json)
            verdict = lifecycle.stamp(
                verdict, suggestion, self.decider.rules, self.settings.lifecycle, datetime.now(UTC)
            )
            stored, body = self.verdicts.add_json(verdict, suggestion_json, [s.name for s in self.sinks])
            if stored.decision_id == verdict.decision_id:
                record(stored)
                self.seasonal.note_verdict(stored)
        self.worker.wake()
        return stored, body, stored.decision_id == verdict.decision_id

    def resolve(self, source: str, suggestion_id: str) -> Verdict | None:
        """The source says the condition is over (e.g. a resolved alert): closes the verdict,
        which is kept. Returns it, or ``None`` when this suggestion was never decided."""
        return self.lifecycle.close(source, suggestion_id)
