"""Referee: a second, evidence-based opinion on AI copilots' operational suggestions.

The compiled core is ``referee._core``; the public Python face is re-exported here.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# The core's allocator (mimalloc, linked into referee._core) backs its heap with transparent
# huge pages where the kernel allows them: 2 MiB pages that are only partly used add about
# 90 bytes per series to the resident set at 100,000 series (bench/memory.py). mimalloc reads
# its options once, when the core is loaded, so this must come before any import of it; a
# value already in the environment wins.
os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")

from referee.errors import SinkRetryableError
from referee.hookspecs import hookimpl
from referee.models import Claim, Suggestion, Verdict

try:
    __version__ = version("referee")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["Claim", "SinkRetryableError", "Suggestion", "Verdict", "__version__", "hookimpl"]
