"""Rule pack loading: every problem reported as path:line:col, nothing half-loaded."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from referee.decision.rulepack import RulePackError, load_rules, parse_duration

GOOD = """\
referee: 1
pack: t
rules:
  - id: lat
    match: suggestion.claim.kind == "latency_high"
    signal: {metric: http.server.request.duration, statistic: p99, window: 10m}
    when: signal.observed > baseline.upper
    then: confirm
    otherwise: {verdict: suppress, reason: inside the band}
"""


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def errors_of(path: Path) -> list[str]:
    with pytest.raises(RulePackError) as info:
        load_rules([path])
    return info.value.errors


def test_good_pack_loads_and_has_a_stable_revision(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    a, b = load_rules([p]), load_rules([p])
    assert [r.id for r in a.rules] == ["lat"]
    assert a.revision == b.revision
    assert a.rules[0].then is not None and a.rules[0].then.verdict == "confirm"
    assert a.rules[0].signal == {
        "metric": "http.server.request.duration",
        "statistic": "p99",
        "window_s": 600.0,
        "window": "10m",
    }
    p.write_text(GOOD.replace("10m", "15m"))
    assert load_rules([p]).revision != a.revision


def test_duplicate_keys_are_errors_with_position(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("    then: confirm\n", "    then: confirm\n    then: suppress\n"))
    assert errors_of(p) == [f"{p}:9:5: duplicate key `then` in a rule"]


def test_aliases_are_refused(tmp_path: Path) -> None:
    bomb = 'referee: 1\npack: t\nlists:\n  a: &a ["x","x","x"]\n  b: &b [*a,*a,*a]\nrules: []\n'
    p = write(tmp_path, bomb)
    started = time.monotonic()
    errs = errors_of(p)
    assert time.monotonic() - started < 1.0
    assert errs == [f"{p}:5:10: anchors and aliases are not allowed in rule packs"]


def test_several_documents_are_refused(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD + "---\nreferee: 1\n")
    (err,) = errors_of(p)
    assert (
        err.startswith(f"{p}:10:1: ")
        and "expected a single document in the stream but found another document" in err
    )


def test_unknown_field_and_bad_values(tmp_path: Path) -> None:
    text = GOOD.replace("    then: confirm\n", "    then: approve\n    severty: high\n")
    p = write(tmp_path, text)
    errs = errors_of(p)
    assert f"{p}:8:11: then: verdict must be one of confirm, suppress, inconclusive, not `approve`" in errs
    assert any(e.startswith(f"{p}:9:5: unknown field `severty` in a rule") for e in errs)


def test_cel_errors_point_into_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("baseline.upper", "baseline.uper"))
    (err,) = errors_of(p)
    # `when:` value starts at column 11 of line 7; the field access `.uper` 26 characters later.
    assert err.startswith(f"{p}:7:37: rule `lat` when: `baseline` has no field `uper`"), err


def test_cel_syntax_error(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace('== "latency_high"', '== "latency_high" &&'))
    (err,) = errors_of(p)
    assert err.startswith(f"{p}:5:") and "rule `lat` match:" in err


def test_duplicate_rule_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    errs = errors_of(tmp_path)
    assert len(errs) == 1 and "duplicate rule id `lat`" in errs[0]


def test_rule_tests_files_are_not_packs(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, "not: a pack\n", "a.test.yaml")
    assert len(load_rules([tmp_path]).rules) == 1


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1.5h") == 5400
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("10 minutes")
