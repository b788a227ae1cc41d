"""The NAB scorer (bench/quality/nab.py) against hand-computed cases and against its own slow path."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from bench.quality import nab


def _file(n: int, windows: list[tuple[int, int]], hits: list[int], name: str = "f") -> nab.NabFile:
    s = np.zeros(n)
    s[hits] = 1.0
    return nab.NabFile(name, s, windows)


def test_scaled_sigmoid() -> None:
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(3.5) == -1.0
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)


def test_detection_at_window_start_is_worth_a_tp() -> None:
    f = _file(20, [(10, 13)], [10])
    assert nab.file_score(f, 0.5, "standard") == pytest.approx(1.0)


def test_late_detection_is_worth_less() -> None:
    f = _file(20, [(10, 13)], [13])
    # row 13: -(13-13+1)/4 = -0.25
    expected = nab.scaled_sigmoid(-0.25) / nab.scaled_sigmoid(-1.0)
    assert nab.file_score(f, 0.5, "standard") == pytest.approx(expected)


def test_missed_window_and_false_positives() -> None:
    # probation of 20 rows is 3: a hit at row 2 does not count; row 5 is an FP before any window.
    f = _file(20, [(10, 13)], [2, 5])
    assert nab.file_score(f, 0.5, "standard") == pytest.approx(-1.0 - 0.11)
    assert nab.file_score(f, 0.5, "reward_low_FN_rate") == pytest.approx(-2.0 - 0.11)
    assert nab.file_score(f, 0.5, "reward_low_FP_rate") == pytest.approx(-1.0 - 0.22)


def test_fp_after_a_window_is_softened() -> None:
    f = _file(20, [(10, 13)], [10, 15])
    fp = 0.11 * nab.scaled_sigmoid(2 / 3)
    assert nab.file_score(f, 0.5, "standard") == pytest.approx(1.0 + fp)
    assert -0.11 < fp < 0


def test_extra_detections_inside_a_window_cost_nothing() -> None:
    assert nab.file_score(_file(20, [(10, 13)], [10, 11, 12]), 0.5, "standard") == pytest.approx(1.0)


def test_normalisation_null_and_perfect() -> None:
    files = [_file(20, [(10, 13)], [10])]
    assert nab.normalise(1.0, files, "standard") == pytest.approx(100.0)
    assert nab.normalise(-1.0, files, "standard") == pytest.approx(0.0)
    assert nab.normalise(-2.0, files, "reward_low_FN_rate") == pytest.approx(0.0)


def test_optimised_threshold_never_below_null() -> None:
    f = nab.NabFile("f", np.linspace(0, 1, 50), [(40, 44)])  # rising noise: many FPs before the window
    _theta, raw = nab.optimise([f], "standard")
    assert raw >= -1.0
    assert nab.normalise(raw, [f], "standard") >= 0.0


@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_fast_search_matches_direct_evaluation(profile: str) -> None:
    rng = random.Random(7)
    files = []
    for k in range(4):
        n = rng.randint(60, 200)
        a = rng.randint(30, n - 20)
        windows = [(a, a + rng.randint(2, 10))]
        scores = np.array([round(rng.random(), 2) for _ in range(n)])
        files.append(nab.NabFile(f"f{k}", scores, windows))
    cands, totals = nab.corpus_curve(files, profile)
    for theta, total in list(zip(cands, totals, strict=True))[::7]:
        direct = sum(nab.file_score(f, float(theta), profile) for f in files)
        assert total == pytest.approx(direct)
        assert nab.raw_at(files, float(theta) - 1e-9, profile) == pytest.approx(
            sum(nab.file_score(f, float(theta) - 1e-9, profile) for f in files)
        )
