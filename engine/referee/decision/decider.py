"""Deciding: from a suggestion and the evidence in the series store to a Verdict v1.

The conditions are evaluated in Rust (``_core.RuleSet.evaluate``); this module turns each
rule's outcome into an effect and combines the effects deterministically:

1. a rule with ``mode: off`` is skipped; ``shadow`` rules are evaluated and traced but only
   decide when no ``enforce`` rule produced an effect (the verdict is then marked ``shadow``);
2. a matched rule one of whose ``exceptions`` holds yields no effect (the trace names the
   exception), whatever its evidence;
3. a matched rule whose evidence is missing (no series, no points in the window, history
   shorter than the minimum), or any rule whose ``match`` or ``when`` failed to evaluate,
   yields ``inconclusive``; except that a rule whose signal is ``optional: true`` yields no
   effect when no series matches (the subject simply does not have that metric);
4. otherwise ``when`` true yields ``then``, false yields ``otherwise`` (no effect if absent);
5. protection: when a ``protect: true`` rule among the deciding effects yields ``confirm`` or
   ``inconclusive``, every ``suppress`` among them is dropped, whatever its priority;
6. only the effects of the highest ``priority`` present count; among them
   ``confirm`` beats ``inconclusive`` beats ``suppress``: a suggestion is suppressed only
   when every top-priority rule says so, and never on missing evidence;
7. no effect at all is ``inconclusive`` ("no rule judges this claim", or, when matched rules
   were silent only because their optional signals have no series, "evidence missing").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from referee import _core
from referee.decision.rulepack import Effect, LoadedRules, Rule
from referee.models import Band, Evidence, HostContext, RuleTrace, Suggestion, Verdict

_STRENGTH = {"confirm": 2, "inconclusive": 1, "suppress": 0}
#: What Rust reports when no series matches a rule's signal and the subject (``signal::Missing``).
NO_SERIES = "no series matches the signal and subject"


def fmt(x: float | None) -> str:
    """Numbers for people: three significant digits, no exponent for everyday magnitudes."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e6:
        digits = max(0, 2 - math.floor(math.log10(abs(x))))
        return f"{x:.{digits}f}"
    return f"{x:.3g}"


def _effect_of(rule: Rule, outcome: _core.RuleOutcome) -> Effect | None:
    if outcome.error:
        # A rule that could not be evaluated (its `match` or its `when`) may not stay silent.
        return Effect("inconclusive", f"rule could not be evaluated: {outcome.error}")
    if not outcome.matched:
        return None
    if outcome.missing:
        if outcome.missing == NO_SERIES and (rule.signal or {}).get("optional"):
            return None  # `signal.optional`: a metric this subject does not have is no evidence either way
        return Effect("inconclusive", f"evidence missing: {outcome.missing}")
    return rule.then if outcome.when else rule.otherwise


Decision = tuple[Rule, RuleTrace, Effect]


def combine(effects: list[Decision]) -> tuple[str | None, list[Decision], str]:
    """Steps 1 and 5-7 above: the verdict (None when no rule has an effect), the rules that
    decided it (in file order) and the mode (``enforce``, or ``shadow`` when only shadow rules
    had effects)."""
    mode = "enforce"
    deciding = [e for e in effects if e[0].mode == "enforce"]
    if not deciding and effects:
        deciding, mode = [e for e in effects if e[0].mode == "shadow"], "shadow"
    if not deciding:
        return None, [], mode
    if any(r.protect and eff.verdict != "suppress" for r, _, eff in deciding):
        deciding = [e for e in deciding if e[2].verdict != "suppress"]
    top = max(r.priority for r, _, _ in deciding)
    group = [e for e in deciding if e[0].priority == top]
    verdict = max((e[2].verdict for e in group), key=lambda v: _STRENGTH[v])
    return verdict, [e for e in group if e[2].verdict == verdict], mode


def applied_exceptions(
    rules: LoadedRules,
    store: _core.SeriesStore,
    suggestion_json: str,
    at_ms: int,
    outcomes: list[_core.RuleOutcome],
) -> dict[str, str]:
    """Rule id -> the first of its exceptions (in the order written) that holds, for the
    matched rules that have exceptions. Evaluated only when such a rule matched."""
    by_id = rules.by_id
    wanted = {o.id for o in outcomes if o.matched and by_id[o.id].exceptions}
    if rules.exceptions is None or not wanted:
        return {}
    applied: dict[str, str] = {}
    for o in rules.exceptions.evaluate(store, suggestion_json, at_ms):
        rid, name = o.id.split("#", 1)
        if rid in wanted and rid not in applied and o.matched and o.when is True:
            applied[rid] = name
    return applied


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _evidence(trace: RuleTrace, rule: Rule | None, suggestion: Suggestion) -> Evidence:
    sig, base = trace.signal or {}, trace.baseline or {}
    fields: dict[str, Any] = {"claimed": suggestion.claim.observed}
    if sig:
        fields |= {
            "metric": sig["metric"],
            "statistic": sig["statistic"],
            "observed": sig["observed"],
            "samples": sig["samples"],
            "window": (rule.signal or {}).get("window") if rule else None,
            "window_start": _ms_to_dt(sig["start_ms"]),
            "window_end": _ms_to_dt(sig["end_ms"]),
        }
    if base:
        fields |= {
            "expected": base["expected"],
            "band": Band(lower=base["lower"], upper=base["upper"]),
            "score": base["max_raw_score"],  # the window's worst point, alert already raised or not
            "baseline_model": base["model"],
            "baseline_history": base["history"],
            "baseline_freshness_s": base["freshness_s"],
            "p_value": {"up": base.get("p_up"), "down": base.get("p_down")}.get(
                suggestion.claim.direction or "", base.get("p_value")
            ),
        }
    if trace.host:
        fields["host"] = HostContext(**trace.host)
    return Evidence(**fields)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def host_sentence(ev: Evidence) -> str:
    """Where the claimed metric stands among its subject's, and which metrics are anomalous."""
    h = ev.host
    if h is None or h.metrics == 0:
        return ""
    rank = f"it ranks {_ordinal(h.rank)} of {h.metrics} metrics" if h.rank else f"of {h.metrics} metrics"
    if not h.anomalous:
        return f"; {rank}, none anomalous now"
    names = ", ".join(h.anomalous_metrics[:5]) + (", …" if h.anomalous > 5 else "")
    return f"; {rank}, {h.anomalous} anomalous now ({names})"


_MODEL_WORDS = {
    "streaming.hour_of_day": "its usual level for this hour of the day",
    "streaming.median_mad": "its recent median",
    "streaming.hour_of_week": "its usual level for this hour of the week",
    "statsmodels.stl": "its fitted daily season (STL)",
    "statsmodels.mstl": "its fitted daily and weekly seasons (MSTL)",
}


def explain(verdict: str, suggestion: Suggestion, ev: Evidence, reason: str | None) -> str:
    """One sentence a person on call can read."""
    who = suggestion.service or ", ".join(f"{k}={v}" for k, v in suggestion.subject.items())
    head = {"confirm": "Confirmed", "suppress": "Suppressed", "inconclusive": "Inconclusive"}[verdict]
    if ev.observed is None or ev.expected is None or ev.band is None:
        return f"{head}: {suggestion.claim.kind} on {who}: {reason or 'no evidence'}."
    what = f"{ev.statistic} {ev.metric}"
    basis = _MODEL_WORDS.get(ev.baseline_model or "", ev.baseline_model or "the baseline")
    claimed = ""
    if ev.claimed is not None:
        claimed = f" (the copilot reported {fmt(ev.claimed)})"
    return (
        f"{head}: {who} {what} was {fmt(ev.observed)} over the last {ev.window}{claimed}, "
        f"against {fmt(ev.expected)} expected from {basis} "
        f"(band {fmt(ev.band.lower)}–{fmt(ev.band.upper)}, score {fmt(ev.score)}"
        + (f", p {fmt(ev.p_value)}" if ev.p_value is not None else "")
        + ")"
        + host_sentence(ev)
        + (f"; {reason}." if reason else ".")
    )


class Decider:
    """Decides suggestions against one store and the currently loaded rules."""

    def __init__(self, store: _core.SeriesStore, rules: LoadedRules) -> None:
        self.store = store
        self.rules = rules
        #: For the rule set it was built from: the trace of every suggestion rule (mode not
        #: `off`, in file order) as if none matched, and each such rule's place in it. Most
        #: rules do not match a given suggestion: a decision copies this list and replaces the
        #: entries of the rules that did (traces are immutable, so the copies share them).
        self._unmatched: tuple[LoadedRules | None, list[RuleTrace], dict[str, int]] = (None, [], {})

    def _unmatched_traces(self, rules: LoadedRules) -> tuple[list[RuleTrace], dict[str, int]]:
        if self._unmatched[0] is not rules:
            traces = [
                RuleTrace(
                    rule_id=rule.id,
                    mode=rule.mode,  # type: ignore[arg-type]
                    priority=rule.priority,
                    matched=False,
                    protect=rule.protect or None,
                )
                for rule in rules.rules
                if rule.kind != "watch" and rule.mode != "off"
            ]
            self._unmatched = (rules, traces, {t.rule_id: i for i, t in enumerate(traces)})
        return self._unmatched[1], self._unmatched[2]

    def decide(
        self, suggestion: Suggestion, at: datetime | None = None, payload: str | None = None
    ) -> Verdict:
        """``payload``: the suggestion's JSON (``exclude_none``), when the caller has it already."""
        rules = self.rules  # one consistent rule set for the whole decision, even during a reload
        at = at or suggestion.created_at
        at_ms = int(at.timestamp() * 1000)
        # Log counts and span RED series are written per finished minute: write those due.
        self.store.flush_events(at_ms)
        payload = payload or suggestion.model_dump_json(exclude_none=True)
        unmatched, position = self._unmatched_traces(rules)
        # Only the rules that matched or failed are in `outcomes` (and not those whose mode is
        # `off`); every other rule keeps its "did not match" trace.
        by_id = rules.by_id
        outcomes = [o for o in rules.compiled.evaluate(self.store, payload, at_ms) if o.id in position]
        applied = applied_exceptions(rules, self.store, payload, at_ms, outcomes)
        traces = list(unmatched)
        effects: list[Decision] = []
        for outcome in outcomes:
            rule = by_id[outcome.id]
            exception = applied.get(rule.id)
            effect = None if exception else _effect_of(rule, outcome)
            trace = RuleTrace(
                rule_id=rule.id,
                mode=rule.mode,  # type: ignore[arg-type]
                priority=rule.priority,
                matched=outcome.matched,
                when=outcome.when,
                effect=effect.verdict if effect else None,  # type: ignore[arg-type]
                reason=effect.reason
                if effect
                else (f"exception `{exception}` applies" if exception else None),
                missing=outcome.missing,
                error=outcome.error,
                # As plain dicts of JSON-native values (the trace is stored and served as JSON).
                signal=dict(sig.to_dict()) if (sig := outcome.signal) else None,
                baseline=dict(base.to_dict()) if (base := outcome.baseline) else None,
                host=dict(host.to_dict()) if (host := outcome.host) else None,
                exception=exception,
                protect=rule.protect or None,
            )
            traces[position[rule.id]] = trace
            if effect is not None:
                effects.append((rule, trace, effect))

        reason: str | None
        decided, chosen, mode = combine(effects)
        silent = [
            t for t in traces if t.matched and t.missing == NO_SERIES and t.effect is None and not t.exception
        ]
        if decided is None and silent:
            # Every rule that judges this claim reads an optional signal the subject lacks.
            verdict, reason = "inconclusive", f"evidence missing: {NO_SERIES}"
        elif decided is None:
            verdict, reason = "inconclusive", f"no rule judges {suggestion.claim.kind} claims"
        else:
            verdict, reason = decided, chosen[0][2].reason
        # Evidence comes from the deciding rule, or, when none had any, the first rule that did.
        evidence_trace = next((t for _, t, _ in chosen if t.signal), None) or next(
            (t for t in traces if t.signal), None
        )
        evidence = (
            _evidence(evidence_trace, by_id.get(evidence_trace.rule_id), suggestion)
            if evidence_trace
            else Evidence(claimed=suggestion.claim.observed)
        )
        if evidence.host is None and evidence_trace is not None:
            # The host context of the same series from another rule that read it (the deciding
            # rule may not ask for it): every verdict on a metric of a host says where it stands.
            metric = (evidence_trace.signal or {}).get("metric")
            host = next((t.host for t in traces if t.host and (t.signal or {}).get("metric") == metric), None)
            if host:
                evidence = evidence.model_copy(update={"host": HostContext(**host)})
        return Verdict(
            suggestion_id=suggestion.id,
            source=suggestion.source,
            subject=suggestion.subject,
            claim_kind=suggestion.claim.kind,
            verdict=verdict,  # type: ignore[arg-type]
            rule_ids=[r.id for r, _, _ in chosen] or [t.rule_id for t in silent],
            evidence=evidence,
            explanation=explain(verdict, suggestion, evidence, reason),
            trace=traces,
            rules_revision=rules.revision,
            decided_at=datetime.now(UTC),
            mode=mode,  # type: ignore[arg-type]
        )
