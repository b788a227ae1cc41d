"""Background loops of ``referee serve``: reloading rule packs when their files change, and
evaluating watch rules periodically. Plain threads polling on an interval: no dependency, and
polling mtimes and sizes of a handful of files once a second costs nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from referee.decision.rulepack import pack_files

log = logging.getLogger("referee")

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(paths: list[Path]) -> Fingerprint:
    """(path, mtime_ns, size) of every pack file under ``paths``: a file added, removed or
    changed changes it."""
    out = []
    for f in pack_files(paths):
        try:
            st = f.stat()
        except OSError:
            out.append((str(f), -1, -1))
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


class Loop:
    """Calls ``step`` every ``interval_s`` seconds in a daemon thread until stopped."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], object]) -> None:
        self.name, self.interval_s, self.step = name, interval_s, step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception:  # a failing pass must not end the loop
                log.exception("%s failed", self.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class RuleFileWatcher:
    """Reloads the rules when their files change (a file saved twice in one interval is
    reloaded once; a half-written file fails, keeps the old rules, and the next save reloads)."""

    def __init__(self, paths: list[Path], reload: Callable[[], bool]) -> None:
        self.paths, self.reload = paths, reload
        self.last = fingerprint(paths)

    def step(self) -> None:
        now = fingerprint(self.paths)
        if now == self.last:
            return
        self.last = now
        log.info("rule files changed; reloading")
        self.reload()
