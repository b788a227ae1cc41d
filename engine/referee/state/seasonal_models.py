"""Cheap seasonal models and the drift test of ``referee.state.seasonal``: Fourier-term
regression (statsmodels OLS) and ``band_drifted``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Harmonics of the Fourier-term regression, chosen a priori (not tuned on any benchmark): six
#: daily (down to a four-hour wave), three weekly.
DAILY_HARMONICS = 6
WEEKLY_HARMONICS = 3


def fourier_terms(t: np.ndarray, steps_per_day: int, weekly: bool) -> np.ndarray:
    """Design matrix: a constant and sin/cos pairs of the daily (and weekly) period at step `t`."""
    cols = [np.ones(len(t))]
    periods = [(steps_per_day, min(DAILY_HARMONICS, max(1, (steps_per_day - 1) // 2)))]
    if weekly:
        periods.append((7 * steps_per_day, WEEKLY_HARMONICS))
    for period, harmonics in periods:
        for k in range(1, harmonics + 1):
            w = 2 * np.pi * k * t / period
            cols.extend((np.sin(w), np.cos(w)))
    return np.column_stack(cols)


def _fourier_forecast(
    y: np.ndarray, steps_per_day: int, horizon: int, weekly: bool
) -> tuple[np.ndarray, float]:
    """Fourier-term regression (statsmodels OLS); the forecast is the fitted season carried
    forward plus the median residual of the last quarter day (the current level)."""
    from statsmodels.regression.linear_model import OLS

    n = len(y)
    t = np.arange(n + horizon, dtype=float)
    x = fourier_terms(t, steps_per_day, weekly)
    res: Any = OLS(y, x[:n]).fit()
    resid = y - np.asarray(res.fittedvalues)
    level = float(np.median(resid[-max(1, steps_per_day // 4) :]))
    forecast = x[n:] @ np.asarray(res.params) + level
    med = np.median(resid)
    scale = 1.4826 * float(np.median(np.abs(resid - med))) + 0.1 * float(np.std(resid))
    return forecast, max(scale, 1e-9)


#: The drift test (see ``band_drifted``): standardised mean and mean square of the residuals.
DRIFT_Z = 3.0
DRIFT_MEAN_SQUARE = 4.0


def band_drifted(values: np.ndarray, expected: np.ndarray, sigma: np.ndarray) -> bool:
    """Whether the points since a band was fitted contradict it. With residuals
    ``z = (value - expected) / sigma`` over the ``m`` buckets seen since the fit (NaN ignored),
    the band has drifted when their mean is off centre (``|mean z| * sqrt(m) > 3``: a 3-sigma
    test of the mean under the band's own model) or their spread has doubled
    (``mean z^2 > 4``). Fewer than 3 buckets never count as drift."""
    z = (values - expected) / sigma
    z = z[np.isfinite(z)]
    m = len(z)
    if m < 3:
        return False
    return bool(abs(float(z.mean())) * math.sqrt(m) > DRIFT_Z or float((z * z).mean()) > DRIFT_MEAN_SQUARE)
