"""The copilot adapter worked example in docs/plugins.md is real: its code, installed through an
entry point in the ``referee`` group, is loaded as a plugin and answers at /api/v1/sources/acme."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from referee.config import Settings
from referee.demo.run import BackgroundServer, free_port
from referee.plugins import loaded_plugins
from referee.service.runtime import Runtime
from tests.conftest import DEFAULT_RULES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"

INVESTIGATION: dict[str, Any] = {
    "investigation_id": "inv-42",
    "generated_at": "2026-11-23T22:57:00Z",
    "service": "checkout",
    "env": "production",
    "findings": [
        {
            "id": "f1",
            "type": "latency",
            "metric": "http.server.request.duration",
            "p99_seconds": 0.9,
            "confidence": 0.8,
            "text": "checkout p99 is 0.9 s",
        },
        {"id": "f2", "type": "errors", "text": "5xx are up"},
    ],
    "recommendation": {"action": "scale_out", "target": "deployment/checkout"},
    "url": "https://acme.example/inv/42",
}


def example_code() -> str:
    text = DOCS.read_text()
    m = re.search(r"<!-- example: copilot-adapter -->\n```python\n(.*?)\n```", text, re.DOTALL)
    assert m, "the copilot adapter example is missing from docs/plugins.md"
    return m.group(1) + "\n"


@pytest.fixture
def acme_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Installs the example as a distribution with an entry point, as pip would."""
    site = tmp_path / "site"
    dist = site / "acme_copilot-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "acme_copilot.py").write_text(example_code())
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-copilot\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[referee]\nacme = acme_copilot\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("REFEREE_LOAD_PLUGINS", raising=False)
    importlib.invalidate_caches()
    yield
    sys.modules.pop("acme_copilot", None)


def test_the_documented_adapter_loads_as_a_plugin_and_decides(tmp_path: Path, acme_installed: None) -> None:
    settings = Settings.load(
        env={}, database=tmp_path / "referee.db", port=free_port(), rules=[DEFAULT_RULES]
    )
    rt = Runtime(settings)
    try:
        assert "acme" in loaded_plugins(rt.pm)
        with BackgroundServer(rt, settings.port) as srv:
            r = httpx.post(f"{srv.url}/api/v1/sources/acme", json=INVESTIGATION)
            assert r.status_code == 200, r.text
            verdicts = r.json()["verdicts"]
            assert [(v["suggestion_id"], v["source"], v["claim_kind"]) for v in verdicts] == [
                ("inv-42/f1", "acme-copilot", "latency_high"),
                ("inv-42/f2", "acme-copilot", "error_rate_high"),
            ]
            assert verdicts[0]["subject"] == {
                "service.name": "checkout",
                "deployment.environment": "production",
            }
            assert verdicts[0]["evidence"]["claimed"] == 0.9
            # Re-sent: the same decisions.
            again = httpx.post(f"{srv.url}/api/v1/sources/acme", json=INVESTIGATION).json()["verdicts"]
            assert [v["decision_id"] for v in again] == [v["decision_id"] for v in verdicts]

            bad = {**INVESTIGATION, "findings": [{"id": "f3", "type": "vibes"}]}
            r = httpx.post(f"{srv.url}/api/v1/sources/acme", json=bad)
            assert r.status_code == 400 and "findings.0.type" in r.json()["error"]
            r = httpx.post(f"{srv.url}/api/v1/sources/acme", json={"service": "x"})
            assert r.status_code == 422
            assert {d["loc"] for d in r.json()["details"]} >= {"investigation_id", "findings"}
    finally:
        rt.close()
