"""How the effects of the rules that matched combine into one verdict: priorities, verdict
order, shadow and off rules, protective rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from referee import _core
from referee.decision.decider import Decider, combine
from referee.decision.rulepack import Effect, Rule, load_rules
from referee.models import RuleTrace
from tests.decision.rulepacks import suggestion, write


def eff(rid: str, verdict: str, priority: int = 0, mode: str = "enforce", protect: bool = False):  # type: ignore[no-untyped-def]
    rule = Rule(id=rid, pack="p", source="s", mode=mode, priority=priority, protect=protect)
    trace = RuleTrace(rule_id=rid, mode=mode, priority=priority, matched=True)  # type: ignore[arg-type]
    return (rule, trace, Effect(verdict))


def decided(*effects):  # type: ignore[no-untyped-def]
    verdict, chosen, mode = combine(list(effects))
    return verdict, [r.id for r, _, _ in chosen], mode


@pytest.mark.parametrize(
    ("effects", "expected"),
    [
        # No effect at all: the caller says "no rule judges this claim".
        ((), (None, [], "enforce")),
        # Only the highest priority counts, whatever the verdicts.
        ((eff("c", "confirm", 1), eff("s", "suppress", 5)), ("suppress", ["s"], "enforce")),
        # Same priority: confirm > inconclusive > suppress.
        ((eff("s", "suppress"), eff("c", "confirm")), ("confirm", ["c"], "enforce")),
        ((eff("s", "suppress"), eff("i", "inconclusive")), ("inconclusive", ["i"], "enforce")),
        ((eff("i", "inconclusive"), eff("c", "confirm")), ("confirm", ["c"], "enforce")),
        ((eff("s1", "suppress"), eff("s2", "suppress")), ("suppress", ["s1", "s2"], "enforce")),
        # Shadow rules decide only when no enforce rule has an effect.
        ((eff("sh", "confirm", 9, "shadow"), eff("s", "suppress")), ("suppress", ["s"], "enforce")),
        ((eff("sh", "confirm", 0, "shadow"),), ("confirm", ["sh"], "shadow")),
        # Protective confirm or inconclusive drops every suppression, whatever its priority.
        ((eff("p", "confirm", 0, protect=True), eff("s", "suppress", 99)), ("confirm", ["p"], "enforce")),
        (
            (eff("p", "inconclusive", 0, protect=True), eff("s", "suppress", 99)),
            ("inconclusive", ["p"], "enforce"),
        ),
        # ... but not the other effects' priorities.
        (
            (eff("p", "inconclusive", 0, protect=True), eff("c", "confirm", 5), eff("s", "suppress", 9)),
            ("confirm", ["c"], "enforce"),
        ),
        # A protective rule's own suppression protects nothing.
        ((eff("p", "suppress", 0, protect=True), eff("c", "confirm", -1)), ("suppress", ["p"], "enforce")),
        # A shadow protective rule does not change an enforced suppression.
        ((eff("p", "confirm", 0, "shadow", True), eff("s", "suppress")), ("suppress", ["s"], "enforce")),
    ],
)
def test_combination(effects: tuple, expected: tuple) -> None:
    assert decided(*effects) == expected


def test_off_rules_are_skipped_and_shadow_marks_the_verdict(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
        referee: 1
        pack: t
        rules:
          - {id: off-confirm, mode: "off", match: "true", then: confirm}
          - {id: shadow-suppress, mode: shadow, match: "true", then: suppress}
        """,
    )
    v = Decider(_core.SeriesStore(), load_rules([p])).decide(suggestion("web"))
    assert (v.verdict, v.mode, v.rule_ids) == ("suppress", "shadow", ["shadow-suppress"])
    assert [t.rule_id for t in v.trace] == ["shadow-suppress"]
