"""Referee: a second, evidence-based opinion on AI copilots' operational suggestions.

The compiled core is ``referee._core``; the public Python face is re-exported here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from referee.hookspecs import SinkRetryableError, hookimpl
from referee.models import Claim, Suggestion, Verdict

try:
    __version__ = version("referee")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["Claim", "SinkRetryableError", "Suggestion", "Verdict", "__version__", "hookimpl"]
