"""Background loops: the one way Referee runs work on an interval in the background.

Every periodic job of the service is a :class:`Loop` (rule-file polling, watch rules, event
buckets, seasonal fits, verdict re-evaluation, the delivery outbox, SQLite checkpoints): a
daemon thread calling ``step`` every ``interval_s`` seconds, which ``wake()`` can call early,
and which a failing step never ends. ``referee.service.runtime.Runtime`` starts and stops the
service's loops together; a component that owns one (the verdict store's checkpointer) starts
it when it opens and stops it when it closes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("referee")


class Loop:
    """Calls ``step`` every ``interval_s`` seconds in a daemon thread until stopped.

    ``immediately``: the first step runs at start rather than one interval later.
    ``final``: called once on stop, after the last step (for example a last flush)."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        step: Callable[[], object],
        *,
        immediately: bool = False,
        final: Callable[[], object] | None = None,
    ) -> None:
        self.name, self.interval_s, self.step = name, interval_s, step
        self.immediately, self.final = immediately, final
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Runs the next step now instead of at the end of the interval."""
        self._wake.set()

    def _run(self) -> None:
        if self.immediately:
            self._step()
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._step()

    def _step(self) -> None:
        try:
            self.step()
        except Exception:  # a failing pass must not end the loop
            log.exception("%s failed", self.name)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
            if self.final is not None:
                try:
                    self.final()
                except Exception:
                    log.exception("%s: final step failed", self.name)
