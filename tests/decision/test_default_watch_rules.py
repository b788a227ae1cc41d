"""The default packs' watch rule `watch.http.errors.ratio-far-above-band`, on the same input
series as the suggestion rules' tests in `rules/tests/http-server.test.yaml`.

Rule-test files assert verdicts of suggestions; watch rules judge no suggestion, so their cases
live here: the file's series are fed through the same store and loader, then one watch pass runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from referee import _core
from referee.decision.decider import Decider
from referee.decision.rulepack import LoadedRules
from referee.decision.ruletest import build_series, feed_until, load_for, read_test_file, start_ms
from referee.decision.watch import run_watch_rules
from referee.models import Suggestion
from referee.state import open_store
from referee.verdicts.store import VerdictStore

RULES = Path(__file__).resolve().parents[2] / "rules"
RULE_ID = "watch.http.errors.ratio-far-above-band"
MINUTE_MS = 60_000


def _fed_until(minute: int) -> tuple[LoadedRules, _core.SeriesStore, VerdictStore]:
    tf = read_test_file(RULES / "tests" / "http-server.test.yaml")
    settings, rules = load_for(tf)
    assert RULE_ID in {r.id for r in rules.rules if r.kind == "watch"}
    store = open_store(settings)
    feed_until(store, build_series(tf), start_ms(tf) + minute * MINUTE_MS)
    return rules, store, VerdictStore(":memory:")


def test_raises_a_finding_for_the_error_incident_only() -> None:
    rules, store, verdicts = _fed_until(209)
    done = run_watch_rules(rules, store, verdicts)
    findings = [f for f in verdicts.findings() if f.rule_id == RULE_ID]
    # incident: 12% against ~0.4%; steady: inside its band; minor: above its band but under 1%;
    # new: too little history (missing evidence raises nothing).
    assert [f.subject for f in findings] == [{"service.name": "incident"}]
    (f,) = findings
    assert f.statistic == "error_ratio" and f.severity == "critical"
    assert f.observed is not None and f.band is not None and f.expected is not None
    assert f.observed >= 0.01 and f.observed - f.expected > 2 * (f.band.upper - f.expected)
    assert done.errors == 0


def test_nothing_before_the_incident() -> None:
    rules, store, verdicts = _fed_until(199)
    run_watch_rules(rules, store, verdicts)
    assert [f for f in verdicts.findings() if f.rule_id == RULE_ID] == []


def test_just_above_the_band_is_a_confirmed_claim_but_not_a_finding(tmp_path: Path) -> None:
    """The watch rule is stricter than the claim rule: it speaks up unasked only when the
    ratio is far outside the band, not merely above it."""
    rules, store, verdicts = _fed_until(199)
    series = build_series(read_test_file(RULES / "tests" / "http-server.test.yaml"))
    steady = next(
        s for s in series if s.attributes == {"service.name": "steady"} and s.statistic == "error_ratio"
    )
    # History: the steady series' first 200 minutes, renamed, shifted to a ~2% level.
    attrs = {"service.name": "elevated"}
    ts, values = steady.timestamps_ms[:200], [v + 0.02 for v in steady.values[:200]]
    store.ingest_points(steady.metric, "error_ratio", attrs, ts, values)
    decider = Decider(store, rules)

    def claim(at_ms: int) -> Suggestion:
        return Suggestion.model_validate(
            {"id": str(at_ms), "subject": attrs, "claim": {"kind": "error_rate_high"}}
        )

    before = decider.decide(claim(ts[-1]), datetime.fromtimestamp(ts[-1] / 1000, tz=UTC))
    band, expected = before.evidence.band, before.evidence.expected
    assert band is not None and expected is not None
    # 1.5 half-widths above the expected value: above the band, not twice its half-width.
    level = expected + 1.5 * (band.upper - expected)
    new_ts = [ts[-1] + (i + 1) * MINUTE_MS for i in range(10)]
    store.ingest_points(steady.metric, "error_ratio", attrs, new_ts, [level] * 10)
    at = datetime.fromtimestamp(new_ts[-1] / 1000, tz=UTC)
    assert decider.decide(claim(new_ts[-1]), at).verdict == "confirm"
    run_watch_rules(rules, store, verdicts)
    assert [f.subject for f in verdicts.findings() if f.rule_id == RULE_ID] == []
