"""State: the series store (Rust) and how the service opens it."""

from __future__ import annotations

from referee import _core
from referee.config import Settings


def open_store(settings: Settings) -> _core.SeriesStore:
    """A store sized and tuned by the settings."""
    return _core.SeriesStore(
        max_series=settings.max_series,
        ring_capacity=settings.ring_capacity,
        min_samples=settings.min_history,
        season_min_days=settings.season_min_days,
        band_k=settings.band_k,
    )
