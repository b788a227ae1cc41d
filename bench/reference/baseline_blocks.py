"""The building blocks of ``rust_core/src/baseline.rs`` and ``score.rs`` that the streaming
baseline (``bench.reference.baseline``) is made of: the raw anomaly, the configuration, the EWMA
update, the single-precision median/MAD window, day counting and the band."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, insort
from collections import deque
from typing import Any

from bench.reference.rustnum import F32_CELL, I64_MIN, INF, NAN, fmax

# --------------------------------------------------------------------------------------------
# score.rs


def raw_anomaly(
    z: float, mean_z: float, novel: bool, shift_weight: float, novelty_boost: float, band_k: float
) -> float:
    if not math.isfinite(z):
        return 0.0 if z != z else 1.0
    shift = shift_weight * abs(mean_z) if math.isfinite(mean_z) else 0.0
    a = fmax(abs(z), shift) * (fmax(novelty_boost, 1.0) if novel else 1.0)
    if math.isfinite(a):
        return a / (a + fmax(band_k, 1e-9))
    return 1.0


def erf(x: float) -> float:
    """``baseline::erf`` (Abramowitz & Stegun 7.1.26)."""
    sign = -1.0 if x < 0.0 else 1.0
    x = abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * math.exp(-x * x)
    return sign * y


# --------------------------------------------------------------------------------------------
# baseline.rs


class BaselineConfig:
    __slots__ = (
        "band_k",
        "clip_k",
        "episode_points",
        "fast_alpha",
        "gap_reset_s",
        "gap_s",
        "level_tau_s",
        "median_window",
        "min_samples",
        "novelty_boost",
        "season_memory_days",
        "season_min_days",
        "shift_points",
        "shift_weight",
        "sketch_alpha",
        "slow_alpha",
        "week_min_weeks",
    )

    def __init__(self, min_samples: int = 30, season_min_days: int = 3, band_k: float = 3.0) -> None:
        self.fast_alpha = 0.3
        self.slow_alpha = 0.02
        self.median_window = 48
        self.min_samples = min_samples
        self.season_min_days = season_min_days
        self.season_memory_days = 7.0
        self.band_k = band_k
        self.clip_k = 4.0
        self.level_tau_s = 6.0 * 3600.0
        self.week_min_weeks = 2
        self.episode_points = 288
        self.shift_points = 12
        self.shift_weight = 2.0
        self.novelty_boost = 3.5
        self.gap_s = 6.0 * 3600.0
        self.gap_reset_s = 24.0 * 3600.0
        self.sketch_alpha = 0.01


def ewm_update(mean: float, var: float, x: float, alpha: float) -> tuple[float, float]:
    """``Ewm::update`` on (mean, var): a NaN mean is "no value yet"."""
    if mean != mean:
        return x, 0.0
    diff = x - mean
    incr = alpha * diff
    return mean + incr, (1.0 - alpha) * (var + diff * incr)


class MedianWindow:
    """``MedianWindow``: the last ``capacity`` values in single precision, sorted. Rust tags
    each sorted value with its insertion number to find the oldest; equal values are
    interchangeable there, so an insertion-order queue of the values does the same."""

    __slots__ = ("capacity", "order", "sorted")

    def __init__(self, capacity: int) -> None:
        self.capacity = min(max(capacity, 1), 255)
        self.sorted: array[float] = array("f")
        self.order: deque[float] = deque()

    def push(self, x: float) -> None:
        F32_CELL[0] = x
        x = F32_CELL[0]
        s = self.sorted
        order = self.order
        if len(order) == self.capacity:
            del s[bisect_left(s, order.popleft())]
        insort(s, x)
        order.append(x)

    def median(self) -> float:
        s = self.sorted
        n = len(s)
        if n == 0:
            return NAN
        if n % 2 == 1:
            return s[n // 2]
        return (s[n // 2 - 1] + s[n // 2]) / 2.0

    def mad(self) -> float:
        """The walk outwards from the median of ``MedianWindow::mad``, as one loop: the odd
        case's answer is the last deviation taken, the even case's the mean of the last two."""
        s = self.sorted
        n = len(s)
        if n == 0:
            return 0.0
        h = n // 2
        odd = n % 2 == 1
        m = s[h] if odd else (s[h - 1] + s[h]) / 2.0
        lo = bisect_left(s, m) - 1
        hi = lo + 1
        last = prev = 0.0
        for _ in range(h + 1):
            dl = m - s[lo] if lo >= 0 else INF
            dh = s[hi] - m if hi < n else INF
            prev = last
            if dl <= dh:
                last = dl
                lo -= 1
            else:
                last = dh
                hi += 1
        return last if odd else (prev + last) / 2.0


def count_day(days: Any, i: int, prev_ts: int, ts_ms: int, period_ms: int) -> None:
    if (prev_ts == I64_MIN or prev_ts // period_ms != ts_ms // period_ms) and days[i] < 255:
        days[i] += 1


class Band:
    __slots__ = ("expected", "lower", "model", "sigma", "upper")

    def __init__(self, expected: float, sigma: float, band_k: float, model: str) -> None:
        self.expected = expected
        self.sigma = sigma
        self.lower = expected - band_k * sigma
        self.upper = expected + band_k * sigma
        self.model = model
