"""The running service's parts, wired together once: store, rules, decider, verdicts, sinks.

``Runtime`` owns everything with a lifetime (the SQLite connection, the delivery thread) so
that the HTTP app, the CLI and the tests build a service the same way.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from referee import _core
from referee.config import Settings
from referee.decision.engine import Decider
from referee.decision.rulepack import LoadedRules, RulePackError, load_rules
from referee.hookspecs import VerdictSink
from referee.models import Suggestion, Verdict
from referee.outputs.delivery import DeliveryWorker
from referee.outputs.verdicts import VerdictStore
from referee.plugins import loaded_plugins, plugin_manager, rule_functions
from referee.state import open_store

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
        self.decider = Decider(self.store, self.rules)
        self.verdicts = VerdictStore(settings.database)
        self.sinks: list[VerdictSink] = [
            s for group in self.pm.hook.referee_verdict_sinks(settings=settings) for s in group or []
        ]
        self.worker = DeliveryWorker(self.verdicts, self.sinks)
        self._decide_lock = threading.Lock()
        log.info(
            "rules revision %s: %d rules from %d files; plugins: %s; sinks: %s",
            self.rules.revision,
            len(self.rules.rules),
            len(self.rules.files),
            ", ".join(loaded_plugins(self.pm)) or "none",
            ", ".join(s.name for s in self.sinks) or "none",
        )

    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        self.worker.stop()
        self.verdicts.close()

    def reload_rules(self, paths: list[Path] | None = None) -> bool:
        """All or nothing: a broken pack keeps the running rules and records the error."""
        try:
            rules = load_rules(paths or self.settings.rules, self.settings.min_history, self.functions)
        except RulePackError as e:
            self.rules_last_error = str(e)
            log.error("rule reload failed; keeping revision %s:\n%s", self.rules.revision, e)
            return False
        self.rules, self.decider = rules, Decider(self.store, rules)
        self.rules_loaded_at, self.rules_last_error = datetime.now(UTC), None
        return True

    def submit(self, suggestion: Suggestion) -> tuple[Verdict, bool]:
        """Decides a suggestion unless its (source, id) was decided before.
        Returns the verdict and whether it is new."""
        earlier = self.verdicts.find(suggestion.source, suggestion.id)
        if earlier is not None:
            return earlier, False
        with self._decide_lock:
            verdict = self.decider.decide(suggestion)
            stored = self.verdicts.add(
                verdict, suggestion.model_dump_json(exclude_none=True), [s.name for s in self.sinks]
            )
        self.worker.wake()
        return stored, stored.decision_id == verdict.decision_id
