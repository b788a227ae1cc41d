"""``rust_core/src/store.rs`` ``SeriesStore``: series keyed by (metric, statistic, attributes),
each a ring of samples and a streaming baseline; non-finite, duplicate and out-of-order
rejection, the series cap and the store counters. The OTLP ingest on top is
``bench.reference.ingest.PyStore``."""

from __future__ import annotations

from collections import deque
from typing import Any

from bench.reference.baseline import StreamingBaseline
from bench.reference.baseline_blocks import BaselineConfig
from bench.reference.rollups import EventAggregator
from bench.reference.rustnum import F32_CELL, NAN


class Sample:
    """One ring sample; ``score`` and ``raw`` in single precision as in Rust."""

    __slots__ = ("expected", "model", "raw", "score", "sigma", "ts_ms", "value")

    def __init__(
        self,
        ts_ms: int,
        value: float,
        expected: float,
        sigma: float,
        score: float,
        raw: float,
        model: str | None,
    ) -> None:
        self.ts_ms = ts_ms
        self.value = value
        self.expected = expected
        self.sigma = sigma
        self.score = score
        self.raw = raw
        self.model = model


class Series:
    __slots__ = (
        "artifact",
        "attributes",
        "baseline",
        "duplicates",
        "metric",
        "out_of_order",
        "ring",
        "statistic",
        "wants_sketch",
    )

    def __init__(
        self, metric: str, statistic: str, attributes: tuple[tuple[str, str], ...], cfg: StoreConfig
    ) -> None:
        self.metric = metric
        self.statistic = statistic
        self.attributes = attributes
        # A ring of `ring_capacity` samples (Rust pops the oldest when full).
        self.ring: deque[Sample] = deque(maxlen=cfg.ring_capacity)
        self.baseline = StreamingBaseline(cfg.baseline)
        self.out_of_order = 0
        self.duplicates = 0
        self.wants_sketch = False
        self.artifact: Any = None


class StoreConfig:
    __slots__ = ("baseline", "max_series", "ring_capacity")

    def __init__(self, max_series: int, ring_capacity: int, baseline: BaselineConfig) -> None:
        self.max_series = max_series
        self.ring_capacity = ring_capacity
        self.baseline = baseline


NOT_FINITE = "a data point value was NaN or infinite"
OUT_OF_ORDER = "out-of-order or duplicate points were rejected"
SERIES_LIMIT = "series limit reached; points for new series were rejected"


class Stats:
    __slots__ = ("duplicates", "out_of_order", "points_accepted", "points_rejected", "series_rejected")

    def __init__(self) -> None:
        self.points_accepted = 0
        self.points_rejected = 0
        self.series_rejected = 0
        self.out_of_order = 0
        self.duplicates = 0


class SeriesStore:
    """The series, cumulative stream state and roll-up buckets of one ``_core.SeriesStore``."""

    def __init__(
        self,
        max_series: int = 100_000,
        ring_capacity: int = 512,
        min_samples: int = 30,
        season_min_days: int = 3,
        band_k: float = 3.0,
        max_body_bytes: int = 67_108_864,
    ) -> None:
        if ring_capacity == 0 or max_series == 0:
            raise ValueError("max_series and ring_capacity must be positive")
        self.config = StoreConfig(
            max_series, ring_capacity, BaselineConfig(min_samples, season_min_days, band_k)
        )
        self.max_body_bytes = max_body_bytes
        # (metric, attributes) -> {statistic: series}: one attribute-tuple hash per point for
        # all the statistics it writes (Rust hashes the packed attributes once the same way).
        self.groups: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Series]] = {}
        self.all_series: list[Series] = []
        self.stats = Stats()
        self.cumulative: dict[
            tuple[str, tuple[tuple[str, str], ...]], tuple[int, int, float, int, float, list[int]]
        ] = {}
        self.events = EventAggregator(max_series, self.push)

    def push(
        self, metric: str, statistic: str, attrs: tuple[tuple[str, str], ...], ts_ms: int, value: float
    ) -> str | None:
        """``SeriesStore::push``: None when stored, else the rejection's message."""
        group = self.groups.get((metric, attrs))
        if group is None:
            group = self.groups[(metric, attrs)] = {}
        return self.push_key(group, metric, statistic, attrs, ts_ms, value)

    def push_key(
        self,
        group: dict[str, Series],
        metric: str,
        statistic: str,
        attrs: tuple[tuple[str, str], ...],
        ts_ms: int,
        value: float,
    ) -> str | None:
        stats = self.stats
        if value - value != 0.0:  # NaN or infinite
            stats.points_rejected += 1
            return NOT_FINITE
        series = group.get(statistic)
        if series is None:
            if len(self.all_series) >= self.config.max_series:
                stats.points_rejected += 1
                stats.series_rejected += 1
                return SERIES_LIMIT
            series = group[statistic] = Series(metric, statistic, attrs, self.config)
            self.all_series.append(series)
        ring = series.ring
        baseline = series.baseline
        if ring:
            last_ts = baseline.last_ts
            if ts_ms == last_ts:
                series.duplicates = min(series.duplicates + 1, 0xFFFF_FFFF)
                stats.duplicates += 1
                stats.points_rejected += 1
                return OUT_OF_ORDER
            if ts_ms < last_ts:
                series.out_of_order = min(series.out_of_order + 1, 0xFFFF_FFFF)
                stats.out_of_order += 1
                stats.points_rejected += 1
                return OUT_OF_ORDER
        cfg = self.config.baseline
        # A fitted band artifact is never set during ingest (the fitter hands it over).
        fitted = series.artifact.at(ts_ms) if series.artifact is not None else None
        if baseline.sketch is None and series.wants_sketch:
            baseline.enable_sketch((s.value for s in ring), cfg)
        band = baseline.update_judged(ts_ms, value, fitted, ring, cfg)
        if band is not None:
            F32_CELL[0] = baseline.last_score
            score = F32_CELL[0]
            F32_CELL[0] = baseline.last_raw
            sample = Sample(ts_ms, value, band.expected, band.sigma, score, F32_CELL[0], band.model)
        else:
            sample = Sample(ts_ms, value, NAN, NAN, 0.0, 0.0, None)
        ring.append(sample)
        stats.points_accepted += 1
        return None

    def flush_events(self, now_ms: int) -> int:
        """``EventAggregator::flush``: writes every bucket that ended at or before ``now_ms``."""
        return self.events.flush(now_ms)

    def series(
        self,
    ) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[int, float, float, float, float]]]:
        """Every series' ring: {(metric, statistic, attributes): [(ts_ms, value, expected, sigma, score)]}."""
        return {
            (s.metric, s.statistic, s.attributes): [
                (x.ts_ms, x.value, x.expected, x.sigma, x.score) for x in s.ring
            ]
            for s in self.all_series
        }

    def baseline_samples(self) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], int]:
        return {(s.metric, s.statistic, s.attributes): s.baseline.samples for s in self.all_series}

    def stats_dict(self) -> dict[str, int]:
        st = self.stats
        return {
            "series": len(self.all_series),
            "max_series": self.config.max_series,
            "points_accepted": st.points_accepted,
            "points_rejected": st.points_rejected,
            "series_rejected": st.series_rejected,
            "out_of_order": st.out_of_order,
            "duplicates": st.duplicates,
            "open_event_buckets": len(self.events.open),
            "late_events": self.events.late,
            "refused_events": self.events.refused,
        }

    def __len__(self) -> int:
        return len(self.all_series)
