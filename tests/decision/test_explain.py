"""`referee rules explain`: every rule considered, each condition's value and the numbers used,
from a rule-test file's series or from a running service (POST /api/v1/explain, read-only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from typer.testing import CliRunner

from referee.cli import app
from referee.decision.rulepack import load_rules
from referee.demo.run import BackgroundServer
from referee.service.runtime import Runtime
from tests.conftest import DEFAULT_RULES

TESTS = DEFAULT_RULES / "tests"
HTTP_TEST = TESTS / "http-server.test.yaml"


def test_json_explanation_from_a_test_file_has_every_rule_and_the_numbers() -> None:
    r = CliRunner().invoke(app, ["rules", "explain", "--test", str(HTTP_TEST), "--case", "0", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    verdict = doc["verdict"]
    packs = load_rules([DEFAULT_RULES / "http-server.yaml"])
    ids = [rule.id for rule in packs.rules if rule.kind != "watch"]  # watch rules judge no suggestion
    assert [t["rule_id"] for t in verdict["trace"]] == ids
    assert [d["id"] for d in doc["rules"]] == ids
    assert verdict["verdict"] == "confirm"
    band = next(t for t in verdict["trace"] if t["rule_id"] == "http.latency.p99-vs-baseline")
    assert band["matched"] is True and band["when"] is True and band["effect"] == "confirm"
    assert band["signal"]["observed"] == verdict["evidence"]["observed"] == 1.5
    assert band["signal"]["samples"] == 10
    assert band["baseline"]["upper"] < 1.5
    assert band["baseline"]["history"] == verdict["evidence"]["baseline_history"] == 200
    assert doc["rules"][0]["when"] == "signal.observed > baseline.upper"


def test_text_explanation_lists_rules_conditions_and_numbers() -> None:
    suggestion = {"id": "x", "subject": {"service.name": "steady"}, "claim": {"kind": "latency_high"}}
    r = CliRunner().invoke(
        app, ["rules", "explain", "--test", str(HTTP_TEST), "--at", "209m"], input=json.dumps(suggestion)
    )
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "verdict suppress" in out
    for rid in (
        "http.latency.p99-vs-baseline",
        "http.latency.claim-overstated",
        "http.errors.ratio-vs-baseline",
    ):
        assert rid in out
    assert 'match: suggestion.claim.kind == "latency_high"  →  true' in out
    assert "when: signal.observed > baseline.upper  →  false" in out
    for number in ("observed:", "samples: 10", "window_s: 600", "expected:", "lower:", "upper:", "score:"):
        assert number in out
    assert "model: streaming.median_mad" in out and "history: 200" in out


def test_bad_input_is_reported() -> None:
    r = CliRunner().invoke(app, ["rules", "explain", "--test", str(HTTP_TEST)], input="{not json")
    assert r.exit_code == 2 and "cannot read the suggestion" in r.output
    r = CliRunner().invoke(app, ["rules", "explain", "--test", str(HTTP_TEST)], input='{"id": "x"}')
    assert r.exit_code == 2 and "not a valid Suggestion v1" in r.output and "subject" in r.output
    r = CliRunner().invoke(app, ["rules", "explain"], input="{}")
    assert r.exit_code == 2 and "exactly one of --url" in r.output


def test_explain_against_a_running_service(server: BackgroundServer, runtime: Runtime) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000) // 60_000 * 60_000
    ts = [now_ms - (119 - i) * 60_000 for i in range(120)]
    values = [0.3 + 0.01 * (i % 5) for i in range(110)] + [2.0] * 10
    runtime.store.ingest_points("http.server.request.duration", "p99", {"service.name": "live"}, ts, values)
    suggestion = {
        "id": "explain-1",
        "created_at": datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat(),
        "subject": {"service.name": "live"},
        "claim": {"kind": "latency_high", "observed": 2.1},
    }
    r = CliRunner().invoke(
        app, ["rules", "explain", "--url", server.url, "--json"], input=json.dumps(suggestion)
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verdict"]["verdict"] == "confirm"
    assert doc["verdict"]["rules_revision"] == runtime.rules.revision
    assert {t["rule_id"] for t in doc["verdict"]["trace"]} == {
        r.id for r in runtime.rules.rules if r.kind == "suggestion"
    }
    assert doc["verdict"]["evidence"]["observed"] == 2.0
    # Read-only: nothing was stored, so the same suggestion is new to the service.
    assert httpx.get(f"{server.url}/api/v1/verdicts").json()["verdicts"] == []
    text = CliRunner().invoke(app, ["rules", "explain", "--url", server.url], input=json.dumps(suggestion))
    assert (
        text.exit_code == 0
        and "http.latency.p99-vs-baseline" in text.stdout
        and "observed: 2.00" in text.stdout
    )
    # Bad input gets the service's 4xx reason.
    bad = CliRunner().invoke(app, ["rules", "explain", "--url", server.url], input='{"id": "x"}')
    assert bad.exit_code == 2 and "422" in bad.output and "subject" in bad.output
    raw = httpx.post(f"{server.url}/api/v1/explain", content=b"nope")
    assert raw.status_code == 400 and "not JSON" in raw.json()["error"]
