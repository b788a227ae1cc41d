"""Rule tests (`referee rules test`): promtool's notation, the file format and its errors, the
diff of a failing case, and the default packs' own tests (every rule confirms, suppresses and is
inconclusive somewhere)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from referee.cli import app
from referee.decision.rulepack import load_rules
from referee.decision.ruletest import (
    NotationError,
    expand_values,
    find_test_files,
    read_test_file,
    run_file,
    run_paths,
)
from tests.conftest import DEFAULT_RULES, REPO

PACK = DEFAULT_RULES / "http-server.yaml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The examples of promtool's documentation (docs/configuration/unit_testing_rules.md).
        ("-2+4x3", [-2, 2, 6, 10]),
        ("1-2x4", [1, -1, -3, -5, -7]),
        ("1x4", [1, 1, 1, 1, 1]),
        ("1 _x3 stale", [1, None, None, None, None]),
        ("1+2x3", [1, 3, 5, 7]),
        ("0+1x2 _ 5", [0, 1, 2, None, 5]),
        ("1e3+1e2x2", [1000, 1100, 1200]),
        ("-1.5", [-1.5]),
        ("_", [None]),
        ("1x0", [1]),
        (7, [7]),
    ],
)
def test_expanding_notation(text: str, expected: list[float | None]) -> None:
    assert expand_values(text) == expected


def test_special_values() -> None:
    inf, ninf, nan = expand_values("Inf -Inf NaN")
    assert inf == math.inf and ninf == -math.inf and nan is not None and math.isnan(nan)


@pytest.mark.parametrize("text", ["abc", "1x", "1+x3", "1+2", "x3", "1_", "1+-2x3", "1x999999999"])
def test_notation_errors(text: str) -> None:
    with pytest.raises(NotationError):
        expand_values(text)


def write(tmp_path: Path, body: str, name: str = "t.test.yaml") -> Path:
    p = tmp_path / name
    p.write_text(body.replace("PACK", str(PACK)))
    return p


SERIES = """rule_files: [PACK]
input_series:
  - metric: http.server.request.duration
    statistic: p99
    attributes: {service.name: web}
    values: "0.3x99 1.5x9"
"""


def test_cases_see_only_the_points_up_to_their_time(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        SERIES
        + """suggestions:
  - at: 109m
    suggestion: {subject: {service.name: web}, claim: {kind: latency_high}}
    expect: {verdict: confirm, rule_ids: [http.latency.p99-vs-baseline]}
  - at: 99m
    suggestion: {subject: {service.name: web}, claim: {kind: latency_high}}
    expect: {verdict: suppress}
  - at: 20m
    suggestion: {subject: {service.name: web}, claim: {kind: latency_high}}
    expect: {verdict: inconclusive}
""",
    )
    results = run_file(read_test_file(p))
    assert [r.verdict.verdict for r in results] == ["confirm", "suppress", "inconclusive"]
    assert all(r.passed for r in results)
    # The 99m case was decided before the incident's points arrived.
    assert results[1].verdict.evidence.observed == pytest.approx(0.3)


def test_a_failing_case_prints_a_diff_and_exits_1(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        SERIES
        + """suggestions:
  - name: the incident
    at: 109m
    suggestion: {subject: {service.name: web}, claim: {kind: latency_high}}
    expect: {verdict: suppress, rule_ids: [http.latency.claim-overstated]}
""",
    )
    r = CliRunner().invoke(app, ["rules", "test", str(tmp_path)])
    assert r.exit_code == 1
    out = r.output
    assert f"FAIL {p}:8:5: the incident (at 109m)" in out
    assert "verdict:  expected suppress" in out and "got confirm" in out
    assert "expected [http.latency.claim-overstated]  got [http.latency.p99-vs-baseline]" in out
    assert "evidence: p99 http.server.request.duration observed 1.50 (10 samples over 10m)" in out
    assert "model streaming.median_mad" in out
    assert "0 passed, 1 failed, 0 errors in 1 files" in out


def test_passing_files_exit_0(tmp_path: Path) -> None:
    write(
        tmp_path,
        SERIES
        + """suggestions:
  - at: 109m
    suggestion: {subject: {service.name: web}, claim: {kind: latency_high}}
    expect: {verdict: confirm}
""",
    )
    r = CliRunner().invoke(app, ["rules", "test", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "1 passed, 0 failed, 0 errors in 1 files" in r.output


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        (
            SERIES.replace("statistic: p99", "statistik: p99"),
            "4:16",
            "input_series.0.statistik: Extra inputs",
        ),
        (SERIES.replace('"0.3x99 1.5x9"', '"0.3x99 1.5y9"'), "6:13", "`1.5y9` is not a sample"),
        (
            SERIES.replace("rule_files: [PACK]", "rule_files: [PACK]\nrule_files: [PACK]"),
            "2:1",
            "duplicate key",
        ),
        (
            SERIES.replace("rule_files: [PACK]", "rule_files: &f [PACK]\ninterval: *f"),
            "2:11",
            "aliases are not allowed",
        ),
        (SERIES + "interval: 10q\n", "7:11", "invalid duration"),
        (SERIES.replace("[PACK]", "[nope.yaml]"), "1:13", "the rule files have errors"),
    ],
)
def test_errors_in_test_files_are_located(tmp_path: Path, body: str, where: str, message: str) -> None:
    body += """suggestions:
  - at: 109m
    suggestion: {subject: {service.name: web}, claim: {kind: latency_high}}
    expect: {verdict: confirm}
"""
    p = write(tmp_path, body)
    s = run_paths([p])
    assert not s.ok and s.errors == 1
    assert any(line.startswith(f"{p}:{where}: ") and message in line for line in s.output), s.output


def test_case_errors_are_located(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        SERIES
        + """suggestions:
  - at: soon
    suggestion: {subject: {service.name: web}, claim: {kind: latency_high}}
    expect: {verdict: maybe}
""",
    )
    s = run_paths([p])
    assert any(line.startswith(f"{p}:10:23: suggestions.0.expect.verdict") for line in s.output), s.output
    p.write_text(p.read_text().replace("maybe", "confirm"))
    s = run_paths([p])
    assert any(line.startswith(f"{p}:8:9: suggestions.0.at: `soon`") for line in s.output), s.output


def test_no_test_files_is_an_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["rules", "test", str(tmp_path)])
    assert r.exit_code == 1 and "no rule tests" in r.output


# --- the default packs ---------------------------------------------------------------------


def test_the_default_packs_pass_their_tests() -> None:
    s = run_paths([DEFAULT_RULES])
    assert s.ok, "\n".join(s.output)
    assert s.files >= 5 and s.passed >= 50


def test_every_default_rule_is_tested_for_each_verdict_it_can_give() -> None:
    """Every rule must appear among the deciding rules of a confirm, a suppress and an
    inconclusive case (only verdicts it can produce: `then`, `otherwise`, missing evidence)."""
    loaded = load_rules([DEFAULT_RULES])
    seen: dict[str, set[str]] = {r.id: set() for r in loaded.rules}
    for path in find_test_files([DEFAULT_RULES]):
        for r in run_file(read_test_file(path)):
            assert r.passed, r.where
            for rid in r.verdict.rule_ids:
                seen[rid].add(r.verdict.verdict)
    for rule in loaded.rules:
        if rule.kind == "watch":
            continue  # judges no suggestion: tests/decision/test_default_watch_rules.py
        can = {"inconclusive"} | {e.verdict for e in (rule.then, rule.otherwise) if e is not None}
        assert can <= seen[rule.id], f"{rule.id}: tested for {sorted(seen[rule.id])}, can give {sorted(can)}"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    if isinstance(x, datetime | date):
        return x.isoformat()
    return x


def test_test_files_validate_against_the_published_schema() -> None:
    schema = json.loads((REPO / "schemas" / "ruletest.v1.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    v = cls(schema)
    files = find_test_files([DEFAULT_RULES])
    assert files
    for f in files:
        assert f.read_text().startswith("# yaml-language-server: $schema=../../schemas/ruletest.v1.json")
        v.validate(_jsonable(yaml.safe_load(f.read_text())))
    bad = _jsonable(yaml.safe_load(files[0].read_text()))
    bad["suggestions"][0]["expect"]["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        v.validate(bad)
    del bad["rule_files"]
    with pytest.raises(jsonschema.ValidationError):
        v.validate(bad)
