"""Rule files watched for changes: ``referee serve`` reloads its packs when one is saved.
Polled on an interval (a ``referee.loops.Loop``): no dependency, and polling mtimes and sizes
of a handful of files once a second costs nothing."""

from __future__ import annotations

import logging
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
