"""The multi-metric benchmark's simulated copilot (bench/quality/asd.py) follows its protocol,
checked on a small host written in the ASD layout."""

from __future__ import annotations

import gzip
import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench.quality import asd
from bench.quality.corpus import DataMissing, locate_asd

TRAIN, TEST = 600, 900
SEGMENTS = [(300, 320, [1, 2]), (600, 605, [3])]  # test rows, inclusive; 1-based metrics


def _write_host(root: Path) -> asd.Host:
    rng = random.Random(7)
    (root / "series").mkdir(parents=True)
    (root / "interpretation").mkdir()
    labelled = {TRAIN + i for a, b, _ in SEGMENTS for i in range(a, b + 1)}
    t0 = datetime(2021, 1, 1, tzinfo=UTC)
    lines = ["timestamp,split,label,m01,m02,m03,m04,m05"]
    for i in range(TRAIN + TEST):
        daily = math.sin(2 * math.pi * i / 288)
        vals = [0.5 + 0.2 * daily + rng.gauss(0, 0.02) for _ in range(3)]
        vals.append(0.3 + rng.gauss(0, 0.05) * (i % 97 == 0) * 20)  # noisy: naive detector fires
        vals.append(0.42)  # constant
        if i in labelled:
            vals[0] += 0.3
        split = "train" if i < TRAIN else "test"
        label = "" if i < TRAIN else str(int(i in labelled))
        stamp = (t0 + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(",".join([stamp, split, label, *(f"{v:.6g}" for v in vals)]))
    (root / "series" / "omi-1.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (root / "interpretation" / "omi-1.txt").write_text(
        "".join(f"{a}-{b}:{','.join(map(str, d))}\n" for a, b, d in SEGMENTS)
    )
    return asd.Host("omi-1", root / "series" / "omi-1.csv.gz", root / "interpretation" / "omi-1.txt")


def test_claims_follow_the_protocol(tmp_path: Path) -> None:
    host = _write_host(tmp_path / "asd")
    assert host.test_start == TRAIN and host.constant("m05") and not host.constant("m04")
    claims = asd.make_claims(host, random.Random(asd.SEED))
    by_time = {asd.parse_timestamp(t): i for i, t in enumerate(host.timestamps)}
    segments = [(TRAIN + a, TRAIN + b, [f"m0{d}" for d in dims]) for a, b, dims in SEGMENTS]
    cats = {c for _, c in claims}
    assert "true" in cats and "naive_outside" in cats
    for s, category in claims:
        i, metric = by_time[s.created_at], s.claim.metric
        assert metric != "m05", "a constant metric is never claimed"
        assert s.subject == {"host.name": "omi-1"}
        if category == "true":
            assert any(a <= i <= a + 5 and metric in listed for a, _, listed in segments)
        elif category == "wrong_metric":
            assert any(a <= i <= a + 9 and metric not in listed for a, _, listed in segments)
            assert asd.naive_fires(host.column(metric), i)
        else:
            assert i >= TRAIN and all(abs(i - j) > 120 for j in host.labelled)
            assert asd.naive_fires(host.column(metric), i)
    for metric in host.metrics:
        rows = sorted(
            by_time[s.created_at] for s, c in claims if c == "naive_outside" and s.claim.metric == metric
        )
        assert all(j - i >= 72 for i, j in itertools.pairwise(rows)), "at most one per metric per 6 hours"
    # Directions: the first segment lifts m01, so its true claims on m01 say "up".
    ups = [s.claim.direction for s, c in claims if c == "true" and s.claim.metric == "m01"]
    assert ups and set(ups) == {"up"}


def test_the_summary_counts_each_category(tmp_path: Path) -> None:
    rows = [
        {"category": "true", "verdict": "confirm"},
        {"category": "true", "verdict": "inconclusive"},
        {"category": "true", "verdict": "suppress"},
        {"category": "wrong_metric", "verdict": "suppress"},
        {"category": "naive_outside", "verdict": "confirm"},
    ]
    out = asd.summarise(rows)
    assert (out["retention"], out["confirmation"], out["suppression"]) == (0.667, 0.333, 0.5)
    assert out["suppression_by_category"] == {"wrong_metric": 1.0, "naive_outside": 0.0}


def test_missing_data_says_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(DataMissing, match=r"series/omi-N\.csv\.gz"):
        locate_asd(tmp_path, env={})
    _write_host(tmp_path / "asd")
    assert locate_asd(tmp_path, env={}) == tmp_path / "asd"
