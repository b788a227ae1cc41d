"""Signal options a rule can set: a window in `points`, `optional: true` (no effect when no series
matches), and the per-point z evidence (`baseline.max_z`, `min_z`, `mean_abs_z`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referee import _core
from referee.decision.engine import Decider
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
