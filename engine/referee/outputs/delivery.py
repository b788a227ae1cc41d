"""The delivery worker: drains the outbox into the verdict sinks, with backoff.

Retryable failures (``SinkRetryableError``: timeouts, 429, 5xx) are retried with exponential
backoff (1 s doubling to 5 min, with jitter), or after the destination's ``Retry-After`` when
the error carries one (capped at an hour); any other exception marks the delivery failed
and is logged with the sink's message (sinks never put secrets in messages).
"""

from __future__ import annotations

import logging
import random

from referee.hookspecs import SinkRetryableError, VerdictSink
from referee.loops import Loop
from referee.models import Suggestion
from referee.verdicts.store import Delivery, VerdictStore

log = logging.getLogger("referee.delivery")

MAX_BACKOFF_S = 300.0
#: A Retry-After longer than this is treated as this: a typo in a proxy must not park a verdict for days.
MAX_RETRY_AFTER_S = 3600.0


def backoff(attempts: int) -> float:
    base = min(MAX_BACKOFF_S, 2.0 ** max(0, attempts))
    return base * random.uniform(0.8, 1.2)


class DeliveryWorker:
    def __init__(self, store: VerdictStore, sinks: list[VerdictSink], poll_s: float = 0.5) -> None:
        self.store = store
        self.sinks = {s.name: s for s in sinks}
        self.poll_s = poll_s
        #: Started and stopped with the service's other loops; ``wake`` delivers at once.
        self.loop = Loop("referee-delivery", poll_s if self.sinks else 0, self.run_once, immediately=True)

    def run_once(self) -> int:
        """Delivers what is due now; returns how many deliveries succeeded."""
        ok = 0
        for d in self.store.due():
            sink = self.sinks.get(d.sink)
            if sink is None:
                continue  # the sink is not configured in this process; leave the row for one that is
            if self._deliver(sink, d):
                ok += 1
        return ok

    def _deliver(self, sink: VerdictSink, d: Delivery) -> bool:
        verdict = self.store.get(d.decision_id)
        suggestion_json = self.store.suggestion_json(d.decision_id)
        if verdict is None or suggestion_json is None:
            self.store.failed(d, "verdict not found")
            return False
        suggestion = Suggestion.model_validate_json(suggestion_json)
        try:
            ref = sink.deliver(verdict, suggestion, d.ref)
        except SinkRetryableError as e:
            delay = backoff(d.attempts) if e.retry_after is None else min(MAX_RETRY_AFTER_S, e.retry_after)
            log.warning(
                "delivery of %s to %s failed, retrying in %.0f s: %s", d.decision_id, d.sink, delay, e
            )
            self.store.retry_later(d, str(e), delay)
            return False
        except Exception as e:
            log.error("delivery of %s to %s failed permanently: %s", d.decision_id, d.sink, e)
            self.store.failed(d, f"{type(e).__name__}: {e}")
            return False
        self.store.delivered(d, ref)
        return True

    def wake(self) -> None:
        self.loop.wake()
