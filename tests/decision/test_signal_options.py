"""Signal options a rule can set: a window in `points`, `optional: true` (no effect when no series
matches), and the per-point z evidence (`baseline.max_z`, `min_z`, `mean_abs_z`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referee import _core
from referee.decision.decider import Decider
from referee.decision.rulepack import RulePackError, load_rules
from referee.models import Suggestion

HOUR = 3_600_000
T0 = 1_700_000_000_000


def hourly_store(values: list[float], metric: str = "m") -> tuple[_core.SeriesStore, int]:
    store = _core.SeriesStore()
    ts = [T0 + i * HOUR for i in range(len(values))]
    assert store.ingest_points(metric, "value", {"service.name": "svc"}, ts, values) == len(values)
    return store, ts[-1]


def pack(tmp_path: Path, signal: str, when: str, then: str = "confirm", otherwise: str | None = None) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(
        "referee: 1\npack: p\nrules:\n"
        f"  - id: r\n    match: 'true'\n    signal: {signal}\n    when: {when}\n    then: {then}\n"
        + (f"    otherwise: {otherwise}\n" if otherwise else "")
    )
    return p


def decide(store: _core.SeriesStore, at_ms: int, rules: Path) -> tuple[str, list[str], object]:
    s = Suggestion(
        id="s",
        created_at=datetime.fromtimestamp(at_ms / 1000, tz=UTC),
        subject={"service.name": "svc"},
        claim={"kind": "anomaly"},  # type: ignore[arg-type]
    )
    v = Decider(store, load_rules([rules])).decide(s)
    return v.verdict, v.rule_ids, v


def noisy(n: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [10.0 + rng.gauss(0, 1) for _ in range(n)]


def test_a_window_in_points_reads_the_last_points_whatever_their_spacing(tmp_path: Path) -> None:
    store, at = hourly_store([*noisy(100), 40.0])
    # Hourly points: a 5-minute window would hold one point; `points: 6` holds six.
    verdict, _, v = decide(store, at, pack(tmp_path, "{metric: m, points: 6}", "signal.samples == 6"))
    assert verdict == "confirm"
    assert v.evidence.window == "6 points"  # type: ignore[attr-defined]
    assert "over the last 6 points" in v.explanation  # type: ignore[attr-defined]
    # With a window too, only the points inside it count.
    both = pack(tmp_path, "{metric: m, points: 6, window: 2h}", "signal.samples == 2")
    verdict, _, _ = decide(store, at, both)
    assert verdict == "confirm"


def test_per_point_z_evidence(tmp_path: Path) -> None:
    store, at = hourly_store([*noisy(100), 40.0])
    rules = pack(tmp_path, "{metric: m, points: 6}", "baseline.max_z > 3.0 && baseline.min_z < 3.0")
    assert decide(store, at, rules)[0] == "confirm"
    # A calibrated band on gaussian noise: mean |z| of ordinary points is near 0.8 (E|z|).
    store, at = hourly_store(noisy(300))
    fits = "baseline.mean_abs_z > 0.4 && baseline.mean_abs_z < 1.3"
    rules = pack(tmp_path, "{metric: m, points: 100}", fits, "confirm", "suppress")
    assert decide(store, at, rules)[0] == "confirm"


def test_optional_signal_has_no_effect_without_a_series(tmp_path: Path) -> None:
    store, at = hourly_store(noisy(100))
    p = tmp_path / "p.yaml"
    p.write_text(
        "referee: 1\npack: p\nrules:\n"
        "  - id: cpu\n    match: 'true'\n    signal: {metric: cpu, optional: true}\n"
        "    when: signal.observed > 0.9\n    then: confirm\n    otherwise: suppress\n"
        "  - id: m\n    match: 'true'\n    signal: {metric: m, points: 3}\n"
        "    when: signal.observed > 100.0\n    then: confirm\n    otherwise: suppress\n"
    )
    # No `cpu` series for this subject: the optional rule stays silent and `m` decides.
    verdict, rule_ids, v = decide(store, at, p)
    assert (verdict, rule_ids) == ("suppress", ["m"])
    assert v.trace[0].missing and v.trace[0].effect is None  # type: ignore[attr-defined]
    # Without `optional`, the missing series makes the verdict inconclusive.
    p.write_text(p.read_text().replace(", optional: true", ""))
    assert decide(store, at, p)[:2] == ("inconclusive", ["cpu"])
    # An optional signal is still inconclusive when its series exists but has too little history.
    short, at2 = hourly_store([0.95] * 5, metric="cpu")
    short.ingest_points("m", "value", {"service.name": "svc"}, [T0 + i * HOUR for i in range(5)], [1.0] * 5)
    p.write_text(p.read_text().replace("{metric: cpu}", "{metric: cpu, optional: true}"))
    assert decide(short, at2, p)[0] == "inconclusive"


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        ("{metric: m, points: 0}", "signal: points must be a positive integer, not `0`"),
        ("{metric: m, points: six}", "signal: points must be a positive integer, not `six`"),
        ("{metric: m, optional: maybe}", "signal: optional must be true or false"),
    ],
)
def test_bad_signal_options_are_load_errors(tmp_path: Path, signal: str, message: str) -> None:
    with pytest.raises(RulePackError) as e:
        load_rules([pack(tmp_path, signal, "true")])
    assert message in str(e.value)


def fitted_store() -> tuple[_core.SeriesStore, int, int]:
    """100 hourly points judged by the streaming band, then a fitted band (as the seasonal
    fitter hands over) that judges the next 6. Returns the store, the last streaming-judged
    point's time and the last point's time."""
    import json

    store, last_streaming = hourly_store(noisy(100))
    artifact = {
        "version": 1,
        "model": "statsmodels.stl",
        "anchor_ms": last_streaming + HOUR,
        "step_ms": HOUR,
        "expected": [10.0] * 24,
        "sigma": [1.0] * 24,
        "valid_until_ms": last_streaming + 24 * HOUR,
        "fitted_at_ms": last_streaming,
        "backtest_mae": 0.5,
        "streaming_mae": 0.9,
    }
    store.set_band("m", "value", {"service.name": "svc"}, json.dumps(artifact))
    ts = [last_streaming + (i + 1) * HOUR for i in range(6)]
    store.ingest_points("m", "value", {"service.name": "svc"}, ts, noisy(6, seed=9))
    return store, last_streaming, ts[-1]


def test_baseline_model_chooses_which_judgements_a_rule_reads(tmp_path: Path) -> None:
    store, streaming_at, fitted_at = fitted_store()
    fitted = pack(tmp_path, "{metric: m, points: 3}\n    baseline: {model: fitted}", "true")
    verdict, _, v = decide(store, fitted_at, fitted)
    assert verdict == "confirm", v.explanation  # type: ignore[attr-defined]
    assert v.evidence.baseline_model == "statsmodels.stl"  # type: ignore[attr-defined]
    # Before the fit, the window's points were judged by the streaming band only.
    verdict, _, v = decide(store, streaming_at, fitted)
    assert verdict == "inconclusive"
    missing = v.trace[0].missing  # type: ignore[attr-defined]
    assert missing is not None and "no point in the window was judged by a `fitted` baseline" in missing
    assert "streaming." in missing
    # The reverse: a rule that wants the streaming band reads nothing the fit judged...
    streaming = pack(tmp_path, "{metric: m, points: 3}\n    baseline: {model: streaming}", "true")
    assert decide(store, fitted_at, streaming)[0] == "inconclusive"
    assert decide(store, streaming_at, streaming)[0] == "confirm"
    # ...and a window across the hand-over reads only the points of the model asked for.
    by_name = "{metric: m, points: 10}\n    baseline: {model: statsmodels.stl}"
    assert decide(store, fitted_at, pack(tmp_path, by_name, "signal.samples == 10"))[0] == "confirm"
    verdict, _, v = decide(store, fitted_at, pack(tmp_path, by_name, "baseline.expected == 10.0"))
    assert verdict == "confirm", v.trace  # type: ignore[attr-defined]
    # `auto` (the default) is whichever judged the points: the fit, for the last ones.
    verdict, _, v = decide(store, fitted_at, pack(tmp_path, "{metric: m, points: 3}", "true"))
    assert v.evidence.baseline_model == "statsmodels.stl"  # type: ignore[attr-defined]


def test_baseline_k_sets_the_band_width_per_rule(tmp_path: Path) -> None:
    store, at = hourly_store(noisy(100))
    width = "abs((baseline.upper - baseline.expected) / baseline.sigma - {k}) < 1e-9"
    wide = pack(tmp_path, "{metric: m, points: 3}\n    baseline: {k: 5}", width.format(k="5.0"))
    assert decide(store, at, wide)[0] == "confirm"
    default = pack(tmp_path, "{metric: m, points: 3}", width.format(k="3.0"))
    assert decide(store, at, default)[0] == "confirm"
    # Two rules reading the same signal with different widths each get their own band.
    p = tmp_path / "two.yaml"
    p.write_text(
        "referee: 1\npack: p\nrules:\n"
        "  - id: narrow\n    match: 'true'\n    signal: {metric: m, points: 3}\n"
        "    baseline: {k: 1}\n    when: " + width.format(k="1.0") + "\n    then: confirm\n"
        "  - id: wide\n    match: 'true'\n    signal: {metric: m, points: 3}\n"
        "    baseline: {k: 6}\n    when: " + width.format(k="6.0") + "\n    then: confirm\n"
    )
    verdict, rule_ids, _ = decide(store, at, p)
    assert verdict == "confirm" and rule_ids == ["narrow", "wide"]


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ("{model: prophet}", "baseline: model must be one of auto, fitted, streaming"),
        ("{k: 0}", "baseline: k must be a number of sigmas above 0, not `0`"),
        ("{k: wide}", "baseline: k must be a number of sigmas above 0, not `wide`"),
        ("{width: 3}", "width"),
    ],
)
def test_bad_baseline_options_are_load_errors(tmp_path: Path, baseline: str, message: str) -> None:
    with pytest.raises(RulePackError) as e:
        load_rules([pack(tmp_path, "{metric: m}\n    baseline: " + baseline, "true")])
    assert message in str(e.value)
    assert f"{tmp_path / 'p.yaml'}:7:" in str(e.value)  # the `baseline` line
