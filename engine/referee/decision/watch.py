"""Watch rules: conditions over live series that raise findings without any suggestion.

A finding is what Referee saw that no copilot claimed (the scorecard counts the ones no
suggestion covers as misses). Each pass evaluates every watch rule over every live series of
its signal's metric and statistic, in Rust, through the same ``RuleSet.evaluate`` that judges
suggestions: the series' own attributes are the synthetic suggestion's subject, so the signal
resolves to exactly that series. The window ends at the newest point of the metric's series
(the data's clock, so replays of old data work like live data).

One finding stays open per (rule, series) while the condition holds; the first pass where it
does not hold (false, missing evidence, or an evaluation error) closes it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from referee import _core
from referee.decision.rulepack import LoadedRules, Rule
from referee.models import Band, Finding, series_key

log = logging.getLogger("referee.watch")


class FindingLog(Protocol):
    """Where findings are kept (the verdict store): watch rules open and close them."""

    def open_findings(self) -> dict[tuple[str, str], str]: ...
    def add_finding(self, finding: Finding) -> Finding: ...
    def close_finding(self, rule_id: str, key: str, at: datetime) -> Finding | None: ...


@dataclass
class WatchPass:
    """What one pass did."""

    series: int = 0
    raised: int = 0
    closed: int = 0
    errors: int = 0


def _finding(rule: Rule, attrs: dict[str, str], outcome: _core.RuleOutcome, revision: str) -> Finding:
    # The evidence as JSON-native values (NaN as None), as a verdict's trace holds it.
    sig = outcome.signal.to_dict() if outcome.signal else None
    base = outcome.baseline.to_dict() if outcome.baseline else None
    declared = rule.signal or {}
    return Finding(
        rule_id=rule.id,
        severity=rule.severity,  # type: ignore[arg-type]
        subject=attrs,
        metric=sig["metric"] if sig else declared.get("metric", ""),
        statistic=sig["statistic"] if sig else declared.get("statistic", "value"),
        observed=sig["observed"] if sig else None,
        expected=base["expected"] if base else None,
        band=Band(lower=base["lower"], upper=base["upper"]) if base else None,  # type: ignore[arg-type]
        score=base["max_raw_score"] if base else None,  # as a verdict's evidence.score
        window_start=datetime.fromtimestamp(sig["start_ms"] / 1000, tz=UTC) if sig else None,
        window_end=datetime.fromtimestamp(sig["end_ms"] / 1000, tz=UTC) if sig else None,
        found_at=datetime.now(UTC),
        rules_revision=revision,
    )


def run_watch_rules(
    rules: LoadedRules, store: _core.SeriesStore, verdicts: FindingLog, max_series: int = 100_000
) -> WatchPass:
    """One pass over every watch rule and every live series of its signal."""
    done = WatchPass()
    open_now = verdicts.open_findings()
    for group in rules.watch_groups:
        active = [r for r in group.rules if r.mode == "enforce"]
        if not active:
            continue  # `shadow` and `off` watch rules record nothing
        series = [s for s in store.series(group.metric, max_series) if s.statistic == group.statistic]
        if not series:
            continue
        at_ms = max(s.last_ts_ms or 0 for s in series)
        by_id = {r.id: r for r in active}
        for s in series:
            attrs = s.attributes
            done.series += 1
            synthetic = {"id": "watch", "source": "watch", "subject": attrs, "claim": {"kind": "anomaly"}}
            for outcome in group.compiled.evaluate(store, json.dumps(synthetic), at_ms):
                rule = by_id.get(outcome.id)
                if rule is None:
                    continue
                key = series_key(group.metric, group.statistic, attrs)
                if outcome.error:
                    done.errors += 1
                    log.debug("watch rule %s on %s: %s", rule.id, attrs, outcome.error)
                if outcome.matched and outcome.when is True and not outcome.error:
                    if (rule.id, key) not in open_now:
                        stored = verdicts.add_finding(_finding(rule, attrs, outcome, rules.revision))
                        open_now[(rule.id, key)] = stored.finding_id
                        done.raised += 1
                elif (rule.id, key) in open_now:
                    verdicts.close_finding(rule.id, key, datetime.now(UTC))
                    del open_now[(rule.id, key)]
                    done.closed += 1
    # A rule removed (or switched off) by a reload no longer holds anywhere.
    current = {r.id for g in rules.watch_groups for r in g.rules if r.mode == "enforce"}
    for rule_id, key in [k for k in open_now if k[0] not in current]:
        verdicts.close_finding(rule_id, key, datetime.now(UTC))
        done.closed += 1
    return done
