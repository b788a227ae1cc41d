"""An independent implementation of the NAB score (Numenta Anomaly Benchmark v1.1), written from
the rules in ``nab/README.md`` of the project's data directory (``bench.quality.corpus``):
probation, scaled-sigmoid row values, the three cost profiles, one corpus-wide threshold chosen
among every distinct score, and normalisation between the null and the perfect detector.

The threshold search is exact and O(n log n): every file's score is a step function of the
threshold θ, so each window and each out-of-window row contributes "deltas" that switch on
once θ falls to some value; a cumulative sum over the sorted deltas evaluates every candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PROFILES: dict[str, tuple[float, float, float]] = {
    # name: (A_TP, A_FP, A_FN)
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
NOTHING = 1.1  # the "detect nothing" threshold


def scaled_sigmoid(y: float) -> float:
    return -1.0 if y > 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


@dataclass
class NabFile:
    """One file: its detector scores per row and its windows as inclusive row ranges."""

    name: str
    scores: np.ndarray
    windows: list[tuple[int, int]]

    @property
    def probation(self) -> int:
        return min(math.floor(0.15 * len(self.scores)), 750)


def row_values(n: int, windows: list[tuple[int, int]], a_tp: float, a_fp: float) -> np.ndarray:
    """The value of a detection at each row (windows: TP weight; outside: FP cost, softened
    right after a window ends)."""
    v = np.full(n, -a_fp)
    inside = np.zeros(n, dtype=bool)
    norm = scaled_sigmoid(-1.0)
    for a, b in windows:
        w = b - a + 1
        for i in range(a, b + 1):
            v[i] = a_tp * scaled_sigmoid(-(b - i + 1) / w) / norm
            inside[i] = True
    last: tuple[int, int] | None = None
    ends = sorted(windows, key=lambda x: x[1])
    k = 0
    for i in range(n):
        while k < len(ends) and ends[k][1] < i:
            last = ends[k]
            k += 1
        if inside[i] or last is None:
            continue
        a2, b2 = last
        w2 = b2 - a2 + 1
        v[i] = a_fp * scaled_sigmoid(abs(i - b2) / max(w2 - 1, 1))
    return v


def file_score(f: NabFile, theta: float, profile: str) -> float:
    """Direct (slow) evaluation at one threshold: the reference the fast search is tested against."""
    a_tp, a_fp, a_fn = PROFILES[profile]
    n = len(f.scores)
    v = row_values(n, f.windows, a_tp, a_fp)
    detected = (f.scores >= theta) & (np.arange(n) >= f.probation)
    inside = np.zeros(n, dtype=bool)
    total = 0.0
    for a, b in f.windows:
        inside[a : b + 1] = True
        hits = np.flatnonzero(detected[a : b + 1])
        total += v[a + hits[0]] if len(hits) else -a_fn
    total += float(v[detected & ~inside].sum())
    return total


def _deltas(f: NabFile, profile: str) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """(score at θ = ∞, thresholds, deltas): the file scores base + Σ deltas whose threshold ≥ θ."""
    a_tp, a_fp, a_fn = PROFILES[profile]
    n = len(f.scores)
    v = row_values(n, f.windows, a_tp, a_fp)
    s = f.scores.astype(float).copy()
    s[: f.probation] = -np.inf  # probation rows are never detected
    inside = np.zeros(n, dtype=bool)
    ts: list[np.ndarray] = []
    ds: list[np.ndarray] = []
    base = 0.0
    for a, b in f.windows:
        inside[a : b + 1] = True
        base -= a_fn
        # The earliest detected row is the first whose score reaches θ: as θ falls past each
        # new running maximum, the detection moves to that row.
        # Records (rows that raise the running maximum) have increasing scores, so the highest
        # switches on first and each lower one moves the detection earlier.
        records: list[int] = []
        best = -np.inf
        for i in range(a, b + 1):
            if s[i] > best:
                best = s[i]
                records.append(i)
        prev_val = -a_fn
        for i in reversed(records):
            ts.append(np.array([s[i]]))
            ds.append(np.array([v[i] - prev_val]))
            prev_val = v[i]
    out = ~inside & np.isfinite(s)
    ts.append(s[out])
    ds.append(v[out])
    return base, ts, ds


def corpus_curve(files: list[NabFile], profile: str) -> tuple[np.ndarray, np.ndarray]:
    """(candidate thresholds, corpus score at each): every distinct score plus NOTHING."""
    base = 0.0
    ts: list[np.ndarray] = []
    ds: list[np.ndarray] = []
    for f in files:
        b, t, d = _deltas(f, profile)
        base += b
        ts += t
        ds += d
    t_all = np.concatenate(ts) if ts else np.zeros(0)
    d_all = np.concatenate(ds) if ds else np.zeros(0)
    keep = np.isfinite(t_all)
    t_all, d_all = t_all[keep], d_all[keep]
    order = np.argsort(-t_all, kind="stable")
    t_sorted, d_cum = t_all[order], np.cumsum(d_all[order])
    finite_scores = np.concatenate([f.scores[np.isfinite(f.scores)] for f in files]) if files else np.zeros(0)
    cands = np.unique(np.concatenate([finite_scores, [NOTHING]]))
    # Number of deltas with threshold >= θ: those are switched on.
    k = np.searchsorted(-t_sorted, -cands, side="right")
    totals = base + np.where(k > 0, d_cum[np.maximum(k - 1, 0)], 0.0)
    return cands, totals


def optimise(files: list[NabFile], profile: str) -> tuple[float, float]:
    """(θ, raw corpus score) maximising the corpus score; the highest θ on ties."""
    cands, totals = corpus_curve(files, profile)
    best = float(totals.max())
    idx = np.flatnonzero(totals == best)
    return float(cands[idx[-1]]), best


def raw_at(files: list[NabFile], theta: float, profile: str) -> float:
    cands, totals = corpus_curve(files, profile)
    if theta >= NOTHING:
        return float(totals[-1])
    # Score at θ equals the score at the smallest candidate ≥ θ (nothing lies in between).
    i = int(np.searchsorted(cands, theta, side="left"))
    return float(totals[min(i, len(totals) - 1)])


def normalise(raw: float, files: list[NabFile], profile: str) -> float:
    a_tp, _, a_fn = PROFILES[profile]
    n_windows = sum(len(f.windows) for f in files)
    if n_windows == 0:
        return float("nan")
    perfect, null = a_tp * n_windows, -a_fn * n_windows
    return 100.0 * (raw - null) / (perfect - null)
