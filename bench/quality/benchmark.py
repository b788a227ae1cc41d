"""Quality benchmarks on NAB (``make bench-quality``): the NAB score of the per-point
``baseline.score``, and the copilot verdict benchmark, both through ``referee replay``.

Protocols, fixed before looking at any result:

* **NAB score** for the three profiles, (a) with NAB's threshold optimised on the whole corpus
  and (b) with the threshold optimised on one half of the files and applied to the other. The
  split is alphabetical by ``category/file.csv``: even positions are half A, odd positions
  half B. We report A→B and B→A.
* **Copilot verdict benchmark** (issue 5, item 6), seeded RNG (``SEED``): *true* claims at each
  labelled anomaly point plus a random delay of 0-5 rows; *false* claims where a
  seasonality-blind detector (|x - mean of the previous 12| > 3 * their SD) fires outside every
  window, at most one per day of data, plus 5 per file at random rows outside windows. Each is
  an ``anomaly`` Suggestion v1 decided by replay with the default rule packs.
  Retention = true claims confirmed or inconclusive; suppression = false claims suppressed.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.quality import nab
from bench.quality.corpus import load_corpus, read_rows, row_of
from referee.config import Settings
from referee.models import Claim, Suggestion
from referee.replay import replay

SEED = 20261123
DAY_MS = 86_400_000


def make_claims(
    key: str,
    ts: list[int],
    vs: list[float],
    windows: list[tuple[int, int]],
    label_rows: list[int],
    rng: random.Random,
) -> list[tuple[Suggestion, bool]]:
    """The simulated copilot's claims about one file: (suggestion, is_true)."""
    name = Path(key).stem
    n = len(ts)
    inside = [False] * n
    for a, b in windows:
        for i in range(a, b + 1):
            inside[i] = True

    def deviation(i: int) -> float:
        prev = vs[max(0, i - 12) : i]
        return vs[i] - (sum(prev) / len(prev) if prev else vs[i])

    def claim(i: int, kind: str, k: int) -> Suggestion:
        d = deviation(i)
        return Suggestion(
            id=f"{name}-{kind}-{k}",
            source="nab-copilot",
            created_at=datetime.fromtimestamp(ts[i] / 1000, tz=UTC),
            subject={"service.name": name},
            claim=Claim(kind="anomaly", signal="value", direction="up" if d >= 0 else "down"),
        )

    out: list[tuple[Suggestion, bool]] = []
    for k, r in enumerate(label_rows):
        i = min(n - 1, r + rng.randint(0, 5))
        out.append((claim(i, "true", k), True))
    last_fire = -(2**62)
    k = 0
    for i in range(12, n):
        if inside[i] or ts[i] - last_fire < DAY_MS:
            continue
        prev = vs[i - 12 : i]
        sd = statistics.pstdev(prev)
        if abs(vs[i] - sum(prev) / 12) > 3 * sd:
            out.append((claim(i, "blind", k), False))
            last_fire = ts[i]
            k += 1
    outside = [i for i in range(n) if not inside[i]]
    for k, i in enumerate(sorted(rng.sample(outside, min(5, len(outside))))):
        out.append((claim(i, "random", k), False))
    return out


def run(nab_dir: Path, rules: list[Path], out_dir: Path) -> dict[str, Any]:
    keys, windows_json, labels_json = load_corpus(nab_dir)
    rng = random.Random(SEED)
    files: list[nab.NabFile] = []
    verdict_rows: list[dict[str, Any]] = []
    settings = Settings.load(None, env={}, rules=rules)
    started = time.perf_counter()
    for index, key in enumerate(keys):
        path = nab_dir / "data" / key
        ts, vs = read_rows(path)
        windows = [(row_of(ts, a), row_of(ts, b)) for a, b in windows_json[key]]
        label_rows = [row_of(ts, s) for s in labels_json.get(key, [])]
        claims = make_claims(key, ts, vs, windows, label_rows, rng)
        with tempfile.TemporaryDirectory() as tmp:
            sug_path = Path(tmp) / "suggestions.jsonl"
            sug_path.write_text("".join(s.model_dump_json() + "\n" for s, _ in claims))
            # Streaming baselines only: serve's hourly seasonal refits (STL, MSTL once two weeks
            # of history exist, ~2 s each) over up to 55 days per file would take hours here.
            result = replay([path], Path(tmp) / "out", settings, sug_path, fits=False)
        by_ts: dict[int, float] = {row[0]: row[5] for row in result.series[path.stem]}
        seen: set[int] = set()
        scores = np.zeros(len(ts))
        for i, t in enumerate(ts):
            if t not in seen:  # a repeated timestamp was rejected by the store: not a detection
                scores[i] = by_ts.get(t, 0.0)
                seen.add(t)
        files.append(nab.NabFile(key, scores, windows))
        truth = {s.id: is_true for s, is_true in claims}
        for v in result.verdicts:
            verdict_rows.append(
                {
                    "file": key,
                    "category": key.split("/")[0],
                    "half": "AB"[index % 2],
                    "true": truth[v.suggestion_id],
                    "verdict": v.verdict,
                }
            )
    elapsed = time.perf_counter() - started
    return {
        "nab": nab_report(files),
        "copilot": copilot_report(verdict_rows),
        "replay_seconds": round(elapsed, 1),
    }


def nab_report(files: list[nab.NabFile]) -> dict[str, Any]:
    half_a = [f for i, f in enumerate(files) if i % 2 == 0]
    half_b = [f for i, f in enumerate(files) if i % 2 == 1]
    report: dict[str, Any] = {
        "files": len(files),
        "windows": sum(len(f.windows) for f in files),
        "split": "alphabetical by category/file.csv; even positions = half A, odd = half B",
        "half_a": [f.name for f in half_a],
        "profiles": {},
    }
    for profile in nab.PROFILES:
        theta, raw = nab.optimise(files, profile)
        theta_a, _ = nab.optimise(half_a, profile)
        theta_b, _ = nab.optimise(half_b, profile)
        per_category: dict[str, float] = {}
        for cat in sorted({f.name.split("/")[0] for f in files}):
            sub = [f for f in files if f.name.startswith(cat + "/")]
            if sum(len(f.windows) for f in sub):
                per_category[cat] = round(nab.normalise(nab.raw_at(sub, theta, profile), sub, profile), 1)
        report["profiles"][profile] = {
            "optimised": {"threshold": theta, "score": round(nab.normalise(raw, files, profile), 1)},
            "fixed_a_to_b": {
                "threshold": theta_a,
                "score": round(nab.normalise(nab.raw_at(half_b, theta_a, profile), half_b, profile), 1),
            },
            "fixed_b_to_a": {
                "threshold": theta_b,
                "score": round(nab.normalise(nab.raw_at(half_a, theta_b, profile), half_a, profile), 1),
            },
            "per_category_at_optimised": per_category,
        }
    return report


def copilot_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def summarise(sub: list[dict[str, Any]]) -> dict[str, Any]:
        true = [r for r in sub if r["true"]]
        false = [r for r in sub if not r["true"]]
        kept = sum(r["verdict"] in ("confirm", "inconclusive") for r in true)
        supp = sum(r["verdict"] == "suppress" for r in false)
        counts: dict[str, dict[str, int]] = {"true": defaultdict(int), "false": defaultdict(int)}
        for r in sub:
            counts["true" if r["true"] else "false"][r["verdict"]] += 1
        return {
            "true_claims": len(true),
            "false_claims": len(false),
            "retention": round(kept / len(true), 3) if true else None,
            "suppression": round(supp / len(false), 3) if false else None,
            "verdicts": {k: dict(v) for k, v in counts.items()},
        }

    by_cat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_cat[r["category"]].append(r)
    return {
        "seed": SEED,
        "overall": summarise(rows),
        "half_a": summarise([r for r in rows if r["half"] == "A"]),
        "half_b": summarise([r for r in rows if r["half"] == "B"]),
        "per_category": {c: summarise(by_cat[c]) for c in sorted(by_cat)},
    }
