"""``rust_core/src/baseline.rs`` ``StreamingBaseline``: the streaming baseline every series
keeps (median/MAD window, fast and slow EWMA, hour-of-day slots, weekday offsets, level offset,
gap counting and reset, range novelty, level-shift term, one score per episode)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Reversible
from typing import Any, Protocol

from bench.reference.baseline_blocks import (
    Band,
    BaselineConfig,
    MedianWindow,
    count_day,
    ewm_update,
    raw_anomaly,
)
from bench.reference.rustnum import F32_CELL, I64_MIN, INF, NAN, fclamp, fmax, fmin, round_half_away

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
RECENT_Z = 12


class RawSample(Protocol):
    """What the episode score reads back from the ring (``bench.reference.store.Sample``)."""

    raw: float


class StreamingBaseline:
    """``StreamingBaseline``; the hour-of-day slots (``DaySlots``) and weekday offsets
    (``Weekdays``) are columns of single-precision arrays as in Rust."""

    __slots__ = (
        "episode_max",
        "episode_max_at",
        "episode_since",
        "fast_mean",
        "fast_var",
        "first_ts",
        "gaps",
        "last_raw",
        "last_score",
        "last_ts",
        "level_mean",
        "level_var",
        "range_hi",
        "range_lo",
        "recent_n",
        "recent_pos",
        "recent_z",
        "resets",
        "samples",
        "sketch",
        "slot_days",
        "slot_mean",
        "slot_points",
        "slot_var",
        "slow_mean",
        "slow_var",
        "week_days",
        "week_mean",
        "week_points",
        "week_var",
        "window",
    )

    def __init__(self, cfg: BaselineConfig) -> None:
        self.samples = 0
        self.fast_mean, self.fast_var = NAN, 0.0
        self.slow_mean, self.slow_var = NAN, 0.0
        self.level_mean, self.level_var = NAN, 0.0
        self.window = MedianWindow(cfg.median_window)
        self.slot_mean = array("f", [NAN] * 24)
        self.slot_var = array("f", [0.0] * 24)
        self.slot_points = array("H", [0] * 24)
        self.slot_days = array("B", [0] * 24)
        # Weekdays: None until the series spans a day.
        self.week_mean: array[float] | None = None
        self.week_var: array[float] = array("f")
        self.week_days: array[int] = array("B")
        self.week_points: array[int] = array("H")
        self.sketch: Any = None
        self.episode_max = -INF  # f32
        self.episode_max_at = 0
        self.episode_since = 0
        self.last_raw = 0.0
        self.recent_z = [0] * RECENT_Z
        self.recent_pos = 0
        self.recent_n = 0
        self.range_lo, self.range_hi = INF, -INF  # f32
        self.last_score = 0.0
        self.gaps = 0
        self.resets = 0
        self.first_ts = I64_MIN
        self.last_ts = I64_MIN

    def enable_sketch(self, history: Any, cfg: BaselineConfig) -> None:
        # The DDSketch is not ported: ingest never asks for one (only series read by rules do).
        raise NotImplementedError("quantile sketches are not part of the reference")

    def band(self, ts_ms: int, cfg: BaselineConfig) -> Band | None:
        if self.samples < cfg.min_samples or len(self.window.sorted) == 0:
            return None
        w = self.weekly(ts_ms, cfg)
        s = self.seasonal(ts_ms, cfg)
        if w is not None:
            expected, sigma = w
            model = "streaming.hour_of_week"
        elif s is not None:
            expected, sigma = s
            model = "streaming.hour_of_day"
        else:
            win = self.window
            expected = win.median()
            sigma = 1.4826 * win.mad() + 0.1 * math.sqrt(fmax(self.slow_var, 0.0))
            model = "streaming.median_mad"
        sigma = fmax(fmax(sigma, 1e-3 * abs(expected)), 1e-9)
        return Band(expected, sigma, cfg.band_k, model)

    def profile(self, ts_ms: int, min_days: int) -> tuple[float, float] | None:
        pos = ((ts_ms % DAY_MS) / HOUR_MS) - 0.5
        lo = math.floor(pos)
        frac = pos - lo
        a = int(lo) % 24
        b = (int(lo) + 1) % 24
        days = self.slot_days
        if days[a] < min_days or days[b] < min_days:
            return None
        mean, var = self.slot_mean, self.slot_var
        return (mean[a] * (1.0 - frac) + mean[b] * frac, var[a] * (1.0 - frac) + var[b] * frac)

    def weekly(self, ts_ms: int, cfg: BaselineConfig) -> tuple[float, float] | None:
        wm = self.week_mean
        if wm is None:
            return None
        need = max(cfg.week_min_weeks, 1)
        if self.last_ts - self.first_ts < need * WEEK_MS:
            return None
        d = ts_ms // DAY_MS % 7
        mean = wm[d]
        if self.week_days[d] < need or mean != mean:
            return None
        p = self.profile(ts_ms, 1)
        if p is None:
            return None
        return p[0] + mean, math.sqrt(fmax(self.week_var[d], 0.0))

    def seasonal(self, ts_ms: int, cfg: BaselineConfig) -> tuple[float, float] | None:
        if self.last_ts == I64_MIN or self.last_ts - self.first_ts < cfg.season_min_days * DAY_MS:
            return None
        p = self.profile(ts_ms, cfg.season_min_days)
        if p is None:
            return None
        level = self.level_mean if self.level_mean == self.level_mean else 0.0
        return p[0] + level, math.sqrt(fmax(p[1], 0.0))

    def update_judged(
        self,
        ts_ms: int,
        value: float,
        fitted: tuple[float, float, str] | None,
        history: Reversible[RawSample] | None,
        cfg: BaselineConfig,
    ) -> Band | None:
        if self.last_ts != I64_MIN:
            gap_s = (ts_ms - self.last_ts) / 1000.0
            if gap_s > cfg.gap_s:
                self.gaps = min(self.gaps + 1, 0xFFFF_FFFF)
            if gap_s > cfg.gap_reset_s:
                self.resets = min(self.resets + 1, 0xFFFF_FFFF)
                self.window = MedianWindow(cfg.median_window)
                self.fast_mean, self.fast_var = NAN, 0.0
                self.level_mean, self.level_var = NAN, 0.0
                self.episode_max = -INF
                self.episode_max_at = self.samples
                self.episode_since = self.samples
                self.recent_z = [0] * RECENT_Z
                self.recent_n = 0
        band = self.band(ts_ms, cfg)
        if band is not None and fitted is not None:
            expected, sigma, model = fitted
            sigma = fmax(fmax(sigma, 1e-3 * abs(expected)), 1e-9)
            band = Band(expected, sigma, cfg.band_k, model)
        self.update_with_band(ts_ms, value, band, history, cfg)
        return band

    def update_with_band(
        self,
        ts_ms: int,
        value: float,
        judged: Band | None,
        history: Reversible[RawSample] | None,
        cfg: BaselineConfig,
    ) -> None:
        # Range::observe, in single precision.
        F32_CELL[0] = value
        x32 = F32_CELL[0]
        novel = False
        if math.isfinite(x32):
            novel = x32 > self.range_hi or x32 < self.range_lo
            if novel:
                self.range_lo = fmin(self.range_lo, x32)
                self.range_hi = fmax(self.range_hi, x32)
        recent_z = self.recent_z
        if judged is not None:
            z = (value - judged.expected) / judged.sigma
            k = min(max(cfg.shift_points, 1), RECENT_Z) - 1
            n = min(self.recent_n, k)
            total = 0.0
            pos = self.recent_pos
            for back in range(1, n + 1):
                total += recent_z[(pos + RECENT_Z - back) % RECENT_Z] / 10.0
            raw = raw_anomaly(
                z, (total + z) / (n + 1.0), novel, cfg.shift_weight, cfg.novelty_boost, cfg.band_k
            )
        else:
            z = 0.0
            raw = 0.0
        self.last_raw = raw
        q = int(fclamp(round_half_away(z * 10.0), -127.0, 127.0)) if math.isfinite(z) else 0
        recent_z[self.recent_pos] = q
        self.recent_pos = (self.recent_pos + 1) % RECENT_Z
        self.recent_n = min(self.recent_n + 1, RECENT_Z)
        band = self.band(ts_ms, cfg)
        clip_k = cfg.clip_k
        if band is not None:
            lim = clip_k * band.sigma
            learned = fclamp(value, band.expected - lim, band.expected + lim)
        else:
            learned = value
        seas = self.seasonal(ts_ms, cfg)
        if seas is not None:
            e = seas[0]
            lim = clip_k * fmax(fmax(seas[1], 1e-3 * abs(e)), 1e-9)
            learned_seasonal = fclamp(value, e - lim, e + lim)
        else:
            learned_seasonal = value
        self.samples += 1
        prev_ts = self.last_ts
        if self.first_ts == I64_MIN:
            self.first_ts = ts_ms
        if ts_ms > self.last_ts:
            self.last_ts = ts_ms
        self.fast_mean, self.fast_var = ewm_update(self.fast_mean, self.fast_var, learned, cfg.fast_alpha)
        self.slow_mean, self.slow_var = ewm_update(self.slow_mean, self.slow_var, learned, cfg.slow_alpha)
        self.window.push(learned)
        if self.sketch is not None:
            self.sketch.add(learned)

        # Weekday offsets.
        if self.week_mean is None and self.last_ts - self.first_ts >= DAY_MS:
            self.week_mean = array("f", [NAN] * 7)
            self.week_var = array("f", [0.0] * 7)
            self.week_days = array("B", [0] * 7)
            self.week_points = array("H", [0] * 7)
        if self.week_mean is not None:
            prof = self.profile(ts_ms, 1)
            if prof is not None:
                wk = self.weekly(ts_ms, cfg)
                if wk is not None:
                    e = wk[0]
                    lim = clip_k * fmax(fmax(wk[1], 1e-3 * abs(e)), 1e-9)
                    learned_weekly = fclamp(value, e - lim, e + lim)
                else:
                    learned_weekly = value
                d = ts_ms // DAY_MS % 7
                wp = self.week_points
                if wp[d] < 0xFFFF:
                    wp[d] += 1
                count_day(self.week_days, d, prev_ts, ts_ms, DAY_MS)
                per_day = wp[d] / max(self.week_days[d], 1)
                effective = min(float(wp[d]), per_day * cfg.season_memory_days)
                m, v = ewm_update(
                    self.week_mean[d], self.week_var[d], learned_weekly - prof[0], 1.0 / max(effective, 1.0)
                )
                self.week_mean[d] = m
                self.week_var[d] = v

        # DaySlots::update.
        hour = (ts_ms % DAY_MS) // HOUR_MS
        sm = self.slot_mean
        before = sm[hour]
        had = before == before
        sp = self.slot_points
        if sp[hour] < 0xFFFF:
            sp[hour] += 1
        count_day(self.slot_days, hour, prev_ts, ts_ms, HOUR_MS)
        per_day = sp[hour] / max(self.slot_days[hour], 1)
        effective = min(float(sp[hour]), per_day * cfg.season_memory_days)
        m, v = ewm_update(before, self.slot_var[hour], learned_seasonal, 1.0 / max(effective, 1.0))
        sm[hour] = m
        self.slot_var[hour] = v
        if had:
            dt_s = 0.0 if prev_ts == I64_MIN else max(ts_ms - prev_ts, 0) / 1000.0
            alpha = fclamp(1.0 - math.exp(-dt_s / cfg.level_tau_s), 1e-6, 1.0)
            self.level_mean, self.level_var = ewm_update(
                self.level_mean, self.level_var, learned_seasonal - before, alpha
            )
        self.last_score = self.episode_score(raw, history, cfg)

    def episode_score(self, raw: float, history: Reversible[RawSample] | None, cfg: BaselineConfig) -> float:
        if cfg.episode_points == 0:
            return raw
        idx = max(self.samples - 1, 0)
        horizon = cfg.episode_points
        if max(idx - self.episode_max_at, 0) > horizon or self.episode_max == -INF:
            emax = -INF
            if history is not None:
                usable = max(idx - self.episode_since, 0)
                take = min(horizon, usable)
                for j, s in enumerate(reversed(history)):
                    if j >= take:
                        break
                    r = s.raw
                    if r > emax:
                        emax = r
                        self.episode_max_at = idx - 1 - j
            self.episode_max = emax
        prev_max = self.episode_max
        F32_CELL[0] = raw
        if F32_CELL[0] >= prev_max:
            self.episode_max = F32_CELL[0]
            self.episode_max_at = idx
        return raw if raw > prev_max else 0.0
