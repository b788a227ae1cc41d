"""A faithful pure-Python port of Referee's OTLP metrics ingest, the ``ingest`` benchmark's reference.

``PyStore.ingest(body)`` does what ``referee._core.SeriesStore.ingest_otlp_metrics(body, gzip=True)``
does, on the standard library and ``opentelemetry-proto`` alone, in one thread:

* inflate (``gzip.decompress``, several members allowed, the same size limit) and decode
  (``ExportMetricsServiceRequest.FromString``);
* ``rust_core/src/otlp.rs`` ``apply_view``: attributes rendered as ``any_value_string`` does,
  resource and point attributes merged (the point wins) and sorted by key; gauges -> ``value``;
  sums -> ``value`` (non-monotonic) or ``delta`` + ``rate`` (monotonic, delta or cumulative with
  per-stream state and resets); histograms (explicit, and exponential converted to explicit)
  -> ``count``/``rate``/``mean`` per stream plus per-service roll-ups merged per timestamp;
  summaries -> ``p50``/``p90``/``p99``; the same accept/reject counting;
* ``rust_core/src/otlp_events.rs`` ``EventAggregator``: one-minute roll-up buckets per
  (metric, service attributes), written (count, rate, error_ratio, mean, p50, p90, p99) when a
  later bucket of the same key starts; ``ingest_otlp_metrics`` never flushes, and neither does
  ``ingest`` (``flush_events`` is there for tests);
* ``rust_core/src/store.rs`` ``SeriesStore::push_key``: non-finite, duplicate and out-of-order
  rejection, the series cap, a ring of ``ring_capacity`` samples
  ``(ts_ms, value, expected, sigma, score, raw)``, the store counters;
* ``rust_core/src/baseline.rs`` and ``score.rs``: the streaming baseline (median/MAD window,
  fast and slow EWMA, hour-of-day slots, weekday offsets, level offset, gap counting and reset,
  range novelty, level-shift term, one score per episode).

Where Rust keeps single precision (the median window, slot means and variances, weekday
offsets, the range, the episode maximum, the raw anomaly and score kept in a sample) the
values are rounded to single precision here too (``array('f')``), so the results are the
same, not merely close. Not ported: the quantile sketch (only started for series that rules
read, which never happens in ingest) and fitted band artifacts (handed over by the fitter,
never during ingest); their branches are kept and do nothing.

``tests/test_bench_reference.py`` checks this port against the Rust path on the same payloads.
"""

from __future__ import annotations

import gzip
import math
import struct
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import deque
from decimal import Decimal
from operator import add, itemgetter
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
RECENT_Z = 12
I64_MIN = -(2**63)
NS_PER_MS = 1_000_000
BUCKET_MS = 60_000
MAX_DURATIONS = 4096
NAN = math.nan
INF = math.inf
CUMULATIVE = 2  # AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

SERVICE_ATTRIBUTES = frozenset(
    ("service.name", "service.namespace", "deployment.environment", "deployment.environment.name")
)

_F32 = array("f", [0.0])


def f32(x: float) -> float:
    """``x as f32`` read back as a double (overflow gives an infinity, as in Rust)."""
    _F32[0] = x
    return _F32[0]


def fmin(a: float, b: float) -> float:
    """Rust's ``f64::min``: a NaN operand is ignored."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a <= b else b


def fmax(a: float, b: float) -> float:
    """Rust's ``f64::max``: a NaN operand is ignored."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a >= b else b


def fclamp(x: float, lo: float, hi: float) -> float:
    """Rust's ``f64::clamp`` (a NaN stays NaN)."""
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x


def round_half_away(x: float) -> float:
    """Rust's ``f64::round``: halves round away from zero."""
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return math.copysign(r, x)


def _total_order(x: float) -> int:
    """A key sorting doubles as ``f64::total_cmp`` does."""
    (bits,) = struct.unpack("<q", struct.pack("<d", x))
    return bits ^ ((bits >> 63) & 0x7FFF_FFFF_FFFF_FFFF)


def rust_f64_str(d: float) -> str:
    """A double as Rust's ``Display`` writes it: shortest round-trip digits, never an exponent."""
    if d != d:
        return "NaN"
    if d in (INF, -INF):
        return "inf" if d > 0 else "-inf"
    r = repr(d)
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def _render(v: Any) -> str:
    """``otlp::any_value_string`` / ``otlp_wire::render`` of an ``AnyValue`` message."""
    which = v.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return str(v.string_value)
    if which == "int_value":
        return str(v.int_value)
    if which == "double_value":
        return rust_f64_str(v.double_value)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "bytes_value":
        return bytes(v.bytes_value).hex()
    if which == "array_value":
        return "[" + ",".join(_render(x) for x in v.array_value.values) + "]"
    if which == "kvlist_value":
        return "{" + ",".join(f"{kv.key}={_render(kv.value)}" for kv in v.kvlist_value.values) + "}"
    if which == "string_value_strindex":
        return f"#{v.string_value_strindex}"
    return ""


def _attrs(kvs: Any) -> list[tuple[str, str]]:
    out = []
    for kv in kvs:
        v = kv.value
        s = v.string_value
        if not s:
            # Empty or another type: "" for an empty string and for no value, as in Rust.
            s = _render(v)
        out.append((kv.key, s))
    return out


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
        _F32[0] = x
        x = _F32[0]
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
        history: deque[Sample] | None,
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
        history: deque[Sample] | None,
        cfg: BaselineConfig,
    ) -> None:
        # Range::observe, in single precision.
        _F32[0] = value
        x32 = _F32[0]
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

    def episode_score(self, raw: float, history: deque[Sample] | None, cfg: BaselineConfig) -> float:
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
        _F32[0] = raw
        if _F32[0] >= prev_max:
            self.episode_max = _F32[0]
            self.episode_max_at = idx
        return raw if raw > prev_max else 0.0


# --------------------------------------------------------------------------------------------
# store.rs


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


# --------------------------------------------------------------------------------------------
# otlp.rs: roll-ups and quantiles


def bucket_range(bounds: list[float], k: int) -> tuple[float, float]:
    lo = -INF if k == 0 else bounds[k - 1]
    hi = INF if k == len(bounds) else bounds[k]
    return lo, hi


def bucket_quantile_f(
    bounds: list[float], buckets: list[float], q: float, mn: float, mx: float
) -> float | None:
    total = 0.0
    for c in buckets:
        total += c
    if total <= 0.0 or len(buckets) != len(bounds) + 1:
        return None
    rank = q * total
    seen = 0.0
    for i, c in enumerate(buckets):
        if c > 0.0 and seen + c >= rank:
            lower = fmin(mn, bounds[0] if bounds else 0.0) if i == 0 else bounds[i - 1]
            upper = fmax(mx, lower) if i == len(bounds) else bounds[i]
            lower = lower if math.isfinite(lower) else fmin(upper, 0.0)
            upper = upper if math.isfinite(upper) else lower
            frac = fclamp((rank - seen) / c, 0.0, 1.0)
            estimate = lower + (upper - lower) * frac
            return fmax(fmin(estimate, fmax(mx, fmin(estimate, lower))), fmin(mn, estimate))
        seen += c
    return None


class Rollup:
    __slots__ = (
        "bounds",
        "buckets",
        "count",
        "dt_s",
        "errors",
        "first_ms",
        "has_sum",
        "last_ms",
        "max",
        "min",
        "sum",
    )

    def __init__(self, bounds: list[float], n_buckets: int) -> None:
        self.dt_s = 0.0
        self.count = 0
        self.sum = 0.0
        self.has_sum = False
        self.errors = 0
        self.bounds = bounds
        self.buckets = [0.0] * n_buckets
        self.min = INF
        self.max = -INF
        self.first_ms = 0
        self.last_ms = 0

    def copy(self) -> Rollup:
        r = Rollup(list(self.bounds), 0)
        r.buckets = list(self.buckets)
        r.dt_s, r.count, r.sum, r.has_sum, r.errors = (
            self.dt_s,
            self.count,
            self.sum,
            self.has_sum,
            self.errors,
        )
        r.min, r.max, r.first_ms, r.last_ms = self.min, self.max, self.first_ms, self.last_ms
        return r

    def add_buckets(self, bounds: list[float], buckets: list[int]) -> None:
        if self.bounds == bounds and len(self.buckets) == len(buckets):
            # Integer counts added to float buckets: exactly `*a += *b as f64`.
            self.buckets = list(map(add, self.buckets, buckets))
            return
        self.add_buckets_f(bounds, [float(c) for c in buckets])

    def merge(self, other: Rollup) -> None:
        self.dt_s = fmax(self.dt_s, other.dt_s)
        self.first_ms = min(self.first_ms, other.first_ms)
        self.last_ms = max(self.last_ms, other.last_ms)
        self.count += other.count
        self.sum += other.sum
        self.has_sum = self.has_sum or other.has_sum
        self.errors += other.errors
        self.min = fmin(self.min, other.min)
        self.max = fmax(self.max, other.max)
        if not self.buckets:
            self.bounds = list(other.bounds)
            self.buckets = list(other.buckets)
        else:
            self.add_buckets_f(other.bounds, other.buckets)

    def rate(self) -> float | None:
        span_s = (self.last_ms - self.first_ms) / 1000.0
        return self.count / span_s if span_s > 0.0 else None

    def quantile(self, q: float) -> float | None:
        return bucket_quantile_f(self.bounds, self.buckets, q, self.min, self.max)

    def add_buckets_f(self, bounds: list[float], buckets: list[float]) -> None:
        if len(buckets) != len(bounds) + 1:
            return
        if self.bounds == bounds and len(self.buckets) == len(buckets):
            self.buckets = list(map(add, self.buckets, buckets))
            return
        union: list[float] = []
        for u in sorted([*self.bounds, *bounds], key=_total_order):
            if not union or union[-1] != u:
                union.append(u)
        merged = [0.0] * (len(union) + 1)
        sources = [(self.bounds, self.buckets), (list(bounds), list(buckets))]
        for b, counts in sources:
            if len(counts) != len(b) + 1:
                continue
            for k, c in enumerate(counts):
                if c == 0.0:
                    continue
                lo, hi = bucket_range(b, k)
                if not math.isfinite(lo) or not math.isfinite(hi):
                    j = bisect_right(union, lo) if math.isfinite(lo) else bisect_left(union, hi)
                    merged[j] += c
                    continue
                for j in range(len(merged)):
                    ulo, uhi = bucket_range(union, j)
                    overlap = fmin(hi, uhi) - fmax(lo, ulo)
                    if overlap > 0.0:
                        merged[j] += c * overlap / (hi - lo)
        self.bounds = union
        self.buckets = merged


def is_error_point(attrs: list[tuple[str, str]]) -> bool:
    for k, v in attrs:
        if k in ("http.response.status_code", "http.status_code"):
            # `str::parse::<u32>`: ASCII digits with an optional leading '+', no spaces.
            d = v[1:] if v.startswith("+") else v
            if d and d.isascii() and d.isdigit() and int(d) <= 0xFFFF_FFFF and int(d) >= 500:
                return True
        elif k == "error.type" and v:
            return True
    return False


def _powf(x: float, y: float) -> float:
    """``f64::powf``: an overflow is an infinity, not an exception."""
    try:
        return x**y
    except OverflowError:
        return INF


def exponential_buckets(
    scale: int,
    zero_count: int,
    zero_threshold: float,
    negative: tuple[int, list[int]],
    positive: tuple[int, list[int]],
) -> tuple[list[float], list[int]]:
    bounds: list[float] = []
    counts: list[int] = []
    base = _powf(2.0, _powf(2.0, float(-scale)))
    offset, neg = negative
    for k in range(len(neg) - 1, -1, -1):
        i = float(offset) + float(k)
        bounds.append(-_powf(base, i))
        counts.append(neg[k])
    has_negative = len(counts) > 0
    if zero_count > 0 or has_negative:
        bounds.append(fmax(zero_threshold, 0.0))
        counts.append(zero_count)
    offset, pos = positive
    for k, c in enumerate(pos):
        i = float(offset) + float(k)
        bounds.append(_powf(base, i + 1.0))
        counts.append(c)
    if bounds:
        bounds.pop()
    if not counts:
        counts.append(0)
    return bounds, counts


# --------------------------------------------------------------------------------------------
# otlp_events.rs: one-minute roll-up buckets


class Bucket:
    __slots__ = ("count", "durations", "errors", "rollup", "seen", "start_ms", "stride", "sum")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.count = 0
        self.errors = 0
        self.sum = 0.0
        self.durations: list[float] = []
        self.stride = 1
        self.seen = 0
        self.rollup: Rollup | None = None


def _sorted_quantile(s: list[float], q: float) -> float:
    rank = fmax(q * (len(s) - 1.0), 0.0)
    lo, hi = math.floor(rank), math.ceil(rank)
    f = rank - lo
    return s[lo] * (1.0 - f) + s[min(hi, len(s) - 1)] * f


class PyStore:
    """The store, cumulative stream state and roll-up buckets of one ``_core.SeriesStore``."""

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
        # (metric, attrs) -> [kind, bucket]
        self.open: dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]] = {}
        self.late = 0
        self.refused = 0

    # ---- store.rs ------------------------------------------------------------------------

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
            _F32[0] = baseline.last_score
            score = _F32[0]
            _F32[0] = baseline.last_raw
            sample = Sample(ts_ms, value, band.expected, band.sigma, score, _F32[0], band.model)
        else:
            sample = Sample(ts_ms, value, NAN, NAN, 0.0, 0.0, None)
        ring.append(sample)
        stats.points_accepted += 1
        return None

    # ---- otlp_events.rs --------------------------------------------------------------------

    def _bucket(
        self, metric: str, attrs: tuple[tuple[str, str], ...], kind: str, ts_ms: int
    ) -> Bucket | None:
        start = ts_ms // BUCKET_MS * BUCKET_MS
        key = (metric, attrs)
        entry = self.open.get(key)
        if entry is None:
            if len(self.open) >= self.config.max_series:
                self.refused += 1
                return None
            entry = self.open[key] = [kind, Bucket(start)]
            return entry[1]
        open_b: Bucket = entry[1]
        if start > open_b.start_ms:
            entry[1] = Bucket(start)
            self._write(metric, attrs, entry[0], open_b)
        elif start < open_b.start_ms:
            self.late += 1
        return entry[1]

    def add_rollup(
        self, metric: str, service: tuple[tuple[str, str], ...], ts_ms: int, rollup: Rollup
    ) -> None:
        rollup = rollup.copy()
        rollup.last_ms = ts_ms
        rollup.first_ms = ts_ms - int(rollup.dt_s * 1000.0)
        b = self._bucket(metric, service, "histogram", ts_ms)
        if b is None:
            return
        if b.rollup is not None:
            b.rollup.merge(rollup)
        else:
            b.rollup = rollup

    def _write(self, metric: str, attrs: tuple[tuple[str, str], ...], kind: str, b: Bucket) -> None:
        ts = b.start_ms + BUCKET_MS
        minutes = BUCKET_MS / 60_000.0

        def push(stat: str, v: float) -> None:
            self.push(metric, stat, attrs, ts, v)

        ru = b.rollup
        if kind == "histogram" and ru is not None:
            push("count", float(ru.count))
            rate = ru.rate()
            if rate is not None:
                push("rate", rate)
            if ru.count > 0:
                push("error_ratio", ru.errors / ru.count)
                if ru.has_sum:
                    push("mean", ru.sum / ru.count)
                for stat, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
                    v = ru.quantile(q)
                    if v is not None:
                        push(stat, v)
            return
        push("count", float(b.count))
        push("rate", b.count / (minutes * 60.0))
        if kind == "spans" and b.count > 0:
            push("error_ratio", b.errors / b.count)
            push("mean", b.sum / b.count)
            b.durations.sort(key=_total_order)
            if b.durations:
                push("p50", _sorted_quantile(b.durations, 0.5))
                push("p90", _sorted_quantile(b.durations, 0.9))
                push("p99", _sorted_quantile(b.durations, 0.99))

    def flush_events(self, now_ms: int) -> int:
        """``EventAggregator::flush``: writes every bucket that ended at or before ``now_ms``."""
        n = 0
        for key in list(self.open):
            kind, b = self.open[key]
            if b.start_ms + BUCKET_MS <= now_ms:
                self._write(key[0], key[1], kind, b)
                del self.open[key]
                n += 1
        return n

    # ---- otlp.rs ---------------------------------------------------------------------------

    def ingest(self, body: bytes) -> tuple[int, int]:
        """``ingest_otlp_metrics(body, gzip=True)``: (accepted, rejected)."""
        accepted, rejected, _ = self.ingest_report(body)
        return accepted, rejected

    def ingest_report(self, body: bytes) -> tuple[int, int, str]:
        raw = gzip.decompress(body)
        if len(raw) > self.max_body_bytes:
            raise ValueError(f"request body exceeds {self.max_body_bytes} bytes")
        return self.apply(ExportMetricsServiceRequest.FromString(raw))

    def apply(self, request: Any) -> tuple[int, int, str]:
        """``apply_view`` on a decoded request: (accepted, rejected, message)."""
        accepted = 0
        rejected = 0
        message = ""
        groups = self.groups
        push_key = self.push_key
        max_series = self.config.max_series
        cumulative = self.cumulative

        for rm in request.resource_metrics:
            resource = _attrs(rm.resource.attributes)
            service_all = sorted((k, v) for k, v in resource if k in SERVICE_ATTRIBUTES)
            service_l: list[tuple[str, str]] = []
            for kv in service_all:
                if not service_l or service_l[-1][0] != kv[0]:
                    service_l.append(kv)
            service = tuple(service_l)
            merge = _Merger(resource).merge

            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    name = metric.name
                    kind = metric.WhichOneof("data")
                    if not name:
                        n = len(getattr(metric, kind).data_points) if kind is not None else 0
                        for _ in range(max(n, 1)):
                            rejected += 1
                            if not message:
                                message = "a metric without a name was rejected"
                        continue
                    if kind == "gauge" or kind == "sum":
                        data = metric.gauge if kind == "gauge" else metric.sum
                        monotonic = kind == "sum" and data.is_monotonic
                        is_cumulative = kind == "sum" and data.aggregation_temporality == CUMULATIVE
                        for p in data.data_points:
                            which = p.WhichOneof("value")
                            if which is None:
                                rejected += 1
                                if not message:
                                    message = "a number data point had no value"
                                continue
                            val = p.as_double if which == "as_double" else float(p.as_int)
                            attrs = merge(_attrs(p.attributes))
                            gkey = (name, attrs)
                            group = groups.get(gkey)
                            if group is None:
                                group = groups[gkey] = {}
                            time_ns = p.time_unix_nano
                            ts = time_ns // NS_PER_MS
                            if not monotonic:
                                r = push_key(group, name, "value", attrs, ts, val)
                                if r is None:
                                    accepted += 1
                                else:
                                    rejected += 1
                                    message = message or r
                                continue
                            start_ns = p.start_time_unix_nano
                            delta: tuple[float, int] | None
                            if is_cumulative:
                                key = (name, attrs)  # otlp.rs stream_key: metric and attributes, unforgeable
                                prev = cumulative.get(key)
                                if prev is not None and prev[0] == start_ns and val >= prev[2]:
                                    delta = None if time_ns <= prev[1] else (val - prev[2], time_ns - prev[1])
                                elif start_ns > 0 and time_ns > start_ns:
                                    delta = (val, time_ns - start_ns)
                                else:
                                    delta = None
                                if len(cumulative) < max_series or key in cumulative:
                                    cumulative[key] = (start_ns, time_ns, val, 0, 0.0, [])
                            elif time_ns > start_ns and start_ns > 0:
                                delta = (val, time_ns - start_ns)
                            else:
                                delta = (val, 0)
                            if delta is None:
                                # The first cumulative point without a start time only primes the stream.
                                accepted += 1
                                continue
                            d, dt_ns = delta
                            r = push_key(group, name, "delta", attrs, ts, d)
                            if r is None:
                                if dt_ns > 0:
                                    push_key(group, name, "rate", attrs, ts, d / (dt_ns / 1e9))
                                accepted += 1
                            else:
                                rejected += 1
                                message = message or r
                    elif kind == "histogram" or kind == "exponential_histogram":
                        data = getattr(metric, kind)
                        is_cumulative = data.aggregation_temporality == CUMULATIVE
                        exponential = kind == "exponential_histogram"
                        rollups: dict[int, Rollup] = {}
                        for p in data.data_points:
                            pattrs = _attrs(p.attributes)
                            attrs = merge(pattrs)
                            gkey = (name, attrs)
                            group = groups.get(gkey)
                            if group is None:
                                group = groups[gkey] = {}
                            if exponential:
                                bounds, counts = exponential_buckets(
                                    p.scale,
                                    p.zero_count,
                                    p.zero_threshold,
                                    (p.negative.offset, list(p.negative.bucket_counts)),
                                    (p.positive.offset, list(p.positive.bucket_counts)),
                                )
                            else:
                                bounds = list(p.explicit_bounds)
                                counts = list(p.bucket_counts)
                            hd = self._histogram_delta(p, bounds, counts, is_cumulative, name, attrs)
                            if hd is None:
                                accepted += 1
                                continue
                            dt_s, count, hsum, dbuckets, hmin, hmax = hd
                            time_ns = p.time_unix_nano
                            ts = time_ns // NS_PER_MS
                            r = push_key(group, name, "count", attrs, ts, float(count))
                            if r is None:
                                if dt_s > 0.0:
                                    push_key(group, name, "rate", attrs, ts, count / dt_s)
                                if hsum is not None and count > 0:
                                    push_key(group, name, "mean", attrs, ts, hsum / count)
                                accepted += 1
                            else:
                                rejected += 1
                                message = message or r
                            ru = rollups.get(time_ns)
                            if ru is None:
                                ru = rollups[time_ns] = Rollup(list(bounds), len(dbuckets))
                            if dt_s > ru.dt_s:
                                ru.dt_s = dt_s
                            ru.count += count
                            if hsum is not None:
                                ru.sum += hsum
                                ru.has_sum = True
                            if is_error_point(pattrs):
                                ru.errors += count
                            ru.add_buckets(bounds, dbuckets)
                            if hmin is not None:
                                ru.min = fmin(ru.min, hmin)
                            if hmax is not None:
                                ru.max = fmax(ru.max, hmax)
                        for t, ru in rollups.items():
                            self.add_rollup(name, service, t // NS_PER_MS, ru)
                    elif kind == "summary":
                        for p in metric.summary.data_points:
                            attrs = merge(_attrs(p.attributes))
                            gkey = (name, attrs)
                            group = groups.get(gkey)
                            if group is None:
                                group = groups[gkey] = {}
                            ts = p.time_unix_nano // NS_PER_MS
                            first: str | None = None
                            for qv in p.quantile_values:
                                x = qv.quantile
                                if abs(x - 0.5) < 1e-9:
                                    stat = "p50"
                                elif abs(x - 0.9) < 1e-9:
                                    stat = "p90"
                                elif abs(x - 0.99) < 1e-9:
                                    stat = "p99"
                                else:
                                    continue
                                r = push_key(group, name, stat, attrs, ts, qv.value)
                                if first is None and r is not None:
                                    first = r
                            if first is None:
                                accepted += 1
                            else:
                                rejected += 1
                                message = message or first
                    else:
                        rejected += 1
                        message = message or "a metric had no data"
        return accepted, rejected, message

    def _histogram_delta(
        self,
        p: Any,
        bounds: list[float],
        counts: list[int],
        is_cumulative: bool,
        name: str,
        attrs: tuple[tuple[str, str], ...],
    ) -> tuple[float, int, float | None, list[int], float | None, float | None] | None:
        """``histogram_delta``: (dt_s, count, sum, buckets, min, max) or None."""
        start_ns = p.start_time_unix_nano
        time_ns = p.time_unix_nano
        count = p.count
        hsum = p.sum if p.HasField("sum") else None
        hmin = p.min if p.HasField("min") else None
        hmax = p.max if p.HasField("max") else None
        since_start = (time_ns - start_ns) / 1e9 if start_ns > 0 and time_ns > start_ns else None
        if not is_cumulative:
            return (since_start if since_start is not None else 0.0, count, hsum, counts, hmin, hmax)
        key = (name, attrs)  # otlp.rs stream_key: metric and attributes, unforgeable
        cumulative = self.cumulative
        prev = cumulative.get(key)
        delta: tuple[float, int, float | None, list[int], float | None, float | None] | None
        if prev is not None and prev[0] == start_ns and count >= prev[3] and len(prev[5]) == len(counts):
            if time_ns > prev[1]:
                delta = (
                    (time_ns - prev[1]) / 1e9,
                    count - prev[3],
                    hsum - prev[4] if hsum is not None else None,
                    [a - b if a > b else 0 for a, b in zip(counts, prev[5], strict=True)],
                    hmin,
                    hmax,
                )
            else:
                delta = None
        elif since_start is not None:
            delta = (since_start, count, hsum, counts, hmin, hmax)
        else:
            delta = None
        if len(cumulative) < self.config.max_series or key in cumulative:
            cumulative[key] = (start_ns, time_ns, 0.0, count, hsum if hsum is not None else 0.0, list(counts))
        return delta

    # ---- reading back ----------------------------------------------------------------------

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
            "open_event_buckets": len(self.open),
            "late_events": self.late,
            "refused_events": self.refused,
        }

    def __len__(self) -> int:
        return len(self.all_series)


class _Merger:
    """``Merger``: a resource's attributes merged with each point's (the point wins), sorted by
    key. The order found for one point's keys is remembered for the next point with the same
    keys, as in Rust; the result depends on the keys only."""

    __slots__ = ("getter", "keys", "resource")

    def __init__(self, resource: list[tuple[str, str]]) -> None:
        self.resource = resource
        self.keys: tuple[str, ...] | None = None
        self.getter: Any = None

    def merge(self, point: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        combined = point + self.resource
        keys = tuple([kv[0] for kv in point])
        if keys != self.keys or self.getter is None:
            pkeys = set(keys)
            n = len(point)
            srcs = list(range(n)) + [n + i for i, (k, _) in enumerate(self.resource) if k not in pkeys]
            srcs.sort(key=lambda i: combined[i][0])
            if len(srcs) == 0:
                self.getter = lambda _c: ()
            elif len(srcs) == 1:
                only = srcs[0]
                self.getter = lambda c: (c[only],)
            else:
                self.getter = itemgetter(*srcs)
            self.keys = keys
        return self.getter(combined)
