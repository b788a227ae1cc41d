"""The rule language's lists and macros (inlined, pack-scoped, cycles and errors located),
exceptions and protective rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from referee.decision.decider import Decider
from referee.decision.rulepack import load_rules
from tests.decision.rulepacks import PACK, errors_of, spiky_store, suggestion, write


def test_lists_and_macros_are_inlined(tmp_path: Path) -> None:
    loaded = load_rules([write(tmp_path, PACK)])
    rule = loaded.by_id["protect-payments"]
    assert rule.expanded["match"] == (
        '((suggestion.claim.kind == "latency_high") && '
        'suggestion.subject["service.name"] in ["payments", "ledger"])'
    )
    assert rule.expanded["when"] == "signal.observed > baseline.upper && signal.window_s in [300, 600]"
    # What the author wrote is kept for tools that show it.
    assert rule.match == "macros.protected_latency"


def test_protective_rule_exceptions_and_missing_evidence(tmp_path: Path) -> None:
    loaded = load_rules([write(tmp_path, PACK)])
    store = spiky_store()
    decider = Decider(store, loaded)
    # Not protected: the priority-10 suppression decides.
    v = decider.decide(suggestion("web"))
    assert (v.verdict, v.rule_ids) == ("suppress", ["suppress-latency"])
    # Protected, no data: inconclusive on missing evidence, and it beats the suppression.
    v = decider.decide(suggestion("payments"))
    assert (v.verdict, v.rule_ids) == ("inconclusive", ["protect-payments"])
    trace = {t.rule_id: t for t in v.trace}
    assert trace["protect-payments"].protect is True and trace["protect-payments"].missing
    assert trace["suppress-latency"].effect == "suppress"
    # The exception about the suggestion alone applies even though the evidence is missing.
    v = decider.decide(suggestion("payments", maintenance="until 18:00"))
    assert (v.verdict, v.rule_ids) == ("suppress", ["suppress-latency"])
    trace = {t.rule_id: t for t in v.trace}
    assert trace["protect-payments"].exception == "maintenance"
    assert trace["protect-payments"].effect is None


def test_protective_confirm_with_evidence_and_evidence_exception(tmp_path: Path) -> None:
    text = PACK.replace('[payments, "ledger"]', "[web]")
    loaded = load_rules([write(tmp_path, text)])
    v = Decider(spiky_store(), loaded).decide(suggestion("web"))
    assert (v.verdict, v.rule_ids) == ("confirm", ["protect-payments"])
    assert v.evidence.observed == pytest.approx(1.0)
    # An exception on the evidence: with the threshold above the data it holds.
    loaded = load_rules([write(tmp_path, text.replace("signal.max < 0.001", "signal.max < 5.0"))])
    v = Decider(spiky_store(), loaded).decide(suggestion("web"))
    assert v.verdict == "suppress"
    assert {t.rule_id: t.exception for t in v.trace}["protect-payments"] == "tiny"


def test_string_literals_are_not_expanded(tmp_path: Path) -> None:
    text = PACK.replace("match: macros.latency\n", "match: 'suggestion.summary == \"lists.nope macros.x\"'\n")
    loaded = load_rules([write(tmp_path, text)])
    assert loaded.by_id["suppress-latency"].expanded["match"] == 'suggestion.summary == "lists.nope macros.x"'


def test_unknown_list_and_macro_have_locations(tmp_path: Path) -> None:
    text = PACK.replace("in lists.windows", "in lists.windowz").replace(
        "match: macros.latency\n", "match: macros.latncy\n"
    )
    p = write(tmp_path, text)
    errs = errors_of(p)
    assert (
        f"{p}:12:12: rule `suppress-latency` match: unknown macro `latncy` "
        "(this pack defines: latency, protected_latency; macros are pack-scoped)" in errs
    )
    assert any(
        e.startswith(f"{p}:18:66: rule `protect-payments` when: unknown list `windowz`") for e in errs
    ), errs


def test_lists_and_macros_are_pack_scoped(tmp_path: Path) -> None:
    write(tmp_path, PACK, "a.yaml")
    other = write(
        tmp_path,
        """\
        referee: 1
        pack: other
        rules:
          - id: other
            match: macros.latency
            then: confirm
        """,
        "b.yaml",
    )
    (err,) = errors_of(tmp_path)
    assert err.startswith(
        f"{other}:5:12: rule `other` match: unknown macro `latency` (this pack defines none"
    )


def test_macro_cycles_and_depth_are_refused(tmp_path: Path) -> None:
    cyc = write(
        tmp_path,
        """\
        referee: 1
        pack: t
        macros:
          a: macros.b || true
          b: macros.a
        rules:
          - {id: r, match: macros.a, then: confirm}
        """,
    )
    errs = errors_of(cyc)
    assert errs == [f"{cyc}:5:6: macro `b`: macros refer to each other in a cycle: a -> b -> a"]
    chain = "\n".join(f"  m{i}: macros.m{i + 1}" for i in range(12))
    deep = write(
        tmp_path,
        f"referee: 1\npack: t\nmacros:\n{chain}\n  m12: 'true'\n"
        "rules:\n  - {id: r, match: macros.m0, then: confirm}\n",
        "deep.yaml",
    )
    (err,) = errors_of(deep)
    assert "macros nest deeper than 8 levels" in err and err.startswith(f"{deep}:11:")


def test_errors_inside_a_macro_point_at_the_macro(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        PACK.replace('suggestion.claim.kind == "latency_high"', "suggestion.claim.knd == 'latency_high'"),
    )
    errs = errors_of(p)
    # Reported once, at the macro's text, although two rules and an exception use it.
    assert errs == [
        f"{p}:7:28: rule `suppress-latency` macro `latency`: `suggestion.claim` has no field `knd` "
        "(fields: kind, metric, signal, statistic, direction, observed, unit, window)",
        f"{p}:7:28: rule `protect-payments` macro `latency`: `suggestion.claim` has no field `knd` "
        "(fields: kind, metric, signal, statistic, direction, observed, unit, window)",
    ]


def test_bad_lists_and_misused_namespaces(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
        referee: 1
        pack: t
        lists:
          mixed: [a, 1]
          nested: [[a]]
          flag: [true]
        rules:
          - {id: r, match: lists == 1, then: confirm}
        """,
    )
    errs = errors_of(p)
    assert f"{p}:4:10: list `mixed` mixes strings and numbers" in errs
    assert f"{p}:5:12: list `nested`: items must be strings or numbers" in errs
    assert f"{p}:6:10: list `flag`: items must be strings or numbers" in errs
    assert f"{p}:8:20: rule `r` match: `lists` must be followed by `.<name>`, e.g. `lists.example`" in errs
