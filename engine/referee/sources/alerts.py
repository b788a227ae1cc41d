"""Deprecated alias of :mod:`referee.ingest.alerts`; removed in the release after 0.2."""

from __future__ import annotations

import warnings

from referee.ingest.alerts import *  # noqa: F403
from referee.ingest.alerts import __all__ as __all__

warnings.warn(
    "referee.sources.alerts moved to referee.ingest.alerts; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
