"""Running rule tests: series fed in time order, each case decided by the same store, loader
and ``Decider`` as ``referee serve``, and the differences written out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from referee.decision.rulepack import RulePackError
from referee.decision.ruletest.format import (
    DEFAULT_START,
    Case,
    Expect,
    LoadedTest,
    RuleTestError,
    expand_values,
    find_test_files,
    read_test_file,
)
from referee.durations import parse_duration
from referee.models import Suggestion, Verdict


def _attr(v: str | int | float | bool) -> str:
    # Like OTLP attribute values become strings in the store: `true`, `500`.
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass
class SeriesData:
    metric: str
    statistic: str
    attributes: dict[str, str]
    timestamps_ms: list[int]
    values: list[float]
    fed: int = 0


def build_series(tf: LoadedTest) -> list[SeriesData]:
    first_ms = start_ms(tf)
    step_ms = round(parse_duration(tf.doc.interval) * 1000)
    out = []
    for s in tf.doc.input_series:
        ts, vs = [], []
        for i, v in enumerate(expand_values(s.values)):
            if v is not None:
                ts.append(first_ms + i * step_ms)
                vs.append(v)
        out.append(SeriesData(s.metric, s.statistic, {k: _attr(v) for k, v in s.attributes.items()}, ts, vs))
    return out


def start_ms(tf: LoadedTest) -> int:
    start = tf.doc.start or DEFAULT_START
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp() * 1000)


def case_time(tf: LoadedTest, case: Case) -> datetime:
    if isinstance(case.at, datetime):
        return case.at if case.at.tzinfo else case.at.replace(tzinfo=UTC)
    return datetime.fromtimestamp(start_ms(tf) / 1000, tz=UTC) + timedelta(seconds=parse_duration(case.at))


def feed_until(store: Any, series: list[SeriesData], at_ms: int) -> None:
    """Gives every series its points up to ``at_ms`` (inclusive) not fed yet."""
    import bisect

    for s in series:
        end = bisect.bisect_right(s.timestamps_ms, at_ms)
        if end > s.fed:
            store.ingest_points(
                s.metric, s.statistic, s.attributes, s.timestamps_ms[s.fed : end], s.values[s.fed : end]
            )
            s.fed = end


def suggestion_for(tf: LoadedTest, index: int) -> Suggestion:
    """The case's suggestion as Suggestion v1, created at the case's time."""
    case = tf.doc.suggestions[index]
    data = case.suggestion.model_dump(exclude_none=True)
    data["id"] = data.get("id") or f"{tf.path.name}#{index}"
    data["created_at"] = case_time(tf, case)
    return Suggestion.model_validate(data)


def settings_for(tf: LoadedTest) -> Any:
    from referee.config import Settings

    rules = [tf.path.parent / r for r in tf.doc.rule_files]
    overrides = tf.doc.settings.model_dump(exclude_none=True) if tf.doc.settings else {}
    return Settings(rules=rules, **overrides)


def load_for(tf: LoadedTest) -> tuple[Any, Any]:
    """(settings, loaded rules) for a test file, with plugin rule functions as in ``serve``."""
    from referee.decision.rulepack import load_rules
    from referee.plugins import plugin_manager, rule_functions

    settings = settings_for(tf)
    functions = rule_functions(plugin_manager())
    try:
        rules = load_rules(settings.rules, settings.min_history, functions)
    except RulePackError as e:
        raise RuleTestError([f"{tf.where('rule_files')}: the rule files have errors:", *e.errors]) from None
    return settings, rules


@dataclass
class CaseResult:
    where: str
    label: str
    expect: Expect
    verdict: Verdict
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def compare(expect: Expect, verdict: Verdict) -> list[str]:
    problems = []
    if verdict.verdict != expect.verdict:
        problems.append("verdict")
    if expect.rule_ids is not None and sorted(expect.rule_ids) != sorted(verdict.rule_ids):
        problems.append("rule_ids")
    if expect.mode is not None and verdict.mode != expect.mode:
        problems.append("mode")
    return problems


def run_file(tf: LoadedTest) -> list[CaseResult]:
    """Decides every case of one file; the cases run in time order, results in file order."""
    from referee.decision.decider import Decider
    from referee.state import open_store

    settings, rules = load_for(tf)
    store = open_store(settings)
    decider = Decider(store, rules)
    series = build_series(tf)
    times = [case_time(tf, c) for c in tf.doc.suggestions]
    results: dict[int, CaseResult] = {}
    for i in sorted(range(len(times)), key=lambda j: times[j]):
        case = tf.doc.suggestions[i]
        at = times[i]
        feed_until(store, series, int(at.timestamp() * 1000))
        verdict = decider.decide(suggestion_for(tf, i), at)
        label = case.name or f"suggestion {i}"
        label += f" (at {case.at.isoformat() if isinstance(case.at, datetime) else case.at})"
        results[i] = CaseResult(
            tf.where("suggestions", i), label, case.expect, verdict, compare(case.expect, verdict)
        )
    return [results[i] for i in range(len(times))]


# --- reporting -------------------------------------------------------------------------------


def evidence_line(v: Verdict) -> str:
    from referee.decision.decider import fmt

    ev = v.evidence
    if ev.observed is None:
        return "none (no rule read a signal)"
    parts = [
        f"{ev.statistic} {ev.metric} observed {fmt(ev.observed)} ({ev.samples} samples over {ev.window})"
    ]
    if ev.expected is not None and ev.band is not None:
        parts.append(
            f"expected {fmt(ev.expected)}, band {fmt(ev.band.lower)}..{fmt(ev.band.upper)}, "
            f"score {fmt(ev.score)}, model {ev.baseline_model}, history {ev.baseline_history}"
        )
    return "; ".join(parts)


def trace_lines(v: Verdict) -> list[str]:
    out = []
    for t in v.trace:
        if not t.matched and not t.error:
            out.append(f"{t.rule_id} [{t.mode}, priority {t.priority}]: not matched")
            continue
        bits = [f"{t.rule_id} [{t.mode}, priority {t.priority}]: matched"]
        if t.when is not None:
            bits.append(f"when={str(t.when).lower()}")
        if t.missing:
            bits.append(f"missing: {t.missing}")
        if t.error:
            bits.append(f"error: {t.error}")
        bits.append(f"-> {t.effect or 'no effect'}")
        out.append(", ".join(bits))
    return out


def _fmt_ids(ids: list[str] | None) -> str:
    return "[" + ", ".join(ids or []) + "]"


def diff_text(r: CaseResult) -> str:
    """What a failing case expected and got, with the evidence and trace that decided it."""
    v, e = r.verdict, r.expect
    lines = [f"FAIL {r.where}: {r.label}"]
    mark = {True: "  ", False: "✗ "}
    lines.append(f"  {mark['verdict' not in r.problems]}verdict:  expected {e.verdict:<13} got {v.verdict}")
    if e.rule_ids is not None:
        lines.append(
            f"  {mark['rule_ids' not in r.problems]}rule_ids: expected {_fmt_ids(sorted(e.rule_ids))}  "
            f"got {_fmt_ids(sorted(v.rule_ids))}"
        )
    else:
        lines.append(f"    rule_ids: got {_fmt_ids(v.rule_ids)}")
    if e.mode is not None:
        lines.append(f"  {mark['mode' not in r.problems]}mode:     expected {e.mode:<13} got {v.mode}")
    lines.append(f"    evidence: {evidence_line(v)}")
    lines.append(f"    why:      {v.explanation}")
    lines.extend(f"    trace:    {t}" for t in trace_lines(v))
    return "\n".join(lines)


@dataclass
class Summary:
    files: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    output: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0 and self.passed > 0


def run_paths(paths: list[Path]) -> Summary:
    """Runs every test file under ``paths``; ``output`` holds what to print, in order."""
    summary = Summary()
    files = find_test_files(paths)
    if not files:
        summary.errors += 1
        summary.output.append(f"{', '.join(str(p) for p in paths)}: no rule tests (*.test.yaml) found")
        return summary
    for path in files:
        summary.files += 1
        try:
            results = run_file(read_test_file(path))
        except RuleTestError as e:
            summary.errors += 1
            summary.output.extend(e.errors)
            continue
        for r in results:
            if r.passed:
                summary.passed += 1
            else:
                summary.failed += 1
                summary.output.append(diff_text(r))
    return summary
