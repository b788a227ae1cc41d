"""Small rule packs and the helpers the rule-language tests share: ``PACK`` (lists, macros,
exceptions, a protective rule), ``WATCH`` (a watch rule) and ``GOOD`` (one plain rule)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referee import _core
from referee.decision.rulepack import RulePackError, load_rules
from referee.models import Suggestion

T0 = 1_700_000_000_000  # ms


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def errors_of(*paths: Path) -> list[str]:
    with pytest.raises(RulePackError) as info:
        load_rules(list(paths))
    return info.value.errors


def suggestion(service: str, kind: str = "latency_high", **subject: str) -> Suggestion:
    return Suggestion.model_validate(
        {
            "id": f"s-{service}-{kind}",
            "created_at": datetime.fromtimestamp((T0 + 65 * 60_000) / 1000, tz=UTC).isoformat(),
            "subject": {"service.name": service, **subject},
            "claim": {"kind": kind},
        }
    )


def spiky_store() -> _core.SeriesStore:
    """`web` p99 jumps from 0.2 to 1.0 in the last five minutes; `db` stays at 0.2."""
    store = _core.SeriesStore()
    ts = [T0 + i * 60_000 for i in range(65)]
    store.ingest_points("lat", "p99", {"service.name": "web"}, ts, [0.2] * 60 + [1.0] * 5)
    store.ingest_points("lat", "p99", {"service.name": "db"}, ts, [0.2] * 65)
    return store


PACK = """\
referee: 1
pack: t
lists:
  protected: [payments, "ledger"]
  windows: [300, 600]
macros:
  latency: suggestion.claim.kind == "latency_high"
  protected_latency: macros.latency && suggestion.subject["service.name"] in lists.protected
rules:
  - id: suppress-latency
    priority: 10
    match: macros.latency
    then: {verdict: suppress, reason: latency claims are noise}
  - id: protect-payments
    protect: true
    match: macros.protected_latency
    signal: {metric: lat, statistic: p99, window: 5m}
    when: signal.observed > baseline.upper && signal.window_s in lists.windows
    then: {verdict: confirm, reason: p99 above its band}
    exceptions:
      - name: maintenance
        when: '"maintenance" in suggestion.subject'
      - name: tiny
        when: signal.max < 0.001
"""


WATCH = """\
referee: 1
pack: w
lists:
  ignored: [batch]
rules:
  - id: lat.watch
    severity: critical
    watch: '!(series["service.name"] in lists.ignored)'
    signal: {metric: lat, statistic: p99, window: 5m}
    when: baseline.max_point_score > 0.75 && signal.observed > baseline.upper
    exceptions:
      - {name: small, when: signal.observed < 0.05}
"""


GOOD = """\
referee: 1
pack: t
rules:
  - id: lat
    match: suggestion.claim.kind == "latency_high"
    signal: {metric: http.server.request.duration, statistic: p99, window: 10m}
    when: signal.observed > baseline.upper
    then: confirm
"""
