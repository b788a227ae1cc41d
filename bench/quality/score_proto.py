"""Prototype of candidate per-point anomaly scores, scored with NAB
(``python -m bench.quality.score_proto [--data DIR]``; ``python -m bench.score_proto`` is an alias).

Each NAB file is replayed once (no suggestions) to get the band every point was judged with on
arrival; the candidates are then computed in numpy from those bands, causally (each point uses
only earlier points). The first candidate reproduces the Rust score, so the others are compared
on equal terms. Constants are chosen on half A (``bench.quality.benchmark``'s split) and checked on half B;
results and the chosen algorithm are in docs/baselines.md ("How the score was chosen").
"""

from __future__ import annotations

import argparse
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.quality import nab
from bench.quality.corpus import add_data_argument, load_corpus, locate_or_exit, read_rows, row_of
from referee.config import Settings, default_rules_dir
from referee.replay import replay

BAND_K = 3.0
Rows = list[tuple[int, float, float, float, float, float]]


def z_of(rows: Rows) -> np.ndarray:
    v, e = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    sigma = np.array([(r[4] - r[3]) / (2 * BAND_K) for r in rows])
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (v - e) / sigma
    z[~np.isfinite(z)] = 0.0  # no band yet
    return z


def trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    c = np.cumsum(np.insert(x, 0, 0.0))
    i = np.arange(len(x))
    lo = np.maximum(0, i - k + 1)
    return (c[i + 1] - c[lo]) / (i + 1 - lo)


def exact_episode(raw: np.ndarray, horizon: int) -> np.ndarray:
    """raw where it beats every raw of the previous `horizon` points, else 0 (monotonic deque)."""
    out = np.zeros_like(raw)
    q: deque[tuple[int, float]] = deque()
    for i, x in enumerate(raw):
        while q and q[0][0] < i - horizon:
            q.popleft()
        if not q or x > q[0][1]:
            out[i] = x
        while q and q[-1][1] <= x:
            q.pop()
        q.append((i, float(x)))
    return out


def two_block_episode(raw: np.ndarray, block: int) -> np.ndarray:
    """The Rust rule: raw where it beats the current and the previous block's maxima."""
    out = np.zeros_like(raw)
    cur = prev = -np.inf
    start = 0
    for i, x in enumerate(raw):
        if i >= start + 2 * block:
            cur = prev = -np.inf
            start = i
        elif i >= start + block:
            prev, cur, start = cur, -np.inf, start + block
        out[i] = x if x > max(cur, prev) else 0.0
        cur = max(cur, x)
    return out


def novel(values: np.ndarray) -> np.ndarray:
    """Whether each value lies strictly outside the range of every earlier value (as f32, like Rust)."""
    v = values.astype(np.float32)
    hi = np.maximum.accumulate(v)
    lo = np.minimum.accumulate(v)
    out = np.zeros(len(v), dtype=bool)
    out[1:] = (v[1:] > hi[:-1]) | (v[1:] < lo[:-1])
    return out


def candidate(
    episode: Callable[[np.ndarray], np.ndarray], shift_k: int = 0, shift_c: float = 0.0, boost: float = 1.0
) -> Callable[[Rows], np.ndarray]:
    def score(rows: Rows) -> np.ndarray:
        z = z_of(rows)
        a = np.abs(z)
        if shift_c > 0:
            # Rust keeps the last z in tenths of sigma, clipped to ±12.7.
            zq = np.clip(np.round(z * 10) / 10, -12.7, 12.7)
            a = np.maximum(a, shift_c * np.abs(trailing_mean(zq, shift_k)))
        if boost != 1.0:
            a = a * np.where(novel(np.array([r[1] for r in rows])), boost, 1.0)
        has_band = np.isfinite(np.array([r[2] for r in rows]))
        return episode(np.where(has_band, a / (a + BAND_K), 0.0))

    return score


CANDIDATES: dict[str, Callable[[Rows], np.ndarray]] = {
    "current (two blocks of 144)": candidate(lambda r: two_block_episode(r, 144)),
    "exact 288": candidate(lambda r: exact_episode(r, 288)),
    "exact 288 + 12-point shift x2 (previous)": candidate(lambda r: exact_episode(r, 288), 12, 2.0),
    "two blocks of 144 + 12-point shift x2": candidate(lambda r: two_block_episode(r, 144), 12, 2.0),
    **{
        f"exact 288 + shift x2 + novelty x{b:g}": candidate(lambda r: exact_episode(r, 288), 12, 2.0, b)
        for b in (2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.quality.score_proto", description=__doc__.splitlines()[0]
    )
    add_data_argument(ap)
    nab_dir = locate_or_exit(ap.parse_args().data)
    keys, windows_json, _ = load_corpus(nab_dir)
    settings = Settings.load(None, env={}, rules=[default_rules_dir()])
    corpus: list[tuple[str, list[int], Rows, list[tuple[int, int]]]] = []
    for key in keys:
        path = nab_dir / "data" / key
        ts, _ = read_rows(path)
        with tempfile.TemporaryDirectory() as tmp:
            rows = replay([path], Path(tmp) / "out", settings).series[path.stem]
        corpus.append((key, ts, rows, [(row_of(ts, a), row_of(ts, b)) for a, b in windows_json[key]]))
    for name, fn in CANDIDATES.items():
        files = []
        for key, ts, rows, windows in corpus:
            by_ts = dict(zip((r[0] for r in rows), fn(rows), strict=True))
            seen: set[int] = set()
            scores = np.zeros(len(ts))
            for i, t in enumerate(ts):
                if t not in seen:
                    scores[i] = by_ts.get(t, 0.0)
                    seen.add(t)
            files.append(nab.NabFile(key, scores, windows))
        half_a, half_b = files[0::2], files[1::2]
        out = {}
        for label, sub in (("all", files), ("A", half_a), ("B", half_b)):
            out[label] = nab.normalise(nab.optimise(sub, "standard")[1], sub, "standard")
        theta_a, theta_b = nab.optimise(half_a, "standard")[0], nab.optimise(half_b, "standard")[0]
        out["A->B"] = nab.normalise(nab.raw_at(half_b, theta_a, "standard"), half_b, "standard")
        out["B->A"] = nab.normalise(nab.raw_at(half_a, theta_b, "standard"), half_a, "standard")
        print(f"{name:45s} " + "  ".join(f"{k} {v:5.1f}" for k, v in out.items()))


if __name__ == "__main__":
    main()
