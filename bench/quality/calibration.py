"""Calibration of the per-series evidence (``make bench-quality``, ``calibration`` in
``bench/quality.json``): on normal stretches, how often is ``baseline.p_up`` / ``p_down`` /
``p_value`` below alpha?

A calibrated p-value is below alpha on about an alpha share of windows where nothing happens,
whatever the series looks like. Each series is fed to a store opened with the default settings
(ring, band, minimum history: what ``referee serve`` runs with), point by point in time order,
and every 6th point a one-rule pack reads the last 6 points (as the anomaly pack does) once at
least ``WARMUP`` points have been stored. A window counts only on a normal stretch:

* NAB: every point of the window at least a window's length (of the labelled window) away
  from any labelled anomaly window;
* ASD: test rows more than 10 hours (120 rows) from any labelled row, the stretch the
  benchmark's naive-outside claims come from; constant metrics are left out.

Nothing here is tuned: alpha is 0.01, 0.05 and 0.1, the window is the pack's. Values above
alpha mean the evidence is anti-conservative there (a normal stretch looks rarer than it is);
below, conservative (the conformal reference set holds the series' own excursions too)."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.quality import asd, corpus
from referee import _core
from referee.config import Settings
from referee.decision.rulepack import load_rules
from referee.models import Suggestion
from referee.replay import parse_timestamp, to_ms
from referee.state import open_store

ALPHAS = (0.01, 0.05, 0.1)
POINTS = 6
WARMUP = 120
PACK = f"""referee: 1
pack: calibration
rules:
  - id: calibration.window
    match: 'true'
    signal: {{metric: m, points: {POINTS}}}
    when: 'true'
    then: inconclusive
"""


class Tally:
    """Counts of windows and of p below each alpha, per p-value kind."""

    KINDS = ("p_up", "p_down", "p_value")

    def __init__(self) -> None:
        self.windows = 0
        self.below = {k: [0] * len(ALPHAS) for k in self.KINDS}

    def add(self, base: _core.BaselineEvidence) -> None:
        ps = {"p_up": base.p_up, "p_down": base.p_down, "p_value": base.p_value}
        if any(p != p for p in ps.values()):  # NaN: no earlier windows yet
            return
        self.windows += 1
        for kind, p in ps.items():
            for i, a in enumerate(ALPHAS):
                if p < a:
                    self.below[kind][i] += 1

    def merge(self, other: Tally) -> None:
        self.windows += other.windows
        for k in self.KINDS:
            self.below[k] = [a + b for a, b in zip(self.below[k], other.below[k], strict=True)]

    def table(self) -> dict[str, Any]:
        n = max(1, self.windows)
        return {
            "windows": self.windows,
            **{
                kind: {f"{a:g}": round(self.below[kind][i] / n, 4) for i, a in enumerate(ALPHAS)}
                for kind in self.KINDS
            },
        }


class _Judge:
    def __init__(self, rules_dir: Path, settings: Settings) -> None:
        rules_dir.mkdir(parents=True, exist_ok=True)
        (rules_dir / "calibration.yaml").write_text(PACK)
        self.rules = load_rules([rules_dir], min_history=settings.min_history).compiled
        self.settings = settings
        self.subject = {"service.name": "calibration"}

    def series(self, ts_ms: list[int], values: list[float], normal: list[bool]) -> Tally:
        """Feeds one series in time order; tallies the windows whose points are all normal."""
        store = open_store(self.settings)
        tally = Tally()
        start = 0
        for end in range(WARMUP, len(values) + 1, POINTS):
            store.ingest_points("m", "value", self.subject, ts_ms[start:end], values[start:end])
            start = end
            if not all(normal[end - POINTS : end]):
                continue
            doc = Suggestion(
                id="c",
                created_at=datetime.fromtimestamp(ts_ms[end - 1] / 1000, tz=UTC),
                subject=self.subject,
                claim={"kind": "anomaly", "metric": "m"},  # type: ignore[arg-type]
            )
            for outcome in self.rules.evaluate(store, doc.model_dump_json(), ts_ms[end - 1]):
                if outcome.baseline is not None:
                    tally.add(outcome.baseline)
        return tally


def _nab_series(nab_dir: Path) -> Iterator[tuple[str, list[int], list[float], list[bool]]]:
    keys, windows, _ = corpus.load_corpus(nab_dir)
    for key in keys:
        ts, vs = corpus.read_rows(nab_dir / "data" / key)
        spans = [(to_ms(parse_timestamp(a)), to_ms(parse_timestamp(b))) for a, b in windows.get(key, [])]
        margins = [(a - (b - a), b + (b - a)) for a, b in spans]
        normal = [not any(a <= t <= b for a, b in margins) for t in ts]
        yield key, ts, vs, normal


def _asd_series(asd_dir: Path) -> Iterator[tuple[str, list[int], list[float], list[bool]]]:
    for host in asd.hosts(asd_dir):
        ts = [to_ms(parse_timestamp(t)) for t in host.timestamps]
        far = 10 * asd.HOUR_ROWS
        labelled = sorted(host.labelled)
        normal = []
        for i in range(len(ts)):
            k = bisect.bisect_left(labelled, i)
            near = any(abs(i - j) <= far for j in labelled[max(0, k - 1) : k + 1])
            normal.append(i >= host.test_start and not near)
        for metric in host.metrics:
            if not host.constant(metric):
                yield f"{host.name}/{metric}", ts, host.column(metric), normal


def measure(nab_dir: Path, asd_dir: Path, work: Path) -> dict[str, Any]:
    """The calibration table, per dataset (and per NAB category)."""
    settings = Settings.load(None, env={})
    judge = _Judge(work / "calibration-rules", settings)
    out: dict[str, Any] = {
        "method": (
            f"share of {POINTS}-point windows on normal stretches with p < alpha, default store settings, "
            f"every {POINTS}th point after {WARMUP}"
        ),
        "alphas": list(ALPHAS),
    }
    nab_total, per_category = Tally(), {}
    for key, ts, vs, normal in _nab_series(nab_dir):
        t = judge.series(ts, vs, normal)
        nab_total.merge(t)
        per_category.setdefault(key.split("/")[0], Tally()).merge(t)
    out["nab"] = {"all": nab_total.table(), **{c: t.table() for c, t in sorted(per_category.items())}}
    asd_total = Tally()
    for _, ts, vs, normal in _asd_series(asd_dir):
        asd_total.merge(judge.series(ts, vs, normal))
    out["asd"] = {"all": asd_total.table()}
    return out


if __name__ == "__main__":
    import sys
    import tempfile

    data = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(measure(data / "nab", data / "asd", Path(tmp)), indent=1))
