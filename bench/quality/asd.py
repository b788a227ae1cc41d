"""The multi-metric copilot benchmark (``make bench-quality``): claims about one metric of a
host, judged by ``referee replay`` with the default packs, on the ASD set (``DATA/asd/``: 12
servers x 19 host metrics, incidents labelled with the metrics they touched).

The simulated copilot, fixed before any result was looked at (``SEED``):

* **true**: for each incident segment, up to 3 of its listed non-constant metrics, each at a
  row drawn uniformly from the segment's first 6 rows; direction = the sign of the value
  against the mean of the previous hour (12 rows);
* **wrong_metric** (false): for each segment, up to 2 metrics *not* listed for it where a naive
  detector (|x - mean of the previous 12 rows| > 3 x their SD) fires in the segment's first
  10 rows, at the first row it fires;
* **naive_outside** (false): the naive detector on every non-constant metric, at test rows more
  than 10 hours (120 rows) from any labelled row, at most one claim per metric per 6 hours
  (72 rows), at most 300 per host.

Claims are drawn from the labelled (test) part only; the unlabelled 30 days before it are the
history replay feeds first. Hosts are split by number: odd (omi-1, omi-3, ...) are half A, the
one any constant may be chosen on; even are half B, the one to quote. Retention = true claims
confirmed or inconclusive; suppression = false claims suppressed; confirmation = true claims
confirmed.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from referee.config import Settings
from referee.models import Claim, Suggestion
from referee.replay import parse_timestamp, replay

SEED = 20261204
ASD_URL = "https://github.com/zhhlee/InterFusion"
HOUR_ROWS = 12  # 5-minute rows
CATEGORIES = ("true", "wrong_metric", "naive_outside")


class Host:
    """One server: its rows (train then test), metric columns and labelled segments."""

    def __init__(self, name: str, series: Path, interpretation: Path) -> None:
        self.name = name
        with gzip.open(series, "rt", newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader)
            self.metrics = header[3:]
            rows = list(reader)
        self.timestamps = [r[0] for r in rows]
        self.test_start = next(i for i, r in enumerate(rows) if r[1] == "test")
        self.values = [[float(v) for v in r[3:]] for r in rows]
        self.labelled = [i for i, r in enumerate(rows) if r[2] == "1"]
        self.segments: list[tuple[int, int, list[str]]] = []
        for line in interpretation.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            span, _, dims = line.partition(":")
            a, _, b = span.partition("-")
            names = [self.metrics[int(d) - 1] for d in dims.split(",") if d.strip()]
            self.segments.append((self.test_start + int(a), self.test_start + int(b), names))

    def column(self, metric: str) -> list[float]:
        j = self.metrics.index(metric)
        return [row[j] for row in self.values]

    def constant(self, metric: str) -> bool:
        col = self.column(metric)
        return max(col) == min(col)


def naive_fires(col: list[float], i: int) -> bool:
    """|x - mean of the previous 12 rows| > 3 x their SD (a seasonality-blind detector)."""
    if i < 12:
        return False
    prev = col[i - 12 : i]
    return abs(col[i] - sum(prev) / 12) > 3 * statistics.pstdev(prev)


def direction(col: list[float], i: int) -> Literal["up", "down"]:
    prev = col[max(0, i - HOUR_ROWS) : i] or [col[i]]
    return "up" if col[i] >= sum(prev) / len(prev) else "down"


def make_claims(host: Host, rng: random.Random) -> list[tuple[Suggestion, str]]:
    """The simulated copilot's claims about one host: (suggestion, category)."""
    out: list[tuple[Suggestion, str]] = []
    cols = {m: host.column(m) for m in host.metrics}
    live = [m for m in host.metrics if not host.constant(m)]

    def claim(i: int, metric: str, category: str) -> tuple[Suggestion, str]:
        s = Suggestion(
            id=f"{host.name}-{category}-{len(out)}",
            source="asd-copilot",
            created_at=parse_timestamp(host.timestamps[i]),
            subject={"host.name": host.name},
            claim=Claim(kind="anomaly", metric=metric, direction=direction(cols[metric], i)),
        )
        return s, category

    for a, b, listed in host.segments:
        listed_live = [m for m in listed if m in live]
        for m in rng.sample(listed_live, min(3, len(listed_live))):
            out.append(claim(rng.randint(a, min(b, a + 5)), m, "true"))
        wrong = 0
        for m in rng.sample(live, len(live)):
            if wrong == 2:
                break
            if m in listed:
                continue
            row = next((i for i in range(a, min(b, a + 9) + 1) if naive_fires(cols[m], i)), None)
            if row is not None:
                out.append(claim(row, m, "wrong_metric"))
                wrong += 1
    labelled = host.labelled
    far = [
        i
        for i in range(host.test_start, len(host.values))
        if not labelled or min(abs(i - j) for j in _near(labelled, i)) > 10 * HOUR_ROWS
    ]
    outside: list[tuple[int, str]] = []
    for m in live:
        last = -(10**9)
        for i in far:
            if i - last >= 6 * HOUR_ROWS and naive_fires(cols[m], i):
                outside.append((i, m))
                last = i
    for i, m in sorted(rng.sample(outside, min(300, len(outside)))):
        out.append(claim(i, m, "naive_outside"))
    return out


def _near(sorted_rows: list[int], i: int) -> list[int]:
    """The labelled rows just below and above ``i`` (the nearest one is among them)."""
    k = bisect.bisect_left(sorted_rows, i)
    return sorted_rows[max(0, k - 1) : k + 1]


def write_host_csv(host: Host, path: Path) -> None:
    """The host's metrics as one replay CSV: timestamp, value, metric, host.name."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value", "metric", "host.name"])
        for ts, row in zip(host.timestamps, host.values, strict=True):
            for m, v in zip(host.metrics, row, strict=True):
                w.writerow([ts, repr(v), m, host.name])


def hosts(asd_dir: Path) -> list[Host]:
    names = sorted(
        (p.name.removesuffix(".csv.gz") for p in (asd_dir / "series").glob("omi-*.csv.gz")),
        key=lambda n: int(n.split("-")[1]),
    )
    return [
        Host(n, asd_dir / "series" / f"{n}.csv.gz", asd_dir / "interpretation" / f"{n}.txt") for n in names
    ]


def half_of(name: str) -> str:
    return "A" if int(name.split("-")[1]) % 2 == 1 else "B"


def run(asd_dir: Path, rules: list[Path], fits: bool = False) -> dict[str, Any]:
    rng = random.Random(SEED)
    settings = Settings.load(None, env={}, rules=rules)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for host in hosts(asd_dir):
        claims = make_claims(host, rng)
        truth = {s.id: c for s, c in claims}
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / f"{host.name}.csv"
            write_host_csv(host, data)
            sug = Path(tmp) / "suggestions.jsonl"
            sug.write_text("".join(s.model_dump_json() + "\n" for s, _ in claims))
            result = replay([data], Path(tmp) / "out", settings, sug, fits=fits)
        for v in result.verdicts:
            rows.append(
                {
                    "host": host.name,
                    "half": half_of(host.name),
                    "category": truth[v.suggestion_id],
                    "verdict": v.verdict,
                }
            )
    return {
        "seed": SEED,
        "fits": fits,
        "split": "hosts by number: odd = half A (for choosing constants), even = half B (quoted)",
        "overall": summarise(rows),
        "half_a": summarise([r for r in rows if r["half"] == "A"]),
        "half_b": summarise([r for r in rows if r["half"] == "B"]),
        "per_host": {
            h: summarise([r for r in rows if r["host"] == h]) for h in sorted({r["host"] for r in rows})
        },
        "replay_seconds": round(time.perf_counter() - started, 1),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    true = [r for r in rows if r["category"] == "true"]
    false = [r for r in rows if r["category"] != "true"]

    def share(sub: list[dict[str, Any]], verdicts: tuple[str, ...]) -> float | None:
        return round(sum(r["verdict"] in verdicts for r in sub) / len(sub), 3) if sub else None

    counts: dict[str, dict[str, int]] = {c: defaultdict(int) for c in CATEGORIES}
    for r in rows:
        counts[r["category"]][r["verdict"]] += 1
    return {
        "true_claims": len(true),
        "false_claims": len(false),
        "retention": share(true, ("confirm", "inconclusive")),
        "confirmation": share(true, ("confirm",)),
        "suppression": share(false, ("suppress",)),
        "suppression_by_category": {
            c: share([r for r in false if r["category"] == c], ("suppress",)) for c in CATEGORIES[1:]
        },
        "verdicts": {c: dict(v) for c, v in counts.items()},
    }
