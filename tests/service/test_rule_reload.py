"""Hot reload in `referee serve`: an edit loads a new revision, a broken edit keeps the running
one and says where the problem is, a new file is noticed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.decision.rulepacks import GOOD, write
from tests.peers.serve_process import referee_serve


def test_serve_reloads_rules_when_files_change(tmp_path: Path) -> None:

    import httpx

    rules = tmp_path / "rules"
    rules.mkdir()
    pack = write(rules, GOOD)

    def until(check, what: str) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                body = httpx.get(url).json()
                if check(body):
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}")

    env = {"REFEREE_RULES_WATCH_INTERVAL_S": "0.2"}
    with referee_serve(tmp_path, rules, env=env, log_level="info") as served:
        url = f"{served.url}/api/v1/rules"
        first = until(lambda b: True, "referee serve")
        assert first["last_error"] is None and [r["id"] for r in first["rules"]] == ["lat"]
        # An edit loads a new revision.
        pack.write_text(GOOD.replace("id: lat", "id: lat2"))
        second = until(lambda b: b["revision"] != first["revision"], "the edit to load")
        assert [r["id"] for r in second["rules"]] == ["lat2"] and second["last_error"] is None
        # A broken edit keeps the running revision and says where the problem is.
        pack.write_text(GOOD.replace("id: lat", "id: lat2").replace("baseline.upper", "baseline.uper"))
        broken = until(lambda b: b["last_error"] is not None, "the broken edit to be refused")
        assert broken["revision"] == second["revision"] and broken["reload_failures_total"] == 1
        assert broken["last_error"].startswith(
            f"{pack}:7:37: rule `lat2` when: `baseline` has no field `uper`"
        )
        # A new file is noticed too; fixing the pack reloads everything at once.
        write(rules, GOOD.replace("id: lat", "id: extra"), "extra.yaml")
        pack.write_text(GOOD)
        fixed = until(lambda b: b["last_error"] is None and len(b["rules"]) == 2, "the fix to load")
        assert sorted(r["id"] for r in fixed["rules"]) == ["extra", "lat"]
        assert fixed["revision"] not in (first["revision"], second["revision"])
        # The new file may have been seen alone, beside the still broken pack: one more failure.
        assert fixed["reload_failures_total"] in (1, 2)
    out = served.output
    assert "rule reload failed; keeping revision" in out and f"{pack}:7:37:" in out
