"""Calibrated evidence through a rule pack, end to end (store → RuleSet → Decider → verdict):
``baseline.p_up`` / ``p_down`` / ``p_value`` on synthetic series of the shapes the issue names
(smooth, quantised with five values, stepwise between usual levels, constant then moving,
min-max scaled), and the ``host`` variables (rank, anomalous count, Benjamini-Hochberg q) on a
subject with several metrics, in the verdict's trace and evidence."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referee import _core
from referee.decision.decider import Decider
from referee.decision.rulepack import load_rules
from referee.models import Suggestion

MINUTE = 60_000
T0 = 1_700_000_000_000
SUBJECT = {"host.name": "h1"}


def window_pack(
    tmp_path: Path, when: str = "true", then: str = "confirm", otherwise: str = "suppress"
) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(
        "referee: 1\npack: p\nrules:\n"
        "  - id: r\n    match: 'true'\n"
        "    signal: {metric: $claim.metric, points: 6}\n"
        f"    when: '{when}'\n    then: {then}\n    otherwise: {otherwise}\n"
    )
    return p


def suggestion(at_ms: int, metric: str, direction: str | None = None) -> Suggestion:
    claim: dict[str, str] = {"kind": "anomaly", "metric": metric}
    if direction:
        claim["direction"] = direction
    return Suggestion(
        id=f"s-{metric}-{at_ms}",
        created_at=datetime.fromtimestamp(at_ms / 1000, tz=UTC),
        subject=SUBJECT,
        claim=claim,  # type: ignore[arg-type]
    )


def p_values(values: list[float], tmp_path: Path, start: int = 200) -> list[float]:
    """The two-sided p of every 6th window after ``start`` points, fed in time order."""
    store = _core.SeriesStore()
    decider = Decider(store, load_rules([window_pack(tmp_path)]))
    ts = [T0 + i * MINUTE for i in range(len(values))]
    out: list[float] = []
    fed = 0
    for end in range(start, len(values) + 1, 6):
        store.ingest_points("m", "value", SUBJECT, ts[fed:end], values[fed:end])
        fed = end
        v = decider.decide(suggestion(ts[end - 1], "m"))
        trace = v.trace[0].baseline  # type: ignore[union-attr]
        assert trace is not None
        out.append(trace["p_value"])
    return out


def rng_series(n: int, f, seed: int = 7) -> list[float]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    return [f(i, rng) for i in range(n)]


SHAPES = {
    "smooth latency": lambda i, r: 120 + 15 * math.sin(i / 40) + r.gauss(0, 3),
    "quantised counter, five values": lambda i, r: float(r.choice([0, 1, 1, 2, 2, 2, 3, 3, 4])),
    "stepwise between usual levels": lambda i, r: (10.0 if (i // 37) % 2 else 30.0) + r.gauss(0, 0.2),
    "min-max scaled": lambda i, r: min(1.0, max(0.0, 0.5 + 0.15 * r.gauss(0, 1))),
    "heavy tailed": lambda i, r: 50 + r.paretovariate(2.5),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_one_threshold_means_the_same_on_every_shape(shape: str, tmp_path: Path) -> None:
    """On a series where nothing happens, p <= 0.05 on about 5 % of windows, whatever the shape:
    never on most of them (a quantised or stepwise series is not always rare) and not never (the
    p-value is not stuck at 1)."""
    ps = p_values(rng_series(3_000, SHAPES[shape]), tmp_path)
    share = sum(p <= 0.05 for p in ps) / len(ps)
    assert len(ps) > 400
    assert 0.005 <= share <= 0.12, f"{shape}: {share:.3f} of {len(ps)} windows have p <= 0.05"


def test_a_jump_between_usual_levels_is_not_rare_but_a_new_level_is(tmp_path: Path) -> None:
    values = rng_series(2_000, SHAPES["stepwise between usual levels"])
    # Right after a regular step (the series has stepped every 37 points since it began).
    step = next(i for i in range(1_500, 2_000) if (i // 37) != ((i - 1) // 37)) + 3
    assert p_values(values[:step], tmp_path, start=step)[-1] > 0.05
    # A level the series has never had.
    moved = values[:1_800] + [90.0] * 6
    assert p_values(moved, tmp_path, start=len(moved))[-1] <= 0.01


def test_constant_then_moving(tmp_path: Path) -> None:
    """A constant series has no rare window; its first move is the rarest it has had."""
    flat = [5.0] * 600
    assert p_values(flat, tmp_path, start=600)[-1] > 0.2
    moved = [*flat, 5.0, 5.0, 5.0, 9.0, 9.0, 9.0]
    assert p_values(moved, tmp_path, start=len(moved))[-1] <= 0.01


def host_store() -> tuple[_core.SeriesStore, int]:
    """h1: cpu, load and memory jump in the last 4 minutes; disk and net stay ordinary."""
    store = _core.SeriesStore()
    rng = random.Random(11)
    n = 400
    ts = [T0 + i * MINUTE for i in range(n)]
    for metric in ("cpu", "load", "memory", "disk", "net"):
        vs = [50 + rng.gauss(0, 2) for _ in range(n)]
        if metric in ("cpu", "load", "memory"):
            vs[-4:] = [80.0 + i for i in range(4)]
        store.ingest_points(metric, "value", SUBJECT, ts, vs)
    return store, ts[-1]


def test_host_variables_reach_rules_and_the_verdict(tmp_path: Path) -> None:
    store, at = host_store()
    rules = load_rules(
        [window_pack(tmp_path, when="host.anomalous >= 3u && host.rank == 1u", then="inconclusive")]
    )
    decider = Decider(store, rules)
    v = decider.decide(suggestion(at, "cpu", "up"))
    assert v.verdict == "inconclusive"
    host = v.evidence.host  # type: ignore[union-attr]
    assert host is not None
    assert host.metrics == 5
    assert host.anomalous == 3
    assert set(host.anomalous_metrics) == {"cpu", "load", "memory"}
    assert host.q is not None and host.q <= 0.05
    assert "of 5 metrics, 3 anomalous now" in v.explanation
    assert v.trace[0].host is not None and v.trace[0].host["anomalous"] == 3
    # An ordinary metric of the same host: not among the discoveries, ranked below them.
    quiet = decider.decide(suggestion(at, "disk", "up"))
    assert quiet.verdict == "suppress"
    assert quiet.evidence.host.rank >= 4  # type: ignore[union-attr]
    assert quiet.evidence.host.q > 0.05  # type: ignore[union-attr]


def test_the_default_pack_holds_a_quiet_metric_on_a_troubled_host_inconclusive() -> None:
    from referee.config import default_rules_dir

    store, at = host_store()
    decider = Decider(store, load_rules([default_rules_dir()]))
    quiet = decider.decide(suggestion(at, "disk", "up"))
    assert quiet.verdict == "inconclusive"
    assert "anomaly.host_unsettled" in quiet.rule_ids
    loud = decider.decide(suggestion(at, "cpu", "up"))
    assert loud.verdict == "confirm"
    assert "anomaly.host_confirm" in loud.rule_ids
    # The deciding rule (anomaly.up) does not read `host`; the verdict still carries it.
    assert loud.evidence.host is not None and loud.evidence.host.rank == 1
    assert "3 anomalous now (" in loud.explanation
    # The same quiet metric on a host where nothing else moves is suppressed.
    lone = _core.SeriesStore()
    rng = random.Random(11)
    ts = [T0 + i * MINUTE for i in range(400)]
    lone.ingest_points("disk", "value", SUBJECT, ts, [50 + rng.gauss(0, 2) for _ in ts])
    assert (
        Decider(lone, load_rules([default_rules_dir()])).decide(suggestion(at, "disk", "up")).verdict
        == "suppress"
    )
