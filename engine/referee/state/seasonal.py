"""Seasonal baselines fitted with statsmodels, off the request path, handed to Rust as bands.

Why this file is long: the history, the model choice with its backtest, and the fitter's
schedule (budget, drift-triggered refits, counted refusals) share the History type and are read
together; the cheap models themselves are in ``seasonal_models``.

Only series that rules or suggestions touched are fitted (the store records reads; see
``SeriesStore.take_touched``). For each, a downsampled history (bucket means of ``step_s``
seconds, at most ``history_days``) is kept here, fed from the store's ring on every pass. A fit:

* needs ``min_periods`` days of history (otherwise nothing is fitted and the streaming band
  stays in force);
* masks confirmed incident windows (``exclude``) and interpolates over them, so an incident
  never becomes part of the seasonal profile;
* tries the models of ``models`` in order and adopts the first that wins its backtest: by
  default Fourier-term regression (``statsmodels.ols_fourier``: statsmodels OLS on daily, and
  from ``weekly_min_days`` weekly, harmonics; a few milliseconds a fit), then robust STL with
  jumps (daily period) or, once ``weekly_min_days`` of history exist, MSTL with daily and weekly
  periods on hourly data (``auto``; seasonal SARIMAX and ETS with long periods are avoided);
* is checked on a backtest: refitted without the last ``holdout`` buckets, its forecast of them
  must have a lower mean absolute error than the streaming band had on the same buckets;
* becomes a versioned band artifact (anchor, step, horizon, expected and sigma per step,
  validity, the backtest numbers) handed to Rust with ``SeriesStore.set_band``.

Fits are spent under a CPU budget (``fit_budget_s_per_min`` seconds of fitting per minute,
measured as thread CPU time) and the stalest series go first. A series whose band is in force
is refitted only when the band has drifted (``band_drifted``) or is about to expire, not every
``refit_every``. Every refused or skipped fit is counted by reason (``refusals``, ``skips``).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from referee import _core
from referee.config import Settings
from referee.models import Verdict
from referee.state.seasonal_models import _fourier_forecast, band_drifted

log = logging.getLogger("referee.seasonal")

SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]
DAY_S = 86_400
#: Bucket widths that divide a day, up to six hours (four points a day: STL needs a period of
#: at least two, and a coarser series says little about its daily season).
BUCKET_WIDTHS_S = (60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600)


def key_of(metric: str, statistic: str, attributes: dict[str, str]) -> SeriesKey:
    return (metric, statistic, tuple(sorted(attributes.items())))


@dataclass
class History:
    """Bucket sums of one series: value, and the streaming band's expected value."""

    step_ms: int
    buckets: dict[int, list[float]] = field(default_factory=dict)  # bucket -> [n, Σvalue, n_exp, Σexp]
    last_seen_ms: int = -(2**62)
    excluded: list[tuple[int, int]] = field(default_factory=list)
    version: int = 0
    fitted_at_ms: int | None = None
    checked_at_ms: int | None = None
    last_error: str | None = None
    #: Whether a decision read the series (only those are fitted; replay keeps the history of
    #: every series it ingests so a series is fittable as soon as a decision reads it).
    wanted: bool = True
    #: The band in force: (anchor_ms, expected, sigma, valid_until_ms).
    band: tuple[int, np.ndarray, np.ndarray, int] | None = None

    def add(self, ts_ms: int, value: float, expected: float) -> None:
        b = self.buckets.setdefault(ts_ms // self.step_ms, [0.0, 0.0, 0.0, 0.0])
        b[0] += 1
        b[1] += value
        if math.isfinite(expected):
            b[2] += 1
            b[3] += expected

    def trim(self, keep_buckets: int) -> None:
        if len(self.buckets) > keep_buckets:
            cut = sorted(self.buckets)[-keep_buckets]
            self.buckets = {k: v for k, v in self.buckets.items() if k >= cut}

    def arrays(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(first bucket, values, streaming expected) on a regular grid; NaN where missing or
        inside an excluded (confirmed incident) window."""
        first, last = min(self.buckets), max(self.buckets)
        n = last - first + 1
        values = np.full(n, np.nan)
        expected = np.full(n, np.nan)
        for k, (cnt, total, cnt_e, total_e) in self.buckets.items():
            values[k - first] = total / cnt
            if cnt_e:
                expected[k - first] = total_e / cnt_e
        for start, end in self.excluded:
            lo = max(0, start // self.step_ms - first)
            hi = min(n - 1, end // self.step_ms - first)
            if lo <= hi:
                values[lo : hi + 1] = np.nan
        return first, values, expected


def interpolate(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN (ends held at the nearest value)."""
    ok = np.isfinite(values)
    if ok.all() or not ok.any():
        return values
    idx = np.arange(len(values))
    return np.interp(idx, idx[ok], values[ok])


class BandArtifactSpec(TypedDict):
    """A band artifact as ``SeriesStore.set_band`` takes it (as JSON; Rust's
    ``band::ArtifactSpec``, described in docs/baselines.md): ``expected[k]`` and ``sigma[k]``
    hold for the step starting at ``anchor_ms + k * step_ms``."""

    #: Must be newer than the series' current artifact.
    version: int
    #: ``statsmodels.stl``, ``statsmodels.mstl``, ``statsmodels.unobserved_components`` or
    #: ``statsmodels.sarimax_fourier`` or ``statsmodels.ols_fourier``.
    model: str
    anchor_ms: int
    step_ms: int
    expected: list[float]
    #: Finite and positive, as many as ``expected``.
    sigma: list[float]
    valid_until_ms: int
    fitted_at_ms: int
    #: Backtest mean absolute errors of the fit and of the streaming band on the same held-out
    #: points; the artifact is refused when the fit's is the larger.
    backtest_mae: float
    streaming_mae: float


@dataclass
class FitResult:
    model: str
    expected: np.ndarray  # forecast for the next `horizon` steps
    sigma: np.ndarray
    backtest_mae: float
    streaming_mae: float


def _forecast(model: str, y: np.ndarray, steps_per_day: int, horizon: int) -> tuple[np.ndarray, float]:
    """Fits `model` to `y` (regular grid, no NaN) and returns (forecast of `horizon` steps,
    residual scale). Forecast = last trend value + the seasonal profile carried forward."""
    from statsmodels.tsa.seasonal import MSTL, STL

    if model == "statsmodels.ols_fourier":
        return _fourier_forecast(y, steps_per_day, horizon, weekly=False)
    if model == "statsmodels.ols_fourier.weekly":
        return _fourier_forecast(y, steps_per_day, horizon, weekly=True)
    if model == "statsmodels.mstl":
        res: Any = MSTL(y, periods=(steps_per_day, 7 * steps_per_day), stl_kwargs={"robust": True}).fit()
        seasonal = np.asarray(res.seasonal)
        seasonal_sum = seasonal.sum(axis=1) if seasonal.ndim == 2 else seasonal
        period = 7 * steps_per_day
    else:
        jump = max(1, steps_per_day // 10)
        res = STL(
            y, period=steps_per_day, robust=True, seasonal_jump=2, trend_jump=jump, low_pass_jump=jump
        ).fit()
        seasonal_sum = np.asarray(res.seasonal)
        period = steps_per_day
    trend = np.asarray(res.trend)
    resid = np.asarray(res.resid)
    n = len(y)
    # The seasonal value `period` steps before each future step (the last full cycle).
    idx = np.array([n - period + (k % period) for k in range(horizon)])
    forecast = trend[-1] + seasonal_sum[idx]
    med = np.median(resid)
    scale = 1.4826 * float(np.median(np.abs(resid - med))) + 0.1 * float(np.std(resid))
    return forecast, max(scale, 1e-9)


def fit_series(
    values: np.ndarray,
    streaming_expected: np.ndarray,
    step_s: int,
    horizon: int,
    min_periods: int = 3,
    weekly_min_days: int = 21,
    holdout: int | None = None,
    model: str = "auto",
) -> FitResult | None:
    """Fits `model` on a regular grid: ``auto`` (robust STL, or MSTL from ``weekly_min_days``)
    or ``statsmodels.ols_fourier`` (weekly harmonics too from ``weekly_min_days``). None when
    the history is too short."""
    steps_per_day = DAY_S // step_s
    n = len(values)
    if n < min_periods * steps_per_day or np.isfinite(values).sum() < 0.5 * n:
        return None
    y = interpolate(values)
    weekly = n >= weekly_min_days * steps_per_day
    name = model
    if model == "statsmodels.ols_fourier":
        model = "statsmodels.ols_fourier.weekly" if weekly else model
    elif model == "auto":
        model = name = "statsmodels.mstl" if weekly else "statsmodels.stl"
    else:
        raise ValueError(f"unknown model {model!r}")
    if model == "statsmodels.mstl" and step_s < 3600:
        # MSTL on hourly data: a weekly period of 168 steps keeps the fit in seconds.
        factor = 3600 // step_s
        m = n // factor * factor
        y_h = y[n - m :].reshape(-1, factor).mean(axis=1)
        fc_h, _ = _forecast(model, y_h, 24, math.ceil(horizon / factor) + 1)
        forecast = np.repeat(fc_h, factor)[:horizon]
        _, scale = _forecast("statsmodels.stl", y, steps_per_day, 1)
        ho = holdout or min(steps_per_day, n // 5)
        bt_h, _ = _forecast(model, y_h[: -math.ceil(ho / factor)], 24, math.ceil(ho / factor))
        backtest = np.repeat(bt_h, factor)[-ho:]
    else:
        forecast, scale = _forecast(model, y, steps_per_day, horizon)
        ho = holdout or min(steps_per_day, n // 5)
        backtest, _ = _forecast(model, y[:-ho], steps_per_day, ho)
    actual = values[-ho:]
    stream = streaming_expected[-ho:]
    ok = np.isfinite(actual) & np.isfinite(stream)
    if ok.sum() < max(3, ho // 4):
        # No streaming band to compare with: compare with the last-value forecast instead.
        stream = np.full(ho, y[-ho - 1])
        ok = np.isfinite(actual)
    errors = actual[ok] - backtest[ok]
    backtest_mae = float(np.mean(np.abs(errors)))
    streaming_mae = float(np.mean(np.abs(actual[ok] - stream[ok])))
    # Sigma from the out-of-sample errors: in-sample STL residuals are too small (the seasonal
    # component absorbs part of the noise) and would make the band too narrow.
    med = float(np.median(errors))
    scale_bt = 1.4826 * float(np.median(np.abs(errors - med))) + 0.1 * float(np.std(errors))
    sigma = max(scale, scale_bt, 1e-9)
    return FitResult(name, forecast, np.full(horizon, sigma), backtest_mae, streaming_mae)


class SeasonalFitter:
    """Keeps histories of touched series and refits them under a CPU budget."""

    def __init__(
        self,
        store: _core.SeriesStore,
        *,
        step_s: int = 300,
        history_days: float = 28.0,
        horizon_s: int = 6 * 3600,
        refit_every_s: float = 3600.0,
        fit_budget_s_per_min: float = 6.0,
        min_periods: int = 3,
        models: tuple[str, ...] = ("statsmodels.ols_fourier", "auto"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if DAY_S % step_s:
            raise ValueError("baselines.fit_step_s: must divide a day")
        self.store = store
        self.step_s = step_s
        self.history_days = history_days
        self.horizon_s = horizon_s
        self.refit_every_s = refit_every_s
        self.budget = fit_budget_s_per_min
        self.min_periods = min_periods
        self.models = models
        self.clock = clock
        self.histories: dict[SeriesKey, History] = {}
        self.exclusions: list[tuple[str, str, tuple[tuple[str, str], ...], int, int]] = []
        self._lock = threading.Lock()
        self.fits_total = 0
        self.fits_rejected = 0
        self.fit_cpu_s = 0.0
        #: Fits adopted, by model.
        self.adopted: Counter[str] = Counter()
        #: Fits attempted and not adopted, by reason: ``history too short``, ``sampled too
        #: coarsely``, ``backtest lost`` (no model beat the streaming band on held-out buckets),
        #: ``refused by the store``, ``error``.
        self.refusals: Counter[str] = Counter()
        #: Fits not attempted, by reason: ``band holds`` (due, but the band in force has not
        #: drifted), ``budget`` (due, but the pass's CPU budget was spent).
        self.skips: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, store: _core.SeriesStore, settings: Settings, clock: Callable[[], float] = time.time
    ) -> SeasonalFitter:
        b = settings.baselines
        return cls(
            store,
            step_s=int(b.fit_step),
            horizon_s=int(b.horizon),
            refit_every_s=b.refit_every,
            fit_budget_s_per_min=b.fit_budget_s_per_min,
            clock=clock,
        )

    def exclude(
        self, metric: str, statistic: str, subject: dict[str, str], start_ms: int, end_ms: int
    ) -> None:
        """Masks a confirmed incident window from the future fits of every series of
        `metric`/`statistic` whose attributes include `subject` (now or once tracked)."""
        with self._lock:
            self.exclusions.append((metric, statistic, tuple(sorted(subject.items())), start_ms, end_ms))
            self.exclusions = self.exclusions[-1000:]

    def note_verdict(self, verdict: Verdict) -> None:
        """Baseline hygiene: a confirmed incident's evidence window is never fitted."""
        ev = verdict.evidence
        if verdict.verdict != "confirm" or not ev.metric or not ev.window_start or not ev.window_end:
            return
        self.exclude(
            ev.metric,
            ev.statistic or "value",
            verdict.subject,
            int(ev.window_start.timestamp() * 1000),
            int(ev.window_end.timestamp() * 1000),
        )

    def _excluded_for(self, key: SeriesKey) -> list[tuple[int, int]]:
        metric, statistic, attrs = key
        have = set(attrs)
        return [
            (start, end)
            for m, st, subject, start, end in self.exclusions
            if m == metric and st == statistic and set(subject) <= have
        ]

    def bucket_s(self, ts_ms: list[int]) -> int:
        """The bucket width for a series sampled at ``ts_ms``: ``fit_step``, or for a series
        sampled more coarsely (every 30 minutes, hourly) the smallest width dividing a day that
        holds a point each, so its grid is not mostly empty."""
        deltas = sorted(b - a for a, b in itertools.pairwise(ts_ms) if b > a)
        spacing_s = deltas[len(deltas) // 2] / 1000 if deltas else 0.0
        for width in BUCKET_WIDTHS_S:
            if width >= self.step_s and width >= 0.99 * spacing_s:
                return width
        return BUCKET_WIDTHS_S[-1] * 2  # coarser than the widest: see ``fit_one``

    def poll(self, only: SeriesKey | None = None) -> None:
        """Picks up newly touched series and appends new points of every tracked one (of
        ``only``, when given: replay polls each series as it feeds it, and keeps the history of
        ``only`` even before a decision reads it, so that a fit does not have to wait for the
        store's ring to refill)."""
        with self._lock:
            for metric, statistic, attrs in self.store.take_touched():
                key = key_of(metric, statistic, attrs)
                if key not in self.histories:
                    stamps = [row[0] for row in self.store.samples(metric, statistic, attrs)]
                    self.histories[key] = History(self.bucket_s(stamps) * 1000)
                self.histories[key].wanted = True
            if only is not None and only not in self.histories:
                m, st, pairs = only
                stamps = [row[0] for row in self.store.samples(m, st, dict(pairs))]
                if stamps:
                    self.histories[only] = History(self.bucket_s(stamps) * 1000, wanted=False)
            for (m, st, pairs), h in self.histories.items():
                if only is not None and (m, st, pairs) != only:
                    continue
                for ts, value, expected, *_ in self.store.samples(m, st, dict(pairs)):
                    if ts > h.last_seen_ms:
                        h.add(ts, value, expected)
                        h.last_seen_ms = ts
                h.trim(int(self.history_days * DAY_S * 1000 / h.step_ms))

    def fit_one(self, key: SeriesKey, now_ms: int) -> str | None:
        """Fits one series and hands the band to Rust; returns the model used, or None (the
        reason is counted in ``refusals`` and kept in the history's ``last_error``)."""
        with self._lock:
            h = self.histories[key]
            if not h.buckets:
                return None
            h.excluded = self._excluded_for(key)
            first, values, expected = h.arrays()
        h.fitted_at_ms = now_ms
        step_ms = h.step_ms
        if step_ms > BUCKET_WIDTHS_S[-1] * 1000:
            return self._refuse(h, "sampled too coarsely", "sampled too coarsely to fit a daily season")
        horizon = max(1, self.horizon_s * 1000 // step_ms)
        result = None
        for model in self.models:
            result = fit_series(values, expected, step_ms // 1000, horizon, self.min_periods, model=model)
            if result is None:
                return self._refuse(h, "history too short", "history too short")
            if result.backtest_mae <= result.streaming_mae:
                break
        assert result is not None
        if result.backtest_mae > result.streaming_mae:
            return self._refuse(
                h,
                "backtest lost",
                f"backtest lost: MAE {result.backtest_mae:.4g} > streaming {result.streaming_mae:.4g}",
            )
        anchor = (first + len(values)) * step_ms
        artifact: BandArtifactSpec = {
            "version": h.version + 1,
            "model": result.model,
            "anchor_ms": anchor,
            "step_ms": step_ms,
            "expected": [float(x) for x in result.expected],
            "sigma": [float(x) for x in result.sigma],
            "valid_until_ms": anchor + horizon * step_ms,
            "fitted_at_ms": now_ms,
            "backtest_mae": result.backtest_mae,
            "streaming_mae": result.streaming_mae,
        }
        metric, statistic, attrs = key
        self.fits_total += 1
        try:
            self.store.set_band(metric, statistic, dict(attrs), json.dumps(artifact))
        except ValueError as e:
            self.fits_rejected += 1
            return self._refuse(h, "refused by the store", str(e))
        h.version += 1
        h.last_error = None
        h.band = (anchor, result.expected, result.sigma, artifact["valid_until_ms"])
        self.adopted[result.model] += 1
        return result.model

    def _refuse(self, h: History, reason: str, detail: str) -> str | None:
        self.refusals[reason] += 1
        h.last_error = detail
        log.debug("seasonal fit refused (%s): %s", reason, detail)
        return None

    def _band_holds(self, h: History, now_ms: int) -> bool:
        """Whether the band in force can stay: valid for another ``refit_every`` and not
        drifted on the buckets seen since it was fitted (``band_drifted``)."""
        if h.band is None:
            return False
        anchor, expected, sigma, valid_until = h.band
        if valid_until - now_ms < self.refit_every_s * 1000:
            return False
        with self._lock:
            first_k = anchor // h.step_ms
            last_k = now_ms // h.step_ms
            n = min(len(expected), max(0, last_k - first_k))
            vals = np.full(n, np.nan)
            for k in range(first_k, first_k + n):
                b = h.buckets.get(k)
                if b is not None and b[0]:
                    vals[k - first_k] = b[1] / b[0]
        return not band_drifted(vals, expected[:n], sigma[:n])

    def step(self) -> int:
        """One pass: poll, then refit the stalest due series until the minute's budget is
        spent. A due series whose band holds (``_band_holds``) is not refitted. Returns the
        number of fits attempted."""
        self.poll()
        now = self.clock()
        now_ms = int(now * 1000)
        period_ms = self.refit_every_s * 1000
        due = sorted(
            (h.fitted_at_ms or 0, k)
            for k, h in self.histories.items()
            if h.wanted
            and (h.fitted_at_ms is None or now_ms - max(h.fitted_at_ms, h.checked_at_ms or 0) >= period_ms)
        )
        spent = 0.0
        attempted = 0
        for i, (_, key) in enumerate(due):
            h = self.histories[key]
            if self._band_holds(h, now_ms):
                h.checked_at_ms = now_ms
                self.skips["band holds"] += 1
                continue
            if spent >= self.budget:
                self.skips["budget"] += sum(1 for _ in due[i:])
                break
            t0 = time.thread_time()
            try:
                self.fit_one(key, now_ms)
            except Exception as e:  # a failed fit keeps the streaming band
                h.last_error = f"fit failed: {e}"
                h.fitted_at_ms = now_ms
                self.refusals["error"] += 1
                log.warning("seasonal fit of %s failed: %s", key, e)
            spent += time.thread_time() - t0
            attempted += 1
        self.fit_cpu_s += spent
        return attempted

    def status(self) -> dict[str, Any]:
        return {
            "tracked_series": len(self.histories),
            "fits_total": self.fits_total,
            "fits_rejected": self.fits_rejected,
            "fit_cpu_s": round(self.fit_cpu_s, 3),
            "adopted": dict(sorted(self.adopted.items())),
            "refused": dict(sorted(self.refusals.items())),
            "skipped": dict(sorted(self.skips.items())),
        }
