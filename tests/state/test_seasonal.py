"""Seasonal fits (statsmodels) handed to Rust as band artifacts: lazily, only for touched
series; used while fresh, the streaming band otherwise; confirmed incidents never fitted."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from referee import _core
from referee.decision.decider import Decider
from referee.decision.rulepack import load_rules
from referee.models import Suggestion
from referee.state.seasonal import History, SeasonalFitter, fit_series

PACK = """\
referee: 1
pack: seasonal-test
rules:
  - id: test.anomaly
    match: suggestion.claim.kind == "anomaly"
    signal: {metric: load, window: 15m}
    when: signal.max > baseline.upper || signal.min < baseline.lower
    then: {verdict: confirm, reason: outside the band}
    otherwise: {verdict: suppress, reason: inside the band}
"""
STEP_MS = 300_000
START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def profile(ts_ms: int) -> float:
    """A daily cycle with structure inside each hour (a 2-hour wave), which the streaming
    hour-of-day slots blur and a fitted daily season captures."""
    hour = (ts_ms % 86_400_000) / 3_600_000
    return 100.0 + 60.0 * math.sin(2 * math.pi * (hour - 6) / 24) + 30.0 * math.sin(math.pi * hour)


def _feed(store: _core.SeriesStore, service: str, n: int, start_index: int = 0, spike: float = 0.0) -> int:
    rng = random.Random(service)
    ts = [START + (start_index + i) * STEP_MS for i in range(n)]
    vals = [profile(t) + rng.gauss(0, 2) + spike for t in ts]
    store.ingest_points("load", "value", {"service.name": service}, ts, vals)
    return ts[-1]


def _suggestion(service: str, at_ms: int, sid: str = "s") -> Suggestion:
    return Suggestion(
        id=sid,
        source="t",
        created_at=datetime.fromtimestamp(at_ms / 1000, tz=UTC),
        subject={"service.name": service},
        claim={"kind": "anomaly", "signal": "load"},  # type: ignore[arg-type]
    )


@pytest.fixture
def decider(tmp_path: Path) -> Decider:
    pack = tmp_path / "p.yaml"
    pack.write_text(PACK)
    store = _core.SeriesStore()
    return Decider(store, load_rules([pack]))


def test_only_touched_series_are_fitted_and_the_band_is_used(decider: Decider) -> None:
    # Ring big enough for the whole history, so the fitter sees five days.
    store2 = _core.SeriesStore(ring_capacity=4096)
    decider.store = store2
    last = _feed(store2, "web", 5 * 288)
    _feed(store2, "quiet", 5 * 288)
    clock_s = [last / 1000]
    fitter = SeasonalFitter(store2, fit_budget_s_per_min=30.0, clock=lambda: clock_s[0])
    assert fitter.step() == 0, "nothing was touched yet: nothing is fitted"
    # A decision reads the series: it is touched, and the next pass fits it.
    v0 = decider.decide(_suggestion("web", last, "s0"))
    assert v0.evidence.baseline_model is not None and v0.evidence.baseline_model.startswith("streaming.")
    assert fitter.step() == 1
    info = store2.baseline_info("load", "value", {"service.name": "web"})
    assert info is not None and info.artifact is not None
    assert info.artifact.model == "statsmodels.stl"
    assert info.artifact.backtest_mae <= info.artifact.streaming_mae
    quiet = store2.baseline_info("load", "value", {"service.name": "quiet"})
    assert quiet is not None
    assert quiet.artifact is None
    # New points inside the artifact's horizon are judged against it.
    last2 = _feed(store2, "web", 12, start_index=5 * 288)
    v1 = decider.decide(_suggestion("web", last2, "s1"))
    assert v1.evidence.baseline_model == "statsmodels.stl", v1.explanation
    assert v1.verdict == "suppress", v1.explanation
    assert v1.evidence.baseline_freshness_s is not None
    assert 0 < v1.evidence.baseline_freshness_s <= 3600
    # A real spike is still confirmed against the fitted band.
    last3 = _feed(store2, "web", 3, start_index=5 * 288 + 12, spike=80.0)
    v2 = decider.decide(_suggestion("web", last3, "s2"))
    assert v2.verdict == "confirm", v2.explanation
    # Past valid_until the streaming band is back.
    last4 = _feed(store2, "web", 12, start_index=5 * 288 + 6 * 12 + 24)
    v3 = decider.decide(_suggestion("web", last4, "s3"))
    assert v3.evidence.baseline_model is not None and v3.evidence.baseline_model.startswith("streaming.")


def test_bad_artifacts_are_refused_with_the_field() -> None:
    store = _core.SeriesStore()
    store.ingest_points("m", "value", {}, [1, 2], [1.0, 2.0])
    good = {
        "version": 1,
        "model": "statsmodels.stl",
        "anchor_ms": 10,
        "step_ms": 5,
        "expected": [1.0, 2.0],
        "sigma": [1.0, 1.0],
        "valid_until_ms": 20,
        "fitted_at_ms": 5,
        "backtest_mae": 1.0,
        "streaming_mae": 2.0,
    }
    for change, field in [
        ({"model": "prophet"}, "model"),
        ({"sigma": [1.0, -1.0]}, "sigma"),
        ({"backtest_mae": 3.0}, "quality"),
        ({"step_ms": 0}, "step_ms"),
    ]:
        with pytest.raises(ValueError, match=f"^{field}"):
            store.set_band("m", "value", {}, json.dumps(good | change))
    with pytest.raises(ValueError, match="series"):
        store.set_band("other", "value", {}, json.dumps(good))
    with pytest.raises(ValueError, match="artifact"):
        store.set_band("m", "value", {}, "{}")
    store.set_band("m", "value", {}, json.dumps(good))
    with pytest.raises(ValueError, match=r"^version"):
        store.set_band("m", "value", {}, json.dumps(good))


def test_confirmed_incident_windows_are_not_fitted(decider: Decider) -> None:
    store = _core.SeriesStore(ring_capacity=4096)
    decider.store = store
    _feed(store, "web", 4 * 288)
    spike_end = _feed(store, "web", 3, start_index=4 * 288, spike=300.0)
    fitter = SeasonalFitter(store, clock=lambda: spike_end / 1000)
    verdict = decider.decide(_suggestion("web", spike_end))
    assert verdict.verdict == "confirm"
    fitter.note_verdict(verdict)
    fitter.poll()
    key = next(iter(fitter.histories))
    h = fitter.histories[key]
    h.excluded = fitter._excluded_for(key)
    _, values, _ = h.arrays()
    assert h.excluded, "the confirmed window is recorded"
    assert np.isnan(values[-2:]).all(), "the incident's buckets are masked"
    assert np.nanmax(values) < 200, "no spike value is left for a fit to learn"


def test_short_history_is_not_fitted() -> None:
    y = np.array([profile(START + i * STEP_MS) for i in range(2 * 288)])
    assert fit_series(y, np.full(len(y), np.nan), 300, 12) is None
    h = History(STEP_MS)
    h.add(START, 1.0, float("nan"))
    assert h.arrays()[1].tolist() == [1.0]


def test_weekly_history_uses_mstl() -> None:
    rng = np.random.default_rng(1)
    n = 22 * 24  # hourly, 22 days
    t = np.arange(n)
    y = 50 + 20 * np.sin(2 * np.pi * t / 24) + 15 * ((t // 24) % 7 >= 5) + rng.normal(0, 1, n)
    res = fit_series(y, np.full(n, np.nan), 3600, 24)
    assert res is not None and res.model == "statsmodels.mstl"
    assert res.backtest_mae < res.streaming_mae


def test_min_history_gives_inconclusive(decider: Decider) -> None:
    last = _feed(decider.store, "new", 10)
    v = decider.decide(_suggestion("new", last))
    assert v.verdict == "inconclusive"
    assert "history too short" in v.explanation


def test_seasonal_fitter_runs_in_the_service(runtime: object) -> None:
    from referee.service.runtime import Runtime

    assert isinstance(runtime, Runtime)
    assert any(loop.name == "seasonal-fits" for loop in runtime._loops)
    assert runtime.seasonal.status()["tracked_series"] == 0


def test_baselines_settings() -> None:
    from referee.config import Settings

    s = Settings.load(None, env={"REFEREE_BASELINES": "{fit_budget_s_per_min: 0, refit_every: 30m}"})
    assert s.baselines.fit_budget_s_per_min == 0 and s.baselines.refit_every == 1800
    with pytest.raises(ValueError, match="baselines: unknown keys"):
        Settings.load(None, env={"REFEREE_BASELINES": "{budget: 1}"})
    with pytest.raises(ValueError, match=r"baselines\.fit_step"):
        Settings.load(None, env={"REFEREE_BASELINES": "{fit_step: 7m}"})


@pytest.mark.parametrize(("every_min", "bucket_min"), [(5, 5), (30, 30), (60, 60), (45, 60)])
def test_a_coarsely_sampled_series_is_fitted_on_a_grid_of_its_own_spacing(
    decider: Decider, every_min: int, bucket_min: int
) -> None:
    """A series scraped every 30 or 60 minutes would leave most five-minute buckets empty and
    never be fitted; its buckets are as wide as its spacing (the next width dividing a day)."""
    store = _core.SeriesStore(ring_capacity=4096)
    decider.store = store
    rng = random.Random(every_min)
    ts = [START + i * every_min * 60_000 for i in range(5 * 1440 // every_min)]
    store.ingest_points(
        "load", "value", {"service.name": "coarse"}, ts, [profile(t) + rng.gauss(0, 2) for t in ts]
    )
    decider.decide(_suggestion("coarse", ts[-1]))  # reads the series: it is now fitted
    fitter = SeasonalFitter(store, clock=lambda: ts[-1] / 1000)
    assert fitter.step() == 1
    (history,) = fitter.histories.values()
    assert history.step_ms == bucket_min * 60_000
    assert history.last_error is None, history.last_error
    info = store.baseline_info("load", "value", {"service.name": "coarse"})
    artifact = info.artifact if info else None
    assert artifact is not None
    assert artifact.model.startswith("statsmodels.") and artifact.step_ms == bucket_min * 60_000


def test_a_series_sampled_more_coarsely_than_six_hours_is_not_fitted(decider: Decider) -> None:
    store = _core.SeriesStore(ring_capacity=4096)
    decider.store = store
    ts = [START + i * 12 * 3_600_000 for i in range(40)]
    store.ingest_points("load", "value", {"service.name": "daily"}, ts, [profile(t) for t in ts])
    decider.decide(_suggestion("daily", ts[-1]))
    fitter = SeasonalFitter(store, clock=lambda: ts[-1] / 1000)
    fitter.step()
    (history,) = fitter.histories.values()
    assert history.last_error == "sampled too coarsely to fit a daily season"
    info = store.baseline_info("load", "value", {"service.name": "daily"})
    assert info is not None and info.artifact is None
