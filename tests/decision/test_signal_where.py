"""`signal.where`: a rule reads only the subject's series its CEL condition over `series` keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from referee import _core
from referee.decision.decider import Decider
from referee.decision.rulepack import RulePackError, load_rules
from referee.models import Suggestion

PACK = """
referee: 1
pack: cpu
lists:
  busy: [user, system]
rules:
  - id: cpu.busy
    match: suggestion.claim.kind == "saturation_high"
    signal:
      metric: system.cpu.utilization
      where: series["state"] in lists.busy && series["cpu"] == "cpu1"
      window: 10m
    when: signal.observed > 0.5
    then: {verdict: confirm}
    otherwise: {verdict: suppress}
"""


def _store() -> _core.SeriesStore:
    store = _core.SeriesStore()
    ts = [i * 60_000 for i in range(40)]
    for cpu, state, level in [("cpu0", "user", 0.1), ("cpu1", "idle", 0.1), ("cpu1", "user", 0.9)]:
        attrs = {"host.name": "h1", "cpu": cpu, "state": state}
        store.ingest_points("system.cpu.utilization", "value", attrs, ts, [level] * len(ts))
    return store


def _decide(tmp_path: Path, pack: str) -> str:
    (tmp_path / "cpu.yaml").write_text(pack)
    rules = load_rules([tmp_path / "cpu.yaml"])
    s = Suggestion.model_validate(
        {
            "id": "1",
            "created_at": datetime.fromtimestamp(39 * 60, tz=UTC).isoformat(),
            "subject": {"host.name": "h1"},
            "claim": {"kind": "saturation_high"},
        }
    )
    verdict = Decider(_store(), rules).decide(s)
    assert verdict.evidence.observed is not None or verdict.verdict == "inconclusive"
    return verdict.verdict


def test_where_selects_the_series_the_rule_reads(tmp_path: Path) -> None:
    # cpu1/user is at 0.9; without `where` the first series by attributes (cpu0/user, 0.1) is read.
    assert _decide(tmp_path, PACK) == "confirm"
    assert (
        _decide(
            tmp_path,
            PACK.replace('      where: series["state"] in lists.busy && series["cpu"] == "cpu1"\n', ""),
        )
        == "suppress"
    )
    # A condition no series satisfies: no series, so the rule is inconclusive.
    assert _decide(tmp_path, PACK.replace('"cpu1"', '"cpu7"')) == "inconclusive"


def test_where_errors_point_into_the_file(tmp_path: Path) -> None:
    (tmp_path / "cpu.yaml").write_text(PACK.replace('series["state"]', 'seriez["state"]'))
    with pytest.raises(RulePackError) as e:
        load_rules([tmp_path / "cpu.yaml"])
    assert e.value.errors == [
        f"{tmp_path / 'cpu.yaml'}:11:14: rule `cpu.busy` signal where: unknown variable `seriez` "
        "(available here: series, suggestion)"
    ]
