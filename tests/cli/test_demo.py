"""`referee demo`: the seed incident judged as the README says."""

from __future__ import annotations

import io
import re
from datetime import UTC

import pytest
from rich.console import Console

from referee.demo.run import run


def test_demo_judges_the_seed_incident(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for var in ("GRAFANA_URL", "GRAFANA_TOKEN", "REFEREE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    out = io.StringIO()
    verdicts = run(Console(file=out, width=200))
    by_service = {v.subject["service.name"]: v for v in verdicts}
    assert {s: v.verdict for s, v in by_service.items()} == {
        "web-app-21": "suppress",  # the usual evening peak
        "checkout": "confirm",  # a real latency incident
        "search": "confirm",  # a real error-rate incident
        "new-service": "inconclusive",  # too little history
    }
    peak = by_service["web-app-21"].evidence
    assert peak.baseline_model == "streaming.hour_of_day"
    assert peak.band is not None and peak.observed is not None
    assert peak.band.lower <= peak.observed <= peak.band.upper
    text = out.getvalue()
    # The incident the copilot missed is a watch-rule finding.
    assert "payments-api: error_ratio" in text
    assert "watch.http.errors.ratio-far-above-band): no suggestion covered it" in text
    # The annotations are shown with their tags and their region in readable UTC times.
    assert '"tags"' in text and "verdict:suppress" in text
    ev = by_service["checkout"].evidence
    assert ev.window_start is not None and ev.window_end is not None
    for t in (ev.window_start, ev.window_end):
        assert t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert f'"time": {int(ev.window_start.timestamp() * 1000)}' in text
    assert f'"timeEnd": {int(ev.window_end.timestamp() * 1000)}' in text
    # The scorecard: the verdicts are settled (the claim windows are complete), so they count by
    # value; payments-api's finding is the copilot's one miss.
    assert all(v.status == "settled" for v in verdicts)
    assert "Copilot scorecard" in text
    row = re.search(r"demo-copilot\W+(\d+)\W+(\d+)\W+(\d+)\W+(\d+)\W+(\d+)\W+(\d+)", text)
    assert row is not None, text
    suggestions, confirmed, suppressed, inconclusive, pending, misses = map(int, row.groups())
    assert (suggestions, confirmed, suppressed, inconclusive, pending) == (4, 2, 1, 1, 0)
    assert misses == 1
