"""`referee demo`: the seed incident judged as the README says."""

from __future__ import annotations

import io

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
    # The incident the copilot missed is reported, and the annotations are shown.
    assert "payments-api: error_ratio" in text
    assert '"tags"' in text and "verdict:suppress" in text
