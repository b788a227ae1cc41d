"""The default pack (rules/http-server.yaml): every rule confirms, suppresses and is
inconclusive where it should, through the same loader, Rust evaluation and combination as the
service."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from referee import _core
from referee.decision.decider import Decider
from referee.decision.rulepack import load_rules
from referee.models import Suggestion
from tests.conftest import DEFAULT_RULES

METRIC = "http.server.request.duration"
T0 = 1_700_000_000_000
MINUTE = 60_000


def store_with(statistic: str, history: list[float], recent: list[float]) -> tuple[_core.SeriesStore, int]:
    store = _core.SeriesStore()
    values = history + recent
    ts = [T0 + i * MINUTE for i in range(len(values))]
    assert store.ingest_points(METRIC, statistic, {"service.name": "svc"}, ts, values) == len(values)
    return store, ts[-1]


def noisy(n: int, mean: float, sd: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [max(0.0, rng.gauss(mean, sd)) for _ in range(n)]


def decide(
    store: _core.SeriesStore, at_ms: int, kind: str, observed: float | None = None
) -> tuple[str, list[str]]:
    decider = Decider(store, load_rules([DEFAULT_RULES]))
    s = Suggestion(
        id="s1",
        source="test",
        created_at=datetime.fromtimestamp(at_ms / 1000, tz=UTC),
        subject={"service.name": "svc"},
        claim={"kind": kind, "observed": observed},  # type: ignore[arg-type]
    )
    v = decider.decide(s)
    return v.verdict, v.rule_ids


@pytest.mark.parametrize(
    ("recent", "expected"),
    [([1.5] * 10, "confirm"), (noisy(10, 0.3, 0.02, seed=2), "suppress")],
)
def test_latency_band_rule(recent: list[float], expected: str) -> None:
    store, at = store_with("p99", noisy(200, 0.3, 0.02), recent)
    verdict, rules = decide(store, at, "latency_high")
    assert verdict == expected
    assert "http.latency.p99-vs-baseline" in rules


def test_latency_rule_is_inconclusive_without_history() -> None:
    store, at = store_with("p99", noisy(5, 0.3, 0.02), [1.5] * 5)
    verdict, rules = decide(store, at, "latency_high")
    assert verdict == "inconclusive"
    # The overstatement rule only matches claims that report a value.
    assert rules == ["http.latency.p99-vs-baseline"]


def test_latency_rule_is_inconclusive_without_data_for_the_service() -> None:
    store, at = store_with("error_ratio", noisy(200, 0.01, 0.001), [])
    assert decide(store, at, "latency_high")[0] == "inconclusive"


def test_overstated_claim_is_suppressed_but_a_real_incident_still_confirmed() -> None:
    quiet, at = store_with("p99", noisy(200, 0.3, 0.02), noisy(10, 0.3, 0.02, seed=3))
    verdict, rules = decide(quiet, at, "latency_high", observed=5.0)
    assert verdict == "suppress"
    assert rules == ["http.latency.p99-vs-baseline", "http.latency.claim-overstated"]
    # Overstated (5 s claimed, 1.5 s measured) but the incident is real: confirm wins.
    busy, at = store_with("p99", noisy(200, 0.3, 0.02), [1.5] * 10)
    assert decide(busy, at, "latency_high", observed=5.0) == ("confirm", ["http.latency.p99-vs-baseline"])


@pytest.mark.parametrize(
    ("recent", "expected"),
    [
        ([0.12] * 10, "confirm"),
        (noisy(10, 0.004, 0.001, seed=4), "suppress"),
        # Above the band but under 1%: not an incident worth a page.
        ([0.008] * 10, "suppress"),
    ],
)
def test_error_ratio_rule(recent: list[float], expected: str) -> None:
    store, at = store_with("error_ratio", noisy(200, 0.004, 0.001), recent)
    verdict, rules = decide(store, at, "error_rate_high")
    assert (verdict, rules) == (expected, ["http.errors.ratio-vs-baseline"])


def test_error_ratio_rule_is_inconclusive_without_history() -> None:
    store, at = store_with("error_ratio", [0.0] * 3, [0.2] * 3)
    assert decide(store, at, "error_rate_high") == ("inconclusive", ["http.errors.ratio-vs-baseline"])


def test_claims_without_evidence_are_inconclusive() -> None:
    # The traffic pack judges the request rate; a service that only has p99 has none.
    store, at = store_with("p99", noisy(200, 0.3, 0.02), [])
    assert decide(store, at, "traffic_drop") == ("inconclusive", ["traffic.drop-vs-baseline"])


def test_a_rule_whose_match_fails_is_inconclusive_not_silent(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    pack = tmp_path / "p.yaml"
    # `suggestion.claim.observed` is absent from this suggestion: evaluating it is an error.
    pack.write_text(
        "referee: 1\npack: p\nrules:\n"
        "  - id: r\n    match: suggestion.claim.observed > 1.0\n    then: suppress\n"
    )
    s = Suggestion(id="1", subject={"service.name": "x"}, claim={"kind": "anomaly"})  # type: ignore[arg-type]
    v = Decider(_core.SeriesStore(), load_rules([pack])).decide(s)
    assert (v.verdict, v.rule_ids) == ("inconclusive", ["r"])
    assert v.trace[0].error
