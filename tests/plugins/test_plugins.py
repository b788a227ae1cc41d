"""The plugin system: hooks documented, entry points loaded, the allowlist honoured, and
plugin hooks actually used by the service."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from referee import hookimpl, hookspecs
from referee.demo.run import BackgroundServer
from referee.models import Suggestion
from referee.plugins import loaded_plugins, plugin_manager
from referee.service.runtime import Runtime

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("referee_"))


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented(hook: str) -> None:
    assert re.search(rf"^### {hook}\b", DOCS.read_text(), re.MULTILINE), (
        f"{hook} missing from docs/plugins.md"
    )


def test_first_party_plugins_load_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REFEREE_LOAD_PLUGINS", raising=False)
    assert "grafana" in loaded_plugins(plugin_manager())


def test_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFEREE_LOAD_PLUGINS", "")
    assert loaded_plugins(plugin_manager()) == []
    monkeypatch.setenv("REFEREE_LOAD_PLUGINS", "grafana")
    assert loaded_plugins(plugin_manager()) == ["grafana"]


def test_a_misspelt_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def referee_verdict_sink(self) -> None:  # not a hook: the real one is plural
            pass

    pm = plugin_manager(load_entry_points=False)
    pm.register(Typo())
    with pytest.raises(Exception, match="referee_verdict_sink"):
        pm.check_pending()


class PlainTextSource:
    """A toy copilot adapter: one 'service kind' line per suggestion."""

    name = "plain"
    path = "plain"

    def parse(self, body: bytes, content_type: str) -> list[Suggestion]:
        out = []
        for i, line in enumerate(body.decode().splitlines()):
            service, _, kind = line.partition(" ")
            if not kind:
                raise ValueError(f"line {i + 1}: expected 'service claim-kind'")
            out.append(
                Suggestion(
                    id=f"plain-{i}", source="plain", subject={"service.name": service}, claim={"kind": kind}
                )
            )  # type: ignore[arg-type]
        return out


class SourcePlugin:
    @hookimpl
    def referee_suggestion_sources(self, settings: object) -> list[PlainTextSource]:
        return [PlainTextSource()]


def test_suggestion_sources_are_mounted(runtime: Runtime) -> None:
    runtime.pm.register(SourcePlugin())
    with BackgroundServer(runtime, runtime.settings.port) as srv:
        r = httpx.post(f"{srv.url}/api/v1/sources/plain", content=b"web latency_high\ndb traffic_drop\n")
        assert r.status_code == 200
        assert [(v["subject"]["service.name"], v["verdict"]) for v in r.json()["verdicts"]] == [
            ("web", "inconclusive"),
            ("db", "inconclusive"),
        ]
        bad = httpx.post(f"{srv.url}/api/v1/sources/plain", content=b"nonsense\n")
        assert bad.status_code == 400 and "line 1" in bad.json()["error"]


class FunctionPlugin:
    @hookimpl
    def referee_register_rule_functions(self, register: object) -> None:
        register("percent_of", lambda part, whole: 100.0 * part / whole if whole else 0.0)  # type: ignore[operator]


def test_rule_functions_from_plugins_are_callable_in_conditions(tmp_path: Path) -> None:
    from referee.decision.rulepack import load_rules
    from referee.plugins import rule_functions

    pack = tmp_path / "p.yaml"
    pack.write_text(
        "referee: 1\npack: p\nrules:\n  - id: pct\n"
        "    match: percent_of(1.0, 4.0) == 25.0 && suggestion.claim.kind == 'anomaly'\n    then: confirm\n"
    )
    pm = plugin_manager(load_entry_points=False)
    pm.register(FunctionPlugin())
    rules = load_rules([pack], functions=rule_functions(pm))
    from referee import _core
    from referee.decision.decider import Decider

    s = Suggestion(id="1", subject={"service.name": "x"}, claim={"kind": "anomaly"})  # type: ignore[arg-type]
    verdict = Decider(_core.SeriesStore(), rules).decide(s)
    assert (verdict.verdict, verdict.rule_ids) == ("confirm", ["pct"])
    with pytest.raises(ValueError, match="clashes with a built-in"):
        load_rules([pack], functions={"size": len})


def test_rules_check_knows_plugin_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import referee.plugins
    from referee.cli import app

    pack = tmp_path / "p.yaml"
    pack.write_text(
        "referee: 1\npack: p\nrules:\n  - id: pct\n"
        "    match: percent_of(1.0, 4.0) == 25.0\n    then: confirm\n"
    )
    without = CliRunner().invoke(app, ["rules", "check", str(pack)])
    assert without.exit_code == 1 and "unknown function `percent_of`" in without.output

    def with_plugin(load_entry_points: bool = True) -> object:
        pm = plugin_manager(load_entry_points=False)
        pm.register(FunctionPlugin())
        return pm

    monkeypatch.setattr(referee.plugins, "plugin_manager", with_plugin)
    done = CliRunner().invoke(app, ["rules", "check", str(pack)])
    assert done.exit_code == 0, done.output
