"""The verdict lifecycle: pending → (re-evaluated) → settled, or closed by the source.

Definitions (also in ``docs/api.md``):

* **Claim window.** ``W`` is the longest ``signal.window`` among the rules that matched the
  suggestion (0 when no matched rule reads a signal). The evidence window of a decision is
  ``[created_at - W, created_at]``; data for it can still arrive after ``created_at`` (export
  intervals, batching, retries), so the window counts as *complete* once the wall clock has
  passed ``created_at + W``. The wall clock is used rather than the newest data point, so that
  a stalled pipeline cannot keep a verdict open for ever.
* **Pending.** A verdict decided before its window is complete is ``pending``, with
  ``settles_at = max(created_at + W, decided_at + lifecycle.settle_after)``. A verdict decided
  after that (replays, late suggestions) is ``settled`` at once.
* **Re-evaluation.** Every ``lifecycle.reevaluate_s`` seconds each pending suggestion is decided
  again, at the same ``created_at`` and with the rules loaded now. When the verdict value
  (confirm / suppress / inconclusive) changes, a new version is stored (same ``decision_id``,
  ``version`` + 1, the new rules revision) and the decision's deliveries go back to pending, so
  sinks update what they wrote (Grafana PATCHes its annotation) and emit the new version. The
  same value keeps the stored version as it is.
* **Settled.** The first re-evaluation at or after ``settles_at`` is the last one: the verdict
  becomes ``settled`` (with a new version only if its value changed).
* **Closed.** A source that learns the condition is over (a resolved alert) closes the verdict:
  status ``closed``, the verdict is kept and never re-evaluated again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from referee.config import LifecycleConfig
from referee.decision.decider import Decider
from referee.decision.rulepack import LoadedRules
from referee.loops import Loop
from referee.models import Suggestion, Verdict
from referee.verdicts.store import VerdictStore

log = logging.getLogger("referee.lifecycle")


def claim_window_s(verdict: Verdict, rules: LoadedRules) -> float:
    """The longest signal window of the rules that matched (0 without any)."""
    by_id = rules.by_id
    windows = [0.0]
    for t in verdict.trace:
        signal = by_id[t.rule_id].signal if t.matched and t.rule_id in by_id else None
        if signal:
            windows.append(float(signal.get("window_s", 0.0)))
    return max(windows)


def stamp(
    verdict: Verdict, suggestion: Suggestion, rules: LoadedRules, config: LifecycleConfig, now: datetime
) -> Verdict:
    """Sets the first decision's status: ``pending`` while the claim window is incomplete."""
    complete_at = suggestion.created_at + timedelta(seconds=claim_window_s(verdict, rules))
    if complete_at <= now:
        return verdict.model_copy(update={"status": "settled", "settles_at": None})
    settles_at = max(complete_at, now + timedelta(seconds=config.settle_after))
    return verdict.model_copy(update={"status": "pending", "settles_at": settles_at})


@dataclass
class Pass:
    """What one re-evaluation pass did."""

    evaluated: int = 0
    changed: int = 0
    settled: int = 0


class Lifecycle:
    """Re-evaluates pending verdicts, from a background thread or on demand (``run_once``)."""

    def __init__(
        self,
        verdicts: VerdictStore,
        decider: Callable[[], Decider],
        config: LifecycleConfig,
        lock: threading.Lock,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.verdicts = verdicts
        self.decider = decider
        self.config = config
        self.lock = lock
        self.on_change = on_change
        #: Re-evaluation every ``reevaluate_s``; started and stopped with the service's loops.
        self.loop = Loop("referee-lifecycle", config.reevaluate_s, self.run_once)

    def run_once(self, now: datetime | None = None) -> Pass:
        now = now or datetime.now(UTC)
        done = Pass()
        for old, suggestion_json in self.verdicts.pending():
            suggestion = Suggestion.model_validate_json(suggestion_json)
            with self.lock:
                fresh = self.decider().decide(suggestion)
                final = old.settles_at is None or now >= old.settles_at
                status = "settled" if final else "pending"
                done.evaluated += 1
                if fresh.verdict != old.verdict:
                    new = fresh.model_copy(
                        update={
                            "decision_id": old.decision_id,
                            "version": old.version + 1,
                            "status": status,
                            "settles_at": old.settles_at,
                            "decided_at": now,
                        }
                    )
                    self.verdicts.revise(new, requeue=True)
                    done.changed += 1
                    log.info(
                        "verdict %s changed on re-evaluation: %s -> %s (version %d, %s)",
                        old.decision_id,
                        old.verdict,
                        new.verdict,
                        new.version,
                        status,
                    )
                elif final:
                    self.verdicts.revise(old.model_copy(update={"status": "settled"}), requeue=False)
                if final:
                    done.settled += 1
        if done.changed:
            self.on_change()
        return done

    def close(self, source: str, suggestion_id: str) -> Verdict | None:
        """Closes the verdict of ``(source, suggestion_id)``; ``None`` when there is none."""
        with self.lock:
            verdict = self.verdicts.find(source, suggestion_id)
            if verdict is None or verdict.status == "closed":
                return verdict
            closed = verdict.model_copy(update={"status": "closed"})
            self.verdicts.revise(closed, requeue=False)
        return closed
